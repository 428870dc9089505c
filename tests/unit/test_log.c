/* SPDX-License-Identifier: MIT */
/*
 * The structured event log (log.c): logfmt escaping (a client's string can
 * never forge a key or a line), the per-kind rate limiter on an injected
 * clock, and the exact line written to stderr, captured through a memfd.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "util/log.h"
#include "unit_run.h"

/* ---- Helpers ----------------------------------------------------------------- */

static uint64_t fake_now = 1000000;

static uint64_t fake_clock(void)
{
	return fake_now;
}

static int saved_stderr = -1, cap_fd = -1;
static char captured[16384];

static void capture_begin(void)
{
	fflush(stderr);
	saved_stderr = dup(STDERR_FILENO);
	cap_fd = memfd_create("log", MFD_CLOEXEC);
	CU_ASSERT_FATAL(saved_stderr >= 0 && cap_fd >= 0);
	CU_ASSERT_FATAL(dup2(cap_fd, STDERR_FILENO) == STDERR_FILENO);
}

/* Restores stderr and returns what was written meanwhile. */
static const char *capture_end(void)
{
	ssize_t n;

	fflush(stderr);
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	lseek(cap_fd, 0, SEEK_SET);
	n = read(cap_fd, captured, sizeof(captured) - 1);
	close(cap_fd);
	captured[n > 0 ? n : 0] = '\0';
	return captured;
}

static size_t count_of(const char *hay, const char *needle)
{
	size_t n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* A fresh configuration, so tests do not see each other's counters. */
static void reset(uint32_t burst, uint32_t interval_ms)
{
	log_set_level(LOG_DEBUG);
	log_set_clock(fake_clock);
	log_configure(burst, interval_ms);
	/* Drains what a previous test left in the limiter (summary ignored). */
	capture_begin();
	log_flush_suppressed();
	capture_end();
	/* New windows for every kind (the clock only goes forward). */
	fake_now += 100000000;
}

static const char *fmt1(const struct log_field *f, size_t n, const char *msg)
{
	static char line[512];

	log_format_line(line, sizeof(line), LOG_INFO, LOG_EV_CONNECT, f, n, msg);
	return line;
}

/* ---- logfmt ------------------------------------------------------------------ */

static void test_format_plain(void)
{
	const char *l =
	    fmt1(LOG_FIELDS(LF_UINT("session", 3), LF_INT("pid", 123), LF_UINT("uid", 0),
			    LF_UINT("gid", 0), LF_STR("comm", "qemu")),
		 "client connected");

	CU_ASSERT_STRING_EQUAL(l, "<6>event=client_connect session=3 pid=123 uid=0 gid=0 comm=qemu "
				  "msg=\"client connected\"");
}

static void test_format_numbers(void)
{
	const char *l = fmt1(LOG_FIELDS(LF_INT("error", -13), LF_UINT("big", UINT64_MAX),
					LF_HEX("iova", 0x1000), LF_HEX("zero", 0)),
			     "x");

	CU_ASSERT_STRING_EQUAL(l, "<6>event=client_connect error=-13 big=18446744073709551615 "
				  "iova=0x1000 zero=0 msg=x");
}

static void test_format_quoting(void)
{
	CU_ASSERT_STRING_EQUAL(fmt1(LOG_FIELDS(LF_STR("c", "two words")), "m"),
			       "<6>event=client_connect c=\"two words\" msg=m");
	CU_ASSERT_STRING_EQUAL(fmt1(LOG_FIELDS(LF_STR("c", "")), "m"),
			       "<6>event=client_connect c=\"\" msg=m");
	CU_ASSERT_STRING_EQUAL(fmt1(LOG_FIELDS(LF_STR("c", NULL)), "m"),
			       "<6>event=client_connect c=\"\" msg=m");
	CU_ASSERT_STRING_EQUAL(fmt1(LOG_FIELDS(LF_STR("c", "a=b")), "m"),
			       "<6>event=client_connect c=\"a=b\" msg=m");
	CU_ASSERT_STRING_EQUAL(fmt1(LOG_FIELDS(LF_STR("c", "say \"hi\" \\o/")), "m"),
			       "<6>event=client_connect c=\"say \\\"hi\\\" \\\\o/\" msg=m");
}

static void test_format_control_chars(void)
{
	CU_ASSERT_STRING_EQUAL(fmt1(LOG_FIELDS(LF_STR("c", "a\nb\tc\rd\x01"
							   "e\x7f")),
				    "m"),
			       "<6>event=client_connect c=\"a\\nb\\tc\\rd\\x01e\\x7f\" msg=m");
	/* Bytes outside ASCII are escaped too: the line stays plain ASCII. */
	CU_ASSERT_STRING_EQUAL(fmt1(LOG_FIELDS(LF_STR("c", "caf\xc3\xa9")), "m"),
			       "<6>event=client_connect c=\"caf\\xc3\\xa9\" msg=m");
}

/* A hostile comm / client name cannot add a line or a key of its own. */
static void test_format_injection(void)
{
	const char *l = fmt1(LOG_FIELDS(LF_STR("comm", "x\n<3>event=denied uid=0"),
					LF_STR("client", "a\" uid=0 b=\"")),
			     "hi\nevent=fake");

	CU_ASSERT_PTR_NULL(strchr(l, '\n'));
	CU_ASSERT_EQUAL(count_of(l, "event="), 3); /* ours and two inside quotes */
	CU_ASSERT_STRING_EQUAL(l, "<6>event=client_connect comm=\"x\\n<3>event=denied uid=0\" "
				  "client=\"a\\\" uid=0 b=\\\"\" msg=\"hi\\nevent=fake\"");
}

/* A cut line is still well-formed: the last value is closed, NUL-terminated. */
static void test_format_truncation(void)
{
	char line[48];
	char big[200];
	size_t len;

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	big[10] = ' ';
	len = log_format_line(line, sizeof(line), LOG_INFO, LOG_EV_CONNECT,
			      LOG_FIELDS(LF_STR("v", big)), "m");
	CU_ASSERT(len < sizeof(line));
	CU_ASSERT_EQUAL(strlen(line), len);
	CU_ASSERT_EQUAL(line[len - 1], '"');
	CU_ASSERT_EQUAL(count_of(line, "\""), 2);
	CU_ASSERT_PTR_NULL(strstr(line, "msg="));
	/* An escape sequence is never cut in half. */
	memset(big, '\n', sizeof(big) - 1);
	len = log_format_line(line, sizeof(line), LOG_INFO, LOG_EV_CONNECT,
			      LOG_FIELDS(LF_STR("v", big)), "m");
	CU_ASSERT_EQUAL(line[len - 1], '"');
	CU_ASSERT_EQUAL(line[len - 2], 'n');
	CU_ASSERT_EQUAL(line[len - 3], '\\');
}

/* ---- The limiter as a pure function -------------------------------------- */

static void test_ratelimit_burst(void)
{
	struct log_ratelimit rl = {0};
	uint64_t rep = 99;
	int passed = 0;

	for (int i = 0; i < 10; i++)
		passed += log_ratelimit_take(&rl, 3, 1000, 5000 + i, &rep);
	CU_ASSERT_EQUAL(passed, 3);
	CU_ASSERT_EQUAL(rl.suppressed, 7);
	CU_ASSERT_EQUAL(rep, 0);
	/* Still in the window. */
	CU_ASSERT_FALSE(log_ratelimit_take(&rl, 3, 1000, 5999, &rep));
	CU_ASSERT_EQUAL(rep, 0);
	/* The window ends: the first event reports what was dropped, once. */
	CU_ASSERT_TRUE(log_ratelimit_take(&rl, 3, 1000, 6000, &rep));
	CU_ASSERT_EQUAL(rep, 8);
	CU_ASSERT_TRUE(log_ratelimit_take(&rl, 3, 1000, 6001, &rep));
	CU_ASSERT_EQUAL(rep, 0);
	CU_ASSERT_EQUAL(rl.suppressed, 0);
}

static void test_ratelimit_unlimited(void)
{
	struct log_ratelimit rl = {0};
	uint64_t rep;

	for (int i = 0; i < 1000; i++) {
		CU_ASSERT_TRUE(log_ratelimit_take(&rl, 0, 1000, 7, &rep));
		CU_ASSERT_TRUE(log_ratelimit_take(&rl, 5, 0, 7, &rep));
	}
	/* Limited, then unlimited by a reload: what was held back is reported. */
	rl = (struct log_ratelimit){0};
	log_ratelimit_take(&rl, 1, 1000, 0, &rep);
	log_ratelimit_take(&rl, 1, 1000, 1, &rep);
	CU_ASSERT_TRUE(log_ratelimit_take(&rl, 0, 0, 2, &rep));
	CU_ASSERT_EQUAL(rep, 1);
	/* A reload raising the burst inside the window: reported at once too. */
	rl = (struct log_ratelimit){0};
	log_ratelimit_take(&rl, 1, 1000, 0, &rep);
	log_ratelimit_take(&rl, 1, 1000, 1, &rep);
	log_ratelimit_take(&rl, 1, 1000, 2, &rep);
	CU_ASSERT_TRUE(log_ratelimit_take(&rl, 0, 1000, 3, &rep));
	CU_ASSERT_EQUAL(rep, 2);
	CU_ASSERT_TRUE(log_ratelimit_take(&rl, 0, 1000, 4, &rep));
	CU_ASSERT_EQUAL(rep, 0);
}

/* The first window opens at the first event, whatever the clock reads. */
static void test_ratelimit_first_window(void)
{
	struct log_ratelimit rl = {0};
	uint64_t rep;

	CU_ASSERT_TRUE(log_ratelimit_take(&rl, 1, 10000, 0, &rep));
	CU_ASSERT_FALSE(log_ratelimit_take(&rl, 1, 10000, 9999, &rep));
	CU_ASSERT_TRUE(log_ratelimit_take(&rl, 1, 10000, 10000, &rep));
	CU_ASSERT_EQUAL(rep, 1);
}

/* ---- log_event() on stderr --------------------------------------------------- */

static void test_event_line(void)
{
	const struct ucred c = {.pid = 123, .uid = 0, .gid = 0};
	const char *out;

	reset(0, 0);
	capture_begin();
	log_event(LOG_INFO, LOG_EV_CONNECT,
		  LOG_FIELDS(LF_UINT("session", 3), LF_CRED(c), LF_STR("comm", "qemu")),
		  "client %s", "connected");
	out = capture_end();
	CU_ASSERT_STRING_EQUAL(out, "<6>event=client_connect session=3 pid=123 uid=0 gid=0 "
				    "comm=qemu msg=\"client connected\"\n");
}

static void test_event_level_filter(void)
{
	const char *out;

	reset(1, 1000);
	log_set_level(LOG_NOTICE);
	capture_begin();
	for (int i = 0; i < 5; i++)
		log_event(LOG_INFO, LOG_EV_HWPT_ALLOC, NULL, 0, "filtered");
	log_set_level(LOG_DEBUG);
	/* Filtered events do not use up the burst. */
	log_event(LOG_INFO, LOG_EV_HWPT_ALLOC, NULL, 0, "shown");
	out = capture_end();
	CU_ASSERT_STRING_EQUAL(out, "<6>event=hwpt_alloc msg=shown\n");
}

static void test_event_rate_limit(void)
{
	const char *out;

	reset(2, 1000);
	capture_begin();
	for (int i = 0; i < 5; i++)
		log_event(LOG_NOTICE, LOG_EV_DENIED, LOG_FIELDS(LF_INT("n", i)), "denied");
	/* Another kind has its own budget. */
	log_event(LOG_INFO, LOG_EV_CONNECT, NULL, 0, "c1");
	log_event(LOG_INFO, LOG_EV_CONNECT, NULL, 0, "c2");
	fake_now += 999;
	log_event(LOG_NOTICE, LOG_EV_DENIED, LOG_FIELDS(LF_INT("n", 5)), "denied");
	fake_now += 1;
	log_event(LOG_NOTICE, LOG_EV_DENIED, LOG_FIELDS(LF_INT("n", 6)), "denied");
	out = capture_end();
	CU_ASSERT_STRING_EQUAL(out, "<5>event=denied n=0 msg=denied\n"
				    "<5>event=denied n=1 msg=denied\n"
				    "<6>event=client_connect msg=c1\n"
				    "<6>event=client_connect msg=c2\n"
				    "<5>event=log_suppressed kind=denied suppressed=4 "
				    "msg=\"4 denied events suppressed by the rate limit\"\n"
				    "<5>event=denied n=6 msg=denied\n");
}

static void test_event_flush(void)
{
	const char *out;

	reset(1, 1000);
	capture_begin();
	log_event(LOG_ERR, LOG_EV_BACKEND_ERROR, NULL, 0, "e");
	log_event(LOG_ERR, LOG_EV_BACKEND_ERROR, NULL, 0, "e");
	log_event(LOG_ERR, LOG_EV_BACKEND_ERROR, NULL, 0, "e");
	log_flush_suppressed();
	log_flush_suppressed(); /* nothing left the second time */
	out = capture_end();
	CU_ASSERT_STRING_EQUAL(out,
			       "<3>event=backend_error msg=e\n"
			       "<5>event=log_suppressed kind=backend_error suppressed=2 "
			       "msg=\"2 backend_error events suppressed by the rate limit\"\n");
}

/*
 * JOURNAL_STREAM naming another file is not the journal: stderr was
 * redirected since systemd set it up.
 */
static void test_event_journal_stream_mismatch(void)
{
	const char *out;

	reset(0, 0);
	setenv("JOURNAL_STREAM", "1:1", 1);
	log_configure(0, 0);
	capture_begin();
	log_event(LOG_INFO, LOG_EV_START, NULL, 0, "s");
	out = capture_end();
	unsetenv("JOURNAL_STREAM");
	log_configure(0, 0);
	CU_ASSERT_STRING_EQUAL(out, "<6>event=daemon_start msg=s\n");
}

/*
 * Stderr is "the journal" but there is no journal socket (sd_journal_sendv
 * would drop the entry silently): the line stays on stderr.
 */
static void test_event_journal_fallback(void)
{
	struct stat st;
	char env[64];
	const char *out;

	if (!access("/run/systemd/journal/socket", F_OK)) {
		/* A real journal would take the entry; the systemd test covers form B. */
		fprintf(stdout, "(skipped: a journald is running) ");
		return;
	}
	reset(0, 0);
	capture_begin();
	CU_ASSERT_FATAL(fstat(STDERR_FILENO, &st) == 0);
	snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", env, 1);
	log_configure(0, 0);
	log_event(LOG_INFO, LOG_EV_STOP, LOG_FIELDS(LF_INT("signal", 15)), "bye");
	out = capture_end();
	unsetenv("JOURNAL_STREAM");
	log_configure(0, 0);
	CU_ASSERT_STRING_EQUAL(out, "<6>event=daemon_stop signal=15 msg=bye\n");
}

static void test_read_comm(void)
{
	char comm[16] = "junk", want[16] = "";

	/* Not "test_log": under valgrind the process has valgrind's name. */
	CU_ASSERT_FATAL(prctl(PR_GET_NAME, want) == 0);
	log_read_comm(getpid(), comm, sizeof(comm));
	CU_ASSERT_STRING_EQUAL(comm, want);
	log_read_comm(0, comm, sizeof(comm));
	CU_ASSERT_STRING_EQUAL(comm, "");
}

static void test_event_names(void)
{
	CU_ASSERT_STRING_EQUAL(log_event_name(LOG_EV_CONNECT), "client_connect");
	CU_ASSERT_STRING_EQUAL(log_event_name(LOG_EV_SUPPRESSED), "log_suppressed");
	CU_ASSERT_STRING_EQUAL(log_event_name(LOG_EV_COUNT), "unknown");
	for (int i = 0; i < LOG_EV_COUNT; i++)
		CU_ASSERT_PTR_NOT_NULL(log_event_name((enum log_event)i));
}

int main(void)
{
	static const struct unit_case tests[] = {
	    {"format: plain line", test_format_plain},
	    {"format: numbers", test_format_numbers},
	    {"format: quoting", test_format_quoting},
	    {"format: control chars", test_format_control_chars},
	    {"format: no injection", test_format_injection},
	    {"format: truncation", test_format_truncation},
	    {"ratelimit: burst and summary", test_ratelimit_burst},
	    {"ratelimit: unlimited", test_ratelimit_unlimited},
	    {"ratelimit: first window", test_ratelimit_first_window},
	    {"event: line on stderr", test_event_line},
	    {"event: level filter", test_event_level_filter},
	    {"event: rate limit per kind", test_event_rate_limit},
	    {"event: flush suppressed", test_event_flush},
	    {"event: JOURNAL_STREAM mismatch", test_event_journal_stream_mismatch},
	    {"event: journal fallback", test_event_journal_fallback},
	    {"read_comm", test_read_comm},
	    {"event names", test_event_names},
	};
	int rc;

	unsetenv("JOURNAL_STREAM");
	rc = unit_run("log", UNIT_CASES(tests));
	return rc;
}
