/* SPDX-License-Identifier: MIT */
/*
 * Per-client limits on an injected clock: the request-rate token bucket
 * (policy.c), quota_reached()'s 0-is-unlimited rule, and which config
 * changes a reload may apply (config_reload_conflict).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "util/config.h"
#include "util/policy.h"
#include "unit_run.h"

#define MS 1000000ull

/* Takes n requests at time now; returns how many the bucket granted. */
static unsigned take_n(struct rate_limiter *rl, uint32_t rate, uint64_t now, unsigned n)
{
	unsigned granted = 0;

	for (unsigned i = 0; i < n; i++)
		granted += rate_limiter_take_at(rl, rate, now);
	return granted;
}

/* A full second's worth at first, then nothing until time passes. */
static void test_bucket_burst(void)
{
	struct rate_limiter rl = {0};

	CU_ASSERT_EQUAL(take_n(&rl, 20, 5000 * MS, 40), 20);
	CU_ASSERT_EQUAL(take_n(&rl, 20, 5000 * MS, 1), 0);
}

/* rate/1000 per millisecond: 20/s is one request per 50 ms, never earlier. */
static void test_bucket_refill(void)
{
	struct rate_limiter rl = {0};
	uint64_t t = 7 * MS;

	CU_ASSERT_EQUAL(take_n(&rl, 20, t, 20), 20);
	CU_ASSERT_EQUAL(take_n(&rl, 20, t + 49 * MS, 1), 0);
	CU_ASSERT_EQUAL(take_n(&rl, 20, t + 50 * MS, 2), 1);
	/* Partial milliseconds are kept, not lost: 25 ms + 25 ms make one more. */
	CU_ASSERT_EQUAL(take_n(&rl, 20, t + 75 * MS + MS / 2, 1), 0);
	CU_ASSERT_EQUAL(take_n(&rl, 20, t + 100 * MS + MS / 2, 1), 1);
}

/* A long idle refills at most one second's worth. */
static void test_bucket_cap(void)
{
	struct rate_limiter rl = {0};

	CU_ASSERT_EQUAL(take_n(&rl, 10, 1 * MS, 10), 10);
	CU_ASSERT_EQUAL(take_n(&rl, 10, 3600000 * MS, 100), 10);
}

/* Rate 0 is unlimited; so is a limit of 0 for the counting quotas. */
static void test_zero_unlimited(void)
{
	struct rate_limiter rl = {0};

	CU_ASSERT_EQUAL(take_n(&rl, 0, 1 * MS, 100000), 100000);
	CU_ASSERT(!quota_reached(1000000, 0));
	CU_ASSERT(!quota_reached(1, 2));
	CU_ASSERT(quota_reached(2, 2));
	CU_ASSERT(quota_reached(3, 2));
}

static int load_text(struct config *cfg, const char *text, char *err, size_t len)
{
	char path[] = "/tmp/nestd-unit-cfg.XXXXXX";
	int fd = mkstemp(path), rc;

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
	config_defaults(cfg);
	rc = config_load(cfg, path, err, len);
	unlink(path);
	return rc;
}

static void test_new_keys(void)
{
	struct config cfg;
	char err[256];

	CU_ASSERT_EQUAL_FATAL(
	    load_text(&cfg,
		      "[policy]\nmax_clients_per_uid = 3\nmax_clients_per_pid = 2\n"
		      "hello_timeout_ms = 250\n",
		      err, sizeof(err)),
	    0);
	CU_ASSERT_EQUAL(cfg.quota.max_clients_per_uid, 3);
	CU_ASSERT_EQUAL(cfg.quota.max_clients_per_pid, 2);
	CU_ASSERT_EQUAL(cfg.quota.hello_timeout_ms, 250);
	config_defaults(&cfg);
	CU_ASSERT_EQUAL(cfg.quota.max_clients_per_uid, 128);
	CU_ASSERT_EQUAL(cfg.quota.max_clients_per_pid, 64);
	CU_ASSERT_EQUAL(cfg.quota.hello_timeout_ms, 10000);
	/* Unlimited buffering is not offered: 0 is refused, on its line. */
	CU_ASSERT_EQUAL(load_text(&cfg, "[policy]\nmax_buffered_bytes = 0\n", err, sizeof(err)), 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "max_buffered_bytes"));
}

/* The shared queues' knobs: 2-CPU defaults, their ranges, all reloadable. */
static void test_queue_keys(void)
{
	static struct config a, b;
	char err[256];

	config_defaults(&a);
	CU_ASSERT_EQUAL(a.queue_poll_us, 50);
	CU_ASSERT_EQUAL(a.queue_poll_slice_us, 20);
	CU_ASSERT_EQUAL(a.queue_budget, 32);
	CU_ASSERT_EQUAL(a.batch_max_entries, 1024);
	CU_ASSERT_EQUAL_FATAL(load_text(&a, "[device d0]\nkind = vtd\n", err, sizeof(err)), 0);
	CU_ASSERT_EQUAL_FATAL(
	    load_text(&b,
		      "[coalesce]\nqueue_poll_us = 0\nqueue_poll_slice_us = 10000\n"
		      "queue_budget = 4096\nbatch_max_entries = 0\n[device d0]\nkind = vtd\n",
		      err, sizeof(err)),
	    0);
	CU_ASSERT_EQUAL(b.queue_poll_us, 0);
	CU_ASSERT_EQUAL(b.queue_poll_slice_us, 10000);
	CU_ASSERT_EQUAL(b.queue_budget, 4096);
	CU_ASSERT_EQUAL(b.batch_max_entries, 0);
	CU_ASSERT_PTR_NULL(config_reload_conflict(&a, &b));
	/* Out of range: refused with the line. */
	CU_ASSERT_EQUAL(load_text(&b, "[coalesce]\nqueue_poll_slice_us = 0\n", err, sizeof(err)),
			2);
	CU_ASSERT_EQUAL(
	    load_text(&b, "[coalesce]\nqueue_poll_slice_us = 10001\n", err, sizeof(err)), 2);
	CU_ASSERT_EQUAL(load_text(&b, "[coalesce]\nqueue_budget = 0\n", err, sizeof(err)), 2);
	CU_ASSERT_EQUAL(load_text(&b, "[coalesce]\nqueue_budget = 4097\n", err, sizeof(err)), 2);
	CU_ASSERT_EQUAL(load_text(&b, "[coalesce]\nqueue_poll_us = 1000001\n", err, sizeof(err)),
			2);
}

static void test_reload_conflict(void)
{
	static struct config a, b;
	char err[256];
	const char *why;

	CU_ASSERT_EQUAL_FATAL(load_text(&a, "[device d0]\nkind = vtd\n", err, sizeof(err)), 0);
	/* Policy, quotas, limits, coalescing, logging and device allow lists: all reloadable. */
	CU_ASSERT_EQUAL_FATAL(
	    load_text(&b,
		      "[daemon]\nlog_level = debug\n[limits]\nmax_entries = 16\n"
		      "[coalesce]\nenabled = false\n"
		      "[policy]\nmax_hwpts = 1\nadmin_groups = 0\nallow_users = 0\n"
		      "max_clients_per_uid = 1\n"
		      "[device d0]\nkind = vtd\nallow_users = 0\n",
		      err, sizeof(err)),
	    0);
	CU_ASSERT_PTR_NULL(config_reload_conflict(&a, &b));
	static const struct {
		const char *text, *key;
	} cases[] = {
	    {"[daemon]\nsocket = /tmp/other.sock\n[device d0]\nkind = vtd\n", "[daemon] socket"},
	    {"[daemon]\nbackend = iommufd\n[device d0]\nkind = vtd\n", "[daemon] backend"},
	    {"[daemon]\nstate_file =\n[device d0]\nkind = vtd\n", "[daemon] state_file"},
	    {"[limits]\nmax_message_size = 8192\n[device d0]\nkind = vtd\n",
	     "[limits] max_message_size"},
	    {"[device d0]\nkind = selftest\n", "[device]"},
	    {"[device d0]\nkind = vtd\n[device d1]\nkind = vtd\n", "[device]"},
	    {"[sim.fault]\nmode = index\n[device d0]\nkind = vtd\n", "[sim.fault]"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CU_ASSERT_EQUAL_FATAL(load_text(&b, cases[i].text, err, sizeof(err)), 0);
		why = config_reload_conflict(&a, &b);
		CU_ASSERT_PTR_NOT_NULL_FATAL(why);
		if (!strstr(why, cases[i].key))
			fprintf(stderr, "case %zu: \"%s\" does not name %s\n", i, why,
				cases[i].key);
		CU_ASSERT_PTR_NOT_NULL(strstr(why, cases[i].key));
	}
}

int main(void)
{
	static const struct unit_case tests[] = {
	    {"bucket: burst", test_bucket_burst},
	    {"bucket: refill", test_bucket_refill},
	    {"bucket: cap", test_bucket_cap},
	    {"zero is unlimited", test_zero_unlimited},
	    {"config: new limit keys", test_new_keys},
	    {"config: shared-queue keys", test_queue_keys},
	    {"config: reload conflicts", test_reload_conflict},
	};

	return unit_run("policy", UNIT_CASES(tests));
}
