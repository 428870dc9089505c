/* SPDX-License-Identifier: MIT */
/*
 * Sessions and objects: the handshake, allocation errors, tenant isolation
 * (another client's HWPT does not exist for you), exclusive attach, cleanup
 * when a client disconnects, and clean shutdown with clients connected.
 */
#include <errno.h>
#include <string.h>

#include "harness.h"

#define ST_VAL 0xc0ffee00u

static void test_hello(void)
{
	struct nestd *d = it_start("[limits]\nmax_entries = 100\nmax_message_size = 65536");
	struct iommu_nest *h = it_connect(d, "hello");
	size_t n = 0;
	const uint32_t *types;

	CU_ASSERT_EQUAL(iommu_nest_server_version(h), IOMMU_NEST_PROTOCOL_VERSION);
	CU_ASSERT_EQUAL(iommu_nest_max_entries(h), 100);
	CU_ASSERT_EQUAL(iommu_nest_max_message_size(h), 65536);
	CU_ASSERT(it_has_cap(h, IOMMU_NEST_CAP_CONTINUE));
	CU_ASSERT(it_has_device(h, IT_ST0));
	CU_ASSERT(it_has_device(h, IT_ST1));
	CU_ASSERT_FALSE(it_has_device(h, "nonexistent"));
	CU_ASSERT_PTR_NULL(iommu_nest_device(h, iommu_nest_device_count(h)));
	types = iommu_nest_inv_data_types(h, &n);
	CU_ASSERT(n >= 1);
	for (size_t i = 0; i < n && types; i++)
		CU_ASSERT(types[i] == IOMMU_NEST_INV_DATA_SELFTEST ||
			  types[i] == IOMMU_NEST_INV_DATA_VTD_S1);
	if (!strcmp(iommu_nest_backend(h), "sim")) {
		CU_ASSERT(it_has_cap(h, IOMMU_NEST_CAP_SIM_MODEL | IOMMU_NEST_CAP_FAULT_INJECT |
					     IOMMU_NEST_CAP_CHECK_IOTLB));
		CU_ASSERT(it_has_device(h, IT_VTD0));
	}
	it_stop_ok(d);
}

/* test_requests = false: no test capabilities, and the requests are refused. */
static void test_test_requests_disabled(void)
{
	struct nestd *d = it_start("test_requests = false");
	struct iommu_nest *h = it_connect(d, "no-test");
	struct iommu_nest_fault flt = { .mode = IOMMU_NEST_FAULT_CLEAR };
	uint32_t st = it_alloc_st(h, IT_ST0, ST_VAL);

	CU_ASSERT_EQUAL(iommu_nest_capabilities(h) &
				(IOMMU_NEST_CAP_SIM_MODEL | IOMMU_NEST_CAP_FAULT_INJECT |
				 IOMMU_NEST_CAP_CHECK_IOTLB), 0);
	CU_ASSERT_EQUAL(iommu_nest_check_iotlb(h, st, 0, ST_VAL), -EOPNOTSUPP);
	CU_ASSERT_EQUAL(iommu_nest_inject_fault(h, &flt), -EOPNOTSUPP);
	if (it_has_device(h, IT_VTD0)) {
		uint32_t vtd = it_alloc_vtd(h, IT_VTD0);
		uint64_t a, b;

		CU_ASSERT_EQUAL(iommu_nest_sim_populate(h, vtd, 0, 1, IOMMU_NEST_SIM_IOTLB),
				-EOPNOTSUPP);
		CU_ASSERT_EQUAL(iommu_nest_sim_query(h, vtd, 0, 1, &a, &b), -EOPNOTSUPP);
	}
	/* Ordinary requests still work. */
	CU_ASSERT_EQUAL(iommu_nest_probe(h, st, IOMMU_NEST_INV_DATA_SELFTEST), 0);
	it_stop_ok(d);
}

static void test_alloc_errors(void)
{
	struct nestd *d = it_start(NULL);
	struct iommu_nest *h = it_connect(d, "alloc");
	uint64_t vtd_data[3] = { 0, 0x1000, 48 };
	uint32_t id = 0, st_data = 1;

	CU_ASSERT_EQUAL(iommu_nest_alloc_selftest(h, "nonexistent", 1, &id), -ENODEV);
	CU_ASSERT_EQUAL(iommu_nest_alloc(h, IT_ST0, IOMMU_NEST_HWPT_DATA_NONE, 0,
					 IOMMU_NEST_HWPT_DATA_NONE, NULL, 0, &id), -EOPNOTSUPP);
	/* Type NONE with data attached: the kernel's -EINVAL (hw_pagetable.c). */
	CU_ASSERT_EQUAL(iommu_nest_alloc(h, IT_ST0, IOMMU_NEST_HWPT_DATA_NONE, 0,
					 IOMMU_NEST_HWPT_DATA_SELFTEST, &st_data, sizeof(st_data),
					 &id),
			-EINVAL);
	/* VT-d data for the mock driver: the driver refuses the type. */
	CU_ASSERT_EQUAL(iommu_nest_alloc(h, IT_ST0, IOMMU_NEST_HWPT_DATA_VTD_S1, 0,
					 IOMMU_NEST_HWPT_DATA_VTD_S1, vtd_data, sizeof(vtd_data),
					 &id), -EOPNOTSUPP);
	/* A nested HWPT takes no allocation flags (NEST_PARENT here). */
	CU_ASSERT_EQUAL(iommu_nest_alloc(h, IT_ST0, IOMMU_NEST_HWPT_DATA_SELFTEST, 1,
					 IOMMU_NEST_HWPT_DATA_SELFTEST, &st_data, sizeof(st_data),
					 &id), -EOPNOTSUPP);
	CU_ASSERT_EQUAL(it_stats(h).hwpts_active, 0);
	if (it_has_device(h, IT_VTD0)) {
		/* Allocation takes any width; attach checks it (4/5-level only). */
		CU_ASSERT_EQUAL(iommu_nest_alloc_vtd_s1(h, IT_VTD0, 0, 0x1000, 39, &id), 0);
		CU_ASSERT_EQUAL(iommu_nest_attach(h, IT_VTD0, id), -EINVAL);
		CU_ASSERT_EQUAL(iommu_nest_destroy(h, id), 0);
	}
	/* Attach/detach of unknown devices. */
	id = it_alloc_st(h, IT_ST0, 1);
	CU_ASSERT_EQUAL(iommu_nest_attach(h, "nonexistent", id), -ENODEV);
	CU_ASSERT_EQUAL(iommu_nest_detach(h, "nonexistent"), -ENODEV);
	/*
	 * A HWPT of st0 cannot go on st1: it sits on st0's stage 2. The
	 * kernel would take it (compatible mock domains); the daemon refuses
	 * on every backend.
	 */
	CU_ASSERT_EQUAL(iommu_nest_attach(h, IT_ST1, id), -EINVAL);
	/*
	 * A destroyed id is unknown until the kernel hands it out again (the
	 * iommufd xarray reuses the lowest free id, and so does the sim).
	 */
	CU_ASSERT_EQUAL(iommu_nest_destroy(h, id), 0);
	CU_ASSERT_EQUAL(iommu_nest_probe(h, id, IOMMU_NEST_INV_DATA_SELFTEST), -ENOENT);
	it_stop_ok(d);
}

/* ---- isolation -------------------------------------------------------------- */

static void others_hwpt_enoent(struct iommu_nest *b, uint32_t id, uint32_t inv_type,
			       const char *dev)
{
	struct iommu_nest_selftest_inv se = { IOMMU_NEST_TEST_INVALIDATE_FLAG_ALL, 0 };
	struct iommu_nest_vtd_inv ve = { .addr = 0, .npages = UINT64_MAX };
	struct iommu_nest_fault flt = { .hwpt_id = id, .mode = IOMMU_NEST_FAULT_AT_INDEX,
					.error = -EIO };
	struct iommu_nest_entry_result res;
	struct iommu_nest_inv_summary sum;
	bool vtd = inv_type == IOMMU_NEST_INV_DATA_VTD_S1;
	uint64_t x, y;

	CU_ASSERT_EQUAL(iommu_nest_probe(b, id, inv_type), -ENOENT);
	CU_ASSERT_EQUAL(iommu_nest_invalidate(b, id, inv_type, vtd ? (void *)&ve : (void *)&se, 1,
					      0, &res, &sum), -ENOENT);
	CU_ASSERT_EQUAL(res.state, IOMMU_NEST_ENTRY_NOT_ATTEMPTED);
	CU_ASSERT_EQUAL(sum.entries_handled, 0);
	CU_ASSERT_EQUAL(iommu_nest_attach(b, dev, id), -ENOENT);
	CU_ASSERT_EQUAL(iommu_nest_destroy(b, id), -ENOENT);
	if (it_has_cap(b, IOMMU_NEST_CAP_CHECK_IOTLB))
		CU_ASSERT_EQUAL(iommu_nest_check_iotlb(b, id, 0, ST_VAL), -ENOENT);
	if (it_has_cap(b, IOMMU_NEST_CAP_SIM_MODEL)) {
		CU_ASSERT_EQUAL(iommu_nest_sim_query(b, id, 0, 1, &x, &y), -ENOENT);
		CU_ASSERT_EQUAL(iommu_nest_sim_populate(b, id, 0, 1, IOMMU_NEST_SIM_IOTLB),
				-ENOENT);
	}
	if (it_has_cap(b, IOMMU_NEST_CAP_FAULT_INJECT))
		CU_ASSERT_EQUAL(iommu_nest_inject_fault(b, &flt), -ENOENT);
}

/* B is a plain tenant: root is an admin, which may invalidate any HWPT. */
static void test_isolation(void)
{
	struct nestd *d;
	struct iommu_nest *a, *b;
	uint32_t st, vtd = 0;

	IT_REQUIRE_ROOT();
	d = it_start(NULL);
	a = it_connect(d, "tenant-a");
	b = it_connect_as(d, "tenant-b", IT_NOBODY, IT_NOBODY);
	st = it_alloc_st(a, IT_ST0, ST_VAL);

	if (it_has_device(a, IT_VTD0)) {
		vtd = it_alloc_vtd(a, IT_VTD0);
		if (it_has_cap(a, IOMMU_NEST_CAP_SIM_MODEL))
			it_populate(a, vtd, 0x1000, 4, IOMMU_NEST_SIM_IOTLB);
	}
	others_hwpt_enoent(b, st, IOMMU_NEST_INV_DATA_SELFTEST, IT_ST0);
	if (vtd)
		others_hwpt_enoent(b, vtd, IOMMU_NEST_INV_DATA_VTD_S1, IT_VTD0);
	/* A's objects are intact and still A's. */
	CU_ASSERT_EQUAL(iommu_nest_probe(a, st, IOMMU_NEST_INV_DATA_SELFTEST), 0);
	if (it_has_cap(a, IOMMU_NEST_CAP_CHECK_IOTLB))
		for (uint32_t s = 0; s < 4; s++)
			CU_ASSERT_EQUAL(iommu_nest_check_iotlb(a, st, s, ST_VAL), 0);
	if (vtd && it_has_cap(a, IOMMU_NEST_CAP_SIM_MODEL))
		CU_ASSERT_EQUAL(it_iotlb_pages(a, vtd, 0x1000, 4), 4);
	CU_ASSERT_EQUAL(iommu_nest_attach(a, IT_ST0, st), 0);
	CU_ASSERT_EQUAL(it_stats(a).hwpts_active, vtd ? 2 : 1);
	it_stop_ok(d);
}

static void test_attach_busy(void)
{
	struct nestd *d = it_start(NULL);
	struct iommu_nest *a = it_connect(d, "tenant-a");
	struct iommu_nest *b = it_connect(d, "tenant-b");
	uint32_t ha = it_alloc_st(a, IT_ST0, 1);
	uint32_t hb = it_alloc_st(b, IT_ST0, 2);

	uint32_t id = 0;

	CU_ASSERT_EQUAL(iommu_nest_attach(a, IT_ST0, ha), 0);
	CU_ASSERT_EQUAL(iommu_nest_attach(b, IT_ST0, hb), -EBUSY);
	CU_ASSERT_EQUAL(iommu_nest_detach(b, IT_ST0), -EBUSY);
	/* B's HWPT is not attached, so B may destroy it; a new one on A's device is busy. */
	CU_ASSERT_EQUAL(iommu_nest_destroy(b, hb), 0);
	CU_ASSERT_EQUAL(iommu_nest_alloc_selftest(b, IT_ST0, 2, &id), -EBUSY);
	CU_ASSERT_EQUAL(id, 0);
	/* Another device is free for B. */
	CU_ASSERT_EQUAL(iommu_nest_attach(b, IT_ST1, it_alloc_st(b, IT_ST1, 3)), 0);
	/* Once A lets go, B gets the device and A is the one refused. */
	CU_ASSERT_EQUAL(iommu_nest_detach(a, IT_ST0), 0);
	hb = it_alloc_st(b, IT_ST0, 2);
	CU_ASSERT_EQUAL(iommu_nest_attach(b, IT_ST0, hb), 0);
	CU_ASSERT_EQUAL(iommu_nest_attach(a, IT_ST0, ha), -EBUSY);
	CU_ASSERT_EQUAL(iommu_nest_destroy(a, ha), 0);
	CU_ASSERT_EQUAL(iommu_nest_destroy(b, hb), -EBUSY);
	it_stop_ok(d);
}

/* ---- disconnect ------------------------------------------------------------------ */

static void test_disconnect_cleanup(void)
{
	struct nestd *d = it_start(NULL);
	struct iommu_nest *a = it_connect(d, "leaver");
	struct iommu_nest *c;
	struct iommu_nest_stats st;
	uint32_t ids[4], n = 0, mine;

	ids[n++] = it_alloc_st(a, IT_ST0, 1);
	ids[n++] = it_alloc_st(a, IT_ST0, 2);
	ids[n++] = it_alloc_st(a, IT_ST1, 3);
	CU_ASSERT_EQUAL(iommu_nest_attach(a, IT_ST0, ids[1]), 0);
	if (it_has_device(a, IT_VTD0)) {
		ids[n++] = it_alloc_vtd(a, IT_VTD0);
		CU_ASSERT_EQUAL(iommu_nest_attach(a, IT_VTD0, ids[3]), 0);
	}
	st = it_stats(a);
	CU_ASSERT_EQUAL(st.hwpts_active, n);
	CU_ASSERT_EQUAL(st.sessions_active, 1);
	it_close(a);

	/*
	 * A's EOF was queued before C connected, so the daemon has reaped A
	 * before it reads C's first request.
	 */
	c = it_connect(d, "newcomer");
	st = it_stats(c);
	CU_ASSERT_EQUAL(st.hwpts_active, 0);
	CU_ASSERT_EQUAL(st.sessions_active, 1);
	for (uint32_t i = 0; i < n; i++)
		CU_ASSERT_EQUAL(iommu_nest_probe(c, ids[i], IOMMU_NEST_INV_DATA_SELFTEST), -ENOENT);
	mine = it_alloc_st(c, IT_ST0, ST_VAL);
	CU_ASSERT_EQUAL(iommu_nest_attach(c, IT_ST0, mine), 0);
	if (n == 4)
		CU_ASSERT_EQUAL(iommu_nest_attach(c, IT_VTD0, it_alloc_vtd(c, IT_VTD0)), 0);
	CU_ASSERT_EQUAL(iommu_nest_destroy(c, mine), -EBUSY);
	CU_ASSERT_EQUAL(it_stats(c).hwpts_active, n == 4 ? 2 : 1);
	it_stop_ok(d);
}

static void ignore_completion(struct iommu_nest *h, uint64_t token,
			      const struct iommu_nest_inv_summary *summary,
			      struct iommu_nest_entry_result *results, size_t n, void *opaque)
{
	CU_FAIL("a closed handle ran a completion");
}

/* A client that vanishes with invalidations in flight and unread replies. */
static void test_disconnect_in_flight(void)
{
	struct nestd *d = it_start(NULL);
	struct iommu_nest *a = it_connect(d, "abandoner");
	struct iommu_nest *c;
	struct iommu_nest_selftest_inv e[4] = { { 0, 0 }, { 0, 1 }, { 0, 2 }, { 0, 3 } };
	uint32_t st = it_alloc_st(a, IT_ST0, 1);

	CU_ASSERT_EQUAL(iommu_nest_attach(a, IT_ST0, st), 0);
	for (int i = 0; i < 32; i++)
		CU_ASSERT_EQUAL(iommu_nest_invalidate_submit(a, st, IOMMU_NEST_INV_DATA_SELFTEST, e,
							     4, 0, NULL, ignore_completion,
							     NULL, NULL),
				0);
	it_close(a);
	c = it_connect(d, "survivor");
	CU_ASSERT_EQUAL(it_stats(c).hwpts_active, 0);
	st = it_alloc_st(c, IT_ST0, 5);
	CU_ASSERT_EQUAL(iommu_nest_attach(c, IT_ST0, st), 0);
	CU_ASSERT_EQUAL(iommu_nest_invalidate(c, st, IOMMU_NEST_INV_DATA_SELFTEST, e, 4, 0, NULL,
					      NULL), 0);
	it_stop_ok(d);
}

/* SIGTERM with clients connected, devices attached and HWPTs alive: exit 0. */
static void test_shutdown_with_clients(void)
{
	struct nestd *d = it_start(NULL);
	struct iommu_nest *a = it_connect(d, "a");
	struct iommu_nest *b = it_connect(d, "b");
	int raw = it_raw_connect(d);

	CU_ASSERT_EQUAL(iommu_nest_attach(a, IT_ST0, it_alloc_st(a, IT_ST0, 1)), 0);
	it_alloc_st(b, IT_ST1, 2);
	if (it_has_device(b, IT_VTD1))
		CU_ASSERT_EQUAL(iommu_nest_attach(b, IT_VTD1, it_alloc_vtd(b, IT_VTD1)), 0);
	it_raw_hello(raw);
	it_stop_ok(d);
	/* The clients see the daemon go away. */
	CU_ASSERT(it_raw_eof(raw));
	CU_ASSERT(iommu_nest_probe(a, 1, IOMMU_NEST_INV_DATA_SELFTEST) < 0);
}

int main(int argc, char **argv)
{
	static const struct it_case cases[] = {
		{ "hello", test_hello },
		{ "test_requests_disabled", test_test_requests_disabled },
		{ "alloc_errors", test_alloc_errors },
		{ "isolation", test_isolation },
		{ "attach_busy", test_attach_busy },
		{ "disconnect_cleanup", test_disconnect_cleanup },
		{ "disconnect_in_flight", test_disconnect_in_flight },
		{ "shutdown_with_clients", test_shutdown_with_clients },
		{ NULL, NULL },
	};

	return it_main(argc, argv, "lifecycle", cases);
}
