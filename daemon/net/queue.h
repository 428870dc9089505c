/* SPDX-License-Identifier: MIT */
/*
 * The second transport: a session's shared-memory queue
 * (proto/iommu_nest_queue.h). Its submissions are Invalidates like the
 * socket's: through the same rules (req_invalidate_accept) into the same
 * per-pass batch (net/flush.c), so ring and socket requests of one HWPT
 * in one pass batch together; their results go to the completion ring.
 *
 * Inside net/: server -> queue -> flush -> queue_done; session ->
 * queue_done. queue.c takes submissions (on a kick and in the poll
 * loop); queue_done.c writes completions, signals the client, keeps the
 * poll loop's list and closes a queue.
 */
#ifndef IOMMU_NESTD_NET_QUEUE_H
#define IOMMU_NESTD_NET_QUEUE_H

#include <event2/util.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "net/queue_slot.h"

struct event;
struct server;
struct session;
struct inv_request;

struct nest_queue {
	struct session *s;
	struct queue_area a; /* the mapping and the daemon's copy of its geometry */
	int kick_fd, call_fd;
	struct event *ev_kick;
	/* The daemon's own indices: the area's copies are for the client to read. */
	uint32_t sq_head, cq_tail;
	/* The client's cq_head as last read (queue_cq_room_for()). */
	uint32_t cq_head_seen;
	/* Completions written up to cq_tail, not published: in srv->cq_pending. */
	bool cq_pending;
	struct nest_queue *cq_next;
	/* Submissions taken, not completed yet: each holds a completion slot. */
	uint32_t inflight;
	/* Polling (queue_poll_us): NEED_KICK is clear, the poll loop looks at it. */
	bool polling;
	/* In srv->pollers: the poll loop looks at it (polling, or more to take). */
	bool in_poll;
	TAILQ_ENTRY(nest_queue) poll_link;
	/*
	 * The poll window's start: the last submission taken or completion
	 * published. Counting from the take alone, a batch that runs longer
	 * than the window would end it before the client saw its answer and
	 * could submit the next: every pass of a pipelined client would then
	 * cost a kick and a wake-up.
	 */
	uint64_t last_active_ns;
	/* Stopped for a full completion ring or max_inflight: resume on a completion. */
	bool stalled;
	/* The client broke the ring's rules: no more submissions; freed once none is in flight. */
	bool broken;
	/* Taking submissions now: a broken queue is freed by the consumer, after it. */
	bool busy;
};

/*
 * The poll loop (srv->ev_poll, a zero timeout so that the sockets are
 * served between turns): spins over the queues in srv->pollers for up to
 * [coalesce] queue_poll_slice_us, taking up to queue_budget submissions of
 * each queue that has some, in round-robin order, and running the batch
 * at once; drops the queues whose poll window ran out.
 */
void queue_poll_turn(evutil_socket_t fd, short what, void *srv);

/* Arms the poll loop for its next turn (after the sockets' events). */
void queue_poll_arm(struct server *srv);
/*
 * Between these two the poll loop is running a turn: it looks at every
 * queue on the list until the list is empty or the turn's slice is over
 * and then re-arms itself, so queue_poll_arm() need not touch the timer.
 */
void queue_poll_turn_begin(struct server *srv);
void queue_poll_turn_end(struct server *srv);
bool queue_poll_turn_running(const struct server *srv);

/* Puts q in the poll loop's list (if not there) and arms the loop. */
void queue_look_again(struct nest_queue *q);

/* Takes q out of the poll loop's list. */
void queue_unpoll(struct nest_queue *q);

/* srv->queue_attach (see net/server.h). */
int queue_attach(struct session *s, const struct queue_area *a, int kick_fd, int call_fd);

/*
 * Answers a finished request of the queue: its completion, counted like
 * a socket reply. Returns its failed entries. r stays the caller's.
 */
unsigned queue_answer(struct inv_request *r);

/*
 * A request of q's session was answered (either transport): a queue that
 * stopped for max_inflight or a full completion ring looks again.
 */
void queue_resume(struct nest_queue *q);

/* Answers a submission refused before it was a request (status only). */
void queue_refuse(struct nest_queue *q, uint64_t user_data, int status);

/*
 * Publishes the completions written since the last call, one index store,
 * one fence and at most one call per queue: the end of every batch and of
 * every turn that took submissions. now (CLOCK_MONOTONIC) is when they
 * were answered, which starts each queue's poll window again: the caller
 * has read the clock already, and a read is a tenth of a polled round trip.
 */
void queue_publish_pending(struct server *srv, uint64_t now);

/*
 * The client broke the ring (an index beyond it): stop taking, and close
 * the queue once nothing of it is in the batch.
 */
void queue_break(struct nest_queue *q, const char *why);

/* Frees a broken queue once nothing of it is in flight and the consumer is out. */
void queue_release_if_done(struct nest_queue *q);

/* Unmaps and closes s's queue now (srv->queue_detach; session teardown). */
void queue_close(struct session *s);

#endif
