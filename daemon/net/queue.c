/* SPDX-License-Identifier: MIT */
/*
 * The submission side of a shared queue (see net/queue.h): on a kick,
 * take what the client published, a budget's worth per turn of the loop,
 * and feed it to this pass's batch as the socket's Invalidates are.
 */
#include "net/queue.h"

#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <unistd.h>

#include "inv/request.h"
#include "net/flush.h"
#include "net/server.h"
#include "net/session.h"
#include "req/dispatch.h"
#include "util/common.h"
#include "util/policy.h"

/* One submission: taken (the slot is the client's again), checked, batched or answered. */
static void take_one(struct nest_queue *q)
{
	struct session *s = q->s;
	struct server *srv = s->srv;
	struct nestq_sqe sqe;
	struct inv_request *r;
	struct hwpt_entry *hwpt;
	uint32_t rate = srv->cfg->quota.max_requests_per_sec;
	int rc;

	rc = queue_slot_take(&q->a, q->sq_head, invalidate_max_entries(srv), &sqe, &r);
	queue_sq_consumed(&q->a, ++q->sq_head);
	srv->stats.requests++;
	s->n_requests++;
	q->inflight++;
	q->last_take_ns = monotonic_ns();
	/* The socket's first gate, before anything about the request itself. */
	if (!rate_limiter_take(&s->rate, rate)) {
		IommuNest__Reply rep = IOMMU_NEST__REPLY__INIT;

		req_deny(s, &rep, -EAGAIN, rate, "over %u requests per second", rate);
		free(r);
		rc = -EAGAIN;
	}
	if (rc) {
		queue_refuse(q, sqe.user_data, rc);
		return;
	}
	r->owner = s;
	r->queue = q;
	r->recv_ns = q->last_take_ns;
	if (req_invalidate_accept(s, r, &hwpt) == REQ_DEFERRED) {
		flush_enqueue(srv, hwpt, r);
		return;
	}
	queue_answer(r);
	free(r);
}

/*
 * Room for one more: a completion slot for every submission in flight
 * and this one, and the client under max_inflight, as on the socket
 * (where the excess is refused; here it waits: back-pressure).
 */
static bool can_take(struct nest_queue *q)
{
	const struct session *s = q->s;

	return queue_cq_room(&q->a, q->cq_tail) > q->inflight &&
	       !quota_reached(s->n_pending, s->srv->cfg->quota.max_inflight);
}

static void stall(struct nest_queue *q)
{
	q->stalled = true;
	atomic_fetch_or_explicit(&queue_hdr(&q->a)->sq_flags, NESTQ_SQ_STALLED,
				 memory_order_seq_cst);
}

/* Looks again on the next turn of the loop (not a kick: nothing to read). */
static void again(struct nest_queue *q)
{
	event_active(q->ev_kick, EV_TIMEOUT, 0);
}

/*
 * Nothing to take. Within the poll window after the last submission the
 * client need not kick: the loop looks again each turn. After it, ask for
 * kicks; the full fence pairs with the client's between its publish and
 * its read of the flag, so a submission that raced with it is seen here.
 */
static void idle(struct nest_queue *q)
{
	uint64_t window = (uint64_t)q->s->srv->cfg->queue_poll_us * 1000u;
	_Atomic uint32_t *flags = &queue_hdr(&q->a)->sq_flags;

	if (window && monotonic_ns() - q->last_take_ns < window) {
		if (!q->polling) {
			q->polling = true;
			atomic_fetch_and_explicit(flags, ~NESTQ_SQ_NEED_KICK, memory_order_seq_cst);
		}
		again(q);
		return;
	}
	if (q->polling) {
		q->polling = false;
		atomic_fetch_or_explicit(flags, NESTQ_SQ_NEED_KICK, memory_order_seq_cst);
		atomic_thread_fence(memory_order_seq_cst);
		if (queue_sq_ready(&q->a, q->sq_head))
			again(q);
	}
}

static void consume_some(struct nest_queue *q)
{
	for (unsigned budget = QUEUE_PASS_BUDGET; budget; budget--) {
		int ready;

		if (q->broken || q->s->closing)
			return;
		ready = queue_sq_ready(&q->a, q->sq_head);
		if (ready < 0) {
			queue_break(q, "submission ring index out of range");
			return;
		}
		if (!ready) {
			idle(q);
			return;
		}
		if (!can_take(q)) {
			stall(q);
			return;
		}
		take_one(q);
	}
	/* Budget spent: the other queues and the sockets have their turn first. */
	if (!q->broken)
		again(q);
}

/*
 * Any answer written while taking may find the client's indices broken
 * and break the queue: it stays allocated until the loop above is out.
 */
static void consume(struct nest_queue *q)
{
	struct session *s = q->s;

	q->busy = true;
	consume_some(q);
	q->busy = false;
	queue_release_if_done(q);
	/*
	 * Dropped while we took (max_total_buffered_bytes): the end of a pass
	 * closes it, and nothing else of it may come to run one soon.
	 */
	if (s->closing)
		event_active(s->srv->ev_flush, EV_TIMEOUT, 0);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
	struct nest_queue *q = arg;
	uint64_t n;

	/* A kick: drain the counter. */
	if ((what & EV_READ) && read(fd, &n, sizeof(n)) == 0) {
		queue_break(q, "kick descriptor at end of file");
		return;
	}
	consume(q);
}

int queue_attach(struct session *s, const struct queue_area *a, int kick_fd, int call_fd)
{
	struct nest_queue *q = calloc(1, sizeof(*q));
	struct nestq_header *h = queue_hdr(a);

	if (!q)
		return -ENOMEM;
	q->s = s;
	q->a = *a;
	q->kick_fd = kick_fd;
	q->call_fd = call_fd;
	/* The kick must never block the loop, whatever the client gave us. */
	if (evutil_make_socket_nonblocking(kick_fd) || evutil_make_socket_nonblocking(call_fd))
		goto fail;
	q->ev_kick = event_new(s->srv->base, kick_fd, EV_READ | EV_PERSIST, on_kick, q);
	if (!q->ev_kick || event_add(q->ev_kick, NULL)) {
		if (q->ev_kick)
			event_free(q->ev_kick);
		goto fail;
	}
	/* Start where the client's indices are: it may have filled slots already. */
	q->sq_head = atomic_load_explicit(&h->sq_head, memory_order_relaxed);
	q->cq_tail = atomic_load_explicit(&h->cq_tail, memory_order_relaxed);
	/* Not polling (yet): every publish needs a kick. */
	atomic_store_explicit(&h->sq_flags, NESTQ_SQ_NEED_KICK, memory_order_seq_cst);
	s->queue = q;
	/* Submissions published before the setup was answered: take them now. */
	again(q);
	return 0;
fail:
	free(q);
	return -ENOMEM;
}
