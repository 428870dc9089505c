/* SPDX-License-Identifier: MIT */
/* The per-pass, per-HWPT queue of Invalidate requests (see inv/queue.h). */
#include "inv/queue.h"

#include <stdlib.h>

#include "state/registry.h"

size_t inv_request_bytes(const struct inv_request *r)
{
	return sizeof(*r) + (size_t)r->n * (inv_entry_size(r->data_type) + sizeof(*r->res));
}

void inv_queue_add(struct inv_queue *q, struct hwpt_entry *hwpt, struct inv_request *r)
{
	if (!hwpt->pending_head) {
		hwpt->next_pending = q->head;
		q->head = hwpt;
	}
	r->next = NULL;
	*hwpt->pending_tail = r;
	hwpt->pending_tail = &r->next;
}

struct hwpt_entry *inv_queue_pop(struct inv_queue *q, uint32_t max_entries,
				 struct inv_request **reqs)
{
	struct hwpt_entry *hwpt = q->head;
	struct inv_request *last;
	uint64_t n;

	if (!hwpt)
		return NULL;
	*reqs = last = hwpt->pending_head;
	/* 64 bits: each request carries up to 2^32 - 1 entries, so two may not sum in 32. */
	for (n = last->n; max_entries && last->next && n + last->next->n <= max_entries;)
		n += (last = last->next)->n;
	if (max_entries && last->next) {
		/* The rest stays queued, this HWPT first: drop_owner() still finds it. */
		hwpt->pending_head = last->next;
		last->next = NULL;
		return hwpt;
	}
	q->head = hwpt->next_pending;
	hwpt->next_pending = NULL;
	hwpt->pending_head = NULL;
	hwpt->pending_tail = &hwpt->pending_head;
	return hwpt;
}

/* Unlinks and frees owner's requests of one HWPT, keeping pending_tail right. */
static unsigned drop_from_hwpt(struct hwpt_entry *hwpt, const void *owner)
{
	struct inv_request **rp = &hwpt->pending_head;
	unsigned n = 0;

	hwpt->pending_tail = &hwpt->pending_head;
	while (*rp) {
		struct inv_request *r = *rp;

		if (r->owner != owner) {
			hwpt->pending_tail = &r->next;
			rp = &r->next;
			continue;
		}
		*rp = r->next;
		free(r);
		n++;
	}
	return n;
}

unsigned inv_queue_drop_owner(struct inv_queue *q, const void *owner)
{
	struct hwpt_entry **hp = &q->head;
	unsigned n = 0;

	while (*hp) {
		struct hwpt_entry *hwpt = *hp;

		n += drop_from_hwpt(hwpt, owner);
		if (hwpt->pending_head) {
			hp = &hwpt->next_pending;
			continue;
		}
		*hp = hwpt->next_pending;
		hwpt->next_pending = NULL;
	}
	return n;
}
