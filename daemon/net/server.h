/* SPDX-License-Identifier: MIT */
/*
 * The event loop side of the daemon: listening socket, peer policy,
 * connections (net/session.c), packet framing, the wire (net/wire.c) and
 * the per-pass invalidation batch (net/flush.c).
 *
 * Inside net/ calls go server -> flush -> session -> wire; session.c
 * reaches the batch only through the run_batch callback.
 */
#ifndef IOMMU_NESTD_SERVER_H
#define IOMMU_NESTD_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "backend/backend.h"
#include "util/config.h"
#include "net/decode_arena.h"
#include "state/registry.h"
#include "inv/batch.h"
#include "inv/queue.h"
#include "util/latency_hist.h"
#include "net/stats.h"
#include "net/wire.h"

struct event_base;
struct event;
struct session;
struct veventq;
struct restart;
struct queue_area;
struct nest_queue;

struct server {
	struct event_base *base;
	const struct config *cfg;
	struct backend *be; /* the root instance: every configured device, no client's objects */
	/*
	 * Each client gets its own VM context (state/vmctx.h): [daemon]
	 * vm_contexts at start and the backend has them. With a state file
	 * they survive a restart like HWPTs (persist/contexts.c).
	 */
	bool vm_contexts;
	struct backend_caps caps;
	struct hwpt_registry reg;
	struct daemon_stats stats;
	uint64_t start_ns;		    /* CLOCK_MONOTONIC at init, for uptime */
	uint64_t rx_ns;			    /* when the packets being handled were read */
	struct latency_hist inv_latency;    /* Invalidate: packet read -> reply */
	struct latency_hist batch_duration; /* one HWPT's batch: coalesce + submit */
	struct restart *rs;		    /* restart support; NULL: none (tests, fuzzers) */

	int listen_fd;
	bool listen_fd_owned; /* we created (and must unlink) the socket */
	struct event *ev_accept;
	/*
	 * A descriptor held in reserve (/dev/null): at EMFILE it is closed so
	 * that accept can take one more connection, refuse it and close it,
	 * instead of leaving it in the backlog and the listener readable.
	 */
	int spare_fd;
	bool accept_paused; /* out of memory or descriptors: ev_accept is off */
	/*
	 * SIGHUP and the Reload request: parses, validates and swaps in the
	 * whole config file (main.c). 0, or -errno with the reason in why.
	 */
	int (*reload)(void *ctx, char *why, size_t len);
	void *reload_ctx;
	struct event *ev_flush;
	/* Shared queues the poll loop looks at (net/queue.c), in round-robin order. */
	TAILQ_HEAD(, nest_queue) pollers;
	struct event *ev_poll;
	/* Queues with completions written and not published yet: one publish per pass. */
	struct nest_queue *cq_pending;
	TAILQ_HEAD(, session) sessions;
	uint64_t next_session_id;
	/* Replies queued and invalidate requests pending, all sessions (bytes). */
	uint64_t buffered_bytes;

	/* Invalidation batch of the current event-loop pass. */
	struct inv_queue queue;
	bool flush_armed;
	struct inv_batch_ctx batch;
	struct wire_enc inv_enc; /* InvalidateReply arrays, reused */
	/*
	 * Runs the queued batch now (server_flush), for session.c, which sits
	 * below flush.c: a session's teardown submits what is queued first.
	 */
	void (*run_batch)(struct server *srv);
	/*
	 * A session closed its descriptor: accept again at once if accepting
	 * was paused for want of one (whichever path freed the session).
	 */
	void (*fd_returned)(struct server *srv);
	/*
	 * A session's shared-memory queue (net/queue.c), for the QueueSetup
	 * handler below net/: attach takes the mapped area and both eventfds
	 * over and returns 0, or -errno leaving them to the caller; detach
	 * closes the session's queue (nothing of it may be in the batch).
	 */
	int (*queue_attach)(struct session *s, const struct queue_area *a, int kick_fd,
			    int call_fd);
	void (*queue_detach)(struct session *s);
	/* Gives a session its fault queue, for Alloc (net/events.c events_open()). */
	int (*events_open)(struct session *s);
	/* Starts reading a vEVENTQ for its owner, for AllocVeventq (net/vevents.c). */
	int (*veventq_watch)(struct session *s, struct veventq *v);
	/* Watches a reclaimed one and sends its book again (net/events.c events_resume()). */
	int (*events_resume)(struct session *s);

	/* One receive and one send buffer for the whole (single-threaded) loop. */
	uint8_t *rx_buf;
	size_t rx_cap;
	uint8_t *tx_buf;
	size_t tx_cap;
	struct decode_arena arena;
};

int server_init(struct server *srv, struct event_base *base, const struct config *cfg,
		struct backend *be);
void server_fini(struct server *srv);

/* Applies reloadable settings of srv->cfg (coalescing parameters). */
void server_apply_config(struct server *srv);

/*
 * Connection slots that only root and [policy] admin_groups members may
 * take: tenants are refused once max_clients minus these are in use, so
 * that an operator can always connect (1/16 of max_clients, 1 to 16).
 */
uint32_t server_admin_reserve(uint32_t max_clients);

/* Binds and listens on cfg->socket_path (SOCK_SEQPACKET). */
int server_listen_path(struct server *srv, const char *path, unsigned mode);
/* Serves an already listening socket (systemd activation). */
int server_listen_fd(struct server *srv, int fd);

/*
 * Handles one packet of s that came with nfds descriptors (SCM_RIGHTS),
 * which it takes over: decode, the request table, the reply. Returns 0,
 * or -EPROTO for a broken frame (the caller rejects it).
 */
int server_handle_packet(struct session *s, const uint8_t *buf, size_t len, int *fds, int nfds);

/* Runs every queued batch now and answers its requests (net/flush.c). */
void server_flush(struct server *srv);

#endif
