/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for the pure coalescers (coalesce_vtd, coalesce_selftest).
 *
 * The input is decoded into coalescing parameters and a batch of entries
 * that pass the daemon's validation (inv_validate_*_entry: the coalescer
 * only ever sees accepted entries), the coalescer runs, and its plan is
 * checked against an independent interval model of DESIGN.md section 3:
 *
 *   for every input entry i, sub[first[i] .. last[i]] covers every page of
 *   entry i with at least its strength (non-leaf needs a non-leaf covering;
 *   a flush-all, addr 0 npages U64_MAX, covers everything).
 *
 * Plus what the batch executor relies on: every submitted entry passes
 * the kernel's rules and its byte range addr + npages * 4 KiB - 1 does not
 * wrap past 2^64; first[i] <= last[i] < n_sub; n_sub <= 2n + 1 (the size
 * inv/batch.c lays out for a plan); the identity plan when coalescing is
 * off; the same plan from a fresh and from a reused (dirty) plan buffer;
 * pages_flushed equal to the cost model over the submitted entries.
 *
 * Input layout:
 *   byte 0  bit 0: selftest entries (else VT-d); bit 1: coalescing off;
 *           bit 2: normalise VT-d entries first (as inv/batch.c gather does)
 *   byte 1  slack_pages selector        byte 2  flush_all_pages selector
 *   byte 3  vtd_max_mask (raw; > 52 and 0 mean "no limit")
 *   then entries, see next_vtd() / next_selftest().
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inv/coalesce.h"
#include "inv/validate.h"
#include "backend/iommufd_uapi.h"

typedef struct iommu_hwpt_vtd_s1_invalidate vtd_t;
typedef struct iommu_hwpt_invalidate_selftest st_t;

#define MAX_ENTRIES 2048
#define PFN_LIMIT (1ULL << 52) /* pages in the 64-bit IOVA space */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond, ...)                                                              \
	do {                                                                          \
		if (!(cond)) {                                                        \
			fprintf(stderr, "fuzz_coalesce: invariant broken: %s\n  ", #cond); \
			fprintf(stderr, __VA_ARGS__);                                 \
			fprintf(stderr, "\n");                                        \
			dump_case();                                                  \
			abort();                                                      \
		}                                                                     \
	} while (0)

/* The case under test, for the report. */
static struct {
	bool selftest;
	struct coalesce_params p;
	uint32_t n;
	vtd_t vtd[MAX_ENTRIES];
	st_t st[MAX_ENTRIES];
} c;

static struct coalesce_plan reused; /* survives across inputs (dirty buffers) */
static struct coalesce_plan fresh;  /* reinitialised for every input */

static void dump_case(void)
{
	fprintf(stderr, "params: enabled %d slack %" PRIu64 " flush_all %" PRIu64 " max_mask %u\n",
		c.p.enabled, c.p.slack_pages, c.p.flush_all_pages, c.p.vtd_max_mask);
	for (uint32_t i = 0; i < c.n && i < 64; i++) {
		if (c.selftest)
			fprintf(stderr, "  in[%u] flags %#x iotlb_id %u\n", i, c.st[i].flags,
				c.st[i].iotlb_id);
		else
			fprintf(stderr, "  in[%u] addr %#" PRIx64 " npages %#" PRIx64 " flags %#x\n",
				i, (uint64_t)c.vtd[i].addr, (uint64_t)c.vtd[i].npages, c.vtd[i].flags);
	}
	for (uint32_t k = 0; k < reused.n_sub && k < 64; k++) {
		if (c.selftest) {
			const st_t *e = (const st_t *)reused.sub + k;

			fprintf(stderr, "  sub[%u] flags %#x iotlb_id %u\n", k, e->flags, e->iotlb_id);
		} else {
			const vtd_t *e = (const vtd_t *)reused.sub + k;

			fprintf(stderr, "  sub[%u] addr %#" PRIx64 " npages %#" PRIx64 " flags %#x\n",
				k, (uint64_t)e->addr, (uint64_t)e->npages, e->flags);
		}
	}
	for (uint32_t i = 0; i < c.n && i < 64 && reused.first; i++)
		fprintf(stderr, "  in[%u] served by sub[%u..%u]\n", i, reused.first[i],
			reused.last[i]);
}

static void cleanup(void)
{
	coalesce_plan_free(&reused);
	coalesce_plan_free(&fresh);
}

/* A little-endian byte reader that yields zeros past the end. */
struct rd {
	const uint8_t *p;
	size_t n;
};

static uint8_t u8(struct rd *r)
{
	if (!r->n)
		return 0;
	r->n--;
	return *r->p++;
}

static uint64_t uN(struct rd *r, unsigned bytes)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < bytes; i++)
		v |= (uint64_t)u8(r) << (8 * i);
	return v;
}

static uint64_t slack_of(uint8_t b)
{
	static const uint64_t t[8] = { 0, 1, 2, 16, 64, 4096, 1ULL << 40, UINT64_MAX };

	return b < 8 ? t[b] : (uint64_t)b * b;
}

static uint64_t flush_all_of(uint8_t b)
{
	static const uint64_t t[8] = { 0, 1, 64, 1u << 18, 1ULL << 30, 1ULL << 51, UINT64_MAX - 1,
				       UINT64_MAX };

	return b < 8 ? t[b] : (uint64_t)b << (b & 31);
}

/*
 * One VT-d entry from a control byte and its operands:
 *   bits 0-2 address: 0 page < 256; 1 next to the previous entry's end
 *            (+/- 127 pages); 2 any page (8 bytes); 3 the top of the space;
 *            4 page 2^k +/- small; 5 same address as the previous entry;
 *            6 address 0; 7 previous start + 2^k
 *   bits 3-5 npages: 0 < 256; 1 2^k - 1 .. 2^k + 1; 2 any (8 bytes);
 *            3 U64_MAX (flush-all when the address is 0, else address
 *            forced to 0); 4 0 (empty); 5 up to the end of the space
 *            (+/- small); 6 1; 7 2^k exactly
 *   bit 6    LEAF
 */
static vtd_t next_vtd(struct rd *r, const vtd_t *prev)
{
	uint8_t ctl = u8(r);
	uint64_t pfn = 0, np = 0, pstart = prev ? prev->addr >> 12 : 0;
	uint64_t pend = prev ? pstart + (prev->npages < PFN_LIMIT ? prev->npages : 0) : 0;
	vtd_t e = { 0 };
	uint8_t b;

	switch (ctl & 7) {
	case 0:
		pfn = u8(r);
		break;
	case 1:
		pfn = pend + (uint64_t)(int64_t)(int8_t)u8(r);
		break;
	case 2:
		pfn = uN(r, 8);
		break;
	case 3:
		pfn = PFN_LIMIT - 1 - u8(r);
		break;
	case 4:
		b = u8(r);
		pfn = (1ULL << (b % 52)) + (uint64_t)(int64_t)(int8_t)u8(r);
		break;
	case 5:
		pfn = pstart;
		break;
	case 6:
		pfn = 0;
		break;
	case 7:
		pfn = pstart + (1ULL << (u8(r) % 52));
		break;
	}
	pfn &= PFN_LIMIT - 1; /* a 4 KiB aligned 64-bit address */
	switch ((ctl >> 3) & 7) {
	case 0:
		np = u8(r);
		break;
	case 1:
		b = u8(r);
		np = (1ULL << (b % 64)) + (uint64_t)((b >> 6) % 3) - 1;
		break;
	case 2:
		np = uN(r, 8);
		break;
	case 3:
		np = UINT64_MAX;
		break;
	case 4:
		np = 0;
		break;
	case 5:
		np = PFN_LIMIT - pfn + (uint64_t)(int64_t)(int8_t)u8(r);
		break;
	case 6:
		np = 1;
		break;
	case 7:
		np = 1ULL << (u8(r) % 64);
		break;
	}
	if (np == UINT64_MAX)
		pfn = 0; /* npages U64_MAX with addr != 0 is -EINVAL: never accepted */
	e.addr = pfn << 12;
	e.npages = np;
	e.flags = ctl & 0x40 ? IOMMU_VTD_INV_FLAGS_LEAF : 0;
	return e;
}

/* bits 0-1 iotlb_id, bit 2 FLAG_ALL: every such entry passes validation. */
static st_t next_selftest(struct rd *r)
{
	uint8_t ctl = u8(r);

	return (st_t){ .flags = (ctl >> 2) & IOMMU_TEST_INVALIDATE_FLAG_ALL, .iotlb_id = ctl & 3 };
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static bool vtd_is_flush_all(const vtd_t *e)
{
	return e->addr == 0 && e->npages == UINT64_MAX;
}

/*
 * Pages [*s, *e) an accepted input entry asks for: from addr, npages long,
 * clipped at the end of the 64-bit space (DESIGN.md: never wrapped). Returns
 * false for "everything".
 */
static bool vtd_input_range(const vtd_t *v, uint64_t *s, uint64_t *e)
{
	if (vtd_is_flush_all(v))
		return false;
	*s = v->addr >> 12;
	*e = v->npages > PFN_LIMIT - *s ? PFN_LIMIT : *s + v->npages;
	return true;
}

struct ival {
	uint64_t s, e;
};

static int cmp_ival(const void *a, const void *b)
{
	const struct ival *x = a, *y = b;

	return x->s < y->s ? -1 : x->s > y->s;
}

static struct ival ivals[2 * MAX_ENTRIES + 2];

/*
 * What the kernel does with one submitted entry (intel/nested.c): npages
 * U64_MAX is a flush of everything (leaf or not); anything else flushes
 * bytes [addr, addr + npages * 4 KiB - 1], which must not wrap.
 */
static void check_vtd_sub(uint32_t k, const vtd_t *e)
{
	CHECK(inv_validate_vtd_entry(e) == 0, "sub[%u] fails the kernel's entry rules", k);
	if (vtd_is_flush_all(e) || e->npages == 0)
		return;
	CHECK(e->npages < PFN_LIMIT && (e->addr >> 12) <= PFN_LIMIT - e->npages,
	      "sub[%u] addr %#" PRIx64 " npages %#" PRIx64 " wraps past 2^64 in the kernel", k,
	      (uint64_t)e->addr, (uint64_t)e->npages);
}

static void check_vtd_plan(const vtd_t *in, uint32_t n, const struct coalesce_plan *pl)
{
	const vtd_t *sub = pl->sub;
	uint64_t cost = 0;

	for (uint32_t k = 0; k < pl->n_sub; k++) {
		uint64_t one = vtd_block_pages(sub[k].addr, sub[k].npages, c.p.vtd_max_mask);

		check_vtd_sub(k, &sub[k]);
		/* The per-entry pages the batch accounting takes from the plan. */
		CHECK(pl->pages[k] == one,
		      "plan entry %u: pages %" PRIu64 " but its cost is %" PRIu64, k, pl->pages[k],
		      one);
		cost = sat_add(cost, one);
	}
	if (c.p.enabled) {
		CHECK(pl->pages_flushed == cost,
		      "pages_flushed %" PRIu64 " but the submitted entries cost %" PRIu64,
		      pl->pages_flushed, cost);
		if (c.p.flush_all_pages && pl->pages_flushed > c.p.flush_all_pages)
			CHECK(pl->n_sub == 1 && vtd_is_flush_all(&sub[0]),
			      "plan costs %" PRIu64 " > flush_all_pages but is no flush-all",
			      pl->pages_flushed);
	}

	for (uint32_t i = 0; i < n; i++) {
		bool need_nonleaf = !(in[i].flags & IOMMU_VTD_INV_FLAGS_LEAF);
		uint64_t s = 0, e = PFN_LIMIT, cur;
		uint32_t ni = 0;

		CHECK(pl->first[i] <= pl->last[i] && pl->last[i] < pl->n_sub,
		      "in[%u] served by sub[%u..%u] of %u", i, pl->first[i], pl->last[i], pl->n_sub);
		if (vtd_input_range(&in[i], &s, &e) && s == e)
			continue; /* npages 0 asks for nothing */
		for (uint32_t k = pl->first[i]; k <= pl->last[i]; k++) {
			if (vtd_is_flush_all(&sub[k])) {
				ivals[ni++] = (struct ival){ 0, PFN_LIMIT };
				continue;
			}
			if (need_nonleaf && (sub[k].flags & IOMMU_VTD_INV_FLAGS_LEAF))
				continue;
			if (!sub[k].npages)
				continue;
			ivals[ni].s = sub[k].addr >> 12;
			ivals[ni].e = ivals[ni].s + sub[k].npages; /* no wrap: checked */
			ni++;
		}
		qsort(ivals, ni, sizeof(ivals[0]), cmp_ival);
		cur = s;
		for (uint32_t j = 0; j < ni && cur < e; j++)
			if (ivals[j].s <= cur && ivals[j].e > cur)
				cur = ivals[j].e;
		CHECK(cur >= e,
		      "in[%u] (%s) pages [%#" PRIx64 ", %#" PRIx64 ") not covered from page %#" PRIx64,
		      i, need_nonleaf ? "non-leaf" : "leaf", s, e, cur);
	}
}

static void check_selftest_plan(const st_t *in, uint32_t n, const struct coalesce_plan *pl)
{
	const st_t *sub = pl->sub;

	for (uint32_t k = 0; k < pl->n_sub; k++)
		CHECK(inv_validate_selftest_entry(&sub[k]) == 0,
		      "sub[%u] fails the mock's entry rules", k);
	if (c.p.enabled)
		CHECK(pl->n_sub <= MOCK_NESTED_DOMAIN_IOTLB_NUM, "%u entries for 4 slots", pl->n_sub);
	for (uint32_t i = 0; i < n; i++) {
		bool all = in[i].flags & IOMMU_TEST_INVALIDATE_FLAG_ALL, ok = false;

		CHECK(pl->first[i] <= pl->last[i] && pl->last[i] < pl->n_sub,
		      "in[%u] served by sub[%u..%u] of %u", i, pl->first[i], pl->last[i], pl->n_sub);
		for (uint32_t k = pl->first[i]; k <= pl->last[i] && !ok; k++)
			ok = (sub[k].flags & IOMMU_TEST_INVALIDATE_FLAG_ALL) ||
			     (!all && sub[k].iotlb_id == in[i].iotlb_id);
		CHECK(ok, "in[%u] (slot %u%s) not covered", i, in[i].iotlb_id, all ? ", ALL" : "");
	}
}

static int run(const void *in, uint32_t n, struct coalesce_plan *pl)
{
	return c.selftest ? coalesce_selftest(in, n, &c.p, pl) : coalesce_vtd(in, n, &c.p, pl);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;
	struct rd r = { data, size };
	size_t esz;
	const void *in;
	uint8_t mode;
	int rc, rc2;

	if (!init) {
		init = true;
		coalesce_plan_init(&reused);
		atexit(cleanup);
	}
	if (size < 4)
		return -1; /* not a useful input: keep it out of the corpus */
	mode = u8(&r);
	c.selftest = mode & 1;
	c.p.enabled = !(mode & 2);
	c.p.slack_pages = slack_of(u8(&r));
	c.p.flush_all_pages = flush_all_of(u8(&r));
	c.p.vtd_max_mask = u8(&r);
	c.n = 0;
	while (r.n && c.n < MAX_ENTRIES) {
		if (c.selftest) {
			c.st[c.n] = next_selftest(&r);
			CHECK(inv_validate_selftest_entry(&c.st[c.n]) == 0, "harness bug");
		} else {
			c.vtd[c.n] = next_vtd(&r, c.n ? &c.vtd[c.n - 1] : NULL);
			if (mode & 4)
				vtd_entry_normalize(&c.vtd[c.n]);
			CHECK(inv_validate_vtd_entry(&c.vtd[c.n]) == 0, "harness bug");
		}
		c.n++;
	}
	in = c.selftest ? (const void *)c.st : (const void *)c.vtd;
	esz = c.selftest ? sizeof(st_t) : sizeof(vtd_t);

	rc = run(in, c.n, &reused);
	coalesce_plan_init(&fresh);
	rc2 = run(in, c.n, &fresh);
	CHECK(rc == 0, "coalescer failed (%d) on %u accepted entries", rc, c.n);
	CHECK(rc2 == 0, "coalescer failed (%d) with a fresh plan", rc2);

	CHECK(!c.n || reused.n_sub >= 1, "no submitted entry for %u inputs", c.n);
	CHECK(reused.n_sub <= 2 * c.n + 1, "%u submitted entries for %u inputs", reused.n_sub, c.n);
	CHECK(fresh.n_sub == reused.n_sub && fresh.pages_flushed == reused.pages_flushed &&
		      (!reused.n_sub || !memcmp(fresh.sub, reused.sub, reused.n_sub * esz)) &&
		      (!c.n || (!memcmp(fresh.first, reused.first, c.n * sizeof(uint32_t)) &&
				!memcmp(fresh.last, reused.last, c.n * sizeof(uint32_t)))),
	      "a reused plan buffer gives another plan than a fresh one");
	coalesce_plan_free(&fresh);

	if (!c.p.enabled) {
		CHECK(reused.n_sub == c.n, "identity plan of %u entries for %u", reused.n_sub, c.n);
		for (uint32_t i = 0; i < c.n; i++)
			CHECK(reused.first[i] == i && reused.last[i] == i, "identity plan maps in[%u]", i);
	}
	if (c.selftest)
		check_selftest_plan(in, c.n, &reused);
	else
		check_vtd_plan(in, c.n, &reused);
	return 0;
}
