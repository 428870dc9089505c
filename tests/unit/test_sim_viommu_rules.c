// SPDX-License-Identifier: MIT
/*
 * The vIOMMU rule table (tests/support/viommu_rules.c) on the sim backend
 * directly, through its backend ops: every row must give the 7.2 kernel's
 * errno and entry_num, including the rows where the daemon's own rule
 * answers otherwise (the sim models the kernel, not the daemon). The same
 * rows run on the kernel (ktest_viommu) and through the daemon
 * (integration/viommu_rules). Under 6.12 rules every row's first step is
 * -ENOTTY. The ARM SMMUv3 rows (devices sm0, sm1) have no kernel to run
 * on here (no SMMUv3 on an x86 guest): the sim stands for the 7.2 driver,
 * arm-smmu-v3-iommufd.c, and the daemon must answer as the sim does.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "backend/backend.h"
#include "util/config.h"
#include "unit_run.h"
#include "viommu_rules.h"

struct sim_ctx {
	enum kernel_rules rules;
	struct config cfg;
	struct backend *be;
};

static const char *const devs[VR_N_DEVS] = {"st0", "st1", "sm0", "sm1"};

static int sim_begin(void *p)
{
	struct sim_ctx *c = p;
	const char *err = NULL;

	memset(&c->cfg, 0, sizeof(c->cfg));
	snprintf(c->cfg.backend, sizeof(c->cfg.backend), "sim");
	c->cfg.sim_kernel = c->rules;
	for (unsigned i = 0; i < VR_N_DEVS; i++) {
		snprintf(c->cfg.devices[i].name, sizeof(c->cfg.devices[i].name), "%s", devs[i]);
		c->cfg.devices[i].kind = i < 2 ? DEVICE_KIND_SELFTEST : DEVICE_KIND_SMMUV3;
	}
	c->cfg.n_devices = VR_N_DEVS;
	return backend_sim_open(&c->cfg, &c->be, &err);
}

static void sim_end(void *p)
{
	struct sim_ctx *c = p;

	c->be->ops->close(c->be);
	c->be = NULL;
}

static int sim_viommu(void *p, unsigned dev, enum vr_parent parent, uint32_t type, uint32_t flags,
		      uint32_t *id)
{
	struct sim_ctx *c = p;
	uint32_t parent_id;

	(void)parent; /* only the nest parent: rows naming others do not reach the sim */
	return c->be->ops->viommu_alloc(c->be, devs[dev], type, flags, id, &parent_id);
}

static int sim_vdev(void *p, uint32_t viommu, unsigned dev, uint64_t virt_id, uint32_t *id)
{
	struct sim_ctx *c = p;

	return c->be->ops->vdevice_alloc(c->be, viommu, devs[dev], virt_id, id);
}

/* IOMMU_DESTROY takes any id: the backend has one op for HWPTs and one for the others. */
static int sim_destroy(void *p, enum vr_kind kind, uint32_t id)
{
	struct sim_ctx *c = p;

	if (kind == VR_KIND_HWPT)
		return c->be->ops->destroy(c->be, id);
	return c->be->ops->destroy_object(c->be, id);
}

static int sim_nested(void *p, unsigned dev, uint32_t viommu, uint32_t data_type, const void *data,
		      uint32_t len, uint32_t *id)
{
	struct sim_ctx *c = p;
	struct backend_alloc req = {
	    .data_type = data_type, .data = data, .data_len = len, .viommu_id = viommu};
	uint32_t parent;

	return c->be->ops->alloc_nested(c->be, devs[dev], &req, id, &parent);
}

static int sim_attach(void *p, unsigned dev, uint32_t hwpt)
{
	struct sim_ctx *c = p;

	return c->be->ops->attach(c->be, devs[dev], hwpt);
}

static int sim_detach(void *p, unsigned dev)
{
	struct sim_ctx *c = p;

	return c->be->ops->detach(c->be, devs[dev]);
}

static int sim_inv(void *p, uint32_t id, uint32_t data_type, uint32_t entry_len,
		   const void *entries, uint32_t n, uint32_t *done)
{
	struct sim_ctx *c = p;
	struct backend_inv inv = {.hwpt_id = id,
				  .data_type = data_type,
				  .entry_len = entry_len,
				  .entry_num = n,
				  .entries = entries};
	int rc = c->be->ops->invalidate(c->be, &inv);

	*done = inv.entry_num;
	return rc;
}

static void run_all(enum kernel_rules rules)
{
	struct sim_ctx c = {.rules = rules};
	const struct vr_driver d = {
	    .side = VR_SIDE_SIM,
	    .ctx = &c,
	    .begin = sim_begin,
	    .end = sim_end,
	    .viommu_alloc = sim_viommu,
	    .vdevice_alloc = sim_vdev,
	    .destroy = sim_destroy,
	    .alloc_nested = sim_nested,
	    .attach = sim_attach,
	    .detach = sim_detach,
	    .invalidate = sim_inv,
	};
	unsigned ran = 0;

	for (size_t i = 0; i < vr_n_rows; i++) {
		char msg[200];
		enum vr_result r =
		    vr_run(&vr_rows[i], &d, rules == KERNEL_RULES_7, msg, sizeof(msg));

		if (r == VR_FAIL)
			printf("\n  sim row %s: %s\n", vr_rows[i].name, msg);
		CU_ASSERT(r != VR_FAIL);
		ran += r != VR_SKIP;
	}
	/* Only the rows that name a page table other than the nest parent skip here. */
	CU_ASSERT_EQUAL(ran + 2, vr_n_rows);
}

static void test_table(void)
{
	const char *why = vr_table_check();

	if (why)
		printf("\n  %s\n", why);
	CU_ASSERT_PTR_NULL(why);
	CU_ASSERT(vr_n_rows >= 80);
}

/* The runner itself: a wrong errno or a wrong entry_num is a failure, with what differed. */
static void test_runner_catches(void)
{
	static const struct vr_row wrong_errno = {
	    .name = "wrong_errno",
	    .rule = "the mock makes its own type",
	    .steps = {{.op = VR_VIOMMU, .type = VR_VIOMMU_TYPE_SELFTEST, .want = -EINVAL}}};
	static const struct vr_row wrong_count = {
	    .name = "wrong_count",
	    .rule = "an unknown flag after one good entry",
	    .steps = {{.op = VR_VIOMMU, .type = VR_VIOMMU_TYPE_SELFTEST},
		      {.op = VR_VDEV, .ref = 0, .virt_id = 0x10},
		      {.op = VR_INV,
		       .ref = 0,
		       .type = VR_INV_DATA_SELFTEST,
		       .entry_len = VR_INV_LEN,
		       .n = 2,
		       .e = {{.vdev_id = 0x10}, {.flags = 2, .vdev_id = 0x10}},
		       .want = -EOPNOTSUPP,
		       .count = 2}}};
	struct sim_ctx c = {.rules = KERNEL_RULES_7};
	struct vr_driver d = {
	    .side = VR_SIDE_SIM,
	    .ctx = &c,
	    .begin = sim_begin,
	    .end = sim_end,
	    .viommu_alloc = sim_viommu,
	    .vdevice_alloc = sim_vdev,
	    .destroy = sim_destroy,
	    .alloc_nested = sim_nested,
	    .attach = sim_attach,
	    .detach = sim_detach,
	    .invalidate = sim_inv,
	};
	char msg[200];

	CU_ASSERT_EQUAL(vr_run(&wrong_errno, &d, true, msg, sizeof(msg)), VR_FAIL);
	CU_ASSERT_STRING_EQUAL(msg, "step 0 (AllocViommu): got 0, want -EINVAL");
	CU_ASSERT_EQUAL(vr_run(&wrong_count, &d, true, msg, sizeof(msg)), VR_FAIL);
	CU_ASSERT_STRING_EQUAL(
	    msg, "step 2 (Invalidate): got -EOPNOTSUPP entry_num 1, want -EOPNOTSUPP entry_num 2");
}

static void test_rules_7(void)
{
	run_all(KERNEL_RULES_7);
}

static void test_rules_6_12(void)
{
	run_all(KERNEL_RULES_6_12);
}

int main(void)
{
	static const struct unit_case cases[] = {
	    {"table", test_table},
	    {"runner_catches", test_runner_catches},
	    {"rows_7x", test_rules_7},
	    {"rows_6_12_enotty", test_rules_6_12},
	};

	return unit_run("sim_viommu_rules", UNIT_CASES(cases));
}
