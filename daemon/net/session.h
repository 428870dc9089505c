/* SPDX-License-Identifier: MIT */
/*
 * One client connection: its peer credentials, the HWPTs it owns, its
 * queued output. A session that goes away takes its HWPTs with it.
 */
#ifndef IOMMU_NESTD_SESSION_H
#define IOMMU_NESTD_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include "iommu_nest.pb-c.h"
#include "util/policy.h"
#include "state/vmctx.h"

struct server;
struct hwpt_entry;
struct nest_queue;
struct client_faults;

struct out_packet {
	STAILQ_ENTRY(out_packet) link;
	bool event; /* an asynchronous event (counted in ev_queued) */
	size_t len;
	int fd; /* passed with it (SCM_RIGHTS, OpenDevice's device fd), or -1; owned */
	uint8_t data[];
};

struct session {
	TAILQ_ENTRY(session) link;
	struct server *srv;
	uint64_t id;
	int fd;
	struct ucred cred; /* SO_PEERCRED at accept */
	bool hello_done;
	bool closing;
	/*
	 * The peer shut down its sending side: nothing more to read, but what
	 * was read is still answered; the session closes once that is done.
	 */
	bool eof;
	char name[64];		  /* client_name from Hello, for logs */
	const char *close_reason; /* why the daemon closed it (static string), for the log */
	char comm[16];		  /* /proc/PID/comm at accept, for operators ("?" if gone) */
	uint64_t connected_ns;	  /* CLOCK_MONOTONIC at accept */

	struct event *ev_read;
	struct event *ev_write;
	size_t tx_max;			/* the largest packet its socket's send buffer takes */
	struct event *ev_hello;		/* [policy] hello_timeout_ms deadline; NULL: none */
	STAILQ_HEAD(, out_packet) outq; /* replies the socket could not take yet */
	size_t outq_bytes;
	size_t pending_bytes; /* its invalidate requests waiting in the batch */
	/*
	 * Shed under max_total_buffered_bytes: what it had queued is no longer
	 * counted, including requests of a batch being answered right then.
	 */
	bool pending_dropped;

	/* Its VM context (state/vmctx.h): its devices, memory and HWPTs live there. */
	struct vm_ctx vm;

	uint32_t n_pending; /* invalidate requests waiting in the batch */
	uint32_t n_owned;   /* HWPTs in owned */
	struct hwpt_entry *owned;
	struct nest_queue *queue; /* its shared-memory queue (net/queue.h), or NULL */

	/* The event channel (net/events.h). */
	struct client_faults *faults; /* its fault queue, or NULL */
	struct event *ev_fault;	      /* reads faults->q.fd */
	uint64_t ev_seq;	      /* events meant for it, dropped ones included */
	uint64_t ev_lost;	      /* dropped since the last one it was sent */
	uint32_t ev_queued;	      /* events in outq */
	struct rate_limiter rate;
	uint64_t n_denied;

	/* For operators (ListClients). */
	uint64_t n_requests;
	uint64_t n_errors;  /* replies with a non-zero status */
	uint64_t n_entries; /* invalidation entries received */
};

/*
 * Raises fd's send buffer so that a packet of want bytes fits (it never
 * lowers it) and returns the largest packet the socket takes now, 0 if
 * that cannot be read.
 */
size_t session_size_sndbuf(int fd, size_t want);

struct session *session_new(struct server *srv, int fd, const struct ucred *cred);
/* Detaches and destroys the session's HWPTs, closes the socket, frees it. */
void session_free(struct session *s);

/* Half-closed by the peer and every request read has been answered and sent. */
bool session_answered(const struct session *s);

/*
 * Makes room for len more bytes of s under [policy] max_total_buffered_bytes:
 * while all sessions together would hold more, the one holding the most
 * is dropped (its queued replies freed now). False if that was s.
 */
bool session_make_room(struct session *s, size_t len);

/* Encodes rep and sends it (or queues it); on a fatal error closes s. */
void session_send_reply(struct session *s, const IommuNest__Reply *rep);
/*
 * The same with fd passed along (SCM_RIGHTS) unless it is negative. fd
 * stays the caller's: a queued reply keeps a dup of it.
 */
void session_send_reply_fd(struct session *s, const IommuNest__Reply *rep, int fd);
/*
 * Sends an event, which may be dropped but never costs the
 * session: -ENOBUFS when max_queued events wait already or the buffers
 * are full, 0 when sent or queued (-EPIPE: the session is closing).
 */
int session_send_event(struct session *s, const IommuNest__Reply *rep, uint32_t max_queued);

#endif
