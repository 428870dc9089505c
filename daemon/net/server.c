/* SPDX-License-Identifier: MIT */
/*
 * Listening socket, accept and peer policy, reads and framing. One packet
 * is one message; its size is checked (MSG_TRUNC) before anything decodes
 * it (net/wire.c), the request table answers it (req/dispatch.c) and the
 * reply is sent from here. Invalidate requests read in one event-loop
 * pass are batched per HWPT and submitted together by on_flush
 * (net/flush.c), which libevent runs after every callback that was
 * already active in the pass (same priority, queued behind them).
 */
#include "net/server.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "inv/request.h"
#include "net/events.h"
#include "net/vevents.h"
#include "net/flush.h"
#include "net/queue.h"
#include "net/session.h"
#include "net/wire.h"
#include "persist/restart.h"
#include "req/dispatch.h"
#include "util/common.h"
#include "util/log.h"

/* Packets handled per readable callback before yielding to other clients. */
#define READ_BURST 64
/* Connections accepted (or refused) per readable listener before serving others. */
#define ACCEPT_BURST 32
/* Packets per receive call (recvmmsg); each slot can hold a maximal packet. */
#define RX_SLOTS 8

static void on_flush(evutil_socket_t fd, short what, void *arg);

static struct coalesce_params coalesce_params_of(const struct config *cfg)
{
	return (struct coalesce_params){
	    .enabled = cfg->coalesce,
	    .slack_pages = cfg->coalesce_slack_pages,
	    .flush_all_pages = cfg->flush_all_pages,
	    .vtd_max_mask = cfg->vtd_max_mask,
	};
}

void server_apply_config(struct server *srv)
{
	srv->batch.params = coalesce_params_of(srv->cfg);
}

/*
 * Replies must fit the accepted sockets' send buffers: sized the way
 * session_new() will size them, on a socket pair, and where the buffer
 * cannot be raised to max_message_size (no CAP_NET_ADMIN and a low
 * net.core.wmem_max), replies (pages, Invalidate entries) get smaller.
 */
static void fit_replies_to_sockets(struct server *srv)
{
	int sv[2];
	size_t fit;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return;
	fit = session_size_sndbuf(sv[0], srv->tx_cap);
	close(sv[0]);
	close(sv[1]);
	if (fit && fit < srv->tx_cap) {
		log_notice("replies are limited to %zu bytes by the socket send buffer "
			   "(net.core.wmem_max; SO_SNDBUFFORCE needs CAP_NET_ADMIN)",
			   fit);
		srv->tx_cap = fit;
	}
}

static void resume_accepting(struct server *srv);

int server_init(struct server *srv, struct event_base *base, const struct config *cfg,
		struct backend *be)
{
	struct coalesce_params cp = coalesce_params_of(cfg);
	int rc;

	memset(srv, 0, sizeof(*srv));
	srv->base = base;
	srv->cfg = cfg;
	srv->be = be;
	srv->vm_contexts = cfg->vm_contexts && be->ops->open_context && be->ops->add_device;
	srv->listen_fd = -1;
	srv->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	srv->start_ns = monotonic_ns();
	srv->run_batch = server_flush;
	srv->fd_returned = resume_accepting;
	srv->queue_attach = queue_attach;
	srv->queue_detach = queue_close;
	srv->events_open = events_open;
	srv->veventq_watch = vevents_watch;
	srv->events_resume = events_resume;
	TAILQ_INIT(&srv->sessions);
	be->ops->get_caps(be, &srv->caps);
	rc = hwpt_registry_init(&srv->reg, cfg);
	if (rc)
		return rc;
	inv_batch_ctx_init(&srv->batch, &cp);
	/* One byte more than the limit, so that an oversized packet shows. */
	srv->rx_cap = cfg->max_message_size + 1;
	srv->tx_cap = cfg->max_message_size;
	/* Untouched slots cost address space, not memory: only what arrives is paged in. */
	fit_replies_to_sockets(srv);
	srv->rx_buf = malloc(srv->rx_cap * RX_SLOTS);
	srv->tx_buf = malloc(srv->tx_cap);
	srv->ev_flush = event_new(base, -1, 0, on_flush, srv);
	TAILQ_INIT(&srv->pollers);
	srv->cq_pending = NULL;
	srv->ev_poll = evtimer_new(base, queue_poll_turn, srv);
	/*
	 * The worst decode of a packet of L bytes is a packed uint64 array of
	 * L bytes of one-byte varints: 8L bytes, plus the message structs.
	 */
	rc = decode_arena_init(&srv->arena, (size_t)cfg->max_message_size * 8 + 65536);
	if (rc || !srv->rx_buf || !srv->tx_buf || !srv->ev_flush || !srv->ev_poll) {
		server_fini(srv);
		return -ENOMEM;
	}
	return 0;
}

void server_fini(struct server *srv)
{
	struct session *s;

	while ((s = TAILQ_FIRST(&srv->sessions)))
		session_free(s);
	if (srv->ev_accept)
		event_free(srv->ev_accept);
	if (srv->ev_flush)
		event_free(srv->ev_flush);
	if (srv->ev_poll)
		event_free(srv->ev_poll);
	if (srv->spare_fd >= 0)
		close(srv->spare_fd);
	srv->spare_fd = -1;
	if (srv->listen_fd >= 0) {
		close(srv->listen_fd);
		if (srv->listen_fd_owned)
			unlink(srv->cfg->socket_path);
	}
	inv_batch_ctx_free(&srv->batch);
	wire_enc_free(&srv->inv_enc);
	hwpt_registry_fini(&srv->reg);
	free(srv->rx_buf);
	free(srv->tx_buf);
	decode_arena_fini(&srv->arena);
	srv->rx_buf = srv->tx_buf = NULL;
	srv->ev_accept = srv->ev_flush = srv->ev_poll = NULL;
	srv->listen_fd = -1;
}

/*
 * Frees sessions that a handler or a failed send marked for closing, and
 * half-closed ones that have been answered in full (on_writable frees
 * those whose last replies had to wait for the socket).
 */
static void reap_closing(struct server *srv)
{
	struct session *s, *next;

	/* Each freed session gives a descriptor back (srv->fd_returned). */
	for (s = TAILQ_FIRST(&srv->sessions); s; s = next) {
		next = TAILQ_NEXT(s, link);
		if (s->closing || session_answered(s))
			session_free(s);
	}
}

/* Best-effort error to a client whose frame we reject, then close. */
static void reject_frame(struct session *s, int err, uint64_t limit, const char *why)
{
	IommuNest__Reply rep = IOMMU_NEST__REPLY__INIT;

	s->srv->stats.protocol_errors++;
	log_event(LOG_NOTICE, LOG_EV_PROTOCOL_ERROR,
		  LOG_FIELDS(LF_UINT("session", s->id), LF_CRED(s->cred), LF_INT("error", err)),
		  "%s, closing", why);
	reply_error(&rep, err, "%s", why);
	rep.limit = limit;
	session_send_reply(s, &rep);
	s->closing = true;
	s->close_reason = "protocol error";
}

/* At most this many descriptors are taken from one packet; more is MSG_CTRUNC. */
#define MAX_PASSED_FDS 16

/*
 * Collects the descriptors passed along a packet (SCM_RIGHTS; every such
 * message of the packet) into fds. Returns how many.
 */
static int collect_passed_fds(struct msghdr *mh, int *fds)
{
	int n = 0;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		int nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		const unsigned char *data = CMSG_DATA(c);

		for (int i = 0; i < nfd && n < MAX_PASSED_FDS; i++)
			memcpy(&fds[n++], data + i * sizeof(int), sizeof(int));
	}
	return n;
}

/* One received packet: its length (or a negative errno) and its descriptors. */
struct rx_packet {
	uint8_t *data;
	ssize_t len; /* > 0; 0 at EOF; -EBADMSG (MSG_CTRUNC), -EMSGSIZE */
	int fds[MAX_PASSED_FDS];
	int nfds;
};

/*
 * Reads up to RX_SLOTS packets with one recvmmsg: a synchronous client's
 * single request costs one receive call instead of a recvmsg plus the one
 * that says EAGAIN, and a pipelining client's burst comes in a few calls.
 * Returns the number of packets, -EAGAIN, or -errno. Descriptors of a
 * packet with len <= 0 are closed already; the others are the caller's.
 */
static int read_packets(struct session *s, struct rx_packet *pk)
{
	struct server *srv = s->srv;
	/* Aligned for cmsghdr (a union with it has a flexible member: not ISO C). */
	struct {
		_Alignas(struct cmsghdr) char buf[CMSG_SPACE(sizeof(int) * MAX_PASSED_FDS)];
	} control[RX_SLOTS];
	struct iovec iov[RX_SLOTS];
	struct mmsghdr mm[RX_SLOTS];
	int n;

	memset(mm, 0, sizeof(mm));
	for (int i = 0; i < RX_SLOTS; i++) {
		pk[i].data = srv->rx_buf + (size_t)i * srv->rx_cap;
		iov[i] = (struct iovec){.iov_base = pk[i].data, .iov_len = srv->rx_cap};
		mm[i].msg_hdr.msg_iov = &iov[i];
		mm[i].msg_hdr.msg_iovlen = 1;
		mm[i].msg_hdr.msg_control = control[i].buf;
		mm[i].msg_hdr.msg_controllen = sizeof(control[i].buf);
	}
	n = recvmmsg(s->fd, mm, RX_SLOTS, MSG_DONTWAIT | MSG_TRUNC | MSG_CMSG_CLOEXEC, NULL);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : -errno;
	for (int i = 0; i < n; i++) {
		struct msghdr *mh = &mm[i].msg_hdr;

		pk[i].len = mm[i].msg_len; /* the full length, thanks to MSG_TRUNC */
		/*
		 * With MSG_CTRUNC the kernel installed what fit in control and
		 * dropped the rest (scm_detach_fds); what fit is ours to close.
		 */
		pk[i].nfds = mh->msg_controllen ? collect_passed_fds(mh, pk[i].fds) : 0;
		if (mh->msg_flags & MSG_CTRUNC)
			pk[i].len = -EBADMSG;
		else if (pk[i].len > 0 && (size_t)pk[i].len > srv->cfg->max_message_size)
			pk[i].len = -EMSGSIZE;
		if (pk[i].len <= 0) {
			close_fds(pk[i].fds, pk[i].nfds);
			pk[i].nfds = 0;
		}
	}
	return n;
}

/* Handles one packet; false when the session must stop reading. */
static bool handle_packet(struct session *s, struct rx_packet *p)
{
	struct server *srv = s->srv;

	if (p->len == 0) {
		/* Not closing yet: queued invalidations still owe their replies. */
		s->eof = true;
		event_del(s->ev_read);
		return false;
	}
	if (p->len == -EMSGSIZE) {
		reject_frame(s, -EMSGSIZE, srv->cfg->max_message_size,
			     "packet over the maximum message size");
		return false;
	}
	if (p->len < 0) {
		reject_frame(s, (int)p->len, 0, "unreadable packet");
		return false;
	}
	if (server_handle_packet(s, p->data, (size_t)p->len, p->fds, p->nfds) < 0)
		reject_frame(s, -EPROTO, 0, "packet is not a valid Request");
	return !s->closing;
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	struct server *srv = s->srv;
	struct rx_packet pk[RX_SLOTS];

	for (int got = 0; got < READ_BURST && !s->closing && !s->eof;) {
		int n = read_packets(s, pk), i = 0;

		if (n == -EAGAIN)
			break;
		if (n < 0) {
			s->closing = true; /* ECONNRESET and the like */
			break;
		}
		srv->rx_ns = monotonic_ns();
		while (i < n && handle_packet(s, &pk[i]))
			i++;
		/* Packets after one that ended the session are dropped. */
		for (i++; i < n; i++)
			close_fds(pk[i].fds, pk[i].nfds);
		got += n;
		if (n < RX_SLOTS)
			break; /* the socket is drained: no need to ask again */
	}
	/*
	 * When no other callback of this pass is waiting (the flush event is
	 * the only active one), run the batch now: it would be the next thing
	 * to run anyway, and this saves a turn of the loop per request.
	 */
	if (srv->flush_armed && !srv->cfg->batch_delay_us &&
	    event_base_get_num_events(srv->base, EVENT_BASE_COUNT_ACTIVE) <= 1)
		server_flush(srv);
	reap_closing(srv);
}

static int get_peer_cred(int fd, struct ucred *cred)
{
	socklen_t len = sizeof(*cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, &len) < 0)
		return -errno;
	return 0;
}

/*
 * Refuses a connection before it gets a session: one error reply (id 0)
 * that says why, then close. Logged with the peer's identity and counted.
 */
static void refuse_peer(struct server *srv, int fd, const struct ucred *cred, int err,
			uint64_t limit, const char *why)
{
	IommuNest__Reply rep = IOMMU_NEST__REPLY__INIT;
	uint8_t buf[256];
	char comm[16];
	size_t len;

	srv->stats.denials++;
	log_read_comm(cred->pid, comm, sizeof(comm));
	log_event(LOG_NOTICE, LOG_EV_REFUSED,
		  LOG_FIELDS(LF_CRED(*cred), LF_STR("comm", comm), LF_INT("error", err)),
		  "refused connection: %s", why);
	rep.status = err;
	rep.error = (char *)why;
	rep.limit = limit;
	len = iommu_nest__reply__get_packed_size(&rep);
	if (len <= sizeof(buf)) {
		iommu_nest__reply__pack(&rep, buf);
		(void)!send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	}
	close(fd);
}

static void resume_accepting(struct server *srv)
{
	if (!srv->accept_paused)
		return;
	srv->accept_paused = false;
	event_add(srv->ev_accept, NULL);
	if (srv->spare_fd < 0)
		srv->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void on_accept_resume(evutil_socket_t fd, short what, void *arg)
{
	resume_accepting(arg);
}

/* One "pausing" warning per interval however hard clients hammer the socket. */
#define PAUSE_LOG_INTERVAL_MS 10000

/*
 * Out of memory, or of descriptors with no spare left: the listener stays
 * readable, so stop accepting instead of spinning, until a session closes
 * (reap_closing) or 100 ms pass; clients wait in the backlog meanwhile.
 */
static void pause_accepting(struct server *srv, int err)
{
	static struct log_ratelimit rl;
	struct timeval tv = {.tv_sec = 0, .tv_usec = 100000};
	uint64_t dropped = 0;

	if (log_ratelimit_take(&rl, 1, PAUSE_LOG_INTERVAL_MS, monotonic_ns() / 1000000, &dropped))
		log_warn("accept: %s; pausing until a connection closes (at most 100 ms)%s",
			 strerror(err), dropped ? " (repeated; warnings rate-limited)" : "");
	srv->accept_paused = true;
	event_del(srv->ev_accept);
	event_base_once(srv->base, -1, EV_TIMEOUT, on_accept_resume, srv, &tv);
}

/*
 * EMFILE: give up the spare descriptor for one accept, refuse that peer
 * (so that it learns why instead of hanging in the backlog), take the spare
 * back. False when there is no spare to use: the caller pauses.
 */
static bool refuse_with_spare(struct server *srv, int lfd)
{
	struct ucred cred = {.pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1};
	int fd;

	if (srv->spare_fd < 0)
		return false;
	close(srv->spare_fd);
	srv->spare_fd = -1;
	fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd >= 0) {
		(void)get_peer_cred(fd, &cred);
		refuse_peer(srv, fd, &cred, -EUSERS, srv->cfg->quota.max_clients,
			    "daemon is out of file descriptors (RLIMIT_NOFILE)");
	}
	srv->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	return fd >= 0 && srv->spare_fd >= 0;
}

uint32_t server_admin_reserve(uint32_t max_clients)
{
	uint32_t r = max_clients / 16;

	if (max_clients < 2)
		return 0;
	return r < 1 ? 1 : r > 16 ? 16 : r;
}

/*
 * Connection limits for a new peer: 0, or the -errno to refuse it with and
 * *limit / *why filled. Tenants are held to the per-uid and per-pid limits
 * and kept out of the slots reserved for root and admins (who may take any
 * slot up to max_clients). Membership of admin_groups is only looked up
 * when a tenant limit would refuse the peer.
 */
static int check_conn_limits(struct server *srv, const struct ucred *cred, uint64_t *limit,
			     const char **why)
{
	const struct policy_quota *q = &srv->cfg->quota;
	uint64_t active = srv->stats.sessions_active, n_uid = 0, n_pid = 0;
	uint64_t tenant_cap =
	    q->max_clients ? q->max_clients - server_admin_reserve(q->max_clients) : 0;
	const struct session *s;

	if (quota_reached(active, q->max_clients)) {
		*limit = q->max_clients;
		*why = "too many clients";
		return -EUSERS;
	}
	if (q->max_clients_per_uid || q->max_clients_per_pid)
		TAILQ_FOREACH(s, &srv->sessions, link)
		{
			n_uid += s->cred.uid == cred->uid;
			n_pid += s->cred.pid == cred->pid;
		}
	if (quota_reached(n_uid, q->max_clients_per_uid)) {
		*limit = q->max_clients_per_uid;
		*why = "too many connections from this uid (max_clients_per_uid)";
	} else if (quota_reached(n_pid, q->max_clients_per_pid)) {
		*limit = q->max_clients_per_pid;
		*why = "too many connections from this process (max_clients_per_pid)";
	} else if (quota_reached(active, tenant_cap)) {
		*limit = tenant_cap;
		*why = "too many clients (the remaining slots are kept for administrators)";
	} else {
		return 0;
	}
	return policy_is_admin(&srv->cfg->admin, cred) ? 0 : -EUSERS;
}

/* [policy] hello_timeout_ms: a connection that never said Hello gives its slot back. */
static void on_hello_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	struct server *srv = s->srv;

	if (s->hello_done || s->closing)
		return;
	reject_frame(s, -ETIMEDOUT, srv->cfg->quota.hello_timeout_ms,
		     "no Hello within hello_timeout_ms");
	s->close_reason = "hello timeout";
	reap_closing(srv);
}

static int arm_hello_deadline(struct session *s)
{
	uint32_t ms = s->srv->cfg->quota.hello_timeout_ms;
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

	if (!ms)
		return 0;
	s->ev_hello = evtimer_new(s->srv->base, on_hello_timeout, s);
	return s->ev_hello && !evtimer_add(s->ev_hello, &tv) ? 0 : -ENOMEM;
}

static void on_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct server *srv = arg;
	struct session *s;
	struct ucred cred;
	const char *why;
	uint64_t limit;
	int fd, err;

	/*
	 * Bounded like reads: clients hammering connect would otherwise keep
	 * this loop from ever seeing EAGAIN and starve every served session.
	 */
	for (int n = 0; n < ACCEPT_BURST; n++) {
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			err = errno;
			if ((err == EMFILE || err == ENFILE) && refuse_with_spare(srv, lfd))
				continue;
			if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM)
				pause_accepting(srv, err);
			else if (err != EAGAIN && err != EWOULDBLOCK && err != EINTR &&
				 err != ECONNABORTED)
				log_warn("accept: %s", strerror(err));
			return;
		}
		if (get_peer_cred(fd, &cred)) {
			log_warn("SO_PEERCRED: %s", strerror(errno));
			close(fd);
			continue;
		}
		if (!policy_allows(&srv->cfg->allow, &cred)) {
			refuse_peer(srv, fd, &cred, -EACCES, 0,
				    "this uid/gid is not allowed to connect (see [policy] "
				    "allow_users, allow_groups)");
			continue;
		}
		err = check_conn_limits(srv, &cred, &limit, &why);
		if (err) {
			refuse_peer(srv, fd, &cred, err, limit, why);
			continue;
		}
		s = session_new(srv, fd, &cred);
		if (s)
			s->ev_read = event_new(srv->base, fd, EV_READ | EV_PERSIST, on_readable, s);
		if (!s || !s->ev_read || event_add(s->ev_read, NULL) || arm_hello_deadline(s)) {
			log_err("out of memory for a new connection");
			if (s) {
				if (s->ev_read)
					event_free(s->ev_read);
				if (s->ev_hello)
					event_free(s->ev_hello);
				event_free(s->ev_write);
				free(s);
			}
			close(fd);
			continue;
		}
		TAILQ_INSERT_TAIL(&srv->sessions, s, link);
		srv->stats.connections++;
		srv->stats.sessions_active++;
		log_event(
		    LOG_INFO, LOG_EV_CONNECT,
		    LOG_FIELDS(LF_UINT("session", s->id), LF_CRED(cred), LF_STR("comm", s->comm)),
		    "client connected");
	}
}

int server_listen_fd(struct server *srv, int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	srv->listen_fd = fd;
	srv->ev_accept = event_new(srv->base, fd, EV_READ | EV_PERSIST, on_accept, srv);
	if (!srv->ev_accept || event_add(srv->ev_accept, NULL))
		return -ENOMEM;
	return 0;
}

int server_listen_path(struct server *srv, const char *path, unsigned mode)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	/*
	 * Bound and listening under a temporary name, then renamed into place:
	 * whoever waits for the socket to appear can connect at once (a bound
	 * socket that does not listen yet refuses with ECONNREFUSED).
	 */
	int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s.new", path);
	int fd, rc;

	if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* A stale socket from a crashed instance would make bind fail. */
	unlink(sa.sun_path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(sa.sun_path, mode) < 0 ||
	    listen(fd, 128) < 0 || rename(sa.sun_path, path) < 0) {
		rc = -errno;
		unlink(sa.sun_path);
		close(fd);
		return rc;
	}
	srv->listen_fd_owned = true;
	return server_listen_fd(srv, fd);
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;

	srv->flush_armed = false;
	server_flush(srv);
	reap_closing(srv);
}

/*
 * A well-formed request that decodes to more than the arena holds: the
 * unpacked encoding of a long array (protobuf-c keeps a record per field
 * occurrence). Its packed twin is refused by the handler with -E2BIG, so
 * this one is too, and the session stays: the frame was not broken.
 */
static int refuse_oversized_decode(struct session *s, const uint8_t *buf, size_t len)
{
	IommuNest__Reply rep = IOMMU_NEST__REPLY__INIT;
	struct server *srv = s->srv;
	uint32_t max = invalidate_max_entries(srv);

	if (!wire_scan_request_id(buf, len, &rep.id))
		return -EPROTO;
	srv->stats.requests++;
	s->n_requests++;
	reply_error(&rep, -E2BIG,
		    "the request decodes to more than %zu bytes (use packed arrays; at most "
		    "%u entries per request)",
		    srv->arena.cap, max);
	rep.limit = max;
	req_count_error(srv, rep.status);
	session_send_reply(s, &rep);
	return 0;
}

/* Sends what the table made of one request, or hands its Invalidate to the batch. */
static void finish_request(struct session *s, struct req_in *in, struct req_reply *out, int rc)
{
	if (rc == REQ_DEFERRED) {
		flush_enqueue(s->srv, in->inv_hwpt, in->inv);
		in->inv = NULL;
	} else if (rc == REQ_INV_DONE) {
		flush_answer(s, in->inv);
	} else {
		session_send_reply_fd(s, &out->rep, out->fd);
	}
	if (out->fd >= 0)
		close(out->fd);
	out->fd = -1;
	for (size_t i = 0; i < sizeof(out->heap) / sizeof(out->heap[0]); i++)
		free(out->heap[i]);
}

int server_handle_packet(struct session *s, const uint8_t *buf, size_t len, int *fds, int nfds)
{
	struct req_in in;
	/* Only the reply and heap[] are set here: a handler inits the body it fills. */
	struct req_reply out;
	int rc = wire_decode(s, buf, len, fds, nfds, &in);

	if (rc == -E2BIG)
		return refuse_oversized_decode(s, buf, len);
	if (rc)
		return rc;
	iommu_nest__reply__init(&out.rep);
	memset(out.heap, 0, sizeof(out.heap));
	out.fd = -1;
	while ((rc = req_dispatch(s, &in, &out)) == REQ_RUN_BATCH)
		server_flush(s->srv);
	finish_request(s, &in, &out, rc);
	wire_release(&in);
	return 0;
}
