/* SPDX-License-Identifier: MIT */
/*
 * The coalescing figures, measured through the real daemon on the sim
 * backend with several clients at once:
 *  - sequential 4 KiB unmap storm: each client unmaps 64 Ki consecutive
 *    pages in requests of 32 entries; submitted/received entries must be
 *    <= 0.02 and modelled pages flushed <= 1.1x the pages asked;
 *  - random scatter (1-8 page ranges anywhere in 48 bits): modelled pages
 *    flushed <= 2x the pages asked (no flush-all escalation happens here:
 *    the batches stay far below its threshold).
 * Each round freezes the daemon while every client queues its window, so
 * every round is exactly one event-loop pass and the figures do not depend
 * on scheduling. Every entry must also be DONE and its pages gone.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>

#include "harness.h"

#define CLIENTS 4
#define WINDOW 16 /* requests per client per pass */
#define STORM_PAGES (64u * 1024)
#define STORM_BATCH 32
#define SCATTER_BATCH 64
#define SCATTER_REQS 64

struct client {
	struct iommu_nest *h;
	uint32_t hwpt;
	uint32_t done;
	uint32_t bad;
	struct iommu_nest_vtd_inv e[WINDOW][SCATTER_BATCH];
	struct iommu_nest_entry_result res[WINDOW][SCATTER_BATCH];
};

static struct client clients[CLIENTS];

static void on_done(struct iommu_nest *h, uint64_t token, const struct iommu_nest_inv_summary *sum,
		    struct iommu_nest_entry_result *res, size_t n, void *opaque)
{
	struct client *c = opaque;

	c->done++;
	if (sum->status || sum->entries_handled != n)
		c->bad++;
}

/* One VM, one device: a device is in one client's VM context at a time. */
#define FOUR_VTD "[device vtd2]\nkind = vtd\n[device vtd3]\nkind = vtd"

static void open_clients(struct nestd *d)
{
	static const char *const devs[CLIENTS] = {IT_VTD0, IT_VTD1, "vtd2", "vtd3"};

	for (int i = 0; i < CLIENTS; i++) {
		clients[i].h = it_connect(d, "figures");
		clients[i].hwpt = it_alloc_vtd(clients[i].h, devs[i]);
	}
}

/* Waits until every client got its n completions. */
static void drain(uint32_t n)
{
	for (int i = 0; i < CLIENTS; i++) {
		struct client *c = &clients[i];

		while (c->done < n) {
			struct pollfd p = { .fd = iommu_nest_fd(c->h), .events = POLLIN };

			CU_ASSERT_FATAL(poll(&p, 1, it_timeout_ms()) == 1);
			CU_ASSERT_FATAL(iommu_nest_process(c->h) >= 0);
		}
		CU_ASSERT_EQUAL(c->bad, 0);
		c->done = 0;
	}
}

/* One pass: every client queues n requests of batch entries while the daemon is stopped. */
static void one_pass(struct nestd *d, uint32_t n, uint32_t batch)
{
	uint64_t token;

	it_freeze(d);
	for (int i = 0; i < CLIENTS; i++)
		for (uint32_t r = 0; r < n; r++)
			CU_ASSERT_EQUAL_FATAL(iommu_nest_invalidate_submit(
						      clients[i].h, clients[i].hwpt,
						      IOMMU_NEST_INV_DATA_VTD_S1, clients[i].e[r], batch,
						      0, clients[i].res[r], on_done, &clients[i], &token),
					      0);
	it_thaw(d);
	drain(n);
}

static void report(const char *what, const struct iommu_nest_stats *a,
		   const struct iommu_nest_stats *b, uint64_t pages_asked, double *sub_ratio,
		   double *page_ratio)
{
	uint64_t recv = b->entries_received - a->entries_received;
	uint64_t sub = b->entries_submitted - a->entries_submitted;
	uint64_t flushed = b->pages_flushed - a->pages_flushed;

	*sub_ratio = (double)sub / (double)recv;
	*page_ratio = (double)flushed / (double)pages_asked;
	printf("%-8s %u clients: %llu entries received, %llu submitted (ratio %.4f), "
	       "%llu pages asked, %llu modelled pages flushed (%.3fx)\n",
	       what, CLIENTS, (unsigned long long)recv, (unsigned long long)sub, *sub_ratio,
	       (unsigned long long)pages_asked, (unsigned long long)flushed, *page_ratio);
}

static void test_sequential_storm(void)
{
	struct nestd *d = it_start(FOUR_VTD);
	struct iommu_nest_stats before, after;
	const uint64_t base = 1ull << 30; /* 4 GiB: pages 1 Mi .. */
	double sub_ratio, page_ratio;
	uint64_t next = 0;

	open_clients(d);
	IT_REQUIRE_CAP(clients[0].h, IOMMU_NEST_CAP_SIM_MODEL);
	for (int i = 0; i < CLIENTS; i++)
		it_populate(clients[i].h, clients[i].hwpt, base, STORM_PAGES, IOMMU_NEST_SIM_IOTLB);
	before = it_stats(clients[0].h);
	while (next < STORM_PAGES) {
		for (int i = 0; i < CLIENTS; i++)
			for (uint32_t r = 0; r < WINDOW; r++)
				for (uint32_t k = 0; k < STORM_BATCH; k++) {
					struct iommu_nest_vtd_inv *e = &clients[i].e[r][k];

					e->addr = base + (next + r * STORM_BATCH + k) * IT_PAGE;
					e->npages = 1;
					e->flags = IOMMU_NEST_VTD_INV_FLAGS_LEAF;
					e->reserved = 0;
				}
		one_pass(d, WINDOW, STORM_BATCH);
		next += WINDOW * STORM_BATCH;
	}
	after = it_stats(clients[0].h);
	report("storm", &before, &after, (uint64_t)CLIENTS * STORM_PAGES, &sub_ratio, &page_ratio);
	CU_ASSERT(sub_ratio <= 0.02);
	CU_ASSERT(page_ratio <= 1.1);
	for (int i = 0; i < CLIENTS; i++)
		CU_ASSERT_EQUAL(it_iotlb_pages(clients[i].h, clients[i].hwpt, base, STORM_PAGES), 0);
	it_stop_ok(d);
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1Dull;
}

static void test_random_scatter(void)
{
	struct nestd *d = it_start(FOUR_VTD);
	struct iommu_nest_stats before, after;
	double sub_ratio, page_ratio;
	uint64_t seed = 0x5ca77e4ull, asked = 0;

	open_clients(d);
	IT_REQUIRE_CAP(clients[0].h, IOMMU_NEST_CAP_SIM_MODEL);
	before = it_stats(clients[0].h);
	for (uint32_t round = 0; round < SCATTER_REQS / WINDOW; round++) {
		for (int i = 0; i < CLIENTS; i++)
			for (uint32_t r = 0; r < WINDOW; r++)
				for (uint32_t k = 0; k < SCATTER_BATCH; k++) {
					struct iommu_nest_vtd_inv *e = &clients[i].e[r][k];

					e->addr = ((rnd(&seed) >> 28) % ((1ull << 36) - 8)) * IT_PAGE;
					e->npages = 1 + rnd(&seed) % 8;
					e->flags = IOMMU_NEST_VTD_INV_FLAGS_LEAF;
					e->reserved = 0;
					asked += e->npages;
				}
		one_pass(d, WINDOW, SCATTER_BATCH);
	}
	after = it_stats(clients[0].h);
	report("scatter", &before, &after, asked, &sub_ratio, &page_ratio);
	CU_ASSERT(page_ratio <= 2.0);
	it_stop_ok(d);
}

int main(int argc, char **argv)
{
	static const struct it_case cases[] = {
		{ "sequential_storm", test_sequential_storm },
		{ "random_scatter", test_random_scatter },
		{ NULL, NULL },
	};

	return it_main(argc, argv, "coalesce_figures", cases);
}
