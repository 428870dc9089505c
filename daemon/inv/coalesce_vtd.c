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
	uint64_t score; /* pages + slack per entry */
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
	struct vshape sh = {.start = s, .end = e};

	sh.pages = vtd_block_pages_of(s, e, mm);
	sh.score = sat_add(sh.pages, slack);
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
		if (score < sh.score && two <= sh.pages / 2) {
			sh.split = b;
			sh.pages = two;
			sh.score = score;
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
 * histogram comes from the one pass that builds them, and the records stay
 * where they are: the last pass writes just their positions, in order, to ord.
 */
static void sort_by_keys(const struct vrec *recs, uint32_t nr, uint64_t lo, uint32_t sbits,
			 uint32_t ib, uint64_t *keys, uint32_t *ord)
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
			ord[c[(src[i] >> shift) & rp.mask]++] = (uint32_t)(src[i] & imask);
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
 * Orders recs by start, stably: returns NULL when recs itself is now in
 * that order, or ord, the positions of the records in that order. span
 * is what collect() saw of the starts. tmp has room for nr records, keys
 * for 2 * nr, ord for nr positions.
 */
static const uint32_t *sort_recs(struct vrec *recs, uint32_t nr, const struct vspan *span,
				 struct vrec *tmp, uint64_t *keys, uint32_t *ord)
{
	uint32_t count[1u << RADIX_MAX_BITS];
	struct vrec *src = recs, *dst = tmp, *t;
	uint64_t lo = span->lo, hi = span->hi;
	uint32_t sbits, ib;
	struct radix_plan rp;

	if (span->sorted)
		return NULL;
	if (nr <= SORT_SMALL) {
		insertion_sort(recs, nr);
		return NULL;
	}
	/* Not sorted, so hi > lo: at least one bit differs; nr > 1 likewise. */
	sbits = 64 - (uint32_t)__builtin_clzll(hi - lo);
	ib = 32 - (uint32_t)__builtin_clz(nr - 1);
	if (sbits + ib <= 64) {
		sort_by_keys(recs, nr, lo, sbits, ib, keys, ord);
		return ord;
	}
	/* Starts too far apart for a key: whole records, pass by pass. */
	rp = radix_plan(sbits);
	for (uint32_t p = 0; p < rp.passes; p++) {
		radix_pass(src, dst, nr, lo, p * rp.width, rp.mask, count);
		t = src;
		src = dst;
		dst = t;
	}
	if (src != recs)
		memcpy(recs, src, (size_t)nr * sizeof(*recs));
	return NULL;
}

/*
 * Entry k of the plan and its modelled pages. Stored field by field into
 * the plan (malloc'ed, so aligned for the struct): a temporary copied
 * whole would be read back wider than it was written.
 */
static inline void put_entry(struct coalesce_plan *plan, uint32_t k, uint64_t addr, uint64_t npages,
			     bool leaf, uint64_t pages)
{
	struct iommu_hwpt_vtd_s1_invalidate *e =
	    (struct iommu_hwpt_vtd_s1_invalidate *)plan->sub + k;

	e->addr = addr;
	e->npages = npages;
	e->flags = leaf ? IOMMU_VTD_INV_FLAGS_LEAF : 0;
	e->__reserved = 0;
	plan->pages[k] = pages;
}

static int plan_flush_all(uint32_t n, struct coalesce_plan *plan)
{
	int rc = coalesce_plan_reserve(plan, n, 1, sizeof(struct iommu_hwpt_vtd_s1_invalidate));

	if (rc)
		return rc;
	/* Non-leaf: the strongest request, it subsumes every input. */
	put_entry(plan, 0, 0, UINT64_MAX, false, VTD_PAGES_ALL);
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

/* Passes 2 and 3: does segment seg join group *g, given the gap rule? */
static inline bool merge_ok(const struct vshape *g, const struct vshape *seg,
			    const struct vshape *m, uint64_t slack)
{
	uint64_t gap = seg->start - g->end;

	if (m->pages == VTD_PAGES_ALL)
		return false;
	if (m->score > sat_add(g->score, seg->score))
		return false;
	return gap <= slack || m->pages <= sat_add(g->pages, seg->pages);
}

/* Record i in start order: ord, when the sort left one, says where it is. */
static inline const struct vrec *rec_at(const struct vrec *recs, const uint32_t *ord, uint32_t i)
{
	return &recs[ord ? ord[i] : i];
}

/*
 * Writes the entries of one group (records [rb, re) in start order) at k and the served-by
 * run of its inputs; returns how many entries it wrote.
 */
static inline uint32_t emit_group(const struct vshape *g, const struct vrec *recs,
				  const uint32_t *ord, const struct vrec *v0, uint32_t rb,
				  uint32_t re, uint32_t k, uint32_t mm, struct coalesce_plan *plan)
{
	/* Not aliased: the loop then keeps both in registers. */
	uint32_t *restrict first = plan->first, *restrict last = plan->last;
	uint32_t kl = k, kr = g->split ? k + 1 : k;
	bool leaf_l = true, leaf_r = true;

	/* The scattered case: one range (v0, its first), one entry. */
	if (re == rb + 1 && !g->split) {
		first[v0->idx] = last[v0->idx] = k;
		put_entry(plan, k, g->start << VTD_PAGE_SHIFT, g->end - g->start, v0->leaf,
			  g->pages);
		return 1;
	}
	for (uint32_t r = rb; r < re; r++) {
		const struct vrec v = *rec_at(recs, ord, r);
		bool in_l = !g->split || v.start < g->split;
		bool in_r = g->split && v.end > g->split;

		if (in_l)
			leaf_l &= v.leaf;
		if (in_r)
			leaf_r &= v.leaf;
		first[v.idx] = in_l ? kl : kr;
		last[v.idx] = in_r ? kr : kl;
	}
	if (!g->split) {
		put_entry(plan, k, g->start << VTD_PAGE_SHIFT, g->end - g->start, leaf_l, g->pages);
		return 1;
	}
	put_entry(plan, kl, g->start << VTD_PAGE_SHIFT, g->split - g->start, leaf_l,
		  vtd_block_pages_of(g->start, g->split, mm));
	put_entry(plan, kr, g->split << VTD_PAGE_SHIFT, g->end - g->split, leaf_r,
		  vtd_block_pages_of(g->split, g->end, mm));
	return 2;
}

/*
 * Passes 1-3 over recs in start order, each group emitted into the plan as soon as
 * the next segment does not join it (one walk, no array of groups). Returns
 * the number of plan entries, or UINT32_MAX when some range alone costs the
 * whole space; *total gets the modelled pages of the plan.
 */
static inline __attribute__((always_inline)) uint32_t
group_emit(const struct vrec *recs, const uint32_t *ord, uint32_t nr, uint32_t mm, uint64_t slack,
	   struct coalesce_plan *plan, uint64_t *total)
{
	struct vshape g = {0}, seg, m;
	uint32_t k = 0, i = 0, g_rb = 0, g_re = 0;
	uint64_t sum = 0;
	bool have = false;
	/* The group's first record: emitting a group of one needs no second look. */
	const struct vrec *v = nr ? rec_at(recs, ord, 0) : NULL, *g_v = v;

	while (i < nr) {
		const struct vrec *sv = v;
		uint32_t rb = i;
		uint64_t s = v->start, e = v->end;

		/* Pass 1: the union segment starting at record i; v ends on the next one. */
		for (i++; i < nr; i++) {
			v = rec_at(recs, ord, i);
			if (v->start > e)
				break;
			if (v->end > e)
				e = v->end;
		}
		seg = vtd_shape(s, e, mm, slack);
		if (seg.pages == VTD_PAGES_ALL)
			return UINT32_MAX;
		if (have) {
			/*
			 * A merged shape covers its span, so with a gap above
			 * the slack and a span above both shapes' pages
			 * merge_ok() must refuse: scattered ranges skip shaping
			 * a merge they would not take.
			 */
			bool far = seg.start - g.end > slack &&
				   seg.end - g.start > sat_add(g.pages, seg.pages);

			if (!far) {
				m = vtd_shape(g.start, seg.end, mm, slack);
				if (merge_ok(&g, &seg, &m, slack)) {
					g = m;
					g_re = i;
					continue;
				}
			}
			k += emit_group(&g, recs, ord, g_v, g_rb, g_re, k, mm, plan);
			sum = sat_add(sum, g.pages);
		}
		g = seg;
		g_v = sv;
		g_rb = rb;
		g_re = i;
		have = true;
	}
	if (have) {
		k += emit_group(&g, recs, ord, g_v, g_rb, g_re, k, mm, plan);
		sum = sat_add(sum, g.pages);
	}
	*total = sum;
	return k;
}

int coalesce_vtd(const void *in, uint32_t n, const struct coalesce_params *p,
		 struct coalesce_plan *plan)
{
	size_t esz = sizeof(struct iommu_hwpt_vtd_s1_invalidate);
	uint32_t mm = vtd_effective_max_mask(p->vtd_max_mask);
	uint32_t nr, k, empty;
	uint64_t total = 0;
	const uint32_t *ord;
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
	/* Up to two entries per input must stay countable in 32 bits. */
	if (n > UINT32_MAX / 2)
		return -E2BIG;
	/*
	 * Scratch: the records, as many again for the sort, two keys and a
	 * position per record.
	 */
	rc = coalesce_plan_scratch(
	    plan, (size_t)n * (2 * sizeof(*recs) + 2 * sizeof(uint64_t) + sizeof(uint32_t)));
	if (!rc)
		rc = coalesce_plan_reserve(plan, n, 2 * n + 1, esz);
	if (rc)
		return rc;
	recs = plan->scratch;

	nr = collect(in, n, recs, &empty, &span);
	if (nr == UINT32_MAX)
		return plan_flush_all(n, plan);
	keys = (uint64_t *)(recs + 2 * (size_t)n);
	ord = sort_recs(recs, nr, &span, recs + n, keys, (uint32_t *)(keys + 2 * (size_t)n));
	/* Two copies of the walk, each with its own way to the next record. */
	if (ord)
		k = group_emit(recs, ord, nr, mm, p->slack_pages, plan, &total);
	else
		k = group_emit(recs, NULL, nr, mm, p->slack_pages, plan, &total);
	if (k == UINT32_MAX || (p->flush_all_pages && total > p->flush_all_pages))
		return plan_flush_all(n, plan);
	if (empty != UINT32_MAX) {
		const struct iommu_hwpt_vtd_s1_invalidate *e = in;

		if (!k) {
			put_entry(plan, 0, e[empty].addr, 1, true, 1);
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
