/* SPDX-License-Identifier: MIT */
/*
 * The structured event log of the real daemon (its stderr, d->log_path):
 * connect / disconnect / refusal lines carry the peer's credentials, HWPT
 * lifetime is logged, a hostile client name cannot forge a line, and the
 * per-kind rate limit (log_rate_burst / log_rate_interval_ms, also after a
 * SIGHUP reload) lets exactly the burst through and summarises the rest.
 * The reaper's backend_error events need a restart with the fd store:
 * tests/systemd/test_restart.c, case orphan-errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

/* ---- Reading the log ---------------------------------------------------------- */

/* The whole file from fd (kept open across it_stop(), which unlinks it). */
static char *slurp_fd(int fd)
{
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);
	ssize_t n;

	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	lseek(fd, 0, SEEK_SET);
	while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += (size_t)n;
		if (len + 1 == cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
		}
	}
	buf[len] = '\0';
	return buf;
}

static char *read_log(const struct nestd *d)
{
	int fd = open(d->log_path, O_RDONLY | O_CLOEXEC);
	char *s;

	CU_ASSERT_FATAL(fd >= 0);
	s = slurp_fd(fd);
	close(fd);
	return s;
}

/* Lines containing every one of the needles (NULL-terminated). */
static int count_lines(const char *log, const char *const *needles)
{
	int n = 0;

	for (const char *l = log; *l;) {
		const char *end = strchr(l, '\n');
		size_t len = end ? (size_t)(end - l) : strlen(l);
		char *line = strndup(l, len);
		bool all = true;

		for (size_t i = 0; needles[i] && all; i++)
			all = strstr(line, needles[i]) != NULL;
		n += all;
		free(line);
		l += len + (end != NULL);
	}
	return n;
}

#define COUNT(log, ...) count_lines((log), (const char *const[]){__VA_ARGS__, NULL})

/* Waits (bounded) until some line has all the needles; returns the log. */
static char *wait_line(const struct nestd *d, const char *const *needles)
{
	for (int waited = 0;; waited += 20) {
		char *log = read_log(d);

		if (count_lines(log, needles) || waited >= it_timeout_ms())
			return log;
		free(log);
		poll(NULL, 0, 20);
	}
}

#define WAIT_LINE(d, ...) wait_line((d), (const char *const[]){__VA_ARGS__, NULL})

/* " pid=P uid=U gid=G" of this process, as the daemon sees it. */
static const char *my_cred(void)
{
	static char buf[96];

	snprintf(buf, sizeof(buf), " pid=%d uid=%u gid=%u ", (int)getpid(), (unsigned)getuid(),
		 (unsigned)getgid());
	return buf;
}

/*
 * A denial: a second allocation over a quota of 1 HWPT (0 is unlimited), on
 * a connection of its own.
 */
static void deny_once(struct nestd *d)
{
	struct iommu_nest *h = it_connect(d, "denied");
	uint32_t id = 0;

	it_alloc_st(h, IT_ST0, 1);
	CU_ASSERT_EQUAL(iommu_nest_alloc_selftest(h, IT_ST0, 1, &id), -EDQUOT);
	it_close(h);
}

/* ---- Cases -------------------------------------------------------------------- */

static void test_connect_disconnect_creds(void)
{
	struct nestd *d = it_start(NULL);
	struct iommu_nest *h = it_connect(d, "log-client");
	uint32_t st = it_alloc_st(h, IT_ST0, 7);
	char hwpt[32];
	char *log;

	snprintf(hwpt, sizeof(hwpt), " hwpt=%u ", st);
	CU_ASSERT_EQUAL(iommu_nest_destroy(h, st), 0);
	it_alloc_st(h, IT_ST0, 8); /* left for the disconnect to release */
	it_close(h);
	log = WAIT_LINE(d, "event=client_disconnect", "client=log-client");
	/* Ours and the harness' readiness probe. */
	CU_ASSERT(COUNT(log, "<6>event=client_connect session=", my_cred(), "comm=it_log_events ",
			"msg=\"client connected\"") >= 2);
	CU_ASSERT_EQUAL(COUNT(log, "<6>event=client_disconnect session=", my_cred(),
			      "comm=it_log_events ",
			      "client=log-client hwpts=1 requests=", "msg=\"client disconnected\""),
			1);
	/* Two allocations; a backend may hand out the freed id again. */
	CU_ASSERT_EQUAL(COUNT(log, "<6>event=hwpt_alloc session=", my_cred(), "device=" IT_ST0 " "),
			2);
	CU_ASSERT(COUNT(log, "<6>event=hwpt_alloc session=", my_cred(), hwpt) >= 1);
	/* The Destroy request's, and the disconnect's for the one left behind. */
	CU_ASSERT(COUNT(log, "<6>event=hwpt_destroy session=", my_cred(), hwpt,
			"device=" IT_ST0 " ") >= 1);
	CU_ASSERT_EQUAL(COUNT(log, "<6>event=hwpt_destroy session=", my_cred(), "device=" IT_ST0 " ",
			      "msg=\"hwpt destroyed\""),
			1);
	CU_ASSERT_EQUAL(COUNT(log, "<6>event=hwpt_destroy session=", my_cred(), "device=" IT_ST0 " ",
			      "msg=\"hwpt destroyed at disconnect\""),
			1);
	CU_ASSERT_EQUAL(COUNT(log, "<5>event=daemon_start socket=", "backend="), 1);
	free(log);
	it_stop_ok(d);
}

static void test_refused_creds(void)
{
	IommuNest__Reply *rep;
	struct nestd *d;
	char body[96];
	int fd, err = 0;
	char *log;

	snprintf(body, sizeof(body), "[policy]\nallow_users = %u\n",
		 getuid() == 4242 ? 4243u : 4242u);
	d = it_start(body);
	fd = it_raw_connect(d);
	rep = it_raw_recv(fd, &err); /* logged before this was sent */
	CU_ASSERT_PTR_NOT_NULL_FATAL(rep);
	CU_ASSERT_EQUAL(rep->status, -EACCES);
	iommu_nest__reply__free_unpacked(rep, NULL);
	it_raw_close(fd);
	log = read_log(d);
	/* Ours and the harness' readiness probe, refused alike. */
	CU_ASSERT(COUNT(log, "<5>event=client_refused", my_cred(), "comm=it_log_events ",
			"error=-13 ", "msg=\"refused connection: ") >= 1);
	CU_ASSERT_EQUAL(COUNT(log, "event=client_connect"), 0);
	free(log);
	it_stop_ok(d);
}

/* A client name is the client's to choose: it must stay inside its value. */
static void test_hostile_client_name(void)
{
	struct nestd *d = it_start(NULL);
	struct iommu_nest *h = it_connect(d, "x\n<3>event=denied uid=0 \"q\"");
	char *log;

	it_close(h);
	log = WAIT_LINE(d, "event=client_disconnect", "client=\"x");
	CU_ASSERT_EQUAL(COUNT(log, "event=client_disconnect",
			      " client=\"x\\n<3>event=denied uid=0 \\\"q\\\"\" "),
			1);
	CU_ASSERT_EQUAL(COUNT(log, "<3>"), 1); /* the one inside the quoted value */
	CU_ASSERT_EQUAL(COUNT(log, "event=denied"), 1);
	free(log);
	it_stop_ok(d);
}

/*
 * log_rate_burst = 3 over a long interval: of 10 denials exactly 3 lines;
 * the 7 others are summarised at shutdown, as nothing else ends the window.
 */
static void test_rate_limit_burst(void)
{
	struct nestd *d = it_start("log_rate_burst = 3\nlog_rate_interval_ms = 3600000\n"
				   "[policy]\nmax_hwpts = 1\n");
	int fd = open(d->log_path, O_RDONLY | O_CLOEXEC);
	char *log;

	CU_ASSERT_FATAL(fd >= 0);
	for (int i = 0; i < 10; i++)
		deny_once(d); /* logged before the reply left */
	log = read_log(d);
	CU_ASSERT_EQUAL(COUNT(log, "<5>event=denied session=", "error=-122 ", "limit=1 "), 3);
	CU_ASSERT_EQUAL(COUNT(log, "event=log_suppressed"), 0);
	free(log);
	it_stop_ok(d);
	log = slurp_fd(fd); /* it_stop() unlinked the file; the fd still reads it */
	close(fd);
	CU_ASSERT_EQUAL(COUNT(log, "event=denied "), 3);
	CU_ASSERT_EQUAL(COUNT(log, "event=log_suppressed kind=denied suppressed=7 "), 1);
	CU_ASSERT_EQUAL(COUNT(log, "event=daemon_stop signal=15 "), 1);
	free(log);
}

/* After the window the next event is preceded by the summary of the last. */
static void test_rate_limit_window(void)
{
	struct nestd *d = it_start("log_rate_burst = 1\nlog_rate_interval_ms = 1000\n"
				   "[policy]\nmax_hwpts = 1\n");
	char *log;

	deny_once(d);
	deny_once(d);
	deny_once(d);
	poll(NULL, 0, 1100);
	deny_once(d);
	log = read_log(d);
	CU_ASSERT_EQUAL(COUNT(log, "event=denied "), 2);
	CU_ASSERT_EQUAL(COUNT(log, "<5>event=log_suppressed kind=denied suppressed=2 ",
			      "msg=\"2 denied events suppressed by the rate limit\""),
			1);
	/* The summary comes right before the event that ended the window. */
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "suppressed by the rate limit\"\n<5>event=denied "));
	free(log);
	it_stop_ok(d);
}

/* SIGHUP applies new limits: burst 1 first, then unlimited. */
static void test_rate_limit_reload(void)
{
	struct nestd *d = it_start("log_rate_burst = 1\nlog_rate_interval_ms = 3600000\n"
				   "[policy]\nmax_hwpts = 1\n");
	char *cfg, *log, *at;
	int fd;

	deny_once(d);
	deny_once(d);
	/* Rewrite the burst in place and reload. */
	fd = open(d->cfg_path, O_RDONLY);
	CU_ASSERT_FATAL(fd >= 0);
	cfg = slurp_fd(fd);
	close(fd);
	at = strstr(cfg, "log_rate_burst = 1\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(at);
	at[strlen("log_rate_burst = ")] = '0';
	CU_ASSERT_EQUAL_FATAL(it_write_file(d->cfg_path, cfg), 0);
	free(cfg);
	CU_ASSERT_EQUAL(kill(d->pid, SIGHUP), 0);
	free(WAIT_LINE(d, "event=config_reload", "log_rate_burst=0 "));
	for (int i = 0; i < 5; i++)
		deny_once(d);
	log = read_log(d);
	CU_ASSERT_EQUAL(
	    COUNT(log, "event=config_reload", "log_rate_burst=0 ", "log_rate_interval_ms=3600000 "),
	    1);
	CU_ASSERT_EQUAL(COUNT(log, "event=log_suppressed kind=denied suppressed=1 "), 1);
	CU_ASSERT_EQUAL(COUNT(log, "event=denied "), 6);
	free(log);
	it_stop_ok(d);
}

int main(int argc, char **argv)
{
	static const struct it_case cases[] = {
	    {"connect_disconnect_creds", test_connect_disconnect_creds},
	    {"refused_creds", test_refused_creds},
	    {"hostile_client_name", test_hostile_client_name},
	    {"rate_limit_burst", test_rate_limit_burst},
	    {"rate_limit_window", test_rate_limit_window},
	    {"rate_limit_reload", test_rate_limit_reload},
	    {NULL, NULL},
	};

	return it_main(argc, argv, "log_events", cases);
}
