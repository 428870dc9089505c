/* SPDX-License-Identifier: MIT */
/*
 * vIOMMU and vDEVICE objects through the socket, with the 7.x kernel's
 * rules (iommufd/viommu.c, the selftest mock's viommu ops): allocation,
 * destroy while in use, invalidation on a vIOMMU id with per-entry
 * results, ownership, teardown at disconnect. The same program runs on
 * the sim (sim_kernel = 7.0) and, in the kernel tiers, on the real
 * kernel's mock devices: every errno and entry count is the kernel's
 * (a 6.12 kernel, and the sim under 6.12 rules, have no vIOMMU: -ENOTTY).
 */
#include <errno.h>
#include <string.h>

#include "harness.h"

#define NA     IOMMU_NEST_ENTRY_NOT_ATTEMPTED
#define DONE   IOMMU_NEST_ENTRY_DONE
#define FAILED IOMMU_NEST_ENTRY_FAILED
#define ST_INV IOMMU_NEST_VIOMMU_INV_DATA_SELFTEST
#define ALL    IOMMU_NEST_VIOMMU_INV_SELFTEST_ALL

/* it_expect rows. */
#define D                                                                                          \
	{                                                                                          \
		DONE, 0, 0                                                                         \
	}
#define N                                                                                          \
	{                                                                                          \
		NA, 0, 0                                                                           \
	}
#define F(e)                                                                                       \
	{                                                                                          \
		FAILED, (e), 0                                                                     \
	}

#define K7_CONFIG "[daemon]\nsim_kernel = 7.0\n"

/* A daemon whose kernel (or sim) follows 7.x rules, with one client; NULL d: skipped. */
struct fx {
	struct nestd *d;
	struct iommu_nest *h;
};

static bool fx_open(struct fx *f, const char *name)
{
	f->d = it_start(K7_CONFIG);
	f->h = it_connect(f->d, name);
	if (!it_kernel7_rules("7.0") || !it_has_device(f->h, IT_ST0) ||
	    !it_has_device(f->h, IT_ST1)) {
		it_stop_ok(f->d);
		return false;
	}
	return true;
}

static uint32_t viommu_on(struct iommu_nest *h, const char *dev)
{
	uint32_t id = 0;

	CU_ASSERT_EQUAL_FATAL(
	    iommu_nest_alloc_viommu(h, dev, IOMMU_NEST_VIOMMU_TYPE_SELFTEST, 0, &id), 0);
	CU_ASSERT(id != 0);
	return id;
}

static uint32_t vdev_on(struct iommu_nest *h, uint32_t viommu, const char *dev, uint64_t virt)
{
	uint32_t id = 0;

	CU_ASSERT_EQUAL_FATAL(iommu_nest_alloc_vdevice(h, viommu, dev, virt, &id), 0);
	CU_ASSERT(id != 0);
	return id;
}

/* 6.12 has neither ioctl: the kernel's -ENOTTY comes back, on the kernel and the sim alike. */
static void test_no_viommu_on_6_12(void)
{
	struct nestd *d = it_start(NULL);
	struct iommu_nest *h = it_connect(d, "viommu-6.12");
	uint32_t id = 0;

	if (it_kernel7_rules(NULL)) {
		it_stop_ok(d);
		IT_SKIP("the running kernel has vIOMMU objects");
	}
	IT_REQUIRE_DEVICE(h, IT_ST0);
	CU_ASSERT_EQUAL(iommu_nest_alloc_viommu(h, IT_ST0, IOMMU_NEST_VIOMMU_TYPE_SELFTEST, 0, &id),
			-ENOTTY);
	CU_ASSERT(strstr(iommu_nest_last_error(h), "6.13") != NULL);
	CU_ASSERT_EQUAL(iommu_nest_alloc_vdevice(h, 1, IT_ST0, 0, &id), -ENOENT);
	it_stop_ok(d);
}

/* iommufd_viommu_alloc_ioctl(): flags, type DEFAULT, the driver's types. */
static void test_alloc_rules(void)
{
	struct fx f;
	uint32_t id = 0;

	if (!fx_open(&f, "viommu-alloc"))
		IT_SKIP("needs 7.x rules and the mock devices st0, st1");
	CU_ASSERT_EQUAL(iommu_nest_alloc_viommu(f.h, IT_ST0, 0, 0, &id), -EOPNOTSUPP);
	CU_ASSERT_EQUAL(
	    iommu_nest_alloc_viommu(f.h, IT_ST0, IOMMU_NEST_VIOMMU_TYPE_SELFTEST, 1, &id),
	    -EOPNOTSUPP);
	/* The mock makes only its own type (mock_get_viommu_size()). */
	CU_ASSERT_EQUAL(
	    iommu_nest_alloc_viommu(f.h, IT_ST0, IOMMU_NEST_VIOMMU_TYPE_ARM_SMMUV3, 0, &id),
	    -EOPNOTSUPP);
	CU_ASSERT_EQUAL(
	    iommu_nest_alloc_viommu(f.h, "nosuch", IOMMU_NEST_VIOMMU_TYPE_SELFTEST, 0, &id),
	    -ENODEV);
	/* Two vIOMMUs on one nest parent are fine. */
	CU_ASSERT(viommu_on(f.h, IT_ST0) != viommu_on(f.h, IT_ST0));
	it_stop_ok(f.d);
}

/* iommufd_vdevice_alloc_ioctl(): one vDEVICE per device, one device per virt_id. */
static void test_vdevice_rules(void)
{
	struct fx f;
	uint32_t v, v2, id = 0;

	if (!fx_open(&f, "viommu-vdev"))
		IT_SKIP("needs 7.x rules and the mock devices st0, st1");
	v = viommu_on(f.h, IT_ST0);
	v2 = viommu_on(f.h, IT_ST1);
	vdev_on(f.h, v, IT_ST0, 0x10);
	/* idev->vdev is taken, on this vIOMMU or another. */
	CU_ASSERT_EQUAL(iommu_nest_alloc_vdevice(f.h, v, IT_ST0, 0x11, &id), -EEXIST);
	CU_ASSERT_EQUAL(iommu_nest_alloc_vdevice(f.h, v2, IT_ST0, 0x12, &id), -EEXIST);
	/* virt_id 0x10 is taken in v's xarray, not in v2's. */
	CU_ASSERT_EQUAL(iommu_nest_alloc_vdevice(f.h, v, IT_ST1, 0x10, &id), -EEXIST);
	vdev_on(f.h, v2, IT_ST1, 0x10);
	/* Not a vIOMMU (a vDEVICE's id, an unknown one): -ENOENT. */
	CU_ASSERT_EQUAL(iommu_nest_alloc_vdevice(f.h, id + 1000, IT_ST1, 1, &id), -ENOENT);
	it_stop_ok(f.d);
}

/* IOMMU_DESTROY: -EBUSY while a vDEVICE holds the vIOMMU; kinds are not interchangeable. */
static void test_destroy_rules(void)
{
	struct fx f;
	uint32_t v, vd, id = 0;

	if (!fx_open(&f, "viommu-destroy"))
		IT_SKIP("needs 7.x rules and the mock devices st0, st1");
	v = viommu_on(f.h, IT_ST0);
	vd = vdev_on(f.h, v, IT_ST0, 7);
	CU_ASSERT_EQUAL(iommu_nest_destroy_object(f.h, IOMMU_NEST_OBJECT_VIOMMU, v), -EBUSY);
	CU_ASSERT_EQUAL(iommu_nest_destroy_object(f.h, IOMMU_NEST_OBJECT_VIOMMU, vd), -ENOENT);
	CU_ASSERT_EQUAL(iommu_nest_destroy_object(f.h, IOMMU_NEST_OBJECT_VDEVICE, v), -ENOENT);
	CU_ASSERT_EQUAL(iommu_nest_destroy_object(f.h, 0, v), -EINVAL);
	/* A vIOMMU is not a HWPT either. */
	CU_ASSERT_EQUAL(iommu_nest_destroy(f.h, v), -ENOENT);
	CU_ASSERT_EQUAL(iommu_nest_destroy_object(f.h, IOMMU_NEST_OBJECT_VDEVICE, vd), 0);
	CU_ASSERT_EQUAL(iommu_nest_destroy_object(f.h, IOMMU_NEST_OBJECT_VDEVICE, vd), -ENOENT);
	/* The device may take a vDEVICE again, and the vIOMMU may go. */
	vd = vdev_on(f.h, v, IT_ST0, 7);
	CU_ASSERT_EQUAL(iommu_nest_destroy_object(f.h, IOMMU_NEST_OBJECT_VDEVICE, vd), 0);
	CU_ASSERT_EQUAL(iommu_nest_destroy_object(f.h, IOMMU_NEST_OBJECT_VIOMMU, v), 0);
	CU_ASSERT_EQUAL(iommu_nest_alloc_vdevice(f.h, v, IT_ST0, 7, &id), -ENOENT);
	it_stop_ok(f.d);
}

static int inv(struct fx *f, uint32_t viommu, uint32_t type, uint32_t len, const void *e, size_t n,
	       uint32_t flags, struct iommu_nest_entry_result *res,
	       struct iommu_nest_inv_summary *sum)
{
	memset(res, 0xa5, n * sizeof(*res));
	memset(sum, 0xa5, sizeof(*sum));
	return iommu_nest_invalidate_viommu(f->h, viommu, type, len, e, n, flags, res, sum);
}

/* mock_viommu_cache_invalidate(): entries in order, the walk stops at the first bad one. */
static void test_invalidate_entries(void)
{
	struct iommu_nest_viommu_selftest_inv e[4] = {
	    {0, 0x10, 1}, {ALL, 0x20, 0}, {0, 0x10, 3}, {0, 0x20, 2}};
	struct iommu_nest_entry_result res[4];
	struct iommu_nest_inv_summary sum;
	struct fx f;
	uint32_t v;

	if (!fx_open(&f, "viommu-inv"))
		IT_SKIP("needs 7.x rules and the mock devices st0, st1");
	v = viommu_on(f.h, IT_ST0);
	vdev_on(f.h, v, IT_ST0, 0x10);
	vdev_on(f.h, v, IT_ST1, 0x20);

	CU_ASSERT_EQUAL(inv(&f, v, ST_INV, 0, e, 4, 0, res, &sum), 0);
	CU_ASSERT_EQUAL(sum.entries_handled, 4);
	it_check_results(res, ((const struct it_expect[]){D, D, D, D}), 4);

	/* An unknown flag: -EOPNOTSUPP at that entry, the ones before it done. */
	e[2].flags = 2;
	CU_ASSERT_EQUAL(inv(&f, v, ST_INV, 0, e, 4, 0, res, &sum), -EOPNOTSUPP);
	CU_ASSERT_EQUAL(sum.entries_handled, 2);
	it_check_results(res, ((const struct it_expect[]){D, D, F(-EOPNOTSUPP), N}), 4);
	/* ... and with continue-past-errors the one after it is done too. */
	CU_ASSERT_EQUAL(inv(&f, v, ST_INV, 0, e, 4, IOMMU_NEST_INV_CONTINUE, res, &sum),
			-EOPNOTSUPP);
	CU_ASSERT_EQUAL(sum.entries_handled, 2);
	it_check_results(res, ((const struct it_expect[]){D, D, F(-EOPNOTSUPP), D}), 4);

	/* cache_id past MOCK_DEV_CACHE_ID_MAX, a vdev_id no vDEVICE has: -EINVAL. */
	e[2] = (struct iommu_nest_viommu_selftest_inv){0, 0x10, 4};
	CU_ASSERT_EQUAL(inv(&f, v, ST_INV, 0, e, 4, 0, res, &sum), -EINVAL);
	CU_ASSERT_EQUAL(sum.entries_handled, 2);
	e[2] = (struct iommu_nest_viommu_selftest_inv){0, 0x30, 0};
	CU_ASSERT_EQUAL(inv(&f, v, ST_INV, 0, e, 4, 0, res, &sum), -EINVAL);
	CU_ASSERT_EQUAL(sum.entries_handled, 2);
	it_check_results(res, ((const struct it_expect[]){D, D, F(-EINVAL), N}), 4);
	it_stop_ok(f.d);
}

/* The request's own rules: empty array, data type, entry_len, the object. */
static void test_invalidate_request(void)
{
	struct iommu_nest_viommu_selftest_inv e[2] = {{0, 0x10, 1}, {0, 0x10, 2}};
	uint32_t wide[2][4] = {{0, 0x10, 1, 0}, {0, 0x10, 2, 9}}; /* 16-byte entries */
	struct iommu_nest_entry_result res[2];
	struct iommu_nest_inv_summary sum;
	struct fx f;
	uint32_t v, hwpt;

	if (!fx_open(&f, "viommu-inv-req"))
		IT_SKIP("needs 7.x rules and the mock devices st0, st1");
	v = viommu_on(f.h, IT_ST0);
	vdev_on(f.h, v, IT_ST0, 0x10);
	/* The empty array validates the type; another type is -EINVAL. */
	CU_ASSERT_EQUAL(inv(&f, v, ST_INV, 0, NULL, 0, 0, res, &sum), 0);
	CU_ASSERT_EQUAL(inv(&f, v, ST_INV + 1, 12, NULL, 0, 0, res, &sum), -EINVAL);
	CU_ASSERT_EQUAL(inv(&f, v, IOMMU_NEST_VIOMMU_INV_DATA_ARM_SMMUV3, 0, e, 1, 0, res, &sum),
			-EINVAL);
	CU_ASSERT_EQUAL(sum.entries_handled, 0);
	/* Longer entries: zeros past the mock's 12 bytes are fine, anything else -E2BIG. */
	wide[1][3] = 0;
	CU_ASSERT_EQUAL(inv(&f, v, ST_INV, 16, wide, 2, 0, res, &sum), 0);
	CU_ASSERT_EQUAL(sum.entries_handled, 2);
	wide[1][3] = 9;
	CU_ASSERT_EQUAL(inv(&f, v, ST_INV, 16, wide, 2, 0, res, &sum), -E2BIG);
	CU_ASSERT_EQUAL(sum.entries_handled, 0); /* the mock copies every entry first */
	it_check_results(res, ((const struct it_expect[]){F(-E2BIG), N}), 2);
	/* Shorter ones are zero-extended: 8 bytes leave cache_id 0. */
	CU_ASSERT_EQUAL(inv(&f, v, ST_INV, 8, e, 1, 0, res, &sum), 0);
	/* Past a page: the core's -EINVAL before any object is looked at. */
	{
		static uint8_t big[4097];

		CU_ASSERT_EQUAL(inv(&f, v + 1000, ST_INV, sizeof(big), big, 1, 0, res, &sum),
				-EINVAL);
	}
	/* Not a vIOMMU of this client: a HWPT of its own, an unknown id. */
	hwpt = it_alloc_st(f.h, IT_ST0, 0);
	CU_ASSERT_EQUAL(inv(&f, hwpt, ST_INV, 0, e, 2, 0, res, &sum), -ENOENT);
	it_check_all_not_attempted(res, 2);
	CU_ASSERT_EQUAL(inv(&f, v + 1000, ST_INV, 0, e, 2, 0, res, &sum), -ENOENT);
	it_stop_ok(f.d);
}

/* Another client's objects are out of reach: -ENOENT, as if they did not exist. */
static void test_ownership(void)
{
	struct iommu_nest_viommu_selftest_inv e = {0, 0x10, 1};
	struct iommu_nest_entry_result res;
	struct iommu_nest_inv_summary sum;
	struct iommu_nest *other;
	struct fx f;
	uint32_t v, vd, id;

	if (!fx_open(&f, "viommu-owner"))
		IT_SKIP("needs 7.x rules and the mock devices st0, st1");
	v = viommu_on(f.h, IT_ST0);
	vd = vdev_on(f.h, v, IT_ST0, 0x10);
	other = it_connect(f.d, "viommu-other");
	CU_ASSERT_EQUAL(iommu_nest_alloc_vdevice(other, v, IT_ST1, 0x11, &id), -ENOENT);
	CU_ASSERT_EQUAL(iommu_nest_destroy_object(other, IOMMU_NEST_OBJECT_VIOMMU, v), -ENOENT);
	CU_ASSERT_EQUAL(iommu_nest_destroy_object(other, IOMMU_NEST_OBJECT_VDEVICE, vd), -ENOENT);
	CU_ASSERT_EQUAL(iommu_nest_invalidate_viommu(other, v, ST_INV, 0, &e, 1, 0, &res, &sum),
			-ENOENT);
	CU_ASSERT_EQUAL(res.state, NA);
	/* st0 carries the first client's objects: busy for anyone else. */
	CU_ASSERT_EQUAL(
	    iommu_nest_alloc_viommu(other, IT_ST0, IOMMU_NEST_VIOMMU_TYPE_SELFTEST, 0, &id),
	    -EBUSY);
	CU_ASSERT_EQUAL(iommu_nest_invalidate_viommu(f.h, v, ST_INV, 0, &e, 1, 0, &res, &sum), 0);
	it_close(other);
	it_stop_ok(f.d);
}

/* A disconnect destroys the client's vDEVICEs, then its vIOMMUs. */
static void test_teardown(void)
{
	struct fx f;
	struct iommu_nest *next;
	uint32_t v;

	if (!fx_open(&f, "viommu-gone"))
		IT_SKIP("needs 7.x rules and the mock devices st0, st1");
	v = viommu_on(f.h, IT_ST0);
	vdev_on(f.h, v, IT_ST0, 0x10);
	vdev_on(f.h, v, IT_ST1, 0x11);
	it_close(f.h);
	next = it_connect(f.d, "viommu-next");
	CU_ASSERT(it_wait_sessions(next, 1));
	/* Had st0's vDEVICE stayed, the kernel would answer -EEXIST. */
	v = viommu_on(next, IT_ST0);
	vdev_on(next, v, IT_ST0, 0x10);
	vdev_on(next, v, IT_ST1, 0x11);
	it_close(next);
	it_stop_ok(f.d);
}

/*
 * IOMMU_HWPT_ALLOC with a vIOMMU as pt_id (the mock's alloc_domain_nested):
 * the HWPT works like one on the nest parent, and holds the vIOMMU.
 */
static void test_nested_on_viommu(void)
{
	struct iommu_nest_selftest_inv e = {0, 1};
	struct iommu_nest_entry_result res;
	struct iommu_nest_inv_summary sum;
	uint32_t v, vd, hwpt = 0, iotlb = 0x1234, vtd[6] = {0};
	struct iommu_nest *other;
	struct fx f;

	if (!fx_open(&f, "viommu-nested"))
		IT_SKIP("needs 7.x rules and the mock devices st0, st1");
	v = viommu_on(f.h, IT_ST0);
	/* The mock's vIOMMU takes its own nested data only. */
	CU_ASSERT_EQUAL(iommu_nest_alloc_on_viommu(f.h, IT_ST0, v, IOMMU_NEST_HWPT_DATA_VTD_S1, 0,
						   IOMMU_NEST_HWPT_DATA_VTD_S1, vtd, sizeof(vtd),
						   &hwpt),
			-EOPNOTSUPP);
	CU_ASSERT_EQUAL_FATAL(
	    iommu_nest_alloc_on_viommu(f.h, IT_ST0, v, IOMMU_NEST_HWPT_DATA_SELFTEST, 0,
				       IOMMU_NEST_HWPT_DATA_SELFTEST, &iotlb, sizeof(iotlb), &hwpt),
	    0);
	/* The mock attaches a device to it only through the device's vDEVICE there. */
	CU_ASSERT_EQUAL(iommu_nest_attach(f.h, IT_ST0, hwpt), -ENOENT);
	vd = vdev_on(f.h, v, IT_ST0, 0x10);
	CU_ASSERT_EQUAL(iommu_nest_attach(f.h, IT_ST0, hwpt), 0);
	CU_ASSERT_EQUAL(
	    iommu_nest_invalidate(f.h, hwpt, IOMMU_NEST_INV_DATA_SELFTEST, &e, 1, 0, &res, &sum),
	    0);
	CU_ASSERT_EQUAL(sum.entries_handled, 1);
	/* The HWPT holds the vIOMMU; someone else's vIOMMU id is not a parent. */
	CU_ASSERT_EQUAL(iommu_nest_destroy_object(f.h, IOMMU_NEST_OBJECT_VIOMMU, v), -EBUSY);
	other = it_connect(f.d, "viommu-nested-other");
	CU_ASSERT_EQUAL(iommu_nest_alloc_on_viommu(other, IT_ST1, v, IOMMU_NEST_HWPT_DATA_SELFTEST,
						   0, IOMMU_NEST_HWPT_DATA_SELFTEST, &iotlb,
						   sizeof(iotlb), &hwpt),
			-ENOENT);
	it_close(other);
	CU_ASSERT_EQUAL(iommu_nest_detach(f.h, IT_ST0), 0);
	CU_ASSERT_EQUAL(iommu_nest_destroy(f.h, hwpt), 0);
	CU_ASSERT_EQUAL(iommu_nest_destroy_object(f.h, IOMMU_NEST_OBJECT_VIOMMU, v), -EBUSY);
	CU_ASSERT_EQUAL(iommu_nest_destroy_object(f.h, IOMMU_NEST_OBJECT_VDEVICE, vd), 0);
	CU_ASSERT_EQUAL(iommu_nest_destroy_object(f.h, IOMMU_NEST_OBJECT_VIOMMU, v), 0);
	/* And a disconnect with a HWPT on a vIOMMU takes the HWPT first. */
	v = viommu_on(f.h, IT_ST0);
	CU_ASSERT_EQUAL(iommu_nest_alloc_on_viommu(f.h, IT_ST0, v, IOMMU_NEST_HWPT_DATA_SELFTEST, 0,
						   IOMMU_NEST_HWPT_DATA_SELFTEST, &iotlb,
						   sizeof(iotlb), &hwpt),
			0);
	vdev_on(f.h, v, IT_ST0, 0x10);
	CU_ASSERT_EQUAL(iommu_nest_attach(f.h, IT_ST0, hwpt), 0);
	it_close(f.h);
	f.h = it_connect(f.d, "viommu-nested-next");
	CU_ASSERT(it_wait_sessions(f.h, 1));
	CU_ASSERT_EQUAL(it_stats(f.h).hwpts_active, 0);
	it_stop_ok(f.d);
}

static const struct it_case cases[] = {
    {"no_viommu_on_6_12", test_no_viommu_on_6_12},
    {"alloc_rules", test_alloc_rules},
    {"vdevice_rules", test_vdevice_rules},
    {"destroy_rules", test_destroy_rules},
    {"invalidate_entries", test_invalidate_entries},
    {"invalidate_request", test_invalidate_request},
    {"ownership", test_ownership},
    {"teardown", test_teardown},
    {"nested_on_viommu", test_nested_on_viommu},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
	return it_main(argc, argv, "viommu", cases);
}
