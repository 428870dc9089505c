/* SPDX-License-Identifier: MIT */
/*
 * Latency histograms for the metrics: fixed bucket bounds (1-2.5-5 steps
 * from 1 us to 1 s), so recording is a short scan and no allocation, and
 * every daemon exports the same buckets (OpenMetrics wants fixed ones).
 */
#ifndef IOMMU_NESTD_LATENCY_HIST_H
#define IOMMU_NESTD_LATENCY_HIST_H

#include <stdint.h>

#include "util/common.h"

#define LATENCY_HIST_BOUNDS 19

struct latency_hist {
	uint64_t count[LATENCY_HIST_BOUNDS + 1]; /* the last one: above every bound */
	uint64_t sum_ns;
	uint64_t samples;
};

/* Upper bounds of the buckets, in nanoseconds, ascending. */
extern const uint64_t latency_hist_bound_ns[LATENCY_HIST_BOUNDS];

void latency_hist_record(struct latency_hist *h, uint64_t ns);

/* CLOCK_MONOTONIC in nanoseconds. */

#endif
