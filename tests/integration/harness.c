/* SPDX-License-Identifier: MIT */
/*
 * Integration test harness: see harness.h. Everything a test opens is
 * tracked here so that the per-test teardown can close it even after a
 * fatal assertion jumped out of the test.
 */
#include "harness.h"

#include <CUnit/Basic.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef NESTD_DAEMON_PATH
#define NESTD_DAEMON_PATH "iommu-nestd"
#endif

#define IT_MAX_DAEMONS 8
#define IT_MAX_HANDLES 64
#define IT_MAX_RAW 64
#define IT_MAX_ARGS 64
#define IT_RX_MAX ((8u << 20) + 1)

static struct nestd *live_daemons[IT_MAX_DAEMONS];
static struct iommu_nest *live_handles[IT_MAX_HANDLES];
static int live_raw[IT_MAX_RAW];
static struct it_bystander *live_bystanders[IT_MAX_DAEMONS];
static unsigned n_skipped;
static unsigned n_harness_failures;

/* ---- small utilities ------------------------------------------------------ */

static bool wrapped(void)
{
	const char *w = getenv("NESTD_DAEMON_WRAPPER");

	return w && *w;
}

int it_timeout_ms(void)
{
	return wrapped() ? 120000 : 15000;
}

uint64_t it_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t it_bucket_max_granted(uint32_t rate, uint64_t elapsed_ns)
{
	/* The daemon refills rate/1000 requests per whole millisecond. */
	return rate + elapsed_ns / 1000000 * rate / 1000;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int it_write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	int rc = 0;

	if (!f)
		return -errno;
	if (fputs(text, f) == EOF)
		rc = -EIO;
	if (fclose(f) && !rc)
		rc = -errno;
	return rc;
}

char *it_read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	size_t len = 0, cap = 0, n;
	char *buf = NULL, *nb;

	if (!f)
		return NULL;
	do {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
	} while (n > 0);
	fclose(f);
	buf[len] = '\0';
	return buf;
}

void it_edit_config(struct nestd *d, const char *from, const char *to)
{
	char *cfg = it_read_file(d->cfg_path), *at, *out;

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	at = strstr(cfg, from);
	if (!at)
		fprintf(stderr, "config has no \"%s\":\n%s\n", from, cfg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(at);
	out = malloc(strlen(cfg) - strlen(from) + strlen(to) + 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(out);
	sprintf(out, "%.*s%s%s", (int)(at - cfg), cfg, to, at + strlen(from));
	CU_ASSERT_EQUAL_FATAL(it_write_file(d->cfg_path, out), 0);
	free(out);
	free(cfg);
}

/* Lines of the daemon's log that contain every one of the needles. */
static unsigned count_log_lines(const struct nestd *d, const char *a, const char *b)
{
	char *log = it_read_file(d->log_path), *line, *save = NULL;
	unsigned n = 0;

	if (!log)
		return 0;
	for (line = strtok_r(log, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		n += strstr(line, a) && (!b || strstr(line, b));
	free(log);
	return n;
}

bool it_sighup_reload(struct nestd *d)
{
	unsigned ok0 = count_log_lines(d, "event=config_reload", "configuration reloaded");
	unsigned bad0 = count_log_lines(d, "event=config_reload", "reload refused");

	CU_ASSERT_EQUAL_FATAL(kill(d->pid, SIGHUP), 0);
	for (int waited = 0; waited < it_timeout_ms(); waited += 10) {
		if (count_log_lines(d, "event=config_reload", "configuration reloaded") > ok0)
			return true;
		if (count_log_lines(d, "event=config_reload", "reload refused") > bad0)
			return false;
		poll(NULL, 0, 10);
	}
	CU_FAIL("the daemon logged no outcome of the reload");
	return false;
}

/* Appends s to the growing string *buf, turning the two characters \n into newlines. */
static void append(char **buf, size_t *len, const char *s, bool unescape)
{
	size_t add = strlen(s);
	char *p = realloc(*buf, *len + add + 2);

	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	*buf = p;
	for (size_t i = 0; i < add; i++) {
		if (unescape && s[i] == '\\' && s[i + 1] == 'n') {
			p[(*len)++] = '\n';
			i++;
			continue;
		}
		p[(*len)++] = s[i];
	}
	p[(*len)++] = '\n';
	p[*len] = '\0';
}

static const char *env_or(const char *name, const char *def)
{
	const char *v = getenv(name);

	return v && *v ? v : def;
}

static void dump_file(const char *path, const char *what)
{
	char line[1024];
	FILE *f = fopen(path, "r");

	if (!f)
		return;
	fprintf(stderr, "---- %s (%s) ----\n", what, path);
	while (fgets(line, sizeof(line), f))
		fputs(line, stderr);
	fprintf(stderr, "---- end of %s ----\n", what);
	fclose(f);
}

bool it_vm_contexts(void)
{
	const char *v = getenv("NESTD_VM_CONTEXTS");

	return !v || strcmp(v, "0") != 0;
}

int it_context_fds(void)
{
	return it_vm_contexts() ? 1 : 0;
}

bool it_kernel7_rules(const char *sim_kernel)
{
	const char *k = strcmp(env_or("NESTD_BACKEND", "sim"), "sim")
			    ? env_or("NESTD_KTEST_KERNEL", "6.12")
			    : (sim_kernel ? sim_kernel : "6.12");

	return !strcmp(k, "7.0") || !strcmp(k, "7.x");
}

int it_wrong_object_errno(const char *sim_kernel)
{
	return it_kernel7_rules(sim_kernel) ? -EINVAL : -ENOENT;
}

int it_dirty_walk_errno(const char *sim_kernel)
{
	return it_kernel7_rules(sim_kernel) ? 0 : -EINVAL;
}

/* ---- configuration --------------------------------------------------------- */

static char *compose_config(const struct nestd *d, const char *body)
{
	const char *backend = env_or("NESTD_BACKEND", "sim");
	const char *devices = getenv("NESTD_DEVICES");
	const char *extra = getenv("NESTD_CONFIG_EXTRA");
	char head[512];
	char *buf = NULL;
	size_t len = 0;

	snprintf(head, sizeof(head),
		 "[daemon]\nsocket = %s\nbackend = %s\nlog_level = debug\ntest_requests = true%s",
		 d->sock, backend,
		 /* The suites again in root mode, one iommufd for all (integration-root/). */
		 it_vm_contexts() ? "" : "\nvm_contexts = false");
	append(&buf, &len, head, false);
	if (body)
		append(&buf, &len, body, false);
	if (devices)
		append(&buf, &len, devices, true);
	else if (!strcmp(backend, "sim"))
		append(&buf, &len,
		       "[device " IT_VTD0 "]\nkind = vtd\n[device " IT_VTD1 "]\nkind = vtd\n"
		       "[device " IT_ST0 "]\nkind = selftest\n[device " IT_ST1 "]\nkind = selftest",
		       false);
	else
		append(&buf, &len,
		       "[device " IT_ST0 "]\nkind = selftest\n[device " IT_ST1 "]\nkind = selftest",
		       false);
	if (extra)
		append(&buf, &len, extra, true);
	return buf;
}

/* ---- daemon process --------------------------------------------------------- */

static int split_words(char *s, char **argv, int max)
{
	int n = 0;

	for (char *tok = strtok(s, " \t"); tok && n < max; tok = strtok(NULL, " \t"))
		argv[n++] = tok;
	return n;
}

static void exec_daemon(const struct nestd *d)
{
	char *argv[IT_MAX_ARGS];
	char *wrapper = strdup(env_or("NESTD_DAEMON_WRAPPER", ""));
	int n, fd;

	fd = open(d->log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0)
		_exit(126);
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || dup2(fd, STDIN_FILENO) < 0)
		_exit(126);
	n = wrapper ? split_words(wrapper, argv, IT_MAX_ARGS - 4) : 0;
	argv[n++] = (char *)env_or("NESTD_DAEMON", NESTD_DAEMON_PATH);
	argv[n++] = "--config";
	argv[n++] = (char *)d->cfg_path;
	argv[n] = NULL;
	execvp(argv[0], argv);
	fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

static int pidfd_of(pid_t pid)
{
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, pid, 0);
#else
	return -1;
#endif
}

/*
 * Waits up to timeout_ms for pid to exit; returns the exit code, 128+sig,
 * or -ETIMEDOUT. Sleeps in poll() on a pidfd, so it wakes at the exit.
 */
static int wait_exit(pid_t pid, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	int pfd = pidfd_of(pid), status;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			break;
		if (r < 0 && errno != EINTR) {
			status = -1;
			break;
		}
		if (now_ms() > deadline) {
			if (pfd >= 0)
				close(pfd);
			return -ETIMEDOUT;
		}
		if (pfd >= 0) {
			struct pollfd p = { .fd = pfd, .events = POLLIN };

			poll(&p, 1, 100);
		} else {
			usleep(10000);
		}
	}
	if (pfd >= 0)
		close(pfd);
	if (status == -1)
		return -1;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

int it_plain_connect(const char *path, bool nonblock)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);

	if (fd < 0)
		return -errno;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/* Bounded polling until the socket accepts; false if the daemon died or timed out. */
static bool wait_socket(struct nestd *d)
{
	int64_t deadline = now_ms() + it_timeout_ms();
	int pfd = pidfd_of(d->pid), status;
	bool ok = false;

	while (now_ms() < deadline) {
		int fd = it_plain_connect(d->sock, false);

		if (fd >= 0) {
			close(fd);
			ok = true;
			break;
		}
		if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
			d->running = false;
			d->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) :
							   128 + WTERMSIG(status);
			break;
		}
		if (pfd >= 0) {
			struct pollfd p = { .fd = pfd, .events = POLLIN };

			poll(&p, 1, 10);
		} else {
			usleep(10000);
		}
	}
	if (pfd >= 0)
		close(pfd);
	return ok;
}

static void track_daemon(struct nestd *d, bool add)
{
	for (int i = 0; i < IT_MAX_DAEMONS; i++) {
		if (add && !live_daemons[i]) {
			live_daemons[i] = d;
			return;
		}
		if (!add && live_daemons[i] == d) {
			live_daemons[i] = NULL;
			return;
		}
	}
	CU_ASSERT_FATAL(!add); /* too many daemons in one test */
}

static void remove_files(struct nestd *d)
{
	unlink(d->cfg_path);
	unlink(d->log_path);
	unlink(d->sock);
	rmdir(d->dir);
}

/*
 * Forks the daemon on d's config (tracked for the teardown if track) and
 * waits (bounded, fatal) until its socket accepts.
 */
static void spawn(struct nestd *d, bool track)
{
	fflush(NULL);
	d->pid = fork();
	CU_ASSERT_FATAL(d->pid >= 0);
	if (d->pid == 0)
		exec_daemon(d);
	d->running = true;
	if (track)
		track_daemon(d, true);
	if (!wait_socket(d)) {
		fprintf(stderr, "daemon did not come up on %s\n", d->sock);
		dump_file(d->cfg_path, "config");
		dump_file(d->log_path, "daemon log");
		CU_FAIL_FATAL("daemon did not start");
	}
}

struct nestd *it_start(const char *body)
{
	struct nestd *d = calloc(1, sizeof(*d));
	char *cfg;

	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	snprintf(d->dir, sizeof(d->dir), "%s/nestd-it.XXXXXX", env_or("TMPDIR", "/tmp"));
	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(d->dir));
	snprintf(d->sock, sizeof(d->sock), "%s/s", d->dir);
	snprintf(d->cfg_path, sizeof(d->cfg_path), "%s/nestd.conf", d->dir);
	snprintf(d->log_path, sizeof(d->log_path), "%s/nestd.log", d->dir);
	cfg = compose_config(d, body);
	CU_ASSERT_EQUAL_FATAL(it_write_file(d->cfg_path, cfg), 0);
	free(cfg);

	spawn(d, true);
	return d;
}

void it_crash(struct nestd *d)
{
	CU_ASSERT_FATAL(d->running);
	kill(d->pid, SIGKILL);
	d->exit_code = wait_exit(d->pid, it_timeout_ms());
	d->running = false;
	CU_ASSERT_EQUAL(d->exit_code, 128 + SIGKILL);
}

void it_restart(struct nestd *d)
{
	CU_ASSERT_FATAL(!d->running);
	spawn(d, false); /* still tracked since it_start() */
}

int it_stop(struct nestd *d)
{
	int code;

	if (!d)
		return -1;
	track_daemon(d, false);
	if (d->running) {
		kill(d->pid, SIGCONT);
		kill(d->pid, SIGTERM);
		code = wait_exit(d->pid, it_timeout_ms());
		if (code == -ETIMEDOUT) {
			fprintf(stderr, "daemon %d ignored SIGTERM; killing it\n", (int)d->pid);
			kill(d->pid, SIGKILL);
			wait_exit(d->pid, it_timeout_ms());
		}
	} else {
		code = d->exit_code ? d->exit_code : -1;
	}
	if (code != 0) {
		fprintf(stderr, "daemon exit code %d (wanted a clean 0)\n", code);
		dump_file(d->log_path, "daemon log");
	} else if (getenv("NESTD_KEEP_LOGS")) {
		dump_file(d->log_path, "daemon log");
	}
	remove_files(d);
	free(d);
	return code;
}

void it_stop_ok(struct nestd *d)
{
	CU_ASSERT_EQUAL(it_stop(d), 0);
}

/* Returns only once the daemon is really stopped (waitpid reports it). */
void it_freeze(struct nestd *d)
{
	int status = 0;
	pid_t r;

	CU_ASSERT_EQUAL_FATAL(kill(d->pid, SIGSTOP), 0);
	do {
		r = waitpid(d->pid, &status, WUNTRACED);
	} while (r < 0 && errno == EINTR);
	CU_ASSERT_EQUAL_FATAL(r, d->pid);
	CU_ASSERT_FATAL(WIFSTOPPED(status));
}

void it_thaw(struct nestd *d)
{
	CU_ASSERT_EQUAL_FATAL(kill(d->pid, SIGCONT), 0);
}

/* ---- client library helpers ------------------------------------------------- */

static void track_handle(struct iommu_nest *h, bool add)
{
	for (int i = 0; i < IT_MAX_HANDLES; i++) {
		if (add ? !live_handles[i] : live_handles[i] == h) {
			live_handles[i] = add ? h : NULL;
			return;
		}
	}
	CU_ASSERT_FATAL(!add);
}

struct iommu_nest *it_connect(struct nestd *d, const char *name)
{
	struct iommu_nest *h = NULL;
	int rc = iommu_nest_connect(d->sock, name, &h);

	if (rc)
		fprintf(stderr, "iommu_nest_connect(%s): %s\n", d->sock, strerror(-rc));
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	track_handle(h, true);
	return h;
}

struct iommu_nest *it_connect_as(struct nestd *d, const char *name, uid_t uid, gid_t gid)
{
	struct iommu_nest *h = NULL;
	int rc;

	/* The socket's directory and the socket itself must let that user in. */
	CU_ASSERT_EQUAL_FATAL(chmod(d->dir, 0711), 0);
	CU_ASSERT_EQUAL_FATAL(chmod(d->sock, 0666), 0);
	/* SO_PEERCRED records the effective ids at connect(): switch, connect, switch back. */
	CU_ASSERT_EQUAL_FATAL(setegid(gid), 0);
	CU_ASSERT_EQUAL_FATAL(seteuid(uid), 0);
	rc = iommu_nest_connect(d->sock, name, &h);
	CU_ASSERT_EQUAL_FATAL(seteuid(0), 0);
	CU_ASSERT_EQUAL_FATAL(setegid(0), 0);
	if (rc)
		fprintf(stderr, "iommu_nest_connect(%s) as uid %u: %s\n", d->sock, (unsigned)uid,
			strerror(-rc));
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	track_handle(h, true);
	return h;
}

void it_close(struct iommu_nest *h)
{
	track_handle(h, false);
	iommu_nest_close(h);
}

bool it_has_cap(struct iommu_nest *h, uint32_t cap)
{
	return (iommu_nest_capabilities(h) & cap) == cap;
}

bool it_has_device(struct iommu_nest *h, const char *dev)
{
	for (size_t i = 0; i < iommu_nest_device_count(h); i++)
		if (!strcmp(iommu_nest_device(h, i), dev))
			return true;
	return false;
}

bool it_wait_sessions(struct iommu_nest *h, uint64_t want)
{
	for (int i = 0; i < it_timeout_ms() / 10; i++) {
		if (it_stats(h).sessions_active == want)
			return true;
		usleep(10000);
	}
	return false;
}

bool it_client_named(struct iommu_nest *h, const char *name, struct iommu_nest_client_info *out)
{
	struct iommu_nest_client_info *c = NULL;
	bool found = false;
	size_t n = 0;

	CU_ASSERT_EQUAL_FATAL(iommu_nest_list_clients(h, &c, &n), 0);
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(c[i].name, name)) {
			*out = c[i];
			found = true;
		}
	}
	free(c);
	return found;
}

uint32_t it_alloc_vtd(struct iommu_nest *h, const char *dev)
{
	uint32_t id = 0;
	int rc = iommu_nest_alloc_vtd_s1(h, dev, 0, 0x10000000, IT_VTD_AW, &id);

	if (rc)
		fprintf(stderr, "alloc vtd on %s: %s\n", dev, iommu_nest_last_error(h));
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	CU_ASSERT_FATAL(id != 0);
	return id;
}

uint32_t it_alloc_st(struct iommu_nest *h, const char *dev, uint32_t iotlb)
{
	uint32_t id = 0;
	int rc = iommu_nest_alloc_selftest(h, dev, iotlb, &id);

	if (rc)
		fprintf(stderr, "alloc selftest on %s: %s\n", dev, iommu_nest_last_error(h));
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	CU_ASSERT_FATAL(id != 0);
	return id;
}

struct iommu_nest_stats it_stats(struct iommu_nest *h)
{
	struct iommu_nest_stats st;

	memset(&st, 0, sizeof(st));
	CU_ASSERT_EQUAL_FATAL(iommu_nest_stats(h, &st), 0);
	return st;
}

uint32_t it_parent_of(struct iommu_nest *h, uint32_t id)
{
	struct iommu_nest_hwpt_info *list;
	uint32_t parent = 0;
	size_t n;

	CU_ASSERT_EQUAL_FATAL(iommu_nest_list_hwpts(h, &list, &n), 0);
	for (size_t i = 0; i < n; i++)
		if (list[i].id == id)
			parent = list[i].parent_id;
	free(list);
	CU_ASSERT_FATAL(parent != 0);
	return parent;
}

static void query(struct iommu_nest *h, uint32_t hwpt, uint64_t addr, uint64_t npages,
		  uint64_t *iotlb, uint64_t *psc)
{
	int rc = iommu_nest_sim_query(h, hwpt, addr, npages, iotlb, psc);

	if (rc)
		fprintf(stderr, "sim_query: %s\n", iommu_nest_last_error(h));
	CU_ASSERT_EQUAL_FATAL(rc, 0);
}

uint64_t it_iotlb_pages(struct iommu_nest *h, uint32_t hwpt, uint64_t addr, uint64_t npages)
{
	uint64_t iotlb = UINT64_MAX, psc = UINT64_MAX;

	query(h, hwpt, addr, npages, &iotlb, &psc);
	return iotlb;
}

uint64_t it_psc_pages(struct iommu_nest *h, uint32_t hwpt, uint64_t addr, uint64_t npages)
{
	uint64_t iotlb = UINT64_MAX, psc = UINT64_MAX;

	query(h, hwpt, addr, npages, &iotlb, &psc);
	return psc;
}

void it_populate(struct iommu_nest *h, uint32_t hwpt, uint64_t addr, uint64_t npages,
		 uint32_t kind)
{
	int rc = iommu_nest_sim_populate(h, hwpt, addr, npages, kind);

	if (rc)
		fprintf(stderr, "sim_populate: %s\n", iommu_nest_last_error(h));
	CU_ASSERT_EQUAL_FATAL(rc, 0);
}

/* ---- the bystander ---- */

struct it_bystander it_bystander_open(struct nestd *d)
{
	struct it_bystander b = { .h = it_connect(d, "bystander") };

	b.st = it_alloc_st(b.h, IT_ST1, 0x5eed);
	return b;
}

struct it_bystander *it_bystander_new(struct nestd *d)
{
	struct it_bystander *b = calloc(1, sizeof(*b));
	int slot = -1;

	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	for (int i = 0; i < IT_MAX_DAEMONS && slot < 0; i++)
		if (!live_bystanders[i])
			slot = i;
	if (slot < 0)
		free(b);
	CU_ASSERT_FATAL(slot >= 0);
	live_bystanders[slot] = b;
	*b = it_bystander_open(d);
	return b;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

uint64_t it_bystander_report(struct it_bystander *b, const char *what)
{
	uint32_t n = b->n_lat < IT_BYSTANDER_SAMPLES ? b->n_lat : IT_BYSTANDER_SAMPLES;
	uint64_t p50, p99, max;

	if (!n) {
		fprintf(stderr, "    %s: no bystander round trips\n", what);
		return 0;
	}
	qsort(b->lat_ns, n, sizeof(b->lat_ns[0]), cmp_u64);
	p50 = b->lat_ns[(n - 1) / 2];
	p99 = b->lat_ns[(uint64_t)(n - 1) * 99 / 100];
	max = b->lat_ns[n - 1];
	fprintf(stderr, "    %s: bystander round trip p50 %.1f us, p99 %.1f us, max %.1f us (%u)\n",
		what, p50 / 1e3, p99 / 1e3, max / 1e3, n);
	b->n_lat = 0;
	return p99;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One invalidation with an exactly known outcome, checked in full. */
void it_bystander_check(struct it_bystander *b)
{
	struct iommu_nest_selftest_inv e[3] = { { 0, b->round % 4 }, { 1u << 5, 0 }, { 0, 1 } };
	struct iommu_nest_entry_result res[3];
	struct iommu_nest_inv_summary sum;
	struct it_expect want[3] = {
		{ IOMMU_NEST_ENTRY_DONE, 0, 0 },
		{ IOMMU_NEST_ENTRY_FAILED, -EOPNOTSUPP, 0 },
		{ IOMMU_NEST_ENTRY_NOT_ATTEMPTED, 0, 0 },
	};
	int rc;

	uint64_t t0 = mono_ns();

	rc = iommu_nest_invalidate(b->h, b->st, IOMMU_NEST_INV_DATA_SELFTEST, e, 3, 0, res, &sum);
	if (b->n_lat < IT_BYSTANDER_SAMPLES)
		b->lat_ns[b->n_lat] = mono_ns() - t0;
	b->n_lat++;
	CU_ASSERT_EQUAL(rc, -EOPNOTSUPP);
	CU_ASSERT_EQUAL(sum.entries_handled, 1);
	it_check_results(res, want, 3);
	if (it_has_cap(b->h, IOMMU_NEST_CAP_CHECK_IOTLB))
		CU_ASSERT_EQUAL(iommu_nest_check_iotlb(b->h, b->st, b->round % 4, 0), 0);
	b->round++;
}

/* ---- the daemon seen from outside ---- */

long it_daemon_rss_kib(const struct nestd *d)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)d->pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

int it_daemon_fds(const struct nestd *d)
{
	char path[64];
	struct dirent *de;
	DIR *dir;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)d->pid);
	dir = opendir(path);
	if (!dir)
		return -1;
	while ((de = readdir(dir)))
		n += de->d_name[0] != '.';
	closedir(dir);
	return n;
}

/* Sanitizers and valgrind keep freed memory on purpose: RSS means nothing there. */
bool it_rss_meaningful(void)
{
#if defined(__SANITIZE_ADDRESS__)
	return false;
#else
	const char *w = getenv("NESTD_DAEMON_WRAPPER");

	return !(w && *w);
#endif
}

/* ---- raw packets -------------------------------------------------------------- */

static void track_raw(int fd, bool add)
{
	for (int i = 0; i < IT_MAX_RAW; i++) {
		if (add ? live_raw[i] < 0 : live_raw[i] == fd) {
			live_raw[i] = add ? fd : -1;
			return;
		}
	}
	CU_ASSERT_FATAL(!add);
}

int it_raw_connect(struct nestd *d)
{
	int fd = it_plain_connect(d->sock, false);

	CU_ASSERT_FATAL(fd >= 0);
	track_raw(fd, true);
	return fd;
}

int it_raw_connect_as(struct nestd *d, uid_t uid, gid_t gid)
{
	int fd;

	CU_ASSERT_EQUAL_FATAL(chmod(d->dir, 0711), 0);
	CU_ASSERT_EQUAL_FATAL(chmod(d->sock, 0666), 0);
	CU_ASSERT_EQUAL_FATAL(setegid(gid), 0);
	CU_ASSERT_EQUAL_FATAL(seteuid(uid), 0);
	fd = it_plain_connect(d->sock, false);
	CU_ASSERT_EQUAL_FATAL(seteuid(0), 0);
	CU_ASSERT_EQUAL_FATAL(setegid(0), 0);
	CU_ASSERT_FATAL(fd >= 0);
	track_raw(fd, true);
	return fd;
}

int it_send_hello(int fd, uint64_t id, const char *name)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__Hello hello = IOMMU_NEST__HELLO__INIT;

	hello.version = IOMMU_NEST_PROTOCOL_VERSION;
	hello.client_name = (char *)name;
	req.id = id;
	req.body_case = IOMMU_NEST__REQUEST__BODY_HELLO;
	req.hello = &hello;
	return it_raw_send_req(fd, &req);
}

void it_raw_close(int fd)
{
	track_raw(fd, false);
	close(fd);
}

int it_raw_send_fds(int fd, const void *buf, size_t len, const int *fds, int nfds)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 64)];
	} control;
	ssize_t n;

	if (nfds > 64)
		return -EINVAL;
	if (nfds) {
		struct cmsghdr *c;

		memset(&control, 0, sizeof(control));
		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	n = sendmsg(fd, &mh, MSG_NOSIGNAL);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

int it_raw_send(int fd, const void *buf, size_t len)
{
	return it_raw_send_fds(fd, buf, len, NULL, 0);
}

int it_raw_send_req(int fd, const IommuNest__Request *req)
{
	size_t len = iommu_nest__request__get_packed_size(req);
	uint8_t *buf = malloc(len ? len : 1);
	int rc;

	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	iommu_nest__request__pack(req, buf);
	rc = it_raw_send(fd, buf, len);
	free(buf);
	return rc;
}

IommuNest__Reply *it_raw_recv(int fd, int *err)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	IommuNest__Reply *rep;
	uint8_t *buf;
	ssize_t n;
	int rc;

	*err = 0;
	rc = poll(&p, 1, it_timeout_ms());
	if (rc == 0) {
		*err = -ETIMEDOUT;
		return NULL;
	}
	if (rc < 0) {
		*err = -errno;
		return NULL;
	}
	buf = malloc(IT_RX_MAX);
	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	n = recv(fd, buf, IT_RX_MAX, MSG_TRUNC);
	if (n <= 0) {
		/* EOF, or a reset peer: both mean the daemon closed us. */
		*err = n == 0 || errno == ECONNRESET ? 0 : -errno;
		free(buf);
		return NULL;
	}
	rep = (size_t)n > IT_RX_MAX ? NULL : iommu_nest__reply__unpack(NULL, (size_t)n, buf);
	if (!rep)
		*err = -EPROTO;
	free(buf);
	return rep;
}

IommuNest__Reply *it_raw_call(int fd, IommuNest__Request *req, uint64_t id)
{
	IommuNest__Reply *rep;
	int err;

	req->id = id;
	CU_ASSERT_EQUAL_FATAL(it_raw_send_req(fd, req), 0);
	rep = it_raw_recv(fd, &err);
	if (!rep)
		fprintf(stderr, "raw call %llu: no reply (%d)\n", (unsigned long long)id, err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(rep);
	CU_ASSERT_EQUAL(rep->id, id);
	return rep;
}

void it_raw_hello(int fd)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__Hello hello = IOMMU_NEST__HELLO__INIT;
	IommuNest__Reply *rep;

	hello.version = IOMMU_NEST_PROTOCOL_VERSION;
	hello.client_name = "raw";
	req.body_case = IOMMU_NEST__REQUEST__BODY_HELLO;
	req.hello = &hello;
	rep = it_raw_call(fd, &req, 1);
	CU_ASSERT_EQUAL(rep->status, 0);
	CU_ASSERT_EQUAL(rep->body_case, IOMMU_NEST__REPLY__BODY_HELLO);
	iommu_nest__reply__free_unpacked(rep, NULL);
}

uint32_t it_raw_alloc_st(int fd, const char *dev, uint64_t id)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__Alloc alloc = IOMMU_NEST__ALLOC__INIT;
	IommuNest__SelftestData data = IOMMU_NEST__SELFTEST_DATA__INIT;
	IommuNest__Reply *rep;
	uint32_t hwpt;

	alloc.device = (char *)dev;
	alloc.data_type = IOMMU_NEST_HWPT_DATA_SELFTEST;
	alloc.data_case = IOMMU_NEST__ALLOC__DATA_SELFTEST;
	alloc.selftest = &data;
	req.body_case = IOMMU_NEST__REQUEST__BODY_ALLOC;
	req.alloc = &alloc;
	rep = it_raw_call(fd, &req, id);
	CU_ASSERT_EQUAL_FATAL(rep->status, 0);
	CU_ASSERT_EQUAL_FATAL(rep->body_case, IOMMU_NEST__REPLY__BODY_ALLOC);
	hwpt = rep->alloc->hwpt_id;
	iommu_nest__reply__free_unpacked(rep, NULL);
	return hwpt;
}

bool it_raw_eof(int fd)
{
	IommuNest__Reply *rep;
	int err;

	rep = it_raw_recv(fd, &err);
	if (rep) {
		fprintf(stderr, "expected EOF, got reply id %llu status %d\n",
			(unsigned long long)rep->id, rep->status);
		iommu_nest__reply__free_unpacked(rep, NULL);
		return false;
	}
	return err == 0;
}

/* ---- results ---------------------------------------------------------------- */

static const char *state_name(uint32_t s)
{
	switch (s) {
	case IOMMU_NEST_ENTRY_NOT_ATTEMPTED: return "NOT_ATTEMPTED";
	case IOMMU_NEST_ENTRY_DONE: return "DONE";
	case IOMMU_NEST_ENTRY_FAILED: return "FAILED";
	default: return "?";
	}
}

void it_check_results_at(const struct iommu_nest_entry_result *got,
			 const struct it_expect *want, size_t n, const char *file, int line)
{
	for (size_t i = 0; i < n; i++) {
		bool ok = got[i].state == want[i].state && got[i].error == want[i].error &&
			  got[i].hw_error == want[i].hw_error;

		if (!ok)
			fprintf(stderr,
				"%s:%d: entry %zu: got %s error %d hw_error %#x, want %s error %d hw_error %#x\n",
				file, line, i, state_name(got[i].state), got[i].error,
				got[i].hw_error, state_name(want[i].state), want[i].error,
				want[i].hw_error);
		CU_assertImplementation(ok, (unsigned)line, "entry result as expected", file, "",
					CU_FALSE);
	}
}

void it_check_all_not_attempted_at(const struct iommu_nest_entry_result *got, size_t n,
				   const char *file, int line)
{
	for (size_t i = 0; i < n; i++) {
		bool ok = got[i].state == IOMMU_NEST_ENTRY_NOT_ATTEMPTED && !got[i].error;

		if (!ok)
			fprintf(stderr, "%s:%d: entry %zu: got %s error %d, want NOT_ATTEMPTED\n",
				file, line, i, state_name(got[i].state), got[i].error);
		CU_assertImplementation(ok, (unsigned)line, "entry not attempted", file, "",
					CU_FALSE);
	}
}

/* ---- CUnit wrapper ------------------------------------------------------------ */

void it_note_skip(const char *test, const char *why)
{
	n_skipped++;
	fprintf(stderr, "\n  SKIP %s: %s\n", test, why);
}

static void setup(void)
{
}

/* Closes what the test left open and stops its daemons, which must exit 0. */
static void teardown(void)
{
	for (int i = 0; i < IT_MAX_HANDLES; i++) {
		if (live_handles[i]) {
			iommu_nest_close(live_handles[i]);
			live_handles[i] = NULL;
		}
	}
	for (int i = 0; i < IT_MAX_RAW; i++) {
		if (live_raw[i] >= 0) {
			close(live_raw[i]);
			live_raw[i] = -1;
		}
	}
	/* Their handles were closed above, with the other tracked ones. */
	for (int i = 0; i < IT_MAX_DAEMONS; i++) {
		free(live_bystanders[i]);
		live_bystanders[i] = NULL;
	}
	for (int i = 0; i < IT_MAX_DAEMONS; i++) {
		if (live_daemons[i]) {
			int code = it_stop(live_daemons[i]);

			if (code) {
				n_harness_failures++;
				CU_FAIL("daemon did not shut down cleanly (exit code != 0)");
			}
		}
	}
}

int it_main(int argc, char **argv, const char *suite_name, const struct it_case *cases)
{
	unsigned n_run = 0, failures;
	CU_pSuite suite;

	signal(SIGPIPE, SIG_IGN);
	for (int i = 0; i < IT_MAX_RAW; i++)
		live_raw[i] = -1;
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	suite = CU_add_suite_with_setup_and_teardown(suite_name, NULL, NULL, setup, teardown);
	if (!suite)
		goto fail;
	for (const struct it_case *c = cases; c->name; c++) {
		if (argc > 1 && strcmp(argv[1], c->name))
			continue;
		if (!CU_add_test(suite, c->name, c->fn))
			goto fail;
		n_run++;
	}
	if (!n_run) {
		fprintf(stderr, "no test named %s\n", argc > 1 ? argv[1] : "(any)");
		CU_cleanup_registry();
		return 2;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = CU_get_number_of_failures() + CU_get_number_of_tests_failed() +
		   n_harness_failures;
	if (CU_get_number_of_suites_failed())
		failures++;
	CU_cleanup_registry();
	if (failures)
		return 1;
	if (n_skipped && n_skipped == n_run)
		return 77;
	return 0;
fail:
	fprintf(stderr, "CUnit: %s\n", CU_get_error_msg());
	CU_cleanup_registry();
	return 2;
}
