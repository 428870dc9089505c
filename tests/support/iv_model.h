/* SPDX-License-Identifier: MIT */
/*
 * The tests' own page model: half-open page intervals [s, e), merged and
 * searched. Deliberately independent of the daemon's coalescer, so that
 * the coalescer and the batch executor are checked against something
 * they do not share code with.
 */
#ifndef IOMMU_NESTD_TEST_IV_MODEL_H
#define IOMMU_NESTD_TEST_IV_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct iv {
	uint64_t s, e;
	int strong; /* non-leaf (flushes paging-structure caches too) */
};

/* Sorts v by start and merges overlapping or adjacent intervals; returns the count. */
size_t iv_merge(struct iv *v, size_t n);

/* True if [s, e) lies inside one interval of merged v (an empty range always does). */
bool iv_covered(const struct iv *v, size_t n, uint64_t s, uint64_t e);

#endif
