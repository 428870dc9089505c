/* SPDX-License-Identifier: MIT */
/*
 * The tables iommu-nestctl and the demo program (examples/demo.c) both
 * print: per-entry Invalidate results and the daemon's counters. One home,
 * so the demo's tour and the operator's "invalidate" look the same.
 */
#ifndef NESTCTL_TABLES_H
#define NESTCTL_TABLES_H

#include <stddef.h>
#include <stdint.h>

#include "iommu_nest.h"

/* The daemon counters, in the order every table and JSON object lists them. */
/* clang-format off */
#define STATS_FIELDS(X)							\
	X(connections) X(sessions_active) X(requests) X(request_errors)	\
	X(entries_received) X(entries_failed) X(entries_submitted)	\
	X(submissions) X(pages_flushed) X(hwpts_active)			\
	X(protocol_errors) X(batches) X(denials)
/* The shared-queue counters, listed after them as queue_NAME. */
#define QUEUE_STATS_FIELDS(X)						\
	X(submissions) X(completions) X(kicks) X(kicks_suppressed)	\
	X(calls) X(calls_suppressed) X(stalls) X(poll_passes)
/* clang-format on */

/* "EINVAL" for -EINVAL, "-" for 0. */
const char *errname(int err);

/* "done", "failed", "not_attempted": an entry result's state. */
const char *entry_state_name(uint32_t state);

/* A pages counter or count: "all" at UINT64_MAX (the flush-everything encoding). */
void fmt_count(char *buf, size_t len, uint64_t n);

/*
 * The result of one Invalidate as a table under "== title (n entries) ==":
 * one row per entry, runs of contiguous identical entries folded into one,
 * then the summary line with status rc.
 */
void print_results(const char *title, const struct iommu_nest_vtd_inv *e, size_t n,
		   const struct iommu_nest_entry_result *r, const struct iommu_nest_inv_summary *s,
		   int rc);

/* The daemon counters, one "  name value" line each. */
void print_stats_table(const struct iommu_nest_stats *st);
void print_queue_stats_table(const struct iommu_nest_queue_stats *qs);

#endif
