/* SPDX-License-Identifier: MIT */
/*
 * Coalescing of VT-d stage-1 invalidations.
 *
 * Cost model (drivers/iommu/intel/cache.c, calculate_psi_aligned_address):
 * one submitted range [s, e) flushes the smallest naturally aligned block
 * of 2^m pages that holds it; with m above the hardware's largest address
 * mask (or m >= 52) that is a flush of the whole domain, which we count as
 * VTD_PAGES_ALL. pages_flushed is the sum over submitted entries,
 * saturating at VTD_PAGES_ALL.
 *
 * The plan is built in four passes over the sorted inputs:
 *
 *  1. union: overlapping and adjacent ranges always merge (one submission
 *     instead of two, and the union is exactly what was asked for). The
 *     merge is leaf only if every input in it is leaf.
 *  2. shape: a range may go out as one entry or as two, split at the
 *     largest alignment boundary it straddles. After that split each piece
 *     costs at most twice its size, so one level bounds the waste at 2x.
 *     We split when that at least halves the modelled pages and saves more
 *     than slack_pages of them.
 *  3. gaps: neighbouring ranges merge across a gap when the merged shape
 *     scores no worse, scoring a shape as pages + slack_pages per entry
 *     (slack_pages is the page cost we pay to save one submission), and
 *     either the gap is at most slack_pages or the merge adds no modelled
 *     pages at all (their aligned blocks already overlap).
 *  4. flush-all: a flush-all input, a range whose best shape is already
 *     the whole space, or a total above flush_all_pages (when non-zero)
 *     turns the plan into a single non-leaf flush-all entry.
 *
 * Entries with npages == 0 are accepted by the kernel, which then works on
 * the range addr..addr-1. They ask for nothing, so they are never
 * submitted as such: they are served by the plan's first entry, or, in a
 * batch with nothing else, by a one-page leaf flush at their address
 * (something real must be acknowledged before we call them done).
 *
 * Ranges whose end would pass 2^64 are clipped at the end of the address
 * space (never wrapped, which would under-invalidate); a range from 0 to
 * the end is a flush-all.
 *
 * Output entries are in address order; each input's pieces are adjacent,
 * so first[i]..last[i] is a contiguous run of entries.
 */
#include "inv/coalesce.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backend/iommufd_uapi.h"
#include "util/common.h"

/* One non-empty input range, pages [start, end). */
struct vrec {
	uint64_t start;
	uint64_t end;
	uint32_t idx;  /* input index */
	uint32_t leaf; /* IOMMU_VTD_INV_FLAGS_LEAF asked for */
};

/* A range that goes out as one entry, or two split at ->split. */
struct vshape {
	uint64_t start;
	uint64_t end;
	uint64_t split;	  /* 0: one entry */
	uint64_t pages;	  /* modelled pages of this shape */
	uint64_t score;	  /* pages + slack per entry */
	uint32_t rec_end; /* groups only: one past the last vrec in it */
};

/* Picks one entry or a split at the largest boundary in [s, e). */
static void vtd_shape(struct vshape *sh, uint64_t s, uint64_t e, uint32_t mm, uint64_t slack)
{
	uint64_t x = s ^ (e - 1);

	sh->start = s;
	sh->end = e;
	sh->split = 0;
	sh->pages = vtd_block_pages_of(s, e, mm);
	sh->score = sat_add(sh->pages, slack);
	if (x) {
		/* s has a 0 and e - 1 a 1 at the top differing bit. */
		uint64_t b = (e - 1) & ~((1ULL << (63 - __builtin_clzll(x))) - 1);
		uint64_t two = sat_add(vtd_block_pages_of(s, b, mm), vtd_block_pages_of(b, e, mm));
		uint64_t score = sat_add(sat_add(two, slack), slack);

		/*
		 * Only a boundary that at least halves the flush is worth a
		 * second entry (a "large" one), and only when it saves more
		 * than the slack we would pay to save a submission.
		 */
		if (score < sh->score && two <= sh->pages / 2) {
			sh->split = b;
			sh->pages = two;
			sh->score = score;
		}
	}
}

/*
 * Sorting by start page. The ranges arrive in input order, so a stable
 * sort keeps equal starts in input order. It is the hottest step of the
 * daemon (a profile of scattered 256-entry batches had glibc's qsort and
 * its comparison callback at 40% of the daemon's CPU, and a merge sort
 * still 28% of it), hence: no sort at all for already ordered input
 * (sequential unmaps), insertion sort for a handful, and otherwise an LSD
 * radix sort over just the bits in which the starts differ (a guest's
 * flush queue spans a window of a few GiB: 2 passes of 9-11 bits) -
 * stable, O(n) per pass, no comparisons, no allocation.
 */
#define SORT_SMALL     24
#define RADIX_MAX_BITS 11

static bool recs_sorted(const struct vrec *r, uint32_t nr)
{
	for (uint32_t i = 1; i < nr; i++)
		if (r[i].start < r[i - 1].start)
			return false;
	return true;
}

static void insertion_sort(struct vrec *r, uint32_t nr)
{
	for (uint32_t i = 1; i < nr; i++) {
		struct vrec v = r[i];
		uint32_t j = i;

		for (; j > 0 && r[j - 1].start > v.start; j--)
			r[j] = r[j - 1];
		r[j] = v;
	}
}

/* One stable counting pass on digit (start - lo) >> shift & mask, src to dst. */
static void radix_pass(const struct vrec *src, struct vrec *dst, uint32_t nr, uint64_t lo,
		       uint32_t shift, uint32_t mask, uint32_t *count)
{
	uint32_t sum = 0;

	memset(count, 0, ((size_t)mask + 1) * sizeof(*count));
	for (uint32_t i = 0; i < nr; i++)
		count[((src[i].start - lo) >> shift) & mask]++;
	for (uint32_t d = 0; d <= mask; d++) {
		uint32_t c = count[d];

		count[d] = sum;
		sum += c;
	}
	for (uint32_t i = 0; i < nr; i++)
		dst[count[((src[i].start - lo) >> shift) & mask]++] = src[i];
}

/* Sorts recs by start, stably; tmp has room for nr records. */
static void sort_recs(struct vrec *recs, uint32_t nr, struct vrec *tmp)
{
	uint32_t count[1u << RADIX_MAX_BITS];
	struct vrec *src = recs, *dst = tmp, *t;
	uint64_t lo = UINT64_MAX, hi = 0;
	uint32_t bits, passes, width;

	if (recs_sorted(recs, nr))
		return;
	if (nr <= SORT_SMALL) {
		insertion_sort(recs, nr);
		return;
	}
	for (uint32_t i = 0; i < nr; i++) {
		lo = recs[i].start < lo ? recs[i].start : lo;
		hi = recs[i].start > hi ? recs[i].start : hi;
	}
	/* Not sorted, so hi > lo: at least one bit differs. */
	bits = 64 - (uint32_t)__builtin_clzll(hi - lo);
	passes = (bits + RADIX_MAX_BITS - 1) / RADIX_MAX_BITS;
	width = (bits + passes - 1) / passes;
	for (uint32_t p = 0; p < passes; p++) {
		radix_pass(src, dst, nr, lo, p * width, (1u << width) - 1, count);
		t = src;
		src = dst;
		dst = t;
	}
	if (src != recs)
		memcpy(recs, src, (size_t)nr * sizeof(*recs));
}

static void put_entry(struct coalesce_plan *plan, uint32_t k, uint64_t addr, uint64_t npages,
		      bool leaf)
{
	struct iommu_hwpt_vtd_s1_invalidate e = {
	    .addr = addr,
	    .npages = npages,
	    .flags = leaf ? IOMMU_VTD_INV_FLAGS_LEAF : 0,
	};

	memcpy((uint8_t *)plan->sub + (size_t)k * sizeof(e), &e, sizeof(e));
}

static int plan_flush_all(uint32_t n, struct coalesce_plan *plan)
{
	int rc = coalesce_plan_reserve(plan, n, 1, sizeof(struct iommu_hwpt_vtd_s1_invalidate));

	if (rc)
		return rc;
	/* Non-leaf: the strongest request, it subsumes every input. */
	put_entry(plan, 0, 0, UINT64_MAX, false);
	for (uint32_t i = 0; i < n; i++)
		plan->first[i] = plan->last[i] = 0;
	plan->n_sub = 1;
	plan->pages_flushed = VTD_PAGES_ALL;
	return 0;
}

static int plan_identity(const void *in, uint32_t n, uint32_t mm, struct coalesce_plan *plan)
{
	size_t esz = sizeof(struct iommu_hwpt_vtd_s1_invalidate);
	int rc = coalesce_identity(in, n, esz, plan);

	if (rc)
		return rc;
	for (uint32_t k = 0; k < n; k++) {
		struct iommu_hwpt_vtd_s1_invalidate e;
		uint8_t *p = (uint8_t *)plan->sub + k * esz;

		vtd_entry_normalize(p);
		memcpy(&e, p, esz);
		plan->pages_flushed =
		    sat_add(plan->pages_flushed, vtd_block_pages(e.addr, e.npages, mm));
	}
	return 0;
}

/*
 * Pass 1: collects the non-empty ranges. Returns the count, or UINT32_MAX
 * when an input flushes everything. *empty gets the first empty input.
 */
static uint32_t collect(const void *in, uint32_t n, struct vrec *recs, uint32_t *empty)
{
	const struct iommu_hwpt_vtd_s1_invalidate *e = in;
	uint32_t nr = 0;

	*empty = UINT32_MAX;
	for (uint32_t i = 0; i < n; i++) {
		struct iommu_hwpt_vtd_s1_invalidate v;
		uint64_t s, end;

		memcpy(&v, &e[i], sizeof(v));
		if (!vtd_entry_range(&v, &s, &end))
			return UINT32_MAX;
		if (s == end) {
			if (*empty == UINT32_MAX)
				*empty = i;
			continue;
		}
		recs[nr].start = s;
		recs[nr].end = end;
		recs[nr].idx = i;
		recs[nr].leaf = !!(v.flags & IOMMU_VTD_INV_FLAGS_LEAF);
		nr++;
	}
	return nr;
}

/* Passes 2 and 3: does segment seg join group *g, given the gap rule? */
static bool merge_ok(const struct vshape *g, const struct vshape *seg, const struct vshape *m,
		     uint64_t slack)
{
	uint64_t gap = seg->start - g->end;

	if (m->pages == VTD_PAGES_ALL)
		return false;
	if (m->score > sat_add(g->score, seg->score))
		return false;
	return gap <= slack || m->pages <= sat_add(g->pages, seg->pages);
}

/*
 * Passes 1-3 over sorted recs: writes groups, returns their number, or
 * UINT32_MAX when some range alone costs the whole space.
 */
static uint32_t group(const struct vrec *recs, uint32_t nr, struct vshape *groups, uint32_t mm,
		      uint64_t slack)
{
	struct vshape g, seg, m;
	uint32_t ng = 0, i = 0;
	bool have = false;

	while (i < nr) {
		uint64_t s = recs[i].start, e = recs[i].end;

		/* Pass 1: the union segment starting at recs[i]. */
		for (i++; i < nr && recs[i].start <= e; i++)
			if (recs[i].end > e)
				e = recs[i].end;
		vtd_shape(&seg, s, e, mm, slack);
		seg.rec_end = i;
		if (seg.pages == VTD_PAGES_ALL)
			return UINT32_MAX;
		/*
		 * A merged shape covers its span, so with a gap above the slack
		 * and a span above both shapes' pages merge_ok() must refuse:
		 * scattered ranges skip shaping a merge they would not take.
		 */
		if (have && seg.start - g.end > slack &&
		    seg.end - g.start > sat_add(g.pages, seg.pages)) {
			groups[ng++] = g;
			g = seg;
			continue;
		}
		if (have) {
			vtd_shape(&m, g.start, seg.end, mm, slack);
			if (merge_ok(&g, &seg, &m, slack)) {
				m.rec_end = i;
				g = m;
				continue;
			}
			groups[ng++] = g;
		}
		g = seg;
		have = true;
	}
	if (have)
		groups[ng++] = g;
	return ng;
}

/* Writes the entries of one group and the served-by run of its inputs. */
static uint32_t emit_group(const struct vshape *g, const struct vrec *recs, uint32_t rb, uint32_t k,
			   struct coalesce_plan *plan)
{
	uint32_t kl = k, kr = g->split ? k + 1 : k;
	bool leaf_l = true, leaf_r = true;

	for (uint32_t r = rb; r < g->rec_end; r++) {
		const struct vrec *v = &recs[r];
		bool in_l = !g->split || v->start < g->split;
		bool in_r = g->split && v->end > g->split;

		if (in_l)
			leaf_l &= v->leaf;
		if (in_r)
			leaf_r &= v->leaf;
		plan->first[v->idx] = in_l ? kl : kr;
		plan->last[v->idx] = in_r ? kr : kl;
	}
	if (!g->split) {
		put_entry(plan, k, g->start << VTD_PAGE_SHIFT, g->end - g->start, leaf_l);
		return 1;
	}
	put_entry(plan, kl, g->start << VTD_PAGE_SHIFT, g->split - g->start, leaf_l);
	put_entry(plan, kr, g->split << VTD_PAGE_SHIFT, g->end - g->split, leaf_r);
	return 2;
}

int coalesce_vtd(const void *in, uint32_t n, const struct coalesce_params *p,
		 struct coalesce_plan *plan)
{
	size_t esz = sizeof(struct iommu_hwpt_vtd_s1_invalidate);
	uint32_t mm = vtd_effective_max_mask(p->vtd_max_mask);
	uint32_t nr, ng, empty, k = 0, rb = 0;
	uint64_t total = 0;
	struct vshape *groups;
	struct vrec *recs;
	int rc;

	if (!p->enabled)
		return plan_identity(in, n, mm, plan);
	plan->n_sub = 0;
	plan->pages_flushed = 0;
	if (!n)
		return 0;
	/* Up to two entries per input must stay countable in 32 bits. */
	if (n > UINT32_MAX / 2)
		return -E2BIG;
	/*
	 * Scratch: the records, then the groups, whose room (larger than the
	 * records') doubles as the merge sort's buffer.
	 */
	_Static_assert(sizeof(struct vshape) >= sizeof(struct vrec), "sort buffer fits");
	rc = coalesce_plan_scratch(plan, (size_t)n * (sizeof(*recs) + sizeof(*groups)));
	if (rc)
		return rc;
	recs = plan->scratch;
	groups = (struct vshape *)(recs + n);

	nr = collect(in, n, recs, &empty);
	if (nr == UINT32_MAX)
		return plan_flush_all(n, plan);
	sort_recs(recs, nr, (struct vrec *)groups);
	ng = group(recs, nr, groups, mm, p->slack_pages);
	if (ng == UINT32_MAX)
		return plan_flush_all(n, plan);
	for (uint32_t g = 0; g < ng; g++)
		total = sat_add(total, groups[g].pages);
	if (p->flush_all_pages && total > p->flush_all_pages)
		return plan_flush_all(n, plan);

	rc = coalesce_plan_reserve(plan, n, 2 * ng + 1, esz);
	if (rc)
		return rc;
	for (uint32_t g = 0; g < ng; g++) {
		k += emit_group(&groups[g], recs, rb, k, plan);
		rb = groups[g].rec_end;
	}
	if (empty != UINT32_MAX) {
		const struct iommu_hwpt_vtd_s1_invalidate *e = in;

		if (!k) {
			put_entry(plan, 0, e[empty].addr, 1, true);
			k = 1;
			total = 1;
		}
		for (uint32_t i = 0; i < n; i++) {
			struct iommu_hwpt_vtd_s1_invalidate v;
			uint64_t s, end;

			memcpy(&v, &e[i], sizeof(v));
			if (vtd_entry_range(&v, &s, &end) && s == end)
				plan->first[i] = plan->last[i] = 0;
		}
	}
	plan->n_sub = k;
	plan->pages_flushed = total;
	return 0;
}
