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
	uint64_t split; /* 0: one entry */
	uint64_t pages; /* modelled pages of this shape */
};

/*
 * Picks one entry or a split at the largest boundary in [s, e). Inline and
 * returned by value: it runs once or twice per segment, and a shape written
 * to memory field by field and read back whole stalls on store forwarding.
 */
static inline __attribute__((always_inline)) struct vshape vtd_shape(uint64_t s, uint64_t e,
								     uint32_t mm, uint64_t slack)
{
	uint64_t x = s ^ (e - 1);
	struct vshape sh = {.start = s, .end = e, .pages = vtd_block_pages_of(s, e, mm)};

	if (x) {
		/* s has a 0 and e - 1 a 1 at the top differing bit. */
		uint64_t b = (e - 1) & ~((1ULL << (63 - __builtin_clzll(x))) - 1);
		/* Either half, or the whole, may cost VTD_PAGES_ALL: saturate. */
		uint64_t two = sat_add(vtd_block_pages_of(s, b, mm), vtd_block_pages_of(b, e, mm));

		/*
		 * Only a boundary that at least halves the flush is worth a
		 * second entry (a "large" one), and only when it saves more
		 * than the slack we would pay to save a submission.
		 */
		if (sat_add(sat_add(two, slack), slack) < sat_add(sh.pages, slack) &&
		    two <= sh.pages / 2) {
			sh.split = b;
			sh.pages = two;
		}
	}
	return sh;
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
 * stable, O(n) per pass, no comparisons, no allocation - of 8-byte keys
 * when start and position fit in one (sort_by_keys()).
 */
#define SORT_SMALL     24
#define RADIX_MAX_BITS 11
/* Counters of all passes of one sort: at most 6 passes of 2^11 (64 bits). */
#define RADIX_COUNTS (((64 + RADIX_MAX_BITS - 1) / RADIX_MAX_BITS) << RADIX_MAX_BITS)

/* The starts of the records: their bounds, and whether they came in order. */
struct vspan {
	uint64_t lo, hi;
	bool sorted;
};

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

/*
 * The digits of a sort over the bits lo..lo + bits of its keys: as few
 * passes as RADIX_MAX_BITS allows, of equal width.
 */
struct radix_plan {
	uint32_t passes, width, mask;
};

static struct radix_plan radix_plan(uint32_t bits)
{
	struct radix_plan rp;

	rp.passes = (bits + RADIX_MAX_BITS - 1) / RADIX_MAX_BITS;
	rp.width = (bits + rp.passes - 1) / rp.passes;
	rp.mask = (1u << rp.width) - 1;
	return rp;
}

/* Exclusive prefix sums: count[d] becomes where digit d's run starts. */
static void radix_offsets(uint32_t *count, uint32_t mask)
{
	uint32_t sum = 0;

	for (uint32_t d = 0; d <= mask; d++) {
		uint32_t c = count[d];

		count[d] = sum;
		sum += c;
	}
}

/*
 * The fast sort: 8-byte keys (start - lo) << ib | i, whose low ib bits are
 * the record's position, so the keys are distinct and their order is the
 * stable order. Keys move instead of 24-byte records, every pass's
 * histogram comes from the one pass that builds them, and the last pass
 * fetches each record by its position into out, so that every sort leaves
 * the records themselves in order and the walk has one way to read them.
 */
static void sort_by_keys(const struct vrec *recs, uint32_t nr, uint64_t lo, uint32_t sbits,
			 uint32_t ib, uint64_t *keys, struct vrec *out)
{
	uint32_t count[RADIX_COUNTS];
	struct radix_plan rp = radix_plan(sbits);
	uint32_t stride = rp.mask + 1;
	uint64_t *src = keys, *dst = keys + nr, *t;
	uint64_t imask = (1ULL << ib) - 1;

	memset(count, 0, (size_t)rp.passes * stride * sizeof(count[0]));
	for (uint32_t i = 0; i < nr; i++) {
		uint64_t k = ((recs[i].start - lo) << ib) | i;

		src[i] = k;
		/* The usual case (a window of up to 2^22 pages), unrolled. */
		if (rp.passes == 2) {
			count[(k >> ib) & rp.mask]++;
			count[stride + ((k >> (ib + rp.width)) & rp.mask)]++;
		} else {
			for (uint32_t p = 0; p < rp.passes; p++)
				count[p * stride + ((k >> (ib + p * rp.width)) & rp.mask)]++;
		}
	}
	for (uint32_t p = 0; p + 1 < rp.passes; p++) {
		uint32_t *c = count + p * stride, shift = ib + p * rp.width;

		radix_offsets(c, rp.mask);
		for (uint32_t i = 0; i < nr; i++)
			dst[c[(src[i] >> shift) & rp.mask]++] = src[i];
		t = src;
		src = dst;
		dst = t;
	}
	{
		uint32_t *c = count + (rp.passes - 1) * stride;
		uint32_t shift = ib + (rp.passes - 1) * rp.width;

		radix_offsets(c, rp.mask);
		for (uint32_t i = 0; i < nr; i++)
			out[c[(src[i] >> shift) & rp.mask]++] = recs[src[i] & imask];
	}
}

/* One stable counting pass of whole records on digit (start - lo) >> shift & mask. */
static void radix_pass(const struct vrec *src, struct vrec *dst, uint32_t nr, uint64_t lo,
		       uint32_t shift, uint32_t mask, uint32_t *count)
{
	memset(count, 0, ((size_t)mask + 1) * sizeof(*count));
	for (uint32_t i = 0; i < nr; i++)
		count[((src[i].start - lo) >> shift) & mask]++;
	radix_offsets(count, mask);
	for (uint32_t i = 0; i < nr; i++)
		dst[count[((src[i].start - lo) >> shift) & mask]++] = src[i];
}

/*
 * Orders recs by start, stably, and returns the records in that order:
 * recs itself, or tmp. span is what collect() saw of the starts. tmp has
 * room for nr records, keys for 2 * nr.
 */
static const struct vrec *sort_recs(struct vrec *recs, uint32_t nr, const struct vspan *span,
				    struct vrec *tmp, uint64_t *keys)
{
	uint32_t count[1u << RADIX_MAX_BITS];
	struct vrec *src = recs, *dst = tmp, *t;
	uint64_t lo = span->lo, hi = span->hi;
	uint32_t sbits, ib;
	struct radix_plan rp;

	if (span->sorted)
		return recs;
	if (nr <= SORT_SMALL) {
		insertion_sort(recs, nr);
		return recs;
	}
	/* Not sorted, so hi > lo: at least one bit differs; nr > 1 likewise. */
	sbits = 64 - (uint32_t)__builtin_clzll(hi - lo);
	ib = 32 - (uint32_t)__builtin_clz(nr - 1);
	if (sbits + ib <= 64) {
		sort_by_keys(recs, nr, lo, sbits, ib, keys, tmp);
		return tmp;
	}
	/* Starts too far apart for a key: whole records, pass by pass. */
	rp = radix_plan(sbits);
	for (uint32_t p = 0; p < rp.passes; p++) {
		radix_pass(src, dst, nr, lo, p * rp.width, rp.mask, count);
		t = src;
		src = dst;
		dst = t;
	}
	return src;
}

/*
 * Where the coalescer writes: the plan's arrays, loaded once (restrict: its
 * stores cannot reach them, so the walk keeps them in registers).
 */
struct vout {
	struct iommu_hwpt_vtd_s1_invalidate *restrict sub;
	uint64_t *restrict pages;
	uint32_t *restrict first, *restrict last;
};

static inline struct vout vout_of(struct coalesce_plan *plan)
{
	return (struct vout){
	    .sub = plan->sub, .pages = plan->pages, .first = plan->first, .last = plan->last};
}

/*
 * Entry k of the plan and its modelled pages, stored field by field: a
 * temporary copied whole would be read back wider than it was written.
 */
static inline void put_entry(struct vout o, uint32_t k, uint64_t addr, uint64_t npages, bool leaf,
			     uint64_t pages)
{
	struct iommu_hwpt_vtd_s1_invalidate *e = o.sub + k;

	e->addr = addr;
	e->npages = npages;
	e->flags = leaf ? IOMMU_VTD_INV_FLAGS_LEAF : 0;
	e->__reserved = 0;
	o.pages[k] = pages;
}

static int plan_flush_all(uint32_t n, struct coalesce_plan *plan)
{
	int rc = coalesce_plan_reserve(plan, n, 1, sizeof(struct iommu_hwpt_vtd_s1_invalidate));

	if (rc)
		return rc;
	const struct vout o = vout_of(plan);

	/* Non-leaf: the strongest request, it subsumes every input. */
	put_entry(o, 0, 0, UINT64_MAX, false, VTD_PAGES_ALL);
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
		plan->pages[k] = vtd_block_pages(e.addr, e.npages, mm);
		plan->pages_flushed = sat_add(plan->pages_flushed, plan->pages[k]);
	}
	return 0;
}

/*
 * Pass 1: collects the non-empty ranges. Returns the count, or UINT32_MAX
 * when an input flushes everything. *empty gets the first empty input.
 */
static uint32_t collect(const void *in, uint32_t n, struct vrec *recs, uint32_t *empty,
			struct vspan *span)
{
	const struct iommu_hwpt_vtd_s1_invalidate *e = in;
	uint64_t lo = UINT64_MAX, hi = 0;
	bool sorted = true;
	uint32_t nr = 0;

	*empty = UINT32_MAX;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t s, end;

		if (!vtd_range_of(vtd_word(&e[i], 0), vtd_word(&e[i], 1), &s, &end))
			return UINT32_MAX;
		if (s == end) {
			if (*empty == UINT32_MAX)
				*empty = i;
			continue;
		}
		recs[nr].start = s;
		recs[nr].end = end;
		recs[nr].idx = i;
		recs[nr].leaf = !!(vtd_flags(&e[i]) & IOMMU_VTD_INV_FLAGS_LEAF);
		/* What the sort needs to know, while the starts pass by. */
		sorted &= s >= hi;
		lo = s < lo ? s : lo;
		hi = s > hi ? s : hi;
		nr++;
	}
	*span = (struct vspan){.lo = lo, .hi = hi, .sorted = sorted};
	return nr;
}

/*
 * A shape's score: its pages plus slack_pages per entry it sends. pages is
 * below VTD_PAGES_ALL here (at most 2^52) and slack is clipped to 2^52 (see
 * coalesce_vtd()), so the sums of the walk cannot wrap.
 */
static inline uint64_t shape_score(struct vshape sh, uint64_t slack)
{
	return sh.pages + (sh.split ? 2 * slack : slack);
}

/* Passes 2 and 3: does segment seg join group g as shape m, given the gap rule? */
static inline bool merge_ok(struct vshape g, struct vshape seg, struct vshape m, uint64_t slack)
{
	uint64_t gap = seg.start - g.end;

	if (m.pages == VTD_PAGES_ALL)
		return false;
	if (shape_score(m, slack) > shape_score(g, slack) + shape_score(seg, slack))
		return false;
	return gap <= slack || m.pages <= g.pages + seg.pages;
}

/*
 * Writes the entries of a group of several records, or of one split in two
 * (records [rb, re) in start order) at k and the served-by run of its
 * inputs; returns how many entries it wrote.
 */
static uint32_t emit_merged(struct vshape g, const struct vrec *recs, uint32_t rb, uint32_t re,
			    uint32_t k, uint32_t mm, struct vout o)
{
	uint32_t kl = k, kr = g.split ? k + 1 : k;
	bool leaf_l = true, leaf_r = true;

	for (uint32_t r = rb; r < re; r++) {
		const struct vrec *v = &recs[r];
		bool in_l = !g.split || v->start < g.split;
		bool in_r = g.split && v->end > g.split;

		if (in_l)
			leaf_l &= v->leaf;
		if (in_r)
			leaf_r &= v->leaf;
		o.first[v->idx] = in_l ? kl : kr;
		o.last[v->idx] = in_r ? kr : kl;
	}
	if (!g.split) {
		put_entry(o, k, g.start << VTD_PAGE_SHIFT, g.end - g.start, leaf_l, g.pages);
		return 1;
	}
	put_entry(o, kl, g.start << VTD_PAGE_SHIFT, g.split - g.start, leaf_l,
		  vtd_block_pages_of(g.start, g.split, mm));
	put_entry(o, kr, g.split << VTD_PAGE_SHIFT, g.end - g.split, leaf_r,
		  vtd_block_pages_of(g.split, g.end, mm));
	return 2;
}

/*
 * The same for any group: the scattered case - one range, one entry - here,
 * the rest in emit_merged().
 */
static inline uint32_t emit_group(struct vshape g, const struct vrec *recs, uint32_t rb,
				  uint32_t re, uint32_t k, uint32_t mm, struct vout o)
{
	if (re == rb + 1 && !g.split) {
		o.first[recs[rb].idx] = o.last[recs[rb].idx] = k;
		put_entry(o, k, g.start << VTD_PAGE_SHIFT, g.end - g.start, recs[rb].leaf, g.pages);
		return 1;
	}
	return emit_merged(g, recs, rb, re, k, mm, o);
}

/*
 * The scattered case in a loop of its own, entered with group *g the lone
 * unsplit record i - 1: while the next record is one page, a segment of
 * its own and far from the group, the group goes out as it is and that
 * record becomes the group - what group_emit() decides for such records,
 * with few enough values to keep them all in registers. Returns the
 * record the general walk goes on from (the group is then record i - 1).
 */
static inline uint32_t emit_singles(const struct vrec *recs, uint32_t nr, uint32_t i, uint32_t mm,
				    uint64_t slack, struct vout o, struct vshape *g, uint32_t *kp,
				    uint64_t *sump)
{
	struct vshape lone = *g;
	uint64_t sum = *sump;
	uint32_t k = *kp;

	for (; i < nr; i++) {
		uint64_t s = recs[i].start, e = recs[i].end;

		/* One page (pages 1, no split), alone, and neither near nor sharing a block. */
		if (e - s != 1 || (i + 1 < nr && recs[i + 1].start <= e) || s - lone.end <= slack ||
		    e - lone.start <= lone.pages + 1)
			break;
		k += emit_group(lone, recs, i - 1, i, k, mm, o);
		sum = sat_add(sum, lone.pages);
		lone = (struct vshape){.start = s, .end = e, .pages = 1};
	}
	*g = lone;
	*kp = k;
	*sump = sum;
	return i;
}

/*
 * Passes 1-3 over nr > 0 records in start order, each group emitted into
 * the plan as soon as the next segment does not join it (one walk, no
 * array of groups). Returns the number of plan entries, or UINT32_MAX when
 * some range alone costs the whole space; *total gets the modelled pages
 * of the plan.
 */
static uint32_t group_emit(const struct vrec *recs, uint32_t nr, uint32_t mm, uint64_t slack,
			   struct coalesce_plan *plan, uint64_t *total)
{
	const struct vout o = vout_of(plan);
	struct vshape g, seg, m;
	uint32_t k = 0, i = 0, g_rb = 0;
	uint64_t sum = 0;

	for (;;) {
		uint32_t rb = i;
		uint64_t s = recs[i].start, e = recs[i].end;

		/* Pass 1: the union segment starting at record i. */
		for (i++; i < nr && recs[i].start <= e; i++)
			if (recs[i].end > e)
				e = recs[i].end;
		seg = vtd_shape(s, e, mm, slack);
		if (seg.pages == VTD_PAGES_ALL)
			return UINT32_MAX;
		if (rb) {
			/*
			 * A merged shape covers its span, so with a gap above
			 * the slack and a span above both shapes' pages
			 * merge_ok() must refuse: scattered ranges skip shaping
			 * a merge they would not take.
			 */
			bool far =
			    seg.start - g.end > slack && seg.end - g.start > g.pages + seg.pages;

			if (!far) {
				m = vtd_shape(g.start, seg.end, mm, slack);
				if (merge_ok(g, seg, m, slack)) {
					g = m;
					if (i == nr)
						break;
					continue;
				}
			}
			k += emit_group(g, recs, g_rb, rb, k, mm, o);
			sum = sat_add(sum, g.pages);
		}
		g = seg;
		g_rb = rb;
		if (i < nr && g_rb + 1 == i && !g.split) {
			i = emit_singles(recs, nr, i, mm, slack, o, &g, &k, &sum);
			g_rb = i - 1;
		}
		if (i == nr)
			break;
	}
	k += emit_group(g, recs, g_rb, nr, k, mm, o);
	*total = sat_add(sum, g.pages);
	return k;
}

/*
 * A batch of one entry - a strict-mode guest's every unmap - decided as
 * the walk decides a lone record, without the scratch, sort and walk.
 */
static int coalesce_one(const struct iommu_hwpt_vtd_s1_invalidate *in, uint32_t mm, uint64_t slack,
			uint64_t flush_all_pages, struct coalesce_plan *plan)
{
	struct iommu_hwpt_vtd_s1_invalidate e;
	struct vrec rec;
	struct vshape sh;
	uint64_t s, end;
	uint32_t k;
	int rc = coalesce_plan_reserve(plan, 1, 2, sizeof(e));

	if (rc)
		return rc;
	memcpy(&e, in, sizeof(e));
	if (!vtd_range_of(e.addr, e.npages, &s, &end))
		return plan_flush_all(1, plan);
	plan->first[0] = plan->last[0] = 0;
	if (s == end) {
		/* Nothing asked for: one real page acknowledged instead (see the top). */
		put_entry(vout_of(plan), 0, e.addr, 1, true, 1);
		plan->n_sub = 1;
		plan->pages_flushed = 1;
		return 0;
	}
	sh = vtd_shape(s, end, mm, slack);
	if (sh.pages == VTD_PAGES_ALL || (flush_all_pages && sh.pages > flush_all_pages))
		return plan_flush_all(1, plan);
	rec = (struct vrec){
	    .start = s, .end = end, .idx = 0, .leaf = !!(e.flags & IOMMU_VTD_INV_FLAGS_LEAF)};
	k = emit_group(sh, &rec, 0, 1, 0, mm, vout_of(plan));
	plan->n_sub = k;
	plan->pages_flushed = sh.pages;
	return 0;
}

int coalesce_vtd(const void *in, uint32_t n, const struct coalesce_params *p,
		 struct coalesce_plan *plan)
{
	size_t esz = sizeof(struct iommu_hwpt_vtd_s1_invalidate);
	uint32_t mm = vtd_effective_max_mask(p->vtd_max_mask);
	/*
	 * A slack of the whole address space already merges across every gap
	 * and never splits a range, so a larger one decides the same: clipped,
	 * the walk's sums of pages and slack fit in 64 bits without saturating.
	 */
	uint64_t slack = p->slack_pages < VTD_PFN_LIMIT ? p->slack_pages : VTD_PFN_LIMIT;
	uint32_t nr, k, empty;
	uint64_t total = 0;
	const struct vrec *sorted;
	struct vspan span;
	struct vrec *recs;
	uint64_t *keys;
	int rc;

	if (!p->enabled)
		return plan_identity(in, n, mm, plan);
	plan->n_sub = 0;
	plan->pages_flushed = 0;
	if (!n)
		return 0;
	if (n == 1)
		return coalesce_one(in, mm, slack, p->flush_all_pages, plan);
	/* Up to two entries per input must stay countable in 32 bits. */
	if (n > UINT32_MAX / 2)
		return -E2BIG;
	/*
	 * Scratch: the records, as many again for the sort and two keys per
	 * record.
	 */
	rc = coalesce_plan_scratch(plan, (size_t)n * (2 * sizeof(*recs) + 2 * sizeof(uint64_t)));
	if (!rc)
		rc = coalesce_plan_reserve(plan, n, 2 * n + 1, esz);
	if (rc)
		return rc;
	recs = plan->scratch;

	nr = collect(in, n, recs, &empty, &span);
	if (nr == UINT32_MAX)
		return plan_flush_all(n, plan);
	keys = (uint64_t *)(recs + 2 * (size_t)n);
	sorted = sort_recs(recs, nr, &span, recs + n, keys);
	k = nr ? group_emit(sorted, nr, mm, slack, plan, &total) : 0;
	if (k == UINT32_MAX || (p->flush_all_pages && total > p->flush_all_pages))
		return plan_flush_all(n, plan);
	if (empty != UINT32_MAX) {
		const struct iommu_hwpt_vtd_s1_invalidate *e = in;

		if (!k) {
			const struct vout o = vout_of(plan);

			put_entry(o, 0, e[empty].addr, 1, true, 1);
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
