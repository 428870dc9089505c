/* SPDX-License-Identifier: MIT */
/*
 * Validation tests: one assertion per kernel rule, in the spirit of
 * tools/testing/selftests/iommu/iommufd.c (hwpt_invalidate).
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <string.h>

#include "inv/request.h"
#include "inv/validate.h"
#include "backend/iommufd_uapi.h"
#include "unit_run.h"

typedef struct iommu_hwpt_vtd_s1_invalidate vtd_t;
typedef struct iommu_hwpt_invalidate_selftest st_t;

#define VTD  IOMMU_HWPT_INVALIDATE_DATA_VTD_S1
#define ST   IOMMU_HWPT_INVALIDATE_DATA_SELFTEST
#define LEAF IOMMU_VTD_INV_FLAGS_LEAF

static vtd_t vtd_buf[8];
static st_t st_buf[8];

static struct inv_request req(uint32_t type, uint32_t n, uint32_t entry_len)
{
	return (struct inv_request){
	    .hwpt_id = 1,
	    .data_type = type,
	    .entry_len = entry_len,
	    .n = n,
	    .entries = type == ST ? (void *)st_buf : (void *)vtd_buf,
	};
}

static void test_entry_size(void)
{
	CU_ASSERT_EQUAL(inv_entry_size(VTD), 24);
	CU_ASSERT_EQUAL(inv_entry_size(ST), 8);
	CU_ASSERT_EQUAL(inv_entry_size(IOMMU_HWPT_INVALIDATE_DATA_SELFTEST_INVALID), 0);
	CU_ASSERT_EQUAL(inv_entry_size(12345), 0);
}

static void test_request_reserved(void)
{
	struct inv_request r = req(VTD, 1, 0);

	r.reserved = 1;
	CU_ASSERT_EQUAL(inv_validate_request(&r, VTD), -EOPNOTSUPP);
	/* checked first: before the length, the type and even for a probe */
	r.entry_len = 5000;
	CU_ASSERT_EQUAL(inv_validate_request(&r, ST), -EOPNOTSUPP);
	r.n = 0;
	CU_ASSERT_EQUAL(inv_validate_request(&r, VTD), -EOPNOTSUPP);
}

static void test_request_probe(void)
{
	struct inv_request r = req(VTD, 0, 9999);

	/* entry_num == 0 ignores entry_len and the array */
	r.entries = NULL;
	CU_ASSERT_EQUAL(inv_validate_request(&r, VTD), 0);
	/* but the type must match */
	CU_ASSERT_EQUAL(inv_validate_request(&r, ST), -EINVAL);
	r = req(ST, 0, 0);
	CU_ASSERT_EQUAL(inv_validate_request(&r, ST), 0);
	CU_ASSERT_EQUAL(inv_validate_request(&r, VTD), -EINVAL);
}

static void test_request_entry_len_page(void)
{
	struct inv_request r = req(VTD, 1, IOMMUFD_PAGE_SIZE + 1);

	CU_ASSERT_EQUAL(inv_validate_request(&r, VTD), -EINVAL);
	/* 4096 passes the array bound and fails the struct size instead */
	r.entry_len = IOMMUFD_PAGE_SIZE;
	CU_ASSERT_EQUAL(inv_validate_request(&r, VTD), -EINVAL);
}

static void test_request_entry_num_max(void)
{
	struct inv_request r = req(VTD, IOMMU_HWPT_INVALIDATE_ENTRY_NUM_MAX, 0);

	CU_ASSERT_EQUAL(inv_validate_request(&r, VTD), 0);
	r.n = IOMMU_HWPT_INVALIDATE_ENTRY_NUM_MAX + 1;
	CU_ASSERT_EQUAL(inv_validate_request(&r, VTD), -EINVAL);
}

static void test_request_null_entries(void)
{
	struct inv_request r = req(VTD, 1, 0);

	r.entries = NULL; /* the ioctl's data_uptr == 0 */
	CU_ASSERT_EQUAL(inv_validate_request(&r, VTD), -EINVAL);
}

static void test_request_wrong_type(void)
{
	struct inv_request r = req(VTD, 1, 0);

	CU_ASSERT_EQUAL(inv_validate_request(&r, ST), -EINVAL);
	r = req(ST, 1, 0);
	CU_ASSERT_EQUAL(inv_validate_request(&r, VTD), -EINVAL);
	r.data_type = IOMMU_HWPT_INVALIDATE_DATA_SELFTEST_INVALID;
	CU_ASSERT_EQUAL(inv_validate_request(&r, ST), -EINVAL);
	/* a type nobody knows, even if the HWPT claims it */
	r.data_type = 777;
	CU_ASSERT_EQUAL(inv_validate_request(&r, 777), -EINVAL);
}

static void test_request_entry_len_bounds(void)
{
	struct inv_request r = req(VTD, 1, 0);

	CU_ASSERT_EQUAL(inv_validate_request(&r, VTD), 0); /* 0 = native */
	r.entry_len = sizeof(vtd_t);
	CU_ASSERT_EQUAL(inv_validate_request(&r, VTD), 0);
	r.entry_len = VTD_S1_INV_MIN_LEN - 1;
	CU_ASSERT_EQUAL(inv_validate_request(&r, VTD), -EINVAL);
	r.entry_len = sizeof(vtd_t) + 1;
	CU_ASSERT_EQUAL(inv_validate_request(&r, VTD), -EINVAL);
	r.entry_len = 1;
	CU_ASSERT_EQUAL(inv_validate_request(&r, VTD), -EINVAL);

	r = req(ST, 1, sizeof(st_t));
	CU_ASSERT_EQUAL(inv_validate_request(&r, ST), 0);
	r.entry_len = SELFTEST_INV_MIN_LEN - 1;
	CU_ASSERT_EQUAL(inv_validate_request(&r, ST), -EINVAL);
	r.entry_len = sizeof(st_t) * 2;
	CU_ASSERT_EQUAL(inv_validate_request(&r, ST), -EINVAL);
}

static int vtd_check(uint64_t addr, uint64_t npages, uint32_t flags, uint32_t reserved)
{
	vtd_t e = {.addr = addr, .npages = npages, .flags = flags, .__reserved = reserved};

	return inv_validate_vtd_entry(&e);
}

static void test_vtd_flags(void)
{
	CU_ASSERT_EQUAL(vtd_check(0x1000, 1, 0, 0), 0);
	CU_ASSERT_EQUAL(vtd_check(0x1000, 1, LEAF, 0), 0);
	CU_ASSERT_EQUAL(vtd_check(0x1000, 1, 1u << 1, 0), -EOPNOTSUPP);
	CU_ASSERT_EQUAL(vtd_check(0x1000, 1, LEAF | (1u << 31), 0), -EOPNOTSUPP);
}

static void test_vtd_reserved(void)
{
	CU_ASSERT_EQUAL(vtd_check(0x1000, 1, 0, 1), -EOPNOTSUPP);
	CU_ASSERT_EQUAL(vtd_check(0x1000, 1, LEAF, 0x80000000u), -EOPNOTSUPP);
}

static void test_vtd_opnotsupp_before_einval(void)
{
	/* the kernel checks flags/reserved before the address */
	CU_ASSERT_EQUAL(vtd_check(0x1001, 1, 2, 0), -EOPNOTSUPP);
	CU_ASSERT_EQUAL(vtd_check(0x1000, UINT64_MAX, 0, 1), -EOPNOTSUPP);
}

static void test_vtd_alignment(void)
{
	CU_ASSERT_EQUAL(vtd_check(0x1001, 1, 0, 0), -EINVAL);
	CU_ASSERT_EQUAL(vtd_check(0x800, 1, 0, 0), -EINVAL);
	CU_ASSERT_EQUAL(vtd_check(0xfff, 1, LEAF, 0), -EINVAL);
	CU_ASSERT_EQUAL(vtd_check(0xfffffffffffff000ULL, 1, 0, 0), 0);
}

static void test_vtd_flush_all(void)
{
	CU_ASSERT_EQUAL(vtd_check(0, UINT64_MAX, 0, 0), 0);
	CU_ASSERT_EQUAL(vtd_check(0, UINT64_MAX, LEAF, 0), 0);
	CU_ASSERT_EQUAL(vtd_check(0x1000, UINT64_MAX, 0, 0), -EINVAL);
}

static void test_vtd_odd_npages_accepted(void)
{
	/* the kernel accepts these; the coalescer makes them safe */
	CU_ASSERT_EQUAL(vtd_check(0x1000, 0, 0, 0), 0);
	CU_ASSERT_EQUAL(vtd_check(0, 0, 0, 0), 0);
	CU_ASSERT_EQUAL(vtd_check(1ULL << 63, 1ULL << 60, 0, 0), 0);
	CU_ASSERT_EQUAL(vtd_check(0x1000, UINT64_MAX - 1, 0, 0), 0);
}

static int st_check(uint32_t flags, uint32_t id)
{
	st_t e = {.flags = flags, .iotlb_id = id};

	return inv_validate_selftest_entry(&e);
}

static void test_selftest_entry(void)
{
	for (uint32_t id = 0; id <= MOCK_NESTED_DOMAIN_IOTLB_ID_MAX; id++)
		CU_ASSERT_EQUAL(st_check(0, id), 0);
	CU_ASSERT_EQUAL(st_check(IOMMU_TEST_INVALIDATE_FLAG_ALL, 0), 0);
	CU_ASSERT_EQUAL(st_check(1u << 1, 0), -EOPNOTSUPP);
	CU_ASSERT_EQUAL(st_check(0xffffffffu, 0), -EOPNOTSUPP);
	CU_ASSERT_EQUAL(st_check(0, MOCK_NESTED_DOMAIN_IOTLB_ID_MAX + 1), -EINVAL);
	/* the id is checked even when FLAG_ALL ignores it */
	CU_ASSERT_EQUAL(st_check(IOMMU_TEST_INVALIDATE_FLAG_ALL, 4), -EINVAL);
	/* flags first */
	CU_ASSERT_EQUAL(st_check(2, 4), -EOPNOTSUPP);
}

static void fill_vtd(void)
{
	for (int i = 0; i < 8; i++)
		vtd_buf[i] = (vtd_t){.addr = (uint64_t)i << 12, .npages = 1};
}

static void test_entries_stop_without_cont(void)
{
	struct inv_entry_result res[8];
	struct inv_request r = req(VTD, 6, 0);

	fill_vtd();
	vtd_buf[3].flags = 4;	/* EOPNOTSUPP */
	vtd_buf[4].addr = 0x10; /* would be EINVAL, never looked at */
	memset(res, 0x55, sizeof(res));
	r.res = res;
	CU_ASSERT_EQUAL(inv_validate_entries(&r), 3);
	for (int i = 0; i < 3; i++)
		CU_ASSERT(res[i].state == INV_PENDING && !res[i].error && !res[i].hw_error);
	CU_ASSERT(res[3].state == INV_FAILED && res[3].error == -EOPNOTSUPP && !res[3].hw_error);
	for (int i = 4; i < 6; i++)
		CU_ASSERT(res[i].state == INV_NOT_ATTEMPTED && !res[i].error);
}

static void test_entries_cont(void)
{
	struct inv_entry_result res[8];
	struct inv_request r = req(VTD, 6, 0);

	fill_vtd();
	vtd_buf[0].addr = 0x10;
	vtd_buf[3].__reserved = 1;
	vtd_buf[5].addr = 0x2000;
	vtd_buf[5].npages = UINT64_MAX;
	r.res = res;
	r.cont = true;
	CU_ASSERT_EQUAL(inv_validate_entries(&r), 3);
	CU_ASSERT(res[0].state == INV_FAILED && res[0].error == -EINVAL);
	CU_ASSERT(res[1].state == INV_PENDING && res[2].state == INV_PENDING);
	CU_ASSERT(res[3].state == INV_FAILED && res[3].error == -EOPNOTSUPP);
	CU_ASSERT(res[4].state == INV_PENDING);
	CU_ASSERT(res[5].state == INV_FAILED && res[5].error == -EINVAL);
}

static void test_entries_all_good_and_first_bad(void)
{
	struct inv_entry_result res[8];
	struct inv_request r = req(ST, 4, 0);

	for (int i = 0; i < 4; i++)
		st_buf[i] = (st_t){.iotlb_id = (uint32_t)i};
	r.res = res;
	CU_ASSERT_EQUAL(inv_validate_entries(&r), 4);
	st_buf[0].iotlb_id = 9;
	CU_ASSERT_EQUAL(inv_validate_entries(&r), 0);
	CU_ASSERT(res[0].state == INV_FAILED && res[0].error == -EINVAL);
	CU_ASSERT(res[1].state == INV_NOT_ATTEMPTED && res[3].state == INV_NOT_ATTEMPTED);
}

int main(void)
{
	static const struct unit_case tests[] = {
	    {"entry size", test_entry_size},
	    {"request: reserved -> EOPNOTSUPP", test_request_reserved},
	    {"request: probe", test_request_probe},
	    {"request: entry_len > PAGE_SIZE", test_request_entry_len_page},
	    {"request: entry_num > 2^19", test_request_entry_num_max},
	    {"request: null array", test_request_null_entries},
	    {"request: wrong data type", test_request_wrong_type},
	    {"request: entry_len bounds", test_request_entry_len_bounds},
	    {"vtd: flags", test_vtd_flags},
	    {"vtd: reserved", test_vtd_reserved},
	    {"vtd: EOPNOTSUPP before EINVAL", test_vtd_opnotsupp_before_einval},
	    {"vtd: alignment", test_vtd_alignment},
	    {"vtd: flush-all", test_vtd_flush_all},
	    {"vtd: npages 0 / huge accepted", test_vtd_odd_npages_accepted},
	    {"selftest: entry rules", test_selftest_entry},
	    {"entries: stop without cont", test_entries_stop_without_cont},
	    {"entries: cont", test_entries_cont},
	    {"entries: all good / first bad", test_entries_all_good_and_first_bad},
	};
	int rc;

	rc = unit_run("validate", UNIT_CASES(tests));
	return rc;
}
