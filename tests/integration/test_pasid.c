/* SPDX-License-Identifier: MIT */
/*
 * PASID attachments through the socket (AttachPasid / DetachPasid), with
 * the 7.x kernel's rules (iommufd/device.c, iommu.c; the cases of the
 * kernel selftest's iommufd_device_pasid fixture): a HWPT allocated with
 * IOMMU_HWPT_ALLOC_PASID on a PASID of a PASID-capable mock (sp0), the
 * RID's domain rule, attach-or-replace, detach of nothing, destroy while
 * attached, the PASID width, ownership, invalidation of a HWPT on a PASID
 * and the teardown at disconnect. The same program runs on the sim
 * (sim_kernel = 7.0) and in the kernel tiers on the real kernel's mock
 * devices; tests/kernel/ktest_pasid.c checks the same rules with the same
 * errnos on the kernel directly. 6.12 (kernel and sim) has no PASIDs.
 */
#include <errno.h>
#include <string.h>

#include "harness.h"

#define IT_SP0	  "sp0"
#define SP0_CONF  "[device " IT_SP0 "]\nkind = selftest\npasid = true\n"
#define K7_CONFIG "[daemon]\nsim_kernel = 7.0\n" SP0_CONF
#define WIDTH	  20u /* the mock's MOCK_PASID_WIDTH */

struct fx {
	struct nestd *d;
	struct iommu_nest *h;
};

/* A daemon with 7.x rules and sp0, st0; false (and stopped) where the kernel has no PASIDs. */
static bool fx_open(struct fx *f, const char *name)
{
	f->d = it_start(K7_CONFIG);
	f->h = it_connect(f->d, name);
	if (!it_kernel7_rules("7.0") || !it_has_device(f->h, IT_SP0) ||
	    !it_has_device(f->h, IT_ST0)) {
		it_stop_ok(f->d);
		return false;
	}
	return true;
}

#define FX_OPEN(f, name)                                                                           \
	do {                                                                                       \
		if (!fx_open((f), (name)))                                                         \
			IT_SKIP("needs 7.x rules and the mock devices sp0, st0");                  \
	} while (0)

static int alloc_st(struct iommu_nest *h, const char *dev, uint32_t flags, uint32_t *id)
{
	uint32_t iotlb = 0xbadbeef; /* IOMMU_TEST_IOTLB_DEFAULT */

	return iommu_nest_alloc(h, dev, IOMMU_NEST_HWPT_DATA_SELFTEST, flags,
				IOMMU_NEST_HWPT_DATA_SELFTEST, &iotlb, sizeof(iotlb), id);
}

static uint32_t hwpt(struct iommu_nest *h, const char *dev, uint32_t flags)
{
	uint32_t id = 0;

	CU_ASSERT_EQUAL_FATAL(alloc_st(h, dev, flags, &id), 0);
	return id;
}

#define PASID_HWPT(h, dev) hwpt((h), (dev), IOMMU_NEST_ALLOC_PASID)

/* GetHwInfo: the mock's width on sp0, none on st0. */
static void test_width_reported(void)
{
	struct iommu_nest_hw_info info;
	struct fx f;

	FX_OPEN(&f, "pasid-width");
	CU_ASSERT_EQUAL(iommu_nest_get_hw_info(f.h, IT_SP0, &info), 0);
	CU_ASSERT_EQUAL(info.max_pasid_log2, WIDTH);
	CU_ASSERT_EQUAL(iommu_nest_get_hw_info(f.h, IT_ST0, &info), 0);
	CU_ASSERT_EQUAL(info.max_pasid_log2, 0);
	it_stop_ok(f.d);
}

/* A HWPT without IOMMU_HWPT_ALLOC_PASID: -EINVAL (iommufd_hwpt_pasid_compat()). */
static void test_needs_alloc_pasid(void)
{
	struct fx f;
	uint32_t plain, compat;

	FX_OPEN(&f, "pasid-flag");
	plain = hwpt(f.h, IT_SP0, 0);
	compat = PASID_HWPT(f.h, IT_SP0);
	CU_ASSERT_EQUAL(iommu_nest_attach_pasid(f.h, IT_SP0, 100, plain), -EINVAL);
	CU_ASSERT_EQUAL(iommu_nest_attach_pasid(f.h, IT_SP0, 100, compat), 0);
	CU_ASSERT_EQUAL(iommu_nest_detach_pasid(f.h, IT_SP0, 100), 0);
	it_stop_ok(f.d);
}

/* The RID's domain must be ALLOC_PASID too: before a PASID goes on, and while one is. */
static void test_rid_rule(void)
{
	struct fx f;
	uint32_t plain, compat;

	FX_OPEN(&f, "pasid-rid");
	plain = hwpt(f.h, IT_SP0, 0);
	compat = PASID_HWPT(f.h, IT_SP0);
	CU_ASSERT_EQUAL(iommu_nest_attach(f.h, IT_SP0, plain), 0);
	CU_ASSERT_EQUAL(iommu_nest_attach_pasid(f.h, IT_SP0, 100, compat), -EINVAL);
	CU_ASSERT_EQUAL(iommu_nest_attach(f.h, IT_SP0, compat), 0);
	CU_ASSERT_EQUAL(iommu_nest_attach_pasid(f.h, IT_SP0, 100, compat), 0);
	CU_ASSERT_EQUAL(iommu_nest_attach(f.h, IT_SP0, plain), -EINVAL);
	/* Back to the nest parent, which the daemon allocates ALLOC_PASID on sp0. */
	CU_ASSERT_EQUAL(iommu_nest_detach(f.h, IT_SP0), 0);
	CU_ASSERT_EQUAL(iommu_nest_detach_pasid(f.h, IT_SP0, 100), 0);
	CU_ASSERT_EQUAL(iommu_nest_attach(f.h, IT_SP0, plain), 0);
	it_stop_ok(f.d);
}

/* A device without PASIDs: its RID sits on a parent without ALLOC_PASID, -EINVAL. */
static void test_non_pasid_device(void)
{
	struct fx f;

	FX_OPEN(&f, "pasid-none");
	CU_ASSERT_EQUAL(iommu_nest_attach_pasid(f.h, IT_ST0, 100, PASID_HWPT(f.h, IT_ST0)),
			-EINVAL);
	CU_ASSERT_EQUAL(iommu_nest_attach_pasid(f.h, IT_ST0, 100, hwpt(f.h, IT_ST0, 0)), -EINVAL);
	it_stop_ok(f.d);
}

/* Attaching an attached PASID replaces, as VFIO does; the old HWPT is free again. */
static void test_replace(void)
{
	struct fx f;
	uint32_t a, b;

	FX_OPEN(&f, "pasid-replace");
	a = PASID_HWPT(f.h, IT_SP0);
	b = PASID_HWPT(f.h, IT_SP0);
	CU_ASSERT_EQUAL(iommu_nest_attach_pasid(f.h, IT_SP0, 200, a), 0);
	CU_ASSERT_EQUAL(iommu_nest_attach_pasid(f.h, IT_SP0, 200, a), 0); /* same: a no-op */
	CU_ASSERT_EQUAL(iommu_nest_attach_pasid(f.h, IT_SP0, 200, b), 0);
	CU_ASSERT_EQUAL(iommu_nest_destroy(f.h, a), 0);
	CU_ASSERT_EQUAL(iommu_nest_destroy(f.h, b), -EBUSY);
	CU_ASSERT_EQUAL(iommu_nest_detach_pasid(f.h, IT_SP0, 200), 0);
	CU_ASSERT_EQUAL(iommu_nest_destroy(f.h, b), 0);
	it_stop_ok(f.d);
}

/* Detaching a PASID nothing is on: 0, the kernel's answer. */
static void test_detach_nothing(void)
{
	struct fx f;

	FX_OPEN(&f, "pasid-detach");
	CU_ASSERT_EQUAL(iommu_nest_detach_pasid(f.h, IT_SP0, 100), 0);
	CU_ASSERT_EQUAL(iommu_nest_detach_pasid(f.h, IT_ST0, 100), 0);
	it_stop_ok(f.d);
}

/* A HWPT on a PASID holds a reference: IOMMU_DESTROY is -EBUSY until it is off. */
static void test_destroy_while_attached(void)
{
	struct fx f;
	uint32_t a;

	FX_OPEN(&f, "pasid-destroy");
	a = PASID_HWPT(f.h, IT_SP0);
	CU_ASSERT_EQUAL(iommu_nest_attach_pasid(f.h, IT_SP0, 300, a), 0);
	CU_ASSERT_EQUAL(iommu_nest_attach_pasid(f.h, IT_SP0, 301, a), 0);
	CU_ASSERT_EQUAL(iommu_nest_destroy(f.h, a), -EBUSY);
	CU_ASSERT_EQUAL(iommu_nest_detach_pasid(f.h, IT_SP0, 300), 0);
	CU_ASSERT_EQUAL(iommu_nest_destroy(f.h, a), -EBUSY);
	CU_ASSERT_EQUAL(iommu_nest_detach_pasid(f.h, IT_SP0, 301), 0);
	CU_ASSERT_EQUAL(iommu_nest_destroy(f.h, a), 0);
	it_stop_ok(f.d);
}

/* iommu.c: a PASID at or past max_pasids is -EINVAL; PASID 0 is the RID's. */
static void test_width_and_rid_pasid(void)
{
	struct fx f;
	uint32_t a;

	FX_OPEN(&f, "pasid-range");
	a = PASID_HWPT(f.h, IT_SP0);
	CU_ASSERT_EQUAL(iommu_nest_attach_pasid(f.h, IT_SP0, 1u << WIDTH, a), -EINVAL);
	CU_ASSERT_EQUAL(iommu_nest_attach_pasid(f.h, IT_SP0, (1u << WIDTH) - 1, a), 0);
	CU_ASSERT_EQUAL(iommu_nest_attach_pasid(f.h, IT_SP0, 0, a), -EINVAL);
	CU_ASSERT_EQUAL(iommu_nest_detach_pasid(f.h, IT_SP0, 0), -EINVAL);
	CU_ASSERT_EQUAL(iommu_nest_detach_pasid(f.h, IT_SP0, (1u << WIDTH) - 1), 0);
	it_stop_ok(f.d);
}

/* The nest parent under a HWPT of the client, on a PASID (it is ALLOC_PASID on sp0). */
static void test_parent_on_pasid(void)
{
	struct fx f;
	uint32_t a, parent;

	FX_OPEN(&f, "pasid-parent");
	a = PASID_HWPT(f.h, IT_SP0);
	parent = it_parent_of(f.h, a);
	CU_ASSERT_EQUAL(iommu_nest_attach_pasid(f.h, IT_SP0, 400, parent), 0);
	CU_ASSERT_EQUAL(iommu_nest_attach_pasid(f.h, IT_SP0, 400, a), 0);
	CU_ASSERT_EQUAL(iommu_nest_attach_pasid(f.h, IT_SP0, 400, parent), 0);
	CU_ASSERT_EQUAL(iommu_nest_detach_pasid(f.h, IT_SP0, 400), 0);
	/* Another device's HWPT is not on sp0's stage 2. */
	CU_ASSERT_EQUAL(iommu_nest_attach_pasid(f.h, IT_SP0, 400, PASID_HWPT(f.h, IT_ST0)),
			-EINVAL);
	it_stop_ok(f.d);
}

/* Another client's HWPT is -ENOENT; a device with another client's PASIDs is busy. */
static void test_ownership(void)
{
	struct iommu_nest *other;
	struct fx f;
	uint32_t a, mine;

	FX_OPEN(&f, "pasid-owner");
	other = it_connect(f.d, "pasid-other");
	a = PASID_HWPT(f.h, IT_SP0);
	CU_ASSERT_EQUAL(iommu_nest_attach_pasid(other, IT_SP0, 100, a), -ENOENT);
	CU_ASSERT_EQUAL(iommu_nest_attach_pasid(other, IT_SP0, 100, it_parent_of(f.h, a)), -ENOENT);
	CU_ASSERT_EQUAL(iommu_nest_attach_pasid(f.h, IT_SP0, 100, a), 0);
	CU_ASSERT_EQUAL(iommu_nest_detach_pasid(other, IT_SP0, 100), -EBUSY);
	CU_ASSERT_EQUAL(alloc_st(other, IT_SP0, IOMMU_NEST_ALLOC_PASID, &mine), -EBUSY);
	CU_ASSERT_EQUAL(iommu_nest_destroy(other, a), -ENOENT);
	/* Still there: the owner's HWPT is busy. */
	CU_ASSERT_EQUAL(iommu_nest_destroy(f.h, a), -EBUSY);
	CU_ASSERT_EQUAL(iommu_nest_detach_pasid(f.h, IT_SP0, 100), 0);
	it_stop_ok(f.d);
}

/* Invalidation of a nested HWPT on a PASID works as on the RID. */
static void test_invalidate_on_pasid(void)
{
	const struct iommu_nest_selftest_inv e[2] = {{0, 1}, {0, 3}};
	struct iommu_nest_entry_result res[2];
	struct iommu_nest_inv_summary sum;
	struct fx f;
	uint32_t a;

	FX_OPEN(&f, "pasid-inv");
	IT_REQUIRE_CAP(f.h, IOMMU_NEST_CAP_CHECK_IOTLB);
	a = PASID_HWPT(f.h, IT_SP0);
	CU_ASSERT_EQUAL(iommu_nest_attach_pasid(f.h, IT_SP0, 500, a), 0);
	CU_ASSERT_EQUAL(
	    iommu_nest_invalidate(f.h, a, IOMMU_NEST_INV_DATA_SELFTEST, e, 2, 0, res, &sum), 0);
	CU_ASSERT_EQUAL(sum.entries_handled, 2);
	CU_ASSERT_EQUAL(res[0].state, IOMMU_NEST_ENTRY_DONE);
	CU_ASSERT_EQUAL(res[1].state, IOMMU_NEST_ENTRY_DONE);
	CU_ASSERT_EQUAL(iommu_nest_check_iotlb(f.h, a, 1, 0), 0);
	CU_ASSERT_EQUAL(iommu_nest_check_iotlb(f.h, a, 3, 0), 0);
	CU_ASSERT_EQUAL(iommu_nest_check_iotlb(f.h, a, 0, 0xbadbeef), 0);
	CU_ASSERT_EQUAL(iommu_nest_check_iotlb(f.h, a, 2, 0xbadbeef), 0);
	CU_ASSERT_EQUAL(iommu_nest_detach_pasid(f.h, IT_SP0, 500), 0);
	it_stop_ok(f.d);
}

/*
 * A disconnect takes the client's PASIDs off before its HWPTs go: the next
 * client finds the PASID free (a PASID left on would make its attach a
 * replace of a HWPT the kernel could not destroy).
 */
static void test_teardown(void)
{
	struct iommu_nest *next;
	struct fx f;
	uint32_t a, plain;

	FX_OPEN(&f, "pasid-gone");
	a = PASID_HWPT(f.h, IT_SP0);
	CU_ASSERT_EQUAL(iommu_nest_attach_pasid(f.h, IT_SP0, 600, a), 0);
	CU_ASSERT_EQUAL(iommu_nest_attach_pasid(f.h, IT_SP0, 601, it_parent_of(f.h, a)), 0);
	next = it_connect(f.d, "pasid-next");
	it_close(f.h);
	CU_ASSERT_FATAL(it_wait_sessions(next, 1));
	/* No PASID is left on sp0: the RID may go onto a HWPT without ALLOC_PASID. */
	plain = hwpt(next, IT_SP0, 0);
	CU_ASSERT_EQUAL(iommu_nest_attach(next, IT_SP0, plain), 0);
	CU_ASSERT_EQUAL(iommu_nest_detach(next, IT_SP0), 0);
	CU_ASSERT_EQUAL(iommu_nest_destroy(next, plain), 0);
	a = PASID_HWPT(next, IT_SP0);
	CU_ASSERT_EQUAL(iommu_nest_attach_pasid(next, IT_SP0, 600, a), 0);
	CU_ASSERT_EQUAL(iommu_nest_detach_pasid(next, IT_SP0, 600), 0);
	CU_ASSERT_EQUAL(iommu_nest_destroy(next, a), 0);
	CU_ASSERT_EQUAL(it_stats(next).hwpts_active, 0);
	it_stop_ok(f.d);
}

/* 6.12 has no PASID attachment: the mock's test ops are unknown, ALLOC_PASID is refused. */
static void test_no_pasid_on_6_12(void)
{
	struct nestd *d = it_start(SP0_CONF);
	struct iommu_nest *h = it_connect(d, "pasid-6.12");
	uint32_t plain, id;

	if (it_kernel7_rules(NULL)) {
		it_stop_ok(d);
		IT_SKIP("the running kernel has PASID attachments");
	}
	IT_REQUIRE_DEVICE(h, IT_SP0);
	CU_ASSERT_EQUAL(alloc_st(h, IT_SP0, IOMMU_NEST_ALLOC_PASID, &id), -EOPNOTSUPP);
	plain = hwpt(h, IT_SP0, 0);
	CU_ASSERT_EQUAL(iommu_nest_attach_pasid(h, IT_SP0, 100, plain), -EOPNOTSUPP);
	CU_ASSERT_EQUAL(iommu_nest_detach_pasid(h, IT_SP0, 100), -EOPNOTSUPP);
	/* The sim's VT-d device is a VFIO cdev: 6.12's VFIO refuses the PASID flag. */
	if (it_has_device(h, IT_VTD0)) {
		CU_ASSERT_EQUAL(iommu_nest_attach_pasid(h, IT_VTD0, 100, it_alloc_vtd(h, IT_VTD0)),
				-EINVAL);
		CU_ASSERT_EQUAL(iommu_nest_detach_pasid(h, IT_VTD0, 100), -EINVAL);
	}
	it_stop_ok(d);
}

static const struct it_case cases[] = {
    {"width_reported", test_width_reported},
    {"needs_alloc_pasid", test_needs_alloc_pasid},
    {"rid_rule", test_rid_rule},
    {"non_pasid_device", test_non_pasid_device},
    {"replace", test_replace},
    {"detach_nothing", test_detach_nothing},
    {"destroy_while_attached", test_destroy_while_attached},
    {"width_and_rid_pasid", test_width_and_rid_pasid},
    {"parent_on_pasid", test_parent_on_pasid},
    {"ownership", test_ownership},
    {"invalidate_on_pasid", test_invalidate_on_pasid},
    {"teardown", test_teardown},
    {"no_pasid_on_6_12", test_no_pasid_on_6_12},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
	return it_main(argc, argv, "pasid", cases);
}
