/* SPDX-License-Identifier: MIT */
/*
 * Policy and quotas from the config, through the real daemon: who may
 * connect (SO_PEERCRED at accept), who may use a device, and the per-client
 * limits, each answered with its errno and the limit that was hit.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

/* The tests run as some uid; this one is certainly not it. */
static unsigned other_uid(void)
{
	return getuid() == 4242 ? 4243 : 4242;
}

static void test_uid_not_allowed(void)
{
	char body[128];
	struct nestd *d;
	IommuNest__Reply *rep;
	int fd, err = 0;

	snprintf(body, sizeof(body), "[policy]\nallow_users = %u\n", other_uid());
	d = it_start(body);
	fd = it_raw_connect(d);
	rep = it_raw_recv(fd, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(rep);
	CU_ASSERT_EQUAL(rep->id, 0);
	CU_ASSERT_EQUAL(rep->status, -EACCES);
	CU_ASSERT_PTR_NOT_NULL(strstr(rep->error, "not allowed to connect"));
	iommu_nest__reply__free_unpacked(rep, NULL);
	CU_ASSERT(it_raw_eof(fd));
	it_raw_close(fd);
	it_stop_ok(d);
}

static void test_uid_allowed(void)
{
	char body[128];
	struct nestd *d;
	struct iommu_nest *h;

	snprintf(body, sizeof(body), "[policy]\nallow_users = %u %u\n", other_uid(), getuid());
	d = it_start(body);
	h = it_connect(d, "allowed");
	CU_ASSERT_EQUAL(it_stats(h).denials, 0);
	it_stop_ok(d);
}

/* A device only another uid may use: not listed in Hello, -EPERM on use. */
static void test_device_policy(void)
{
	char body[256];
	struct nestd *d;
	struct iommu_nest *h;
	uint32_t id = 0, mine;

	snprintf(body, sizeof(body), "[device %s]\nkind = selftest\nallow_users = %u\n", IT_ST1,
		 other_uid());
	d = it_start(body);
	h = it_connect(d, "device-policy");
	CU_ASSERT(!it_has_device(h, IT_ST1));
	CU_ASSERT(it_has_device(h, IT_ST0));
	CU_ASSERT_EQUAL(iommu_nest_alloc_selftest(h, IT_ST1, 1, &id), -EPERM);
	mine = it_alloc_st(h, IT_ST0, 1);
	CU_ASSERT_EQUAL(iommu_nest_attach(h, IT_ST1, mine), -EPERM);
	CU_ASSERT_EQUAL(it_stats(h).denials, 2);
	it_stop_ok(d);
}

static void test_hwpt_quota(void)
{
	struct nestd *d = it_start("[policy]\nmax_hwpts = 2\n");
	struct iommu_nest *h = it_connect(d, "quota");
	uint32_t a = it_alloc_st(h, IT_ST0, 1), id = 0;

	it_alloc_st(h, IT_ST0, 1);
	CU_ASSERT_EQUAL(iommu_nest_alloc_selftest(h, IT_ST0, 1, &id), -EDQUOT);
	CU_ASSERT_EQUAL(iommu_nest_last_limit(h), 2);
	/* The quota is on live HWPTs: destroying one makes room again. */
	CU_ASSERT_EQUAL(iommu_nest_destroy(h, a), 0);
	CU_ASSERT_EQUAL(iommu_nest_alloc_selftest(h, IT_ST0, 1, &id), 0);
	it_stop_ok(d);
}

/*
 * A burst over max_requests_per_sec: Hello and the first 19 requests fit in
 * the second's worth the bucket starts with; beyond that only what can have
 * refilled while the loop ran (measured, not assumed: valgrind and a busy
 * machine make it slow), and every refusal names the limit.
 */
static void test_request_rate(void)
{
	struct nestd *d = it_start("[policy]\nmax_requests_per_sec = 20\n");
	uint64_t t0 = it_now_ns(), granted_max;
	struct iommu_nest *h = it_connect(d, "rate");
	struct iommu_nest_stats st;
	int refused = 0, accepted = 0;

	for (int i = 0; i < 40; i++) {
		int rc = iommu_nest_stats(h, &st);

		if (rc == -EAGAIN) {
			refused++;
			CU_ASSERT_EQUAL(iommu_nest_last_limit(h), 20);
		} else {
			CU_ASSERT_EQUAL(rc, 0);
			accepted++;
		}
	}
	/* The bucket filled at Hello, after t0: no refill happened outside [t0, now]. */
	granted_max = it_bucket_max_granted(20, it_now_ns() - t0);
	fprintf(stderr, "    accepted %d of 40 (at most %llu could be, Hello included)\n", accepted,
		(unsigned long long)granted_max);
	CU_ASSERT(accepted >= 19);
	CU_ASSERT((uint64_t)accepted + 1 <= granted_max);
	CU_ASSERT_EQUAL(accepted + refused, 40);
	it_stop_ok(d);
}

static void ignore(struct iommu_nest *h, uint64_t token, const struct iommu_nest_inv_summary *sum,
		   struct iommu_nest_entry_result *res, size_t n, void *opaque)
{
	int *eagain = opaque;

	if (sum->status == -EAGAIN)
		(*eagain)++;
}

/* More invalidations queued in one pass than max_inflight: the excess gets -EAGAIN. */
static void test_inflight_limit(void)
{
	struct nestd *d = it_start("[policy]\nmax_inflight = 4\n");
	struct iommu_nest *h = it_connect(d, "inflight");
	uint32_t st = it_alloc_st(h, IT_ST0, 1);
	struct iommu_nest_selftest_inv e = { 0, 1 };
	static struct iommu_nest_entry_result res[10];
	uint64_t token;
	int eagain = 0;

	it_freeze(d);
	for (int i = 0; i < 10; i++)
		CU_ASSERT_EQUAL(iommu_nest_invalidate_submit(h, st, IOMMU_NEST_INV_DATA_SELFTEST, &e,
							     1, 0, &res[i], ignore, &eagain,
							     &token),
				0);
	it_thaw(d);
	while (iommu_nest_in_flight(h) || iommu_nest_pending(h))
		CU_ASSERT_FATAL(iommu_nest_process(h) >= 0);
	CU_ASSERT_EQUAL(eagain, 6);
	it_stop_ok(d);
}

int main(int argc, char **argv)
{
	static const struct it_case cases[] = {
		{ "uid_not_allowed", test_uid_not_allowed },
		{ "uid_allowed", test_uid_allowed },
		{ "device_policy", test_device_policy },
		{ "hwpt_quota", test_hwpt_quota },
		{ "request_rate", test_request_rate },
		{ "inflight_limit", test_inflight_limit },
		{ NULL, NULL },
	};

	return it_main(argc, argv, "policy", cases);
}
