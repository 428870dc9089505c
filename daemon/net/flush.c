/* SPDX-License-Identifier: MIT */
/*
 * The per-pass Invalidate batch, on the loop's side: queue accounting
 * (the buffered bytes that max_total_buffered_bytes bounds), the flush
 * event, running each HWPT's batch (inv/batch.c) and answering what it
 * returns. The one way an Invalidate goes: wire -> req -> inv/queue ->
 * inv/batch -> here -> wire -> the socket.
 */
#include "net/flush.h"

#include <event2/event.h>
#include <stdlib.h>

#include "inv/queue.h"
#include "net/queue.h"
#include "net/server.h"
#include "net/session.h"
#include "net/wire.h"
#include "persist/restart.h"
#include "req/dispatch.h"
#include "util/common.h"

static void arm_flush(struct server *srv)
{
	if (srv->flush_armed)
		return;
	srv->flush_armed = true;
	if (srv->cfg->batch_delay_us) {
		struct timeval tv = {.tv_sec = srv->cfg->batch_delay_us / 1000000,
				     .tv_usec = srv->cfg->batch_delay_us % 1000000};
		evtimer_add(srv->ev_flush, &tv);
	} else if (!queue_poll_turn_running(srv)) {
		/* (A poll turn runs the batch itself right after taking: nothing to schedule.) */
		event_active(srv->ev_flush, EV_TIMEOUT, 0);
	}
}

void flush_enqueue(struct server *srv, struct hwpt_entry *hwpt, struct inv_request *r)
{
	struct session *s = r->owner;
	size_t bytes = inv_request_bytes(r);

	/*
	 * s itself dropped (now, or before: nothing of it is counted any
	 * more): it gets no answer, so nothing is promised and the request
	 * goes with its other queued ones.
	 */
	if (s->pending_dropped || !session_make_room(s, bytes)) {
		free(r);
		return;
	}
	s->pending_bytes += bytes;
	srv->buffered_bytes += bytes;
	inv_queue_add(&srv->queue, hwpt, r);
	s->n_pending++;
	arm_flush(srv);
}

unsigned flush_answer(struct session *s, const struct inv_request *r)
{
	IommuNest__Reply rep = IOMMU_NEST__REPLY__INIT;
	IommuNest__InvalidateReply ir = IOMMU_NEST__INVALIDATE_REPLY__INIT;
	struct server *srv = s->srv;
	uint32_t failed;

	if (!wire_inv_reply(&srv->inv_enc, r, &rep, &ir, &failed))
		srv->stats.entries_failed += failed;
	/* Like every other reply: counted when its status is not 0. */
	req_count_error(srv, rep.status);
	session_send_reply(s, &rep);
	return failed;
}

static void count_hwpt_batch(struct hwpt_counters *c, const struct inv_batch_stats *st)
{
	c->submissions += st->submissions;
	c->entries_submitted += st->entries_submitted;
	c->pages_flushed = sat_add(c->pages_flushed, st->pages_flushed);
	c->escalations += st->escalations;
	c->flush_alls += st->flush_alls;
	c->ranged_pages = sat_add(c->ranged_pages, st->ranged_pages);
}

static void count_batch(struct server *srv, struct hwpt_entry *hwpt,
			const struct inv_batch_stats *st)
{
	count_hwpt_batch(&hwpt->counters, st);
	srv->stats.batches++;
	srv->stats.submissions += st->submissions;
	srv->stats.entries_submitted += st->entries_submitted;
	/* A flush-all counts as UINT64_MAX pages: the counter saturates there. */
	srv->stats.pages_flushed = sat_add(srv->stats.pages_flushed, st->pages_flushed);
	srv->stats.flush_alls += st->flush_alls;
	srv->stats.ranged_pages = sat_add(srv->stats.ranged_pages, st->ranged_pages);
}

/* Runs one HWPT's batch; returns when it ended (CLOCK_MONOTONIC). */
static uint64_t run_hwpt_batch(struct server *srv, struct hwpt_entry *hwpt,
			       struct inv_request *reqs)
{
	struct inv_batch_stats st = {0};
	uint64_t t0, t1;

	t0 = monotonic_ns();
	inv_batch_run(&srv->batch, hwpt->be ? hwpt->be : srv->be, reqs, &st);
	t1 = monotonic_ns();
	latency_hist_record(&srv->batch_duration, t1 - t0);
	count_batch(srv, hwpt, &st);
	/* The sim's model IOTLB is state too: on disk before anyone hears of it. */
	restart_save_if_changed(srv->rs);
	return t1;
}

/* Answers and frees the finished requests of one HWPT's batch. */
static void answer_batch(struct server *srv, struct hwpt_entry *hwpt, struct inv_request *reqs,
			 uint64_t t1)
{
	struct inv_request *r, *next;

	for (r = reqs; r; r = next) {
		struct session *s = r->owner;

		next = r->next;
		/*
		 * Shed while an earlier reply of this batch made room (a reload
		 * can lower the bound below what is held): already uncounted.
		 */
		if (!s->pending_dropped) {
			s->n_pending--;
			s->pending_bytes -= inv_request_bytes(r);
			srv->buffered_bytes -= inv_request_bytes(r);
		}
		hwpt->counters.requests++;
		hwpt->counters.entries_received += r->n;
		if (r->queue) {
			hwpt->counters.entries_failed += queue_answer(r);
		} else {
			hwpt->counters.entries_failed += flush_answer(s, r);
			/* Its ring may have stopped at max_inflight for this one. */
			if (s->queue)
				queue_resume(s->queue);
		}
		/* A request read before a batch that ran without a read is 0: skip. */
		if (r->recv_ns && r->recv_ns <= t1)
			latency_hist_record(&srv->inv_latency, t1 - r->recv_ns);
		free(r);
	}
}

void server_flush(struct server *srv)
{
	struct inv_request *reqs;
	struct hwpt_entry *hwpt;

	if (srv->flush_armed) {
		srv->flush_armed = false;
		/*
		 * In a poll turn arm_flush() scheduled nothing; an event made
		 * before the turn may stay, and finds nothing to run.
		 */
		if (srv->cfg->batch_delay_us || !queue_poll_turn_running(srv))
			event_del(srv->ev_flush);
	}
	/*
	 * A batch of at most batch_max_entries entries: its working arrays
	 * (some 200 bytes an entry from the copies to the plan) stay in the
	 * core's own cache, where a whole window's worth of a pipelined
	 * client spilled from it and cost about three cache misses an entry.
	 * Each batch is answered before the next runs, while its results
	 * are still in cache, and its shared-queue completions are published
	 * at once: a pipelined client refills its window while the next batch
	 * runs. Published only at the end of the pass, a window of 16
	 * requests came back all together and the daemon then polled an
	 * empty ring while the client refilled it (some 12% of its CPU).
	 */
	while ((hwpt = inv_queue_pop(&srv->queue, srv->cfg->batch_max_entries, &reqs))) {
		uint64_t t1 = run_hwpt_batch(srv, hwpt, reqs);

		answer_batch(srv, hwpt, reqs, t1);
		queue_publish_pending(srv, t1);
	}
}
