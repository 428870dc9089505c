/* SPDX-License-Identifier: MIT */
/*
 * libiommu-nest: framing, request encoding, reply decoding and the async
 * completion machinery of the iommu-nestd client.
 *
 * One protobuf Request/Reply per SOCK_SEQPACKET packet. The socket stays in
 * blocking mode for synchronous calls; the async paths use MSG_DONTWAIT per
 * call, so the same fd serves both. Replies are matched to requests by id:
 * a synchronous call that reads a reply to an async request while waiting
 * for its own parks that completion in the done queue, which
 * iommu_nest_process() delivers.
 */
#include "iommu_nest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "arena.h"
#include "queue.h"
#include "events.h"
#include "iommu_nest_call.h"
#include "iommu_nest.pb-c.h"

/* Before the HelloReply tells us the real bound. */
#define NEST_BOOTSTRAP_MSG_SIZE (64u * 1024)
/* Smallest max_message_size we accept from a daemon: a Hello must fit. */
#define NEST_MIN_MSG_SIZE 512u
/* Largest buffers we allocate whatever the daemon announces. */
#define NEST_MAX_MSG_SIZE (64u * 1024 * 1024)
#define NEST_ARENA_SIZE	  4096u
/* Linux errnos live below 4096; anything else in a status is garbage. */
#define NEST_MAX_ERRNO 4095
#define NO_SLOT	       SIZE_MAX

/* The public constants must stay the wire's (and the kernel's) values. */
#define SAME_VALUE(a, b) _Static_assert((int)(a) == (int)(b), #a " != " #b)
SAME_VALUE(IOMMU_NEST_CAP_CHECK_IOTLB, IOMMU_NEST__CAPABILITY__CAP_CHECK_IOTLB);
SAME_VALUE(IOMMU_NEST_CAP_SIM_MODEL, IOMMU_NEST__CAPABILITY__CAP_SIM_MODEL);
SAME_VALUE(IOMMU_NEST_CAP_FAULT_INJECT, IOMMU_NEST__CAPABILITY__CAP_FAULT_INJECT);
SAME_VALUE(IOMMU_NEST_CAP_CONTINUE, IOMMU_NEST__CAPABILITY__CAP_CONTINUE);
SAME_VALUE(IOMMU_NEST_INV_CONTINUE, IOMMU_NEST__INVALIDATE_FLAG__INV_CONTINUE);
SAME_VALUE(IOMMU_NEST_ENTRY_NOT_ATTEMPTED, IOMMU_NEST__ENTRY_STATE__ENTRY_NOT_ATTEMPTED);
SAME_VALUE(IOMMU_NEST_ENTRY_DONE, IOMMU_NEST__ENTRY_STATE__ENTRY_DONE);
SAME_VALUE(IOMMU_NEST_ENTRY_FAILED, IOMMU_NEST__ENTRY_STATE__ENTRY_FAILED);
SAME_VALUE(IOMMU_NEST_SIM_IOTLB, IOMMU_NEST__SIM_CACHE_KIND__SIM_CACHE_IOTLB);
SAME_VALUE(IOMMU_NEST_SIM_PSC, IOMMU_NEST__SIM_CACHE_KIND__SIM_CACHE_PSC);
_Static_assert(sizeof(struct iommu_nest_vtd_inv) == 24, "kernel layout");
_Static_assert(sizeof(struct iommu_nest_selftest_inv) == 8, "kernel layout");

/* struct iommu_hwpt_vtd_s1, the data layout of iommu_nest_alloc(). */
struct vtd_s1_data {
	uint64_t flags;
	uint64_t pgtbl_addr;
	uint32_t addr_width;
	uint32_t reserved;
};

/* An async invalidation in flight, or completed and awaiting delivery. */
struct inflight {
	uint64_t id; /* 0: free */
	bool done;
	bool on_queue; /* submitted through the shared queue */
	size_t next_done;
	iommu_nest_inv_cb cb;
	void *opaque;
	struct iommu_nest_entry_result *results;
	size_t n;
	struct iommu_nest_inv_summary summary;
};

/* Structure-of-arrays scratch the Invalidate message points into. */
struct soa {
	size_t cap;
	uint64_t *addr;
	uint64_t *npages;
	uint32_t *flags;
	uint32_t *reserved;
	uint32_t *iotlb_id;
};

struct iommu_nest {
	int fd;
	int dead; /* sticky transport/framing error; 0 while usable */
	uint64_t next_id;

	/* HelloReply */
	uint32_t version;
	uint32_t caps;
	uint32_t max_entries;
	uint32_t max_msg;
	char *backend;
	uint32_t *hwpt_types;
	size_t n_hwpt_types;
	uint32_t *inv_types;
	size_t n_inv_types;
	char **devices;
	size_t n_devices;

	uint8_t *sbuf;
	uint8_t *rbuf;
	size_t buf_size;
	struct arena arena;
	struct soa soa;

	struct inflight *slots;
	size_t n_slots;
	size_t in_flight; /* submitted, callback not yet run */
	size_t pending;	  /* of which completed */
	size_t done_head, done_tail;

	char errbuf[256];
	/* A descriptor that came with the reply being read (OpenDevice), or -1. */
	int rx_fd;
	uint64_t last_limit; /* Reply.limit of the last failed reply */

	struct nest_events events; /* asynchronous events (events.c) */

	/* The shared-memory queue, when open (queue.c). */
	struct nestq_client *q;

	/* The resume token of the last successful allocation. */
	uint8_t last_token[IOMMU_NEST_RESUME_TOKEN_LEN];
	int has_token;
	/* The resume token of the last vIOMMU allocated (AllocViommuReply). */
	uint8_t last_viommu_token[IOMMU_NEST_RESUME_TOKEN_LEN];
	int has_viommu_token;
};

/* ---- Errors -------------------------------------------------------------- */

__attribute__((format(printf, 3, 4))) static int set_error(struct iommu_nest *h, int err,
							   const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(h->errbuf, sizeof(h->errbuf), fmt, ap);
	va_end(ap);
	return err;
}

static bool valid_status(int32_t status)
{
	return status <= 0 && status >= -NEST_MAX_ERRNO;
}

/* ---- Async slots and the done queue -------------------------------------- */

static void results_not_attempted(struct iommu_nest_entry_result *r, size_t n)
{
	if (r)
		memset(r, 0, n * sizeof(*r));
}

static void queue_done(struct iommu_nest *h, size_t i)
{
	h->slots[i].done = true;
	h->slots[i].next_done = NO_SLOT;
	if (h->done_tail == NO_SLOT)
		h->done_head = i;
	else
		h->slots[h->done_tail].next_done = i;
	h->done_tail = i;
	h->pending++;
}

static size_t find_slot(const struct iommu_nest *h, uint64_t id)
{
	size_t i;

	/* Pipelines are a few dozen deep: a scan beats a hash here. */
	for (i = 0; i < h->n_slots; i++)
		if (h->slots[i].id == id && !h->slots[i].done)
			return i;
	return NO_SLOT;
}

static int get_free_slot(struct iommu_nest *h, size_t *out)
{
	struct inflight *ns;
	size_t i, n;

	for (i = 0; i < h->n_slots; i++) {
		if (!h->slots[i].id) {
			*out = i;
			return 0;
		}
	}
	n = h->n_slots ? h->n_slots * 2 : 16;
	ns = realloc(h->slots, n * sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	memset(ns + h->n_slots, 0, (n - h->n_slots) * sizeof(*ns));
	h->slots = ns;
	*out = h->n_slots;
	h->n_slots = n;
	return 0;
}

/*
 * The connection is unusable from here on: remember why and complete every
 * request in flight with that error, so no callback is lost.
 */
static int kill_handle(struct iommu_nest *h, int err)
{
	size_t i;

	if (h->dead)
		return h->dead;
	h->dead = err;
	for (i = 0; i < h->n_slots; i++) {
		struct inflight *s = &h->slots[i];

		if (!s->id || s->done)
			continue;
		memset(&s->summary, 0, sizeof(s->summary));
		s->summary.status = err;
		results_not_attempted(s->results, s->n);
		queue_done(h, i);
	}
	return err;
}

/* ---- Framing ------------------------------------------------------------- */

/* Sends one packet, with fd attached (SCM_RIGHTS) unless it is negative. */
static ssize_t send_packet(int sock, const void *buf, size_t len, int flags, const int *fds,
			   int nfds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 3)];
	} control;
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	struct cmsghdr *c;

	if (nfds > 0) {
		memset(&control, 0, sizeof(control));
		mh.msg_control = control.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
	}
	return sendmsg(sock, &mh, flags);
}

/*
 * Encodes req into the reusable send buffer and sends it as one packet,
 * with fd passed along unless it is negative, assigning the next request
 * id. Oversized messages are refused before anything is written, so the
 * handle stays usable. The caller keeps fd: the daemon gets its own copy.
 */
static int send_request_fds(struct iommu_nest *h, IommuNest__Request *req, bool nonblock,
			    const int *fds, int nfds)
{
	int flags = MSG_NOSIGNAL | (nonblock ? MSG_DONTWAIT : 0);
	size_t len;
	ssize_t r;

	if (h->dead)
		return h->dead;
	req->id = h->next_id;
	len = iommu_nest__request__get_packed_size(req);
	if (len > h->max_msg)
		return set_error(h, -EMSGSIZE, "request of %zu bytes exceeds max_message_size %u",
				 len, h->max_msg);
	iommu_nest__request__pack(req, h->sbuf);
	do {
		r = send_packet(h->fd, h->sbuf, len, flags, fds, nfds);
	} while (r < 0 && errno == EINTR);
	if (r < 0) {
		int err = -errno;

		if (err == -EAGAIN || err == -EWOULDBLOCK)
			return set_error(h, -EAGAIN, "socket send buffer full");
		/* The kernel's own packet limit (SO_SNDBUF): nothing was sent. */
		if (err == -EMSGSIZE || err == -ENOBUFS || err == -ENOMEM)
			return set_error(h, err, "send: %s", strerror(-err));
		/* A descriptor the kernel will not pass (closed, ETOOMANYREFS). */
		if (nfds && (err == -EBADF || err == -ETOOMANYREFS))
			return set_error(h, err, "passing fd %d: %s", fds[0], strerror(-err));
		set_error(h, err, "send: %s", strerror(-err));
		return kill_handle(h, err);
	}
	if ((size_t)r != len) {
		set_error(h, -EPROTO, "short send on a packet socket");
		return kill_handle(h, -EPROTO);
	}
	h->next_id++;
	return 0;
}

static int send_request_fd(struct iommu_nest *h, IommuNest__Request *req, bool nonblock, int fd)
{
	return send_request_fds(h, req, nonblock, &fd, fd >= 0);
}

static int send_request(struct iommu_nest *h, IommuNest__Request *req, bool nonblock)
{
	return send_request_fd(h, req, nonblock, -1);
}

/*
 * Keeps the first descriptor passed with a reply in h->rx_fd and closes
 * any other: only OpenDevice's reply carries one, and only one.
 */
static void take_rx_fds(struct iommu_nest *h, struct msghdr *msg)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
		size_t n;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (h->rx_fd < 0)
				h->rx_fd = fd;
			else
				close(fd);
		}
	}
}

/*
 * Receives one packet into the receive buffer and decodes it into the
 * arena. Any failure here desynchronises request/reply matching, so it is
 * fatal for the handle, except -EAGAIN in non-blocking mode.
 */
static int recv_reply(struct iommu_nest *h, bool nonblock, IommuNest__Reply **out)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 4)];
	} control;
	struct iovec iov = {.iov_base = h->rbuf, .iov_len = h->buf_size};
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = control.buf,
			     .msg_controllen = sizeof(control.buf)};
	int flags = MSG_CMSG_CLOEXEC | (nonblock ? MSG_DONTWAIT : 0);
	IommuNest__Reply *reply;
	ssize_t r;

	if (h->dead)
		return h->dead;
	do {
		r = recvmsg(h->fd, &msg, flags);
	} while (r < 0 && errno == EINTR);
	if (r < 0) {
		int err = -errno;

		if (nonblock && (err == -EAGAIN || err == -EWOULDBLOCK))
			return -EAGAIN;
		set_error(h, err, "recv: %s", strerror(-err));
		return kill_handle(h, err);
	}
	/* SOCK_SEQPACKET: 0 is end of stream (the daemon never sends empty packets). */
	if (r == 0) {
		set_error(h, -ECONNRESET, "daemon closed the connection");
		return kill_handle(h, -ECONNRESET);
	}
	if (h->rx_fd >= 0)
		close(h->rx_fd);
	h->rx_fd = -1;
	take_rx_fds(h, &msg);
	if (msg.msg_flags & MSG_TRUNC) {
		set_error(h, -EPROTO, "reply larger than max_message_size %zu", h->buf_size);
		return kill_handle(h, -EPROTO);
	}
	reply = iommu_nest__reply__unpack(&h->arena.pb, (size_t)r, h->rbuf);
	if (!reply) {
		arena_reset(&h->arena);
		set_error(h, -EPROTO, "undecodable reply (%zd bytes)", r);
		return kill_handle(h, -EPROTO);
	}
	*out = reply;
	return 0;
}

/*
 * Everything a decoded reply pointed to dies here; with nothing decoded
 * alive, events read meanwhile may go to their handler.
 */
static void release_reply(struct iommu_nest *h)
{
	arena_reset(&h->arena);
	/* A descriptor nobody took (a reply that did not expect one) is not leaked. */
	if (h->rx_fd >= 0)
		close(h->rx_fd);
	h->rx_fd = -1;
	nest_events_deliver(h, &h->events);
}

/* ---- Invalidation replies ------------------------------------------------ */

static int check_inv_reply(const IommuNest__InvalidateReply *ir, size_t n)
{
	size_t i, run = 0;

	if ((ir->n_state && ir->n_state != n) || (ir->n_error && ir->n_error != n) ||
	    (ir->n_hw_error && ir->n_hw_error != n))
		return -EPROTO;
	for (i = 0; i < ir->n_state; i++)
		if (ir->state[i] > IOMMU_NEST_ENTRY_FAILED)
			return -EPROTO;
	/* entries_handled is by definition the leading run of DONE. */
	while (run < ir->n_state && ir->state[run] == IOMMU_NEST_ENTRY_DONE)
		run++;
	if (ir->entries_handled != run)
		return -EPROTO;
	for (i = 0; i < ir->n_error; i++)
		if (!valid_status(ir->error[i]))
			return -EPROTO;
	return 0;
}

/*
 * Turns an invalidation reply into results/summary. Empty per-entry arrays
 * read as zero (proto3 default), so a request-level failure without a body
 * reports every entry NOT_ATTEMPTED.
 */
static int decode_inv_reply(struct iommu_nest *h, const IommuNest__Reply *reply, size_t n,
			    struct iommu_nest_entry_result *res, struct iommu_nest_inv_summary *sum)
{
	const IommuNest__InvalidateReply *ir = reply->invalidate;
	size_t i;
	int err;

	memset(sum, 0, sizeof(*sum));
	results_not_attempted(res, n);
	if (!valid_status(reply->status))
		err = set_error(h, -EPROTO, "invalid status %d in reply", reply->status);
	else if (reply->body_case == IOMMU_NEST__REPLY__BODY_INVALIDATE)
		err = check_inv_reply(ir, n);
	else
		err = reply->status ? 0 : -EPROTO;
	if (err) {
		set_error(h, err, "malformed invalidation reply");
		sum->status = err;
		return err;
	}
	sum->status = reply->status;
	h->last_limit = reply->limit;
	if (reply->status)
		set_error(h, reply->status, "%s",
			  reply->error[0] ? reply->error : strerror(-reply->status));
	if (reply->body_case != IOMMU_NEST__REPLY__BODY_INVALIDATE)
		return reply->status;
	sum->entries_handled = ir->entries_handled;
	sum->entries_submitted = ir->entries_submitted;
	sum->pages_flushed = ir->pages_flushed;
	for (i = 0; res && i < n; i++) {
		res[i].state = ir->n_state ? ir->state[i] : 0;
		res[i].error = ir->n_error ? ir->error[i] : 0;
		res[i].hw_error = ir->n_hw_error ? ir->hw_error[i] : 0;
	}
	return reply->status;
}

/*
 * A reply that is not the one a caller waits for: it completes an async
 * request, or reports a connection-level error (id 0), or is a protocol
 * violation.
 */
static int dispatch_other(struct iommu_nest *h, const IommuNest__Reply *reply)
{
	size_t i;
	int err;

	if (reply->id == 0 && reply->body_case == IOMMU_NEST__REPLY__BODY_EVENT) {
		err = nest_events_push(&h->events, reply->event);
		if (err) {
			set_error(h, err, "malformed event (kind %u)", reply->event->kind);
			return kill_handle(h, err);
		}
		return 0;
	}
	if (reply->id == 0) {
		h->last_limit = reply->limit;
		err = valid_status(reply->status) && reply->status ? reply->status : -EPROTO;
		set_error(h, err, "daemon: %s", reply->error[0] ? reply->error : strerror(-err));
		return kill_handle(h, err);
	}
	i = find_slot(h, reply->id);
	if (i == NO_SLOT) {
		set_error(h, -EPROTO, "reply to unknown request %llu",
			  (unsigned long long)reply->id);
		return kill_handle(h, -EPROTO);
	}
	decode_inv_reply(h, reply, h->slots[i].n, h->slots[i].results, &h->slots[i].summary);
	queue_done(h, i);
	return 0;
}

/* ---- Synchronous transactions -------------------------------------------- */

/*
 * Sends req and waits for the reply with its id, parking async completions
 * met on the way. On success *out must be released with release_reply().
 */
static int transact_fds(struct iommu_nest *h, IommuNest__Request *req, const int *fds, int nfds,
			IommuNest__Reply **out)
{
	IommuNest__Reply *reply;
	uint64_t id;
	int err;

	err = send_request_fds(h, req, false, fds, nfds);
	if (err)
		return err;
	id = req->id;
	/* Events met while waiting wait too: until this call's reply is released. */
	h->events.waiting = true;
	for (;;) {
		err = recv_reply(h, false, &reply);
		if (!err && reply->id == id) {
			h->events.waiting = false;
			*out = reply;
			return 0;
		}
		if (!err) {
			err = dispatch_other(h, reply);
			release_reply(h);
		}
		if (err) {
			h->events.waiting = false;
			return err;
		}
	}
}

static int transact_fd(struct iommu_nest *h, IommuNest__Request *req, int fd,
		       IommuNest__Reply **out)
{
	return transact_fds(h, req, &fd, fd >= 0, out);
}

static int transact(struct iommu_nest *h, IommuNest__Request *req, IommuNest__Reply **out)
{
	return transact_fd(h, req, -1, out);
}

/* Reply.status, or -EPROTO if a successful reply lacks the expected body. */
static int reply_status(struct iommu_nest *h, const IommuNest__Reply *reply,
			IommuNest__Reply__BodyCase want)
{
	if (!valid_status(reply->status))
		return set_error(h, -EPROTO, "invalid status %d in reply", reply->status);
	h->last_limit = reply->limit;
	if (reply->status)
		return set_error(h, reply->status, "%s",
				 reply->error[0] ? reply->error : strerror(-reply->status));
	if (want != IOMMU_NEST__REPLY__BODY__NOT_SET && reply->body_case != want)
		return set_error(h, -EPROTO, "reply body %d, expected %d", reply->body_case, want);
	return 0;
}

/* For requests whose reply is only a status; fd (>= 0) goes along. */
static int simple_call_fd(struct iommu_nest *h, IommuNest__Request *req, int fd)
{
	IommuNest__Reply *reply;
	int err;

	err = transact_fd(h, req, fd, &reply);
	if (err)
		return err;
	err = reply_status(h, reply, IOMMU_NEST__REPLY__BODY__NOT_SET);
	release_reply(h);
	return err;
}

static int simple_call(struct iommu_nest *h, IommuNest__Request *req)
{
	return simple_call_fd(h, req, -1);
}

/* ---- Connection ---------------------------------------------------------- */

static int alloc_buffers(struct iommu_nest *h, size_t size)
{
	uint8_t *s, *r;

	s = realloc(h->sbuf, size);
	if (!s)
		return -ENOMEM;
	h->sbuf = s;
	r = realloc(h->rbuf, size);
	if (!r)
		return -ENOMEM;
	h->rbuf = r;
	h->buf_size = size;
	return 0;
}

static char *dup_str(const char *s)
{
	return strdup(s ? s : "");
}

static int copy_u32s(uint32_t **dst, size_t *n_dst, const uint32_t *src, size_t n)
{
	*n_dst = 0;
	if (!n)
		return 0;
	*dst = malloc(n * sizeof(**dst));
	if (!*dst)
		return -ENOMEM;
	memcpy(*dst, src, n * sizeof(**dst));
	*n_dst = n;
	return 0;
}

static int store_caps(struct iommu_nest *h, const IommuNest__HelloReply *hr)
{
	size_t i;

	if (hr->version != IOMMU_NEST_PROTOCOL_VERSION)
		return set_error(h, -EPROTONOSUPPORT, "daemon speaks protocol %u, we speak %u",
				 hr->version, IOMMU_NEST_PROTOCOL_VERSION);
	if (hr->max_message_size < NEST_MIN_MSG_SIZE)
		return set_error(h, -EPROTO, "daemon max_message_size %u too small",
				 hr->max_message_size);
	h->version = hr->version;
	h->caps = hr->capabilities;
	h->max_entries = hr->max_entries;
	h->max_msg =
	    hr->max_message_size < NEST_MAX_MSG_SIZE ? hr->max_message_size : NEST_MAX_MSG_SIZE;
	h->backend = dup_str(hr->backend);
	if (!h->backend ||
	    copy_u32s(&h->hwpt_types, &h->n_hwpt_types, hr->hwpt_data_types,
		      hr->n_hwpt_data_types) ||
	    copy_u32s(&h->inv_types, &h->n_inv_types, hr->inv_data_types, hr->n_inv_data_types))
		return -ENOMEM;
	if (hr->n_devices) {
		h->devices = calloc(hr->n_devices, sizeof(*h->devices));
		if (!h->devices)
			return -ENOMEM;
		for (i = 0; i < hr->n_devices; i++) {
			h->devices[i] = dup_str(hr->devices[i]);
			if (!h->devices[i])
				return -ENOMEM;
			h->n_devices = i + 1;
		}
	}
	return 0;
}

/*
 * A packet the size of max_message_size must fit the socket's send buffer
 * or the kernel refuses it with EMSGSIZE; ask for room (best effort: the
 * kernel caps it at net.core.wmem_max).
 */
static void size_sndbuf(int fd, uint32_t max_msg)
{
	int want = (int)(max_msg + 4096u), cur = 0;
	socklen_t len = sizeof(cur);

	if (!getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &cur, &len) && cur >= want)
		return;
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof(want));
}

static int hello(struct iommu_nest *h, const char *client_name)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__Hello hi = IOMMU_NEST__HELLO__INIT;
	IommuNest__Reply *reply;
	int err;

	hi.version = IOMMU_NEST_PROTOCOL_VERSION;
	hi.client_name = (char *)(client_name ? client_name : "");
	req.body_case = IOMMU_NEST__REQUEST__BODY_HELLO;
	req.hello = &hi;
	err = transact(h, &req, &reply);
	if (err)
		return err;
	err = reply_status(h, reply, IOMMU_NEST__REPLY__BODY_HELLO);
	if (!err)
		err = store_caps(h, reply->hello);
	release_reply(h);
	if (err)
		return err;
	size_sndbuf(h->fd, h->max_msg);
	return alloc_buffers(h, h->max_msg);
}

/* The socket must be a blocking SOCK_SEQPACKET: framing relies on both. */
static int check_socket(int fd)
{
	int type = 0, fl;
	socklen_t len = sizeof(type);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len))
		return -errno;
	if (type != SOCK_SEQPACKET)
		return -EPROTOTYPE;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -errno;
	if ((fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl & ~O_NONBLOCK))
		return -errno;
	return 0;
}

int iommu_nest_connect_fd(int fd, const char *client_name, struct iommu_nest **hp)
{
	struct iommu_nest *h;
	int err;

	*hp = NULL;
	err = check_socket(fd);
	if (err) {
		close(fd);
		return err;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		close(fd);
		return -ENOMEM;
	}
	h->fd = fd;
	h->rx_fd = -1;
	h->next_id = 1;
	h->max_msg = NEST_BOOTSTRAP_MSG_SIZE;
	h->done_head = h->done_tail = NO_SLOT;
	err = arena_init(&h->arena, NEST_ARENA_SIZE);
	if (err) {
		free(h);
		close(fd);
		return err;
	}
	err = alloc_buffers(h, NEST_BOOTSTRAP_MSG_SIZE);
	if (!err)
		err = hello(h, client_name);
	if (err) {
		iommu_nest_close(h);
		return err;
	}
	*hp = h;
	return 0;
}

int iommu_nest_connect(const char *path, const char *client_name, struct iommu_nest **hp)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd, err;

	*hp = NULL;
	if (!path)
		path = IOMMU_NEST_DEFAULT_SOCKET;
	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		err = -errno;
		close(fd);
		return err;
	}
	return iommu_nest_connect_fd(fd, client_name, hp);
}

void iommu_nest_close(struct iommu_nest *h)
{
	size_t i;

	if (!h)
		return;
	if (h->q) {
		nestq_client_destroy(h->q);
		free(h->q);
	}
	if (h->fd >= 0)
		close(h->fd);
	if (h->rx_fd >= 0)
		close(h->rx_fd);
	for (i = 0; i < h->n_devices; i++)
		free(h->devices[i]);
	free(h->devices);
	free(h->backend);
	free(h->hwpt_types);
	free(h->inv_types);
	nest_events_free(&h->events);
	free(h->sbuf);
	free(h->rbuf);
	free(h->soa.addr);
	free(h->soa.npages);
	free(h->soa.flags);
	free(h->soa.reserved);
	free(h->soa.iotlb_id);
	free(h->slots);
	arena_fini(&h->arena);
	free(h);
}

/* ---- Capabilities -------------------------------------------------------- */

uint32_t iommu_nest_server_version(const struct iommu_nest *h)
{
	return h->version;
}

const char *iommu_nest_backend(const struct iommu_nest *h)
{
	return h->backend;
}

uint32_t iommu_nest_capabilities(const struct iommu_nest *h)
{
	return h->caps;
}

uint32_t iommu_nest_max_entries(const struct iommu_nest *h)
{
	return h->max_entries;
}

uint32_t iommu_nest_max_message_size(const struct iommu_nest *h)
{
	return h->max_msg;
}

const uint32_t *iommu_nest_hwpt_data_types(const struct iommu_nest *h, size_t *n)
{
	*n = h->n_hwpt_types;
	return h->hwpt_types;
}

const uint32_t *iommu_nest_inv_data_types(const struct iommu_nest *h, size_t *n)
{
	*n = h->n_inv_types;
	return h->inv_types;
}

size_t iommu_nest_device_count(const struct iommu_nest *h)
{
	return h->n_devices;
}

const char *iommu_nest_device(const struct iommu_nest *h, size_t i)
{
	return i < h->n_devices ? h->devices[i] : NULL;
}

const char *iommu_nest_last_error(const struct iommu_nest *h)
{
	return h->errbuf;
}

uint64_t iommu_nest_last_limit(const struct iommu_nest *h)
{
	return h->last_limit;
}

int iommu_nest_fd(const struct iommu_nest *h)
{
	return h->fd;
}

size_t iommu_nest_in_flight(const struct iommu_nest *h)
{
	return h->in_flight;
}

size_t iommu_nest_pending(const struct iommu_nest *h)
{
	return h->pending;
}

/* ---- Objects ------------------------------------------------------------- */

int iommu_nest_probe(struct iommu_nest *h, uint32_t hwpt_id, uint32_t data_type)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__Probe p = IOMMU_NEST__PROBE__INIT;

	p.hwpt_id = hwpt_id;
	p.data_type = data_type;
	req.body_case = IOMMU_NEST__REQUEST__BODY_PROBE;
	req.probe = &p;
	return simple_call(h, &req);
}

static int alloc_on(struct iommu_nest *h, const char *device, uint32_t viommu_id,
		    uint32_t data_type, uint32_t flags, uint32_t data_layout, const void *data,
		    size_t len, uint32_t *hwpt_id);

int iommu_nest_alloc(struct iommu_nest *h, const char *device, uint32_t data_type, uint32_t flags,
		     uint32_t data_layout, const void *data, size_t len, uint32_t *hwpt_id)
{
	return alloc_on(h, device, 0, data_type, flags, data_layout, data, len, hwpt_id);
}

int iommu_nest_alloc_on_viommu(struct iommu_nest *h, const char *device, uint32_t viommu_id,
			       uint32_t data_type, uint32_t flags, uint32_t data_layout,
			       const void *data, size_t len, uint32_t *hwpt_id)
{
	if (!viommu_id)
		return -EINVAL;
	return alloc_on(h, device, viommu_id, data_type, flags, data_layout, data, len, hwpt_id);
}

/* Alloc on the device's nest parent (viommu_id 0) or on a vIOMMU of this client. */
static int alloc_on(struct iommu_nest *h, const char *device, uint32_t viommu_id,
		    uint32_t data_type, uint32_t flags, uint32_t data_layout, const void *data,
		    size_t len, uint32_t *hwpt_id)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__Alloc a = IOMMU_NEST__ALLOC__INIT;
	IommuNest__VtdS1Data vtd = IOMMU_NEST__VTD_S1_DATA__INIT;
	IommuNest__SelftestData st = IOMMU_NEST__SELFTEST_DATA__INIT;
	IommuNest__SmmuV3Data ste = IOMMU_NEST__SMMU_V3_DATA__INIT;
	uint64_t ste_words[2];
	IommuNest__Reply *reply;
	struct vtd_s1_data v;
	int err;

	if (!device)
		return -EINVAL;
	switch (data_layout) {
	case IOMMU_NEST_HWPT_DATA_NONE:
		break;
	case IOMMU_NEST_HWPT_DATA_VTD_S1:
		if (!data || len < sizeof(v))
			return -EINVAL;
		memcpy(&v, data, sizeof(v));
		vtd.flags = v.flags;
		vtd.pgtbl_addr = v.pgtbl_addr;
		vtd.addr_width = v.addr_width;
		vtd.reserved = v.reserved;
		a.data_case = IOMMU_NEST__ALLOC__DATA_VTD_S1;
		a.vtd_s1 = &vtd;
		break;
	case IOMMU_NEST_HWPT_DATA_SELFTEST:
		if (!data || len < sizeof(st.iotlb))
			return -EINVAL;
		memcpy(&st.iotlb, data, sizeof(st.iotlb));
		a.data_case = IOMMU_NEST__ALLOC__DATA_SELFTEST;
		a.selftest = &st;
		break;
	case IOMMU_NEST_HWPT_DATA_ARM_SMMUV3:
		if (!data || len < sizeof(ste_words))
			return -EINVAL;
		memcpy(ste_words, data, sizeof(ste_words));
		ste.n_ste = 2;
		ste.ste = ste_words;
		a.data_case = IOMMU_NEST__ALLOC__DATA_SMMUV3;
		a.smmuv3 = &ste;
		break;
	default:
		return -EINVAL;
	}
	a.device = (char *)device;
	a.data_type = data_type;
	a.flags = flags;
	a.viommu_id = viommu_id;
	req.body_case = IOMMU_NEST__REQUEST__BODY_ALLOC;
	req.alloc = &a;
	err = transact(h, &req, &reply);
	if (err)
		return err;
	err = reply_status(h, reply, IOMMU_NEST__REPLY__BODY_ALLOC);
	if (!err && hwpt_id)
		*hwpt_id = reply->alloc->hwpt_id;
	if (!err) {
		/* A daemon without restart support sends no token. */
		h->has_token = reply->alloc->resume_token.len == sizeof(h->last_token);
		if (h->has_token)
			memcpy(h->last_token, reply->alloc->resume_token.data,
			       sizeof(h->last_token));
	}
	release_reply(h);
	return err;
}

int iommu_nest_last_resume_token(const struct iommu_nest *h,
				 uint8_t token[IOMMU_NEST_RESUME_TOKEN_LEN])
{
	if (!h || !token)
		return -EINVAL;
	if (!h->has_token)
		return -ENOENT;
	memcpy(token, h->last_token, sizeof(h->last_token));
	return 0;
}

int iommu_nest_reclaim(struct iommu_nest *h, uint32_t hwpt_id,
		       const uint8_t token[IOMMU_NEST_RESUME_TOKEN_LEN])
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__Reclaim r = IOMMU_NEST__RECLAIM__INIT;
	IommuNest__Reply *reply;
	int err;

	if (!token)
		return -EINVAL;
	r.hwpt_id = hwpt_id;
	r.resume_token.data = (uint8_t *)token;
	r.resume_token.len = IOMMU_NEST_RESUME_TOKEN_LEN;
	req.body_case = IOMMU_NEST__REQUEST__BODY_RECLAIM;
	req.reclaim = &r;
	err = transact(h, &req, &reply);
	if (err)
		return err;
	err = reply_status(h, reply, IOMMU_NEST__REPLY__BODY_RECLAIM);
	release_reply(h);
	return err;
}

void nest_set_viommu_token(struct iommu_nest *h, const ProtobufCBinaryData *t)
{
	/* A daemon without restart support sends none. */
	h->has_viommu_token = t->len == sizeof(h->last_viommu_token);
	if (h->has_viommu_token)
		memcpy(h->last_viommu_token, t->data, sizeof(h->last_viommu_token));
}

int iommu_nest_last_viommu_token(const struct iommu_nest *h,
				 uint8_t token[IOMMU_NEST_RESUME_TOKEN_LEN])
{
	if (!h || !token)
		return -EINVAL;
	if (!h->has_viommu_token)
		return -ENOENT;
	memcpy(token, h->last_viommu_token, sizeof(h->last_viommu_token));
	return 0;
}

int iommu_nest_reclaim_viommu(struct iommu_nest *h, uint32_t viommu_id,
			      const uint8_t token[IOMMU_NEST_RESUME_TOKEN_LEN])
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__Reclaim r = IOMMU_NEST__RECLAIM__INIT;
	IommuNest__Reply *reply;
	int err;

	if (!h || !token || !viommu_id)
		return -EINVAL;
	r.viommu_id = viommu_id;
	r.resume_token.data = (uint8_t *)token;
	r.resume_token.len = IOMMU_NEST_RESUME_TOKEN_LEN;
	req.body_case = IOMMU_NEST__REQUEST__BODY_RECLAIM;
	req.reclaim = &r;
	err = transact(h, &req, &reply);
	if (err)
		return err;
	err = reply_status(h, reply, IOMMU_NEST__REPLY__BODY_RECLAIM);
	release_reply(h);
	return err;
}

int iommu_nest_reclaim_device(struct iommu_nest *h, int device_fd, char *device)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__Reclaim r = IOMMU_NEST__RECLAIM__INIT;
	IommuNest__Reply *reply;
	int err;

	if (device_fd < 0)
		return set_error(h, -EBADF, "no device fd to reclaim the claim with");
	/* hwpt_id 0 and no token: the passed descriptor names the claim. */
	req.body_case = IOMMU_NEST__REQUEST__BODY_RECLAIM;
	req.reclaim = &r;
	err = transact_fd(h, &req, device_fd, &reply);
	if (err)
		return err;
	err = reply_status(h, reply, IOMMU_NEST__REPLY__BODY_RECLAIM);
	if (!err && device)
		snprintf(device, IOMMU_NEST_NAME_MAX, "%s",
			 reply->reclaim->device ? reply->reclaim->device : "");
	release_reply(h);
	return err;
}

int iommu_nest_alloc_vtd_s1(struct iommu_nest *h, const char *device, uint64_t flags,
			    uint64_t pgtbl_addr, uint32_t addr_width, uint32_t *hwpt_id)
{
	struct vtd_s1_data v = {
	    .flags = flags,
	    .pgtbl_addr = pgtbl_addr,
	    .addr_width = addr_width,
	};

	return iommu_nest_alloc(h, device, IOMMU_NEST_HWPT_DATA_VTD_S1, 0,
				IOMMU_NEST_HWPT_DATA_VTD_S1, &v, sizeof(v), hwpt_id);
}

int iommu_nest_alloc_selftest(struct iommu_nest *h, const char *device, uint32_t iotlb,
			      uint32_t *hwpt_id)
{
	return iommu_nest_alloc(h, device, IOMMU_NEST_HWPT_DATA_SELFTEST, 0,
				IOMMU_NEST_HWPT_DATA_SELFTEST, &iotlb, sizeof(iotlb), hwpt_id);
}

int iommu_nest_destroy(struct iommu_nest *h, uint32_t hwpt_id)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__Destroy d = IOMMU_NEST__DESTROY__INIT;

	d.hwpt_id = hwpt_id;
	req.body_case = IOMMU_NEST__REQUEST__BODY_DESTROY;
	req.destroy = &d;
	return simple_call(h, &req);
}

int iommu_nest_attach(struct iommu_nest *h, const char *device, uint32_t hwpt_id)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__Attach a = IOMMU_NEST__ATTACH__INIT;

	if (!device)
		return -EINVAL;
	a.device = (char *)device;
	a.hwpt_id = hwpt_id;
	req.body_case = IOMMU_NEST__REQUEST__BODY_ATTACH;
	req.attach = &a;
	return simple_call(h, &req);
}

int iommu_nest_detach(struct iommu_nest *h, const char *device)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__Detach d = IOMMU_NEST__DETACH__INIT;

	if (!device)
		return -EINVAL;
	d.device = (char *)device;
	req.body_case = IOMMU_NEST__REQUEST__BODY_DETACH;
	req.detach = &d;
	return simple_call(h, &req);
}

/* ---- Guest memory ---------------------------------------------------------- */

int iommu_nest_map_memory(struct iommu_nest *h, const char *device, uint64_t iova, uint64_t length,
			  int fd, uint64_t offset, uint32_t flags)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__MapMemory m = IOMMU_NEST__MAP_MEMORY__INIT;

	if (!device)
		return set_error(h, -EINVAL, "no device");
	if (fd < 0)
		return set_error(h, -EBADF, "no descriptor to map");
	m.device = (char *)device;
	m.iova = iova;
	m.length = length;
	m.offset = offset;
	m.flags = flags;
	req.body_case = IOMMU_NEST__REQUEST__BODY_MAP_MEMORY;
	req.map_memory = &m;
	return simple_call_fd(h, &req, fd);
}

int iommu_nest_unmap_memory(struct iommu_nest *h, const char *device, uint64_t iova,
			    uint64_t length)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__UnmapMemory u = IOMMU_NEST__UNMAP_MEMORY__INIT;

	if (!device)
		return set_error(h, -EINVAL, "no device");
	u.device = (char *)device;
	u.iova = iova;
	u.length = length;
	req.body_case = IOMMU_NEST__REQUEST__BODY_UNMAP_MEMORY;
	req.unmap_memory = &u;
	return simple_call(h, &req);
}

/* ---- Hardware info -------------------------------------------------------- */

/* The decoded views, from the kernel's layouts (struct iommu_hw_info_vtd, iommu_test_hw_info). */
static void decode_hw_info(struct iommu_nest_hw_info *info)
{
	const uint8_t *p = info->data;

	if (info->data_type == IOMMU_NEST_HW_INFO_TYPE_INTEL_VTD && info->data_len >= 24) {
		memcpy(&info->vtd.flags, p, 4);
		memcpy(&info->vtd.cap_reg, p + 8, 8);
		memcpy(&info->vtd.ecap_reg, p + 16, 8);
	} else if (info->data_type == IOMMU_NEST_HW_INFO_TYPE_SELFTEST && info->data_len >= 8) {
		memcpy(&info->selftest.flags, p, 4);
		memcpy(&info->selftest.regval, p + 4, 4);
	}
}

int iommu_nest_get_hw_info(struct iommu_nest *h, const char *device,
			   struct iommu_nest_hw_info *info)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__GetHwInfo g = IOMMU_NEST__GET_HW_INFO__INIT;
	IommuNest__Reply *reply;
	const IommuNest__HwInfoReply *r;
	int err;

	if (!device || !info)
		return set_error(h, -EINVAL, "no device or no result");
	g.device = (char *)device;
	req.body_case = IOMMU_NEST__REQUEST__BODY_GET_HW_INFO;
	req.get_hw_info = &g;
	err = transact(h, &req, &reply);
	if (err)
		return err;
	err = reply_status(h, reply, IOMMU_NEST__REPLY__BODY_HW_INFO);
	if (!err) {
		r = reply->hw_info;
		memset(info, 0, sizeof(*info));
		info->data_type = r->out_data_type;
		info->data_len = r->data_len;
		memcpy(info->data, r->data.data,
		       r->data.len < sizeof(info->data) ? r->data.len : sizeof(info->data));
		info->capabilities = r->out_capabilities;
		info->max_pasid_log2 = r->out_max_pasid_log2;
		decode_hw_info(info);
	}
	release_reply(h);
	return err;
}

/* ---- Device hand-off ------------------------------------------------------ */

static void decode_device_info(const IommuNest__OpenDeviceReply *r,
			       struct iommu_nest_device_info *info)
{
	memset(info, 0, sizeof(*info));
	info->dev_id = r->dev_id;
	info->parent_id = r->parent_id;
	info->ioas_id = r->ioas_id;
	info->attached_id = r->attached_id;
	info->vfio_flags = r->vfio_flags;
	info->num_regions = r->num_regions;
	info->num_irqs = r->num_irqs;
}

/* OpenDevice or AdoptDevice (adopt_fd >= 0); *fd gets the passed descriptor when not NULL. */
static int device_call(struct iommu_nest *h, IommuNest__Request *req, int adopt_fd, int *fd,
		       struct iommu_nest_device_info *info)
{
	IommuNest__Reply *reply;
	int err = transact_fd(h, req, adopt_fd, &reply);

	if (err)
		return err;
	err = reply_status(h, reply, IOMMU_NEST__REPLY__BODY_OPEN_DEVICE);
	if (!err && fd && h->rx_fd < 0)
		err = set_error(h, -EPROTO, "OpenDevice reply without the device fd");
	if (!err) {
		if (info)
			decode_device_info(reply->open_device, info);
		if (fd) {
			*fd = h->rx_fd;
			h->rx_fd = -1;
		}
	}
	release_reply(h);
	return err;
}

int iommu_nest_open_device(struct iommu_nest *h, const char *device, int *fd,
			   struct iommu_nest_device_info *info)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__OpenDevice o = IOMMU_NEST__OPEN_DEVICE__INIT;

	if (!device || !fd)
		return set_error(h, -EINVAL, "no device or no place for the fd");
	*fd = -1;
	o.device = (char *)device;
	req.body_case = IOMMU_NEST__REQUEST__BODY_OPEN_DEVICE;
	req.open_device = &o;
	return device_call(h, &req, -1, fd, info);
}

int iommu_nest_adopt_device(struct iommu_nest *h, const char *device, int fd,
			    struct iommu_nest_device_info *info)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__AdoptDevice a = IOMMU_NEST__ADOPT_DEVICE__INIT;

	if (!device)
		return set_error(h, -EINVAL, "no device");
	if (fd < 0)
		return set_error(h, -EBADF, "no VFIO cdev descriptor to adopt");
	a.device = (char *)device;
	req.body_case = IOMMU_NEST__REQUEST__BODY_ADOPT_DEVICE;
	req.adopt_device = &a;
	return device_call(h, &req, fd, NULL, info);
}

int iommu_nest_close_device(struct iommu_nest *h, const char *device)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__CloseDevice cl = IOMMU_NEST__CLOSE_DEVICE__INIT;

	if (!device)
		return set_error(h, -EINVAL, "no device");
	cl.device = (char *)device;
	req.body_case = IOMMU_NEST__REQUEST__BODY_CLOSE_DEVICE;
	req.close_device = &cl;
	return simple_call(h, &req);
}

/* ---- Dirty tracking ------------------------------------------------------- */

int iommu_nest_set_dirty_tracking(struct iommu_nest *h, const char *device, int enable)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__SetDirtyTracking t = IOMMU_NEST__SET_DIRTY_TRACKING__INIT;

	if (!device)
		return set_error(h, -EINVAL, "no device");
	t.device = (char *)device;
	t.enable = enable != 0;
	req.body_case = IOMMU_NEST__REQUEST__BODY_SET_DIRTY_TRACKING;
	req.set_dirty_tracking = &t;
	return simple_call(h, &req);
}

int iommu_nest_get_dirty_bitmap(struct iommu_nest *h, const char *device, uint64_t iova,
				uint64_t length, uint64_t page_size, uint32_t flags, int memfd)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__GetDirtyBitmap g = IOMMU_NEST__GET_DIRTY_BITMAP__INIT;

	if (!device)
		return set_error(h, -EINVAL, "no device");
	if (memfd < 0)
		return set_error(h, -EBADF, "no memfd for the bitmap");
	g.device = (char *)device;
	g.iova = iova;
	g.length = length;
	g.page_size = page_size;
	g.flags = flags;
	req.body_case = IOMMU_NEST__REQUEST__BODY_GET_DIRTY_BITMAP;
	req.get_dirty_bitmap = &g;
	return simple_call_fd(h, &req, memfd);
}

int iommu_nest_mark_dirty(struct iommu_nest *h, const char *device, uint64_t iova, uint64_t length,
			  uint64_t page_size, const uint64_t *bitmap, size_t bitmap_bytes)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__SetDirty d = IOMMU_NEST__SET_DIRTY__INIT;

	if (!device || (!bitmap && bitmap_bytes))
		return set_error(h, -EINVAL, "no device or no bitmap");
	d.device = (char *)device;
	d.iova = iova;
	d.length = length;
	d.page_size = page_size;
	d.bitmap.data = (uint8_t *)bitmap;
	d.bitmap.len = bitmap_bytes;
	req.body_case = IOMMU_NEST__REQUEST__BODY_SET_DIRTY;
	req.set_dirty = &d;
	return simple_call(h, &req);
}

/* ---- Invalidation encoding ----------------------------------------------- */

static int grow_array(void **p, size_t cap, size_t size)
{
	void *np = reallocarray(*p, cap, size);

	if (!np)
		return -ENOMEM;
	*p = np;
	return 0;
}

/* Grows all arrays to hold n entries; cap only moves once all grew. */
static int soa_reserve(struct soa *s, size_t n)
{
	size_t cap = s->cap ? s->cap : 64;

	if (n <= s->cap)
		return 0;
	while (cap < n)
		cap *= 2;
	if (grow_array((void **)&s->addr, cap, sizeof(*s->addr)) ||
	    grow_array((void **)&s->npages, cap, sizeof(*s->npages)) ||
	    grow_array((void **)&s->flags, cap, sizeof(*s->flags)) ||
	    grow_array((void **)&s->reserved, cap, sizeof(*s->reserved)) ||
	    grow_array((void **)&s->iotlb_id, cap, sizeof(*s->iotlb_id)))
		return -ENOMEM;
	s->cap = cap;
	return 0;
}

/*
 * Transposes the kernel-layout VT-d array into the wire's structure of
 * arrays. entry_flags/entry_reserved go out only if some entry sets them:
 * empty means all zero, and the common case then costs no bytes.
 */
static void encode_vtd(struct soa *s, const struct iommu_nest_vtd_inv *e, size_t n,
		       IommuNest__Invalidate *inv)
{
	uint32_t any_flags = 0, any_rsv = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		s->addr[i] = e[i].addr;
		s->npages[i] = e[i].npages;
		s->flags[i] = e[i].flags;
		s->reserved[i] = e[i].reserved;
		any_flags |= e[i].flags;
		any_rsv |= e[i].reserved;
	}
	inv->n_addr = inv->n_npages = n;
	inv->addr = s->addr;
	inv->npages = s->npages;
	inv->n_entry_flags = any_flags ? n : 0;
	inv->entry_flags = s->flags;
	inv->n_entry_reserved = any_rsv ? n : 0;
	inv->entry_reserved = s->reserved;
}

static void encode_selftest(struct soa *s, const struct iommu_nest_selftest_inv *e, size_t n,
			    IommuNest__Invalidate *inv)
{
	uint32_t any_flags = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		s->iotlb_id[i] = e[i].iotlb_id;
		s->flags[i] = e[i].flags;
		any_flags |= e[i].flags;
	}
	inv->n_iotlb_id = n;
	inv->iotlb_id = s->iotlb_id;
	inv->n_entry_flags = any_flags ? n : 0;
	inv->entry_flags = s->flags;
}

static int encode_invalidate(struct iommu_nest *h, const struct iommu_nest_inv_raw *r,
			     IommuNest__Invalidate *inv)
{
	int err;

	inv->hwpt_id = r->hwpt_id;
	inv->data_type = r->data_type;
	inv->flags = r->flags;
	inv->reserved = r->reserved;
	inv->entry_len = r->entry_len;
	if (!r->n)
		return 0;
	if (!r->entries)
		return -EINVAL;
	/*
	 * Every entry costs at least one byte on the wire: refuse early what
	 * cannot fit, before sizing scratch arrays after it.
	 */
	if (r->n > h->max_msg)
		return set_error(h, -EMSGSIZE, "%zu entries cannot fit max_message_size %u", r->n,
				 h->max_msg);
	err = soa_reserve(&h->soa, r->n);
	if (err)
		return err;
	switch (r->layout) {
	case IOMMU_NEST_LAYOUT_VTD:
		encode_vtd(&h->soa, r->entries, r->n, inv);
		return 0;
	case IOMMU_NEST_LAYOUT_SELFTEST:
		encode_selftest(&h->soa, r->entries, r->n, inv);
		return 0;
	default:
		return -EINVAL;
	}
}

/* The entry layout a data type implies; unknown types need the raw API. */
static int layout_of(uint32_t data_type, size_t n, uint32_t *layout)
{
	switch (data_type) {
	case IOMMU_NEST_INV_DATA_VTD_S1:
		*layout = IOMMU_NEST_LAYOUT_VTD;
		return 0;
	case IOMMU_NEST_INV_DATA_SELFTEST:
	case IOMMU_NEST_INV_DATA_SELFTEST_INVALID:
		*layout = IOMMU_NEST_LAYOUT_SELFTEST;
		return 0;
	default:
		*layout = 0;
		return n ? -EINVAL : 0;
	}
}

static int make_raw(struct iommu_nest_inv_raw *r, uint32_t hwpt_id, uint32_t data_type,
		    const void *entries, size_t n, uint32_t flags)
{
	memset(r, 0, sizeof(*r));
	r->hwpt_id = hwpt_id;
	r->data_type = data_type;
	r->flags = flags;
	r->entries = entries;
	r->n = n;
	return layout_of(data_type, n, &r->layout);
}

/* ---- Shared-memory queue ------------------------------------------------- */

static int queue_drain(struct iommu_nest *h);

/* Entries one request may carry through the queue; larger ones take the socket. */
#define QUEUE_MAX_REQUEST_ENTRIES 4096

static int send_queue_setup(struct iommu_nest *h, const struct nestq_client *q)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__QueueSetup qs = IOMMU_NEST__QUEUE_SETUP__INIT;
	IommuNest__Reply *reply;
	int err;

	req.body_case = IOMMU_NEST__REQUEST__BODY_QUEUE_SETUP;
	req.queue_setup = &qs;
	if (q) {
		const int fds[3] = {q->memfd, q->kick_fd, q->call_fd};

		qs.sq_entries = q->l.sq_entries;
		qs.cq_entries = q->l.cq_entries;
		qs.data_bytes = q->l.data_bytes;
		qs.layout_version = NESTQ_VERSION;
		err = transact_fds(h, &req, fds, 3, &reply);
	} else {
		err = transact(h, &req, &reply);
	}
	if (err)
		return err;
	err = reply_status(h, reply, IOMMU_NEST__REPLY__BODY__NOT_SET);
	release_reply(h);
	return err;
}

int iommu_nest_queue_open(struct iommu_nest *h, uint32_t entries, uint32_t spin_us)
{
	size_t max =
	    h->max_entries < QUEUE_MAX_REQUEST_ENTRIES ? h->max_entries : QUEUE_MAX_REQUEST_ENTRIES;
	struct nestq_client *q;
	int err;

	if (h->dead)
		return h->dead;
	if (h->q)
		return set_error(h, -EBUSY, "a queue is open already");
	q = malloc(sizeof(*q));
	if (!q)
		return set_error(h, -ENOMEM, "out of memory");
	err = nestq_client_create(q, entries, max, spin_us);
	if (err) {
		free(q);
		return set_error(h, err, "cannot create the queue: %s", strerror(-err));
	}
	err = send_queue_setup(h, q);
	if (err) {
		nestq_client_destroy(q);
		free(q);
		return err;
	}
	/* The daemon holds its own mapping: our descriptor of the area is not needed. */
	close(q->memfd);
	q->memfd = -1;
	h->q = q;
	return 0;
}

int iommu_nest_queue_close(struct iommu_nest *h)
{
	int err;

	if (!h->q)
		return set_error(h, -ENOENT, "no queue is open");
	/* What is in flight completes first (its callbacks run in process()). */
	err = h->dead ? 0 : queue_drain(h);
	if (!h->q)
		return err;
	err = h->dead ? 0 : send_queue_setup(h, NULL);
	/* A queue the daemon closed already (it broke) is gone all the same. */
	if (err == -ENOENT)
		err = 0;
	nestq_client_destroy(h->q);
	free(h->q);
	h->q = NULL;
	return err;
}

int iommu_nest_queue_fd(const struct iommu_nest *h)
{
	return h->q ? h->q->call_fd : -1;
}

int iommu_nest_queue_spin(struct iommu_nest *h, uint32_t spin_us)
{
	if (!h->q)
		return -ENOENT;
	return nestq_client_spin(h->q, spin_us);
}

/*
 * The queue failed (the daemon closed it, or wrote nonsense): every
 * request of it still in flight completes with err, and it is closed on
 * our side too; later requests take the socket. A closed socket kills h.
 */
static int queue_fail(struct iommu_nest *h, int err)
{
	if (err == -ECONNRESET) {
		set_error(h, err, "the daemon closed the connection");
		return kill_handle(h, err);
	}
	for (size_t i = 0; i < h->n_slots; i++) {
		struct inflight *s = &h->slots[i];

		if (!s->id || s->done || !s->on_queue)
			continue;
		memset(&s->summary, 0, sizeof(s->summary));
		s->summary.status = err;
		results_not_attempted(s->results, s->n);
		queue_done(h, i);
	}
	nestq_client_destroy(h->q);
	free(h->q);
	h->q = NULL;
	return set_error(h, err, "the shared queue failed: closed");
}

/* The synchronous request a reap may meet among the async ones (id 0: none). */
struct sync_wait {
	struct iommu_nest *h;
	uint64_t id;
	struct iommu_nest_entry_result *results;
	struct iommu_nest_inv_summary sum;
	bool got;
};

static struct iommu_nest_entry_result *results_of(void *opaque, uint64_t id)
{
	struct sync_wait *w = opaque;
	size_t i;

	if (w->id && id == w->id)
		return w->results;
	i = find_slot(w->h, id);
	return i == NO_SLOT ? NULL : w->h->slots[i].results;
}

/*
 * Reads every completion there is: the synchronous one into w, the
 * others into their slots and the done queue, as a synchronous call over
 * the socket parks the replies it meets. 0 or the queue's failure.
 */
static int queue_reap(struct iommu_nest *h, struct sync_wait *w)
{
	struct iommu_nest_inv_summary sum;
	uint64_t id;
	size_t i;
	int rc;

	while ((rc = nestq_client_reap(h->q, results_of, w, &id, &sum)) > 0) {
		if (w->id && id == w->id) {
			w->sum = sum;
			w->got = true;
			continue;
		}
		i = find_slot(h, id);
		/* The queue knew it as in flight: only a slot of ours can be. */
		if (i == NO_SLOT || !h->slots[i].on_queue)
			return -EPROTO;
		h->slots[i].summary = sum;
		if (sum.status)
			set_error(h, sum.status, "%s", strerror(-sum.status));
		queue_done(h, i);
	}
	return rc;
}

/* Waits for a completion and reads what is there; on failure the queue is gone. */
static int queue_wait_reap(struct iommu_nest *h, struct sync_wait *w)
{
	int err = nestq_client_wait(h->q, h->fd);

	if (!err)
		err = queue_reap(h, w);
	return err ? queue_fail(h, err) : 0;
}

/* One synchronous invalidation through the queue, in the socket's terms. */
static int queue_invalidate(struct iommu_nest *h, const struct iommu_nest_inv_raw *r,
			    struct iommu_nest_entry_result *results,
			    struct iommu_nest_inv_summary *summary)
{
	struct sync_wait w = {.h = h, .id = h->next_id++, .results = results};
	int err;

	results_not_attempted(results, r->n);
	/* The ring full of async requests: make room by reading their completions. */
	while ((err = nestq_client_submit(h->q, r, w.id, false)) == -EAGAIN) {
		err = queue_wait_reap(h, &w);
		if (err)
			return err;
	}
	while (!w.got) {
		err = queue_wait_reap(h, &w);
		if (err) {
			results_not_attempted(results, r->n);
			return err;
		}
	}
	h->last_limit = 0;
	if (w.sum.status)
		set_error(h, w.sum.status, "%s", strerror(-w.sum.status));
	if (summary)
		*summary = w.sum;
	return w.sum.status;
}

/* Takes every request of the queue in flight to completion (parked for process()). */
static int queue_drain(struct iommu_nest *h)
{
	struct sync_wait w = {.h = h};
	int err = 0;

	while (!err && h->q && nestq_client_in_flight(h->q))
		err = queue_wait_reap(h, &w);
	return err;
}

/* An async request through the queue; -EAGAIN when it is full (the socket takes it). */
static int queue_submit(struct iommu_nest *h, const struct iommu_nest_inv_raw *r,
			struct iommu_nest_entry_result *results, iommu_nest_inv_cb cb, void *opaque,
			uint64_t *token)
{
	struct inflight *s;
	size_t i;
	int err;

	err = get_free_slot(h, &i);
	if (err)
		return err;
	err = nestq_client_submit(h->q, r, h->next_id, true);
	if (err)
		return err;
	s = &h->slots[i];
	*s = (struct inflight){.id = h->next_id++,
			       .on_queue = true,
			       .next_done = NO_SLOT,
			       .cb = cb,
			       .opaque = opaque,
			       .results = results,
			       .n = r->n};
	results_not_attempted(results, r->n);
	h->in_flight++;
	if (token)
		*token = s->id;
	return 0;
}

/* Reads the queue's completions without waiting (iommu_nest_process()). */
static int queue_poll(struct iommu_nest *h)
{
	struct sync_wait w = {.h = h};
	int err;

	nestq_client_drain_call(h->q);
	err = queue_reap(h, &w);
	return err ? queue_fail(h, err) : 0;
}

/* ---- Invalidation (synchronous) ------------------------------------------ */

int iommu_nest_invalidate_raw(struct iommu_nest *h, const struct iommu_nest_inv_raw *r,
			      struct iommu_nest_entry_result *results,
			      struct iommu_nest_inv_summary *summary)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__Invalidate inv = IOMMU_NEST__INVALIDATE__INIT;
	struct iommu_nest_inv_summary sum;
	IommuNest__Reply *reply;
	int err;

	if (h->dead)
		return h->dead;
	if (h->q && nestq_client_fits(h->q, r, h->max_entries))
		return queue_invalidate(h, r, results, summary);
	err = encode_invalidate(h, r, &inv);
	if (err)
		return err;
	req.body_case = IOMMU_NEST__REQUEST__BODY_INVALIDATE;
	req.invalidate = &inv;
	err = transact(h, &req, &reply);
	if (err)
		return err;
	err = decode_inv_reply(h, reply, r->n, results, &sum);
	release_reply(h);
	if (summary)
		*summary = sum;
	return err;
}

int iommu_nest_invalidate(struct iommu_nest *h, uint32_t hwpt_id, uint32_t data_type,
			  const void *entries, size_t n, uint32_t flags,
			  struct iommu_nest_entry_result *results,
			  struct iommu_nest_inv_summary *summary)
{
	struct iommu_nest_inv_raw r;
	int err;

	err = make_raw(&r, hwpt_id, data_type, entries, n, flags);
	if (err)
		return set_error(h, err, "no entry layout for data type %#x; use the raw API",
				 data_type);
	return iommu_nest_invalidate_raw(h, &r, results, summary);
}

/* ---- Invalidation (asynchronous) ----------------------------------------- */

int iommu_nest_invalidate_submit_raw(struct iommu_nest *h, const struct iommu_nest_inv_raw *r,
				     struct iommu_nest_entry_result *results, iommu_nest_inv_cb cb,
				     void *opaque, uint64_t *token)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__Invalidate inv = IOMMU_NEST__INVALIDATE__INIT;
	struct inflight *s;
	size_t i;
	int err;

	if (h->dead)
		return h->dead;
	if (!cb)
		return -EINVAL;
	if (h->q && nestq_client_fits(h->q, r, h->max_entries)) {
		err = queue_submit(h, r, results, cb, opaque, token);
		if (err != -EAGAIN)
			return err;
		/* The queue is full: the socket carries this one, with the same answer. */
	}
	err = encode_invalidate(h, r, &inv);
	if (err)
		return err;
	/* Take the slot first: a reply must never find no slot waiting. */
	err = get_free_slot(h, &i);
	if (err)
		return err;
	req.body_case = IOMMU_NEST__REQUEST__BODY_INVALIDATE;
	req.invalidate = &inv;
	err = send_request(h, &req, true);
	if (err)
		return err;
	s = &h->slots[i];
	memset(s, 0, sizeof(*s));
	s->id = req.id;
	s->next_done = NO_SLOT;
	s->cb = cb;
	s->opaque = opaque;
	s->results = results;
	s->n = r->n;
	h->in_flight++;
	if (token)
		*token = req.id;
	return 0;
}

int iommu_nest_invalidate_submit(struct iommu_nest *h, uint32_t hwpt_id, uint32_t data_type,
				 const void *entries, size_t n, uint32_t flags,
				 struct iommu_nest_entry_result *results, iommu_nest_inv_cb cb,
				 void *opaque, uint64_t *token)
{
	struct iommu_nest_inv_raw r;
	int err;

	err = make_raw(&r, hwpt_id, data_type, entries, n, flags);
	if (err)
		return set_error(h, err, "no entry layout for data type %#x; use the raw API",
				 data_type);
	return iommu_nest_invalidate_submit_raw(h, &r, results, cb, opaque, token);
}

/* Drains the socket without blocking, parking completions in the done queue. */
static int read_available(struct iommu_nest *h)
{
	IommuNest__Reply *reply;
	int err;

	for (;;) {
		err = recv_reply(h, true, &reply);
		if (err == -EAGAIN)
			return 0;
		if (err)
			return err;
		err = dispatch_other(h, reply);
		release_reply(h);
		if (err)
			return err;
	}
}

/*
 * Pops one completion and runs its callback. The slot is freed before the
 * call so the callback can submit again (which may move h->slots).
 */
static void deliver_one(struct iommu_nest *h)
{
	struct inflight s = h->slots[h->done_head];

	memset(&h->slots[h->done_head], 0, sizeof(s));
	h->done_head = s.next_done;
	if (h->done_head == NO_SLOT)
		h->done_tail = NO_SLOT;
	h->pending--;
	h->in_flight--;
	s.cb(h, s.id, &s.summary, s.results, s.n, s.opaque);
}

int iommu_nest_process(struct iommu_nest *h)
{
	int n = 0;

	if (!h->dead)
		read_available(h);
	if (!h->dead && h->q)
		queue_poll(h);
	nest_events_deliver(h, &h->events);
	while (h->done_head != NO_SLOT) {
		deliver_one(h);
		n++;
	}
	return h->dead ? h->dead : n;
}

/* ---- Test and diagnostics ------------------------------------------------ */

int iommu_nest_check_iotlb(struct iommu_nest *h, uint32_t hwpt_id, uint32_t iotlb_id,
			   uint32_t expected)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__CheckIotlb c = IOMMU_NEST__CHECK_IOTLB__INIT;

	c.hwpt_id = hwpt_id;
	c.iotlb_id = iotlb_id;
	c.expected = expected;
	req.body_case = IOMMU_NEST__REQUEST__BODY_CHECK_IOTLB;
	req.check_iotlb = &c;
	return simple_call(h, &req);
}

int iommu_nest_sim_populate(struct iommu_nest *h, uint32_t hwpt_id, uint64_t addr, uint64_t npages,
			    uint32_t kind)
{
	return iommu_nest_sim_populate_asid(h, hwpt_id, 0, addr, npages, kind);
}

int iommu_nest_sim_populate_asid(struct iommu_nest *h, uint32_t hwpt_id, uint32_t asid,
				 uint64_t addr, uint64_t npages, uint32_t kind)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__SimPopulate p = IOMMU_NEST__SIM_POPULATE__INIT;

	p.hwpt_id = hwpt_id;
	p.asid = asid;
	p.addr = addr;
	p.npages = npages;
	p.kind = kind;
	req.body_case = IOMMU_NEST__REQUEST__BODY_SIM_POPULATE;
	req.sim_populate = &p;
	return simple_call(h, &req);
}

int iommu_nest_sim_query(struct iommu_nest *h, uint32_t hwpt_id, uint64_t addr, uint64_t npages,
			 uint64_t *iotlb_pages, uint64_t *psc_pages)
{
	return iommu_nest_sim_query_asid(h, hwpt_id, 0, addr, npages, iotlb_pages, psc_pages);
}

int iommu_nest_sim_query_asid(struct iommu_nest *h, uint32_t hwpt_id, uint32_t asid, uint64_t addr,
			      uint64_t npages, uint64_t *iotlb_pages, uint64_t *psc_pages)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__SimQuery q = IOMMU_NEST__SIM_QUERY__INIT;
	IommuNest__Reply *reply;
	int err;

	q.hwpt_id = hwpt_id;
	q.asid = asid;
	q.addr = addr;
	q.npages = npages;
	req.body_case = IOMMU_NEST__REQUEST__BODY_SIM_QUERY;
	req.sim_query = &q;
	err = transact(h, &req, &reply);
	if (err)
		return err;
	err = reply_status(h, reply, IOMMU_NEST__REPLY__BODY_SIM_QUERY);
	if (!err) {
		if (iotlb_pages)
			*iotlb_pages = reply->sim_query->iotlb_pages;
		if (psc_pages)
			*psc_pages = reply->sim_query->psc_pages;
	}
	release_reply(h);
	return err;
}

int iommu_nest_inject_fault(struct iommu_nest *h, const struct iommu_nest_fault *f)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__InjectFault m = IOMMU_NEST__INJECT_FAULT__INIT;

	m.hwpt_id = f->hwpt_id;
	m.mode = f->mode;
	m.index = f->index;
	m.addr = f->addr;
	m.error = f->error;
	m.hw_error = f->hw_error;
	m.latency_us = f->latency_us;
	m.count = f->count;
	req.body_case = IOMMU_NEST__REQUEST__BODY_INJECT_FAULT;
	req.inject_fault = &m;
	return simple_call(h, &req);
}

void nest_copy_stats(struct iommu_nest_stats *st, const IommuNest__StatsReply *r)
{
	st->connections = r->connections;
	st->sessions_active = r->sessions_active;
	st->requests = r->requests;
	st->request_errors = r->request_errors;
	st->entries_received = r->entries_received;
	st->entries_failed = r->entries_failed;
	st->entries_submitted = r->entries_submitted;
	st->submissions = r->submissions;
	st->pages_flushed = r->pages_flushed;
	st->hwpts_active = r->hwpts_active;
	st->protocol_errors = r->protocol_errors;
	st->batches = r->batches;
	st->denials = r->denials;
}

int iommu_nest_stats(struct iommu_nest *h, struct iommu_nest_stats *stats)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__Stats s = IOMMU_NEST__STATS__INIT;
	IommuNest__Reply *reply;
	int err;

	req.body_case = IOMMU_NEST__REQUEST__BODY_STATS;
	req.stats = &s;
	err = transact(h, &req, &reply);
	if (err)
		return err;
	err = reply_status(h, reply, IOMMU_NEST__REPLY__BODY_STATS);
	if (!err)
		nest_copy_stats(stats, reply->stats);
	release_reply(h);
	return err;
}

int iommu_nest_queue_stats(struct iommu_nest *h, struct iommu_nest_queue_stats *qs)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__Stats s = IOMMU_NEST__STATS__INIT;
	IommuNest__Reply *reply;
	int err;

	req.body_case = IOMMU_NEST__REQUEST__BODY_STATS;
	req.stats = &s;
	err = transact(h, &req, &reply);
	if (err)
		return err;
	err = reply_status(h, reply, IOMMU_NEST__REPLY__BODY_STATS);
	if (!err) {
		const IommuNest__StatsReply *r = reply->stats;

		*qs = (struct iommu_nest_queue_stats){
		    .submissions = r->queue_submissions,
		    .completions = r->queue_completions,
		    .kicks = r->queue_kicks,
		    .kicks_suppressed = r->queue_kicks_suppressed,
		    .calls = r->queue_calls,
		    .calls_suppressed = r->queue_calls_suppressed,
		    .stalls = r->queue_stalls,
		    .poll_passes = r->queue_poll_passes,
		};
	}
	release_reply(h);
	return err;
}

/* ---- For the library's other files (iommu_nest_call.h) ------------------- */

int nest_invalidate_msg(struct iommu_nest *h, IommuNest__Invalidate *inv, size_t n,
			struct iommu_nest_entry_result *results,
			struct iommu_nest_inv_summary *summary)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	struct iommu_nest_inv_summary sum;
	IommuNest__Reply *reply;
	int err;

	if (h->dead)
		return h->dead;
	req.body_case = IOMMU_NEST__REQUEST__BODY_INVALIDATE;
	req.invalidate = inv;
	err = transact(h, &req, &reply);
	if (err)
		return err;
	err = decode_inv_reply(h, reply, n, results, &sum);
	release_reply(h);
	if (summary)
		*summary = sum;
	return err;
}

int nest_call(struct iommu_nest *h, IommuNest__Request *req, IommuNest__Reply__BodyCase want,
	      IommuNest__Reply **out)
{
	int err = transact(h, req, out);

	if (err)
		return err;
	err = reply_status(h, *out, want);
	if (err)
		release_reply(h);
	return err;
}

struct nest_events *nest_events_of(struct iommu_nest *h)
{
	return &h->events;
}

void nest_release(struct iommu_nest *h)
{
	release_reply(h);
}

int nest_fail(struct iommu_nest *h, int err, const char *why)
{
	return set_error(h, err, "%s", why);
}
