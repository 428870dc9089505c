/* SPDX-License-Identifier: MIT */
/*
 * The Invalidate requests of one event-loop pass, queued per HWPT in
 * arrival order until the loop runs the batch (net/flush.c). Pure list
 * keeping: no I/O, no accounting (the loop counts the bytes it holds).
 */
#ifndef IOMMU_NESTD_INV_QUEUE_H
#define IOMMU_NESTD_INV_QUEUE_H

#include <stdbool.h>
#include <stddef.h>

#include "inv/request.h"

struct hwpt_entry;

struct inv_queue {
	struct hwpt_entry *head; /* HWPTs with queued requests, linked by next_pending */
};

/* What a queued request holds: itself, its entries and their results. */
size_t inv_request_bytes(const struct inv_request *r);

static inline bool inv_queue_empty(const struct inv_queue *q)
{
	return !q->head;
}

/* Appends r to hwpt's requests; hwpt joins the queue with its first one. */
void inv_queue_add(struct inv_queue *q, struct hwpt_entry *hwpt, struct inv_request *r);

/*
 * Takes the next HWPT's leading requests off the queue (a list linked by
 * ->next, in arrival order) into *reqs: as many as add up to at most
 * max_entries entries, and always at least one (0: all of them). The HWPT
 * leaves the queue with its last request; until then it stays first, so
 * one HWPT's requests go out in order before the next HWPT's. NULL when
 * empty.
 */
struct hwpt_entry *inv_queue_pop(struct inv_queue *q, uint32_t max_entries,
				 struct inv_request **reqs);

/*
 * Frees every queued request whose owner is owner (a dropped session:
 * it gets no reply). Returns how many.
 */
unsigned inv_queue_drop_owner(struct inv_queue *q, const void *owner);

#endif
