/* SPDX-License-Identifier: MIT */
/*
 * Coalescer tests: one case per rule, then a property test over random
 * batches checked against an interval model of the pages asked for and an
 * independent implementation of the VT-d cost model.
 *
 * NESTD_SEED=<n> replays a run; NESTD_BATCHES=<n> changes its length.
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "inv/coalesce.h"
#include "inv/validate.h"
#include "backend/iommufd_uapi.h"
#include "iv_model.h"
#include "test_rng.h"
#include "unit_run.h"

typedef struct iommu_hwpt_vtd_s1_invalidate vtd_t;
typedef struct iommu_hwpt_invalidate_selftest st_t;

#define PG   4096ULL
#define LEAF IOMMU_VTD_INV_FLAGS_LEAF
#define ALLP UINT64_MAX

static struct coalesce_plan plan;

static const vtd_t *sub_vtd(uint32_t k)
{
	return (const vtd_t *)plan.sub + k;
}

static const st_t *sub_st(uint32_t k)
{
	return (const st_t *)plan.sub + k;
}

static struct coalesce_params params(uint64_t slack, uint64_t flush_all, uint32_t mm)
{
	return (struct coalesce_params){.enabled = true,
					.slack_pages = slack,
					.flush_all_pages = flush_all,
					.vtd_max_mask = mm};
}

static vtd_t V(uint64_t page, uint64_t npages, uint32_t flags)
{
	return (vtd_t){.addr = page * PG, .npages = npages, .flags = flags};
}

/* Asserts submitted entry k is pages [page, page + npages) with flags. */
#define CHECK_SUB(k, page, np, fl)                                                                 \
	do {                                                                                       \
		CU_ASSERT_EQUAL(sub_vtd(k)->addr, (uint64_t)(page)*PG);                            \
		CU_ASSERT_EQUAL(sub_vtd(k)->npages, (uint64_t)(np));                               \
		CU_ASSERT_EQUAL(sub_vtd(k)->flags, (uint32_t)(fl));                                \
		CU_ASSERT_EQUAL(sub_vtd(k)->__reserved, 0);                                        \
	} while (0)

/* ---- cost model ---- */

static void test_block_pages(void)
{
	CU_ASSERT_EQUAL(vtd_block_pages(0, 1, 0), 1);
	CU_ASSERT_EQUAL(vtd_block_pages(7 * PG, 1, 0), 1);
	CU_ASSERT_EQUAL(vtd_block_pages(0, 3, 0), 4);
	/* pages 3..4 straddle the 4-page boundary: block 0..7 */
	CU_ASSERT_EQUAL(vtd_block_pages(3 * PG, 2, 0), 8);
	CU_ASSERT_EQUAL(vtd_block_pages(4 * PG, 4, 0), 4);
	CU_ASSERT_EQUAL(vtd_block_pages(0, 512, 9), 512);
	CU_ASSERT_EQUAL(vtd_block_pages(0, 513, 9), ALLP);
	CU_ASSERT_EQUAL(vtd_block_pages(511 * PG, 2, 9), ALLP);
	CU_ASSERT_EQUAL(vtd_block_pages(0, 1ULL << 20, 0), 1ULL << 20);
	/* 0 and anything above 52 mean "no limit below the space" */
	CU_ASSERT_EQUAL(vtd_block_pages(0, 1ULL << 51, 0), 1ULL << 51);
	CU_ASSERT_EQUAL(vtd_block_pages(0, 1ULL << 51, 99), 1ULL << 51);
	CU_ASSERT_EQUAL(vtd_effective_max_mask(0), 52);
	CU_ASSERT_EQUAL(vtd_effective_max_mask(9), 9);
	CU_ASSERT_EQUAL(vtd_effective_max_mask(60), 52);
	/* flush-all, whole space, nothing */
	CU_ASSERT_EQUAL(vtd_block_pages(0, UINT64_MAX, 0), ALLP);
	CU_ASSERT_EQUAL(vtd_block_pages(0, 1ULL << 52, 0), ALLP);
	CU_ASSERT_EQUAL(vtd_block_pages(0, (1ULL << 52) + 1, 0), ALLP);
	CU_ASSERT_EQUAL(vtd_block_pages(PG, 0, 0), 0);
	/* clipped at 2^64, never wrapped */
	CU_ASSERT_EQUAL(vtd_block_pages(0xfffffffffffff000ULL, 5, 0), 1);
	CU_ASSERT_EQUAL(vtd_block_pages(1ULL << 63, 1ULL << 60, 0), 1ULL << 51);
	/* two pages across the middle of the space: the whole space */
	CU_ASSERT_EQUAL(vtd_block_pages((1ULL << 63) - PG, 2, 0), ALLP);
}

static void test_normalize(void)
{
	vtd_t e = V(0, UINT64_MAX, 0);

	vtd_entry_normalize(&e);
	CU_ASSERT(e.addr == 0 && e.npages == UINT64_MAX);
	e = V(5, 10, LEAF);
	vtd_entry_normalize(&e);
	CU_ASSERT(e.addr == 5 * PG && e.npages == 10 && e.flags == LEAF);
	/* wraps: clipped to the end */
	e = (vtd_t){.addr = 1ULL << 63, .npages = 1ULL << 60};
	vtd_entry_normalize(&e);
	CU_ASSERT(e.addr == 1ULL << 63 && e.npages == 1ULL << 51);
	/* from 0 to (past) the end: the flush-all encoding */
	e = V(0, 1ULL << 52, LEAF);
	vtd_entry_normalize(&e);
	CU_ASSERT(e.addr == 0 && e.npages == UINT64_MAX);
	e = V(0, (1ULL << 52) + 7, 0);
	vtd_entry_normalize(&e);
	CU_ASSERT(e.addr == 0 && e.npages == UINT64_MAX);
	/* npages 0 stays what the client sent */
	e = V(3, 0, 0);
	vtd_entry_normalize(&e);
	CU_ASSERT(e.addr == 3 * PG && e.npages == 0);
}

/* ---- VT-d rules ---- */

static void test_identity_when_disabled(void)
{
	struct coalesce_params p = params(0, 0, 0);
	vtd_t in[3] = {V(4, 1, 0), V(0, 1, LEAF), V(4, 1, 0)};

	p.enabled = false;
	CU_ASSERT_EQUAL(coalesce_vtd(in, 3, &p, &plan), 0);
	CU_ASSERT_EQUAL(plan.n_sub, 3);
	CU_ASSERT_EQUAL(memcmp(plan.sub, in, sizeof(in)), 0);
	for (uint32_t i = 0; i < 3; i++)
		CU_ASSERT(plan.first[i] == i && plan.last[i] == i);
	CU_ASSERT_EQUAL(plan.pages_flushed, 3);
}

static void test_empty_batch(void)
{
	struct coalesce_params p = params(0, 0, 0);

	CU_ASSERT_EQUAL(coalesce_vtd(NULL, 0, &p, &plan), 0);
	CU_ASSERT_EQUAL(plan.n_sub, 0);
	CU_ASSERT_EQUAL(plan.pages_flushed, 0);
}

static void test_overlap_merges(void)
{
	struct coalesce_params p = params(0, 0, 0);
	vtd_t in[3] = {V(2, 2, 0), V(0, 4, 0), V(1, 1, 0)};

	CU_ASSERT_EQUAL(coalesce_vtd(in, 3, &p, &plan), 0);
	CU_ASSERT_EQUAL(plan.n_sub, 1);
	CHECK_SUB(0, 0, 4, 0);
	for (uint32_t i = 0; i < 3; i++)
		CU_ASSERT(plan.first[i] == 0 && plan.last[i] == 0);
	CU_ASSERT_EQUAL(plan.pages_flushed, 4);
}

static void test_adjacent_merges(void)
{
	struct coalesce_params p = params(0, 0, 0);
	vtd_t in[4] = {V(6, 2, LEAF), V(0, 2, LEAF), V(2, 2, LEAF), V(4, 2, LEAF)};

	CU_ASSERT_EQUAL(coalesce_vtd(in, 4, &p, &plan), 0);
	CU_ASSERT_EQUAL(plan.n_sub, 1);
	CHECK_SUB(0, 0, 8, LEAF); /* all leaf: stays leaf */
	CU_ASSERT_EQUAL(plan.pages_flushed, 8);
}

static void test_duplicates_merge(void)
{
	struct coalesce_params p = params(0, 0, 0);
	vtd_t in[5] = {V(9, 1, LEAF), V(9, 1, LEAF), V(9, 1, LEAF), V(9, 1, LEAF), V(9, 1, LEAF)};

	CU_ASSERT_EQUAL(coalesce_vtd(in, 5, &p, &plan), 0);
	CU_ASSERT_EQUAL(plan.n_sub, 1);
	CHECK_SUB(0, 9, 1, LEAF);
}

static void test_leaf_nonleaf_merge_is_nonleaf(void)
{
	struct coalesce_params p = params(0, 0, 0);
	vtd_t in[2] = {V(0, 4, LEAF), V(2, 4, 0)};

	CU_ASSERT_EQUAL(coalesce_vtd(in, 2, &p, &plan), 0);
	CU_ASSERT_EQUAL(plan.n_sub, 1);
	CHECK_SUB(0, 0, 6, 0);
}

static void test_disjoint_stay_apart(void)
{
	struct coalesce_params p = params(0, 0, 0);
	/* blocks 1 + 1 against 4 for [0, 3): not worth it without slack */
	vtd_t in[2] = {V(2, 1, 0), V(0, 1, LEAF)};

	CU_ASSERT_EQUAL(coalesce_vtd(in, 2, &p, &plan), 0);
	CU_ASSERT_EQUAL(plan.n_sub, 2);
	CHECK_SUB(0, 0, 1, LEAF); /* address order */
	CHECK_SUB(1, 2, 1, 0);
	CU_ASSERT(plan.first[0] == 1 && plan.last[0] == 1);
	CU_ASSERT(plan.first[1] == 0 && plan.last[1] == 0);
	CU_ASSERT_EQUAL(plan.pages_flushed, 2);
}

static void test_slack_merges_small_gap(void)
{
	struct coalesce_params p = params(2, 0, 0);
	vtd_t in[2] = {V(0, 1, LEAF), V(3, 1, LEAF)};

	CU_ASSERT_EQUAL(coalesce_vtd(in, 2, &p, &plan), 0);
	CU_ASSERT_EQUAL(plan.n_sub, 1);
	CHECK_SUB(0, 0, 4, LEAF);
	CU_ASSERT_EQUAL(plan.pages_flushed, 4);

	/* gap larger than the slack: apart */
	in[1] = V(8, 1, LEAF);
	CU_ASSERT_EQUAL(coalesce_vtd(in, 2, &p, &plan), 0);
	CU_ASSERT_EQUAL(plan.n_sub, 2);
}

static void test_block_overlap_merges_without_slack(void)
{
	struct coalesce_params p = params(0, 0, 0);
	/* [0,3) costs block 0..3, [4,8) block 4..7: one block 0..7 is free */
	vtd_t in[2] = {V(4, 4, LEAF), V(0, 3, LEAF)};

	CU_ASSERT_EQUAL(coalesce_vtd(in, 2, &p, &plan), 0);
	CU_ASSERT_EQUAL(plan.n_sub, 1);
	CHECK_SUB(0, 0, 8, LEAF);
	CU_ASSERT_EQUAL(plan.pages_flushed, 8);
}

static void test_merge_refused_when_block_grows(void)
{
	struct coalesce_params p = params(1, 0, 0);
	/* adjacent across the 2^20 boundary: union, then split back */
	uint64_t b = 1ULL << 20;
	vtd_t in[2] = {V(b - 1, 1, LEAF), V(b + 1, 1, LEAF)};

	/* gap of 1 page within slack, but the block would be 2^21 pages */
	CU_ASSERT_EQUAL(coalesce_vtd(in, 2, &p, &plan), 0);
	CU_ASSERT_EQUAL(plan.n_sub, 2);
	CU_ASSERT_EQUAL(plan.pages_flushed, 2);
}

static void test_split_at_large_boundary(void)
{
	struct coalesce_params p = params(0, 0, 0);
	uint64_t b = 1ULL << 20;
	vtd_t in[3] = {V(b - 2, 2, LEAF), V(b, 3, 0), V(b - 1, 2, LEAF)};

	CU_ASSERT_EQUAL(coalesce_vtd(in, 3, &p, &plan), 0);
	CU_ASSERT_EQUAL(plan.n_sub, 2);
	CHECK_SUB(0, b - 2, 2, LEAF); /* only leaf inputs on this side */
	CHECK_SUB(1, b, 3, 0);
	CU_ASSERT(plan.first[0] == 0 && plan.last[0] == 0);
	CU_ASSERT(plan.first[1] == 1 && plan.last[1] == 1);
	CU_ASSERT(plan.first[2] == 0 && plan.last[2] == 1); /* straddles */
	CU_ASSERT_EQUAL(plan.pages_flushed, 2 + 4);
}

static void test_no_split_for_small_saving(void)
{
	struct coalesce_params p = params(0, 0, 0);
	/* block 4 as one entry, 2 + 1 as two: not worth a submission */
	vtd_t in[1] = {V(0, 3, 0)};

	CU_ASSERT_EQUAL(coalesce_vtd(in, 1, &p, &plan), 0);
	CU_ASSERT_EQUAL(plan.n_sub, 1);
	CU_ASSERT_EQUAL(plan.pages_flushed, 4);
}

static void test_slack_discourages_split(void)
{
	struct coalesce_params p = params(16, 0, 0);
	/* pages 6..9: one block 0..15 (16) or 4 + 2: saves 10 < slack */
	vtd_t in[1] = {V(6, 4, 0)};

	CU_ASSERT_EQUAL(coalesce_vtd(in, 1, &p, &plan), 0);
	CU_ASSERT_EQUAL(plan.n_sub, 1);
	CU_ASSERT_EQUAL(plan.pages_flushed, 16);
	p.slack_pages = 0;
	CU_ASSERT_EQUAL(coalesce_vtd(in, 1, &p, &plan), 0);
	CU_ASSERT_EQUAL(plan.n_sub, 2);
	CU_ASSERT_EQUAL(plan.pages_flushed, 4);
}

static void test_flush_all_subsumes(void)
{
	struct coalesce_params p = params(0, 0, 0);
	vtd_t in[4] = {V(5, 1, LEAF), V(0, UINT64_MAX, LEAF), V(100, 3, 0), V(7, 0, 0)};

	CU_ASSERT_EQUAL(coalesce_vtd(in, 4, &p, &plan), 0);
	CU_ASSERT_EQUAL(plan.n_sub, 1);
	CHECK_SUB(0, 0, UINT64_MAX, 0); /* non-leaf: covers the non-leaf input */
	for (uint32_t i = 0; i < 4; i++)
		CU_ASSERT(plan.first[i] == 0 && plan.last[i] == 0);
	CU_ASSERT_EQUAL(plan.pages_flushed, ALLP);
}

static void test_whole_space_range_is_flush_all(void)
{
	struct coalesce_params p = params(0, 0, 0);
	vtd_t in[2] = {V(3, 1, 0), V(0, (1ULL << 52) + 1, LEAF)};

	CU_ASSERT_EQUAL(coalesce_vtd(in, 2, &p, &plan), 0);
	CU_ASSERT_EQUAL(plan.n_sub, 1);
	CHECK_SUB(0, 0, UINT64_MAX, 0);
}

static void test_flush_all_threshold(void)
{
	struct coalesce_params p = params(0, 1000, 0);
	vtd_t in[2] = {V(0, 512, 0), V(4096, 512, LEAF)};

	CU_ASSERT_EQUAL(coalesce_vtd(in, 2, &p, &plan), 0);
	CU_ASSERT_EQUAL(plan.n_sub, 1);
	CHECK_SUB(0, 0, UINT64_MAX, 0);
	CU_ASSERT_EQUAL(plan.pages_flushed, ALLP);
	/* at the threshold: kept */
	p.flush_all_pages = 1024;
	CU_ASSERT_EQUAL(coalesce_vtd(in, 2, &p, &plan), 0);
	CU_ASSERT_EQUAL(plan.n_sub, 2);
	CU_ASSERT_EQUAL(plan.pages_flushed, 1024);
	/* 0 = never */
	p.flush_all_pages = 0;
	CU_ASSERT_EQUAL(coalesce_vtd(in, 2, &p, &plan), 0);
	CU_ASSERT_EQUAL(plan.n_sub, 2);
}

static void test_max_mask(void)
{
	struct coalesce_params p = params(0, 0, 9);
	vtd_t in[1] = {V(0, 1024, 0)};

	/* 1024 pages do not fit one 2^9 mask; two do */
	CU_ASSERT_EQUAL(coalesce_vtd(in, 1, &p, &plan), 0);
	CU_ASSERT_EQUAL(plan.n_sub, 2);
	CHECK_SUB(0, 0, 512, 0);
	CHECK_SUB(1, 512, 512, 0);
	CU_ASSERT_EQUAL(plan.pages_flushed, 1024);
	/* 2048 pages: beyond any mask even when split - one flush-all */
	in[0] = V(0, 2048, LEAF);
	CU_ASSERT_EQUAL(coalesce_vtd(in, 1, &p, &plan), 0);
	CU_ASSERT_EQUAL(plan.n_sub, 1);
	CHECK_SUB(0, 0, UINT64_MAX, 0);
	/* merges never build a block above the mask */
	in[0] = V(0, 512, 0);
	vtd_t two[2] = {V(0, 512, 0), V(512, 1, 0)};
	CU_ASSERT_EQUAL(coalesce_vtd(two, 2, &p, &plan), 0);
	CU_ASSERT_EQUAL(plan.n_sub, 2);
	CU_ASSERT_EQUAL(plan.pages_flushed, 513);
}

static void test_wrap_clipped(void)
{
	struct coalesce_params p = params(0, 0, 0);
	vtd_t in[2] = {{.addr = 1ULL << 63, .npages = 1ULL << 60},
		       {.addr = 0xfffffffffffff000ULL, .npages = 1}};

	CU_ASSERT_EQUAL(coalesce_vtd(in, 2, &p, &plan), 0);
	CU_ASSERT_EQUAL(plan.n_sub, 1);
	CU_ASSERT_EQUAL(sub_vtd(0)->addr, 1ULL << 63);
	CU_ASSERT_EQUAL(sub_vtd(0)->npages, 1ULL << 51);
	CU_ASSERT_EQUAL(plan.pages_flushed, 1ULL << 51);
}

static void test_npages_zero(void)
{
	struct coalesce_params p = params(0, 0, 0);
	vtd_t in[3] = {V(7, 0, 0), V(9, 0, LEAF), V(100, 1, 0)};

	/* served by a real entry, never submitted as such */
	CU_ASSERT_EQUAL(coalesce_vtd(in, 3, &p, &plan), 0);
	CU_ASSERT_EQUAL(plan.n_sub, 1);
	CHECK_SUB(0, 100, 1, 0);
	for (uint32_t i = 0; i < 3; i++)
		CU_ASSERT(plan.first[i] == 0 && plan.last[i] == 0);
	/* alone: one harmless page so that something is acknowledged */
	CU_ASSERT_EQUAL(coalesce_vtd(in, 2, &p, &plan), 0);
	CU_ASSERT_EQUAL(plan.n_sub, 1);
	CHECK_SUB(0, 7, 1, LEAF);
	CU_ASSERT_EQUAL(plan.pages_flushed, 1);
}

static void test_plan_reuse_shrinks(void)
{
	struct coalesce_params p = params(0, 0, 0);
	vtd_t big[64], one = V(3, 1, LEAF);

	for (uint32_t i = 0; i < 64; i++)
		big[i] = V(i * 4, 1, 0);
	CU_ASSERT_EQUAL(coalesce_vtd(big, 64, &p, &plan), 0);
	CU_ASSERT_EQUAL(plan.n_sub, 64);
	CU_ASSERT_EQUAL(coalesce_vtd(&one, 1, &p, &plan), 0);
	CU_ASSERT_EQUAL(plan.n_sub, 1);
	CHECK_SUB(0, 3, 1, LEAF);
}

/* ---- selftest rules ---- */

static void test_selftest_duplicates(void)
{
	struct coalesce_params p = params(0, 0, 0);
	st_t in[4] = {{0, 2}, {0, 0}, {0, 2}, {0, 0}};

	CU_ASSERT_EQUAL(coalesce_selftest(in, 4, &p, &plan), 0);
	CU_ASSERT_EQUAL(plan.n_sub, 2);
	CU_ASSERT(sub_st(0)->flags == 0 && sub_st(0)->iotlb_id == 0);
	CU_ASSERT(sub_st(1)->flags == 0 && sub_st(1)->iotlb_id == 2);
	CU_ASSERT(plan.first[0] == 1 && plan.last[0] == 1);
	CU_ASSERT(plan.first[1] == 0 && plan.last[1] == 0);
	CU_ASSERT(plan.first[2] == 1 && plan.first[3] == 0);
}

static void test_selftest_flag_all(void)
{
	struct coalesce_params p = params(0, 0, 0);
	st_t in[3] = {{0, 1}, {IOMMU_TEST_INVALIDATE_FLAG_ALL, 3}, {0, 2}};
	st_t four[4] = {{0, 3}, {0, 2}, {0, 1}, {0, 0}};

	CU_ASSERT_EQUAL(coalesce_selftest(in, 3, &p, &plan), 0);
	CU_ASSERT_EQUAL(plan.n_sub, 1);
	CU_ASSERT_EQUAL(sub_st(0)->flags, IOMMU_TEST_INVALIDATE_FLAG_ALL);
	CU_ASSERT_EQUAL(inv_validate_selftest_entry(sub_st(0)), 0);
	for (uint32_t i = 0; i < 3; i++)
		CU_ASSERT(plan.first[i] == 0 && plan.last[i] == 0);
	/* every slot named: one FLAG_ALL does the same */
	CU_ASSERT_EQUAL(coalesce_selftest(four, 4, &p, &plan), 0);
	CU_ASSERT_EQUAL(plan.n_sub, 1);
	CU_ASSERT_EQUAL(sub_st(0)->flags, IOMMU_TEST_INVALIDATE_FLAG_ALL);
}

static void test_selftest_disabled_and_invalid(void)
{
	struct coalesce_params p = params(0, 0, 0);
	st_t in[2] = {{0, 1}, {0, 1}}, bad = {0, 4};

	p.enabled = false;
	CU_ASSERT_EQUAL(coalesce_selftest(in, 2, &p, &plan), 0);
	CU_ASSERT_EQUAL(plan.n_sub, 2);
	p.enabled = true;
	CU_ASSERT_EQUAL(coalesce_selftest(&bad, 1, &p, &plan), -EINVAL);
}

/* ---- property test ---- */

/* The test's own model: pages an entry asks for; false = everything. */
static int model_range(const vtd_t *e, uint64_t *s, uint64_t *end)
{
	uint64_t lim = 1ULL << 52;

	if (e->addr == 0 && e->npages == UINT64_MAX)
		return 0;
	*s = e->addr / PG;
	*end = e->npages > lim - *s ? lim : *s + e->npages;
	return !(*s == 0 && *end == lim);
}

/* Independent cost model: grow the aligned block until it holds the range. */
static uint64_t model_block(const vtd_t *e, uint32_t mm)
{
	uint64_t s, end;

	if (!mm || mm > 52)
		mm = 52;
	if (!model_range(e, &s, &end))
		return ALLP;
	if (s == end)
		return 0;
	for (uint32_t m = 0; m < 52; m++) {
		if ((s >> m) == ((end - 1) >> m))
			return m > mm ? ALLP : 1ULL << m;
	}
	return ALLP;
}

struct prop_stats {
	uint64_t batches, entries, submitted, flush_alls;
	double asked_pages, flushed_pages; /* batches without a flush-all */
	uint64_t tame_batches, tame_entries, tame_submitted;
	double tame_asked, tame_flushed;
};

static struct iv *iv_all, *iv_strong, *iv_run;
static int batch_tame; /* gen_batch made no huge / flush-all entries */
static vtd_t *pin;

static void gen_batch(vtd_t *in, uint32_t n)
{
	/* One address regime per batch, so that overlaps actually happen. */
	static const uint32_t windows[] = {4, 6, 10, 16, 24, 40, 52};
	uint32_t wbits = windows[rnd_below(7)];
	uint64_t base = rnd_below(1ULL << (52 - wbits)) << wbits;
	/* Most batches are tame; some carry huge, wrapping and flush-all. */
	uint64_t kinds = rnd_below(10) < 3 ? 1000 : 945;

	batch_tame = kinds < 1000;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t r = rnd_below(kinds), page, np;

		page = base + rnd_below(1ULL << wbits);
		if (r < 600)
			np = 1 + rnd_below(8);
		else if (r < 850)
			np = 1 + rnd_below(1ULL << (wbits > 20 ? 20 : wbits));
		else if (r < 930)
			np = 1ULL << rnd_below(wbits > 20 ? 21 : wbits + 1); /* pow2 sizes */
		else if (r < 945)
			np = 0;
		else if (r < 985)
			np = rnd() >> rnd_below(64); /* huge, may wrap */
		else if (r < 990)
			page = 0, np = UINT64_MAX; /* flush-all */
		else
			np = (1ULL << rnd_below(52)) - (page & 7); /* ends near a boundary */
		if (np == UINT64_MAX && page)
			np--;
		in[i] = V(page, np, rnd() & 1 ? LEAF : 0);
		CU_ASSERT_EQUAL_FATAL(inv_validate_vtd_entry(&in[i]), 0);
	}
}

static uint32_t gen_n(void)
{
	uint64_t r = rnd_below(100);

	if (r < 80)
		return 1 + rnd_below(16);
	if (r < 98)
		return 1 + rnd_below(256);
	return 1 + rnd_below(4096);
}

static struct coalesce_params gen_params(void)
{
	static const uint64_t slacks[] = {0, 0, 1, 4, 64, 4096};
	static const uint32_t masks[] = {0, 0, 9, 18, 30, 52, 60};
	struct coalesce_params p = {
	    .enabled = rnd_below(10) != 0,
	    .slack_pages = slacks[rnd_below(6)],
	    .vtd_max_mask = masks[rnd_below(7)],
	};
	uint64_t r = rnd_below(4);

	p.flush_all_pages = r < 2 ? 0 : r == 2 ? 1ULL << 20 : 1 + rnd_below(1ULL << 40);
	return p;
}

/* Checks one plan; returns 0 when every property holds. */
static int check_plan(const vtd_t *in, uint32_t n, const struct coalesce_params *p,
		      struct prop_stats *st)
{
	uint64_t cost = 0, asked = 0;
	size_t na = 0, ns = 0, nq;
	int bad = 0, all = 0;

	/* served-by and per-input coverage */
	for (uint32_t i = 0; i < n; i++) {
		uint64_t s, e, cur;
		size_t nr = 0;

		if (plan.first[i] > plan.last[i] || plan.last[i] >= plan.n_sub)
			return 1;
		if (!model_range(&in[i], &s, &e))
			s = 0, e = 1ULL << 52;
		for (uint32_t k = plan.first[i]; k <= plan.last[i]; k++) {
			const vtd_t *o = sub_vtd(k);
			struct iv v = {.strong = !(o->flags & LEAF)};

			if (!v.strong && !(in[i].flags & LEAF))
				continue; /* too weak to count for this input */
			if (!model_range(o, &v.s, &v.e))
				v.s = 0, v.e = 1ULL << 52;
			iv_run[nr++] = v;
		}
		nr = iv_merge(iv_run, nr);
		cur = s;
		for (size_t k = 0; k < nr && cur < e; k++)
			if (iv_run[k].s <= cur && iv_run[k].e > cur)
				cur = iv_run[k].e;
		if (cur < e)
			bad |= 2;
	}
	/* global coverage, and what each submitted entry costs */
	for (uint32_t k = 0; k < plan.n_sub; k++) {
		const vtd_t *o = sub_vtd(k);
		struct iv v = {.strong = !(o->flags & LEAF)};
		uint64_t c = model_block(o, p->vtd_max_mask);

		if (inv_validate_vtd_entry(o))
			bad |= 4;
		if (!model_range(o, &v.s, &v.e)) {
			v.s = 0, v.e = 1ULL << 52;
			all = 1;
		}
		/* never wrap past 2^64, never an empty entry when coalescing */
		if (o->npages != UINT64_MAX && o->npages > (1ULL << 52) - o->addr / PG)
			bad |= 8;
		if (p->enabled && !o->npages)
			bad |= 8;
		cost = c > UINT64_MAX - cost ? UINT64_MAX : cost + c;
		iv_all[na++] = v;
		if (v.strong)
			iv_strong[ns++] = v;
	}
	na = iv_merge(iv_all, na);
	ns = iv_merge(iv_strong, ns);
	for (uint32_t i = 0; i < n; i++) {
		uint64_t s, e;

		if (!model_range(&in[i], &s, &e))
			s = 0, e = 1ULL << 52;
		if (s == e)
			continue;
		if (!iv_covered((in[i].flags & LEAF) ? iv_all : iv_strong,
			     (in[i].flags & LEAF) ? na : ns, s, e))
			bad |= 16;
		pin[i] = in[i];
	}
	if (plan.pages_flushed != cost)
		bad |= 32;
	if (p->enabled && plan.n_sub > 2 * n)
		bad |= 64;
	if (p->enabled && p->flush_all_pages && plan.pages_flushed != ALLP &&
	    plan.pages_flushed > p->flush_all_pages)
		bad |= 128;

	/* figures: exact pages asked, from the union of the inputs */
	nq = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct iv v;

		if (!model_range(&in[i], &v.s, &v.e))
			all = 1;
		else if (v.s != v.e)
			iv_run[nq++] = v;
	}
	nq = iv_merge(iv_run, nq);
	for (size_t k = 0; k < nq; k++)
		asked += iv_run[k].e - iv_run[k].s;
	st->batches++;
	st->entries += n;
	st->submitted += plan.n_sub;
	if (batch_tame && p->enabled && plan.pages_flushed != ALLP) {
		st->tame_batches++;
		st->tame_entries += n;
		st->tame_submitted += plan.n_sub;
		st->tame_asked += (double)asked;
		st->tame_flushed += (double)plan.pages_flushed;
	}
	if (all || plan.pages_flushed == ALLP) {
		st->flush_alls++;
	} else {
		st->asked_pages += (double)asked;
		st->flushed_pages += (double)plan.pages_flushed;
	}
	return bad;
}

static uint64_t env_u64(const char *name, uint64_t def)
{
	const char *s = getenv(name);

	return s && *s ? strtoull(s, NULL, 0) : def;
}

static void test_property_vtd(void)
{
	uint64_t seed = env_u64("NESTD_SEED", (uint64_t)time(NULL));
	uint64_t batches = env_u64("NESTD_BATCHES", 100000);
	struct prop_stats st = {0};
	vtd_t *in = calloc(4096, sizeof(*in));

	iv_all = calloc(8193, sizeof(*iv_all));
	iv_strong = calloc(8193, sizeof(*iv_strong));
	iv_run = calloc(8193, sizeof(*iv_run));
	pin = calloc(4096, sizeof(*pin));
	CU_ASSERT_FATAL(in && iv_all && iv_strong && iv_run && pin);
	rng_seed(seed);
	for (uint64_t b = 0; b < batches; b++) {
		uint32_t n = gen_n();
		struct coalesce_params p = gen_params();
		int bad;

		gen_batch(in, n);
		if (coalesce_vtd(in, n, &p, &plan)) {
			CU_FAIL("coalesce_vtd failed");
			break;
		}
		bad = check_plan(in, n, &p, &st);
		if (bad) {
			printf("\nproperty violated (mask %#x) in batch %" PRIu64
			       " of seed %" PRIu64 " (NESTD_SEED=%" PRIu64 ")\n",
			       bad, b, seed, seed);
			CU_FAIL("coalescing property violated");
			break;
		}
	}
	printf("\n  vtd property: seed %" PRIu64 ", %" PRIu64 " batches, %" PRIu64
	       " entries, %" PRIu64 " submitted (%.3f per entry), %" PRIu64
	       " flush-all plans\n  over-invalidation outside flush-alls: %.4g"
	       " pages flushed for %.4g asked (%.3fx)\n",
	       seed, st.batches, st.entries, st.submitted,
	       st.entries ? (double)st.submitted / (double)st.entries : 0.0, st.flush_alls,
	       st.flushed_pages, st.asked_pages,
	       st.asked_pages ? st.flushed_pages / st.asked_pages : 0.0);
	printf("  tame batches (coalescing on, no flush-all): %" PRIu64 " batches, %" PRIu64
	       " entries, %.3f submitted per entry, %.3fx pages flushed per page asked\n",
	       st.tame_batches, st.tame_entries,
	       st.tame_entries ? (double)st.tame_submitted / (double)st.tame_entries : 0.0,
	       st.tame_asked ? st.tame_flushed / st.tame_asked : 0.0);
	free(in);
	free(iv_all);
	free(iv_strong);
	free(iv_run);
	free(pin);
}

static void test_property_selftest(void)
{
	uint64_t seed = env_u64("NESTD_SEED", (uint64_t)time(NULL)) ^ 0x5e1f;
	st_t in[64];

	rng_seed(seed);
	for (int b = 0; b < 20000; b++) {
		uint32_t n = 1 + rnd_below(64);
		struct coalesce_params p = params(0, 0, 0);
		int bad = 0;

		p.enabled = rnd_below(8) != 0;
		for (uint32_t i = 0; i < n; i++) {
			in[i].iotlb_id = rnd_below(4);
			in[i].flags = rnd_below(40) ? 0 : IOMMU_TEST_INVALIDATE_FLAG_ALL;
		}
		CU_ASSERT_EQUAL_FATAL(coalesce_selftest(in, n, &p, &plan), 0);
		if (plan.n_sub > (p.enabled ? 4 : n))
			bad = 1;
		for (uint32_t i = 0; i < n && !bad; i++) {
			int ok = 0;

			if (plan.first[i] > plan.last[i] || plan.last[i] >= plan.n_sub) {
				bad = 1;
				break;
			}
			for (uint32_t k = plan.first[i]; k <= plan.last[i]; k++) {
				const st_t *o = sub_st(k);

				if (inv_validate_selftest_entry(o))
					bad = 1;
				if ((o->flags & IOMMU_TEST_INVALIDATE_FLAG_ALL) ||
				    (!(in[i].flags & IOMMU_TEST_INVALIDATE_FLAG_ALL) &&
				     o->iotlb_id == in[i].iotlb_id))
					ok = 1;
			}
			bad |= !ok;
		}
		if (bad) {
			printf("\nselftest property violated, batch %d, NESTD_SEED=%" PRIu64 "\n",
			       b, seed ^ 0x5e1f);
			CU_FAIL("selftest coalescing property violated");
			break;
		}
	}
}

int main(void)
{
	static const struct unit_case tests[] = {
	    {"block pages", test_block_pages},
	    {"normalize", test_normalize},
	    {"identity when disabled", test_identity_when_disabled},
	    {"empty batch", test_empty_batch},
	    {"overlap merges", test_overlap_merges},
	    {"adjacent merges", test_adjacent_merges},
	    {"duplicates merge", test_duplicates_merge},
	    {"leaf + non-leaf = non-leaf", test_leaf_nonleaf_merge_is_nonleaf},
	    {"disjoint stay apart", test_disjoint_stay_apart},
	    {"slack merges small gaps", test_slack_merges_small_gap},
	    {"overlapping blocks merge", test_block_overlap_merges_without_slack},
	    {"merge refused when block grows", test_merge_refused_when_block_grows},
	    {"split at large boundary", test_split_at_large_boundary},
	    {"no split for small saving", test_no_split_for_small_saving},
	    {"slack discourages split", test_slack_discourages_split},
	    {"flush-all subsumes", test_flush_all_subsumes},
	    {"whole-space range is flush-all", test_whole_space_range_is_flush_all},
	    {"flush-all threshold", test_flush_all_threshold},
	    {"max mask", test_max_mask},
	    {"wrap clipped", test_wrap_clipped},
	    {"npages 0", test_npages_zero},
	    {"plan reuse", test_plan_reuse_shrinks},
	    {"selftest duplicates", test_selftest_duplicates},
	    {"selftest FLAG_ALL", test_selftest_flag_all},
	    {"selftest disabled/invalid", test_selftest_disabled_and_invalid},
	    {"property: vtd", test_property_vtd},
	    {"property: selftest", test_property_selftest},
	};
	int rc;

	coalesce_plan_init(&plan);
	rc = unit_run("coalesce", UNIT_CASES(tests));
	coalesce_plan_free(&plan);
	return rc;
}
