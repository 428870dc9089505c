/* SPDX-License-Identifier: MIT */
/* The daemon under test as a child process, and what /proc says about it. */
#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

int bench_server_cpu = -1;
bool bench_clients_on_server_cpu;

static void pin_to(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

void pin_server(void)
{
	if (bench_server_cpu >= 0)
		pin_to(bench_server_cpu);
}

void pin_client(uint32_t idx)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (bench_server_cpu < 0 || n < 2)
		return;
	if (bench_clients_on_server_cpu) {
		pin_to(bench_server_cpu);
		return;
	}
	/* Every CPU but the server's, round robin. */
	pin_to((int)((bench_server_cpu + 1 + idx % (uint32_t)(n - 1)) % n));
}

void pin_none(void)
{
	cpu_set_t set;
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	CPU_ZERO(&set);
	for (long i = 0; i < n && i < CPU_SETSIZE; i++)
		CPU_SET(i, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static int try_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, rc;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ? -errno : 0;
	close(fd);
	return rc;
}

int daemon_start(struct daemon_proc *d, const char *daemon_bin, const char *dir,
		 bool coalesce, const char *tag)
{
	return daemon_start_ext(d, daemon_bin, dir, coalesce, tag, NULL);
}

/* The bench's configuration for one daemon; vm_key: say vm_contexts = false. */
static int write_config(const char *path, bool coalesce, const char *extra, bool vm_key)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	fprintf(f,
		"# written by iommu-nest-bench\n"
		/*
		 * Root mode: every client allocates its own HWPT on the one
		 * device vf0, which a VM context per client would lend to
		 * the first only.
		 */
		"[daemon]\nbackend = sim\nlog_level = warning\n%s\n"
		"[limits]\nmax_entries = 4096\n\n"
		"[coalesce]\nenabled = %s\n\n"
		"[device vf0]\nkind = vtd\n",
		vm_key ? "vm_contexts = false\n" : "", coalesce ? "true" : "false");
	if (extra)
		fputs(extra, f);
	return fclose(f) ? -errno : 0;
}

/* Whether daemon_bin takes the configuration at path (its --check-config). */
static bool config_taken(const char *daemon_bin, const char *path)
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return true; /* the start itself will tell */
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

		if (null >= 0) {
			dup2(null, 1);
			dup2(null, 2);
		}
		execl(daemon_bin, daemon_bin, "--check-config", "--config", path, (char *)NULL);
		_exit(127);
	}
	return waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

int daemon_start_ext(struct daemon_proc *d, const char *daemon_bin, const char *dir, bool coalesce,
		     const char *tag, const char *extra)
{
	pid_t pid;
	int rc;

	memset(d, 0, sizeof(*d));
	snprintf(d->socket, sizeof(d->socket), "%s/%s.sock", dir, tag);
	snprintf(d->config, sizeof(d->config), "%s/%s.conf", dir, tag);
	snprintf(d->log, sizeof(d->log), "%s/%s.log", dir, tag);
	rc = write_config(d->config, coalesce, extra, true);
	/*
	 * A --base-daemon older than VM contexts has no vm_contexts key, and
	 * refuses a file that names it; its one context is what the key asks
	 * for here.
	 */
	if (!rc && !config_taken(daemon_bin, d->config))
		rc = write_config(d->config, coalesce, extra, false);
	if (rc)
		return rc;

	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int fd = open(d->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		pin_server();
		/* Not a systemd service here, whatever the environment says. */
		unsetenv("NOTIFY_SOCKET");
		unsetenv("LISTEN_FDS");
		unsetenv("LISTEN_PID");
		unsetenv("WATCHDOG_USEC");
		execl(daemon_bin, daemon_bin, "--config", d->config, "--socket", d->socket,
		      (char *)NULL);
		fprintf(stderr, "exec %s: %s\n", daemon_bin, strerror(errno));
		_exit(127);
	}
	d->pid = d->stat_pid = pid;
	for (int i = 0; i < 500; i++) {
		int st;

		if (!try_connect(d->socket))
			return 0;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			d->pid = 0;
			fprintf(stderr, "bench: daemon exited at start; see %s\n", d->log);
			return -ECHILD;
		}
		bench_sleep_ns(10 * 1000000ull);
	}
	fprintf(stderr, "bench: daemon did not accept within 5 s; see %s\n", d->log);
	daemon_stop(d);
	return -ETIMEDOUT;
}

int wait_child(pid_t pid, int timeout_ms)
{
	int st = 0;

	for (int waited = 0;; waited++) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			return st;
		if (r < 0)
			return -errno;
		if (waited == timeout_ms) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return -ETIMEDOUT;
		}
		bench_sleep_ns(1000000ull);
	}
}

void daemon_stop(struct daemon_proc *d)
{
	if (d->pid <= 0)
		return;
	kill(d->pid, SIGTERM);
	if (wait_child(d->pid, 3000) == -ETIMEDOUT)
		fprintf(stderr, "bench: daemon ignored SIGTERM for 3 s, killed\n");
	d->pid = 0;
	unlink(d->socket);
}

pid_t peer_pid(int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len))
		return -1;
	return cr.pid;
}

double proc_cpu_seconds(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut, st;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	/* comm may contain spaces and parentheses: fields restart after the last ')'. */
	p = strrchr(buf, ')');
	if (!p)
		return -1;
	/* Fields 3..: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

long proc_rss_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

long raise_nofile(long want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return -1;
	if ((rlim_t)want > rl.rlim_max) {
		rl.rlim_max = (rlim_t)want;
		/* Root may raise the hard limit; others settle for it. */
		if (setrlimit(RLIMIT_NOFILE, &rl))
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	rl.rlim_cur = (rlim_t)want < rl.rlim_max ? (rlim_t)want : rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	getrlimit(RLIMIT_NOFILE, &rl);
	return (long)rl.rlim_cur;
}
