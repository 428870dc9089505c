/* SPDX-License-Identifier: MIT */
/*
 * The completion side of a shared queue and its end (see net/queue.h):
 * write the completion, tell a sleeping client, resume a stalled queue,
 * close a broken or finished one.
 */
#include <event2/event.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "inv/request.h"
#include "net/queue.h"
#include "net/server.h"
#include "net/session.h"
#include "req/dispatch.h"
#include "util/common.h"
#include "util/log.h"

/*
 * The client sets NESTQ_CQ_NEED_CALL before it sleeps and reads cq_tail
 * again after: with the full fence between our publish and our read of
 * its flag, one of the two sides sees the other, and no wake-up is lost.
 */
static void signal_call(struct nest_queue *q)
{
	static const uint64_t one = 1;

	/* Full: the client has a call pending anyway. */
	if (write(q->call_fd, &one, sizeof(one)) < 0)
		log_debug("session %llu: call eventfd: write failed", (unsigned long long)q->s->id);
}

static void publish(struct nest_queue *q)
{
	struct queue_stats *st = &q->s->srv->stats.queue;

	queue_cq_publish(&q->a, q->cq_tail);
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&queue_hdr(&q->a)->cq_flags, memory_order_relaxed) &
	    NESTQ_CQ_NEED_CALL) {
		st->calls++;
		signal_call(q);
	} else {
		st->calls_suppressed++;
	}
}

/*
 * The server whose poll turn is running, if any (the loop is single
 * threaded): during a turn every submission taken would otherwise re-add
 * the poll timer, a libevent heap operation per request for nothing.
 */
static const struct server *turn_running;

void queue_poll_turn_begin(struct server *srv)
{
	turn_running = srv;
}

void queue_poll_turn_end(struct server *srv)
{
	(void)srv;
	turn_running = NULL;
}

bool queue_poll_turn_running(const struct server *srv)
{
	return turn_running == srv;
}

/* The poll loop's list lives here, below queue.c: a completion resumes a stalled queue. */
void queue_poll_arm(struct server *srv)
{
	static const struct timeval now = {0, 0};

	if (turn_running == srv)
		return;
	if (!evtimer_pending(srv->ev_poll, NULL))
		evtimer_add(srv->ev_poll, &now);
}

void queue_look_again(struct nest_queue *q)
{
	struct server *srv = q->s->srv;

	if (!q->in_poll) {
		q->in_poll = true;
		TAILQ_INSERT_TAIL(&srv->pollers, q, poll_link);
	}
	queue_poll_arm(srv);
}

void queue_unpoll(struct nest_queue *q)
{
	if (q->in_poll)
		TAILQ_REMOVE(&q->s->srv->pollers, q, poll_link);
	q->in_poll = false;
}

/* Written: published with the others of this batch (queue_publish_pending()). */
static void written(struct nest_queue *q)
{
	struct server *srv = q->s->srv;

	srv->stats.queue.completions++;
	if (q->cq_pending)
		return;
	q->cq_pending = true;
	q->cq_next = srv->cq_pending;
	srv->cq_pending = q;
}

void queue_publish_pending(struct server *srv, uint64_t now)
{
	struct nest_queue *q;

	while ((q = srv->cq_pending)) {
		srv->cq_pending = q->cq_next;
		q->cq_pending = false;
		/* The poll window runs from the answer too: the next request follows it. */
		q->last_active_ns = now;
		publish(q);
	}
}

static void unpend(struct nest_queue *q)
{
	struct nest_queue **pp = &q->s->srv->cq_pending;

	if (!q->cq_pending)
		return;
	while (*pp != q)
		pp = &(*pp)->cq_next;
	*pp = q->cq_next;
	q->cq_pending = false;
}

static void free_queue(struct nest_queue *q)
{
	q->s->queue = NULL;
	queue_unpoll(q);
	unpend(q);
	event_free(q->ev_kick);
	munmap(q->a.base, q->a.l.total);
	close(q->kick_fd);
	close(q->call_fd);
	free(q);
}

void queue_resume(struct nest_queue *q)
{
	if (!q->stalled || q->broken)
		return;
	/*
	 * Not a kick: nothing to read from the eventfd; the poll loop looks,
	 * and clears STALLED once it can take again.
	 */
	queue_look_again(q);
}

/* One completion slot is gone: resume what it held up, or finish a broken queue. */
static void slot_done(struct nest_queue *q)
{
	q->inflight--;
	if (q->broken)
		queue_release_if_done(q);
	else
		queue_resume(q);
}

/*
 * Room was reserved when the submission was taken; only a client that
 * moved cq_head where it may not has taken it away since.
 */
static bool have_room(struct nest_queue *q)
{
	if (q->broken)
		return false;
	if (queue_cq_room_for(&q->a, q->cq_tail, &q->cq_head_seen, 1))
		return true;
	queue_break(q, "completion ring index out of range");
	return false;
}

unsigned queue_answer(struct inv_request *r)
{
	struct nest_queue *q = r->queue;
	struct server *srv = q->s->srv;
	unsigned failed = 0;

	for (uint32_t i = 0; i < r->n; i++)
		failed += r->res[i].state == INV_FAILED;
	srv->stats.entries_failed += failed;
	req_count_error(srv, r->status);
	if (have_room(q)) {
		queue_slot_complete(&q->a, q->cq_tail++, r);
		written(q);
	}
	slot_done(q);
	return failed;
}

void queue_refuse(struct nest_queue *q, uint64_t user_data, int status)
{
	req_count_error(q->s->srv, status);
	if (have_room(q)) {
		queue_slot_refuse(&q->a, q->cq_tail++, user_data, status);
		written(q);
	}
	slot_done(q);
}

void queue_break(struct nest_queue *q, const char *why)
{
	if (q->broken)
		return;
	log_warn("session %llu: shared queue closed: %s", (unsigned long long)q->s->id, why);
	q->broken = true;
	event_del(q->ev_kick);
	queue_unpoll(q);
	/* A client waiting for a completion learns it will not come. */
	atomic_fetch_or_explicit(&queue_hdr(&q->a)->sq_flags, NESTQ_SQ_BROKEN,
				 memory_order_seq_cst);
	signal_call(q);
	/* What is in the batch still finds it; the last answer frees it. */
	queue_release_if_done(q);
}

void queue_release_if_done(struct nest_queue *q)
{
	if (q->broken && !q->inflight && !q->busy)
		free_queue(q);
}

void queue_close(struct session *s)
{
	if (s->queue)
		free_queue(s->queue);
}
