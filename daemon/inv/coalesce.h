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

struct coalesce_params {
	bool enabled;            /* false: one submitted entry per input entry */
	uint64_t slack_pages;    /* VT-d: merge across gaps up to this many pages */
	uint64_t flush_all_pages; /* VT-d: modelled cost above which one flush-all wins; 0 = never */
	uint32_t vtd_max_mask;   /* VT-d: largest address mask (block of 2^m pages) */
};

struct coalesce_plan {
	void *sub;          /* submitted entries, native layout of the data type */
	uint32_t n_sub;
	uint32_t *first;    /* per input entry: first serving submitted entry */
	uint32_t *last;     /* per input entry: last serving submitted entry */
	uint64_t pages_flushed; /* modelled pages the plan flushes (VT-d cost model) */

	/* Buffers owned by the plan, reused across batches. */
	size_t cap_sub;  /* bytes allocated for sub */
	size_t cap_in;   /* entries allocated for first/last */
	void *scratch;
	size_t cap_scratch;
};

/*
 * VT-d address space in 4 KiB pages (MAX_AGAW_PFN_WIDTH = 52 bits). Ranges
 * are clipped here; a block of 2^52 pages is the whole space.
 */
#define VTD_PFN_BITS 52
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
int coalesce_identity(const void *in, uint32_t n, size_t entry_size,
		      struct coalesce_plan *plan);

/* VT-d stage-1 entries (struct iommu_hwpt_vtd_s1_invalidate). */
int coalesce_vtd(const void *in, uint32_t n, const struct coalesce_params *p,
		 struct coalesce_plan *plan);

/* Selftest entries (struct iommu_hwpt_invalidate_selftest). */
int coalesce_selftest(const void *in, uint32_t n, const struct coalesce_params *p,
		      struct coalesce_plan *plan);

/*
 * The VT-d cost model: pages flushed by one page-selective invalidation of
 * [addr, addr + npages): the smallest naturally aligned 2^m-page block that
 * covers the range, or the whole address space (UINT64_MAX) when m would
 * exceed max_mask or for a flush-all entry.
 */
uint64_t vtd_block_pages(uint64_t addr, uint64_t npages, uint32_t max_mask);

/*
 * The max_mask the cost model really uses: 0 (unset) and anything above
 * VTD_PFN_BITS mean VTD_PFN_BITS, i.e. no limit below the address space.
 */
uint32_t vtd_effective_max_mask(uint32_t max_mask);

/*
 * Pages [*start, *end) a VT-d entry asks for, end clipped at VTD_PFN_LIMIT.
 * Returns false for a flush-all (addr 0, npages U64_MAX, or any range from
 * 0 that reaches the end of the space); npages 0 gives start == end.
 */
bool vtd_entry_range(const void *entry, uint64_t *start, uint64_t *end);

/*
 * Rewrites a VT-d entry whose addr + npages * 4 KiB would wrap past 2^64
 * (the kernel computes that sum and would flush a wrapped, smaller range)
 * into the same request clipped at the end of the address space; a range
 * from 0 becomes the flush-all encoding. Other entries are left alone.
 */
void vtd_entry_normalize(void *entry);

#endif
