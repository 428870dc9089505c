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
static void take_one(struct nest_queue *q, uint64_t now)
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
	srv->stats.queue.submissions++;
	s->n_requests++;
	q->inflight++;
	q->last_active_ns = now;
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
	r->recv_ns = now;
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

	return queue_cq_room_for(&q->a, q->cq_tail, &q->cq_head_seen, q->inflight + 1) >
		   q->inflight &&
	       !quota_reached(s->n_pending, s->srv->cfg->quota.max_inflight);
}

/*
 * No room: say so (STALLED) and look once more. The full fence pairs with
 * the client's between freeing a completion slot and its read of the
 * flag: either it sees STALLED and kicks, or we see the slot it freed.
 * True when the queue stays stalled; one stall is counted once, however
 * often a completion looks again before room is there.
 */
static bool stall(struct nest_queue *q)
{
	_Atomic uint32_t *flags = &queue_hdr(&q->a)->sq_flags;

	if (!q->stalled) {
		q->s->srv->stats.queue.stalls++;
		q->stalled = true;
		atomic_fetch_or_explicit(flags, NESTQ_SQ_STALLED, memory_order_seq_cst);
	}
	atomic_thread_fence(memory_order_seq_cst);
	return !can_take(q);
}

static void unstall(struct nest_queue *q)
{
	q->stalled = false;
	atomic_fetch_and_explicit(&queue_hdr(&q->a)->sq_flags, ~NESTQ_SQ_STALLED,
				  memory_order_relaxed);
}

/*
 * Nothing to take. Within the poll window after the last submission (or
 * completion, see last_active_ns) the client need not kick: the poll loop
 * keeps looking. After it, ask for kicks; the full fence pairs with the
 * client's between its publish and its read of the flag, so a submission
 * that raced with it is seen here.
 */
static void idle(struct nest_queue *q, uint64_t now)
{
	uint64_t window = (uint64_t)q->s->srv->cfg->queue_poll_us * 1000u;
	_Atomic uint32_t *flags = &queue_hdr(&q->a)->sq_flags;

	if (window && now - q->last_active_ns < window) {
		if (!q->polling) {
			q->polling = true;
			atomic_fetch_and_explicit(flags, ~NESTQ_SQ_NEED_KICK, memory_order_seq_cst);
		}
		queue_look_again(q);
		return;
	}
	if (q->polling) {
		q->polling = false;
		atomic_fetch_or_explicit(flags, NESTQ_SQ_NEED_KICK, memory_order_seq_cst);
		atomic_thread_fence(memory_order_seq_cst);
		if (queue_sq_ready(&q->a, q->sq_head)) {
			queue_look_again(q);
			return;
		}
	}
	queue_unpoll(q);
}

/* Takes up to the budget; true when it took anything. */
static bool consume_some(struct nest_queue *q)
{
	const struct config *cfg = q->s->srv->cfg;
	bool took = false;
	uint64_t now = 0;

	for (uint32_t budget = cfg->queue_budget; budget; budget--) {
		int ready;

		if (q->broken || q->s->closing)
			return took;
		ready = queue_sq_ready(&q->a, q->sq_head);
		if (ready < 0) {
			queue_break(q, "submission ring index out of range");
			return took;
		}
		if (!ready) {
			idle(q, took ? q->last_active_ns : monotonic_ns());
			return took;
		}
		if (!can_take(q) && stall(q)) {
			queue_unpoll(q);
			return took;
		}
		if (q->stalled)
			unstall(q);
		if (q->polling)
			q->s->srv->stats.queue.kicks_suppressed++;
		/*
		 * One clock read per turn, not per submission: what this turn
		 * takes arrived together, as the packets of one socket read.
		 */
		if (!took)
			now = monotonic_ns();
		take_one(q, now);
		took = true;
	}
	/* Budget spent: the other queues and the sockets have their turn first. */
	if (!q->broken)
		queue_look_again(q);
	return took;
}

/*
 * Any answer written while taking may find the client's indices broken
 * and break the queue: it stays allocated until the loop above is out.
 * q may be gone when this returns.
 */
static bool consume(struct nest_queue *q)
{
	struct session *s = q->s;
	bool took;

	q->busy = true;
	took = consume_some(q);
	q->busy = false;
	/* Submissions answered while taken (refused, or not batched): when they were taken. */
	queue_publish_pending(s->srv, q->last_active_ns);
	queue_release_if_done(q);
	/*
	 * Dropped while we took (max_total_buffered_bytes): the end of a pass
	 * closes it, and nothing else of it may come to run one soon.
	 */
	if (s->closing)
		event_active(s->srv->ev_flush, EV_TIMEOUT, 0);
	return took;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/*
 * One round over the list, each queue moved to the back as it is looked
 * at (round-robin; a queue freed on the way has left the list). Only an
 * acquire load per queue when nothing is there.
 */
static bool poll_round(struct server *srv)
{
	bool took = false;
	size_t n = 0;
	struct nest_queue *q;

	TAILQ_FOREACH(q, &srv->pollers, poll_link)
	n++;
	while (n-- && (q = TAILQ_FIRST(&srv->pollers))) {
		TAILQ_REMOVE(&srv->pollers, q, poll_link);
		TAILQ_INSERT_TAIL(&srv->pollers, q, poll_link);
		if (!queue_sq_ready(&q->a, q->sq_head) && !q->broken)
			continue;
		took |= consume(q);
	}
	return took;
}

/* The end of a turn: every queue with nothing to take decides whether it keeps polling. */
static void poll_expire(struct server *srv)
{
	uint64_t now = monotonic_ns();
	size_t n = 0;
	struct nest_queue *q;

	TAILQ_FOREACH(q, &srv->pollers, poll_link)
	n++;
	while (n-- && (q = TAILQ_FIRST(&srv->pollers))) {
		TAILQ_REMOVE(&srv->pollers, q, poll_link);
		TAILQ_INSERT_TAIL(&srv->pollers, q, poll_link);
		if (!queue_sq_ready(&q->a, q->sq_head))
			idle(q, now);
	}
}

void queue_poll_turn(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	uint64_t end = monotonic_ns() + (uint64_t)srv->cfg->queue_poll_slice_us * 1000u;
	bool took = false;

	(void)fd, (void)what;
	srv->stats.queue.poll_passes++;
	queue_poll_turn_begin(srv);
	for (unsigned spin = 0; !TAILQ_EMPTY(&srv->pollers); spin++) {
		if (poll_round(srv)) {
			took = true;
			/* The batch at once, as a socket read does with nothing else to run. */
			if (srv->flush_armed && !srv->cfg->batch_delay_us)
				server_flush(srv);
		}
		/* The clock only every few rounds: a round is a few loads. */
		if (!(spin % 256) && monotonic_ns() >= end)
			break;
		cpu_relax();
	}
	poll_expire(srv);
	queue_poll_turn_end(srv);
	if (!TAILQ_EMPTY(&srv->pollers))
		queue_poll_arm(srv);
	/*
	 * Sessions a reply closed are reaped at the end of a pass (on_flush);
	 * an armed flush (batch_delay_us) does that when it runs. A flush
	 * armed during the turn without a delay scheduled no event (see
	 * arm_flush()): if one is still armed here, it gets its event now.
	 */
	if ((took && !srv->flush_armed) || (srv->flush_armed && !srv->cfg->batch_delay_us))
		event_active(srv->ev_flush, EV_TIMEOUT, 0);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
	struct nest_queue *q = arg;
	uint64_t n;

	/* A kick: drain the counter (the client's writes since the last read). */
	if (what & EV_READ) {
		ssize_t got = read(fd, &n, sizeof(n));

		if (got == 0) {
			queue_break(q, "kick descriptor at end of file");
			return;
		}
		if (got == (ssize_t)sizeof(n))
			q->s->srv->stats.queue.kicks += n;
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
	q->cq_head_seen = atomic_load_explicit(&h->cq_head, memory_order_acquire);
	/* Not polling (yet): every publish needs a kick. */
	atomic_store_explicit(&h->sq_flags, NESTQ_SQ_NEED_KICK, memory_order_seq_cst);
	s->queue = q;
	/* Submissions published before the setup was answered: take them now. */
	queue_look_again(q);
	return 0;
fail:
	free(q);
	return -ENOMEM;
}
