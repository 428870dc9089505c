// SPDX-License-Identifier: MIT
/*
 * The sim's ARM SMMUv3 vIOMMU against the 7.2 driver
 * (arm-smmu-v3-iommufd.c): hw_info, nested STEs, and cache_invalidate's
 * conversion in blocks of CMDQ_BATCH_ENTRIES - 1 with its entry_num: on a
 * conversion error the commands before the bad one count as handled,
 * though the block they were in never ran. The model TLB shows which ran.
 * This is why the daemon validates every command first (req/viommu_smmuv3.c).
 */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "backend/backend.h"
#include "backend/sim/state.h"
#include "backend/viommu_uapi.h"
#include "util/config.h"
#include "unit_run.h"

#define PG    4096ull
#define BASE  0x80000000ull
#define ASID  5u
#define VSID  0x20u
#define BLOCK 63u /* CMDQ_BATCH_ENTRIES - 1 commands per issue */

static struct config cfg;
static struct backend *be;
static uint32_t viommu, hwpt;

struct cmd {
	uint64_t w[2];
};

static struct cmd tlbi_va(uint64_t va)
{
	return (struct cmd){{htole64(0x12 | (uint64_t)ASID << 48), htole64(va | 1)}};
}

static struct cmd cfgi_cd(uint32_t vsid)
{
	return (struct cmd){{htole64(0x05 | (uint64_t)vsid << 32), htole64(1)}};
}

static void cfg_add(const char *name, enum device_kind kind)
{
	struct config_device *d = &cfg.devices[cfg.n_devices++];

	strncpy(d->name, name, sizeof(d->name) - 1);
	d->kind = kind;
}

static void sim_open(enum kernel_rules rules)
{
	const char *err = NULL;

	memset(&cfg, 0, sizeof(cfg));
	strcpy(cfg.backend, "sim");
	cfg.sim_kernel = rules;
	cfg_add("sm0", DEVICE_KIND_SMMUV3);
	cfg_add("sm1", DEVICE_KIND_SMMUV3);
	cfg_add("st0", DEVICE_KIND_SELFTEST);
	CU_ASSERT_FATAL(backend_sim_open(&cfg, &be, &err) == 0);
}

/* A vIOMMU on sm0, sm0 as VSID, an S1 STE nested HWPT with ASID's pages cached. */
static void sim_up(uint64_t npages)
{
	struct nestd_hwpt_arm_smmuv3 ste = {{htole64(1 | 5u << 1), 0}};
	struct backend_alloc req = {
	    .data_type = NESTD_HWPT_DATA_ARM_SMMUV3, .data = &ste, .data_len = sizeof(ste)};
	uint32_t vd, parent;

	sim_open(KERNEL_RULES_7);
	CU_ASSERT_FATAL(be->ops->viommu_alloc(be, "sm0", NESTD_VIOMMU_TYPE_ARM_SMMUV3, 0, &viommu,
					      &parent) == 0);
	CU_ASSERT_FATAL(be->ops->vdevice_alloc(be, viommu, "sm0", VSID, &vd) == 0);
	req.viommu_id = viommu;
	CU_ASSERT_FATAL(be->ops->alloc_nested(be, "sm0", &req, &hwpt, &parent) == 0);
	CU_ASSERT_FATAL(be->ops->attach(be, "sm0", hwpt) == 0);
	if (npages)
		CU_ASSERT_FATAL(
		    be->ops->sim_smmu_populate(be, hwpt, ASID, BASE, npages, SIM_KIND_IOTLB) == 0);
}

static void sim_down(void)
{
	be->ops->close(be);
	be = NULL;
}

static int inv(const struct cmd *c, uint32_t n, uint32_t *num)
{
	struct backend_inv inv = {.hwpt_id = viommu,
				  .data_type = NESTD_VIOMMU_INV_DATA_ARM_SMMUV3,
				  .entry_len = sizeof(*c),
				  .entry_num = n,
				  .entries = c};
	int rc = be->ops->invalidate(be, &inv);

	*num = inv.entry_num;
	return rc;
}

static uint64_t cached(uint64_t first, uint64_t n)
{
	uint64_t io = ~0ull;

	CU_ASSERT(be->ops->sim_smmu_query(be, hwpt, ASID, BASE + first * PG, n, &io, NULL) == 0);
	return io;
}

/* The driver's registers as they are: a v3.2 SMMU with range invalidation. */
static void test_hw_info(void)
{
	struct backend_hw_info hi;
	struct nestd_hw_info_arm_smmuv3 info;

	sim_open(KERNEL_RULES_7);
	CU_ASSERT_FATAL(be->ops->hw_info(be, "sm0", &hi) == 0);
	CU_ASSERT_EQUAL(hi.data_type, NESTD_HW_INFO_TYPE_ARM_SMMUV3);
	CU_ASSERT_EQUAL(hi.data_len, sizeof(info));
	memcpy(&info, hi.data, sizeof(info));
	CU_ASSERT(info.idr[3] & NESTD_SMMU_IDR3_RIL);
	CU_ASSERT(info.idr[0] & 3); /* both stages */
	CU_ASSERT_EQUAL(info.aidr, 2);
	CU_ASSERT_EQUAL(info.flags, 0);
	sim_down();
}

/* 6.12 has no vIOMMU; the mock's type is not the SMMU's, nor the reverse. */
static void test_viommu_types(void)
{
	uint32_t id, parent;

	sim_open(KERNEL_RULES_6_12);
	CU_ASSERT_EQUAL(
	    be->ops->viommu_alloc(be, "sm0", NESTD_VIOMMU_TYPE_ARM_SMMUV3, 0, &id, &parent),
	    -ENOTTY);
	sim_down();
	sim_open(KERNEL_RULES_7);
	CU_ASSERT_EQUAL(
	    be->ops->viommu_alloc(be, "sm0", NESTD_VIOMMU_TYPE_SELFTEST, 0, &id, &parent),
	    -EOPNOTSUPP);
	CU_ASSERT_EQUAL(
	    be->ops->viommu_alloc(be, "st0", NESTD_VIOMMU_TYPE_ARM_SMMUV3, 0, &id, &parent),
	    -EOPNOTSUPP);
	CU_ASSERT_EQUAL(
	    be->ops->viommu_alloc(be, "sm1", NESTD_VIOMMU_TYPE_ARM_SMMUV3, 0, &id, &parent), 0);
	sim_down();
}

/* arm_smmu_validate_vste() and the nested domain without cache_invalidate_user. */
static void test_nested_ste(void)
{
	struct nestd_hwpt_arm_smmuv3 ste = {{htole64(1 | 5u << 1), htole64(2u << 28)}};
	struct backend_alloc req = {
	    .data_type = NESTD_HWPT_DATA_ARM_SMMUV3, .data = &ste, .data_len = sizeof(ste)};
	struct cmd c = tlbi_va(BASE);
	struct backend_inv hinv = {.entry_len = 16, .entry_num = 1, .entries = &c};
	uint32_t id, parent;

	sim_up(0);
	req.viommu_id = viommu;
	CU_ASSERT_EQUAL(be->ops->alloc_nested(be, "sm0", &req, &id, &parent), -EIO); /* EATS 2 */
	ste.ste[1] = htole64(1u << 28); /* EATS_TRANS */
	CU_ASSERT_EQUAL(be->ops->alloc_nested(be, "sm0", &req, &id, &parent), 0);
	req.data_len = 8;
	CU_ASSERT_EQUAL(be->ops->alloc_nested(be, "sm0", &req, &id, &parent), -EINVAL);
	/* The nested HWPT takes no invalidation: commands go to the vIOMMU. */
	hinv.hwpt_id = hwpt;
	CU_ASSERT_EQUAL(be->ops->invalidate(be, &hinv), -EOPNOTSUPP);
	sim_down();
}

/* Full blocks and the last partial one all run; entry_num is the array. */
static void test_blocks_all_run(void)
{
	static struct cmd c[3 * BLOCK + 5];
	uint32_t n = 3 * BLOCK + 5, num;

	sim_up(n);
	for (uint32_t i = 0; i < n; i++)
		c[i] = tlbi_va(BASE + i * PG);
	CU_ASSERT_EQUAL(inv(c, n, &num), 0);
	CU_ASSERT_EQUAL(num, n);
	CU_ASSERT_EQUAL(cached(0, n), 0);
	sim_down();
}

/*
 * An unknown vSID at index k: -EIO, entry_num k, but only the full blocks
 * before it ran; the commands of its own block up to it were converted
 * and dropped, and everything after it never looked at.
 */
static void test_conversion_error_over_reports(void)
{
	static struct cmd c[100];
	const uint32_t k = BLOCK + 7;
	uint32_t num;

	sim_up(100);
	for (uint32_t i = 0; i < 100; i++)
		c[i] = tlbi_va(BASE + i * PG);
	c[k] = cfgi_cd(VSID + 1);
	CU_ASSERT_EQUAL(inv(c, 100, &num), -EIO);
	CU_ASSERT_EQUAL(num, k);
	CU_ASSERT_EQUAL(cached(0, BLOCK), 0);		      /* the first block ran */
	CU_ASSERT_EQUAL(cached(BLOCK, k - BLOCK), k - BLOCK); /* "handled", never issued */
	CU_ASSERT_EQUAL(cached(k + 1, 100 - k - 1), 100 - k - 1);
	/* A known vSID and a bad opcode: -EIO at the opcode. */
	c[k] = cfgi_cd(VSID);
	c[2] = (struct cmd){{htole64(0x20), 0}};
	CU_ASSERT_EQUAL(inv(c, 100, &num), -EIO);
	CU_ASSERT_EQUAL(num, 2);
	sim_down();
}

/*
 * The issue of a block fails (CMD_SYNC timeout): the driver counts all
 * but the block's last command as handled; none of the block ran.
 */
static void test_issue_failure_over_reports(void)
{
	static struct cmd c[100];
	struct backend_fault f = {
	    .mode = FAULT_AT_INDEX, .index = BLOCK + 3, .error = -ETIMEDOUT, .count = 1};
	uint32_t num;

	sim_up(100);
	for (uint32_t i = 0; i < 100; i++)
		c[i] = tlbi_va(BASE + i * PG);
	CU_ASSERT_FATAL(be->ops->inject_fault(be, &f) == 0);
	CU_ASSERT_EQUAL(inv(c, 100, &num), -ETIMEDOUT);
	/* The second block is the last, partial one: [BLOCK, 100) failed. */
	CU_ASSERT_EQUAL(num, 100 - 1);
	CU_ASSERT_EQUAL(cached(0, BLOCK), 0);
	CU_ASSERT_EQUAL(cached(BLOCK, 100 - BLOCK), 100 - BLOCK);
	sim_down();
}

/* The copy: type first, then emptiness, then a longer entry's tail. */
static void test_copy_rules(void)
{
	struct cmd c[2] = {tlbi_va(BASE), tlbi_va(BASE + PG)};
	uint8_t wide[2][24] = {{0}};
	struct backend_inv binv = {.hwpt_id = 0, .entry_len = 16, .entry_num = 0, .entries = c};
	uint32_t num;

	sim_up(2);
	binv.hwpt_id = viommu;
	binv.data_type = NESTD_VIOMMU_INV_DATA_ARM_SMMUV3;
	CU_ASSERT_EQUAL(be->ops->invalidate(be, &binv), -EINVAL);
	binv.data_type = NESTD_VIOMMU_INV_DATA_SELFTEST;
	binv.entry_num = 2;
	CU_ASSERT_EQUAL(be->ops->invalidate(be, &binv), -EINVAL);
	memcpy(wide[0], &c[0], 16);
	memcpy(wide[1], &c[1], 16);
	wide[1][23] = 1;
	binv = (struct backend_inv){.hwpt_id = viommu,
				    .data_type = NESTD_VIOMMU_INV_DATA_ARM_SMMUV3,
				    .entry_len = 24,
				    .entry_num = 2,
				    .entries = wide};
	CU_ASSERT_EQUAL(be->ops->invalidate(be, &binv), -E2BIG);
	CU_ASSERT_EQUAL(binv.entry_num, 0);
	CU_ASSERT_EQUAL(cached(0, 2), 2); /* nothing ran */
	CU_ASSERT_EQUAL(inv(c, 2, &num), 0);
	CU_ASSERT_EQUAL(cached(0, 2), 0);
	sim_down();
}

static const struct unit_case tests[] = {
    {"hw_info registers", test_hw_info},
    {"vIOMMU types per kernel", test_viommu_types},
    {"nested STE rules", test_nested_ste},
    {"blocks all run", test_blocks_all_run},
    {"conversion error over-reports entry_num", test_conversion_error_over_reports},
    {"issue failure over-reports entry_num", test_issue_failure_over_reports},
    {"copy rules", test_copy_rules},
};

int main(void)
{
	return unit_run("sim_vsmmu", UNIT_CASES(tests));
}
