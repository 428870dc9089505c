/* SPDX-License-Identifier: MIT */
/*
 * iommu-nestctl against the real daemon: the operator commands (status,
 * clients, hwpts, stats, metrics, probe, an admin's invalidate) run as a
 * child process on the harness's socket, and what they print - tables,
 * --json, NDJSON, OpenMetrics - is checked against what the test's own
 * library clients did. Also the admin gate from an unprivileged CLI
 * (setpriv to nobody), and list paging under a small max_message_size.
 *
 * Environment: NESTD_CTL overrides the CLI binary (default: the build
 * tree's), NESTD_OPENMETRICS_CHECK the validator script.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "harness.h"

#ifndef NESTD_CTL_PATH
#define NESTD_CTL_PATH "iommu-nestctl"
#endif
#ifndef NESTD_OPENMETRICS_CHECK
#define NESTD_OPENMETRICS_CHECK "check-openmetrics.py"
#endif

#define PYTHON	 "/usr/bin/python3"
#define NOBODY	 65534
#define MAX_ARGS 48

/* ---- Running a command ------------------------------------------------------ */

struct run {
	int code; /* exit code, 128 + signal, -1: could not run or timed out */
	char *out;
	char *err;
	char cmd[512]; /* for failure messages */
};

static const char *env_or(const char *name, const char *def)
{
	const char *v = getenv(name);

	return v && *v ? v : def;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct sink {
	int fd;
	char *buf;
	size_t len;
};

/* Reads what is there; false at EOF or error (fd closed then). */
static bool drain(struct sink *s)
{
	char tmp[4096];
	ssize_t n = read(s->fd, tmp, sizeof(tmp));
	char *p;

	if (n < 0 && errno == EINTR)
		return true;
	if (n <= 0) {
		close(s->fd);
		s->fd = -1;
		return false;
	}
	p = realloc(s->buf, s->len + (size_t)n + 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	memcpy(p + s->len, tmp, (size_t)n);
	s->buf = p;
	s->len += (size_t)n;
	p[s->len] = '\0';
	return true;
}

static void exec_child(char *const argv[], const char *input, int out, int err)
{
	int in = open(input ? input : "/dev/null", O_RDONLY | O_CLOEXEC);

	if (in < 0 || dup2(in, STDIN_FILENO) < 0 || dup2(out, STDOUT_FILENO) < 0 ||
	    dup2(err, STDERR_FILENO) < 0)
		_exit(126);
	execvp(argv[0], argv);
	fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

/* Collects both pipes until EOF or the deadline; then reaps the child. */
static int collect(pid_t pid, struct sink *o, struct sink *e)
{
	int64_t deadline = now_ms() + 2 * it_timeout_ms();
	int status;

	while (o->fd >= 0 || e->fd >= 0) {
		struct pollfd p[2] = {{.fd = o->fd, .events = POLLIN},
				      {.fd = e->fd, .events = POLLIN}};
		int64_t left = deadline - now_ms();

		if (left <= 0) {
			fprintf(stderr, "command timed out; killing it\n");
			kill(pid, SIGKILL);
			break;
		}
		if (poll(p, 2, (int)left) < 0 && errno != EINTR)
			break;
		if (p[0].revents)
			drain(o);
		if (p[1].revents)
			drain(e);
	}
	if (o->fd >= 0)
		close(o->fd);
	if (e->fd >= 0)
		close(e->fd);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (now_ms() > deadline)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Runs argv (NULL-terminated) with stdin from input (NULL: /dev/null). */
static struct run run_argv(char *const argv[], const char *input)
{
	struct run r = {.code = -1};
	struct sink o = {.fd = -1}, e = {.fd = -1};
	int po[2], pe[2];
	size_t off = 0;
	pid_t pid;

	for (int i = 0; argv[i] && off < sizeof(r.cmd); i++)
		off += (size_t)snprintf(r.cmd + off, sizeof(r.cmd) - off, "%s%s", i ? " " : "",
					argv[i]);
	CU_ASSERT_EQUAL_FATAL(pipe2(po, O_CLOEXEC), 0);
	CU_ASSERT_EQUAL_FATAL(pipe2(pe, O_CLOEXEC), 0);
	fflush(NULL);
	pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0)
		exec_child(argv, input, po[1], pe[1]);
	close(po[1]);
	close(pe[1]);
	o.fd = po[0];
	e.fd = pe[0];
	r.code = collect(pid, &o, &e);
	r.out = o.buf ? o.buf : strdup("");
	r.err = e.buf ? e.buf : strdup("");
	CU_ASSERT_PTR_NOT_NULL_FATAL(r.out);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r.err);
	return r;
}

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

static void dump_run(const struct run *r, const char *what, int line)
{
	fprintf(stderr,
		"\ntest_cli.c:%d: %s failed\n  command: %s\n  exit code: %d\n"
		"---- stdout ----\n%s---- stderr ----\n%s---- end ----\n",
		line, what, r->cmd, r->code, r->out ? r->out : "", r->err ? r->err : "");
}

/* An assertion about a run that prints the run's output when it fails. */
#define RUN_ASSERT(r, cond)                                                                        \
	do {                                                                                       \
		bool ok_ = (cond);                                                                 \
		if (!ok_)                                                                          \
			dump_run(&(r), #cond, __LINE__);                                           \
		CU_assertImplementation(ok_, __LINE__, #cond, __FILE__, "", CU_FALSE);             \
	} while (0)

static const char *ctl_path(void)
{
	return env_or("NESTD_CTL", NESTD_CTL_PATH);
}

/*
 * iommu-nestctl --socket S ARGS... as this process's user or, with nobody,
 * through setpriv as uid/gid 65534 without supplementary groups.
 */
static struct run ctl_v(struct nestd *d, bool nobody, va_list ap)
{
	char *argv[MAX_ARGS];
	const char *a;
	int n = 0;

	if (nobody) {
		argv[n++] = "setpriv";
		argv[n++] = "--reuid=65534";
		argv[n++] = "--regid=65534";
		argv[n++] = "--clear-groups";
	}
	argv[n++] = (char *)ctl_path();
	argv[n++] = "--socket";
	argv[n++] = d->sock;
	while ((a = va_arg(ap, const char *)) && n < MAX_ARGS - 1)
		argv[n++] = (char *)a;
	argv[n] = NULL;
	return run_argv(argv, NULL);
}

static struct run ctl_as(struct nestd *d, bool nobody, ...)
{
	struct run r;
	va_list ap;

	va_start(ap, nobody);
	r = ctl_v(d, nobody, ap);
	va_end(ap);
	return r;
}

#define CTL(d, ...)	   ctl_as((d), false, __VA_ARGS__, (const char *)NULL)
#define CTL_NOBODY(d, ...) ctl_as((d), true, __VA_ARGS__, (const char *)NULL)

/* ---- JSON ---------------------------------------------------------------------- */

/* The run's stdout as one JSON document: a parse failure fails the test. */
static json_object *parse_json_text(const struct run *r, const char *text, int line)
{
	enum json_tokener_error jerr = json_tokener_success;
	json_object *o = json_tokener_parse_verbose(text, &jerr);

	if (!o) {
		fprintf(stderr, "JSON does not parse: %s\n", json_tokener_error_desc(jerr));
		dump_run(r, "JSON parse", line);
	}
	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	return o;
}
#define PARSE_JSON(r) parse_json_text(&(r), (r).out, __LINE__)

static json_object *jget(json_object *o, const char *key)
{
	json_object *v = NULL;
	bool found = o && json_object_object_get_ex(o, key, &v);

	if (!found)
		fprintf(stderr, "JSON: no key \"%s\" in %s\n", key,
			o ? json_object_to_json_string(o) : "(null)");
	CU_ASSERT(found);
	return v;
}

static uint64_t ju(json_object *o, const char *key)
{
	json_object *v = jget(o, key);

	CU_ASSERT(json_object_is_type(v, json_type_int));
	return json_object_get_uint64(v);
}

static int64_t ji(json_object *o, const char *key)
{
	json_object *v = jget(o, key);

	CU_ASSERT(json_object_is_type(v, json_type_int));
	return json_object_get_int64(v);
}

static const char *js(json_object *o, const char *key)
{
	json_object *v = jget(o, key);
	const char *s = json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;

	CU_ASSERT_PTR_NOT_NULL(s);
	return s ? s : "";
}

static bool jb(json_object *o, const char *key)
{
	json_object *v = jget(o, key);

	CU_ASSERT(json_object_is_type(v, json_type_boolean));
	return json_object_get_boolean(v);
}

static json_object *jarr(json_object *o, const char *key)
{
	json_object *v = key ? jget(o, key) : o;

	CU_ASSERT_FATAL(json_object_is_type(v, json_type_array));
	return v;
}

/* The element of array a whose key is the string want (NULL: none). */
static json_object *find_str(json_object *a, const char *key, const char *want)
{
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		json_object *e = json_object_array_get_idx(a, i), *v;

		if (json_object_object_get_ex(e, key, &v) &&
		    json_object_is_type(v, json_type_string) &&
		    !strcmp(json_object_get_string(v), want))
			return e;
	}
	return NULL;
}

/* The element of array a whose key is the number want (NULL: none). */
static json_object *find_num(json_object *a, const char *key, uint64_t want)
{
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		json_object *e = json_object_array_get_idx(a, i), *v;

		if (json_object_object_get_ex(e, key, &v) &&
		    json_object_is_type(v, json_type_int) && json_object_get_uint64(v) == want)
			return e;
	}
	return NULL;
}

/* ---- Tables ----------------------------------------------------------------------- */

#define MAX_FIELDS 24
#define FIELD_LEN  96

struct fields {
	int n;
	char f[MAX_FIELDS][FIELD_LEN];
};

/* Splits one line (up to '\n') at whitespace. */
static struct fields split_line(const char *line)
{
	struct fields fs = {0};
	const char *p = line;

	while (*p && *p != '\n' && fs.n < MAX_FIELDS) {
		size_t len;

		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p || *p == '\n')
			break;
		len = strcspn(p, " \t\n");
		snprintf(fs.f[fs.n++], FIELD_LEN, "%.*s", (int)len, p);
		p += len;
	}
	return fs;
}

static const char *next_line(const char *p)
{
	const char *nl = strchr(p, '\n');

	return nl ? nl + 1 : NULL;
}

static int column(const struct fields *h, const char *name)
{
	for (int i = 0; i < h->n; i++)
		if (!strcmp(h->f[i], name))
			return i;
	return -1;
}

/*
 * The cell in column col of the row whose column keycol reads key, in the
 * table under the first header line that starts with head0 and names both
 * columns (the table ends at a blank line). "" if there is no such cell.
 */
static const char *cell(const char *text, const char *head0, const char *keycol, const char *key,
			const char *col, char *buf, size_t len)
{
	const char *p = text;
	int ki = -1, ci = -1;

	snprintf(buf, len, "%s", "");
	for (; p; p = next_line(p)) {
		struct fields f = split_line(p);

		if (ki < 0) {
			if (f.n && !strcmp(f.f[0], head0) && column(&f, keycol) >= 0 &&
			    column(&f, col) >= 0) {
				ki = column(&f, keycol);
				ci = column(&f, col);
			}
			continue;
		}
		if (!f.n)
			break;
		if (ki < f.n && ci < f.n && !strcmp(f.f[ki], key)) {
			snprintf(buf, len, "%s", f.f[ci]);
			break;
		}
	}
	return buf;
}

/* The second field of the first line whose first field is key; "" if none. */
static const char *line_value(const char *text, const char *key, char *buf, size_t len)
{
	snprintf(buf, len, "%s", "");
	for (const char *p = text; p; p = next_line(p)) {
		struct fields f = split_line(p);

		if (f.n >= 2 && !strcmp(f.f[0], key)) {
			snprintf(buf, len, "%s", f.f[1]);
			break;
		}
	}
	return buf;
}

/* Lines of text that start with prefix (after leading blanks). */
static int count_lines(const char *text, const char *prefix)
{
	int n = 0;

	for (const char *p = text; p && *p; p = next_line(p)) {
		while (*p == ' ')
			p++;
		n += !strncmp(p, prefix, strlen(prefix));
	}
	return n;
}

static char *u64s(char *buf, size_t len, uint64_t v)
{
	snprintf(buf, len, "%" PRIu64, v);
	return buf;
}
#define NUM(v) u64s((char[24]){0}, 24, (v))

/* ---- Library-side fixtures ------------------------------------------------------- */

/*
 * For fixtures, which return a struct: notes the skip and returns false
 * when h lacks the device (the kernel tier has no VT-d devices) or cap.
 */
static bool fixture_has(struct iommu_nest *h, const char *dev, uint32_t cap, const char *fixture)
{
	char why[96];

	if (dev && !it_has_device(h, dev)) {
		snprintf(why, sizeof(why), "no device %s configured", dev);
		it_note_skip(fixture, why);
		return false;
	}
	if (cap && !it_has_cap(h, cap)) {
		it_note_skip(fixture, "daemon lacks the sim model IOTLB (CAP_SIM_MODEL)");
		return false;
	}
	return true;
}

static void test_comm(char *buf, size_t len)
{
	FILE *f = fopen("/proc/self/comm", "r");

	snprintf(buf, len, "?");
	if (f) {
		if (fgets(buf, (int)len, f))
			buf[strcspn(buf, "\n")] = '\0';
		fclose(f);
	}
}

/* Contiguous VT-d entries of npages each from addr on; returns the summary. */
static struct iommu_nest_inv_summary vtd_inv(struct iommu_nest *h, uint32_t hwpt, uint64_t addr,
					     uint64_t npages, size_t n, uint32_t flags)
{
	struct iommu_nest_vtd_inv *e = calloc(n, sizeof(*e));
	struct iommu_nest_entry_result *res = calloc(n, sizeof(*res));
	struct iommu_nest_inv_summary sum = {0};

	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_PTR_NOT_NULL_FATAL(res);
	for (size_t i = 0; i < n; i++)
		e[i] = (struct iommu_nest_vtd_inv){addr + i * npages * IT_PAGE, npages, flags, 0};
	CU_ASSERT_EQUAL(
	    iommu_nest_invalidate(h, hwpt, IOMMU_NEST_INV_DATA_VTD_S1, e, n, 0, res, &sum), 0);
	free(e);
	free(res);
	return sum;
}

/*
 * Two library clients: A ("client-a") with a HWPT attached to a_dev - a
 * VT-d one on vtd0 where the daemon has it (sim), else a selftest one on
 * st1 (the kernel tier's mock devices) - and three invalidations of 2, 3
 * and 5 entries; B ("client-b") with a selftest HWPT on st0 and one
 * invalidation of 4 entries whose last one fails.
 * Requests: A 6 (Hello, Alloc, Attach, 3 Invalidate), B 3, B 1 error.
 */
struct two {
	struct nestd *d;
	struct iommu_nest *a, *b;
	uint32_t a_hwpt, b_hwpt;
	const char *a_dev, *a_kind; /* "vtd" or "selftest" */
};

#define A_ENTRIES  10
#define A_REQUESTS 6
#define B_ENTRIES  4
#define B_REQUESTS 3

static void b_failing_selftest_inv(struct two *t)
{
	struct iommu_nest_selftest_inv e[B_ENTRIES] = {{0, 0}, {0, 1}, {0, 2}, {1u << 5, 3}};
	struct iommu_nest_entry_result res[B_ENTRIES];

	CU_ASSERT_EQUAL(iommu_nest_invalidate(t->b, t->b_hwpt, IOMMU_NEST_INV_DATA_SELFTEST, e,
					      B_ENTRIES, 0, res, NULL),
			-EOPNOTSUPP);
	CU_ASSERT_EQUAL(res[3].state, IOMMU_NEST_ENTRY_FAILED);
}

/* n valid entries on A's HWPT, of its type. */
static void a_inv(const struct two *t, uint64_t addr, size_t n)
{
	struct iommu_nest_selftest_inv e[8];
	struct iommu_nest_entry_result res[8];

	if (!strcmp(t->a_kind, "vtd")) {
		vtd_inv(t->a, t->a_hwpt, addr, 1, n, 0);
		return;
	}
	CU_ASSERT_FATAL(n <= 8);
	for (size_t i = 0; i < n; i++)
		e[i] = (struct iommu_nest_selftest_inv){.iotlb_id = (uint32_t)(i % 4)};
	CU_ASSERT_EQUAL(iommu_nest_invalidate(t->a, t->a_hwpt, IOMMU_NEST_INV_DATA_SELFTEST, e,
					      n, 0, res, NULL),
			0);
}

static struct two two_clients(void)
{
	struct two t = {.d = it_start(NULL)};

	t.a = it_connect(t.d, "client-a");
	t.b = it_connect(t.d, "client-b");
	if (it_has_device(t.a, IT_VTD0)) {
		t.a_dev = IT_VTD0;
		t.a_kind = "vtd";
		t.a_hwpt = it_alloc_vtd(t.a, IT_VTD0);
	} else {
		if (!fixture_has(t.a, IT_ST1, 0, __func__))
			return t;
		t.a_dev = IT_ST1;
		t.a_kind = "selftest";
		t.a_hwpt = it_alloc_st(t.a, IT_ST1, 1);
	}
	CU_ASSERT_EQUAL_FATAL(iommu_nest_attach(t.a, t.a_dev, t.a_hwpt), 0);
	a_inv(&t, 0x100000, 2);
	a_inv(&t, 0x200000, 3);
	a_inv(&t, 0x300000, 5);
	t.b_hwpt = it_alloc_st(t.b, IT_ST0, 1);
	b_failing_selftest_inv(&t);
	return t;
}

/* ---- status ------------------------------------------------------------------------ */

static void test_status_json_daemon(void)
{
	struct two t = two_clients();
	struct run r;
	json_object *o;

	if (!t.a_hwpt)
		return;
	r = CTL(t.d, "--json", "status");
	RUN_ASSERT(r, r.code == 0);
	o = PARSE_JSON(r);
	CU_ASSERT_STRING_EQUAL(js(o, "backend"), env_or("NESTD_BACKEND", "sim"));
	CU_ASSERT_EQUAL(ji(o, "pid"), t.d->pid);
	CU_ASSERT_STRING_EQUAL(js(o, "socket"), t.d->sock);
	CU_ASSERT(strlen(js(o, "daemon_version")) > 0);
	CU_ASSERT_EQUAL(ju(o, "clients"), 3); /* A, B and the CLI itself */
	CU_ASSERT_EQUAL(ju(o, "hwpts"), 2);
	CU_ASSERT_EQUAL(ju(o, "orphans"), 0);
	CU_ASSERT_EQUAL(ju(jget(o, "totals"), "entries_received"), A_ENTRIES + B_ENTRIES);
	CU_ASSERT_EQUAL(ju(jget(o, "totals"), "entries_failed"), 1);
	CU_ASSERT_EQUAL(ju(jget(o, "totals"), "sessions_active"), 3);
	CU_ASSERT_EQUAL(ju(jget(o, "totals"), "hwpts_active"), 2);
	json_object_put(o);
	run_free(&r);
	it_stop_ok(t.d);
}

static void check_device(json_object *devs, const char *name, const char *kind, uint32_t hwpt,
			 int pid)
{
	json_object *e = find_str(devs, "device", name);

	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_STRING_EQUAL(js(e, "kind"), kind);
	CU_ASSERT_EQUAL(ju(e, "hwpt"), hwpt);
	CU_ASSERT_EQUAL(ji(e, "owner_pid"), pid);
	CU_ASSERT_EQUAL(ju(e, "owner_session") != 0, pid != 0);
}

static void test_status_json_devices(void)
{
	struct two t = two_clients();
	struct run r;
	json_object *o, *devs;

	if (!t.a_hwpt)
		return;
	r = CTL(t.d, "--json", "status");
	RUN_ASSERT(r, r.code == 0);
	o = PARSE_JSON(r);
	devs = jarr(o, "devices");
	CU_ASSERT_EQUAL(json_object_array_length(devs), iommu_nest_device_count(t.a));
	/* Only attaching (or mapping memory) takes a device; B's alloc did not. */
	check_device(devs, t.a_dev, t.a_kind, t.a_hwpt, getpid());
	if (strcmp(t.a_dev, IT_VTD0) && it_has_device(t.a, IT_VTD0))
		check_device(devs, IT_VTD0, "vtd", 0, 0);
	if (it_has_device(t.a, IT_VTD1))
		check_device(devs, IT_VTD1, "vtd", 0, 0);
	check_device(devs, IT_ST0, "selftest", 0, 0);
	if (strcmp(t.a_dev, IT_ST1))
		check_device(devs, IT_ST1, "selftest", 0, 0);
	json_object_put(o);
	run_free(&r);
	it_stop_ok(t.d);
}

/* samples of histogram name, after checking its buckets add up to it. */
static uint64_t histogram_samples(json_object *status, const char *name)
{
	json_object *h = find_str(jarr(status, "histograms"), "name", name), *b, *le;
	uint64_t sum = 0, prev = 0, lo = 0, hi = 0;
	bool unbounded = false;
	size_t n;

	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	CU_ASSERT(strlen(js(h, "help")) > 0);
	b = jarr(h, "buckets");
	n = json_object_array_length(b);
	CU_ASSERT_FATAL(n >= 2);
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(b, i);

		uint64_t c = ju(e, "count");

		sum += c;
		/* A sample in (previous bound, bound]: at least previous + 1 ns each. */
		if (i)
			lo += c * (prev + 1);
		le = jget(e, "le_ns");
		if (i + 1 == n) {
			CU_ASSERT_PTR_NULL(le); /* the overflow bucket has no bound */
			unbounded = c != 0;
		} else {
			CU_ASSERT(json_object_get_uint64(le) > prev); /* ascending */
			prev = json_object_get_uint64(le);
			hi += c * prev;
		}
	}
	CU_ASSERT_EQUAL(sum, ju(h, "samples"));
	/*
	 * sum_ns agrees with the buckets the same durations went into. Not
	 * "> 0": on a coarse clock (a TCG guest on jiffies) short durations
	 * read 0 and every sample lands in the first bucket.
	 */
	CU_ASSERT(ju(h, "sum_ns") >= lo);
	CU_ASSERT(unbounded || ju(h, "sum_ns") <= hi);
	return ju(h, "samples");
}

static json_object *status_json(struct nestd *d)
{
	struct run r = CTL(d, "--json", "status");
	json_object *o;

	RUN_ASSERT(r, r.code == 0);
	o = PARSE_JSON(r);
	run_free(&r);
	return o;
}

static void test_status_json_histograms(void)
{
	struct two t = two_clients();
	json_object *before, *after;

	if (!t.a_hwpt)
		return;
	before = status_json(t.d);
	/* Synchronous requests: one batch each, one latency sample each. */
	for (int i = 0; i < 3; i++)
		a_inv(&t, 0x400000, 4);
	after = status_json(t.d);
	CU_ASSERT_EQUAL(histogram_samples(before, "invalidate_latency"), 4); /* A 3, B 1 */
	CU_ASSERT_EQUAL(histogram_samples(after, "invalidate_latency"), 4 + 3);
	CU_ASSERT_EQUAL(histogram_samples(after, "batch_duration"),
			histogram_samples(before, "batch_duration") + 3);
	json_object_put(before);
	json_object_put(after);
	it_stop_ok(t.d);
}

static void test_status_table(void)
{
	struct two t = two_clients();
	char head[128], v[FIELD_LEN];
	struct run r;

	if (!t.a_hwpt)
		return;
	r = CTL(t.d, "status");
	RUN_ASSERT(r, r.code == 0);
	snprintf(head, sizeof(head), ", pid %d, backend %s\n", (int)t.d->pid,
		 env_or("NESTD_BACKEND", "sim"));
	RUN_ASSERT(r, !strncmp(r.out, "iommu-nestd ", 12) && strstr(r.out, head));
	RUN_ASSERT(r, !strcmp(line_value(r.out, "clients", v, sizeof(v)), "3"));
	RUN_ASSERT(r, strstr(r.out, "\nhwpts       2 (0 orphans awaiting reclaim)\n"));
	RUN_ASSERT(r, !strcmp(cell(r.out, "device", "device", t.a_dev, "kind", v, sizeof(v)),
			      t.a_kind));
	RUN_ASSERT(r, !strcmp(cell(r.out, "device", "device", t.a_dev, "hwpt", v, sizeof(v)),
			      NUM(t.a_hwpt)));
	RUN_ASSERT(r, !strcmp(cell(r.out, "device", "device", t.a_dev, "owner_pid", v, sizeof(v)),
			      NUM((uint64_t)getpid())));
	/* B allocated on st0 but did not attach: the device is free. */
	RUN_ASSERT(
	    r, !strcmp(cell(r.out, "device", "device", IT_ST0, "kind", v, sizeof(v)), "selftest"));
	RUN_ASSERT(r, !strcmp(cell(r.out, "device", "device", IT_ST0, "hwpt", v, sizeof(v)), "0"));
	RUN_ASSERT(r, !strcmp(cell(r.out, "name", "name", "invalidate_latency", "samples",
				   v, sizeof(v)),
			      "4"));
	RUN_ASSERT(r, !strcmp(line_value(r.out, "entries_received", v, sizeof(v)),
			      NUM(A_ENTRIES + B_ENTRIES)));
	run_free(&r);
	it_stop_ok(t.d);
}

/* ---- clients ------------------------------------------------------------------------- */

static void check_client(json_object *e, const char *comm, uint64_t hwpts, uint64_t requests,
			 uint64_t errors, uint64_t entries)
{
	CU_ASSERT_EQUAL(ju(e, "uid"), getuid());
	CU_ASSERT_EQUAL(ju(e, "gid"), getgid());
	CU_ASSERT_STRING_EQUAL(js(e, "comm"), comm);
	CU_ASSERT_EQUAL(ju(e, "hwpts"), hwpts);
	CU_ASSERT_EQUAL(ju(e, "requests"), requests);
	CU_ASSERT_EQUAL(ju(e, "errors"), errors);
	CU_ASSERT_EQUAL(ju(e, "entries"), entries);
	CU_ASSERT_EQUAL(ju(e, "denials"), 0);
	CU_ASSERT_EQUAL(ju(e, "in_flight"), 0);
	CU_ASSERT_EQUAL(ju(e, "mapped_bytes"), 0);
	CU_ASSERT_EQUAL(jb(e, "admin"), getuid() == 0);
	CU_ASSERT(ju(e, "session") > 0);
}

static void test_clients_json(void)
{
	struct two t = two_clients();
	json_object *o, *a, *b, *cli;
	char comm[32];
	struct run r;

	if (!t.a_hwpt)
		return;
	test_comm(comm, sizeof(comm));
	r = CTL(t.d, "--json", "clients");
	RUN_ASSERT(r, r.code == 0);
	o = PARSE_JSON(r);
	CU_ASSERT_EQUAL_FATAL(json_object_array_length(jarr(o, NULL)), 3);
	a = find_str(o, "name", "client-a");
	b = find_str(o, "name", "client-b");
	cli = find_str(o, "name", "iommu-nestctl");
	CU_ASSERT_FATAL(a && b && cli);
	CU_ASSERT_EQUAL(ji(a, "pid"), getpid());
	CU_ASSERT_EQUAL(ji(b, "pid"), getpid());
	check_client(a, comm, 1, A_REQUESTS, 0, A_ENTRIES);
	check_client(b, comm, 1, B_REQUESTS, 1, B_ENTRIES);
	/* The CLI: its Hello and this ListClients so far. */
	CU_ASSERT(ji(cli, "pid") > 0 && ji(cli, "pid") != getpid());
	check_client(cli, "iommu-nestctl", 0, 2, 0, 0);
	CU_ASSERT(ju(a, "session") < ju(b, "session") && ju(b, "session") < ju(cli, "session"));
	json_object_put(o);
	run_free(&r);
	it_stop_ok(t.d);
}

static void test_clients_table(void)
{
	struct two t = two_clients();
	char comm[32], v[FIELD_LEN];
	struct run r;

	if (!t.a_hwpt)
		return;
	test_comm(comm, sizeof(comm));
	r = CTL(t.d, "clients");
	RUN_ASSERT(r, r.code == 0);
	/* One header and three rows. */
	RUN_ASSERT(r, count_lines(r.out, "session ") == 1 && count_lines(r.out, "") == 4);
#define A_CELL(name, col) cell(r.out, "session", "name", (name), (col), v, sizeof(v))
	RUN_ASSERT(r, !strcmp(A_CELL("client-a", "pid"), NUM((uint64_t)getpid())));
	RUN_ASSERT(r, !strcmp(A_CELL("client-a", "uid"), NUM(getuid())));
	RUN_ASSERT(r, !strcmp(A_CELL("client-a", "comm"), comm));
	RUN_ASSERT(r, !strcmp(A_CELL("client-a", "hwpts"), "1"));
	RUN_ASSERT(r, !strcmp(A_CELL("client-a", "requests"), NUM(A_REQUESTS)));
	RUN_ASSERT(r, !strcmp(A_CELL("client-a", "errors"), "0"));
	RUN_ASSERT(r, !strcmp(A_CELL("client-a", "entries"), NUM(A_ENTRIES)));
	RUN_ASSERT(r, !strcmp(A_CELL("client-a", "admin"), getuid() == 0 ? "yes" : "no"));
	RUN_ASSERT(r, !strcmp(A_CELL("client-b", "requests"), NUM(B_REQUESTS)));
	RUN_ASSERT(r, !strcmp(A_CELL("client-b", "errors"), "1"));
	RUN_ASSERT(r, !strcmp(A_CELL("client-b", "entries"), NUM(B_ENTRIES)));
	RUN_ASSERT(r, !strcmp(A_CELL("iommu-nestctl", "comm"), "iommu-nestctl"));
	RUN_ASSERT(r, !strcmp(A_CELL("iommu-nestctl", "requests"), "2"));
	RUN_ASSERT(r, !strcmp(A_CELL("iommu-nestctl", "in_flight"), "0"));
#undef A_CELL
	run_free(&r);
	it_stop_ok(t.d);
}

/* ---- hwpts ------------------------------------------------------------------------------ */

/*
 * X (client "storm", vtd0, attached): a sequential storm of 64 one-page
 * leaf entries, then a request of two entries whose second has a reserved
 * field set (EOPNOTSUPP). Y (client "wide", vtd1, not attached): one entry
 * of 100 pages, which [coalesce] flush_all_pages = 64 escalates to a
 * domain-wide flush.
 */
struct counted {
	struct nestd *d;
	struct iommu_nest *a, *b;
	uint32_t x, y;
	uint64_t x_submitted, x_pages; /* as the replies said */
};

#define STORM	  64
#define X_ENTRIES (STORM + 2)

static void x_failing_inv(struct counted *c)
{
	struct iommu_nest_vtd_inv e[2] = {{0x300000, 1, IOMMU_NEST_VTD_INV_FLAGS_LEAF, 0},
					  {0x301000, 1, IOMMU_NEST_VTD_INV_FLAGS_LEAF, 1}};
	struct iommu_nest_entry_result res[2];
	struct iommu_nest_inv_summary sum = {0};
	struct it_expect want[2] = {{IOMMU_NEST_ENTRY_DONE, 0, 0},
				    {IOMMU_NEST_ENTRY_FAILED, -EOPNOTSUPP, 0}};

	CU_ASSERT_EQUAL(
	    iommu_nest_invalidate(c->a, c->x, IOMMU_NEST_INV_DATA_VTD_S1, e, 2, 0, res, &sum),
	    -EOPNOTSUPP);
	it_check_results(res, want, 2);
	c->x_submitted += sum.entries_submitted;
	c->x_pages += sum.pages_flushed;
}

static struct counted counted_hwpts(void)
{
	struct counted c = {.d = it_start("[coalesce]\nflush_all_pages = 64\n")};
	struct iommu_nest_inv_summary s;

	c.a = it_connect(c.d, "storm");
	c.b = it_connect(c.d, "wide");
	if (!fixture_has(c.a, IT_VTD1, 0, __func__))
		return c;
	c.x = it_alloc_vtd(c.a, IT_VTD0);
	CU_ASSERT_EQUAL_FATAL(iommu_nest_attach(c.a, IT_VTD0, c.x), 0);
	s = vtd_inv(c.a, c.x, 0x100000, 1, STORM, IOMMU_NEST_VTD_INV_FLAGS_LEAF);
	c.x_submitted = s.entries_submitted;
	c.x_pages = s.pages_flushed;
	CU_ASSERT(s.entries_submitted >= 1 && s.entries_submitted < STORM);
	x_failing_inv(&c);
	c.y = it_alloc_vtd(c.b, IT_VTD1);
	s = vtd_inv(c.b, c.y, 0x400000, 100, 1, 0);
	CU_ASSERT_EQUAL(s.pages_flushed, UINT64_MAX);
	CU_ASSERT_EQUAL(s.entries_submitted, 1);
	return c;
}

static void test_hwpts_json(void)
{
	struct counted c = counted_hwpts();
	json_object *o, *x, *y;
	struct run r;

	if (!c.x)
		return;
	r = CTL(c.d, "--json", "hwpts");
	RUN_ASSERT(r, r.code == 0);
	o = PARSE_JSON(r);
	CU_ASSERT_EQUAL(json_object_array_length(jarr(o, NULL)), 2);
	/* By device: in two VM contexts both HWPTs may have the same id. */
	x = find_str(o, "device", IT_VTD0);
	y = find_str(o, "device", IT_VTD1);
	CU_ASSERT_FATAL(x && y);
	CU_ASSERT_EQUAL(ju(x, "id"), c.x);
	CU_ASSERT_EQUAL(ju(y, "id"), c.y);
	CU_ASSERT_STRING_EQUAL(js(x, "type"), "vtd-s1");
	CU_ASSERT_STRING_EQUAL(js(x, "device"), IT_VTD0);
	CU_ASSERT_EQUAL(ji(x, "owner_pid"), getpid());
	CU_ASSERT_EQUAL(ju(x, "owner_uid"), getuid());
	CU_ASSERT(!jb(x, "orphan"));
	CU_ASSERT(ju(x, "parent") != 0);
	CU_ASSERT_EQUAL_FATAL(json_object_array_length(jarr(x, "attached")), 1);
	CU_ASSERT_STRING_EQUAL(
	    json_object_get_string(json_object_array_get_idx(jarr(x, "attached"), 0)), IT_VTD0);
	CU_ASSERT_EQUAL(ju(x, "requests"), 2);
	CU_ASSERT_EQUAL(ju(x, "entries_in"), X_ENTRIES);
	CU_ASSERT_EQUAL(ju(x, "submitted"), c.x_submitted);
	CU_ASSERT(ju(x, "submitted") < ju(x, "entries_in"));
	CU_ASSERT(ju(x, "submissions") >= 1 && ju(x, "submissions") <= ju(x, "submitted"));
	CU_ASSERT_EQUAL(ju(x, "pages_flushed"), c.x_pages);
	CU_ASSERT_EQUAL(ju(x, "escalations"), 0);
	CU_ASSERT_EQUAL(ju(x, "failures"), 1);

	CU_ASSERT_STRING_EQUAL(js(y, "device"), IT_VTD1);
	CU_ASSERT_EQUAL(json_object_array_length(jarr(y, "attached")), 0);
	CU_ASSERT_NOT_EQUAL(ju(y, "owner_session"), ju(x, "owner_session"));
	CU_ASSERT_EQUAL(ju(y, "requests"), 1);
	CU_ASSERT_EQUAL(ju(y, "entries_in"), 1);
	CU_ASSERT_EQUAL(ju(y, "submitted"), 1);
	CU_ASSERT_EQUAL(ju(y, "escalations"), 1);
	CU_ASSERT_EQUAL(ju(y, "pages_flushed"), UINT64_MAX);
	CU_ASSERT_EQUAL(ju(y, "failures"), 0);
	json_object_put(o);
	run_free(&r);
	it_stop_ok(c.d);
}

static void test_hwpts_table(void)
{
	struct counted c = counted_hwpts();
	char v[FIELD_LEN];
	struct run r;

	if (!c.x)
		return;
	r = CTL(c.d, "hwpts");
	RUN_ASSERT(r, r.code == 0);
	RUN_ASSERT(r, count_lines(r.out, "") == 3);
	/* Rows by device: in two VM contexts both HWPTs may have the same id. */
#define X_CELL(col) cell(r.out, "id", "device", IT_VTD0, (col), v, sizeof(v))
#define Y_CELL(col) cell(r.out, "id", "device", IT_VTD1, (col), v, sizeof(v))
	RUN_ASSERT(r, !strcmp(X_CELL("type"), "vtd-s1"));
	RUN_ASSERT(r, !strcmp(X_CELL("id"), NUM(c.x)));
	RUN_ASSERT(r, !strcmp(Y_CELL("id"), NUM(c.y)));
	RUN_ASSERT(r, !strcmp(X_CELL("owner_pid"), NUM((uint64_t)getpid())));
	RUN_ASSERT(r, !strcmp(X_CELL("attached"), IT_VTD0));
	RUN_ASSERT(r, !strcmp(X_CELL("requests"), "2"));
	RUN_ASSERT(r, !strcmp(X_CELL("entries_in"), NUM(X_ENTRIES)));
	RUN_ASSERT(r, !strcmp(X_CELL("submitted"), NUM(c.x_submitted)));
	RUN_ASSERT(r, !strcmp(X_CELL("pages_flushed"), NUM(c.x_pages)));
	RUN_ASSERT(r, !strcmp(X_CELL("escalations"), "0"));
	RUN_ASSERT(r, !strcmp(X_CELL("failures"), "1"));
	RUN_ASSERT(r, !strcmp(Y_CELL("attached"), "-"));
	RUN_ASSERT(r, !strcmp(Y_CELL("pages_flushed"), "all"));
	RUN_ASSERT(r, !strcmp(Y_CELL("escalations"), "1"));
#undef X_CELL
#undef Y_CELL
	run_free(&r);
	it_stop_ok(c.d);
}

/* ---- stats -------------------------------------------------------------------------------- */

static const char *const counters[] = {
    "connections",     "sessions_active",   "requests",	   "request_errors", "entries_received",
    "entries_failed",  "entries_submitted", "submissions", "pages_flushed",  "hwpts_active",
    "protocol_errors", "batches",	    "denials",
};
#define N_COUNTERS (sizeof(counters) / sizeof(counters[0]))
/* Plain `stats` lists the shared-queue counters after them (iommu_nest_queue_stats()). */
static const char *const queue_counters[] = {
    "queue_submissions", "queue_completions",	   "queue_kicks",  "queue_kicks_suppressed",
    "queue_calls",	 "queue_calls_suppressed", "queue_stalls", "queue_poll_passes",
};
#define N_QCOUNTERS (sizeof(queue_counters) / sizeof(queue_counters[0]))

static void test_stats_json(void)
{
	struct two t = two_clients();
	struct iommu_nest_stats lib;
	json_object *o;
	struct run r;

	if (!t.a_hwpt)
		return;
	r = CTL(t.d, "--json", "stats");
	RUN_ASSERT(r, r.code == 0);
	o = PARSE_JSON(r);
	CU_ASSERT_EQUAL(json_object_object_length(o), (int)(N_COUNTERS + N_QCOUNTERS));
	for (size_t i = 0; i < N_COUNTERS; i++)
		ju(o, counters[i]);
	for (size_t i = 0; i < N_QCOUNTERS; i++)
		ju(o, queue_counters[i]);
	CU_ASSERT_EQUAL(ju(o, "entries_received"), A_ENTRIES + B_ENTRIES);
	CU_ASSERT_EQUAL(ju(o, "entries_failed"), 1);
	CU_ASSERT_EQUAL(ju(o, "sessions_active"), 3);
	CU_ASSERT_EQUAL(ju(o, "hwpts_active"), 2);
	CU_ASSERT_EQUAL(ju(o, "batches"), 4);
	/* The CLI's Hello and Stats came before its queue Stats and the library's Stats. */
	lib = it_stats(t.a);
	CU_ASSERT_EQUAL(ju(o, "requests") + 2, lib.requests);
	/* No client here opened a queue. */
	CU_ASSERT_EQUAL(ju(o, "queue_submissions"), 0);
	CU_ASSERT_EQUAL(ju(o, "entries_submitted"), lib.entries_submitted);
	CU_ASSERT_EQUAL(ju(o, "pages_flushed"), lib.pages_flushed);
	json_object_put(o);
	run_free(&r);
	it_stop_ok(t.d);
}

static void test_stats_table(void)
{
	struct two t = two_clients();
	char v[FIELD_LEN];
	struct run r;

	if (!t.a_hwpt)
		return;
	r = CTL(t.d, "stats");
	RUN_ASSERT(r, r.code == 0);
	RUN_ASSERT(r, count_lines(r.out, "") == (int)(N_COUNTERS + N_QCOUNTERS));
	for (size_t i = 0; i < N_COUNTERS; i++)
		RUN_ASSERT(r, line_value(r.out, counters[i], v, sizeof(v))[0] != '\0');
	for (size_t i = 0; i < N_QCOUNTERS; i++)
		RUN_ASSERT(r, line_value(r.out, queue_counters[i], v, sizeof(v))[0] != '\0');
	RUN_ASSERT(r, !strcmp(line_value(r.out, "entries_received", v, sizeof(v)),
			      NUM(A_ENTRIES + B_ENTRIES)));
	RUN_ASSERT(r, !strcmp(line_value(r.out, "sessions_active", v, sizeof(v)), "3"));
	RUN_ASSERT(r, !strcmp(line_value(r.out, "request_errors", v, sizeof(v)), "1"));
	run_free(&r);
	it_stop_ok(t.d);
}

/* --watch --json: one JSON object a line (NDJSON), counters never going back. */
static void test_stats_watch_json(void)
{
	struct nestd *d = it_start(NULL);
	json_object *frames[3] = {NULL};
	const char *p;
	int64_t t0 = now_ms();
	struct run r = CTL(d, "--json", "stats", "--watch", "--interval", "0.1", "--count", "3");
	int n = 0;

	RUN_ASSERT(r, r.code == 0);
	RUN_ASSERT(r, now_ms() - t0 >= 200); /* two intervals between three frames */
	RUN_ASSERT(r, count_lines(r.out, "") == 3);
	for (p = r.out; p && *p && n < 3; p = next_line(p)) {
		char *line = strndup(p, strcspn(p, "\n"));

		CU_ASSERT_PTR_NOT_NULL_FATAL(line);
		frames[n++] = parse_json_text(&r, line, __LINE__);
		free(line);
	}
	CU_ASSERT_EQUAL_FATAL(n, 3);
	for (int i = 0; i < 3; i++) {
		CU_ASSERT(strlen(js(frames[i], "time")) == 8); /* HH:MM:SS */
		CU_ASSERT(json_object_is_type(jget(frames[i], "rates_per_sec"), json_type_object));
		for (size_t k = 0; i && k < N_COUNTERS; k++)
			CU_ASSERT(ju(frames[i], counters[k]) >= ju(frames[i - 1], counters[k]));
	}
	/* Each later frame is one more Stats request of the CLI, nobody else's. */
	CU_ASSERT_EQUAL(ju(frames[1], "requests"), ju(frames[0], "requests") + 1);
	CU_ASSERT_EQUAL(ju(frames[2], "requests"), ju(frames[1], "requests") + 1);
	CU_ASSERT(json_object_get_double(jget(jget(frames[2], "rates_per_sec"), "requests")) > 0);
	for (int i = 0; i < 3; i++)
		json_object_put(frames[i]);
	run_free(&r);
	it_stop_ok(d);
}

/* --watch as a table into a pipe: a log of whole frames, no screen control. */
static void test_stats_watch_table(void)
{
	struct nestd *d = it_start(NULL);
	struct run r = CTL(d, "stats", "--watch", "--interval", "0.1", "--count", "2");

	RUN_ASSERT(r, r.code == 0);
	RUN_ASSERT(r, count_lines(r.out, "iommu-nestd counters at ") == 2);
	RUN_ASSERT(r, count_lines(r.out, "counter ") == 2);
	RUN_ASSERT(r, count_lines(r.out, "requests ") == 2);
	RUN_ASSERT(r, count_lines(r.out, "") == 2 * (2 + (int)N_COUNTERS));
	RUN_ASSERT(r, strstr(r.out, "every 0.1 s") != NULL);
	RUN_ASSERT(r, strchr(r.out, '\033') == NULL);
	run_free(&r);
	it_stop_ok(d);
}

/* ---- metrics ------------------------------------------------------------------------------- */

static const char *validator(void)
{
	return env_or("NESTD_OPENMETRICS_CHECK", NESTD_OPENMETRICS_CHECK);
}

static bool have_parser(void)
{
	char *argv[] = {PYTHON, "-c", "import prometheus_client.openmetrics.parser", NULL};
	struct run r = run_argv(argv, NULL);
	bool ok = r.code == 0;

	run_free(&r);
	return ok;
}

/* Runs the validator on text with the required families; returns its run. */
static struct run validate(struct nestd *d, const char *text, const char *const *families)
{
	char *argv[MAX_ARGS] = {PYTHON, (char *)validator()};
	char path[sizeof(d->dir) + 16];
	struct run r;
	int n = 2;

	snprintf(path, sizeof(path), "%s/metrics.txt", d->dir);
	CU_ASSERT_EQUAL_FATAL(it_write_file(path, text), 0);
	for (; families && *families && n < MAX_ARGS - 1; families++)
		argv[n++] = (char *)*families;
	argv[n] = NULL;
	r = run_argv(argv, path);
	unlink(path);
	return r;
}

static void test_metrics_valid(void)
{
	static const char *const families[] = {
	    "iommu_nestd_build",
	    "iommu_nestd_uptime_seconds",
	    "iommu_nestd_clients",
	    "iommu_nestd_requests",
	    "iommu_nestd_entries_received",
	    "iommu_nestd_pages_flushed_ranged",
	    "iommu_nestd_flush_alls",
	    "iommu_nestd_device_nested",
	    "iommu_nestd_device_mapped_bytes",
	    "iommu_nestd_invalidate_latency_seconds",
	    "iommu_nestd_batch_duration_seconds",
	    "iommu_nestd_hwpt_entries_received",
	    "iommu_nestd_hwpt_escalations",
	    "iommu_nestd_hwpt_pages_flushed_ranged",
	    "iommu_nestd_hwpt_flush_alls",
	    NULL,
	};
	struct counted c;
	struct run m, v;

	if (!have_parser())
		IT_SKIP("no OpenMetrics parser (" PYTHON " -c 'import prometheus_client'): "
			"install python3-prometheus-client (scripts/install-deps.sh)");
	c = counted_hwpts();
	if (!c.x)
		return;
	m = CTL(c.d, "metrics");
	RUN_ASSERT(m, m.code == 0);
	v = validate(c.d, m.out, families);
	RUN_ASSERT(v, v.code == 0 && strstr(v.out, " families\n"));
	if (v.code)
		dump_run(&m, "the metrics text above", __LINE__);
	run_free(&v);
	run_free(&m);
	it_stop_ok(c.d);
}

/* The validator must not pass anything: text without # EOF, a bad counter. */
/* node_exporter's textfile collector reads the Prometheus text format. */
static void test_metrics_prometheus_valid(void)
{
	static const char *const families[] = {
	    "--prometheus",
	    "iommu_nestd_build_info",
	    "iommu_nestd_requests",
	    "iommu_nestd_flush_alls",
	    "iommu_nestd_invalidate_latency_seconds",
	    "iommu_nestd_hwpt_entries_received",
	    NULL,
	};
	struct counted c;
	struct run m, v;

	if (!have_parser())
		IT_SKIP("no Prometheus text parser (" PYTHON " -c 'import prometheus_client'): "
			"install python3-prometheus-client (scripts/install-deps.sh)");
	c = counted_hwpts();
	if (!c.x)
		return;
	m = CTL(c.d, "metrics", "--format", "prometheus");
	RUN_ASSERT(m, m.code == 0);
	RUN_ASSERT(m, !strstr(m.out, "# EOF") && !strstr(m.out, "# UNIT"));
	v = validate(c.d, m.out, families);
	RUN_ASSERT(v, v.code == 0 && strstr(v.out, " families\n"));
	run_free(&v);
	run_free(&m);
	it_stop_ok(c.d);
}

static void test_metrics_validator_rejects(void)
{
	static const char *const bad[] = {
	    "# TYPE x counter\nx_total 1\n",  /* no # EOF */
	    "# TYPE x counter\nx 1\n# EOF\n", /* counter without _total */
	    "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\n"
	    "h_count 1\nh_sum 0\n# EOF\n", /* buckets not cumulative */
	};
	static const char *const want_x[] = {"x", NULL};
	struct nestd *d;
	struct run v;

	if (!have_parser())
		IT_SKIP("no OpenMetrics parser: install python3-prometheus-client");
	d = it_start(NULL); /* for its private directory */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		v = validate(d, bad[i], NULL);
		RUN_ASSERT(v, v.code == 1 && strstr(v.err, "invalid OpenMetrics"));
		run_free(&v);
	}
	v = validate(d, "# TYPE y counter\ny_total 1\n# EOF\n", want_x);
	RUN_ASSERT(v, v.code == 1 && strstr(v.err, "missing families: x"));
	run_free(&v);
	v = validate(d, "# TYPE x counter\nx_total 1\n# EOF\n", want_x);
	RUN_ASSERT(v, v.code == 0 && !strcmp(v.out, "1 families\n"));
	run_free(&v);
	it_stop_ok(d);
}

/* The value of the sample line that starts with series (then a space). */
static bool metric(const char *text, const char *series, char *buf, size_t len)
{
	size_t n = strlen(series);

	for (const char *p = text; p && *p; p = next_line(p)) {
		if (!strncmp(p, series, n) && p[n] == ' ') {
			snprintf(buf, len, "%.*s", (int)strcspn(p + n + 1, "\n"), p + n + 1);
			return true;
		}
	}
	snprintf(buf, len, "(missing)");
	return false;
}

static void check_metric(const struct run *m, const char *series, const char *want)
{
	char got[64];

	metric(m->out, series, got, sizeof(got));
	if (strcmp(got, want))
		fprintf(stderr, "metric %s: got %s, want %s\n", series, got, want);
	CU_ASSERT_STRING_EQUAL(got, want);
}

static void check_hwpt_metric(const struct run *m, const char *name, uint32_t id, const char *dev,
			      uint64_t want)
{
	char series[160];

	snprintf(series, sizeof(series), "iommu_nestd_hwpt_%s_total{hwpt=\"%u\",device=\"%s\"}",
		 name, id, dev);
	check_metric(m, series, NUM(want));
}

static void test_metrics_values(void)
{
	struct counted c = counted_hwpts();
	json_object *st;
	struct run m;

	if (!c.x)
		return;
	m = CTL(c.d, "metrics");
	RUN_ASSERT(m, m.code == 0);
	RUN_ASSERT(m, strlen(m.out) > 6 && !strcmp(m.out + strlen(m.out) - 6, "# EOF\n"));
	st = status_json(c.d); /* no invalidation in between: same histograms */
	check_hwpt_metric(&m, "entries_received", c.x, IT_VTD0, X_ENTRIES);
	check_hwpt_metric(&m, "entries_failed", c.x, IT_VTD0, 1);
	check_hwpt_metric(&m, "requests", c.x, IT_VTD0, 2);
	check_hwpt_metric(&m, "entries_submitted", c.x, IT_VTD0, c.x_submitted);
	check_hwpt_metric(&m, "entries_received", c.y, IT_VTD1, 1);
	check_hwpt_metric(&m, "escalations", c.y, IT_VTD1, 1);
	/* The flush-all is counted as such, not as 2^64-1 pages (a rate() spike). */
	check_hwpt_metric(&m, "flush_alls", c.y, IT_VTD1, 1);
	check_hwpt_metric(&m, "pages_flushed_ranged", c.y, IT_VTD1, 0);
	check_hwpt_metric(&m, "flush_alls", c.x, IT_VTD0, 0);
	check_metric(&m, "iommu_nestd_flush_alls_total", "1");
	check_metric(&m, "iommu_nestd_entries_received_total", NUM(X_ENTRIES + 1));
	check_metric(&m, "iommu_nestd_clients", "3");
	check_metric(&m, "iommu_nestd_hwpts", "2");
	check_metric(&m, "iommu_nestd_device_nested{device=\"vtd0\"}", "1");
	check_metric(&m, "iommu_nestd_device_nested{device=\"vtd1\"}", "0");
	check_metric(&m, "iommu_nestd_invalidate_latency_seconds_count",
		     NUM(histogram_samples(st, "invalidate_latency")));
	check_metric(&m, "iommu_nestd_invalidate_latency_seconds_bucket{le=\"+Inf\"}",
		     NUM(histogram_samples(st, "invalidate_latency")));
	check_metric(&m, "iommu_nestd_batch_duration_seconds_count",
		     NUM(histogram_samples(st, "batch_duration")));
	json_object_put(st);
	run_free(&m);
	it_stop_ok(c.d);
}

/* ---- probe -------------------------------------------------------------------------------- */

/* What a probe report says after label (a "label    value" line); "" if no such line. */
static const char *probe_step(const char *out, const char *label, char *buf, size_t len)
{
	size_t n = strlen(label);

	snprintf(buf, len, "%s", "");
	for (const char *p = out; p && *p; p = next_line(p)) {
		while (*p == ' ')
			p++;
		if (strncmp(p, label, n) || p[n] != ' ')
			continue;
		for (p += n; *p == ' ';)
			p++;
		snprintf(buf, len, "%.*s", (int)strcspn(p, "\n"), p);
		break;
	}
	return buf;
}

/* Whether the daemon offers dev (asked over a connection of its own). */
static bool daemon_has_device(struct nestd *d, const char *dev)
{
	struct iommu_nest *h = it_connect(d, "device-check");
	bool has = it_has_device(h, dev);

	it_close(h);
	return has;
}

static void check_probe_ok(struct nestd *d, const char *dev, const char *type)
{
	struct run r = CTL(d, "probe", dev, type);
	char v[FIELD_LEN];

	RUN_ASSERT(r, r.code == 0);
	RUN_ASSERT(r, strstr(r.out, "\nresult: supported\n") != NULL);
	RUN_ASSERT(r, !strcmp(probe_step(r.out, "device offered to us", v, sizeof(v)), "yes"));
	RUN_ASSERT(
	    r, !strncmp(probe_step(r.out, "allocate nested HWPT", v, sizeof(v)), "ok (hwpt ", 9));
	RUN_ASSERT(r, !strcmp(probe_step(r.out, "invalidation probe", v, sizeof(v)), "ok"));
	RUN_ASSERT(r, !strcmp(probe_step(r.out, "destroy", v, sizeof(v)), "ok"));
	RUN_ASSERT(r, strstr(r.out, "reason:") == NULL);
	run_free(&r);
}

static void test_probe_supported(void)
{
	struct nestd *d = it_start(NULL);
	json_object *o;
	struct run r;

	check_probe_ok(d, IT_ST0, "selftest");
	if (daemon_has_device(d, IT_VTD0))
		check_probe_ok(d, IT_VTD0, "vtd-s1");
	/* The probe's HWPTs are gone again. */
	r = CTL(d, "--json", "hwpts");
	RUN_ASSERT(r, r.code == 0);
	o = PARSE_JSON(r);
	CU_ASSERT_EQUAL(json_object_array_length(jarr(o, NULL)), 0);
	json_object_put(o);
	run_free(&r);
	it_stop_ok(d);
}

/* A selftest HWPT on a VT-d device: the driver refuses the type (EOPNOTSUPP). */
static void test_probe_type_mismatch(void)
{
	struct nestd *d = it_start(NULL);
	char v[FIELD_LEN];
	struct run r;

	if (!daemon_has_device(d, IT_VTD0))
		IT_SKIP("no device " IT_VTD0 " configured");
	r = CTL(d, "probe", IT_VTD0, "selftest");

	RUN_ASSERT(r, r.code == 1);
	RUN_ASSERT(r,
		   !strcmp(probe_step(r.out, "allocate nested HWPT", v, sizeof(v)), "EOPNOTSUPP"));
	RUN_ASSERT(r, !strcmp(probe_step(r.out, "invalidation probe", v, sizeof(v)), "not tried"));
	RUN_ASSERT(r, strstr(r.out, "\n  reason: IOMMU_HWPT_ALLOC on vtd0: ") != NULL);
	RUN_ASSERT(r, strstr(r.out, "\nresult: not supported\n") != NULL);
	run_free(&r);
	it_stop_ok(d);
}

static void test_probe_no_device(void)
{
	struct nestd *d = it_start(NULL);
	struct run r = CTL(d, "probe", "nosuch", "vtd-s1");
	char v[FIELD_LEN];

	RUN_ASSERT(r, r.code == 1);
	RUN_ASSERT(r, !strcmp(probe_step(r.out, "device offered to us", v, sizeof(v)), "no"));
	RUN_ASSERT(r, !strcmp(probe_step(r.out, "allocate nested HWPT", v, sizeof(v)), "ENODEV"));
	RUN_ASSERT(r, strstr(r.out, "reason: device \"nosuch\" is not configured") != NULL);
	RUN_ASSERT(r, strstr(r.out, "\nresult: not supported\n") != NULL);
	run_free(&r);
	it_stop_ok(d);
}

static void test_probe_json(void)
{
	struct nestd *d = it_start(NULL);
	struct run r = CTL(d, "--json", "probe", IT_ST0, "selftest");
	json_object *o = PARSE_JSON(r);

	RUN_ASSERT(r, r.code == 0);
	CU_ASSERT(jb(o, "supported"));
	CU_ASSERT(jb(o, "device_offered"));
	CU_ASSERT_STRING_EQUAL(js(o, "alloc"), "ok");
	CU_ASSERT_STRING_EQUAL(js(o, "invalidation_probe"), "ok");
	CU_ASSERT_STRING_EQUAL(js(o, "destroy"), "ok");
	CU_ASSERT_STRING_EQUAL(js(o, "reason"), "");
	json_object_put(o);
	run_free(&r);

	r = CTL(d, "--json", "probe", "nosuch", "vtd-s1");
	o = PARSE_JSON(r);
	RUN_ASSERT(r, r.code == 1);
	CU_ASSERT(!jb(o, "supported"));
	CU_ASSERT(!jb(o, "device_offered"));
	CU_ASSERT_STRING_EQUAL(js(o, "alloc"), "ENODEV");
	CU_ASSERT_STRING_EQUAL(js(o, "invalidation_probe"), "not tried");
	CU_ASSERT(strstr(js(o, "reason"), "nosuch") != NULL);
	json_object_put(o);
	run_free(&r);
	it_stop_ok(d);
}

/* ---- an admin's invalidate ----------------------------------------------------------------- */

/* A library client's attached VT-d HWPT with 16 IOTLB and 16 PSC pages cached at 2 MiB. */
#define WARM_ADDR  0x200000ULL
#define WARM_PAGES 16

struct warm {
	struct nestd *d;
	struct iommu_nest *h;
	uint32_t hwpt;
};

static struct warm warm_hwpt(const char *config)
{
	struct warm w = {.d = it_start(config)};

	w.h = it_connect(w.d, "guest");
	if (!fixture_has(w.h, IT_VTD0, IOMMU_NEST_CAP_SIM_MODEL, __func__))
		return w;
	w.hwpt = it_alloc_vtd(w.h, IT_VTD0);
	CU_ASSERT_EQUAL_FATAL(iommu_nest_attach(w.h, IT_VTD0, w.hwpt), 0);
	it_populate(w.h, w.hwpt, WARM_ADDR, WARM_PAGES, IOMMU_NEST_SIM_IOTLB);
	it_populate(w.h, w.hwpt, WARM_ADDR, WARM_PAGES, IOMMU_NEST_SIM_PSC);
	return w;
}

/* The per-entry row of an invalidate table: entry 0's column col. */
static const char *entry0(const struct run *r, const char *col, char *buf, size_t len)
{
	return cell(r->out, "entry", "entry", "0", col, buf, len);
}

static void check_hwpt_counted(struct nestd *d, uint32_t id, uint64_t requests, uint64_t entries)
{
	struct run r = CTL(d, "--json", "hwpts");
	json_object *o = PARSE_JSON(r), *e = find_num(o, "id", id);

	RUN_ASSERT(r, e != NULL);
	if (e) {
		CU_ASSERT_EQUAL(ju(e, "requests"), requests);
		CU_ASSERT_EQUAL(ju(e, "entries_in"), entries);
	}
	json_object_put(o);
	run_free(&r);
}

static void test_admin_invalidate(void)
{
	struct warm w = warm_hwpt(NULL);
	char v[FIELD_LEN];
	struct run r;

	if (!w.hwpt)
		return;
	r = CTL(w.d, "invalidate", NUM(w.hwpt), "0x200000", "4");
	RUN_ASSERT(r, r.code == 0);
	RUN_ASSERT(r, !strcmp(entry0(&r, "addr", v, sizeof(v)), "0x200000"));
	RUN_ASSERT(r, !strcmp(entry0(&r, "npages", v, sizeof(v)), "4"));
	RUN_ASSERT(r, !strcmp(entry0(&r, "kind", v, sizeof(v)), "non-leaf"));
	RUN_ASSERT(r, !strcmp(entry0(&r, "state", v, sizeof(v)), "done"));
	RUN_ASSERT(r, strstr(r.out, "status 0 (OK)  entries_handled 1/1") != NULL);
	/* Exactly those four pages left both caches. */
	CU_ASSERT_EQUAL(it_iotlb_pages(w.h, w.hwpt, WARM_ADDR, 4), 0);
	CU_ASSERT_EQUAL(it_iotlb_pages(w.h, w.hwpt, WARM_ADDR, WARM_PAGES), WARM_PAGES - 4);
	CU_ASSERT_EQUAL(it_psc_pages(w.h, w.hwpt, WARM_ADDR, WARM_PAGES), WARM_PAGES - 4);
	check_hwpt_counted(w.d, w.hwpt, 1, 1);
	run_free(&r);
	it_stop_ok(w.d);
}

static void test_admin_invalidate_leaf(void)
{
	struct warm w = warm_hwpt(NULL);
	char v[FIELD_LEN];
	struct run r;

	if (!w.hwpt)
		return;
	r = CTL(w.d, "--leaf", "invalidate", NUM(w.hwpt), "0x204000", "8");
	RUN_ASSERT(r, r.code == 0);
	RUN_ASSERT(r, !strcmp(entry0(&r, "kind", v, sizeof(v)), "leaf"));
	RUN_ASSERT(r, !strcmp(entry0(&r, "state", v, sizeof(v)), "done"));
	CU_ASSERT_EQUAL(it_iotlb_pages(w.h, w.hwpt, WARM_ADDR + 4 * IT_PAGE, 8), 0);
	CU_ASSERT_EQUAL(it_iotlb_pages(w.h, w.hwpt, WARM_ADDR, WARM_PAGES), WARM_PAGES - 8);
	/* Leaf-only: the paging-structure caches stay. */
	CU_ASSERT_EQUAL(it_psc_pages(w.h, w.hwpt, WARM_ADDR, WARM_PAGES), WARM_PAGES);
	run_free(&r);
	it_stop_ok(w.d);
}

/* The same with --json: one object, an element per entry, unfolded. */
static void test_admin_invalidate_json(void)
{
	struct warm w = warm_hwpt(NULL);
	json_object *o, *e;
	struct run r;

	if (!w.hwpt)
		return;
	r = CTL(w.d, "--json", "invalidate", NUM(w.hwpt), "0x200000", "2", "0x300000", "1",
		"leaf");
	RUN_ASSERT(r, r.code == 0);
	o = PARSE_JSON(r);
	CU_ASSERT_EQUAL(ji(o, "status"), 0);
	CU_ASSERT_EQUAL(ju(o, "entries_handled"), 2);
	e = jget(o, "entries");
	CU_ASSERT_FATAL(json_object_is_type(e, json_type_array) &&
			json_object_array_length(e) == 2);
	CU_ASSERT_EQUAL(ju(json_object_array_get_idx(e, 0), "addr"), 0x200000);
	CU_ASSERT_EQUAL(ju(json_object_array_get_idx(e, 0), "npages"), 2);
	CU_ASSERT_STRING_EQUAL(js(json_object_array_get_idx(e, 0), "state"), "done");
	CU_ASSERT(!jb(json_object_array_get_idx(e, 0), "leaf"));
	CU_ASSERT(jb(json_object_array_get_idx(e, 1), "leaf"));
	CU_ASSERT_EQUAL(it_iotlb_pages(w.h, w.hwpt, WARM_ADDR, 2), 0);
	json_object_put(o);
	run_free(&r);
	it_stop_ok(w.d);
}

/* ---- the admin gate, from an unprivileged CLI ---------------------------------------------- */

#define OPEN_SOCKET "socket_mode = 0666\n"

/*
 * Root is needed to become nobody; the socket and its directory must let
 * nobody in (the daemon's socket_mode, the harness's 0700 directory), and
 * nobody must be able to run the CLI from the build tree.
 */
static bool nobody_ready(struct nestd *d, const char **why)
{
	struct run r;
	bool ok;

	*why = NULL;
	if (geteuid() != 0) {
		*why = "needs root to run the CLI as nobody (setpriv)";
		return false;
	}
	CU_ASSERT_EQUAL_FATAL(chmod(d->dir, 0711), 0);
	r = CTL_NOBODY(d, "--help");
	ok = r.code == 0 && strstr(r.out, "usage: iommu-nestctl");
	if (!ok) {
		dump_run(&r, "running the CLI as nobody", __LINE__);
		*why = "setpriv missing, or nobody cannot execute the CLI in this build tree";
	}
	run_free(&r);
	return ok;
}

static void test_nobody_admin_refused(void)
{
	static const char *const cmds[] = {"status", "clients", "hwpts",
					   "stats",  "metrics", "reload"};
	struct nestd *d = it_start(OPEN_SOCKET);
	const char *why;
	json_object *o;
	struct run r;

	if (!nobody_ready(d, &why))
		IT_SKIP(why);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		r = CTL_NOBODY(d, cmds[i]);
		RUN_ASSERT(r, r.code == 1);
		RUN_ASSERT(r, r.out[0] == '\0');
		RUN_ASSERT(r, strstr(r.err, "(EPERM)") && strstr(r.err, "[policy] admin_groups"));
		run_free(&r);
	}
	/* Each refusal counted as a denial. */
	r = CTL(d, "--json", "stats");
	o = PARSE_JSON(r);
	CU_ASSERT_EQUAL(ju(o, "denials"), 6);
	json_object_put(o);
	run_free(&r);
	it_stop_ok(d);
}

/* Another client's HWPT is not there for nobody: ENOENT, nothing flushed. */
static void test_nobody_invalidate_enoent(void)
{
	struct warm w = warm_hwpt(OPEN_SOCKET);
	char v[FIELD_LEN];
	const char *why;
	struct run r;

	if (!w.hwpt)
		return;
	if (!nobody_ready(w.d, &why))
		IT_SKIP(why);
	r = CTL_NOBODY(w.d, "invalidate", NUM(w.hwpt), "0x200000", "4");
	RUN_ASSERT(r, r.code == 1);
	RUN_ASSERT(r, !strcmp(entry0(&r, "state", v, sizeof(v)), "not_attempted"));
	RUN_ASSERT(r, strstr(r.out, "status -2 (ENOENT)  entries_handled 0/1") != NULL);
	CU_ASSERT_EQUAL(it_iotlb_pages(w.h, w.hwpt, WARM_ADDR, WARM_PAGES), WARM_PAGES);
	CU_ASSERT_EQUAL(it_psc_pages(w.h, w.hwpt, WARM_ADDR, WARM_PAGES), WARM_PAGES);
	check_hwpt_counted(w.d, w.hwpt, 0, 0);
	run_free(&r);
	it_stop_ok(w.d);
}

/* [policy] admin_groups naming nobody's group makes nobody an admin. */
static void test_nobody_admin_group(void)
{
	struct group *g = getgrgid(NOBODY);
	char body[256];
	struct nestd *d;
	const char *why;
	json_object *o, *me;
	struct run r;

	if (!g)
		IT_SKIP("no group with gid 65534");
	snprintf(body, sizeof(body), OPEN_SOCKET "[policy]\nadmin_groups = %s\n", g->gr_name);
	d = it_start(body);
	if (!nobody_ready(d, &why))
		IT_SKIP(why);
	r = CTL_NOBODY(d, "--json", "status");
	RUN_ASSERT(r, r.code == 0);
	o = PARSE_JSON(r);
	CU_ASSERT_EQUAL(ju(o, "clients"), 1);
	json_object_put(o);
	run_free(&r);

	r = CTL_NOBODY(d, "--json", "clients");
	RUN_ASSERT(r, r.code == 0);
	o = PARSE_JSON(r);
	me = find_str(o, "name", "iommu-nestctl");
	CU_ASSERT_PTR_NOT_NULL_FATAL(me);
	CU_ASSERT_EQUAL(ju(me, "uid"), NOBODY);
	CU_ASSERT_EQUAL(ju(me, "gid"), NOBODY);
	CU_ASSERT(jb(me, "admin"));
	json_object_put(o);
	run_free(&r);
	it_stop_ok(d);
}

/* ---- paging under a small max_message_size -------------------------------------------------- */

#define SMALL_MESSAGES	 "[limits]\nmax_message_size = 4096\n"
#define N_PAGING_CLIENTS 80

/* More connections than the harness tracks: closed here (and at exit). */
static struct iommu_nest *many[N_PAGING_CLIENTS];

static void close_many(void)
{
	for (int i = 0; i < N_PAGING_CLIENTS; i++) {
		iommu_nest_close(many[i]);
		many[i] = NULL;
	}
}

static void paging_name(char *buf, size_t len, int i)
{
	snprintf(buf, len, "paging-client-with-a-rather-long-name-%02d", i);
}

/* A raw ListClients/ListHwpts from start 0: the first page must not be all. */
static void check_first_page_partial(struct nestd *d, bool hwpts, size_t total)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__ListClients lc = IOMMU_NEST__LIST_CLIENTS__INIT;
	IommuNest__ListHwpts lh = IOMMU_NEST__LIST_HWPTS__INIT;
	IommuNest__Reply *rep;
	int fd = it_raw_connect(d);

	it_raw_hello(fd);
	req.body_case =
	    hwpts ? IOMMU_NEST__REQUEST__BODY_LIST_HWPTS : IOMMU_NEST__REQUEST__BODY_LIST_CLIENTS;
	if (hwpts)
		req.list_hwpts = &lh;
	else
		req.list_clients = &lc;
	rep = it_raw_call(fd, &req, 2);
	CU_ASSERT_EQUAL(rep->status, 0);
	if (hwpts && rep->hwpts) {
		CU_ASSERT(rep->hwpts->next != 0);
		CU_ASSERT(rep->hwpts->n_hwpts > 0 && rep->hwpts->n_hwpts < total);
	} else if (!hwpts && rep->clients) {
		CU_ASSERT(rep->clients->next != 0);
		CU_ASSERT(rep->clients->n_clients > 0 && rep->clients->n_clients < total);
	} else {
		CU_FAIL("no list in the reply");
	}
	iommu_nest__reply__free_unpacked(rep, NULL);
	it_raw_close(fd);
}

static void test_paging_clients(void)
{
	struct nestd *d = it_start(SMALL_MESSAGES);
	char name[IOMMU_NEST_NAME_MAX];
	uint64_t prev = 0;
	json_object *o;
	struct run r;

	close_many();
	for (int i = 0; i < N_PAGING_CLIENTS; i++) {
		paging_name(name, sizeof(name), i);
		CU_ASSERT_EQUAL_FATAL(iommu_nest_connect(d->sock, name, &many[i]), 0);
	}
	r = CTL(d, "--json", "clients");
	RUN_ASSERT(r, r.code == 0);
	o = PARSE_JSON(r);
	CU_ASSERT_EQUAL(json_object_array_length(jarr(o, NULL)), N_PAGING_CLIENTS + 1);
	for (size_t i = 0; i < json_object_array_length(o); i++) {
		uint64_t s = ju(json_object_array_get_idx(o, i), "session");

		CU_ASSERT(s > prev); /* unique and ascending: no page repeated or skipped back */
		prev = s;
	}
	for (int i = 0; i < N_PAGING_CLIENTS; i++) {
		paging_name(name, sizeof(name), i);
		CU_ASSERT_PTR_NOT_NULL(find_str(o, "name", name));
	}
	CU_ASSERT_PTR_NOT_NULL(find_str(o, "name", "iommu-nestctl"));
	json_object_put(o);
	run_free(&r);
	/* After the CLI: its list must not include this raw connection. */
	check_first_page_partial(d, false, N_PAGING_CLIENTS + 1);
	close_many();
	it_stop_ok(d);
}

/* A HWPT's record is some 25 bytes: 200 of them take two 4 KiB pages. */
#define N_HWPT_CLIENTS 4
#define HWPTS_EACH     50

static void test_paging_hwpts(void)
{
	struct nestd *d = it_start(SMALL_MESSAGES);
	const char *const devs[] = {IT_ST0, IT_ST1};
	int per_dev[2] = {0, 0};
	uint64_t prev = 0, prev_session = 0;
	json_object *o;
	struct run r;

	for (int c = 0; c < N_HWPT_CLIENTS; c++) {
		struct iommu_nest *h = it_connect(d, "paging-hwpts");

		for (int i = 0; i < HWPTS_EACH; i++)
			it_alloc_st(h, devs[i % 2], (uint32_t)i);
	}
	r = CTL(d, "--json", "hwpts");
	RUN_ASSERT(r, r.code == 0);
	o = PARSE_JSON(r);
	CU_ASSERT_EQUAL(json_object_array_length(jarr(o, NULL)), N_HWPT_CLIENTS * HWPTS_EACH);
	for (size_t i = 0; i < json_object_array_length(o); i++) {
		json_object *e = json_object_array_get_idx(o, i);
		uint64_t id = ju(e, "id"), session = ju(e, "owner_session");

		/* By id, then owner: each VM context has its own ids, they repeat. */
		CU_ASSERT(id > prev || (id == prev && session > prev_session));
		prev = id;
		prev_session = session;
		CU_ASSERT_EQUAL(ji(e, "owner_pid"), getpid());
		per_dev[!strcmp(js(e, "device"), IT_ST1)]++;
	}
	CU_ASSERT_EQUAL(per_dev[0], N_HWPT_CLIENTS * HWPTS_EACH / 2);
	CU_ASSERT_EQUAL(per_dev[1], N_HWPT_CLIENTS * HWPTS_EACH / 2);
	json_object_put(o);
	run_free(&r);
	check_first_page_partial(d, true, N_HWPT_CLIENTS * HWPTS_EACH);
	it_stop_ok(d);
}

/*
 * A tenant whose client_name and process comm carry terminal controls,
 * newlines and bytes that are not UTF-8: the table shows them escaped
 * (no control byte, no byte >= 0x80 reaches the operator's terminal, no
 * forged row), and --json stays valid UTF-8 JSON that keeps the text.
 */
static void test_clients_hostile_strings(void)
{
	IT_REQUIRE_ROOT();
	static const char evil_name[] = "vm\x1b[2J\x1b]0;pwned\x07\nforged 1 2 3\r\xff\xfe end";
	static const char evil_comm[] = "x\x1b[31m\n\xff";
	struct nestd *d = it_start(NULL);
	char saved[17] = {0};
	struct json_tokener *tok;
	json_object *o, *t;
	struct run r;

	CU_ASSERT_EQUAL_FATAL(prctl(PR_GET_NAME, saved), 0);
	CU_ASSERT_EQUAL_FATAL(prctl(PR_SET_NAME, evil_comm), 0);
	it_connect_as(d, evil_name, IT_NOBODY, IT_NOBODY);
	prctl(PR_SET_NAME, saved);

	r = CTL(d, "clients");
	RUN_ASSERT(r, r.code == 0);
	for (const unsigned char *p = (const unsigned char *)r.out; *p; p++)
		if ((*p < 0x20 && *p != '\n') || *p >= 0x7f) {
			CU_FAIL("a raw control or non-ASCII byte in the table");
			dump_run(&r, "clients table", __LINE__);
			break;
		}
	/* A header and two rows (the tenant, the CLI): nothing forged. */
	RUN_ASSERT(r, count_lines(r.out, "") == 3);
	RUN_ASSERT(r, count_lines(r.out, "forged") == 0);
	RUN_ASSERT(r, strstr(r.out, "vm\\x1b[2J\\x1b]0;pwned\\x07\\x0aforged") != NULL);
	RUN_ASSERT(r, strstr(r.out, "x\\x1b[31m\\x0a\\xff") != NULL);
	run_free(&r);

	r = CTL(d, "--json", "clients");
	RUN_ASSERT(r, r.code == 0);
	tok = json_tokener_new();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, r.out, (int)strlen(r.out));
	if (!o)
		dump_run(&r, "clients --json (strict, UTF-8)", __LINE__);
	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	json_tokener_free(tok);
	t = find_num(o, "uid", IT_NOBODY);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	/* The text survives; only the bytes that are not UTF-8 became U+FFFD. */
	CU_ASSERT_STRING_EQUAL(
	    js(t, "name"), "vm\x1b[2J\x1b]0;pwned\x07\nforged 1 2 3\r\xef\xbf\xbd\xef\xbf\xbd end");
	CU_ASSERT_STRING_EQUAL(js(t, "comm"), "x\x1b[31m\n\xef\xbf\xbd");
	json_object_put(o);
	run_free(&r);
	it_stop_ok(d);
}

/*
 * reload: exit 0 once the daemon applied the file (and the change is live
 * at once); exit 1 with the daemon's reason on a file it refuses, the
 * running configuration kept. (A tenant's EPERM: nobody_admin_refused.)
 */
static void test_reload(void)
{
	struct nestd *d = it_start("[policy]\nmax_hwpts = 1\n");
	struct iommu_nest *h = it_connect(d, "reload");
	uint32_t id = 0;
	struct run r;

	it_alloc_st(h, IT_ST0, 1);
	CU_ASSERT_EQUAL(iommu_nest_alloc_selftest(h, IT_ST0, 1, &id), -EDQUOT);
	it_edit_config(d, "max_hwpts = 1\n", "max_hwpts = 2\n");
	r = CTL(d, "reload");
	RUN_ASSERT(r, r.code == 0);
	RUN_ASSERT(r, !strcmp(r.out, "configuration reloaded\n"));
	run_free(&r);
	CU_ASSERT_EQUAL(iommu_nest_alloc_selftest(h, IT_ST0, 1, &id), 0);

	it_edit_config(d, "max_hwpts = 2\n", "max_hwpts = 9\nmax_hwtps = 3\n");
	r = CTL(d, "reload");
	RUN_ASSERT(r, r.code == 1);
	RUN_ASSERT(r, strstr(r.err, "reload: Invalid argument (EINVAL)") != NULL);
	RUN_ASSERT(r, strstr(r.err, "[policy] max_hwtps = 3: unknown key") != NULL);
	run_free(&r);
	/* Nothing of the refused file applies, not even its valid max_hwpts = 9. */
	CU_ASSERT_EQUAL(iommu_nest_alloc_selftest(h, IT_ST0, 1, &id), -EDQUOT);
	CU_ASSERT_EQUAL(iommu_nest_last_limit(h), 2);
	it_stop_ok(d);
}

int main(int argc, char **argv)
{
	static const struct it_case cases[] = {
	    {"status_json_daemon", test_status_json_daemon},
	    {"status_json_devices", test_status_json_devices},
	    {"status_json_histograms", test_status_json_histograms},
	    {"status_table", test_status_table},
	    {"clients_json", test_clients_json},
	    {"clients_table", test_clients_table},
	    {"clients_hostile_strings", test_clients_hostile_strings},
	    {"hwpts_json", test_hwpts_json},
	    {"hwpts_table", test_hwpts_table},
	    {"stats_json", test_stats_json},
	    {"stats_table", test_stats_table},
	    {"stats_watch_json", test_stats_watch_json},
	    {"stats_watch_table", test_stats_watch_table},
	    {"metrics_valid", test_metrics_valid},
	    {"metrics_prometheus_valid", test_metrics_prometheus_valid},
	    {"metrics_validator_rejects", test_metrics_validator_rejects},
	    {"metrics_values", test_metrics_values},
	    {"probe_supported", test_probe_supported},
	    {"probe_type_mismatch", test_probe_type_mismatch},
	    {"probe_no_device", test_probe_no_device},
	    {"probe_json", test_probe_json},
	    {"admin_invalidate", test_admin_invalidate},
	    {"admin_invalidate_json", test_admin_invalidate_json},
	    {"admin_invalidate_leaf", test_admin_invalidate_leaf},
	    {"nobody_admin_refused", test_nobody_admin_refused},
	    {"nobody_invalidate_enoent", test_nobody_invalidate_enoent},
	    {"nobody_admin_group", test_nobody_admin_group},
	    {"paging_clients", test_paging_clients},
	    {"paging_hwpts", test_paging_hwpts},
	    {"reload", test_reload},
	    {NULL, NULL},
	};
	int rc = it_main(argc, argv, "cli", cases);

	close_many();
	return rc;
}
