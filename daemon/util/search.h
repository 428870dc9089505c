/* SPDX-License-Identifier: MIT */
/*
 * The one binary search over sorted arrays (object ids, IOAS areas,
 * interval sets). Header only and inline, so that the predicate is
 * inlined into each caller's loop and no room gains a call into util.
 */
#ifndef IOMMU_NESTD_UTIL_SEARCH_H
#define IOMMU_NESTD_UTIL_SEARCH_H

#include <stdbool.h>
#include <stdint.h>

/*
 * past(arr, i, key): whether element i of arr lies at or past the point
 * looked for (e.g. "arr[i].last >= key"). Along a sorted array it must be
 * false for a prefix and true for the rest.
 */
typedef bool (*search_past_fn)(const void *arr, uint32_t i, uint64_t key);

/*
 * The first index in [0, n) where past() holds, or n if it never does:
 * C++'s std::partition_point, of which a lower bound (past = "element >=
 * key") and an upper bound (past = "element > key") are the usual cases.
 */
static inline uint32_t search_first_past(const void *arr, uint32_t n, uint64_t key,
					 search_past_fn past)
{
	uint32_t lo = 0, hi = n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (past(arr, mid, key))
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

#endif
