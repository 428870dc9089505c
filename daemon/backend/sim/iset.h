/* SPDX-License-Identifier: MIT */
/*
 * A set of page frame numbers kept as sorted, disjoint, non-adjacent
 * half-open intervals [start, end). The simulator uses one per cache kind
 * per VT-d nested HWPT: a guest can populate gigabytes of IOVA, so storing
 * pages one by one is out of the question, and ranges are what both
 * populate and invalidate speak anyway.
 *
 * Lookups are a binary search; add/remove touch only the k intervals they
 * overlap (plus one memmove of the tail). Every operation either succeeds
 * completely or leaves the set unchanged.
 */
#ifndef IOMMU_NESTD_SIM_ISET_H
#define IOMMU_NESTD_SIM_ISET_H

#include <stdint.h>

/* Page frame numbers cover the 64-bit IOVA space in 4 KiB pages. */
#define SIM_PFN_SHIFT 12
#define SIM_PFN_LIMIT (UINT64_C(1) << (64 - SIM_PFN_SHIFT)) /* exclusive */

struct sim_range {
	uint64_t start; /* first pfn */
	uint64_t end;	/* one past the last pfn */
};

struct sim_iset {
	struct sim_range *r;
	uint32_t n;
	uint32_t cap;
	/*
	 * Pfns in the set, kept by add/remove (which touch only the intervals
	 * they overlap), so the total costs nothing however large the set.
	 */
	uint64_t pages;
};

/*
 * The pfn range [*start, *end) an (addr, npages) request covers, clamped at
 * SIM_PFN_LIMIT. Both populate/query and invalidate speak it; inline, as
 * the invalidation walk asks it for every entry.
 */
static inline void sim_range_of(uint64_t addr, uint64_t npages, uint64_t *start, uint64_t *end)
{
	*start = addr >> SIM_PFN_SHIFT;
	/*
	 * Clamp at the top of the 64-bit space instead of wrapping: the
	 * kernel's npages << 12 would wrap, but no caller can mean that, and
	 * flush-all (addr 0, npages U64_MAX) lands on the whole space.
	 */
	if (npages > SIM_PFN_LIMIT - *start)
		*end = SIM_PFN_LIMIT;
	else
		*end = *start + npages;
}

void sim_iset_init(struct sim_iset *s);
void sim_iset_free(struct sim_iset *s);

/* Adds [start, end); 0 or -ENOMEM (set unchanged). start < end <= LIMIT. */
int sim_iset_add(struct sim_iset *s, uint64_t start, uint64_t end);

/* Removes [start, end); 0 or -ENOMEM when a split cannot grow the array. */
int sim_iset_remove(struct sim_iset *s, uint64_t start, uint64_t end);

/* Number of pfns of [start, end) in the set. */
uint64_t sim_iset_count(const struct sim_iset *s, uint64_t start, uint64_t end);

/* Total number of pfns in the set. */
uint64_t sim_iset_total(const struct sim_iset *s);

#endif
