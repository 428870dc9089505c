/* SPDX-License-Identifier: MIT */
/*
 * ARM SMMUv3 command invalidation on a vIOMMU through the daemon, on the
 * sim's SMMUv3 device (kind = smmuv3, 7.x rules): the daemon validates
 * every command against its vDEVICEs before anything reaches the kernel
 * (whose driver over-reports entry_num on a conversion error), coalesces
 * each request (one guest CMD_SYNC batch) and maps the kernel's answer
 * back to the guest's entries. The sim's model of the host SMMU's TLB is
 * read before and after: no invalidated page may stay cached, and a
 * kernel-reported failure (an injected command-queue issue error) is
 * resubmitted one by one and reported honestly. Sim only:
 * no x86 host (nor its QEMU) has an SMMUv3 to bind.
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define NA     IOMMU_NEST_ENTRY_NOT_ATTEMPTED
#define DONE   IOMMU_NEST_ENTRY_DONE
#define FAILED IOMMU_NEST_ENTRY_FAILED
#define CMDS   IOMMU_NEST_VIOMMU_INV_DATA_ARM_SMMUV3

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

#define SM0	 "sm0"
#define SM1	 "sm1"
#define VSID0	 0x8u
#define VSID1	 0x9u
#define ASID	 7u
#define ASID_OTH 8u
#define BASE	 0x40000000ULL
#define STORM	 256u

#define SMMU_CONFIG                                                                                \
	"[daemon]\nsim_kernel = 7.0\n[device " SM0 "]\nkind = smmuv3\n[device " SM1                \
	"]\nkind = smmuv3\n"

/* SMMUv3 opcodes and fields (the architecture's command formats). */
#define OP_CFGI_CD     0x05u
#define OP_TLBI_NH_VA  0x12u
#define OP_TLBI_S2_IPA 0x2au /* not one the driver lets through */

struct cmd {
	uint64_t w[2]; /* little-endian */
};

static struct cmd tlbi_va(uint16_t asid, uint64_t va)
{
	/* TG 0: one address, Leaf 1 (an unmap's leaf flush). */
	return (struct cmd){{htole64(OP_TLBI_NH_VA | (uint64_t)asid << 48), htole64(va | 1)}};
}

static struct cmd cfgi_cd(uint32_t vsid, uint32_t ssid)
{
	return (struct cmd){
	    {htole64(OP_CFGI_CD | (uint64_t)ssid << 12 | (uint64_t)vsid << 32), htole64(1)}};
}

/* The iommufd backend refuses an smmuv3 device at open: sim only. */
static bool on_sim(void)
{
	const char *be = getenv("NESTD_BACKEND");

	return !be || !strcmp(be, "sim");
}

struct fx {
	struct nestd *d;
	struct iommu_nest *h;
	uint32_t viommu, hwpt;
};

/* A vIOMMU on sm0 with sm0 as vSID 8 and a nested HWPT (an S1 STE) attached. */
static bool fx_open(struct fx *f, const char *name)
{
	/* V, Config = S1 translate, a CD table pointer; S1DSS etc. left 0. */
	const uint64_t ste[2] = {1 | 5u << 1 | 0x80000000ULL, 0};
	uint32_t vd = 0;
	int rc;

	if (!on_sim())
		return false;
	f->d = it_start(SMMU_CONFIG);
	f->h = it_connect(f->d, name);
	if (!it_kernel7_rules("7.0") || !it_has_device(f->h, SM0)) {
		it_stop_ok(f->d);
		return false;
	}
	CU_ASSERT_EQUAL_FATAL(
	    iommu_nest_alloc_viommu(f->h, SM0, IOMMU_NEST_VIOMMU_TYPE_ARM_SMMUV3, 0, &f->viommu),
	    0);
	CU_ASSERT_EQUAL_FATAL(iommu_nest_alloc_vdevice(f->h, f->viommu, SM0, VSID0, &vd), 0);
	rc =
	    iommu_nest_alloc_on_viommu(f->h, SM0, f->viommu, IOMMU_NEST_HWPT_DATA_ARM_SMMUV3, 0,
				       IOMMU_NEST_HWPT_DATA_ARM_SMMUV3, ste, sizeof(ste), &f->hwpt);
	if (rc)
		fprintf(stderr, "alloc: %d %s\n", rc, iommu_nest_last_error(f->h));
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	CU_ASSERT_EQUAL_FATAL(iommu_nest_attach(f->h, SM0, f->hwpt), 0);
	return true;
}

static int inv(struct fx *f, const struct cmd *c, size_t n, uint32_t flags,
	       struct iommu_nest_entry_result *res, struct iommu_nest_inv_summary *sum)
{
	return iommu_nest_invalidate_viommu(f->h, f->viommu, CMDS, 0, c, n, flags, res, sum);
}

/* Cached leaf pages of [BASE + first pages, + n pages) for asid. */
static uint64_t cached(struct fx *f, uint32_t asid, uint64_t first, uint64_t n)
{
	uint64_t io = ~0ULL;

	CU_ASSERT_EQUAL(
	    iommu_nest_sim_query_asid(f->h, f->hwpt, asid, BASE + first * IT_PAGE, n, &io, NULL),
	    0);
	return io;
}

/* hw_info of the SMMU: its registers raw, IDR3.RIL set (range invalidation). */
static void test_hw_info(void)
{
	struct iommu_nest_hw_info hi;
	uint32_t idr3;
	struct fx f;

	if (!fx_open(&f, "smmu-hwinfo"))
		IT_SKIP("needs the sim's smmuv3 devices under 7.x rules");
	CU_ASSERT_EQUAL_FATAL(iommu_nest_get_hw_info(f.h, SM0, &hi), 0);
	CU_ASSERT_EQUAL(hi.data_type, IOMMU_NEST_HW_INFO_TYPE_ARM_SMMUV3);
	CU_ASSERT_EQUAL(hi.data_len, 40);
	memcpy(&idr3, hi.data + 8 + 3 * 4, sizeof(idr3)); /* flags, reserved, idr[0..2] */
	CU_ASSERT(idr3 & (1u << 10));
	it_stop_ok(f.d);
}

/* Objects: the SMMUv3 type on an smmuv3 device only; STEs by arm_smmu_validate_vste(). */
static void test_objects(void)
{
	uint64_t ste[2] = {0, 0};
	struct fx f;
	uint32_t id = 0;

	if (!fx_open(&f, "smmu-objects"))
		IT_SKIP("needs the sim's smmuv3 devices under 7.x rules");
	CU_ASSERT_EQUAL(iommu_nest_alloc_viommu(f.h, SM1, IOMMU_NEST_VIOMMU_TYPE_SELFTEST, 0, &id),
			-EOPNOTSUPP);
	/* An invalid STE (V = 0) is taken as an abort STE. */
	CU_ASSERT_EQUAL(
	    iommu_nest_alloc_on_viommu(f.h, SM0, f.viommu, IOMMU_NEST_HWPT_DATA_ARM_SMMUV3, 0,
				       IOMMU_NEST_HWPT_DATA_ARM_SMMUV3, ste, sizeof(ste), &id),
	    0);
	/* Config = stage 2, or a bit outside the nesting-allowed fields: -EIO. */
	ste[0] = 1 | 6u << 1;
	CU_ASSERT_EQUAL(
	    iommu_nest_alloc_on_viommu(f.h, SM0, f.viommu, IOMMU_NEST_HWPT_DATA_ARM_SMMUV3, 0,
				       IOMMU_NEST_HWPT_DATA_ARM_SMMUV3, ste, sizeof(ste), &id),
	    -EIO);
	ste[0] = 1 | 5u << 1 | 1ULL << 55;
	CU_ASSERT_EQUAL(
	    iommu_nest_alloc_on_viommu(f.h, SM0, f.viommu, IOMMU_NEST_HWPT_DATA_ARM_SMMUV3, 0,
				       IOMMU_NEST_HWPT_DATA_ARM_SMMUV3, ste, sizeof(ste), &id),
	    -EIO);
	/* Without a vIOMMU the driver has no nested domain at all. */
	ste[0] = 1 | 5u << 1;
	CU_ASSERT_EQUAL(iommu_nest_alloc(f.h, SM1, IOMMU_NEST_HWPT_DATA_ARM_SMMUV3, 0,
					 IOMMU_NEST_HWPT_DATA_ARM_SMMUV3, ste, sizeof(ste), &id),
			-EOPNOTSUPP);
	it_stop_ok(f.d);
}

/*
 * A guest unmap storm: TLBI_NH_VA per page, then the CMD_SYNC (the request
 * boundary). Every entry done, far fewer commands submitted than received,
 * and no page of it left in the model TLB; another ASID's entries stay.
 */
static void test_unmap_storm(void)
{
	static struct cmd c[STORM];
	static struct iommu_nest_entry_result res[STORM];
	struct iommu_nest_inv_summary sum;
	struct iommu_nest_stats before, after;
	struct fx f;

	if (!fx_open(&f, "smmu-storm"))
		IT_SKIP("needs the sim's smmuv3 devices under 7.x rules");
	CU_ASSERT_EQUAL(
	    iommu_nest_sim_populate_asid(f.h, f.hwpt, ASID, BASE, STORM + 16, IOMMU_NEST_SIM_IOTLB),
	    0);
	CU_ASSERT_EQUAL(
	    iommu_nest_sim_populate_asid(f.h, f.hwpt, ASID_OTH, BASE, STORM, IOMMU_NEST_SIM_IOTLB),
	    0);
	CU_ASSERT_EQUAL(cached(&f, ASID, 0, STORM + 16), STORM + 16);
	for (uint32_t i = 0; i < STORM; i++)
		c[i] = tlbi_va(ASID, BASE + (uint64_t)i * IT_PAGE);
	before = it_stats(f.h);
	CU_ASSERT_EQUAL(inv(&f, c, STORM, 0, res, &sum), 0);
	after = it_stats(f.h);
	CU_ASSERT_EQUAL(sum.entries_handled, STORM);
	for (uint32_t i = 0; i < STORM; i++)
		CU_ASSERT_EQUAL(res[i].state, DONE);
	CU_ASSERT(sum.entries_submitted >= 1 && sum.entries_submitted < STORM);
	CU_ASSERT_EQUAL(after.entries_received - before.entries_received, STORM);
	CU_ASSERT(after.entries_submitted - before.entries_submitted < STORM);
	CU_ASSERT_EQUAL(after.entries_submitted - before.entries_submitted, sum.entries_submitted);
	printf("\n    storm: %u commands received, %u submitted in %llu ioctl(s)\n", STORM,
	       sum.entries_submitted, (unsigned long long)(after.submissions - before.submissions));
	/* Never under-invalidate: nothing of the storm's pages is left. */
	CU_ASSERT_EQUAL(cached(&f, ASID, 0, STORM), 0);
	/* The pages past it, and the other ASID, were not asked for. */
	CU_ASSERT_EQUAL(cached(&f, ASID, STORM, 16), 16);
	CU_ASSERT_EQUAL(cached(&f, ASID_OTH, 0, STORM), STORM);
	it_stop_ok(f.d);
}

/*
 * An unknown vSID: -EIO for that entry only, from the daemon; without
 * continue nothing after it is submitted (its page stays cached), with
 * continue the rest is done.
 */
static void test_unknown_vsid(void)
{
	struct cmd c[3] = {tlbi_va(ASID, BASE), cfgi_cd(0x99, 0), tlbi_va(ASID, BASE + IT_PAGE)};
	struct iommu_nest_entry_result res[3];
	struct iommu_nest_inv_summary sum;
	struct fx f;

	if (!fx_open(&f, "smmu-vsid"))
		IT_SKIP("needs the sim's smmuv3 devices under 7.x rules");
	CU_ASSERT_EQUAL(
	    iommu_nest_sim_populate_asid(f.h, f.hwpt, ASID, BASE, 2, IOMMU_NEST_SIM_IOTLB), 0);
	CU_ASSERT_EQUAL(inv(&f, c, 3, 0, res, &sum), -EIO);
	CU_ASSERT_EQUAL(sum.entries_handled, 1);
	it_check_results(res, ((const struct it_expect[]){D, F(-EIO), N}), 3);
	CU_ASSERT_EQUAL(cached(&f, ASID, 0, 1), 0);
	CU_ASSERT_EQUAL(cached(&f, ASID, 1, 1), 1);
	CU_ASSERT_EQUAL(inv(&f, c, 3, IOMMU_NEST_INV_CONTINUE, res, &sum), -EIO);
	CU_ASSERT_EQUAL(sum.entries_handled, 1);
	it_check_results(res, ((const struct it_expect[]){D, F(-EIO), D}), 3);
	CU_ASSERT_EQUAL(cached(&f, ASID, 1, 1), 0);
	/* A vDEVICE for 0x99 makes the same command valid. */
	{
		uint32_t vd;

		CU_ASSERT_EQUAL(iommu_nest_alloc_vdevice(f.h, f.viommu, SM1, 0x99, &vd), 0);
		CU_ASSERT_EQUAL(inv(&f, c, 3, 0, res, &sum), 0);
		CU_ASSERT_EQUAL(sum.entries_handled, 3);
	}
	it_stop_ok(f.d);
}

/* A CFGI_CD burst for one (vSID, SSID) goes out as one command. */
static void test_cfgi_burst(void)
{
	struct cmd c[32];
	struct iommu_nest_entry_result res[32];
	struct iommu_nest_inv_summary sum;
	struct fx f;

	if (!fx_open(&f, "smmu-cfgi"))
		IT_SKIP("needs the sim's smmuv3 devices under 7.x rules");
	for (uint32_t i = 0; i < 32; i++)
		c[i] = cfgi_cd(VSID0, 3);
	CU_ASSERT_EQUAL(inv(&f, c, 32, 0, res, &sum), 0);
	CU_ASSERT_EQUAL(sum.entries_handled, 32);
	CU_ASSERT_EQUAL(sum.entries_submitted, 1);
	/* Two SSIDs: two commands. */
	c[31] = cfgi_cd(VSID0, 4);
	CU_ASSERT_EQUAL(inv(&f, c, 32, 0, res, &sum), 0);
	CU_ASSERT_EQUAL(sum.entries_submitted, 2);
	it_stop_ok(f.d);
}

/* The request's rules: entry_num 0 and another type -EINVAL; a bad opcode -EIO for its entry. */
static void test_request_rules(void)
{
	struct cmd c[3] = {tlbi_va(ASID, BASE), {{htole64(OP_TLBI_S2_IPA), 0}}, cfgi_cd(VSID0, 0)};
	uint8_t wide[2][24] = {{0}};
	struct iommu_nest_entry_result res[3];
	struct iommu_nest_inv_summary sum;
	struct fx f;

	if (!fx_open(&f, "smmu-request"))
		IT_SKIP("needs the sim's smmuv3 devices under 7.x rules");
	/* No empty-array probe on an SMMUv3 vIOMMU. */
	CU_ASSERT_EQUAL(inv(&f, NULL, 0, 0, res, &sum), -EINVAL);
	CU_ASSERT_EQUAL(iommu_nest_invalidate_viommu(f.h, f.viommu,
						     IOMMU_NEST_VIOMMU_INV_DATA_SELFTEST, 16, c, 1,
						     0, res, &sum),
			-EINVAL);
	CU_ASSERT_EQUAL(inv(&f, c, 3, 0, res, &sum), -EIO);
	CU_ASSERT_EQUAL(sum.entries_handled, 1);
	it_check_results(res, ((const struct it_expect[]){D, F(-EIO), N}), 3);
	CU_ASSERT_EQUAL(inv(&f, c, 3, IOMMU_NEST_INV_CONTINUE, res, &sum), -EIO);
	it_check_results(res, ((const struct it_expect[]){D, F(-EIO), D}), 3);
	/* 24-byte entries: zeros past 16 bytes are fine, anything else -E2BIG for all. */
	memcpy(wide[0], &c[0], 16);
	memcpy(wide[1], &c[2], 16);
	CU_ASSERT_EQUAL(
	    iommu_nest_invalidate_viommu(f.h, f.viommu, CMDS, 24, wide, 2, 0, res, &sum), 0);
	CU_ASSERT_EQUAL(sum.entries_handled, 2);
	wide[1][20] = 1;
	CU_ASSERT_EQUAL(
	    iommu_nest_invalidate_viommu(f.h, f.viommu, CMDS, 24, wide, 2, 0, res, &sum), -E2BIG);
	CU_ASSERT_EQUAL(sum.entries_handled, 0);
	it_stop_ok(f.d);
}

/*
 * The kernel reports a failure anyway (the sim's command queue issue
 * fails, as on a CMD_SYNC timeout): its entry_num cannot be trusted, so
 * the daemon resubmits every command one by one and reports done only
 * what then went through.
 */
static void test_kernel_failure_resubmits(void)
{
	static struct cmd c[64];
	static struct iommu_nest_entry_result res[64];
	struct iommu_nest_inv_summary sum;
	struct iommu_nest_fault fault = {0};
	struct fx f;

	if (!fx_open(&f, "smmu-resubmit"))
		IT_SKIP("needs the sim's smmuv3 devices under 7.x rules");
	for (uint32_t i = 0; i < 64; i++)
		c[i] = tlbi_va(ASID, BASE + (uint64_t)i * IT_PAGE);
	CU_ASSERT_EQUAL(
	    iommu_nest_sim_populate_asid(f.h, f.hwpt, ASID, BASE, 64, IOMMU_NEST_SIM_IOTLB), 0);
	/* Once: the coalesced command fails, its one-by-one resubmission works. */
	fault = (struct iommu_nest_fault){
	    .hwpt_id = f.hwpt, .mode = IOMMU_NEST_FAULT_AT_INDEX, .error = -ETIMEDOUT, .count = 1};
	CU_ASSERT_EQUAL_FATAL(iommu_nest_inject_fault(f.h, &fault), 0);
	CU_ASSERT_EQUAL(inv(&f, c, 64, 0, res, &sum), 0);
	CU_ASSERT_EQUAL(sum.entries_handled, 64);
	CU_ASSERT_EQUAL(sum.entries_submitted, 2); /* the range, then the range again */
	CU_ASSERT_EQUAL(cached(&f, ASID, 0, 64), 0);
	/* Twice: nothing went through, and nothing is reported done. */
	CU_ASSERT_EQUAL(
	    iommu_nest_sim_populate_asid(f.h, f.hwpt, ASID, BASE, 64, IOMMU_NEST_SIM_IOTLB), 0);
	fault.count = 2;
	CU_ASSERT_EQUAL_FATAL(iommu_nest_inject_fault(f.h, &fault), 0);
	CU_ASSERT_EQUAL(inv(&f, c, 64, 0, res, &sum), -ETIMEDOUT);
	CU_ASSERT_EQUAL(sum.entries_handled, 0);
	for (uint32_t i = 0; i < 64; i++) {
		CU_ASSERT_EQUAL(res[i].state, FAILED);
		CU_ASSERT_EQUAL(res[i].error, -ETIMEDOUT);
	}
	CU_ASSERT_EQUAL(cached(&f, ASID, 0, 64), 64);
	it_stop_ok(f.d);
}

/* Under 6.12 rules there is no vIOMMU: -ENOTTY. */
static void test_no_viommu_on_6_12(void)
{
	struct nestd *d;
	struct iommu_nest *h;
	uint32_t id = 0;

	if (!on_sim())
		IT_SKIP("the sim's smmuv3 device only");
	d = it_start("[device " SM0 "]\nkind = smmuv3\n");
	h = it_connect(d, "smmu-6.12");
	if (it_kernel7_rules(NULL) || !it_has_device(h, SM0)) {
		it_stop_ok(d);
		IT_SKIP("needs the sim's smmuv3 device under 6.12 rules");
	}
	CU_ASSERT_EQUAL(iommu_nest_alloc_viommu(h, SM0, IOMMU_NEST_VIOMMU_TYPE_ARM_SMMUV3, 0, &id),
			-ENOTTY);
	it_stop_ok(d);
}

static const struct it_case cases[] = {
    {"hw_info", test_hw_info},
    {"objects", test_objects},
    {"unmap_storm", test_unmap_storm},
    {"unknown_vsid", test_unknown_vsid},
    {"cfgi_burst", test_cfgi_burst},
    {"request_rules", test_request_rules},
    {"kernel_failure_resubmits", test_kernel_failure_resubmits},
    {"no_viommu_on_6_12", test_no_viommu_on_6_12},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
	return it_main(argc, argv, "smmuv3", cases);
}
