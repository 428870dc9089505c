/* SPDX-License-Identifier: MIT */
/*
 * Log-linear latency histogram: values below 2 * HIST_SUB ns are exact,
 * above that every power of two is split into HIST_SUB buckets, so a
 * quantile is within 1/HIST_SUB (~3%) of the true value. Fixed size, no
 * allocation: it lives in the shared memory the client processes fill.
 */
#include <errno.h>
#include <time.h>

#include "bench.h"

void bench_sleep_ns(uint64_t ns)
{
	struct timespec ts = { .tv_sec = ns / 1000000000ull, .tv_nsec = ns % 1000000000ull };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static uint32_t bucket_of(uint64_t v)
{
	uint32_t msb, shift;

	if (v < 2 * HIST_SUB)
		return (uint32_t)v;
	msb = 63 - (uint32_t)__builtin_clzll(v);
	shift = msb - HIST_SUB_BITS;
	return (shift + 1) * HIST_SUB + (uint32_t)((v >> shift) - HIST_SUB);
}

/* The middle of a bucket's range. */
static uint64_t bucket_value(uint32_t idx)
{
	uint32_t shift;
	uint64_t lo;

	if (idx < 2 * HIST_SUB)
		return idx;
	shift = idx / HIST_SUB - 1;
	lo = (uint64_t)(idx % HIST_SUB + HIST_SUB) << shift;
	return lo + ((1ull << shift) >> 1);
}

void hist_add(struct hist *h, uint64_t ns)
{
	uint32_t i = bucket_of(ns);

	if (i >= HIST_BUCKETS)
		i = HIST_BUCKETS - 1;
	h->b[i]++;
	h->count++;
	h->sum_ns += ns;
	if (ns > h->max_ns)
		h->max_ns = ns;
}

void hist_merge(struct hist *dst, const struct hist *src)
{
	for (uint32_t i = 0; i < HIST_BUCKETS; i++)
		dst->b[i] += src->b[i];
	dst->count += src->count;
	dst->sum_ns += src->sum_ns;
	if (src->max_ns > dst->max_ns)
		dst->max_ns = src->max_ns;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
	uint64_t want, acc = 0;

	if (!h->count)
		return 0;
	want = (uint64_t)(q * (double)h->count);
	if (want >= h->count)
		want = h->count - 1;
	for (uint32_t i = 0; i < HIST_BUCKETS; i++) {
		acc += h->b[i];
		if (acc > want) {
			uint64_t v = bucket_value(i);

			return v > h->max_ns ? h->max_ns : v;
		}
	}
	return h->max_ns;
}
