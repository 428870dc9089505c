/* SPDX-License-Identifier: MIT */
/*
 * Executes one batch of validated Invalidate requests for one HWPT:
 * coalesce every INV_PENDING entry across the batch, submit the plan to the
 * backend (kernel entry_num semantics), and map the backend's outcome back
 * to a result for every client entry. This is the one place where backend
 * results become per-entry results.
 */
#ifndef IOMMU_NESTD_INV_BATCH_H
#define IOMMU_NESTD_INV_BATCH_H

#include "backend/backend.h"
#include "inv/coalesce.h"
#include "inv/request.h"

struct inv_batch_stats {
	uint64_t submissions;	    /* backend invalidate calls */
	uint64_t entries_submitted; /* backend entries in those calls */
	uint64_t pages_flushed;	    /* modelled */
	/* Plans the coalescer widened to a domain-wide flush no entry asked for. */
	uint64_t escalations;
	/*
	 * pages_flushed split for metrics, where a counter that saturates is
	 * useless: domain-wide flushes counted, and the pages of the others.
	 */
	uint64_t flush_alls;
	uint64_t ranged_pages;
};

/* Reused working memory; one per daemon (the loop is single-threaded). */
struct inv_batch_ctx {
	struct coalesce_params params;
	struct coalesce_plan plan;
	/*
	 * Entries per backend call; 0 (what init sets) means
	 * IOMMU_HWPT_INVALIDATE_ENTRY_NUM_MAX. Tests lower it to exercise
	 * chunking without half a million entries.
	 */
	uint32_t max_chunk;
	void *scratch;
	size_t cap_scratch;
	/*
	 * hw_error of one backend call, kept all zero between calls (and so
	 * between batches: no batch pays for clearing it whole).
	 */
	uint32_t *hw;
	size_t cap_hw; /* bytes */
};

void inv_batch_ctx_init(struct inv_batch_ctx *ctx, const struct coalesce_params *p);
void inv_batch_ctx_free(struct inv_batch_ctx *ctx);

/*
 * reqs: a list (linked by ->next) of requests with the same hwpt_id and
 * data_type that passed inv_validate_request, their entries marked by
 * inv_validate_entries. On return every entry is DONE, FAILED or
 * NOT_ATTEMPTED and each request's status, entries_handled,
 * entries_submitted and pages_flushed are set. Entries reported DONE were
 * submitted and acknowledged by the backend. Returns 0, or a negative errno
 * when the batch could not run at all (-ENOMEM): then every pending entry
 * is NOT_ATTEMPTED and each request's status is that errno.
 */
int inv_batch_run(struct inv_batch_ctx *ctx, struct backend *be, struct inv_request *reqs,
		  struct inv_batch_stats *stats);

#endif
