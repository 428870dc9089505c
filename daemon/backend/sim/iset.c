// SPDX-License-Identifier: MIT
/*
 * Sorted disjoint interval set of page frame numbers (see iset.h), and the
 * pfn range a page request covers.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backend/sim/iset.h"
#include "util/search.h"

void sim_iset_init(struct sim_iset *s)
{
	s->r = NULL;
	s->n = 0;
	s->cap = 0;
	s->pages = 0;
}

void sim_iset_free(struct sim_iset *s)
{
	free(s->r);
	sim_iset_init(s);
}

/* Room for `more` additional intervals, so later steps cannot fail. */
static int iset_reserve(struct sim_iset *s, uint32_t more)
{
	struct sim_range *r;
	uint32_t cap;

	if (s->n + more <= s->cap)
		return 0;
	if (s->n > UINT32_MAX / 2 - more)
		return -ENOMEM;
	cap = s->cap ? s->cap * 2 : 8;
	while (cap < s->n + more)
		cap *= 2;
	r = realloc(s->r, (size_t)cap * sizeof(*r));
	if (!r)
		return -ENOMEM;
	s->r = r;
	s->cap = cap;
	return 0;
}

static bool end_ge(const void *arr, uint32_t i, uint64_t pfn)
{
	return ((const struct sim_range *)arr)[i].end >= pfn;
}

static bool start_gt(const void *arr, uint32_t i, uint64_t pfn)
{
	return ((const struct sim_range *)arr)[i].start > pfn;
}

/* First index whose interval ends at or after pfn (n if none). */
static uint32_t first_end_ge(const struct sim_iset *s, uint64_t pfn)
{
	return search_first_past(s->r, s->n, pfn, end_ge);
}

/* First index whose interval starts after pfn (n if none). */
static uint32_t first_start_gt(const struct sim_iset *s, uint64_t pfn)
{
	return search_first_past(s->r, s->n, pfn, start_gt);
}

/* Drops intervals [i, j) by shifting the tail down. */
static void iset_delete(struct sim_iset *s, uint32_t i, uint32_t j)
{
	if (i >= j)
		return;
	memmove(&s->r[i], &s->r[j], (size_t)(s->n - j) * sizeof(s->r[0]));
	s->n -= j - i;
}

static void iset_insert(struct sim_iset *s, uint32_t i, uint64_t start, uint64_t end)
{
	memmove(&s->r[i + 1], &s->r[i], (size_t)(s->n - i) * sizeof(s->r[0]));
	s->r[i].start = start;
	s->r[i].end = end;
	s->n++;
}

int sim_iset_add(struct sim_iset *s, uint64_t start, uint64_t end)
{
	uint32_t i, j;
	int rc;

	if (start >= end)
		return 0;
	/*
	 * Intervals in [i, j) overlap or touch [start, end): they all merge
	 * into one, which keeps the representation canonical (no two
	 * adjacent intervals), so equal sets compare equal interval by
	 * interval.
	 */
	i = first_end_ge(s, start);
	j = first_start_gt(s, end);
	if (i == j) {
		rc = iset_reserve(s, 1);
		if (rc)
			return rc;
		iset_insert(s, i, start, end);
		s->pages += end - start;
		return 0;
	}
	for (uint32_t k = i; k < j; k++)
		s->pages -= s->r[k].end - s->r[k].start;
	if (s->r[i].start < start)
		start = s->r[i].start;
	if (s->r[j - 1].end > end)
		end = s->r[j - 1].end;
	s->r[i].start = start;
	s->r[i].end = end;
	s->pages += end - start;
	iset_delete(s, i + 1, j);
	return 0;
}

int sim_iset_remove(struct sim_iset *s, uint64_t start, uint64_t end)
{
	uint32_t i, j;
	int rc;

	if (start >= end)
		return 0;
	i = first_end_ge(s, start + 1); /* first interval ending past start */
	if (i == s->n || s->r[i].start >= end)
		return 0;

	/* A hole strictly inside one interval splits it in two. */
	if (s->r[i].start < start && s->r[i].end > end) {
		rc = iset_reserve(s, 1);
		if (rc)
			return rc;
		iset_insert(s, i + 1, end, s->r[i].end);
		s->r[i].end = start;
		s->pages -= end - start;
		return 0;
	}
	if (s->r[i].start < start) {
		s->pages -= s->r[i].end - start;
		s->r[i].end = start; /* keep the left part */
		i++;
	}
	for (j = i; j < s->n && s->r[j].end <= end; j++)
		s->pages -= s->r[j].end - s->r[j].start; /* fully covered: dropped below */
	if (j < s->n && s->r[j].start < end) {
		s->pages -= end - s->r[j].start;
		s->r[j].start = end; /* keep the right part */
	}
	iset_delete(s, i, j);
	return 0;
}

uint64_t sim_iset_count(const struct sim_iset *s, uint64_t start, uint64_t end)
{
	uint64_t total = 0;
	uint32_t i;

	if (start >= end)
		return 0;
	for (i = first_end_ge(s, start + 1); i < s->n && s->r[i].start < end; i++) {
		uint64_t lo = s->r[i].start > start ? s->r[i].start : start;
		uint64_t hi = s->r[i].end < end ? s->r[i].end : end;

		total += hi - lo;
	}
	return total;
}

uint64_t sim_iset_total(const struct sim_iset *s)
{
	return s->pages;
}
