// SPDX-License-Identifier: MIT
/*
 * The sim's PASID model against Linux 7.2 (iommufd/device.c, iommu.c,
 * selftest.c; the cases of tools/testing/selftests/iommu/iommufd.c's
 * iommufd_device_pasid fixture, with their errnos): the kernel's attach /
 * replace / detach primitives, the backend op's VFIO attach-or-replace,
 * and 6.12, which has none of it.
 */
#include <errno.h>
#include <string.h>

#include <CUnit/Basic.h>
#include <json-c/json.h>

#include "backend/backend.h"
#include "backend/iommufd_uapi.h"
#include "backend/pasid_uapi.h"
#include "backend/sim/persist.h"
#include "backend/sim/state.h"
#include "util/config.h"
#include "unit_run.h"

static struct config cfg;
static struct sim_state state;
static struct sim_state *st = &state;

static void cfg_add(const char *name, enum device_kind kind, bool pasid)
{
	struct config_device *d = &cfg.devices[cfg.n_devices++];

	strncpy(d->name, name, sizeof(d->name) - 1);
	d->kind = kind;
	d->pasid = pasid;
}

/* sp0: PASID-capable mock, st0: plain mock, vp0: PASID-capable VT-d. */
static void sim_open(enum kernel_rules rules)
{
	const char *err = NULL;

	memset(&cfg, 0, sizeof(cfg));
	strcpy(cfg.backend, "sim");
	cfg.sim_kernel = rules;
	cfg_add("sp0", DEVICE_KIND_SELFTEST, true);
	cfg_add("st0", DEVICE_KIND_SELFTEST, false);
	cfg_add("vp0", DEVICE_KIND_VTD, true);
	CU_ASSERT_FATAL(sim_state_init(st, &cfg, &err) == 0);
}

static void sim_down(void)
{
	sim_state_free(st);
}

static uint32_t alloc_st(const char *dev, uint32_t flags, uint32_t *parent)
{
	struct iommu_hwpt_selftest data = {.iotlb = IOMMU_TEST_IOTLB_DEFAULT};
	struct backend_alloc req = {.data_type = IOMMU_HWPT_DATA_SELFTEST,
				    .flags = flags,
				    .data = &data,
				    .data_len = sizeof(data)};
	uint32_t id = 0, p = 0;

	CU_ASSERT_EQUAL_FATAL(sim_alloc_nested(st, dev, &req, &id, &p), 0);
	if (parent)
		*parent = p;
	return id;
}

static void test_hw_info_width(void)
{
	struct backend_hw_info hi;

	sim_open(KERNEL_RULES_7);
	CU_ASSERT_EQUAL(sim_hw_info(st, "sp0", &hi), 0);
	CU_ASSERT_EQUAL(hi.max_pasid_log2, NESTD_MOCK_PASID_WIDTH);
	CU_ASSERT_EQUAL(sim_hw_info(st, "st0", &hi), 0);
	CU_ASSERT_EQUAL(hi.max_pasid_log2, 0);
	sim_down();
	/* 6.12 reports no PASID width at all. */
	sim_open(KERNEL_RULES_6_12);
	CU_ASSERT_EQUAL(sim_hw_info(st, "sp0", &hi), 0);
	CU_ASSERT_EQUAL(hi.max_pasid_log2, 0);
	sim_down();
}

static void test_alloc_flag(void)
{
	struct iommu_hwpt_selftest data = {.iotlb = IOMMU_TEST_IOTLB_DEFAULT};
	struct backend_alloc req = {.data_type = IOMMU_HWPT_DATA_SELFTEST,
				    .flags = NESTD_HWPT_ALLOC_PASID,
				    .data = &data,
				    .data_len = sizeof(data)};
	uint32_t id, parent;

	sim_open(KERNEL_RULES_6_12);
	/* hw_pagetable.c (6.12): a nested HWPT takes no flag but FAULT_ID_VALID. */
	CU_ASSERT_EQUAL(sim_alloc_nested(st, "sp0", &req, &id, &parent), -EOPNOTSUPP);
	sim_down();
	sim_open(KERNEL_RULES_7);
	CU_ASSERT_EQUAL(sim_alloc_nested(st, "sp0", &req, &id, &parent), 0);
	CU_ASSERT_TRUE(sim_obj_find(st, id)->pasid_compat);
	CU_ASSERT_TRUE(sim_obj_find(st, parent)->pasid_compat); /* the daemon's parent */
	sim_down();
}

/* iommufd.c pasid_attach: "Attach non pasid compat hwpt ... should fail". */
static void test_needs_alloc_pasid(void)
{
	uint32_t plain, compat;

	sim_open(KERNEL_RULES_7);
	plain = alloc_st("sp0", 0, NULL);
	compat = alloc_st("sp0", NESTD_HWPT_ALLOC_PASID, NULL);
	CU_ASSERT_EQUAL(sim_pasid_attach(st, "sp0", 100, plain), -EINVAL);
	CU_ASSERT_EQUAL(sim_pasid_check(st, "sp0", 100, 0), 0); /* nothing there */
	CU_ASSERT_EQUAL(sim_pasid_attach(st, "sp0", 100, compat), 0);
	CU_ASSERT_EQUAL(sim_pasid_check(st, "sp0", 100, compat), 0);
	CU_ASSERT_EQUAL(sim_pasid_check(st, "sp0", 100, plain), -EINVAL);
	sim_down();
}

/* The RID's domain must be PASID-compatible too, both ways. */
static void test_rid_rule(void)
{
	uint32_t plain, compat, parent;

	sim_open(KERNEL_RULES_7);
	plain = alloc_st("sp0", 0, &parent);
	compat = alloc_st("sp0", NESTD_HWPT_ALLOC_PASID, NULL);
	CU_ASSERT_EQUAL(sim_attach(st, "sp0", plain), 0);
	CU_ASSERT_EQUAL(sim_pasid_attach(st, "sp0", 100, compat), -EINVAL);
	CU_ASSERT_EQUAL(sim_attach(st, "sp0", compat), 0);
	CU_ASSERT_EQUAL(sim_pasid_attach(st, "sp0", 100, compat), 0);
	/* "attach RID to non-pasid compat domain should fail now" */
	CU_ASSERT_EQUAL(sim_attach(st, "sp0", plain), -EINVAL);
	/* Back to the parent (allocated ALLOC_PASID): allowed. */
	CU_ASSERT_EQUAL(sim_detach(st, "sp0"), 0);
	CU_ASSERT_EQUAL(sim_pasid_detach(st, "sp0", 100), 0);
	CU_ASSERT_EQUAL(sim_attach(st, "sp0", plain), 0);
	sim_down();
}

static void test_attach_replace_detach(void)
{
	uint32_t a, b, parent;

	sim_open(KERNEL_RULES_7);
	a = alloc_st("sp0", NESTD_HWPT_ALLOC_PASID, &parent);
	b = alloc_st("sp0", NESTD_HWPT_ALLOC_PASID, NULL);
	/* Detach of nothing is not an error. */
	CU_ASSERT_EQUAL(sim_pasid_detach(st, "sp0", 100), 0);
	/* Replace of nothing is -EINVAL. */
	CU_ASSERT_EQUAL(sim_pasid_replace(st, "sp0", 200, a), -EINVAL);
	CU_ASSERT_EQUAL(sim_pasid_attach(st, "sp0", 200, a), 0);
	/* Attach does not overwrite, whichever HWPT. */
	CU_ASSERT_EQUAL(sim_pasid_attach(st, "sp0", 200, a), -EBUSY);
	CU_ASSERT_EQUAL(sim_pasid_attach(st, "sp0", 200, b), -EBUSY);
	CU_ASSERT_EQUAL(sim_pasid_replace(st, "sp0", 200, b), 0);
	CU_ASSERT_EQUAL(sim_pasid_check(st, "sp0", 200, b), 0);
	CU_ASSERT_EQUAL(sim_pasid_replace(st, "sp0", 200, b), 0); /* same: no-op */
	/* A HWPT on a PASID holds a reference: destroy is -EBUSY; the old one is free. */
	CU_ASSERT_EQUAL(sim_destroy(st, b), -EBUSY);
	CU_ASSERT_EQUAL(sim_destroy(st, a), 0);
	/* The nest parent on a PASID (it is ALLOC_PASID here). */
	CU_ASSERT_EQUAL(sim_pasid_attach(st, "sp0", 300, parent), 0);
	CU_ASSERT_EQUAL(sim_pasid_detach(st, "sp0", 300), 0);
	CU_ASSERT_EQUAL(sim_pasid_detach(st, "sp0", 200), 0);
	CU_ASSERT_EQUAL(sim_pasid_check(st, "sp0", 200, 0), 0);
	CU_ASSERT_EQUAL(sim_destroy(st, b), 0);
	sim_down();
}

/* The backend op is VFIO's: attach, or replace once attached. */
static void test_op_attach_or_replace(void)
{
	uint32_t a, b;

	sim_open(KERNEL_RULES_7);
	a = alloc_st("sp0", NESTD_HWPT_ALLOC_PASID, NULL);
	b = alloc_st("sp0", NESTD_HWPT_ALLOC_PASID, NULL);
	CU_ASSERT_EQUAL(sim_pasid_op_attach(st, "sp0", 7, a), 0);
	CU_ASSERT_EQUAL(sim_pasid_op_attach(st, "sp0", 7, b), 0);
	CU_ASSERT_EQUAL(sim_pasid_check(st, "sp0", 7, b), 0);
	CU_ASSERT_EQUAL(sim_destroy(st, a), 0);
	CU_ASSERT_EQUAL(sim_destroy(st, b), -EBUSY);
	CU_ASSERT_EQUAL(sim_pasid_op_detach(st, "sp0", 7), 0);
	CU_ASSERT_EQUAL(sim_pasid_op_detach(st, "sp0", 7), 0);
	CU_ASSERT_EQUAL(sim_destroy(st, b), 0);
	/* Not a HWPT (a fault object), no such id, no such device. */
	struct backend_fault_queue q;

	CU_ASSERT_EQUAL_FATAL(sim_fault_alloc(st, &q), 0);
	CU_ASSERT_EQUAL(sim_pasid_op_attach(st, "sp0", 7, q.id), -EINVAL);
	CU_ASSERT_EQUAL(sim_pasid_op_attach(st, "sp0", 7, 999), -ENOENT);
	CU_ASSERT_EQUAL(sim_pasid_op_attach(st, "nope", 7, b), -ENODEV);
	CU_ASSERT_EQUAL(sim_fault_free(st, &q), 0);
	sim_down();
}

/* iommu.c: the PASID below max_pasids; a device without PASIDs is skipped by the walk. */
static void test_width_and_no_pasid_device(void)
{
	uint32_t a, plain, c;

	sim_open(KERNEL_RULES_7);
	a = alloc_st("sp0", NESTD_HWPT_ALLOC_PASID, NULL);
	CU_ASSERT_EQUAL(sim_pasid_attach(st, "sp0", 1u << NESTD_MOCK_PASID_WIDTH, a), -EINVAL);
	CU_ASSERT_EQUAL(sim_pasid_attach(st, "sp0", (1u << NESTD_MOCK_PASID_WIDTH) - 1, a), 0);
	/* st0 has no PASIDs: its parent is no ALLOC_PASID domain, so the RID rule refuses. */
	plain = alloc_st("st0", 0, NULL);
	c = alloc_st("st0", NESTD_HWPT_ALLOC_PASID, NULL);
	CU_ASSERT_EQUAL(sim_pasid_attach(st, "st0", 100, plain), -EINVAL);
	CU_ASSERT_EQUAL(sim_pasid_attach(st, "st0", 100, c), -EINVAL);
	/* With the RID on a compatible domain the core passes, reaching no driver (7.2). */
	CU_ASSERT_EQUAL(sim_attach(st, "st0", c), 0);
	CU_ASSERT_EQUAL(sim_pasid_attach(st, "st0", 1u << 30, c), 0);
	CU_ASSERT_EQUAL(sim_pasid_detach(st, "st0", 1u << 30), 0);
	CU_ASSERT_EQUAL(sim_detach(st, "st0"), 0);
	sim_down();
}

/* selftest.c: PASID 1024's replace fails once, the old domain stays. */
static void test_mock_fake_error(void)
{
	uint32_t a, b;

	sim_open(KERNEL_RULES_7);
	a = alloc_st("sp0", NESTD_HWPT_ALLOC_PASID, NULL);
	b = alloc_st("sp0", NESTD_HWPT_ALLOC_PASID, NULL);
	CU_ASSERT_EQUAL(sim_pasid_attach(st, "sp0", 1024, a), 0);
	CU_ASSERT_EQUAL(sim_pasid_replace(st, "sp0", 1024, b), -ENOMEM);
	CU_ASSERT_EQUAL(sim_pasid_check(st, "sp0", 1024, a), 0);
	CU_ASSERT_EQUAL(sim_destroy(st, b), 0); /* the failed replace took no reference */
	CU_ASSERT_EQUAL(sim_pasid_detach(st, "sp0", 1024), 0);
	sim_down();
}

/* intel/nested.c set_dev_pasid sets the stage 1 up like the RID's attach. */
static void test_vtd_stage1(void)
{
	struct iommu_hwpt_vtd_s1 s1 = {.pgtbl_addr = 0x1000, .addr_width = 39};
	struct backend_alloc req = {.data_type = IOMMU_HWPT_DATA_VTD_S1,
				    .flags = NESTD_HWPT_ALLOC_PASID,
				    .data = &s1,
				    .data_len = sizeof(s1)};
	uint32_t bad, good, parent;

	sim_open(KERNEL_RULES_7);
	CU_ASSERT_EQUAL_FATAL(sim_alloc_nested(st, "vp0", &req, &bad, &parent), 0);
	s1.addr_width = 48;
	CU_ASSERT_EQUAL_FATAL(sim_alloc_nested(st, "vp0", &req, &good, &parent), 0);
	CU_ASSERT_EQUAL(sim_pasid_op_attach(st, "vp0", 5, bad), -EINVAL);
	CU_ASSERT_EQUAL(sim_pasid_op_attach(st, "vp0", 5, good), 0);
	/* A mock's HWPT on a VT-d device: another driver's domain. */
	CU_ASSERT_EQUAL(
	    sim_pasid_op_attach(st, "vp0", 6, alloc_st("sp0", NESTD_HWPT_ALLOC_PASID, NULL)),
	    -EINVAL);
	CU_ASSERT_EQUAL(sim_pasid_op_detach(st, "vp0", 5), 0);
	sim_down();
}

/* 6.12: the mock's test ops do not exist, VFIO refuses the flag. */
static void test_kernel_612(void)
{
	sim_open(KERNEL_RULES_6_12);
	CU_ASSERT_EQUAL(sim_pasid_op_attach(st, "sp0", 100, st->devs[0].parent_id), -EOPNOTSUPP);
	CU_ASSERT_EQUAL(sim_pasid_op_detach(st, "sp0", 100), -EOPNOTSUPP);
	CU_ASSERT_EQUAL(sim_pasid_op_attach(st, "vp0", 100, st->devs[2].parent_id), -EINVAL);
	CU_ASSERT_EQUAL(sim_pasid_op_detach(st, "vp0", 100), -EINVAL);
	CU_ASSERT_EQUAL(sim_pasid_attach(st, "sp0", 100, st->devs[0].parent_id), -EOPNOTSUPP);
	sim_down();
}

/* A VM context's device with PASIDs attached cannot leave (its device object is held). */
static void test_context_unplug(void)
{
	struct iommu_hwpt_selftest data = {.iotlb = IOMMU_TEST_IOTLB_DEFAULT};
	struct backend_alloc req = {.data_type = IOMMU_HWPT_DATA_SELFTEST,
				    .flags = NESTD_HWPT_ALLOC_PASID,
				    .data = &data,
				    .data_len = sizeof(data)};
	struct sim_state ctx;
	uint32_t a, parent;

	sim_open(KERNEL_RULES_7);
	sim_state_init_ctx(&ctx, st);
	CU_ASSERT_EQUAL_FATAL(sim_dev_plug(&ctx, 0), 0);
	CU_ASSERT_TRUE(sim_obj_find(&ctx, ctx.devs[0].parent_id)->pasid_compat);
	CU_ASSERT_EQUAL_FATAL(sim_alloc_nested(&ctx, "sp0", &req, &a, &parent), 0);
	CU_ASSERT_EQUAL(sim_pasid_op_attach(&ctx, "sp0", 9, a), 0);
	CU_ASSERT_EQUAL(sim_pasid_check(&ctx, "sp0", 9, a), 0);
	CU_ASSERT_EQUAL(sim_destroy(&ctx, a), -EBUSY);
	CU_ASSERT_EQUAL(sim_dev_unplug(&ctx, 0), -EBUSY);
	CU_ASSERT_EQUAL(sim_pasid_op_detach(&ctx, "sp0", 9), 0);
	CU_ASSERT_EQUAL(sim_destroy(&ctx, a), 0);
	CU_ASSERT_EQUAL(sim_dev_unplug(&ctx, 0), 0);
	sim_state_free(&ctx);
	sim_down();
}

/*
 * Across a restart the flag stays with the HWPT, as in the kernel; the
 * attachments themselves are not saved (the daemon takes none back yet).
 */
static void test_persist_flag(void)
{
	struct json_object *o = json_object_new_object();
	struct sim_state back;
	const char *err = NULL;
	uint32_t plain, compat, parent;

	sim_open(KERNEL_RULES_7);
	plain = alloc_st("sp0", 0, &parent);
	compat = alloc_st("sp0", NESTD_HWPT_ALLOC_PASID, NULL);
	CU_ASSERT_EQUAL_FATAL(sim_state_save(st, o), 0);
	CU_ASSERT_EQUAL_FATAL(sim_state_load(&back, &cfg, o, &err), 0);
	back.rules = KERNEL_RULES_7; /* configuration, set by the backend after a load */
	CU_ASSERT_FALSE(sim_obj_find(&back, plain)->pasid_compat);
	CU_ASSERT_TRUE(sim_obj_find(&back, compat)->pasid_compat);
	CU_ASSERT_TRUE(sim_obj_find(&back, parent)->pasid_compat);
	CU_ASSERT_EQUAL(back.devs[0].pasid_bits, NESTD_MOCK_PASID_WIDTH);
	CU_ASSERT_EQUAL(sim_pasid_attach(&back, "sp0", 100, plain), -EINVAL);
	CU_ASSERT_EQUAL(sim_pasid_attach(&back, "sp0", 100, compat), 0);
	CU_ASSERT_EQUAL(sim_pasid_detach(&back, "sp0", 100), 0);
	sim_state_free(&back);
	json_object_put(o);
	sim_down();
}

static const struct unit_case tests[] = {
    {"hw_info PASID width", test_hw_info_width},
    {"ALLOC_PASID per kernel", test_alloc_flag},
    {"HWPT must be ALLOC_PASID", test_needs_alloc_pasid},
    {"RID domain rule", test_rid_rule},
    {"attach, replace, detach", test_attach_replace_detach},
    {"op attach-or-replace", test_op_attach_or_replace},
    {"width and non-PASID device", test_width_and_no_pasid_device},
    {"mock fake error at 1024", test_mock_fake_error},
    {"VT-d stage 1 on a PASID", test_vtd_stage1},
    {"6.12 answers", test_kernel_612},
    {"VM context", test_context_unplug},
    {"flag survives a restart", test_persist_flag},
};

int main(void)
{
	return unit_run("sim_pasid", UNIT_CASES(tests));
}
