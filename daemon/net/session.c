/* SPDX-License-Identifier: MIT */
/*
 * One connection: accept-time setup, teardown, the queue of replies and
 * the send, and fair shedding under max_total_buffered_bytes. Below
 * server.c and flush.c: the batch is run through srv->run_batch.
 */
#include "net/session.h"

#include <errno.h>
#include <fcntl.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "inv/queue.h"
#include "req/dispatch.h"
#include "state/faults.h"
#include "state/registry.h"
#include "state/teardown.h"
#include "util/latency_hist.h"
#include "util/log.h"
#include "persist/restart.h"
#include "net/queue.h"
#include "net/server.h"

static void on_writable(evutil_socket_t fd, short what, void *arg);
static void free_outq(struct session *s);

/* unix_dgram_sendmsg() refuses a packet over sk_sndbuf - 32 with EMSGSIZE. */
#define SNDBUF_RESERVE 32

static size_t sndbuf_fit(int fd)
{
	int v = 0;
	socklen_t len = sizeof(v);

	if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, &len) < 0 || v <= SNDBUF_RESERVE)
		return 0;
	return (size_t)v - SNDBUF_RESERVE;
}

/*
 * A SOCK_SEQPACKET reply must fit the socket's send buffer whole, and the
 * default one (net.core.wmem_default, 212,992 bytes) is smaller than
 * max_message_size may be. SO_SNDBUFFORCE (CAP_NET_ADMIN) sets any size;
 * without it SO_SNDBUF is capped at net.core.wmem_max. The kernel doubles
 * the value asked for, so half of what is needed is asked: a tenant that
 * never reads can make the kernel hold one maximal reply, not two.
 */
size_t session_size_sndbuf(int fd, size_t want)
{
	size_t need = want + SNDBUF_RESERVE, fit = sndbuf_fit(fd);
	int v = need / 2 + 1 > INT32_MAX ? INT32_MAX : (int)(need / 2 + 1);

	if (fit >= want)
		return fit;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof(v)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
	return sndbuf_fit(fd);
}

struct session *session_new(struct server *srv, int fd, const struct ucred *cred)
{
	struct session *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->srv = srv;
	s->fd = fd;
	s->cred = *cred;
	s->id = ++srv->next_session_id;
	s->vm.id = s->id;
	s->vm.list = &srv->reg.ctxs;
	s->vm.uid = cred->uid; /* persisted with the context: Reclaim checks it */
	s->connected_ns = monotonic_ns();
	s->tx_max = session_size_sndbuf(fd, srv->tx_cap);
	if (!s->tx_max || s->tx_max > srv->tx_cap)
		s->tx_max = srv->tx_cap;
	/* Read once at accept, as the pid may be reused later; "?" if gone. */
	log_read_comm(cred->pid, s->comm, sizeof(s->comm));
	if (!s->comm[0])
		snprintf(s->comm, sizeof(s->comm), "?");
	STAILQ_INIT(&s->outq);
	s->ev_write = event_new(srv->base, fd, EV_WRITE, on_writable, s);
	if (!s->ev_write) {
		free(s);
		return NULL;
	}
	return s;
}

/*
 * Tears down what the session owns through the one teardown path
 * (state/teardown.h: detach, unmap, destroy), before the event loop runs
 * again.
 */
static void session_release_objects(struct session *s)
{
	struct server *srv = s->srv;
	struct teardown_holder h = {
	    .s = s, .session_id = s->id, .cred = s->cred, .owned = s->owned};

	s->owned = NULL;
	s->n_owned = 0;
	/* Its vEVENTQs' fds out of the fd store first: the store's copies would hold them. */
	restart_veventqs_release(srv->rs, s);
	if (state_teardown(&srv->reg, vmctx_backend(&s->vm, srv->be), &h, &srv->stats.hwpts_active))
		restart_save(srv->rs);
}

/*
 * Closing a unix socket with unread packets makes the peer's next read fail
 * with ECONNRESET before it sees replies we already queued (such as the
 * error that explains the close). Reading what is left first avoids that.
 */
static void drain_input(struct session *s)
{
	char sink[256];

	shutdown(s->fd, SHUT_WR);
	for (int i = 0; i < 4096; i++)
		if (recv(s->fd, sink, sizeof(sink), MSG_DONTWAIT | MSG_TRUNC) <= 0)
			break;
}

/* After the teardown, so backend errors of it come first, with the session id. */
static void log_disconnect(const struct session *s, uint32_t hwpts)
{
	uint64_t ms = (monotonic_ns() - s->connected_ns) / 1000000u;

	log_event(s->close_reason ? LOG_WARNING : LOG_INFO, LOG_EV_DISCONNECT,
		  LOG_FIELDS(LF_UINT("session", s->id), LF_CRED(s->cred), LF_STR("comm", s->comm),
			     LF_STR("client", s->name), LF_UINT("hwpts", hwpts),
			     LF_UINT("requests", s->n_requests), LF_UINT("denied", s->n_denied),
			     LF_UINT("duration_ms", ms)),
		  "client disconnected%s%s", s->close_reason ? ": " : "",
		  s->close_reason ? s->close_reason : "");
}

void session_free(struct session *s)
{
	uint32_t hwpts = s->n_owned;

	/*
	 * Queued invalidations are submitted before the HWPTs go away: its
	 * own, and an admin's queued on one of its HWPTs.
	 */
	if (s->n_pending || !inv_queue_empty(&s->srv->queue))
		s->srv->run_batch(s->srv);
	session_release_objects(s);
	/* After the HWPTs: the kernel refuses to destroy a fault object they use. */
	if (s->ev_fault)
		event_free(s->ev_fault);
	if (s->faults) {
		/* Its fd out of the fd store first: the store's copy would keep the object busy. */
		restart_fault_release(s->srv->rs, s->faults);
		client_faults_close(&s->srv->reg, s->faults);
		s->faults = NULL;
		/* The file forgets the queue, the fd store lets its fd go. */
		restart_save(s->srv->rs);
	}
	/* Its objects are gone: now its devices and the context itself (before the root). */
	if (s->vm.be) {
		/* Orphans of its context it never reclaimed: they cannot outlive their instance. */
		struct teardown_holder oh = {.s = NULL, .only_be = s->vm.be};

		state_teardown(&s->srv->reg, s->vm.be, &oh, &s->srv->stats.hwpts_active);
		/* Their fault queues too (the kernel answered their groups with them). */
		client_faults_close_orphans(&s->srv->reg, s->vm.be);
		vmctx_close(&s->vm);
		/* The file forgets the context, the fd store lets its objects go. */
		restart_save(s->srv->rs);
	}
	queue_close(s);
	if (s->ev_read)
		event_free(s->ev_read);
	if (s->ev_hello)
		event_free(s->ev_hello);
	event_free(s->ev_write);
	free_outq(s);
	drain_input(s);
	close(s->fd);
	TAILQ_REMOVE(&s->srv->sessions, s, link);
	s->srv->stats.sessions_active--;
	log_disconnect(s, hwpts);
	s->srv->fd_returned(s->srv);
	free(s);
}

static void free_outq(struct session *s)
{
	struct out_packet *p;

	while ((p = STAILQ_FIRST(&s->outq))) {
		STAILQ_REMOVE_HEAD(&s->outq, link);
		if (p->fd >= 0)
			close(p->fd);
		free(p);
	}
	s->srv->buffered_bytes -= s->outq_bytes;
	s->outq_bytes = 0;
	s->ev_queued = 0;
}

/*
 * Frees every queued request of s (dropped: it will get no reply) and
 * uncounts all it had queued. Those of a batch being answered are no longer
 * in the queue, but are in pending_bytes: the flag tells answer_batch() not
 * to take them off a second time.
 */
static void drop_pending(struct session *s)
{
	inv_queue_drop_owner(&s->srv->queue, s);
	s->srv->buffered_bytes -= s->pending_bytes;
	s->pending_bytes = 0;
	s->n_pending = 0;
	s->pending_dropped = true;
}

/* The live session holding the most buffered bytes (ties: the oldest). */
static struct session *biggest_holder(struct server *srv)
{
	struct session *s, *big = NULL;

	TAILQ_FOREACH(s, &srv->sessions, link)
	if (!s->closing && s->outq_bytes + s->pending_bytes &&
	    (!big || s->outq_bytes + s->pending_bytes > big->outq_bytes + big->pending_bytes))
		big = s;
	return big;
}

bool session_make_room(struct session *s, size_t len)
{
	struct server *srv = s->srv;
	uint64_t max = srv->cfg->quota.max_total_buffered_bytes;
	struct session *big;

	/*
	 * Fair shedding: the others' memory is not the newcomer's fault, and
	 * dropping the biggest holder frees the most with one victim. All it
	 * holds goes at once: its queued replies, which it was not reading, and
	 * its queued requests, which nobody will hear of (nothing acknowledged
	 * is lost). Bytes left counted until the end of the pass would make the
	 * next biggest, innocent, holder look guilty too.
	 */
	while (max && srv->buffered_bytes + len > max && (big = biggest_holder(srv))) {
		srv->stats.denials++;
		log_event(LOG_WARNING, LOG_EV_DENIED,
			  LOG_FIELDS(LF_UINT("session", big->id), LF_CRED(big->cred),
				     LF_STR("comm", big->comm), LF_INT("error", -ENOBUFS),
				     LF_UINT("limit", max),
				     LF_UINT("buffered", big->outq_bytes + big->pending_bytes)),
			  "dropped: the largest share of max_total_buffered_bytes");
		big->close_reason = "dropped: it held the most of max_total_buffered_bytes";
		big->closing = true;
		free_outq(big);
		drop_pending(big);
		if (big == s)
			return false;
	}
	return true;
}

/* One reply packet, with fd attached unless it is negative. */
static ssize_t send_fd(int sock, const void *buf, size_t len, int fd)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} control;
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	struct cmsghdr *c;

	if (fd >= 0) {
		memset(&control, 0, sizeof(control));
		mh.msg_control = control.buf;
		mh.msg_controllen = sizeof(control.buf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	return sendmsg(sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
}

static int queue_packet(struct session *s, const uint8_t *buf, size_t len, int fd)
{
	struct out_packet *p;

	if (s->outq_bytes + len > s->srv->cfg->quota.max_outq_bytes)
		return -ENOBUFS;
	if (!session_make_room(s, len))
		return -ENOBUFS;
	p = malloc(sizeof(*p) + len);
	if (!p)
		return -ENOMEM;
	p->event = false;
	p->len = len;
	p->fd = -1;
	if (fd >= 0 && (p->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3)) < 0) {
		free(p);
		return -ENOMEM;
	}
	memcpy(p->data, buf, len);
	STAILQ_INSERT_TAIL(&s->outq, p, link);
	s->outq_bytes += len;
	s->srv->buffered_bytes += len;
	if (!event_pending(s->ev_write, EV_WRITE, NULL))
		event_add(s->ev_write, NULL);
	return 0;
}

/* Sends queued replies in order until the socket is full again. */
static void on_writable(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	struct out_packet *p;

	while ((p = STAILQ_FIRST(&s->outq))) {
		ssize_t n = send_fd(s->fd, p->data, p->len, p->fd);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			event_add(s->ev_write, NULL);
			return;
		}
		if (n < 0) {
			session_free(s);
			return;
		}
		STAILQ_REMOVE_HEAD(&s->outq, link);
		s->outq_bytes -= p->len;
		s->srv->buffered_bytes -= p->len;
		if (p->fd >= 0)
			close(p->fd);
		s->ev_queued -= p->event;
		free(p);
	}
	if (session_answered(s))
		session_free(s);
}

bool session_answered(const struct session *s)
{
	return s->eof && !s->n_pending && STAILQ_EMPTY(&s->outq);
}

/*
 * A reply the daemon made too big for the socket is the daemon's fault,
 * not the client's: the client gets -EMSGSIZE for that request (with the
 * size the socket takes as the limit) and keeps its session and objects.
 */
static void reply_too_big(struct session *s, uint64_t id, size_t len)
{
	IommuNest__Reply err = IOMMU_NEST__REPLY__INIT;

	log_err("session %llu: reply of %zu bytes does not fit its socket (%zu bytes)",
		(unsigned long long)s->id, len, s->tx_max);
	err.id = id;
	reply_error(&err, -EMSGSIZE, "the reply (%zu bytes) does not fit the socket (%zu bytes)",
		    len, s->tx_max);
	err.limit = s->tx_max;
	session_send_reply(s, &err);
}

void session_send_reply(struct session *s, const IommuNest__Reply *rep)
{
	session_send_reply_fd(s, rep, -1);
}

void session_send_reply_fd(struct session *s, const IommuNest__Reply *rep, int fd)
{
	struct server *srv = s->srv;
	size_t len = iommu_nest__reply__get_packed_size(rep);
	ssize_t n;
	int rc;

	if (s->closing)
		return;
	/*
	 * Persist, then acknowledge: handlers of lifecycle requests save
	 * what they changed in the registry before they reply; backend state
	 * any request changed (SimPopulate, InjectFault, a partial unmap) is
	 * saved here, before any reply can tell a client that it happened.
	 */
	restart_save_if_changed(srv->rs);
	if (len > s->tx_max) {
		/* A size calculation that missed, or a socket that shrank. */
		reply_too_big(s, rep->id, len);
		return;
	}
	iommu_nest__reply__pack(rep, srv->tx_buf);
	s->n_errors += rep->status != 0;
	if (STAILQ_EMPTY(&s->outq)) {
		n = send_fd(s->fd, srv->tx_buf, len, fd);
		if (n >= 0)
			return;
		if (errno == EMSGSIZE) {
			reply_too_big(s, rep->id, len);
			return;
		}
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			s->closing = true;
			return;
		}
	}
	rc = queue_packet(s, srv->tx_buf, len, fd);
	if (rc && !s->closing) {
		/* Said once, by the disconnect event. */
		s->close_reason = rc == -ENOBUFS ? "client is not reading its replies"
						 : "out of memory for its queued replies";
		s->closing = true;
	}
}

int session_send_event(struct session *s, const IommuNest__Reply *rep, uint32_t max_queued)
{
	struct server *srv = s->srv;
	size_t len = iommu_nest__reply__get_packed_size(rep);
	uint64_t total = srv->cfg->quota.max_total_buffered_bytes;
	struct out_packet *p;
	ssize_t n;

	if (s->closing)
		return -EPIPE;
	if (len > s->tx_max)
		return -ENOBUFS;
	iommu_nest__reply__pack(rep, srv->tx_buf);
	if (STAILQ_EMPTY(&s->outq)) {
		n = send(s->fd, srv->tx_buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n >= 0)
			return 0;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			s->closing = true;
			return -EPIPE;
		}
	}
	/*
	 * Queued, within three bounds, and never at another session's cost:
	 * unlike a reply, an event that does not fit is dropped (counted),
	 * nobody is disconnected for it.
	 */
	if (s->ev_queued >= max_queued || s->outq_bytes + len > srv->cfg->quota.max_outq_bytes ||
	    (total && srv->buffered_bytes + len > total))
		return -ENOBUFS;
	p = malloc(sizeof(*p) + len);
	if (!p)
		return -ENOBUFS;
	p->event = true;
	p->fd = -1; /* events carry no descriptor */
	p->len = len;
	memcpy(p->data, srv->tx_buf, len);
	STAILQ_INSERT_TAIL(&s->outq, p, link);
	s->outq_bytes += len;
	srv->buffered_bytes += len;
	s->ev_queued++;
	if (!event_pending(s->ev_write, EV_WRITE, NULL))
		event_add(s->ev_write, NULL);
	return 0;
}
