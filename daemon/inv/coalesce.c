/* SPDX-License-Identifier: MIT */
/* Plan buffers and the identity plan shared by every coalescer. */
#include "inv/coalesce.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void coalesce_plan_init(struct coalesce_plan *plan)
{
	memset(plan, 0, sizeof(*plan));
}

void coalesce_plan_free(struct coalesce_plan *plan)
{
	free(plan->sub);
	free(plan->pages);
	free(plan->first);
	free(plan->last);
	free(plan->scratch);
	coalesce_plan_init(plan);
}

/* Grows *buf to at least need bytes, doubling so that reuse is amortised. */
static int grow(void **buf, size_t *cap, size_t need)
{
	size_t ncap;
	void *p;

	if (need <= *cap)
		return 0;
	ncap = *cap ? *cap : 1024;
	while (ncap < need)
		ncap *= 2;
	p = realloc(*buf, ncap);
	if (!p)
		return -ENOMEM;
	*buf = p;
	*cap = ncap;
	return 0;
}

int coalesce_plan_reserve(struct coalesce_plan *plan, uint32_t n_in, uint32_t n_sub,
			  size_t entry_size)
{
	size_t cap_first = plan->cap_in * sizeof(uint32_t);
	size_t cap_last = cap_first;
	int rc;

	rc = grow(&plan->sub, &plan->cap_sub, (size_t)n_sub * entry_size);
	if (!rc)
		rc =
		    grow((void **)&plan->pages, &plan->cap_pages, (size_t)n_sub * sizeof(uint64_t));
	if (rc)
		return rc;
	if ((size_t)n_in <= plan->cap_in)
		return 0;
	rc = grow((void **)&plan->first, &cap_first, (size_t)n_in * sizeof(uint32_t));
	if (rc)
		return rc;
	rc = grow((void **)&plan->last, &cap_last, (size_t)n_in * sizeof(uint32_t));
	if (rc)
		return rc;
	plan->cap_in = cap_first / sizeof(uint32_t);
	if (cap_last / sizeof(uint32_t) < plan->cap_in)
		plan->cap_in = cap_last / sizeof(uint32_t);
	return 0;
}

int coalesce_plan_scratch(struct coalesce_plan *plan, size_t bytes)
{
	return grow(&plan->scratch, &plan->cap_scratch, bytes);
}

int coalesce_identity(const void *in, uint32_t n, size_t entry_size, struct coalesce_plan *plan)
{
	int rc = coalesce_plan_reserve(plan, n, n, entry_size);

	if (rc)
		return rc;
	if (n)
		memcpy(plan->sub, in, (size_t)n * entry_size);
	for (uint32_t i = 0; i < n; i++)
		plan->first[i] = plan->last[i] = i;
	plan->n_sub = n;
	plan->pages_flushed = 0;
	return 0;
}
