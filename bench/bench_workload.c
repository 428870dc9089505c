/* SPDX-License-Identifier: MIT */
/*
 * The invalidation workloads. Each generates the VT-d stage-1 entries of
 * one request (struct iommu_nest_vtd_inv, the kernel's layout) from a
 * per-client state, deterministically from the client's index, so the
 * daemon runs and the in-process floor see the same streams.
 */
#include <string.h>

#include "bench.h"

#define PAGE_SHIFT 12
#define LEAF IOMMU_NEST_VTD_INV_FLAGS_LEAF

/* Every workload stays above this guest IOVA (pages), away from 0. */
#define IOVA_BASE_PFN (1ull << 20) /* 4 GiB */

static uint64_t rnd(struct wl_state *st)
{
	/* xorshift64* */
	st->rng ^= st->rng >> 12;
	st->rng ^= st->rng << 25;
	st->rng ^= st->rng >> 27;
	return st->rng * 0x2545F4914F6CDD1Dull;
}

static uint64_t rnd_below(struct wl_state *st, uint64_t n)
{
	return (rnd(st) >> 11) % n;
}

static void set(struct iommu_nest_vtd_inv *e, uint64_t pfn, uint64_t npages, uint32_t flags)
{
	e->addr = pfn << PAGE_SHIFT;
	e->npages = npages;
	e->flags = flags;
	e->reserved = 0;
}

void wl_state_init(struct wl_state *st, uint32_t client)
{
	memset(st, 0, sizeof(*st));
	st->rng = 0x9E3779B97F4A7C15ull * (client + 1) | 1;
}

/*
 * Strict-mode unmap storm: a guest unmapping a large buffer page by page,
 * one invalidation per 4 KiB page, consecutive pages.
 */
void wl_gen_seq(struct wl_state *st, struct iommu_nest_vtd_inv *e, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		set(&e[i], IOVA_BASE_PFN + (st->cursor & ((1ull << 24) - 1)), 1, LEAF);
		st->cursor++;
	}
	st->seq++;
}

/*
 * Lazy-mode flush queue: the guest's IOVA flush queue drained in one go,
 * 1-page leaf invalidations scattered over a 1 GiB IOVA window.
 */
void wl_gen_lazy(struct wl_state *st, struct iommu_nest_vtd_inv *e, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		set(&e[i], IOVA_BASE_PFN + rnd_below(st, 1u << 18), 1, LEAF);
	st->seq++;
}

/* Random scatter: 1-8 page leaf ranges anywhere in a 48-bit space. */
static void gen_scatter(struct wl_state *st, struct iommu_nest_vtd_inv *e, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		set(&e[i], rnd_below(st, (1ull << 36) - 16) + 1, 1 + rnd_below(st, 8), LEAF);
	st->seq++;
}

/*
 * Flush-all heavy: every other request carries one flush-all entry
 * (addr 0, npages U64_MAX) among 1-page leaf invalidations.
 */
static void gen_flushall(struct wl_state *st, struct iommu_nest_vtd_inv *e, uint32_t n)
{
	wl_gen_lazy(st, e, n);
	if (st->seq & 1) {
		uint32_t k = (uint32_t)rnd_below(st, n);

		e[k].addr = 0;
		e[k].npages = UINT64_MAX;
		e[k].flags = 0;
	}
}

/*
 * Mixed leaf / non-leaf: guest unmaps of 1-4 page runs (leaf) interleaved
 * with freed page-table pages, i.e. non-leaf invalidations of the 2 MiB
 * (512-page) region a page table maps, in a 256 MiB window.
 */
static void gen_mixed(struct wl_state *st, struct iommu_nest_vtd_inv *e, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		if (rnd_below(st, 4) == 0) {
			uint64_t pt = rnd_below(st, 128);

			set(&e[i], IOVA_BASE_PFN + pt * 512, 512, 0);
		} else {
			set(&e[i], IOVA_BASE_PFN + (st->cursor & ((1ull << 16) - 1)),
			    1 + rnd_below(st, 4), LEAF);
			st->cursor += 1 + rnd_below(st, 64);
		}
	}
	st->seq++;
}

const struct workload bench_workloads[] = {
	{ "seq-strict", "strict-mode unmap storm: 1 entry per request, consecutive 4 KiB pages",
	  1, wl_gen_seq },
	{ "seq-batch", "the same storm batched: 256 consecutive 1-page entries per request",
	  256, wl_gen_seq },
	{ "lazy-fq", "lazy-mode flush queue: 256 scattered 1-page entries in a 1 GiB window",
	  256, wl_gen_lazy },
	{ "scatter", "random scatter: 64 entries of 1-8 pages anywhere in 48 bits", 64,
	  gen_scatter },
	{ "flushall", "flush-all heavy: 32 entries, every other request has a flush-all", 32,
	  gen_flushall },
	{ "mixed", "mixed: 64 entries, 3/4 leaf 1-4 pages, 1/4 non-leaf 2 MiB", 64, gen_mixed },
};

const size_t bench_n_workloads = sizeof(bench_workloads) / sizeof(bench_workloads[0]);

const struct workload *workload_find(const char *name)
{
	for (size_t i = 0; i < bench_n_workloads; i++)
		if (!strcmp(bench_workloads[i].name, name))
			return &bench_workloads[i];
	return NULL;
}
