/* SPDX-License-Identifier: MIT */
/*
 * A stand-in for the parts of systemd that restart without loss depends
 * on, so that they can be tested without a system instance:
 *
 *   - the socket unit: a listening SOCK_SEQPACKET socket at --socket,
 *     passed to the service as "iommu-nestd.socket";
 *   - NOTIFY_SOCKET: a datagram socket at --notify that takes READY=1,
 *     FDSTORE=1 + FDNAME= (with the descriptors, SCM_RIGHTS) and
 *     FDSTOREREMOVE=1 + FDNAME=;
 *   - the fd store: what FDSTORE=1 sent is passed to every later start
 *     after the socket, with LISTEN_FDS / LISTEN_FDNAMES / LISTEN_PID
 *     (LISTEN_PID is set in the child after fork, before exec, as
 *     systemd does);
 *   - Restart=on-failure: a service killed by a signal or exiting non-zero
 *     is started again (at most --max-starts times in all);
 *   - with --hold-restart F, a restart waits until the file F exists and
 *     removes it (one file, one restart), like RestartSec= long enough for
 *     a test to change what the next start finds; the fd store is kept
 *     and SIGTERM still ends the wait.
 *
 * SIGTERM is forwarded to the service; once it exited cleanly, this exits
 * with its status. Every event goes to --log, one line each:
 *   START <n> <pid> <names,...>   READY <pid>   STORE <name>   REMOVE <name>
 *   EXIT <pid> code <c> | EXIT <pid> signal <s>   HOLD <file>   LEFT <count>
 * and the service's pid to --pidfile (replaced atomically).
 *
 * Usage: fake_systemd --socket P --notify P --log F --pidfile F
 *                     [--max-starts N] [--hold-restart F] -- COMMAND ARGS...
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_STORED 64

struct stored {
	int fd;
	char name[256];
};

static struct stored store[MAX_STORED];
static int n_store;
static FILE *eventlog;
static volatile sig_atomic_t got_term;

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(eventlog, fmt, ap);
	va_end(ap);
	fputc('\n', eventlog);
	fflush(eventlog);
}

static void on_term(int sig)
{
	got_term = 1;
}

static int unix_socket(const char *path, int type)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -1;
	strcpy(sa.sun_path, path);
	unlink(path);
	fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -1;
	if (type == SOCK_SEQPACKET && listen(fd, 128) < 0)
		return -1;
	return fd;
}

/* The value of KEY= on its own line of msg, copied to out; 0 if absent. */
static int field(const char *msg, const char *key, char *out, size_t len)
{
	size_t klen = strlen(key);

	for (const char *l = msg; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		if (strncmp(l, key, klen) || l[klen] != '=')
			continue;
		const char *v = l + klen + 1, *end = strchr(v, '\n');
		size_t n = end ? (size_t)(end - v) : strlen(v);

		if (n >= len)
			n = len - 1;
		memcpy(out, v, n);
		out[n] = '\0';
		return 1;
	}
	return 0;
}

static void store_fds(const char *name, const int *fds, int n)
{
	for (int i = 0; i < n; i++) {
		if (n_store == MAX_STORED) {
			close(fds[i]);
			continue;
		}
		store[n_store].fd = fds[i];
		snprintf(store[n_store].name, sizeof(store[n_store].name), "%s", name);
		n_store++;
		note("STORE %s", name);
	}
}

static void remove_fds(const char *name)
{
	for (int i = 0; i < n_store;) {
		if (strcmp(store[i].name, name)) {
			i++;
			continue;
		}
		close(store[i].fd);
		store[i] = store[--n_store];
		note("REMOVE %s", name);
	}
}

static void handle_notify(int nfd)
{
	char buf[4096], name[256] = "stored", pid[16];
	union {
		struct cmsghdr align;
		char b[CMSG_SPACE(sizeof(int) * 16)];
	} ctl;
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) - 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b,
			     .msg_controllen = sizeof(ctl.b) };
	int fds[16], nfds = 0;
	ssize_t n = recvmsg(nfd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

	if (n < 0)
		return;
	buf[n] = '\0';
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));

			memcpy(fds + nfds, CMSG_DATA(c), sizeof(int) * (size_t)k);
			nfds += k;
		}
	field(buf, "FDNAME", name, sizeof(name));
	if (strstr(buf, "FDSTORE=1"))
		store_fds(name, fds, nfds);
	else
		for (int i = 0; i < nfds; i++)
			close(fds[i]);
	if (strstr(buf, "FDSTOREREMOVE=1"))
		remove_fds(name);
	if (strstr(buf, "READY=1") && !strstr(buf, "RELOADING"))
		note("READY %s", field(buf, "MAINPID", pid, sizeof(pid)) ? pid : "-");
}

static void write_pidfile(const char *path, pid_t pid)
{
	char tmp[512];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f)
		return;
	fprintf(f, "%d\n", (int)pid);
	fclose(f);
	rename(tmp, path);
}

/* In the child: the socket at fd 3, the store after it, as systemd does. */
static void exec_service(int lfd, const char *notify, char **argv)
{
	char names[8192] = "iommu-nestd.socket", num[32];
	int nfd = 1 + n_store;

	/* Move everything out of the way of 3.. first, then into place. */
	int tmp_l = fcntl(lfd, F_DUPFD_CLOEXEC, 100), tmp[MAX_STORED];

	for (int i = 0; i < n_store; i++)
		tmp[i] = fcntl(store[i].fd, F_DUPFD_CLOEXEC, 100);
	dup2(tmp_l, 3);
	for (int i = 0; i < n_store; i++) {
		dup2(tmp[i], 4 + i);
		strncat(names, ":", sizeof(names) - strlen(names) - 1);
		strncat(names, store[i].name, sizeof(names) - strlen(names) - 1);
	}
	snprintf(num, sizeof(num), "%d", nfd);
	setenv("LISTEN_FDS", num, 1);
	setenv("LISTEN_FDNAMES", names, 1);
	snprintf(num, sizeof(num), "%d", (int)getpid());
	setenv("LISTEN_PID", num, 1);
	setenv("NOTIFY_SOCKET", notify, 1);
	signal(SIGTERM, SIG_DFL);
	execvp(argv[0], argv);
	_exit(127);
}

static pid_t start_service(int lfd, const char *notify, char **argv, int nth,
			   const char *pidfile)
{
	char names[4096] = "iommu-nestd.socket";
	pid_t pid = fork();

	if (pid == 0)
		exec_service(lfd, notify, argv);
	for (int i = 0; i < n_store; i++) {
		strncat(names, ",", sizeof(names) - strlen(names) - 1);
		strncat(names, store[i].name, sizeof(names) - strlen(names) - 1);
	}
	note("START %d %d %s", nth, (int)pid, names);
	if (pid > 0)
		write_pidfile(pidfile, pid);
	return pid;
}

static void drain_notify(int nfd)
{
	struct pollfd p = { .fd = nfd, .events = POLLIN };

	while (poll(&p, 1, 0) > 0)
		handle_notify(nfd);
}

/* Waits for the file hold (consumed); false if SIGTERM came first. */
static bool hold_restart(int nfd, const char *hold)
{
	note("HOLD %s", hold);
	while (!got_term) {
		struct pollfd p = {.fd = nfd, .events = POLLIN};

		if (!unlink(hold))
			return true;
		if (poll(&p, 1, 50) > 0)
			handle_notify(nfd);
	}
	return false;
}

int main(int argc, char **argv)
{
	const char *sock = NULL, *notify = NULL, *logpath = NULL, *pidfile = NULL, *hold = NULL;
	int max_starts = 3, starts = 0, status, lfd, nfd, i;
	pid_t child;

	for (i = 1; i < argc && strcmp(argv[i], "--"); i += 2) {
		if (i + 1 >= argc)
			return 2;
		if (!strcmp(argv[i], "--socket"))
			sock = argv[i + 1];
		else if (!strcmp(argv[i], "--notify"))
			notify = argv[i + 1];
		else if (!strcmp(argv[i], "--log"))
			logpath = argv[i + 1];
		else if (!strcmp(argv[i], "--pidfile"))
			pidfile = argv[i + 1];
		else if (!strcmp(argv[i], "--max-starts"))
			max_starts = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--hold-restart"))
			hold = argv[i + 1];
		else
			return 2;
	}
	if (!sock || !notify || !logpath || !pidfile || i + 1 >= argc) {
		fprintf(stderr, "usage: fake_systemd --socket P --notify P --log F --pidfile F "
				"[--max-starts N] [--hold-restart F] -- COMMAND ARGS...\n");
		return 2;
	}
	eventlog = fopen(logpath, "ae");
	lfd = unix_socket(sock, SOCK_SEQPACKET);
	nfd = unix_socket(notify, SOCK_DGRAM);
	if (!eventlog || lfd < 0 || nfd < 0) {
		perror("fake_systemd");
		return 1;
	}
	signal(SIGTERM, on_term);
	child = start_service(lfd, notify, argv + i + 1, ++starts, pidfile);
	for (;;) {
		struct pollfd p = { .fd = nfd, .events = POLLIN };
		pid_t w;

		if (poll(&p, 1, 50) > 0)
			handle_notify(nfd);
		if (got_term && child > 0) {
			kill(child, SIGTERM);
			got_term = 0;
		}
		w = waitpid(child, &status, WNOHANG);
		if (w != child)
			continue;
		/* What the service said before it died counts (FDSTORE=1). */
		drain_notify(nfd);
		if (WIFSIGNALED(status))
			note("EXIT %d signal %d", (int)child, WTERMSIG(status));
		else
			note("EXIT %d code %d", (int)child, WEXITSTATUS(status));
		if ((WIFSIGNALED(status) || WEXITSTATUS(status)) && starts < max_starts &&
		    (!hold || hold_restart(nfd, hold))) {
			child = start_service(lfd, notify, argv + i + 1, ++starts, pidfile);
			continue;
		}
		break;
	}
	note("LEFT %d", n_store);
	unlink(sock);
	unlink(notify);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
