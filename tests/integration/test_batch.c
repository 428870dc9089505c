/* SPDX-License-Identifier: MIT */
/*
 * Batches against the sim's model IOTLB: stop-at-first-failure shape,
 * continue-past-errors, injected backend faults (errno and hw_error),
 * coalescing visible in entries_submitted, leaf vs non-leaf, and the
 * coalescer's invariant (every page of every accepted entry is flushed) on
 * a seeded random storm under several coalescing configurations.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define NA IOMMU_NEST_ENTRY_NOT_ATTEMPTED
#define DONE IOMMU_NEST_ENTRY_DONE
#define FAILED IOMMU_NEST_ENTRY_FAILED
#define LEAF IOMMU_NEST_VTD_INV_FLAGS_LEAF
#define IOTLB IOMMU_NEST_SIM_IOTLB
#define PSC IOMMU_NEST_SIM_PSC
#define NOCOALESCE "[coalesce]\nenabled = false"
#define BASE 0x200000ULL /* 2 MiB: 512-page aligned */
#define N 8

struct fx {
	struct nestd *d;
	struct iommu_nest *h;
	uint32_t hwpt;
};

/* Daemon with body, one client, one VT-d HWPT; false if the test must skip. */
static bool fx_open(struct fx *f, const char *body, uint32_t caps)
{
	f->d = it_start(body);
	f->h = it_connect(f->d, "batch");
	if (!it_has_device(f->h, IT_VTD0) || !it_has_cap(f->h, caps))
		return false;
	f->hwpt = it_alloc_vtd(f->h, IT_VTD0);
	return true;
}

#define FX_OPEN(f, body, caps)                                               \
	do {                                                                 \
		if (!fx_open((f), (body), (caps)))                           \
			IT_SKIP("needs " IT_VTD0 " and the sim model/faults"); \
	} while (0)

/* N adjacent single pages from BASE; entry i is page i. */
static void pages_entries(struct iommu_nest_vtd_inv *e, uint32_t n, uint32_t flags)
{
	for (uint32_t i = 0; i < n; i++)
		e[i] = (struct iommu_nest_vtd_inv){ .addr = BASE + i * IT_PAGE, .npages = 1,
						    .flags = flags };
}

static uint64_t page_iotlb(struct fx *f, uint32_t i)
{
	return it_iotlb_pages(f->h, f->hwpt, BASE + i * IT_PAGE, 1);
}

static int inv(struct fx *f, const struct iommu_nest_vtd_inv *e, size_t n, uint32_t flags,
	       struct iommu_nest_entry_result *res, struct iommu_nest_inv_summary *sum)
{
	memset(res, 0xa5, n * sizeof(*res));
	memset(sum, 0xa5, sizeof(*sum));
	return iommu_nest_invalidate(f->h, f->hwpt, IOMMU_NEST_INV_DATA_VTD_S1, e, n, flags, res,
				     sum);
}

static void inject(struct fx *f, uint32_t mode, uint32_t index, uint64_t addr, int32_t err,
		   uint32_t hw, uint32_t count)
{
	struct iommu_nest_fault flt = {
		.hwpt_id = f->hwpt, .mode = mode, .index = index, .addr = addr,
		.error = err, .hw_error = hw, .count = count,
	};

	CU_ASSERT_EQUAL_FATAL(iommu_nest_inject_fault(f->h, &flt), 0);
}

static void clear_fault(struct fx *f)
{
	struct iommu_nest_fault flt = { .mode = IOMMU_NEST_FAULT_CLEAR };

	CU_ASSERT_EQUAL_FATAL(iommu_nest_inject_fault(f->h, &flt), 0);
}

/* ---- k-th entry fails ---------------------------------------------------------- */

static void kth_fails(struct fx *f, uint32_t k, bool exact)
{
	struct iommu_nest_vtd_inv e[N];
	struct iommu_nest_entry_result res[N];
	struct iommu_nest_inv_summary sum;
	struct it_expect want[N];
	int rc;

	it_populate(f->h, f->hwpt, BASE, N, IOTLB);
	pages_entries(e, N, 0);
	e[1].flags = LEAF;
	e[k].addr |= 0x10; /* not 4 KiB aligned */
	for (uint32_t i = 0; i < N; i++)
		want[i] = (struct it_expect){ .state = i < k ? DONE : NA };
	want[k] = (struct it_expect){ .state = FAILED, .error = -EINVAL };

	rc = inv(f, e, N, 0, res, &sum);
	CU_ASSERT_EQUAL(rc, -EINVAL);
	CU_ASSERT_EQUAL(sum.status, -EINVAL);
	CU_ASSERT_EQUAL(sum.entries_handled, k);
	it_check_results(res, want, N);
	for (uint32_t i = 0; i < k; i++)
		CU_ASSERT_EQUAL(page_iotlb(f, i), 0);
	/*
	 * Only the k valid pages before the invalid entry go out: coalesced,
	 * adjacent pages make one submitted entry; one for one, k.
	 */
	if (!exact) {
		CU_ASSERT_EQUAL(sum.entries_submitted, k ? 1 : 0);
		return;
	}
	/* One for one, exact model: nothing at or after k was touched. */
	CU_ASSERT_EQUAL(sum.entries_submitted, k);
	for (uint32_t i = k; i < N; i++)
		CU_ASSERT_EQUAL(page_iotlb(f, i), 1);
}

static void test_kth_entry_fails(void)
{
	struct fx f;

	FX_OPEN(&f, NULL, IOMMU_NEST_CAP_SIM_MODEL);
	kth_fails(&f, 5, false);
	kth_fails(&f, 0, false);
	kth_fails(&f, N - 1, false);
	it_stop_ok(f.d);
}

static void test_kth_entry_fails_uncoalesced(void)
{
	struct fx f;

	FX_OPEN(&f, NOCOALESCE, IOMMU_NEST_CAP_SIM_MODEL);
	kth_fails(&f, 5, true);
	kth_fails(&f, 0, true);
	kth_fails(&f, 3, true);
	it_stop_ok(f.d);
}

/* ---- continue past errors ------------------------------------------------------ */

static void test_continue(void)
{
	struct iommu_nest_vtd_inv e[N];
	struct iommu_nest_entry_result res[N];
	struct iommu_nest_inv_summary sum;
	struct it_expect want[N];
	struct fx f;
	int rc;

	FX_OPEN(&f, NULL, IOMMU_NEST_CAP_SIM_MODEL | IOMMU_NEST_CAP_CONTINUE);
	it_populate(f.h, f.hwpt, BASE, N, IOTLB);
	pages_entries(e, N, 0);
	e[2].addr += 0x800;  /* EINVAL */
	e[5].reserved = 3;   /* EOPNOTSUPP */
	e[6].flags = 0x10;   /* EOPNOTSUPP */
	for (uint32_t i = 0; i < N; i++)
		want[i] = (struct it_expect){ .state = DONE };
	want[2] = (struct it_expect){ FAILED, -EINVAL, 0 };
	want[5] = (struct it_expect){ FAILED, -EOPNOTSUPP, 0 };
	want[6] = (struct it_expect){ FAILED, -EOPNOTSUPP, 0 };

	rc = inv(&f, e, N, IOMMU_NEST_INV_CONTINUE, res, &sum);
	it_check_results(res, want, N);
	/* status is the first failure's errno; handled the leading DONE run. */
	CU_ASSERT_EQUAL(rc, -EINVAL);
	CU_ASSERT_EQUAL(sum.status, -EINVAL);
	CU_ASSERT_EQUAL(sum.entries_handled, 2);
	/* Pages 0, 1, 3, 4 and 7 lie within the default 16-page slack: one entry. */
	CU_ASSERT_EQUAL(sum.entries_submitted, 1);
	for (uint32_t i = 0; i < N; i++)
		if (want[i].state == DONE)
			CU_ASSERT_EQUAL(page_iotlb(&f, i), 0);

	/* All good with CONTINUE: plain success. */
	it_populate(f.h, f.hwpt, BASE, N, IOTLB);
	pages_entries(e, N, LEAF);
	rc = inv(&f, e, N, IOMMU_NEST_INV_CONTINUE, res, &sum);
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_EQUAL(sum.entries_handled, N);
	CU_ASSERT_EQUAL(it_iotlb_pages(f.h, f.hwpt, BASE, N), 0);
	it_stop_ok(f.d);
}

/* ---- injected faults ------------------------------------------------------------- */

/* Kernel shape: 0..k-1 DONE, k FAILED(err, hw), rest NOT_ATTEMPTED. */
static void expect_stop_at(struct fx *f, uint32_t k, int err, uint32_t hw)
{
	struct iommu_nest_vtd_inv e[N];
	struct iommu_nest_entry_result res[N];
	struct iommu_nest_inv_summary sum;
	struct it_expect want[N];
	int rc;

	it_populate(f->h, f->hwpt, BASE, N, IOTLB);
	pages_entries(e, N, 0);
	for (uint32_t i = 0; i < N; i++)
		want[i] = (struct it_expect){ .state = i < k ? DONE : NA };
	want[k] = (struct it_expect){ FAILED, err, hw };
	rc = inv(f, e, N, 0, res, &sum);
	CU_ASSERT_EQUAL(rc, err);
	CU_ASSERT_EQUAL(sum.status, err);
	CU_ASSERT_EQUAL(sum.entries_handled, k);
	it_check_results(res, want, N);
	for (uint32_t i = 0; i < k; i++)
		CU_ASSERT_EQUAL(page_iotlb(f, i), 0);
	/* The faulted entry did not take effect. */
	CU_ASSERT_EQUAL(page_iotlb(f, k), 1);
}

static void expect_all_done(struct fx *f)
{
	struct iommu_nest_vtd_inv e[N];
	struct iommu_nest_entry_result res[N];
	struct iommu_nest_inv_summary sum;
	struct it_expect want[N];

	it_populate(f->h, f->hwpt, BASE, N, IOTLB);
	pages_entries(e, N, 0);
	for (uint32_t i = 0; i < N; i++)
		want[i] = (struct it_expect){ .state = DONE };
	CU_ASSERT_EQUAL(inv(f, e, N, 0, res, &sum), 0);
	CU_ASSERT_EQUAL(sum.entries_handled, N);
	it_check_results(res, want, N);
	CU_ASSERT_EQUAL(it_iotlb_pages(f->h, f->hwpt, BASE, N), 0);
}

static void test_fault_addr_error(void)
{
	struct fx f;

	FX_OPEN(&f, NOCOALESCE, IOMMU_NEST_CAP_SIM_MODEL | IOMMU_NEST_CAP_FAULT_INJECT);
	inject(&f, IOMMU_NEST_FAULT_AT_ADDR, 0, BASE + 3 * IT_PAGE, -EIO, 0, 0);
	expect_stop_at(&f, 3, -EIO, 0);
	/* Exact model, one for one: nothing after the fault went out. */
	for (uint32_t i = 4; i < N; i++)
		CU_ASSERT_EQUAL(page_iotlb(&f, i), 1);
	/* A fault with count 0 keeps firing until cleared. */
	expect_stop_at(&f, 3, -EIO, 0);
	clear_fault(&f);
	expect_all_done(&f);
	it_stop_ok(f.d);
}

/*
 * With coalescing on, the fault hits a merged submission; every client
 * entry still gets the one-by-one answer: the entries before the address
 * DONE, the one holding it FAILED with the injected errno, nothing after
 * it attempted.
 */
static void test_fault_addr_coalesced(void)
{
	struct iommu_nest_vtd_inv e[N];
	struct iommu_nest_entry_result res[N];
	struct iommu_nest_inv_summary sum;
	struct it_expect want[N];
	struct fx f;
	int rc;

	FX_OPEN(&f, NULL, IOMMU_NEST_CAP_SIM_MODEL | IOMMU_NEST_CAP_FAULT_INJECT);
	inject(&f, IOMMU_NEST_FAULT_AT_ADDR, 0, BASE + 4 * IT_PAGE, -ETIMEDOUT, 0, 0);
	it_populate(f.h, f.hwpt, BASE, N, IOTLB);
	pages_entries(e, N, 0);
	rc = inv(&f, e, N, 0, res, &sum);
	CU_ASSERT_EQUAL(rc, -ETIMEDOUT);
	CU_ASSERT_EQUAL(sum.status, -ETIMEDOUT);
	for (uint32_t i = 0; i < N; i++)
		want[i] = (struct it_expect){.state = i < 4 ? DONE : NA};
	want[4] = (struct it_expect){FAILED, -ETIMEDOUT, 0};
	it_check_results(res, want, N);
	CU_ASSERT_EQUAL(sum.entries_handled, 4);
	/*
	 * The merged {BASE, 8} failed (1), then entries 0-4 one by one: four
	 * done, the fifth failed (5); the rest of the request is dead.
	 */
	CU_ASSERT_EQUAL(sum.entries_submitted, 6);
	for (uint32_t i = 0; i < 4; i++)
		CU_ASSERT_EQUAL(page_iotlb(&f, i), 0);
	CU_ASSERT_EQUAL(page_iotlb(&f, 4), 1);
	clear_fault(&f);
	expect_all_done(&f);
	it_stop_ok(f.d);
}

/*
 * A failure that does not recur (count 1) on a merged submission: the
 * retry of its client entries goes through, but one by one the first of
 * them would have met the failure, so that is the answer (never a masked
 * DONE); the retry still flushed both pages. The same with coalescing off
 * (the one-by-one reference), with a hardware error alone, and with
 * CONTINUE.
 */
static void transient(const char *body, int32_t err, uint32_t hw, uint32_t flags)
{
	struct iommu_nest_vtd_inv e[2] = {{.addr = 0x1000, .npages = 1},
					  {.addr = 0x2000, .npages = 1}};
	struct iommu_nest_entry_result res[2];
	struct iommu_nest_inv_summary sum;
	struct it_expect want[2] = {{FAILED, err ? err : -EIO, hw}, {flags ? DONE : NA, 0, 0}};
	struct fx f;

	if (!fx_open(&f, body,
		     IOMMU_NEST_CAP_SIM_MODEL | IOMMU_NEST_CAP_FAULT_INJECT |
			 (flags ? IOMMU_NEST_CAP_CONTINUE : 0))) {
		it_stop_ok(f.d);
		return;
	}
	it_populate(f.h, f.hwpt, 0x1000, 2, IOTLB);
	inject(&f, IOMMU_NEST_FAULT_AT_ADDR, 0, 0x1000, err, hw, 1);
	CU_ASSERT_EQUAL(inv(&f, e, 2, flags, res, &sum), err ? err : -EIO);
	CU_ASSERT_EQUAL(sum.status, err ? err : -EIO);
	CU_ASSERT_EQUAL(sum.entries_handled, 0);
	it_check_results(res, want, 2);
	if (body) {
		/*
		 * One for one: the fault fired on entry 0, which stays cached.
		 * An errno stops the walk there (without CONTINUE); a hardware
		 * error alone does not (the v8 design), so entry 1 went too.
		 */
		bool walked = flags || !err;

		CU_ASSERT_EQUAL(sum.entries_submitted, walked ? 2 : 1);
		CU_ASSERT_EQUAL(it_iotlb_pages(f.h, f.hwpt, 0x1000, 1), 1);
		CU_ASSERT_EQUAL(it_iotlb_pages(f.h, f.hwpt, 0x2000, 1), walked ? 0 : 1);
	} else {
		/*
		 * {0x1000, 2} failed, 0x1000 and 0x2000 went one by one, then
		 * {0x1000, 2} again: passed, so the failure was transient.
		 */
		CU_ASSERT_EQUAL(sum.entries_submitted, 3);
		CU_ASSERT_EQUAL(it_iotlb_pages(f.h, f.hwpt, 0x1000, 2), 0);
	}
	it_stop_ok(f.d);
}

static void test_fault_transient(void)
{
	transient(NULL, -EIO, 0, 0);
	transient(NOCOALESCE, -EIO, 0, 0);
	transient(NULL, 0, 0x2, 0);
	transient(NOCOALESCE, 0, 0x2, 0);
	transient(NULL, -EIO, 0, IOMMU_NEST_INV_CONTINUE);
	transient(NOCOALESCE, -EIO, 0, IOMMU_NEST_INV_CONTINUE);
}

/*
 * A backend that fails every entry, one 4096-entry CONTINUE request: the
 * work and the counters stay linear. Entries 64 pages apart never merge;
 * each of the (at most four) coalesced rounds stops at its first entry
 * and its client entry goes one by one, then the rest go one by one:
 * every call fails at its first entry and is charged for that one alone.
 */
#define WALL 4096
static void test_fail_every_entry_linear(void)
{
	static struct iommu_nest_vtd_inv e[WALL];
	static struct iommu_nest_entry_result res[WALL];
	struct iommu_nest_inv_summary sum;
	struct iommu_nest_stats before, after;
	uint32_t failed = 0;
	struct fx f;

	FX_OPEN(&f, NULL, IOMMU_NEST_CAP_FAULT_INJECT | IOMMU_NEST_CAP_CONTINUE);
	for (uint32_t i = 0; i < WALL; i++)
		e[i] = (struct iommu_nest_vtd_inv){.addr = BASE + 64 * i * IT_PAGE, .npages = 1};
	inject(&f, IOMMU_NEST_FAULT_AT_INDEX, 0, 0, -EIO, 0, 0);
	before = it_stats(f.h);
	CU_ASSERT_EQUAL(inv(&f, e, WALL, IOMMU_NEST_INV_CONTINUE, res, &sum), -EIO);
	after = it_stats(f.h);
	for (uint32_t i = 0; i < WALL; i++)
		failed += res[i].state == FAILED && res[i].error == -EIO;
	CU_ASSERT_EQUAL(failed, WALL);
	CU_ASSERT_EQUAL(sum.entries_handled, 0);
	CU_ASSERT_EQUAL(after.submissions - before.submissions, WALL + 4);
	CU_ASSERT_EQUAL(after.entries_submitted - before.entries_submitted, WALL + 4);
	CU_ASSERT_EQUAL(sum.entries_submitted, WALL + 4);
	clear_fault(&f);
	it_stop_ok(f.d);
}

static void test_fault_index(void)
{
	struct fx f;

	FX_OPEN(&f, NOCOALESCE, IOMMU_NEST_CAP_SIM_MODEL | IOMMU_NEST_CAP_FAULT_INJECT);
	inject(&f, IOMMU_NEST_FAULT_AT_INDEX, 2, 0, -ETIMEDOUT, 0, 0);
	expect_stop_at(&f, 2, -ETIMEDOUT, 0);
	clear_fault(&f);
	/* count = 1: fires once, the next request goes through. */
	inject(&f, IOMMU_NEST_FAULT_AT_INDEX, 6, 0, -ENOMEM, 0, 1);
	expect_stop_at(&f, 6, -ENOMEM, 0);
	expect_all_done(&f);
	it_stop_ok(f.d);
}

static void test_fault_hw_error_with_errno(void)
{
	struct fx f;

	FX_OPEN(&f, NOCOALESCE, IOMMU_NEST_CAP_SIM_MODEL | IOMMU_NEST_CAP_FAULT_INJECT);
	inject(&f, IOMMU_NEST_FAULT_AT_INDEX, 1, 0, -EIO, 0x1, 0);
	expect_stop_at(&f, 1, -EIO, 0x1);
	clear_fault(&f);
	it_stop_ok(f.d);
}

/*
 * hw_error alone (the v8 design: the walk goes on): the entry is not
 * confirmed, so it is FAILED (-EIO) carrying the hardware error.
 */
static void test_fault_hw_error_only(void)
{
	struct iommu_nest_vtd_inv e[N];
	struct iommu_nest_entry_result res[N];
	struct iommu_nest_inv_summary sum;
	struct it_expect want[N];
	struct fx f;
	int rc;

	FX_OPEN(&f, NOCOALESCE, IOMMU_NEST_CAP_SIM_MODEL | IOMMU_NEST_CAP_FAULT_INJECT);
	inject(&f, IOMMU_NEST_FAULT_AT_ADDR, 0, BASE + 3 * IT_PAGE, 0, 0x2, 0);
	expect_stop_at(&f, 3, -EIO, 0x2);

	/* With CONTINUE everything else is DONE. */
	it_populate(f.h, f.hwpt, BASE, N, IOTLB);
	pages_entries(e, N, 0);
	for (uint32_t i = 0; i < N; i++)
		want[i] = (struct it_expect){ .state = DONE };
	want[3] = (struct it_expect){ FAILED, -EIO, 0x2 };
	rc = inv(&f, e, N, IOMMU_NEST_INV_CONTINUE, res, &sum);
	CU_ASSERT_EQUAL(rc, -EIO);
	CU_ASSERT_EQUAL(sum.entries_handled, 3);
	it_check_results(res, want, N);
	for (uint32_t i = 0; i < N; i++)
		CU_ASSERT_EQUAL(page_iotlb(&f, i), i == 3 ? 1 : 0);
	clear_fault(&f);
	it_stop_ok(f.d);
}

/* ---- coalescing ------------------------------------------------------------------ */

#define STORM 64

/* 64 sequential single pages; returns the request's entries_submitted. */
static uint32_t storm(struct fx *f, uint32_t flags)
{
	struct iommu_nest_vtd_inv e[STORM];
	struct iommu_nest_entry_result res[STORM];
	struct iommu_nest_inv_summary sum;
	struct iommu_nest_stats before, after;
	struct it_expect want[STORM];

	it_populate(f->h, f->hwpt, BASE, STORM, IOTLB);
	it_populate(f->h, f->hwpt, BASE, STORM, PSC);
	pages_entries(e, STORM, flags);
	for (uint32_t i = 0; i < STORM; i++)
		want[i] = (struct it_expect){ .state = DONE };
	before = it_stats(f->h);
	CU_ASSERT_EQUAL(inv(f, e, STORM, 0, res, &sum), 0);
	after = it_stats(f->h);
	CU_ASSERT_EQUAL(sum.status, 0);
	CU_ASSERT_EQUAL(sum.entries_handled, STORM);
	it_check_results(res, want, STORM);
	CU_ASSERT_EQUAL(it_iotlb_pages(f->h, f->hwpt, BASE, STORM), 0);
	CU_ASSERT_EQUAL(it_psc_pages(f->h, f->hwpt, BASE, STORM),
			flags & LEAF ? STORM : 0);
	CU_ASSERT_EQUAL(after.entries_received - before.entries_received, STORM);
	CU_ASSERT_EQUAL(after.entries_submitted - before.entries_submitted,
			sum.entries_submitted);
	CU_ASSERT(after.submissions - before.submissions >= 1);
	return sum.entries_submitted;
}

static void test_storm_coalesced(void)
{
	uint32_t sub;
	struct fx f;

	FX_OPEN(&f, NULL, IOMMU_NEST_CAP_SIM_MODEL);
	/* 64 adjacent pages are one range: one submitted entry. */
	sub = storm(&f, 0);
	CU_ASSERT(sub < STORM);
	CU_ASSERT_EQUAL(sub, 1);
	sub = storm(&f, LEAF);
	CU_ASSERT_EQUAL(sub, 1);
	it_stop_ok(f.d);
}

static void test_storm_uncoalesced(void)
{
	struct fx f;

	FX_OPEN(&f, NOCOALESCE, IOMMU_NEST_CAP_SIM_MODEL);
	CU_ASSERT_EQUAL(storm(&f, 0), STORM);
	CU_ASSERT_EQUAL(storm(&f, LEAF), STORM);
	it_stop_ok(f.d);
}

static void test_leaf_vs_nonleaf(void)
{
	const uint64_t a = BASE, b = BASE + 0x100000, c = BASE + 0x200000;
	struct iommu_nest_vtd_inv e[2];
	struct iommu_nest_entry_result res[2];
	struct iommu_nest_inv_summary sum;
	struct fx f;

	FX_OPEN(&f, NULL, IOMMU_NEST_CAP_SIM_MODEL);
	for (uint64_t x = a; x <= c; x += 0x100000) {
		it_populate(f.h, f.hwpt, x, 16, IOTLB);
		it_populate(f.h, f.hwpt, x, 16, PSC);
	}
	/* Leaf: IOTLB only. */
	e[0] = (struct iommu_nest_vtd_inv){ .addr = a, .npages = 16, .flags = LEAF };
	CU_ASSERT_EQUAL(inv(&f, e, 1, 0, res, &sum), 0);
	CU_ASSERT_EQUAL(it_iotlb_pages(f.h, f.hwpt, a, 16), 0);
	CU_ASSERT_EQUAL(it_psc_pages(f.h, f.hwpt, a, 16), 16);
	/* Non-leaf: both. */
	e[0] = (struct iommu_nest_vtd_inv){ .addr = b, .npages = 16 };
	CU_ASSERT_EQUAL(inv(&f, e, 1, 0, res, &sum), 0);
	CU_ASSERT_EQUAL(it_iotlb_pages(f.h, f.hwpt, b, 16), 0);
	CU_ASSERT_EQUAL(it_psc_pages(f.h, f.hwpt, b, 16), 0);
	/* Leaf and non-leaf overlapping in one request: the merge is non-leaf. */
	e[0] = (struct iommu_nest_vtd_inv){ .addr = c, .npages = 8, .flags = LEAF };
	e[1] = (struct iommu_nest_vtd_inv){ .addr = c + 4 * IT_PAGE, .npages = 12 };
	CU_ASSERT_EQUAL(inv(&f, e, 2, 0, res, &sum), 0);
	CU_ASSERT_EQUAL(res[0].state, DONE);
	CU_ASSERT_EQUAL(res[1].state, DONE);
	CU_ASSERT_EQUAL(it_iotlb_pages(f.h, f.hwpt, c, 16), 0);
	CU_ASSERT_EQUAL(it_psc_pages(f.h, f.hwpt, c + 4 * IT_PAGE, 12), 0);
	/* Untouched neighbours keep their paging-structure entries. */
	CU_ASSERT_EQUAL(it_psc_pages(f.h, f.hwpt, a, 16), 16);
	it_stop_ok(f.d);
}

/* Edge ranges: npages 0, a range running past 2^64, a huge range from 0. */
static void test_edge_ranges(void)
{
	const uint64_t top = 0xfffffffffffff000ULL;
	struct iommu_nest_vtd_inv e[3];
	struct iommu_nest_entry_result res[3];
	struct iommu_nest_inv_summary sum;
	struct fx f;

	FX_OPEN(&f, NULL, IOMMU_NEST_CAP_SIM_MODEL);
	/* npages 0 is accepted by the kernel and asks for nothing. */
	e[0] = (struct iommu_nest_vtd_inv){ .addr = 0x7000, .npages = 0 };
	CU_ASSERT_EQUAL(inv(&f, e, 1, 0, res, &sum), 0);
	CU_ASSERT_EQUAL(res[0].state, DONE);
	CU_ASSERT_EQUAL(sum.entries_handled, 1);
	/* The last page of the space, asked for with a range that would wrap. */
	it_populate(f.h, f.hwpt, top, 1, IOTLB);
	it_populate(f.h, f.hwpt, 0, 4, IOTLB);
	e[0] = (struct iommu_nest_vtd_inv){ .addr = top, .npages = 2 };
	CU_ASSERT_EQUAL(inv(&f, e, 1, 0, res, &sum), 0);
	CU_ASSERT_EQUAL(res[0].state, DONE);
	CU_ASSERT_EQUAL(it_iotlb_pages(f.h, f.hwpt, top, 1), 0);
	/* A huge range from 0 that is not the flush-all encoding. */
	it_populate(f.h, f.hwpt, top, 1, IOTLB);
	it_populate(f.h, f.hwpt, 1ULL << 47, 3, PSC);
	e[0] = (struct iommu_nest_vtd_inv){ .addr = 0, .npages = UINT64_MAX - 1 };
	e[1] = (struct iommu_nest_vtd_inv){ .addr = 0x7000, .npages = 0, .flags = LEAF };
	e[2] = (struct iommu_nest_vtd_inv){ .addr = 1ULL << 47, .npages = 1, .flags = LEAF };
	CU_ASSERT_EQUAL(inv(&f, e, 3, 0, res, &sum), 0);
	CU_ASSERT_EQUAL(sum.entries_handled, 3);
	CU_ASSERT_EQUAL(it_iotlb_pages(f.h, f.hwpt, 0, UINT64_MAX), 0);
	CU_ASSERT_EQUAL(it_psc_pages(f.h, f.hwpt, 0, UINT64_MAX), 0);
	it_stop_ok(f.d);
}

/* Selftest batch: per-slot and FLAG_ALL mixed, stopped by a bad entry. */
static void test_selftest_mixed(void)
{
	struct iommu_nest_selftest_inv e[4] = {
		{ 0, 1 }, { IOMMU_NEST_TEST_INVALIDATE_FLAG_ALL, 0 }, { 0, 9 }, { 0, 2 },
	};
	struct iommu_nest_entry_result res[4];
	struct iommu_nest_inv_summary sum;
	struct it_expect want[4] = { { DONE, 0, 0 }, { DONE, 0, 0 }, { FAILED, -EINVAL, 0 },
				     { NA, 0, 0 } };
	struct nestd *d = it_start(NULL);
	struct iommu_nest *h = it_connect(d, "st-mixed");
	uint32_t st = it_alloc_st(h, IT_ST0, 0x77);

	CU_ASSERT_EQUAL(iommu_nest_invalidate(h, st, IOMMU_NEST_INV_DATA_SELFTEST, e, 4, 0, res,
					      &sum), -EINVAL);
	CU_ASSERT_EQUAL(sum.entries_handled, 2);
	it_check_results(res, want, 4);
	if (it_has_cap(h, IOMMU_NEST_CAP_CHECK_IOTLB))
		for (uint32_t s = 0; s < 4; s++)
			CU_ASSERT_EQUAL(iommu_nest_check_iotlb(h, st, s, 0), 0);
	/* With CONTINUE the entry after the bad one runs too. */
	st = it_alloc_st(h, IT_ST0, 0x77);
	e[1].flags = 0;
	want[3].state = DONE;
	CU_ASSERT_EQUAL(iommu_nest_invalidate(h, st, IOMMU_NEST_INV_DATA_SELFTEST, e, 4,
					      IOMMU_NEST_INV_CONTINUE, res, &sum), -EINVAL);
	CU_ASSERT_EQUAL(sum.entries_handled, 2);
	it_check_results(res, want, 4);
	if (it_has_cap(h, IOMMU_NEST_CAP_CHECK_IOTLB)) {
		CU_ASSERT_EQUAL(iommu_nest_check_iotlb(h, st, 0, 0), 0);
		CU_ASSERT_EQUAL(iommu_nest_check_iotlb(h, st, 1, 0), 0);
		CU_ASSERT_EQUAL(iommu_nest_check_iotlb(h, st, 2, 0), 0);
		CU_ASSERT_EQUAL(iommu_nest_check_iotlb(h, st, 3, 0x77), 0);
	}
	it_stop_ok(d);
}

/* ---- the coalescing invariant on a random storm ------------------------------------- */

#define RSTORM 300
#define WINDOW 4096 /* pages */

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void random_storm(struct fx *f, uint64_t seed)
{
	static struct iommu_nest_vtd_inv e[RSTORM];
	static struct iommu_nest_entry_result res[RSTORM];
	struct iommu_nest_inv_summary sum;
	uint32_t bad = 0;

	it_populate(f->h, f->hwpt, BASE, WINDOW + 64, IOTLB);
	it_populate(f->h, f->hwpt, BASE, WINDOW + 64, PSC);
	for (uint32_t i = 0; i < RSTORM; i++) {
		uint64_t r = rng_next(&seed);

		e[i] = (struct iommu_nest_vtd_inv){
			.addr = BASE + (r % WINDOW) * IT_PAGE,
			.npages = 1 + (r >> 20) % ((r >> 40) % 4 ? 4 : 48),
			.flags = (r >> 33) & 1 ? LEAF : 0,
		};
	}
	CU_ASSERT_EQUAL(inv(f, e, RSTORM, 0, res, &sum), 0);
	CU_ASSERT_EQUAL(sum.entries_handled, RSTORM);
	CU_ASSERT(sum.entries_submitted >= 1 && sum.entries_submitted <= RSTORM);
	for (uint32_t i = 0; i < RSTORM; i++) {
		uint64_t iotlb = it_iotlb_pages(f->h, f->hwpt, e[i].addr, e[i].npages);
		uint64_t psc = it_psc_pages(f->h, f->hwpt, e[i].addr, e[i].npages);

		if (res[i].state != DONE || iotlb || (!(e[i].flags & LEAF) && psc)) {
			if (!bad++)
				fprintf(stderr,
					"seed %#llx entry %u (addr %#llx npages %llu flags %u): state %u, %llu iotlb and %llu psc pages left\n",
					(unsigned long long)seed, i,
					(unsigned long long)e[i].addr,
					(unsigned long long)e[i].npages, e[i].flags,
					res[i].state, (unsigned long long)iotlb,
					(unsigned long long)psc);
		}
	}
	CU_ASSERT_EQUAL(bad, 0);
}

static void invariant_with(const char *body)
{
	struct fx f;

	if (!fx_open(&f, body, IOMMU_NEST_CAP_SIM_MODEL))
		IT_SKIP("needs " IT_VTD0 " and the sim model");
	for (uint64_t seed = 1; seed <= 4; seed++)
		random_storm(&f, seed * 0x9e3779b97f4a7c15ULL);
	it_stop_ok(f.d);
}

static void test_invariant_default(void)
{
	invariant_with(NULL);
}

static void test_invariant_no_slack(void)
{
	invariant_with("[coalesce]\nslack_pages = 0");
}

static void test_invariant_big_slack_small_mask(void)
{
	invariant_with("[coalesce]\nslack_pages = 1000\nvtd_max_mask = 3");
}

static void test_invariant_flush_all_threshold(void)
{
	invariant_with("[coalesce]\nflush_all_pages = 64");
}

int main(int argc, char **argv)
{
	static const struct it_case cases[] = {
		{ "kth_entry_fails", test_kth_entry_fails },
		{ "kth_entry_fails_uncoalesced", test_kth_entry_fails_uncoalesced },
		{ "continue", test_continue },
		{ "fault_addr_error", test_fault_addr_error },
		{ "fault_addr_coalesced", test_fault_addr_coalesced },
		{ "fault_transient", test_fault_transient },
		{ "fail_every_entry_linear", test_fail_every_entry_linear },
		{ "fault_index", test_fault_index },
		{ "fault_hw_error_with_errno", test_fault_hw_error_with_errno },
		{ "fault_hw_error_only", test_fault_hw_error_only },
		{ "storm_coalesced", test_storm_coalesced },
		{ "storm_uncoalesced", test_storm_uncoalesced },
		{ "leaf_vs_nonleaf", test_leaf_vs_nonleaf },
		{ "edge_ranges", test_edge_ranges },
		{ "selftest_mixed", test_selftest_mixed },
		{ "invariant_default", test_invariant_default },
		{ "invariant_no_slack", test_invariant_no_slack },
		{ "invariant_big_slack_small_mask", test_invariant_big_slack_small_mask },
		{ "invariant_flush_all_threshold", test_invariant_flush_all_threshold },
		{ NULL, NULL },
	};

	return it_main(argc, argv, "batch", cases);
}
