/* SPDX-License-Identifier: MIT */
/*
 * Coalescing: turns the accepted entries of one HWPT's batch into a shorter
 * list of submitted entries, remembering which submitted entries serve each
 * input entry. Pure code over arrays; no I/O, no per-entry allocation (the
 * plan's buffers grow geometrically and are reused).
 *
 * Invariant (DESIGN.md section 3): for every input entry i, the union of
 * sub[first[i] .. last[i]] covers every page of entry i with at least its
 * strength (non-leaf >= leaf; FLAG_ALL / flush-all cover everything).
 */
#ifndef IOMMU_NESTD_COALESCE_H
#define IOMMU_NESTD_COALESCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "backend/iommufd_uapi.h"

struct coalesce_params {
	bool enabled;	      /* false: one submitted entry per input entry */
	uint64_t slack_pages; /* VT-d: merge across gaps up to this many pages */
	/* VT-d: modelled cost above which one flush-all wins; 0 = never */
	uint64_t flush_all_pages;
	uint32_t vtd_max_mask; /* VT-d: largest address mask (block of 2^m pages) */
};

struct coalesce_plan {
	void *sub; /* submitted entries, native layout of the data type */
	uint32_t n_sub;
	uint32_t *first;	/* per input entry: first serving submitted entry */
	uint32_t *last;		/* per input entry: last serving submitted entry */
	uint64_t pages_flushed; /* modelled pages the plan flushes (VT-d cost model) */
	/*
	 * VT-d: per submitted entry, its modelled pages (the coalescer knows
	 * them; batch accounting would otherwise recompute them from sub).
	 * Other data types leave it unset.
	 */
	uint64_t *pages;

	/* Buffers owned by the plan, reused across batches. */
	size_t cap_sub;	  /* bytes allocated for sub */
	size_t cap_pages; /* bytes allocated for pages */
	size_t cap_in;	  /* entries allocated for first/last */
	void *scratch;
	size_t cap_scratch;
};

/*
 * VT-d address space in 4 KiB pages (MAX_AGAW_PFN_WIDTH = 52 bits). Ranges
 * are clipped here; a block of 2^52 pages is the whole space.
 */
#define VTD_PFN_BITS  52
#define VTD_PFN_LIMIT (1ULL << VTD_PFN_BITS)
/* Modelled cost of a flush of the whole address space (saturates sums). */
#define VTD_PAGES_ALL UINT64_MAX

void coalesce_plan_init(struct coalesce_plan *plan);
void coalesce_plan_free(struct coalesce_plan *plan);

/* Makes sure the plan can hold n_in inputs and n_sub outputs of entry_size. */
int coalesce_plan_reserve(struct coalesce_plan *plan, uint32_t n_in, uint32_t n_sub,
			  size_t entry_size);

/* Makes sure plan->scratch holds at least bytes; contents are not kept. */
int coalesce_plan_scratch(struct coalesce_plan *plan, size_t bytes);

/* One submitted entry per input entry, in input order. */
int coalesce_identity(const void *in, uint32_t n, size_t entry_size, struct coalesce_plan *plan);

/* VT-d stage-1 entries (struct iommu_hwpt_vtd_s1_invalidate). */
int coalesce_vtd(const void *in, uint32_t n, const struct coalesce_params *p,
		 struct coalesce_plan *plan);

/* Selftest entries (struct iommu_hwpt_invalidate_selftest). */
int coalesce_selftest(const void *in, uint32_t n, const struct coalesce_params *p,
		      struct coalesce_plan *plan);

/*
 * The VT-d helpers below are inline: batch.c's accounting and the
 * coalescer call them for every entry, several times.
 */

/*
 * The max_mask the cost model really uses: 0 (unset) and anything above
 * VTD_PFN_BITS mean VTD_PFN_BITS, i.e. no limit below the address space.
 */
static inline uint32_t vtd_effective_max_mask(uint32_t max_mask)
{
	if (!max_mask || max_mask > VTD_PFN_BITS)
		return VTD_PFN_BITS;
	return max_mask;
}

/* Block pages for non-empty [s, e), e <= VTD_PFN_LIMIT; mm is effective. */
static inline uint64_t vtd_block_pages_of(uint64_t s, uint64_t e, uint32_t mm)
{
	uint64_t x = s ^ (e - 1);
	uint32_t m = x ? 64 - (uint32_t)__builtin_clzll(x) : 0;

	if (m >= VTD_PFN_BITS || m > mm)
		return VTD_PAGES_ALL;
	return 1ULL << m;
}

/*
 * Pages [*start, *end) of a VT-d entry (addr, npages), end clipped at
 * VTD_PFN_LIMIT. Returns false for a flush-all (addr 0, npages U64_MAX,
 * or any range from 0 that reaches the end of the space); npages 0 gives
 * start == end.
 */
static inline bool vtd_range_of(uint64_t addr, uint64_t npages, uint64_t *start, uint64_t *end)
{
	uint64_t s = addr >> VTD_PAGE_SHIFT;

	*start = s;
	/* The common case, ending below the limit: neither flush-all nor clipped. */
	if (__builtin_expect(npages < VTD_PFN_LIMIT - s, 1)) {
		*end = s + npages;
		return true;
	}
	if (!addr && npages == UINT64_MAX)
		return false;
	*end = npages >= VTD_PFN_LIMIT - s ? VTD_PFN_LIMIT : s + npages;
	return !(s == 0 && *end == VTD_PFN_LIMIT);
}

/*
 * The VT-d cost model: pages flushed by one page-selective invalidation of
 * [addr, addr + npages): the smallest naturally aligned 2^m-page block that
 * covers the range, or the whole address space (UINT64_MAX) when m would
 * exceed max_mask or for a flush-all entry.
 */
static inline uint64_t vtd_block_pages(uint64_t addr, uint64_t npages, uint32_t max_mask)
{
	uint64_t s, end;

	if (!vtd_range_of(addr, npages, &s, &end))
		return VTD_PAGES_ALL;
	if (s == end)
		return 0;
	return vtd_block_pages_of(s, end, vtd_effective_max_mask(max_mask));
}

/* The same for an entry in native layout (struct iommu_hwpt_vtd_s1_invalidate). */
static inline bool vtd_entry_range(const void *entry, uint64_t *start, uint64_t *end)
{
	struct iommu_hwpt_vtd_s1_invalidate e;

	memcpy(&e, entry, sizeof(e));
	return vtd_range_of(e.addr, e.npages, start, end);
}

/*
 * Rewrites a VT-d entry whose addr + npages * 4 KiB would wrap past 2^64
 * (the kernel computes that sum and would flush a wrapped, smaller range)
 * into the same request clipped at the end of the address space; a range
 * from 0 becomes the flush-all encoding. Other entries are left alone.
 */
static inline void vtd_normalize_range(uint64_t *addr, uint64_t *npages)
{
	uint64_t s, end;

	if (!vtd_range_of(*addr, *npages, &s, &end)) {
		/* The kernel computes 2^64 - 1 bytes for npages 2^52: wraps. */
		if (*addr || *npages != UINT64_MAX) {
			*addr = 0;
			*npages = UINT64_MAX;
		}
	} else if (*npages > end - s) {
		*npages = end - s;
	}
}

/*
 * Word i of a VT-d entry (0 addr, 1 npages, 2 flags and __reserved), and
 * its store. The hot loops move entries word by word: GCC copies the
 * 24-byte struct with a 16-byte vector move, and reading fields back from
 * such a copy at once stalls store-to-load forwarding.
 */
static inline uint64_t vtd_word(const void *entry, unsigned i)
{
	uint64_t w;

	memcpy(&w, (const uint8_t *)entry + 8 * i, sizeof(w));
	return w;
}

static inline void vtd_put_word(void *entry, unsigned i, uint64_t w)
{
	memcpy((uint8_t *)entry + 8 * i, &w, sizeof(w));
}

static inline uint32_t vtd_flags(const void *entry)
{
	uint32_t f;

	memcpy(&f, (const uint8_t *)entry + offsetof(struct iommu_hwpt_vtd_s1_invalidate, flags),
	       sizeof(f));
	return f;
}

/* The same for an entry in native layout, in place. */
static inline void vtd_entry_normalize(void *entry)
{
	uint64_t addr = vtd_word(entry, 0), npages = vtd_word(entry, 1);

	vtd_normalize_range(&addr, &npages);
	vtd_put_word(entry, 0, addr);
	vtd_put_word(entry, 1, npages);
}

#endif
