/* SPDX-License-Identifier: MIT */
/*
 * DESIGN.md section 2 through the socket: every errno row of
 * IOMMU_HWPT_INVALIDATE (request and entry rules, VT-d and selftest), the
 * empty-array probe, the mock IOTLB, and destroy of an attached HWPT.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define NA IOMMU_NEST_ENTRY_NOT_ATTEMPTED
#define DONE IOMMU_NEST_ENTRY_DONE
#define FAILED IOMMU_NEST_ENTRY_FAILED
#define LEAF IOMMU_NEST_VTD_INV_FLAGS_LEAF
#define ST_VAL 0x5a5a1234u

/* One fixture: a daemon, a client and (where configured) one HWPT of each kind. */
struct fx {
	struct nestd *d;
	struct iommu_nest *h;
	uint32_t vtd; /* 0 if there is no VT-d device */
	uint32_t st;
};

static struct fx fx_open(void)
{
	struct fx f = { 0 };

	f.d = it_start(NULL);
	f.h = it_connect(f.d, "kernel-rules");
	if (it_has_device(f.h, IT_VTD0))
		f.vtd = it_alloc_vtd(f.h, IT_VTD0);
	if (it_has_device(f.h, IT_ST0))
		f.st = it_alloc_st(f.h, IT_ST0, ST_VAL);
	return f;
}

static bool sim_model(struct fx *f)
{
	return it_has_cap(f->h, IOMMU_NEST_CAP_SIM_MODEL);
}

static bool check_iotlb(struct fx *f)
{
	return it_has_cap(f->h, IOMMU_NEST_CAP_CHECK_IOTLB);
}

/* Raw VT-d invalidation with every request field given. */
static int inv_vtd(struct fx *f, uint32_t hwpt, uint32_t data_type, uint32_t reserved,
		   uint32_t entry_len, const struct iommu_nest_vtd_inv *e, size_t n,
		   struct iommu_nest_entry_result *res, struct iommu_nest_inv_summary *sum)
{
	struct iommu_nest_inv_raw r = {
		.hwpt_id = hwpt, .data_type = data_type, .reserved = reserved,
		.entry_len = entry_len, .layout = IOMMU_NEST_LAYOUT_VTD, .entries = e, .n = n,
	};

	return iommu_nest_invalidate_raw(f->h, &r, res, sum);
}

static int inv_st(struct fx *f, uint32_t hwpt, uint32_t data_type, uint32_t reserved,
		  uint32_t entry_len, const struct iommu_nest_selftest_inv *e, size_t n,
		  struct iommu_nest_entry_result *res, struct iommu_nest_inv_summary *sum)
{
	struct iommu_nest_inv_raw r = {
		.hwpt_id = hwpt, .data_type = data_type, .reserved = reserved,
		.entry_len = entry_len, .layout = IOMMU_NEST_LAYOUT_SELFTEST, .entries = e,
		.n = n,
	};

	return iommu_nest_invalidate_raw(f->h, &r, res, sum);
}

/* A request-level failure: rc and status err, nothing handled or submitted. */
static void check_request_failed(int rc, const struct iommu_nest_inv_summary *sum,
				 const struct iommu_nest_entry_result *res, size_t n, int err)
{
	CU_ASSERT_EQUAL(rc, err);
	CU_ASSERT_EQUAL(sum->status, err);
	CU_ASSERT_EQUAL(sum->entries_handled, 0);
	CU_ASSERT_EQUAL(sum->entries_submitted, 0);
	it_check_all_not_attempted(res, n);
}

/* Request-level failure of a 3-entry VT-d request on f->vtd. */
static void vtd_request_fails(struct fx *f, uint32_t hwpt, uint32_t reserved,
			      uint32_t entry_len, int err)
{
	const struct iommu_nest_vtd_inv e[3] = {
		{ .addr = 0x100000, .npages = 1 },
		{ .addr = 0x200000, .npages = 2 },
		{ .addr = 0x300000, .npages = 1, .flags = LEAF },
	};
	struct iommu_nest_entry_result res[3];
	struct iommu_nest_inv_summary sum;
	int rc;

	memset(res, 0xa5, sizeof(res));
	memset(&sum, 0xa5, sizeof(sum));
	rc = inv_vtd(f, hwpt, IOMMU_NEST_INV_DATA_VTD_S1, reserved, entry_len, e, 3, res, &sum);
	check_request_failed(rc, &sum, res, 3, err);
}

static void st_request_fails(struct fx *f, uint32_t hwpt, uint32_t reserved,
			     uint32_t entry_len, int err)
{
	const struct iommu_nest_selftest_inv e[2] = { { 0, 0 }, { 0, 1 } };
	struct iommu_nest_entry_result res[2];
	struct iommu_nest_inv_summary sum;
	int rc;

	memset(res, 0xa5, sizeof(res));
	rc = inv_st(f, hwpt, IOMMU_NEST_INV_DATA_SELFTEST, reserved, entry_len, e, 2, res, &sum);
	check_request_failed(rc, &sum, res, 2, err);
}

/* The mock IOTLB slot holds exactly val. */
static void slot_is(struct fx *f, uint32_t hwpt, uint32_t slot, uint32_t val)
{
	CU_ASSERT_EQUAL(iommu_nest_check_iotlb(f->h, hwpt, slot, val), 0);
	CU_ASSERT_EQUAL(iommu_nest_check_iotlb(f->h, hwpt, slot, val ^ 1), -EINVAL);
}

/* ---- request rules --------------------------------------------------------- */

static void test_request_reserved(void)
{
	struct fx f = fx_open();

	if (f.vtd) {
		if (sim_model(&f))
			it_populate(f.h, f.vtd, 0x100000, 1, IOMMU_NEST_SIM_IOTLB);
		vtd_request_fails(&f, f.vtd, 1, 0, -EOPNOTSUPP);
		vtd_request_fails(&f, f.vtd, 0x80000000u, 0, -EOPNOTSUPP);
		/* Nothing took effect. */
		if (sim_model(&f))
			CU_ASSERT_EQUAL(it_iotlb_pages(f.h, f.vtd, 0x100000, 1), 1);
	}
	st_request_fails(&f, f.st, 1, 0, -EOPNOTSUPP);
	if (check_iotlb(&f))
		for (uint32_t s = 0; s < 4; s++)
			slot_is(&f, f.st, s, ST_VAL);
	it_stop_ok(f.d);
}

static void test_entry_len_over_page(void)
{
	struct fx f = fx_open();

	if (f.vtd) {
		vtd_request_fails(&f, f.vtd, 0, 4097, -EINVAL);
		vtd_request_fails(&f, f.vtd, 0, 8192, -EINVAL);
		vtd_request_fails(&f, f.vtd, 0, UINT32_MAX, -EINVAL);
	}
	st_request_fails(&f, f.st, 0, 4097, -EINVAL);
	it_stop_ok(f.d);
}

static void test_entry_len_range_vtd(void)
{
	const struct iommu_nest_vtd_inv e = { .addr = 0x5000, .npages = 1 };
	struct iommu_nest_entry_result res;
	struct iommu_nest_inv_summary sum;
	struct fx f = fx_open();

	if (!f.vtd)
		IT_SKIP("no VT-d device");
	/* Below the first version (24 bytes) or above the native size. */
	vtd_request_fails(&f, f.vtd, 0, 16, -EINVAL);
	vtd_request_fails(&f, f.vtd, 0, 23, -EINVAL);
	vtd_request_fails(&f, f.vtd, 0, 25, -EINVAL);
	vtd_request_fails(&f, f.vtd, 0, 32, -EINVAL);
	vtd_request_fails(&f, f.vtd, 0, 4096, -EINVAL);
	/* Exactly the native size is fine, as is 0 (native on our wire). */
	CU_ASSERT_EQUAL(inv_vtd(&f, f.vtd, 0, 0, 24, &e, 1, &res, &sum), 0);
	CU_ASSERT_EQUAL(res.state, DONE);
	CU_ASSERT_EQUAL(sum.entries_handled, 1);
	CU_ASSERT_EQUAL(inv_vtd(&f, f.vtd, 0, 0, 0, &e, 1, &res, &sum), 0);
	CU_ASSERT_EQUAL(res.state, DONE);
	it_stop_ok(f.d);
}

static void test_entry_len_range_selftest(void)
{
	const struct iommu_nest_selftest_inv e = { 0, 2 };
	struct iommu_nest_entry_result res;
	struct iommu_nest_inv_summary sum;
	struct fx f = fx_open();

	st_request_fails(&f, f.st, 0, 4, -EINVAL);
	st_request_fails(&f, f.st, 0, 7, -EINVAL);
	st_request_fails(&f, f.st, 0, 9, -EINVAL);
	st_request_fails(&f, f.st, 0, 16, -EINVAL);
	CU_ASSERT_EQUAL(inv_st(&f, f.st, IOMMU_NEST_INV_DATA_SELFTEST, 0, 8, &e, 1, &res, &sum),
			0);
	CU_ASSERT_EQUAL(res.state, DONE);
	CU_ASSERT_EQUAL(sum.entries_handled, 1);
	it_stop_ok(f.d);
}

/* entry_num == 0 ignores entry_len, but not the reserved word or the type. */
static void test_probe_ignores_entry_len(void)
{
	struct iommu_nest_inv_summary sum;
	struct fx f = fx_open();

	CU_ASSERT_EQUAL(inv_st(&f, f.st, IOMMU_NEST_INV_DATA_SELFTEST, 0, 4097, NULL, 0, NULL,
			       &sum), 0);
	CU_ASSERT_EQUAL(sum.status, 0);
	CU_ASSERT_EQUAL(inv_st(&f, f.st, IOMMU_NEST_INV_DATA_SELFTEST, 0, 1, NULL, 0, NULL, &sum),
			0);
	CU_ASSERT_EQUAL(inv_st(&f, f.st, IOMMU_NEST_INV_DATA_SELFTEST, 1, 0, NULL, 0, NULL, &sum),
			-EOPNOTSUPP);
	CU_ASSERT_EQUAL(inv_st(&f, f.st, IOMMU_NEST_INV_DATA_VTD_S1, 0, 4097, NULL, 0, NULL, &sum),
			-EINVAL);
	if (f.vtd)
		CU_ASSERT_EQUAL(inv_vtd(&f, f.vtd, IOMMU_NEST_INV_DATA_VTD_S1, 0, 9999, NULL, 0,
					NULL, &sum), 0);
	it_stop_ok(f.d);
}

static void test_unknown_hwpt(void)
{
	struct fx f = fx_open();

	st_request_fails(&f, 0, 0, 0, -ENOENT);
	st_request_fails(&f, 0x7ffffff0u, 0, 0, -ENOENT);
	st_request_fails(&f, f.st + 1000, 0, 0, -ENOENT);
	if (f.vtd)
		vtd_request_fails(&f, 0x12345, 0, 0, -ENOENT);
	it_stop_ok(f.d);
}

/* A raw selftest Invalidate of hwpt (entries iotlb_id 0; n 0 is the probe). */
static IommuNest__Reply *raw_inv_st(int fd, uint32_t hwpt, size_t n, uint64_t id)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__Invalidate inv = IOMMU_NEST__INVALIDATE__INIT;
	uint32_t ids[1] = {0};

	inv.hwpt_id = hwpt;
	inv.data_type = IOMMU_NEST_INV_DATA_SELFTEST;
	inv.n_iotlb_id = n;
	inv.iotlb_id = ids;
	req.body_case = IOMMU_NEST__REQUEST__BODY_INVALIDATE;
	req.invalidate = &inv;
	return it_raw_call(fd, &req, id);
}

/* A request-level refusal with err: n entries, none handled or attempted. */
static void raw_check_refused(IommuNest__Reply *rep, size_t n, int err)
{
	CU_ASSERT_EQUAL(rep->status, err);
	if (rep->body_case == IOMMU_NEST__REPLY__BODY_INVALIDATE) {
		CU_ASSERT_EQUAL(rep->invalidate->entries_handled, 0);
		CU_ASSERT_EQUAL(rep->invalidate->entries_submitted, 0);
		CU_ASSERT_EQUAL(rep->invalidate->n_state, n);
		for (size_t i = 0; i < rep->invalidate->n_state && i < n; i++)
			CU_ASSERT_EQUAL(rep->invalidate->state[i], NA);
	}
	iommu_nest__reply__free_unpacked(rep, NULL);
}

/*
 * A nest parent is a paging HWPT: not a target of invalidation, and the
 * kernels say so differently (DESIGN.md section 2): 6.12 -ENOENT (only a
 * nested HWPT is looked up), 7.x -EINVAL (any object is, the wrong kind is
 * refused). The daemon answers from its own bookkeeping what the running
 * kernel (sim: [daemon] sim_kernel) answers, for the parent of the client's
 * own HWPT (the Alloc reply gave it the id; raw, to read parent_id), and
 * for an admin (root), who may flush any client's HWPT. A tenant naming
 * another's parent or HWPT gets -ENOENT on every kernel: it must not learn
 * that someone else's object exists.
 */
static void parent_hwpt_case(const char *sim_kernel)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__Alloc alloc = IOMMU_NEST__ALLOC__INIT;
	IommuNest__SelftestData data = IOMMU_NEST__SELFTEST_DATA__INIT;
	IommuNest__Reply *rep;
	char body[64];
	uint32_t parent, child;
	const int want = it_wrong_object_errno(sim_kernel);
	const struct iommu_nest_selftest_inv e = {0, 0};
	struct iommu_nest_entry_result res;
	struct iommu_nest_inv_summary sum;
	struct fx tf = {0};
	struct nestd *d;
	int fd, other, rc;

	snprintf(body, sizeof(body), "sim_kernel = %s", sim_kernel);
	d = it_start(body);
	fd = it_raw_connect(d);
	other = it_raw_connect(d);
	it_raw_hello(fd);
	it_raw_hello(other);
	alloc.device = IT_ST0;
	alloc.data_type = IOMMU_NEST_HWPT_DATA_SELFTEST;
	alloc.data_case = IOMMU_NEST__ALLOC__DATA_SELFTEST;
	alloc.selftest = &data;
	data.iotlb = 7;
	req.body_case = IOMMU_NEST__REQUEST__BODY_ALLOC;
	req.alloc = &alloc;
	rep = it_raw_call(fd, &req, 2);
	CU_ASSERT_EQUAL_FATAL(rep->status, 0);
	CU_ASSERT_EQUAL_FATAL(rep->body_case, IOMMU_NEST__REPLY__BODY_ALLOC);
	parent = rep->alloc->parent_id;
	child = rep->alloc->hwpt_id;
	iommu_nest__reply__free_unpacked(rep, NULL);
	CU_ASSERT(parent != 0 && parent != child);

	raw_check_refused(raw_inv_st(fd, parent, 1, 3), 1, want);
	/* The empty-array probe looks the object up first, too. */
	raw_check_refused(raw_inv_st(fd, parent, 0, 4), 0, want);
	if (geteuid() == 0) {
		/* Another root connection is an admin: it reaches both. */
		raw_check_refused(raw_inv_st(other, parent, 1, 5), 1, want);
		rep = raw_inv_st(other, child, 1, 6);
		CU_ASSERT_EQUAL(rep->status, 0);
		iommu_nest__reply__free_unpacked(rep, NULL);
		tf.h = it_connect_as(d, "tenant", IT_NOBODY, IT_NOBODY);
	} else {
		tf.h = it_connect(d, "tenant");
	}
	/* A plain tenant reaches neither the child nor its parent. */
	for (int i = 0; i < 2; i++) {
		memset(&res, 0xa5, sizeof(res));
		rc = inv_st(&tf, i ? child : parent, IOMMU_NEST_INV_DATA_SELFTEST, 0, 0, &e, 1,
			    &res, &sum);
		check_request_failed(rc, &sum, &res, 1, -ENOENT);
	}

	/* The child is fine, by the same raw path. */
	rep = raw_inv_st(fd, child, 1, 7);
	CU_ASSERT_EQUAL(rep->status, 0);
	CU_ASSERT_EQUAL_FATAL(rep->body_case, IOMMU_NEST__REPLY__BODY_INVALIDATE);
	CU_ASSERT_EQUAL(rep->invalidate->entries_handled, 1);
	CU_ASSERT_EQUAL_FATAL(rep->invalidate->n_state, 1);
	CU_ASSERT_EQUAL(rep->invalidate->state[0], DONE);
	iommu_nest__reply__free_unpacked(rep, NULL);
	it_stop_ok(d);
}

/* Both sim_kernel values (on the kernel tier both follow the booted kernel). */
static void test_parent_hwpt_per_kernel(void)
{
	parent_hwpt_case("6.12");
	parent_hwpt_case("7.0");
}

static void test_wrong_data_type(void)
{
	const struct iommu_nest_selftest_inv se[2] = { { 0, 0 }, { 0, 1 } };
	const struct iommu_nest_vtd_inv ve[2] = { { .addr = 0, .npages = 1 },
						  { .addr = 0x1000, .npages = 1 } };
	struct iommu_nest_entry_result res[2];
	struct iommu_nest_inv_summary sum;
	struct fx f = fx_open();
	int rc;

	/* Selftest HWPT, VT-d data. */
	rc = inv_vtd(&f, f.st, IOMMU_NEST_INV_DATA_VTD_S1, 0, 0, ve, 2, res, &sum);
	check_request_failed(rc, &sum, res, 2, -EINVAL);
	/* Selftest HWPT, the selftest's deliberately invalid type. */
	rc = inv_st(&f, f.st, IOMMU_NEST_INV_DATA_SELFTEST_INVALID, 0, 0, se, 2, res, &sum);
	check_request_failed(rc, &sum, res, 2, -EINVAL);
	/* A type nobody knows. */
	rc = inv_st(&f, f.st, 0x77, 0, 0, se, 2, res, &sum);
	check_request_failed(rc, &sum, res, 2, -EINVAL);
	if (f.vtd) {
		/* VT-d HWPT, selftest data. */
		rc = inv_st(&f, f.vtd, IOMMU_NEST_INV_DATA_SELFTEST, 0, 0, se, 2, res, &sum);
		check_request_failed(rc, &sum, res, 2, -EINVAL);
	}
	if (check_iotlb(&f))
		slot_is(&f, f.st, 0, ST_VAL);
	it_stop_ok(f.d);
}

/* ---- VT-d entry rules ---------------------------------------------------------- */

/*
 * Sends good entries then bad, expects the kernel shape: good ones DONE, bad
 * FAILED with err, handled = index of bad.
 */
static void vtd_entry_fails(struct fx *f, struct iommu_nest_vtd_inv bad, uint32_t k, int err)
{
	struct iommu_nest_vtd_inv e[4];
	struct iommu_nest_entry_result res[4];
	struct it_expect want[4];
	struct iommu_nest_inv_summary sum;
	int rc;

	for (uint32_t i = 0; i < 4; i++) {
		e[i] = (struct iommu_nest_vtd_inv){ .addr = 0x40000000 + i * 0x100000, .npages = 1 };
		want[i] = (struct it_expect){ .state = i < k ? DONE : NA };
	}
	e[k] = bad;
	want[k] = (struct it_expect){ .state = FAILED, .error = err };
	rc = iommu_nest_invalidate(f->h, f->vtd, IOMMU_NEST_INV_DATA_VTD_S1, e, 4, 0, res, &sum);
	CU_ASSERT_EQUAL(rc, err);
	CU_ASSERT_EQUAL(sum.status, err);
	CU_ASSERT_EQUAL(sum.entries_handled, k);
	it_check_results(res, want, 4);
}

static void test_vtd_flags(void)
{
	struct fx f = fx_open();

	if (!f.vtd)
		IT_SKIP("no VT-d device");
	vtd_entry_fails(&f, (struct iommu_nest_vtd_inv){ .addr = 0, .npages = 1, .flags = 2 }, 0,
			-EOPNOTSUPP);
	vtd_entry_fails(&f, (struct iommu_nest_vtd_inv){ .npages = 1, .flags = LEAF | 4 }, 2,
			-EOPNOTSUPP);
	vtd_entry_fails(&f, (struct iommu_nest_vtd_inv){ .npages = 1, .flags = 0x80000000u }, 3,
			-EOPNOTSUPP);
	it_stop_ok(f.d);
}

static void test_vtd_entry_reserved(void)
{
	struct fx f = fx_open();

	if (!f.vtd)
		IT_SKIP("no VT-d device");
	vtd_entry_fails(&f, (struct iommu_nest_vtd_inv){ .npages = 1, .reserved = 1 }, 0,
			-EOPNOTSUPP);
	vtd_entry_fails(&f, (struct iommu_nest_vtd_inv){ .npages = 1, .reserved = 0xffffffffu },
			2, -EOPNOTSUPP);
	/* Reserved outranks a bad address: both rules broken, EOPNOTSUPP wins. */
	vtd_entry_fails(&f, (struct iommu_nest_vtd_inv){ .addr = 0x123, .npages = 1,
							 .reserved = 1 }, 1, -EOPNOTSUPP);
	it_stop_ok(f.d);
}

static void test_vtd_unaligned(void)
{
	struct fx f = fx_open();

	if (!f.vtd)
		IT_SKIP("no VT-d device");
	vtd_entry_fails(&f, (struct iommu_nest_vtd_inv){ .addr = 0x1001, .npages = 1 }, 0,
			-EINVAL);
	vtd_entry_fails(&f, (struct iommu_nest_vtd_inv){ .addr = 0x800, .npages = 1 }, 1,
			-EINVAL);
	vtd_entry_fails(&f, (struct iommu_nest_vtd_inv){ .addr = 0xfff, .npages = 4,
							 .flags = LEAF }, 3, -EINVAL);
	it_stop_ok(f.d);
}

static void test_vtd_npages_max(void)
{
	struct fx f = fx_open();

	if (!f.vtd)
		IT_SKIP("no VT-d device");
	vtd_entry_fails(&f, (struct iommu_nest_vtd_inv){ .addr = 0x1000, .npages = UINT64_MAX },
			0, -EINVAL);
	vtd_entry_fails(&f, (struct iommu_nest_vtd_inv){ .addr = 1ULL << 40,
							 .npages = UINT64_MAX }, 2, -EINVAL);
	it_stop_ok(f.d);
}

static void test_vtd_flush_all(void)
{
	const struct iommu_nest_vtd_inv all = { .addr = 0, .npages = UINT64_MAX };
	const uint64_t where[] = { 0, 0x1000, 0x7fff000, 1ULL << 40, 0xfffffffff000ULL };
	struct iommu_nest_entry_result res;
	struct iommu_nest_inv_summary sum;
	struct fx f = fx_open();
	int rc;

	if (!f.vtd)
		IT_SKIP("no VT-d device");
	if (sim_model(&f)) {
		for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
			it_populate(f.h, f.vtd, where[i], 1, IOMMU_NEST_SIM_IOTLB);
			it_populate(f.h, f.vtd, where[i], 1, IOMMU_NEST_SIM_PSC);
		}
		CU_ASSERT_EQUAL(it_iotlb_pages(f.h, f.vtd, 0, UINT64_MAX), 5);
		CU_ASSERT_EQUAL(it_psc_pages(f.h, f.vtd, 0, UINT64_MAX), 5);
	}
	rc = iommu_nest_invalidate(f.h, f.vtd, IOMMU_NEST_INV_DATA_VTD_S1, &all, 1, 0, &res, &sum);
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_EQUAL(sum.status, 0);
	CU_ASSERT_EQUAL(sum.entries_handled, 1);
	CU_ASSERT_EQUAL(sum.entries_submitted, 1);
	CU_ASSERT_EQUAL(res.state, DONE);
	CU_ASSERT_EQUAL(res.error, 0);
	if (sim_model(&f)) {
		CU_ASSERT_EQUAL(it_iotlb_pages(f.h, f.vtd, 0, UINT64_MAX), 0);
		CU_ASSERT_EQUAL(it_psc_pages(f.h, f.vtd, 0, UINT64_MAX), 0);
	}
	it_stop_ok(f.d);
}

/* ---- probe and empty requests ------------------------------------------------ */

static void test_probe(void)
{
	struct iommu_nest_inv_summary sum;
	struct fx f = fx_open();

	CU_ASSERT_EQUAL(iommu_nest_probe(f.h, f.st, IOMMU_NEST_INV_DATA_SELFTEST), 0);
	CU_ASSERT_EQUAL(iommu_nest_probe(f.h, f.st, IOMMU_NEST_INV_DATA_VTD_S1), -EINVAL);
	CU_ASSERT_EQUAL(iommu_nest_probe(f.h, f.st, IOMMU_NEST_INV_DATA_SELFTEST_INVALID),
			-EINVAL);
	CU_ASSERT_EQUAL(iommu_nest_probe(f.h, f.st + 777, IOMMU_NEST_INV_DATA_SELFTEST), -ENOENT);
	if (f.vtd) {
		CU_ASSERT_EQUAL(iommu_nest_probe(f.h, f.vtd, IOMMU_NEST_INV_DATA_VTD_S1), 0);
		CU_ASSERT_EQUAL(iommu_nest_probe(f.h, f.vtd, IOMMU_NEST_INV_DATA_SELFTEST), -EINVAL);
	}
	/* An invalidation with no entries is the same probe. */
	memset(&sum, 0xa5, sizeof(sum));
	CU_ASSERT_EQUAL(iommu_nest_invalidate(f.h, f.st, IOMMU_NEST_INV_DATA_SELFTEST, NULL, 0, 0,
					      NULL, &sum), 0);
	CU_ASSERT_EQUAL(sum.status, 0);
	CU_ASSERT_EQUAL(sum.entries_handled, 0);
	CU_ASSERT_EQUAL(sum.entries_submitted, 0);
	CU_ASSERT_EQUAL(iommu_nest_invalidate(f.h, f.st, IOMMU_NEST_INV_DATA_VTD_S1, NULL, 0, 0,
					      NULL, &sum), -EINVAL);
	CU_ASSERT_EQUAL(sum.status, -EINVAL);
	if (f.vtd) {
		CU_ASSERT_EQUAL(iommu_nest_invalidate(f.h, f.vtd, IOMMU_NEST_INV_DATA_VTD_S1, NULL,
						      0, 0, NULL, &sum), 0);
		CU_ASSERT_EQUAL(sum.entries_handled, 0);
		CU_ASSERT_EQUAL(sum.entries_submitted, 0);
	}
	/* The mock IOTLB was not touched by any of that. */
	if (check_iotlb(&f))
		for (uint32_t s = 0; s < 4; s++)
			slot_is(&f, f.st, s, ST_VAL);
	it_stop_ok(f.d);
}

/* ---- selftest entry rules ------------------------------------------------------ */

static void st_entries(struct fx *f, const struct iommu_nest_selftest_inv *e, size_t n,
		       const struct it_expect *want, int status, uint32_t handled)
{
	struct iommu_nest_entry_result res[8];
	struct iommu_nest_inv_summary sum;
	int rc;

	rc = iommu_nest_invalidate(f->h, f->st, IOMMU_NEST_INV_DATA_SELFTEST, e, n, 0, res, &sum);
	CU_ASSERT_EQUAL(rc, status);
	CU_ASSERT_EQUAL(sum.status, status);
	CU_ASSERT_EQUAL(sum.entries_handled, handled);
	it_check_results(res, want, n);
}

static void test_selftest_flags(void)
{
	struct fx f = fx_open();

	st_entries(&f, (struct iommu_nest_selftest_inv[]){ { 2, 0 } }, 1,
		   (struct it_expect[]){ { FAILED, -EOPNOTSUPP, 0 } }, -EOPNOTSUPP, 0);
	st_entries(&f, (struct iommu_nest_selftest_inv[]){ { 0, 1 }, { 3, 2 }, { 0, 3 } }, 3,
		   (struct it_expect[]){ { DONE, 0, 0 }, { FAILED, -EOPNOTSUPP, 0 },
					 { NA, 0, 0 } },
		   -EOPNOTSUPP, 1);
	st_entries(&f, (struct iommu_nest_selftest_inv[]){ { 0x80000000u, 0 } }, 1,
		   (struct it_expect[]){ { FAILED, -EOPNOTSUPP, 0 } }, -EOPNOTSUPP, 0);
	if (check_iotlb(&f)) {
		/* Only entry 0 of the second request took effect. */
		slot_is(&f, f.st, 0, ST_VAL);
		slot_is(&f, f.st, 1, 0);
		slot_is(&f, f.st, 2, ST_VAL);
	}
	it_stop_ok(f.d);
}

static void test_selftest_iotlb_id(void)
{
	struct fx f = fx_open();

	st_entries(&f, (struct iommu_nest_selftest_inv[]){ { 0, 4 } }, 1,
		   (struct it_expect[]){ { FAILED, -EINVAL, 0 } }, -EINVAL, 0);
	/* Range checked even with FLAG_ALL, which otherwise ignores the id. */
	st_entries(&f, (struct iommu_nest_selftest_inv[]){ { IOMMU_NEST_TEST_INVALIDATE_FLAG_ALL,
							     4 } },
		   1, (struct it_expect[]){ { FAILED, -EINVAL, 0 } }, -EINVAL, 0);
	st_entries(&f, (struct iommu_nest_selftest_inv[]){ { 0, 0xffffffffu } }, 1,
		   (struct it_expect[]){ { FAILED, -EINVAL, 0 } }, -EINVAL, 0);
	if (check_iotlb(&f))
		for (uint32_t s = 0; s < 4; s++)
			slot_is(&f, f.st, s, ST_VAL);
	/* Slot 3 is the last valid one and clears only itself. */
	st_entries(&f, (struct iommu_nest_selftest_inv[]){ { 0, 3 } }, 1,
		   (struct it_expect[]){ { DONE, 0, 0 } }, 0, 1);
	if (check_iotlb(&f)) {
		for (uint32_t s = 0; s < 3; s++)
			slot_is(&f, f.st, s, ST_VAL);
		slot_is(&f, f.st, 3, 0);
	}
	it_stop_ok(f.d);
}

static void test_selftest_flag_all(void)
{
	struct fx f = fx_open();

	if (!check_iotlb(&f))
		IT_SKIP("daemon lacks CAP_CHECK_IOTLB");
	for (uint32_t s = 0; s < 4; s++)
		slot_is(&f, f.st, s, ST_VAL);
	CU_ASSERT_EQUAL(iommu_nest_check_iotlb(f.h, f.st, 4, ST_VAL), -EINVAL);
	st_entries(&f, (struct iommu_nest_selftest_inv[]){ { IOMMU_NEST_TEST_INVALIDATE_FLAG_ALL,
							     1 } },
		   1, (struct it_expect[]){ { DONE, 0, 0 } }, 0, 1);
	for (uint32_t s = 0; s < 4; s++)
		slot_is(&f, f.st, s, 0);
	it_stop_ok(f.d);
}

/* ---- destroy vs attach --------------------------------------------------------- */

static void destroy_busy(struct fx *f, const char *dev, uint32_t hwpt, uint32_t other)
{
	CU_ASSERT_EQUAL(iommu_nest_attach(f->h, dev, hwpt), 0);
	CU_ASSERT_EQUAL(iommu_nest_destroy(f->h, hwpt), -EBUSY);
	/* Still alive and usable. */
	CU_ASSERT_EQUAL(iommu_nest_probe(f->h, hwpt, f->vtd == hwpt ?
						       IOMMU_NEST_INV_DATA_VTD_S1 :
						       IOMMU_NEST_INV_DATA_SELFTEST), 0);
	/* Attaching elsewhere replaces: the old one is free, the new one busy. */
	CU_ASSERT_EQUAL(iommu_nest_attach(f->h, dev, other), 0);
	CU_ASSERT_EQUAL(iommu_nest_destroy(f->h, other), -EBUSY);
	CU_ASSERT_EQUAL(iommu_nest_destroy(f->h, hwpt), 0);
	CU_ASSERT_EQUAL(iommu_nest_destroy(f->h, hwpt), -ENOENT);
	CU_ASSERT_EQUAL(iommu_nest_detach(f->h, dev), 0);
	CU_ASSERT_EQUAL(iommu_nest_destroy(f->h, other), 0);
	CU_ASSERT_EQUAL(iommu_nest_probe(f->h, other, IOMMU_NEST_INV_DATA_SELFTEST), -ENOENT);
}

static void test_destroy_attached(void)
{
	struct fx f = fx_open();
	struct iommu_nest_stats st;

	destroy_busy(&f, IT_ST0, f.st, it_alloc_st(f.h, IT_ST0, 1));
	if (f.vtd)
		destroy_busy(&f, IT_VTD0, f.vtd, it_alloc_vtd(f.h, IT_VTD0));
	st = it_stats(f.h);
	CU_ASSERT_EQUAL(st.hwpts_active, 0);
	it_stop_ok(f.d);
}

/* ---- the nest parent -------------------------------------------------------- */

/*
 * The client knows st0's nest parent from AllocReply. Destroying it while
 * a nested HWPT sits on it is the kernel's -EBUSY (main.c
 * iommufd_object_remove()), not "no such HWPT"; for a client with no
 * HWPT on it the id stays unknown (-ENOENT, the daemon's rule).
 */
static void test_destroy_parent_busy(void)
{
	struct fx f = fx_open();
	struct iommu_nest *other = it_connect(f.d, "kernel-rules-other");
	uint32_t parent = it_parent_of(f.h, f.st);

	CU_ASSERT(parent != f.st);
	CU_ASSERT_EQUAL(iommu_nest_destroy(f.h, parent), -EBUSY);
	CU_ASSERT_EQUAL(iommu_nest_attach(f.h, IT_ST0, f.st), 0);
	CU_ASSERT_EQUAL(iommu_nest_destroy(f.h, parent), -EBUSY);
	CU_ASSERT_EQUAL(iommu_nest_destroy(other, parent), -ENOENT);
	/* Both are still there and in use. */
	CU_ASSERT_EQUAL(iommu_nest_probe(f.h, f.st, IOMMU_NEST_INV_DATA_SELFTEST), 0);
	CU_ASSERT_EQUAL(iommu_nest_destroy(f.h, f.st), -EBUSY);
	CU_ASSERT_EQUAL(iommu_nest_detach(f.h, IT_ST0), 0);
	CU_ASSERT_EQUAL(iommu_nest_destroy(f.h, f.st), 0);
	it_stop_ok(f.d);
}

/* The device the daemon's status view shows on hwpt (0: its nest parent). */
static uint32_t status_hwpt(struct fx *f, const char *dev)
{
	struct iommu_nest_status *st;
	uint32_t id = UINT32_MAX;

	CU_ASSERT_EQUAL_FATAL(iommu_nest_status(f->h, &st), 0);
	for (size_t i = 0; i < st->n_devices; i++)
		if (!strcmp(st->devices[i].name, dev))
			id = st->devices[i].hwpt_id;
	free(st);
	return id;
}

/*
 * A device on its nest parent: Detach is the kernel's no-op replace (0),
 * and so is Attach to the parent's id; Attach to the parent from a nested
 * HWPT moves the device back, like Detach (the nested HWPT is free again).
 */
static void test_parent_attach_detach(void)
{
	struct fx f = fx_open();
	uint32_t parent = it_parent_of(f.h, f.st);

	CU_ASSERT_EQUAL(iommu_nest_detach(f.h, IT_ST0), 0);
	CU_ASSERT_EQUAL(iommu_nest_attach(f.h, IT_ST0, parent), 0);
	CU_ASSERT_EQUAL(status_hwpt(&f, IT_ST0), 0);
	CU_ASSERT_EQUAL(iommu_nest_attach(f.h, IT_ST0, f.st), 0);
	CU_ASSERT_EQUAL(status_hwpt(&f, IT_ST0), f.st);
	CU_ASSERT_EQUAL(iommu_nest_attach(f.h, IT_ST0, parent), 0);
	CU_ASSERT_EQUAL(status_hwpt(&f, IT_ST0), 0);
	/* Off the nested HWPT in the backend too: it can be destroyed. */
	CU_ASSERT_EQUAL(iommu_nest_destroy(f.h, f.st), 0);
	CU_ASSERT_EQUAL(iommu_nest_detach(f.h, IT_ST0), 0);
	it_stop_ok(f.d);
}

int main(int argc, char **argv)
{
	static const struct it_case cases[] = {
		{ "request_reserved", test_request_reserved },
		{ "entry_len_over_page", test_entry_len_over_page },
		{ "entry_len_range_vtd", test_entry_len_range_vtd },
		{ "entry_len_range_selftest", test_entry_len_range_selftest },
		{ "probe_ignores_entry_len", test_probe_ignores_entry_len },
		{ "unknown_hwpt", test_unknown_hwpt },
		{ "parent_hwpt_per_kernel", test_parent_hwpt_per_kernel },
		{ "wrong_data_type", test_wrong_data_type },
		{ "vtd_flags", test_vtd_flags },
		{ "vtd_entry_reserved", test_vtd_entry_reserved },
		{ "vtd_unaligned", test_vtd_unaligned },
		{ "vtd_npages_max", test_vtd_npages_max },
		{ "vtd_flush_all", test_vtd_flush_all },
		{ "probe", test_probe },
		{ "selftest_flags", test_selftest_flags },
		{ "selftest_iotlb_id", test_selftest_iotlb_id },
		{ "selftest_flag_all", test_selftest_flag_all },
		{ "destroy_attached", test_destroy_attached },
		{ "destroy_parent_busy", test_destroy_parent_busy },
		{ "parent_attach_detach", test_parent_attach_detach },
		{ NULL, NULL },
	};

	return it_main(argc, argv, "kernel_rules", cases);
}
