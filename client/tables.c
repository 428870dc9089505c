/* SPDX-License-Identifier: MIT */
/* The result and counter tables of iommu-nestctl and the demo (tables.h). */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "tables.h"

#define PAGE_SIZE 4096ull

const char *errname(int err)
{
	const char *s;

	if (!err)
		return "-";
	s = strerrorname_np(err < 0 ? -err : err);
	return s ? s : "E?";
}

void fmt_count(char *buf, size_t len, uint64_t n)
{
	if (n == UINT64_MAX)
		snprintf(buf, len, "all");
	else
		snprintf(buf, len, "%" PRIu64, n);
}

const char *entry_state_name(uint32_t state)
{
	switch (state) {
	case IOMMU_NEST_ENTRY_DONE:
		return "done";
	case IOMMU_NEST_ENTRY_FAILED:
		return "failed";
	case IOMMU_NEST_ENTRY_NOT_ATTEMPTED:
		return "not_attempted";
	default:
		return "?";
	}
}

static bool same_row(const struct iommu_nest_vtd_inv *e, const struct iommu_nest_entry_result *r,
		     size_t i)
{
	return e[i].flags == e[i - 1].flags && e[i].npages == e[i - 1].npages &&
	       e[i].addr == e[i - 1].addr + e[i - 1].npages * PAGE_SIZE &&
	       r[i].state == r[i - 1].state && r[i].error == r[i - 1].error &&
	       r[i].hw_error == r[i - 1].hw_error;
}

static void print_row(const struct iommu_nest_vtd_inv *e, const struct iommu_nest_entry_result *r,
		      size_t first, size_t last)
{
	char idx[48], addr[48], npages[24];

	if (first == last) {
		snprintf(idx, sizeof(idx), "%zu", first);
		snprintf(addr, sizeof(addr), "%#" PRIx64, e[first].addr);
	} else {
		snprintf(idx, sizeof(idx), "%zu-%zu", first, last);
		snprintf(addr, sizeof(addr), "%#" PRIx64 "..%#" PRIx64, e[first].addr,
			 e[last].addr);
	}
	fmt_count(npages, sizeof(npages), e[first].npages);
	printf("  %-8s %-24s %8s  %-8s %-14s %-11s %#x\n", idx, addr, npages,
	       e[first].flags & IOMMU_NEST_VTD_INV_FLAGS_LEAF ? "leaf" : "non-leaf",
	       entry_state_name(r[first].state), errname(r[first].error), r[first].hw_error);
}

void print_results(const char *title, const struct iommu_nest_vtd_inv *e, size_t n,
		   const struct iommu_nest_entry_result *r, const struct iommu_nest_inv_summary *s,
		   int rc)
{
	char pages[24];
	size_t i, first = 0;

	printf("\n== %s (%zu %s) ==\n", title, n, n == 1 ? "entry" : "entries");
	printf("  %-8s %-24s %8s  %-8s %-14s %-11s %s\n", "entry", "addr", "npages", "kind",
	       "state", "errno", "hw_error");
	for (i = 1; i <= n; i++) {
		if (i < n && same_row(e, r, i))
			continue;
		print_row(e, r, first, i - 1);
		first = i;
	}
	fmt_count(pages, sizeof(pages), s->pages_flushed);
	printf("  status %d (%s)  entries_handled %u/%zu  entries_submitted %u  pages_flushed %s\n",
	       rc, rc ? errname(rc) : "OK", s->entries_handled, n, s->entries_submitted, pages);
}

void print_stats_table(const struct iommu_nest_stats *st)
{
	char v[24];

#define X(f)                                                                                       \
	fmt_count(v, sizeof(v), st->f);                                                            \
	printf("  %-18s %s%s\n", #f, v, st->f == UINT64_MAX ? " (a flush-all was submitted)" : "");
	STATS_FIELDS(X)
#undef X
}

void print_queue_stats_table(const struct iommu_nest_queue_stats *qs)
{
#define X(f) printf("  %-18s %" PRIu64 "\n", "queue_" #f, qs->f);
	QUEUE_STATS_FIELDS(X)
#undef X
}
