/* SPDX-License-Identifier: MIT */
/*
 * iommu-nest-demo: what a VMM does with libiommu-nest, as a guided tour.
 *
 *   iommu-nest-demo [--socket PATH] DEVICE
 *       maps guest RAM on DEVICE, allocates and attaches a nested VT-d
 *       HWPT, sends batches of invalidations (a storm of single pages,
 *       mixed leaf and non-leaf ranges, invalid entries with and without
 *       IOMMU_NEST_INV_CONTINUE, pipelined asynchronous requests, a
 *       flush-all) and prints every per-entry result; with the sim backend
 *       also the model IOTLB before and after. Then it tears down.
 *   iommu-nest-demo [--socket PATH] --guest SECONDS DEVICE
 *       plays a running guest: allocates and attaches a HWPT, sends one
 *       invalidation, prints "hwpt ID ..." and keeps the connection (HWPTs
 *       die with it) for SECONDS, so an operator can look at it.
 *
 * An example for VMM authors, built with the tree and not installed:
 * scripts/demo.sh runs it against a daemon on the sim backend.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "iommu_nest.h"
#include "tables.h"

#define PAGE_SIZE 4096ull

/* The guest's first-stage page table and address width: any will do for the sim. */
#define DEMO_PGTBL	0x10000000ull
#define DEMO_ADDR_WIDTH 48u

/* The demo guest's RAM: 64 MiB at guest-physical (= IOVA) 0. */
#define DEMO_RAM_SIZE (64ull << 20)
#define DEMO_RAM_IOVA 0ull

static struct iommu_nest *h;

/* Reports a failed call on stderr (with the daemon's reason); returns 1. */
static int fail(const char *what, int err)
{
	const char *detail = h ? iommu_nest_last_error(h) : "";

	fprintf(stderr, "iommu-nest-demo: %s: %s (%s)%s%s\n", what, strerror(-err), errname(err),
		detail[0] ? ": " : "", detail);
	return 1;
}

/* ---- the tour's invalidations ----------------------------------------------- */

struct region {
	const char *name;
	uint64_t addr;
	uint64_t npages;
	uint64_t iotlb, psc; /* before */
};

static struct region regions[] = {
    {.name = "storm", .addr = 0x100000, .npages = 64},
    {.name = "mixed", .addr = 0x400000, .npages = 512},
    {.name = "errors", .addr = 0x800000, .npages = 16},
    {.name = "pipelined", .addr = 0xc00000, .npages = 64},
};
#define N_REGIONS (sizeof(regions) / sizeof(regions[0]))

static int demo_populate(uint32_t id)
{
	size_t i;
	int err;

	for (i = 0; i < N_REGIONS; i++) {
		err = iommu_nest_sim_populate(h, id, regions[i].addr, regions[i].npages,
					      IOMMU_NEST_SIM_IOTLB);
		if (err)
			return fail("sim_populate", err);
	}
	/* The mixed region also has its paging-structure caches warm. */
	err = iommu_nest_sim_populate(h, id, 0x400000, 512, IOMMU_NEST_SIM_PSC);
	if (err)
		return fail("sim_populate", err);
	for (i = 0; i < N_REGIONS; i++) {
		err = iommu_nest_sim_query(h, id, regions[i].addr, regions[i].npages,
					   &regions[i].iotlb, &regions[i].psc);
		if (err)
			return fail("sim_query", err);
	}
	printf("model IOTLB populated: leaf translations in 4 regions, paging-structure "
	       "entries over %#x +512 pages\n",
	       0x400000);
	return 0;
}

static int demo_batch(uint32_t id, const char *title, const struct iommu_nest_vtd_inv *e, size_t n,
		      uint32_t flags)
{
	struct iommu_nest_entry_result *r = calloc(n, sizeof(*r));
	struct iommu_nest_inv_summary s;
	int rc;

	if (!r)
		return fail(title, -ENOMEM);
	rc = iommu_nest_invalidate(h, id, IOMMU_NEST_INV_DATA_VTD_S1, e, n, flags, r, &s);
	/* These end the connection; any other status is the batch's own result. */
	if (rc == -EPROTO || rc == -ECONNRESET || rc == -EPIPE || rc == -EMSGSIZE) {
		free(r);
		return fail(title, rc);
	}
	print_results(title, e, n, r, &s, rc);
	free(r);
	return 0;
}

static int demo_storm(uint32_t id)
{
	struct iommu_nest_vtd_inv e[64];
	size_t i;

	for (i = 0; i < 64; i++)
		e[i] = (struct iommu_nest_vtd_inv){.addr = 0x100000 + i * PAGE_SIZE,
						   .npages = 1,
						   .flags = IOMMU_NEST_VTD_INV_FLAGS_LEAF};
	return demo_batch(id, "sequential 4 KiB unmap storm", e, 64, 0);
}

static int demo_mixed(uint32_t id)
{
	static const struct iommu_nest_vtd_inv e[] = {
	    {0x400000, 8, IOMMU_NEST_VTD_INV_FLAGS_LEAF, 0},
	    {0x402000, 8, 0, 0}, /* overlaps the first, non-leaf */
	    {0x40a000, 4, IOMMU_NEST_VTD_INV_FLAGS_LEAF, 0},
	    {0x420000, 32, 0, 0},
	    {0x500000, 2, IOMMU_NEST_VTD_INV_FLAGS_LEAF, 0},
	};

	return demo_batch(id, "mixed leaf / non-leaf batch", e, 5, 0);
}

static int demo_errors(uint32_t id)
{
	static const struct iommu_nest_vtd_inv e[] = {
	    {0x800000, 1, IOMMU_NEST_VTD_INV_FLAGS_LEAF, 0},
	    {0x801800, 1, IOMMU_NEST_VTD_INV_FLAGS_LEAF, 0}, /* unaligned: EINVAL */
	    {0x802000, 2, IOMMU_NEST_VTD_INV_FLAGS_LEAF, 0},
	    {0x804000, 1, 0x80, 0}, /* unknown flag: EOPNOTSUPP */
	    {0x805000, 3, 0, 0},
	};
	int rc;

	rc = demo_batch(id, "batch with invalid entries, stop at first error", e, 5, 0);
	if (rc)
		return rc;
	if (!(iommu_nest_capabilities(h) & IOMMU_NEST_CAP_CONTINUE)) {
		printf("\n(daemon does not offer CAP_CONTINUE: skipping the continue batch)\n");
		return 0;
	}
	return demo_batch(id, "same batch with IOMMU_NEST_INV_CONTINUE", e, 5,
			  IOMMU_NEST_INV_CONTINUE);
}

static void demo_done(struct iommu_nest *hh, uint64_t token, const struct iommu_nest_inv_summary *s,
		      struct iommu_nest_entry_result *r, size_t n, void *opaque)
{
	printf("  token %-4" PRIu64
	       " status %-6s handled %u/%zu  submitted %u  pages_flushed %" PRIu64 "\n",
	       token, s->status ? errname(s->status) : "OK", s->entries_handled, n,
	       s->entries_submitted, s->pages_flushed);
}

/* Four requests in flight at once, completed from a poll() loop. */
static int demo_pipelined(uint32_t id)
{
	static struct iommu_nest_entry_result r[4][16];
	struct iommu_nest_vtd_inv e[16];
	struct pollfd pfd = {.fd = iommu_nest_fd(h), .events = POLLIN};
	int b, i, rc;

	printf("\n== pipelined: 4 async requests of 16 pages each ==\n");
	for (b = 0; b < 4; b++) {
		for (i = 0; i < 16; i++)
			e[i] = (struct iommu_nest_vtd_inv){
			    .addr = 0xc00000 + (uint64_t)(b * 16 + i) * PAGE_SIZE,
			    .npages = 1,
			    .flags = IOMMU_NEST_VTD_INV_FLAGS_LEAF};
		rc = iommu_nest_invalidate_submit(h, id, IOMMU_NEST_INV_DATA_VTD_S1, e, 16, 0, r[b],
						  demo_done, NULL, NULL);
		if (rc)
			return fail("invalidate_submit", rc);
	}
	printf("  %zu requests in flight\n", iommu_nest_in_flight(h));
	while (iommu_nest_in_flight(h)) {
		if (!iommu_nest_pending(h) && poll(&pfd, 1, 5000) <= 0)
			return fail("pipelined", -ETIMEDOUT);
		rc = iommu_nest_process(h);
		if (rc < 0)
			return fail("process", rc);
	}
	return 0;
}

static int demo_flush_all(uint32_t id)
{
	static const struct iommu_nest_vtd_inv e[] = {{0, UINT64_MAX, 0, 0}};

	return demo_batch(id, "invalidate everything (addr 0, npages U64_MAX)", e, 1, 0);
}

static int demo_report_model(uint32_t id, const char *when)
{
	uint64_t iotlb, psc;
	size_t i;
	int err;

	printf("\n== model IOTLB %s ==\n", when);
	printf("  %-10s %-20s %-18s %s\n", "region", "range", "leaf pages", "paging-structure");
	for (i = 0; i < N_REGIONS; i++) {
		struct region *g = &regions[i];

		err = iommu_nest_sim_query(h, id, g->addr, g->npages, &iotlb, &psc);
		if (err)
			return fail("sim_query", err);
		printf("  %-10s %#-9" PRIx64 "+%-8" PRIu64 " %4" PRIu64 " -> %-8" PRIu64
		       " %4" PRIu64 " -> %" PRIu64 "\n",
		       g->name, g->addr, g->npages, g->iotlb, iotlb, g->psc, psc);
	}
	return 0;
}

static int demo_steps(uint32_t id, bool sim)
{
	int rc;

	if (sim && (rc = demo_populate(id)))
		return rc;
	if ((rc = demo_storm(id)) || (rc = demo_mixed(id)) || (rc = demo_errors(id)) ||
	    (rc = demo_pipelined(id)))
		return rc;
	if (sim && (rc = demo_report_model(id, "after the batches (before -> after)")))
		return rc;
	if ((rc = demo_flush_all(id)))
		return rc;
	if (sim && (rc = demo_report_model(id, "after invalidate-everything")))
		return rc;
	return 0;
}

/* ---- setup and teardown ----------------------------------------------------- */

/*
 * Hands the guest RAM to the daemon for the device's stage 2, as a VMM
 * does before the guest runs: a memfd, sized, mapped at its IOVA. The
 * descriptor is closed right away: the daemon got its own, and the kernel
 * keeps the pages pinned while they are mapped.
 */
static int demo_map_ram(const char *dev)
{
	int fd = memfd_create("iommu-nest-demo-guest-ram", MFD_CLOEXEC);
	int err;

	if (fd < 0)
		return fail("memfd_create", -errno);
	if (ftruncate(fd, (off_t)DEMO_RAM_SIZE) < 0) {
		err = -errno;
		close(fd);
		return fail("ftruncate", err);
	}
	err = iommu_nest_map_memory(h, dev, DEMO_RAM_IOVA, DEMO_RAM_SIZE, fd, 0,
				    IOMMU_NEST_MAP_READABLE | IOMMU_NEST_MAP_WRITEABLE);
	close(fd);
	if (err)
		return fail("map guest RAM", err);
	printf("mapped %llu MiB of guest RAM (memfd) at IOVA %#llx on %s (stage 2)\n",
	       DEMO_RAM_SIZE >> 20, DEMO_RAM_IOVA, dev);
	return 0;
}

/* Detach, destroy, unmap, and (for an administrator) the daemon's counters. */
static int demo_teardown(const char *dev, uint32_t id, int rc)
{
	struct iommu_nest_stats st;
	int err;

	err = iommu_nest_detach(h, dev);
	if (err)
		rc = fail("detach", err);
	err = iommu_nest_destroy(h, id);
	if (err)
		rc = fail("destroy", err);
	else
		printf("\ndetached %s, destroyed HWPT %u\n", dev, id);
	err = iommu_nest_unmap_memory(h, dev, DEMO_RAM_IOVA, DEMO_RAM_SIZE);
	if (err)
		rc = fail("unmap guest RAM", err);
	else
		printf("unmapped the guest RAM from %s\n", dev);
	err = iommu_nest_stats(h, &st);
	if (err == -EPERM) {
		printf("\n(daemon counters: admin only, see [policy] admin_groups)\n");
		return rc;
	}
	if (err)
		return fail("stats", err);
	printf("\n== daemon counters ==\n");
	print_stats_table(&st);
	return rc;
}

static int tour(const char *dev)
{
	bool sim = iommu_nest_capabilities(h) & IOMMU_NEST_CAP_SIM_MODEL;
	uint32_t id;
	int rc, err;

	printf("connected to iommu-nestd: backend %s, max %u entries/request\n",
	       iommu_nest_backend(h), iommu_nest_max_entries(h));
	rc = demo_map_ram(dev);
	if (rc)
		return rc;
	err = iommu_nest_alloc_vtd_s1(h, dev, 0, DEMO_PGTBL, DEMO_ADDR_WIDTH, &id);
	if (err)
		return fail("alloc nested VT-d HWPT", err);
	printf("allocated nested VT-d stage-1 HWPT %u on %s (pgtbl %#llx, %u-bit)\n", id, dev,
	       DEMO_PGTBL, DEMO_ADDR_WIDTH);
	err = iommu_nest_attach(h, dev, id);
	if (err)
		return fail("attach", err);
	printf("attached %s\n", dev);
	if (!sim)
		printf("(backend has no model IOTLB: skipping populate/query)\n");
	return demo_teardown(dev, id, demo_steps(id, sim));
}

/* A guest at work: one HWPT, attached, one invalidation, then it waits. */
static int guest(const char *dev, double seconds)
{
	static const struct iommu_nest_vtd_inv e[] = {{0x200000, 64, 0, 0}};
	struct iommu_nest_entry_result r[1];
	struct iommu_nest_inv_summary s;
	struct timespec ts = {.tv_sec = (time_t)seconds,
			      .tv_nsec = (long)((seconds - (double)(time_t)seconds) * 1e9)};
	uint32_t id;
	int err;

	err = iommu_nest_alloc_vtd_s1(h, dev, 0, DEMO_PGTBL, DEMO_ADDR_WIDTH, &id);
	if (err)
		return fail("alloc nested VT-d HWPT", err);
	err = iommu_nest_attach(h, dev, id);
	if (err)
		return fail("attach", err);
	err = iommu_nest_invalidate(h, id, IOMMU_NEST_INV_DATA_VTD_S1, e, 1, 0, r, &s);
	if (err)
		return fail("invalidate", err);
	printf("hwpt %u attached to %s, holding it %g s\n", id, dev, seconds);
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: iommu-nest-demo [--socket PATH] [--guest SECONDS] DEVICE\n"
		   "  the batched-invalidation tour on DEVICE; with --guest, hold one\n"
		   "  attached HWPT for SECONDS instead, like a running guest\n"
		   "  (default socket " IOMMU_NEST_DEFAULT_SOCKET ")\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"socket", required_argument, NULL, 's'},
					     {"guest", required_argument, NULL, 'g'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	const char *path = IOMMU_NEST_DEFAULT_SOCKET;
	double hold = -1;
	char *end;
	int o, rc, err;

	/* Lines out as they come, also into a pipe or file (scripts wait for them). */
	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((o = getopt_long(argc, argv, "s:g:h", opts, NULL)) != -1) {
		switch (o) {
		case 's':
			path = optarg;
			break;
		case 'g':
			hold = strtod(optarg, &end);
			if (end == optarg || *end || !(hold >= 0 && hold <= 3600)) {
				fprintf(stderr,
					"iommu-nest-demo: bad --guest '%s' (seconds, "
					"0-3600)\n",
					optarg);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind + 1 != argc) {
		usage(stderr);
		return 2;
	}
	err = iommu_nest_connect(path, "iommu-nest-demo", &h);
	if (err) {
		fprintf(stderr, "iommu-nest-demo: connect %s: %s\n", path, strerror(-err));
		return 1;
	}
	rc = hold >= 0 ? guest(argv[optind], hold) : tour(argv[optind]);
	iommu_nest_close(h);
	return rc;
}
