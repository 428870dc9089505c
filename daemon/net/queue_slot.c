/* SPDX-License-Identifier: MIT */
/* Submission and completion slots of a shared queue (see net/queue_slot.h). */
#include "net/queue_slot.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "inv/request.h"

/*
 * The copy must be the only read: without the barrier the compiler may
 * assume the area does not change and read a field again from it later.
 */
static void copy_out(void *dst, const void *src, size_t len)
{
	memcpy(dst, src, len);
	__asm__ __volatile__("" ::: "memory");
}

/* [off, off + len) inside the entry area, off 8-byte aligned. */
static bool range_ok(const struct queue_area *a, uint64_t off, uint64_t len)
{
	return !(off & 7) && off <= a->l.data_bytes && len <= a->l.data_bytes - off;
}

int queue_sq_ready(const struct queue_area *a, uint32_t head)
{
	uint32_t tail = atomic_load_explicit(&queue_hdr(a)->sq_tail, memory_order_acquire);
	uint32_t n = tail - head;

	return n <= a->l.sq_entries ? (int)n : -EPROTO;
}

/* Free completion slots between the client's head and our tail; 0 if head is nonsense. */
static uint32_t room_from(const struct queue_area *a, uint32_t tail, uint32_t head)
{
	uint32_t used = tail - head;

	return used <= a->l.cq_entries ? a->l.cq_entries - used : 0;
}

uint32_t queue_cq_room(const struct queue_area *a, uint32_t tail)
{
	return room_from(a, tail,
			 atomic_load_explicit(&queue_hdr(a)->cq_head, memory_order_acquire));
}

uint32_t queue_cq_room_for(const struct queue_area *a, uint32_t tail, uint32_t *seen, uint32_t need)
{
	uint32_t room = room_from(a, tail, *seen);

	if (room >= need)
		return room;
	*seen = atomic_load_explicit(&queue_hdr(a)->cq_head, memory_order_acquire);
	return room_from(a, tail, *seen);
}

/* Bytes [from, NESTQ_INLINE_BYTES) of the slot's inline area are zero. */
static bool inline_zero_from(const struct nestq_sqe *sqe, uint32_t from)
{
	for (uint32_t i = from; i < NESTQ_INLINE_BYTES; i++)
		if (sqe->inline_entry[i])
			return false;
	return true;
}

/* The layout net/wire.c gives a socket request: one allocation, entries, results. */
static struct inv_request *request_new(const struct nestq_sqe *sqe, uint32_t esz)
{
	size_t copied = (size_t)sqe->n * esz;
	size_t ent_bytes = ((size_t)sqe->n * (esz ? esz : 1) + 7) & ~(size_t)7;
	struct inv_request *r;

	/*
	 * Not calloc: the entries (most of the bytes) are overwritten by the
	 * copy-out at once; the header, the bytes no copy fills and the
	 * results are zeroed here.
	 */
	r = malloc(sizeof(*r) + ent_bytes + (size_t)sqe->n * sizeof(struct inv_entry_result));
	if (!r)
		return NULL;
	memset(r, 0, sizeof(*r));
	r->entries = (uint8_t *)(r + 1);
	r->res = (struct inv_entry_result *)((uint8_t *)r->entries + ent_bytes);
	memset((uint8_t *)r->entries + copied, 0, ent_bytes - copied);
	memset(r->res, 0, (size_t)sqe->n * sizeof(struct inv_entry_result));
	r->id = sqe->user_data;
	r->hwpt_id = sqe->hwpt_id;
	r->data_type = sqe->data_type;
	r->reserved = sqe->reserved;
	r->entry_len = sqe->entry_len;
	r->cont = sqe->flags & NESTQ_SQE_CONTINUE;
	r->n = sqe->n;
	r->result_off = sqe->result_off;
	r->res_inline = sqe->flags & NESTQ_SQE_INLINE;
	return r;
}

/*
 * The inline form: one entry, no entry-area ranges, the entry's bytes in
 * the slot and zeros after them (an unknown type: all zero).
 */
static int check_inline(const struct nestq_sqe *sqe, uint32_t esz)
{
	if (sqe->n != 1 || sqe->entry_off || sqe->result_off || esz > NESTQ_INLINE_BYTES ||
	    !inline_zero_from(sqe, esz))
		return -EINVAL;
	return 0;
}

int queue_slot_take(const struct queue_area *a, uint32_t head, uint32_t max_entries,
		    struct nestq_sqe *sqe, struct inv_request **out)
{
	const uint8_t *slot = a->base + a->l.sq_off +
			      (uint64_t)(head & (a->l.sq_entries - 1)) * sizeof(struct nestq_sqe);
	uint32_t esz;
	struct inv_request *r;
	int rc;

	*out = NULL;
	copy_out(sqe, slot, sizeof(*sqe));
	if (sqe->flags & ~(NESTQ_SQE_CONTINUE | NESTQ_SQE_INLINE))
		return -EOPNOTSUPP;
	if (sqe->n > max_entries)
		return -E2BIG;
	/* An unknown type carries no entry bytes: the kernel's rules refuse it later. */
	esz = inv_entry_size(sqe->data_type);
	if (sqe->flags & NESTQ_SQE_INLINE)
		rc = check_inline(sqe, esz);
	else if (!inline_zero_from(sqe, 0) ||
		 !range_ok(a, sqe->entry_off, (uint64_t)sqe->n * esz) ||
		 !range_ok(a, sqe->result_off, (uint64_t)sqe->n * sizeof(struct nestq_result)))
		rc = -EINVAL;
	else
		rc = 0;
	if (rc)
		return rc;
	r = request_new(sqe, esz);
	if (!r)
		return -ENOMEM;
	/* Inline: from our copy of the slot, never from the area again. */
	if (r->res_inline)
		memcpy(r->entries, sqe->inline_entry, esz);
	else
		copy_out(r->entries, a->base + a->l.data_off + sqe->entry_off,
			 (size_t)sqe->n * esz);
	*out = r;
	return 0;
}

/*
 * Everything but seq, then seq (release): a client that sees seq sees the
 * rest. seq goes from the slot's previous value to tail + 1 directly,
 * never through a value the client could take for another index.
 */
static void put_cqe(const struct queue_area *a, uint32_t tail, const struct nestq_cqe *cqe)
{
	struct nestq_cqe *slot =
	    (struct nestq_cqe *)(a->base + a->l.cq_off) + (tail & (a->l.cq_entries - 1));

	memcpy(slot, cqe, offsetof(struct nestq_cqe, seq));
	memset(slot->pad, 0, sizeof(slot->pad));
	atomic_store_explicit(&slot->seq, tail + 1, memory_order_release);
}

static struct nestq_result result_of(const struct inv_entry_result *res)
{
	return (struct nestq_result){
	    .state = res->state, .error = res->error, .hw_error = res->hw_error};
}

void queue_slot_complete(const struct queue_area *a, uint32_t tail, const struct inv_request *r)
{
	struct nestq_cqe cqe = {.user_data = r->id,
				.status = r->status,
				.entries_handled = r->entries_handled,
				.entries_submitted = r->entries_submitted,
				.n = r->n,
				.pages_flushed = r->pages_flushed};
	uint8_t *res = a->base + a->l.data_off + r->result_off;

	if (r->res_inline) {
		/* queue_slot_take() made sure n is 1. */
		cqe.result = result_of(&r->res[0]);
	} else {
		for (uint32_t i = 0; i < r->n; i++) {
			struct nestq_result one = result_of(&r->res[i]);

			memcpy(res + (size_t)i * sizeof(one), &one, sizeof(one));
		}
	}
	put_cqe(a, tail, &cqe);
}

void queue_slot_refuse(const struct queue_area *a, uint32_t tail, uint64_t user_data, int status)
{
	struct nestq_cqe cqe = {.user_data = user_data, .status = status};

	put_cqe(a, tail, &cqe);
}

void queue_cq_publish(const struct queue_area *a, uint32_t tail)
{
	atomic_store_explicit(&queue_hdr(a)->cq_tail, tail, memory_order_release);
}

void queue_sq_consumed(const struct queue_area *a, uint32_t head)
{
	atomic_store_explicit(&queue_hdr(a)->sq_head, head, memory_order_release);
}
