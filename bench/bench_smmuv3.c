/* SPDX-License-Identifier: MIT */
/*
 * SMMUv3 command streams, in-process: what the daemon's SMMUv3 path does
 * with a guest's command queue, one request per guest CMD_SYNC batch
 * (validation against the vDEVICE table, then coalescing), against the
 * one-command-per-ioctl floor of today's VMMs (QEMU's accelerated SMMUv3
 * sends entry_num = 1: commands received = ioctls). Counts are exact;
 * ns per command is the validator and coalescer's CPU per received
 * command (a figure, never asserted). No vIOMMU object yet, so no kernel.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/smmuv3_cmd.h"
#include "bench.h"
#include "inv/smmuv3.h"

#define MAX_BATCH 1024

static const struct smmuv3_vsid vsids[] = {{1, 0x100}, {2, 0x200}};
static const struct smmuv3_vsid_map vmap = {vsids, 2};

static struct smmuv3_cmd mk_va(uint32_t asid, uint64_t page)
{
	struct smmuv3_cmd c = {{0, 0}};

	SMMUV3_SET0(&c, SMMUV3_OP, SMMUV3_OP_TLBI_NH_VA);
	SMMUV3_SET0(&c, SMMUV3_TLBI_ASID, asid);
	SMMUV3_SET1(&c, SMMUV3_LEAF, 1);
	smmuv3_set_addr(&c, page << 12);
	return c;
}

static struct smmuv3_cmd mk_cd(uint32_t vsid, uint32_t ssid)
{
	struct smmuv3_cmd c = {{0, 0}};

	SMMUV3_SET0(&c, SMMUV3_OP, SMMUV3_OP_CFGI_CD);
	SMMUV3_SET0(&c, SMMUV3_SID, vsid);
	SMMUV3_SET0(&c, SMMUV3_SSID, ssid);
	SMMUV3_SET1(&c, SMMUV3_LEAF, 1);
	return c;
}

/* Request r of a workload: fills c, returns its command count. */
typedef uint32_t (*smmu_gen)(uint64_t r, struct smmuv3_cmd *c);

/* A guest unmapping 2 MiB page by page: 512 NH_VA, then CMD_SYNC. */
static uint32_t gen_storm(uint64_t r, struct smmuv3_cmd *c)
{
	for (uint32_t i = 0; i < 512; i++)
		c[i] = mk_va(1, (r % 4096) * 512 + i);
	return 512;
}

/* Linux's own batching: 8 pages per CMD_SYNC (small unmaps). */
static uint32_t gen_small(uint64_t r, struct smmuv3_cmd *c)
{
	for (uint32_t i = 0; i < 8; i++)
		c[i] = mk_va(1, (r % 65536) * 8 + i);
	return 8;
}

/* Four address spaces unmapping at once, switching ASID every 8 pages. */
static uint32_t gen_asid(uint64_t r, struct smmuv3_cmd *c)
{
	uint32_t n = 0;

	for (uint32_t blk = 0; blk < 32; blk++)
		for (uint32_t i = 0; i < 8; i++)
			c[n++] = mk_va(1 + blk % 4, (r % 4096) * 64 + (blk / 4) * 8 + i);
	return n;
}

/* A guest rewriting 16 PASIDs' CDs, each CFGI_CD'd 8 times (per field). */
static uint32_t gen_cfgi(uint64_t r, struct smmuv3_cmd *c)
{
	uint32_t n = 0;

	for (uint32_t k = 0; k < 8; k++)
		for (uint32_t s = 0; s < 16; s++)
			c[n++] = mk_cd(1 + (uint32_t)(r & 1), s);
	return n;
}

struct smmu_wl {
	const char *name;
	const char *what;
	smmu_gen gen;
	bool ril;
};

static const struct smmu_wl wls[] = {
    {"unmap-storm", "512 x NH_VA per page + sync", gen_storm, true},
    {"unmap-storm-noril", "same, host without range invalidation", gen_storm, false},
    {"small-unmap", "8 x NH_VA + sync", gen_small, true},
    {"asid-switch", "4 ASIDs x 64 pages, switch every 8", gen_asid, true},
    {"cfgi-burst", "16 CDs x 8 CFGI_CD + sync", gen_cfgi, true},
};

int bench_smmuv3(double seconds, FILE *csv)
{
	static struct smmuv3_cmd cmds[MAX_BATCH];
	static struct inv_entry_result res[MAX_BATCH];
	struct coalesce_plan plan;
	int rc = 0;

	coalesce_plan_init(&plan);
	printf("\nSMMUv3 command streams (in-process: validate + coalesce, one request per "
	       "guest CMD_SYNC)\n");
	printf("  %-18s %-40s %6s %10s %10s %7s %10s %8s\n", "workload", "stream", "cmd/rq",
	       "received", "submitted", "fewer", "ioctls", "ns/cmd");
	for (size_t w = 0; w < sizeof(wls) / sizeof(wls[0]); w++) {
		struct smmuv3_coalesce_params p = {
		    .enabled = true, .range = wls[w].ril, .va_tg = 1, .slack_granules = 0};
		uint64_t recv = 0, sub = 0, reqs = 0, busy = 0, t_end;
		uint32_t per = 0;

		t_end = bench_now_ns() + (uint64_t)(seconds * 1e9);
		while (bench_now_ns() < t_end || !reqs) {
			struct inv_request req = {.data_type =
						      IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3,
						  .entry_len = SMMUV3_CMD_SIZE,
						  .entries = cmds,
						  .res = res};
			uint64_t t0;

			req.n = per = wls[w].gen(reqs, cmds);
			t0 = bench_now_ns();
			if (smmuv3_validate_request(&req) ||
			    smmuv3_validate_entries(&req, &vmap) != req.n ||
			    coalesce_smmuv3(cmds, req.n, &p, &plan)) {
				fprintf(stderr, "bench: smmuv3 %s: rejected\n", wls[w].name);
				rc = -1;
				break;
			}
			busy += bench_now_ns() - t0;
			recv += req.n;
			sub += plan.n_sub;
			reqs++;
		}
		if (!recv || !sub)
			continue;
		printf("  %-18s %-40s %6u %10llu %10llu %6.1fx %4llu->%-5llu %8.1f\n", wls[w].name,
		       wls[w].what, per, (unsigned long long)recv, (unsigned long long)sub,
		       (double)recv / (double)sub, (unsigned long long)(recv / reqs),
		       (unsigned long long)1, (double)busy / (double)recv);
		if (csv)
			fprintf(csv,
				"smmuv3,%s,inproc,1,%u,0,,,,%.2f,,,,,,,%.1f,,,%.2f,0,%llu,%llu\n",
				wls[w].name, per, (double)recv / (double)sub,
				(double)busy / (double)recv, (double)busy / 1e9,
				(unsigned long long)recv, (unsigned long long)sub);
	}
	printf("  received = commands the guest queued = ioctls at the one-command-per-ioctl "
	       "floor;\n  submitted = commands the daemon hands the kernel; ioctls = per guest "
	       "sync batch, floor -> daemon\n");
	coalesce_plan_free(&plan);
	return rc;
}
