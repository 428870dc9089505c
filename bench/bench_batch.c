/* SPDX-License-Identifier: MIT */
/*
 * VT-d batches in-process: the daemon's per-entry pipeline - validation
 * (inv_validate_entries), then one pass's batch (inv_batch_run: gather,
 * coalesce, submit to the sim backend, map the results) - with nothing
 * around it: no event loop, no transport, no copies in or out. It is the
 * part of the daemon's CPU per entry that grows with the entries, measured
 * apart from the wake-ups and cache-line transfers that make the daemon
 * rows noisy on a shared VM. Figures are printed, never asserted; the
 * column "best" is the fastest block of 64 batches, the figure least
 * disturbed by the neighbours. lazy-fq 4 x 256 is what the daemon batches
 * by default (batch_max_entries = 1024); 16 x 256, a pipelined client's
 * whole window of 4096 entries in one batch, shows why it stops there.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "bench.h"
#include "inv/batch.h"
#include "inv/validate.h"
#include "util/config.h"

#define BLOCK 64 /* batches per timed block */

struct batch_row {
	const char *workload;
	uint32_t requests; /* per batch: one pass's requests on one HWPT */
};

static const struct batch_row rows[] = {
    {"lazy-fq", 1},    {"lazy-fq", 4},	{"lazy-fq", 16},
    {"seq-batch", 16}, {"scatter", 16}, {"mixed", 16},
};

struct batch_fix {
	struct backend *be;
	uint32_t hwpt;
	struct inv_batch_ctx ctx;
};

static int fix_open(struct batch_fix *f)
{
	const struct config *cfg;
	int rc = bench_sim_vtd(&cfg, &f->be, &f->hwpt);

	if (rc)
		return rc;
	/* The daemon's defaults: what [coalesce] gives without a config. */
	inv_batch_ctx_init(&f->ctx,
			   &(struct coalesce_params){.enabled = cfg->coalesce,
						     .slack_pages = cfg->coalesce_slack_pages,
						     .flush_all_pages = cfg->flush_all_pages,
						     .vtd_max_mask = cfg->vtd_max_mask});
	return 0;
}

static void fix_close(struct batch_fix *f)
{
	inv_batch_ctx_free(&f->ctx);
	f->be->ops->destroy(f->be, f->hwpt);
	f->be->ops->close(f->be);
}

/* One row: batches of nreq requests of the workload, for seconds. */
static int run_row(struct batch_fix *f, const struct workload *wl, uint32_t nreq, double seconds,
		   FILE *csv)
{
	size_t n = (size_t)nreq * wl->batch;
	struct iommu_nest_vtd_inv *e = calloc(n, sizeof(*e));
	struct inv_entry_result *res = calloc(n, sizeof(*res));
	struct inv_request *rq = calloc(nreq, sizeof(*rq));
	uint64_t busy = 0, block = 0, best = UINT64_MAX, batches = 0, entries = 0, t_end;
	struct inv_batch_stats st = {0};
	struct wl_state ws;
	int rc = 0;

	if (!e || !res || !rq) {
		rc = -ENOMEM;
		goto out;
	}
	_Static_assert(sizeof(*e) == sizeof(struct iommu_hwpt_vtd_s1_invalidate),
		       "the library's VT-d entry is the kernel's");
	wl_state_init(&ws, 0);
	t_end = bench_now_ns() + (uint64_t)(seconds * 1e9);
	while (bench_now_ns() < t_end || batches < BLOCK) {
		struct inv_request *head = NULL, **tail = &head;
		uint64_t t0;

		for (uint32_t r = 0; r < nreq; r++)
			wl->gen(&ws, e + (size_t)r * wl->batch, wl->batch);
		t0 = bench_now_ns();
		for (uint32_t r = 0; r < nreq; r++) {
			struct inv_request *q = &rq[r];

			*q = (struct inv_request){.hwpt_id = f->hwpt,
						  .data_type = IOMMU_HWPT_INVALIDATE_DATA_VTD_S1,
						  .n = wl->batch,
						  .entries = e + (size_t)r * wl->batch,
						  .res = res + (size_t)r * wl->batch};
			if (inv_validate_request(q, IOMMU_HWPT_INVALIDATE_DATA_VTD_S1) ||
			    inv_validate_entries(q) != q->n) {
				rc = -EINVAL;
				goto out;
			}
			*tail = q;
			tail = &q->next;
		}
		rc = inv_batch_run(&f->ctx, f->be, head, &st);
		t0 = bench_now_ns() - t0;
		if (rc)
			goto out;
		for (uint32_t r = 0; r < nreq; r++)
			if (rq[r].status || rq[r].entries_handled != rq[r].n) {
				rc = -EIO;
				goto out;
			}
		busy += t0;
		block += t0;
		entries += n;
		if (++batches % BLOCK == 0) {
			best = block < best ? block : best;
			block = 0;
		}
	}
	printf("  %-10s %8u %6u %10llu %10llu %6.2fx %8.1f %8.1f\n", wl->name, nreq, wl->batch,
	       (unsigned long long)entries, (unsigned long long)st.entries_submitted,
	       (double)entries / (double)st.entries_submitted, (double)busy / (double)entries,
	       (double)best / (double)(BLOCK * n));
	if (csv)
		fprintf(csv, "batch,%s,inproc,%u,%u,0,,,,%.2f,,,,,,,%.1f,,,%.2f,0,%llu,%llu\n",
			wl->name, nreq, wl->batch, (double)entries / (double)st.entries_submitted,
			(double)busy / (double)entries, (double)busy / 1e9,
			(unsigned long long)entries, (unsigned long long)st.entries_submitted);
out:
	if (rc)
		fprintf(stderr, "bench: in-process batch %s x %u: %s\n", wl->name, nreq,
			strerror(rc < 0 ? -rc : rc));
	free(e);
	free(res);
	free(rq);
	return rc;
}

int bench_batch(double seconds, FILE *csv)
{
	struct batch_fix f;
	int rc;

	rc = fix_open(&f);
	if (rc)
		return rc;
	printf("\nVT-d batches in-process (validate + inv_batch_run into the sim: the daemon's "
	       "per-entry pipeline without its loop)\n");
	printf("  %-10s %8s %6s %10s %10s %7s %8s %8s\n", "workload", "requests", "batch",
	       "entries", "submitted", "fewer", "ns/ent", "best");
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]) && !rc; i++) {
		const struct workload *wl = workload_find(rows[i].workload);

		if (wl)
			rc = run_row(&f, wl, rows[i].requests, seconds, csv);
	}
	printf("  requests = one pass's requests on one HWPT, batched together; ns/ent = mean "
	       "CPU per entry;\n  best = the fastest block of %d batches\n",
	       BLOCK);
	fix_close(&f);
	return rc;
}
