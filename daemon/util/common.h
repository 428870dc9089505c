/* SPDX-License-Identifier: MIT */
/*
 * The one home of the daemon's small helpers: the clock, saturating
 * arithmetic, descriptor lists. Calls nothing of the daemon's.
 */
#ifndef IOMMU_NESTD_UTIL_COMMON_H
#define IOMMU_NESTD_UTIL_COMMON_H

#include <stdint.h>
#include <time.h>
#include <unistd.h>

/* CLOCK_MONOTONIC in nanoseconds: durations, deadlines, latencies. */
static inline uint64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Counters that must not wrap (a flush-all counts as UINT64_MAX pages). */
static inline uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* Closes the descriptors a packet carried. */
static inline void close_fds(const int *fds, int n)
{
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

#endif
