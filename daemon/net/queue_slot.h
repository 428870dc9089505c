/* SPDX-License-Identifier: MIT */
/*
 * The slots of a shared-memory queue (proto/iommu_nest_queue.h), on the
 * daemon's side: take one submission out of memory the client may be
 * rewriting as we read, and write one completion back. Pure code over the
 * mapping: no descriptors, no events, no protobuf.
 *
 * The rule: every byte of the area is read once, into the daemon's own
 * memory, before anything is decided on it; every index and length is
 * checked against the daemon's copy of the geometry, never against what
 * the area says.
 */
#ifndef IOMMU_NESTD_NET_QUEUE_SLOT_H
#define IOMMU_NESTD_NET_QUEUE_SLOT_H

#include <stdbool.h>
#include <stdint.h>

#include "iommu_nest_queue.h"

struct inv_request;

/* A mapped area and the geometry the setup request gave (the daemon's copy). */
struct queue_area {
	uint8_t *base;
	struct nestq_layout l;
};

static inline struct nestq_header *queue_hdr(const struct queue_area *a)
{
	return (struct nestq_header *)a->base;
}

/*
 * Submissions published and not taken yet: sq_tail - head, read once
 * (acquire). -EPROTO when the client claims more than the ring holds
 * (a broken or hostile client: the queue closes).
 */
int queue_sq_ready(const struct queue_area *a, uint32_t head);

/* Completions the ring can take now: cq_entries - (tail - cq_head); 0 if cq_head is nonsense. */
uint32_t queue_cq_room(const struct queue_area *a, uint32_t tail);

/*
 * queue_cq_room() counted from *seen, the client's cq_head as last read,
 * which is read again (into *seen) only when that leaves fewer than need
 * slots. The client writes cq_head's line at every completion it reads,
 * so each read of it is a cache miss, a good part of a polled round trip;
 * and room counted from an older head is never more than there was then.
 */
uint32_t queue_cq_room_for(const struct queue_area *a, uint32_t tail, uint32_t *seen,
			   uint32_t need);

/*
 * Copies submission slot head out of the ring into *sqe, once, and builds
 * the request from that copy (entries copied from the entry area). Returns
 * 0 and the request in *out (id = user_data, result_off set; owner, queue
 * and recv_ns unset), or a negative errno the submission is answered with
 * (queue_slot_refuse()): -EOPNOTSUPP unknown flags (as on the socket),
 * -EINVAL non-zero pad or a range outside the entry area, -E2BIG more
 * than max_entries, -ENOMEM.
 */
int queue_slot_take(const struct queue_area *a, uint32_t head, uint32_t max_entries,
		    struct nestq_sqe *sqe, struct inv_request **out);

/*
 * Writes the completion of the finished request r at cq index tail: its
 * per-entry results at r->result_off (checked by queue_slot_take()) and
 * the cqe. The caller checked queue_cq_room() and publishes tail + 1.
 */
void queue_slot_complete(const struct queue_area *a, uint32_t tail, const struct inv_request *r);

/* The same for a submission refused before it was a request: status only, no results. */
void queue_slot_refuse(const struct queue_area *a, uint32_t tail, uint64_t user_data, int status);

/* Publishes the completions up to tail (release). */
void queue_cq_publish(const struct queue_area *a, uint32_t tail);
/* Publishes the submissions taken up to head (release): the client may reuse them. */
void queue_sq_consumed(const struct queue_area *a, uint32_t head);

#endif
