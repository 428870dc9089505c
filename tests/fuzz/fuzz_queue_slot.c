/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for the shared queue's slot parser (net/queue_slot.c):
 * the consumer side of a ring whose every byte belongs to a client that
 * may rewrite it between any two reads.
 *
 * The input is a script played against one area: the geometry, then
 * operations that interleave the client's writes (any bytes anywhere,
 * indices included) with the daemon's reads (take a slot, complete it).
 * Playing the client between the daemon's steps, not in a thread, keeps
 * every run reproducible; the copy-once rule is what makes a write in the
 * middle of a step no worse than one just before it.
 *
 * The area is a heap block of exactly its size, so AddressSanitizer
 * catches a read or write one byte past any range. Checked besides:
 * a taken request matches the copy it came from (n, ids, bounds within
 * max entries and the area) and its entries are the bytes that were in
 * the area; ready counts never exceed the ring; completions are written
 * only when there is room. An inline submission (NESTQ_SQE_INLINE) has
 * one entry, taken from the daemon's copy of the slot.
 *
 * With bit 7 of byte 0 set, a second thread also rewrites the area (bytes
 * and indices, seeded from the input) for as long as the script runs: the
 * real race, which the copy-once rule must survive. The check that the
 * entries taken are the area's bytes is then skipped (they may have
 * changed since); every bound is still checked, and AddressSanitizer
 * watches every access.
 *
 * Input layout:
 *   byte 0  sq_entries = 1 << ((b & 0x7f) % 5); bit 7: the racing writer
 *   byte 1  cq_entries = 1 << (b % 5)
 *   byte 2  data_bytes = 8 * b
 *   then ops, first byte's low 2 bits:
 *     0 write: offset (2 bytes, mod size), length (1 byte), the bytes
 *     1 consume one submission (and complete it if the ring has room)
 *     2 sq_tail = next 2 bytes     3 cq_head = next 2 bytes
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inv/request.h"
#include "net/queue_slot.h"

#define MAX_ENTRIES 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_queue_slot: invariant broken: %s\n", #cond);         \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

struct script {
	const uint8_t *p;
	size_t left;
};

static unsigned next_byte(struct script *s)
{
	if (!s->left)
		return 0;
	s->left--;
	return *s->p++;
}

static unsigned next_u16(struct script *s)
{
	unsigned lo = next_byte(s);

	return lo | next_byte(s) << 8;
}

static bool racing; /* a writer thread rewrites the area meanwhile */

static void check_taken(const struct queue_area *a, const struct nestq_sqe *sqe,
			const struct inv_request *r)
{
	uint32_t esz = inv_entry_size(sqe->data_type);

	CHECK(r->n == sqe->n && r->n <= MAX_ENTRIES);
	CHECK(r->id == sqe->user_data && r->hwpt_id == sqe->hwpt_id);
	CHECK(r->data_type == sqe->data_type && r->entry_len == sqe->entry_len);
	CHECK(r->result_off == sqe->result_off);
	CHECK(r->res_inline == !!(sqe->flags & NESTQ_SQE_INLINE));
	if (r->res_inline) {
		/* One entry, from the slot's copy (ours: no racing writer reaches it). */
		CHECK(r->n == 1 && esz <= NESTQ_INLINE_BYTES && !sqe->entry_off &&
		      !sqe->result_off);
		CHECK(!memcmp(r->entries, sqe->inline_entry, esz));
		return;
	}
	CHECK(sqe->entry_off + (uint64_t)r->n * esz <= a->l.data_bytes);
	CHECK(sqe->result_off + (uint64_t)r->n * sizeof(struct nestq_result) <= a->l.data_bytes);
	/* Nothing wrote the area since the take: the copy is what is there. */
	CHECK(racing ||
	      !memcmp(r->entries, a->base + a->l.data_off + sqe->entry_off, (size_t)r->n * esz));
}

/*
 * The daemon's step: one submission, answered if the completion ring has
 * room, counted as the daemon counts it (from the head last seen).
 */
static int consume(const struct queue_area *a, uint32_t *head, uint32_t *ctail, uint32_t *cseen)
{
	struct nestq_sqe sqe;
	struct inv_request *r;
	int ready = queue_sq_ready(a, *head);
	int rc;

	if (ready < 0)
		return ready; /* the daemon closes the queue */
	CHECK((uint32_t)ready <= a->l.sq_entries);
	if (!ready || !queue_cq_room_for(a, *ctail, cseen, 1))
		return 0; /* nothing to take, or back-pressure */
	rc = queue_slot_take(a, *head, MAX_ENTRIES, &sqe, &r);
	CHECK(!rc == !!r);
	if (r) {
		check_taken(a, &sqe, r);
		for (uint32_t i = 0; i < r->n; i++)
			r->res[i] = (struct inv_entry_result){.state = INV_DONE};
		r->entries_handled = r->n;
	}
	if (r)
		queue_slot_complete(a, *ctail, r);
	else
		queue_slot_refuse(a, *ctail, sqe.user_data, rc);
	free(r);
	*ctail += 1;
	*head += 1;
	queue_cq_publish(a, *ctail);
	queue_sq_consumed(a, *head);
	return 0;
}

struct writer {
	const struct queue_area *a;
	uint64_t seed;
	atomic_bool stop;
};

/* The hostile client on another CPU: any byte, any index, any time. */
static void *scribble(void *arg)
{
	struct writer *w = arg;
	uint64_t x = w->seed | 1;

	while (!atomic_load_explicit(&w->stop, memory_order_relaxed)) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		if (x & 1)
			atomic_store_explicit(&queue_hdr(w->a)->sq_tail, (uint32_t)(x >> 8),
					      memory_order_relaxed);
		else
			((volatile uint8_t *)
			     w->a->base)[NESTQ_HDR_BYTES +
					 (x >> 16) % (w->a->l.total - NESTQ_HDR_BYTES)] =
			    (uint8_t)(x >> 40);
	}
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct script s = {data, size};
	struct queue_area a;
	struct writer w = {.a = &a};
	pthread_t tid;
	uint32_t head = 0, ctail = 0, cseen = 0;
	unsigned sq = 1u << ((next_byte(&s) & 0x7f) % 5), cq = 1u << (next_byte(&s) % 5);

	CHECK(nestq_layout(&a.l, sq, cq, 8 * (uint64_t)next_byte(&s)));
	a.base = calloc(1, a.l.total);
	if (!a.base)
		return 0;
	racing = size && (data[0] & 0x80);
	if (racing) {
		for (size_t i = 0; i < size && i < 8; i++)
			w.seed = w.seed << 8 | data[size - 1 - i];
		if (pthread_create(&tid, NULL, scribble, &w))
			racing = false;
	}
	while (s.left) {
		unsigned op = next_byte(&s) & 3;

		if (op == 0) {
			size_t off = next_u16(&s) % a.l.total, len = next_byte(&s);

			if (len > a.l.total - off)
				len = a.l.total - off;
			if (len > s.left)
				len = s.left;
			memcpy(a.base + off, s.p, len);
			s.p += len;
			s.left -= len;
		} else if (op == 1) {
			if (consume(&a, &head, &ctail, &cseen))
				break;
		} else if (op == 2) {
			atomic_store(&queue_hdr(&a)->sq_tail, next_u16(&s));
		} else {
			atomic_store(&queue_hdr(&a)->cq_head, next_u16(&s));
		}
	}
	if (racing) {
		atomic_store(&w.stop, true);
		pthread_join(tid, NULL);
	}
	free(a.base);
	return 0;
}
