/* SPDX-License-Identifier: MIT */
/*
 * The one home of the daemon's small helpers: the clock, saturating
 * arithmetic, descriptor lists, growable arrays. Calls nothing of the daemon's.
 */
#ifndef IOMMU_NESTD_UTIL_COMMON_H
#define IOMMU_NESTD_UTIL_COMMON_H

#include <stdint.h>
#include <stdlib.h>
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
	uint64_t sum;

	/* An add and a conditional move: the coalescer sums with it per entry. */
	return __builtin_add_overflow(a, b, &sum) ? UINT64_MAX : sum;
}

/*
 * Room for element n of a growable array of *cap elements of size bytes:
 * the array itself when it has room, else it reallocated to twice the
 * capacity (first when empty) with *cap updated; NULL when out of memory
 * (the array and *cap unchanged). The caller stores what it returns.
 */
static inline void *array_room(void *items, uint32_t n, uint32_t *cap, size_t size, uint32_t first)
{
	uint32_t c;
	void *g;

	if (n < *cap)
		return items;
	c = *cap ? 2 * *cap : first;
	g = realloc(items, (size_t)c * size);
	if (g)
		*cap = c;
	return g;
}

/* Closes the descriptors a packet carried. */
static inline void close_fds(const int *fds, int n)
{
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

#endif
