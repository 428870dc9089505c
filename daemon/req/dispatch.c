/* SPDX-License-Identifier: MIT */
#include "req/dispatch.h"

#include <errno.h>
#include <unistd.h>

#include "util/log.h"
#include "net/server.h"
#include "net/session.h"
#include "util/common.h"

static const request_handler handlers[] = {
	[IOMMU_NEST__REQUEST__BODY_HELLO] = handle_hello,
	[IOMMU_NEST__REQUEST__BODY_PROBE] = handle_probe,
	[IOMMU_NEST__REQUEST__BODY_ALLOC] = handle_alloc,
	[IOMMU_NEST__REQUEST__BODY_DESTROY] = handle_destroy,
	[IOMMU_NEST__REQUEST__BODY_ATTACH] = handle_attach,
	[IOMMU_NEST__REQUEST__BODY_DETACH] = handle_detach,
	[IOMMU_NEST__REQUEST__BODY_INVALIDATE] = handle_invalidate,
	[IOMMU_NEST__REQUEST__BODY_CHECK_IOTLB] = handle_check_iotlb,
	[IOMMU_NEST__REQUEST__BODY_SIM_POPULATE] = handle_sim_populate,
	[IOMMU_NEST__REQUEST__BODY_SIM_QUERY] = handle_sim_query,
	[IOMMU_NEST__REQUEST__BODY_INJECT_FAULT] = handle_inject_fault,
	[IOMMU_NEST__REQUEST__BODY_STATS] = handle_stats,
	[IOMMU_NEST__REQUEST__BODY_RECLAIM] = handle_reclaim,
	[IOMMU_NEST__REQUEST__BODY_MAP_MEMORY] = handle_map_memory,
	[IOMMU_NEST__REQUEST__BODY_UNMAP_MEMORY] = handle_unmap_memory,
	[IOMMU_NEST__REQUEST__BODY_STATUS] = handle_status,
	[IOMMU_NEST__REQUEST__BODY_LIST_CLIENTS] = handle_list_clients,
	[IOMMU_NEST__REQUEST__BODY_LIST_HWPTS] = handle_list_hwpts,
	[IOMMU_NEST__REQUEST__BODY_RELOAD] = handle_reload,
};

/*
 * The descriptor that came with the request being routed, for
 * dispatch_take_fd(); -1 when there is none. The loop is single threaded
 * and routes one request at a time, so one slot is enough.
 */
static int passed_fd = -1;

int dispatch_take_fd(void)
{
	int fd = passed_fd;

	passed_fd = -1;
	return fd;
}

static void route(struct session *s, const IommuNest__Request *req)
{
	IommuNest__Reply rep = IOMMU_NEST__REPLY__INIT;
	unsigned kind = req->body_case;
	struct server *srv = s->srv;

	rep.id = req->id;
	srv->stats.requests++;
	s->n_requests++;
	if (kind >= sizeof(handlers) / sizeof(handlers[0]) || !handlers[kind]) {
		/* An unknown oneof member decodes as BODY__NOT_SET. */
		reply_error(&rep, -EOPNOTSUPP, "unknown or empty request");
		goto fail;
	}
	if (!rate_limiter_take(&s->rate, srv->cfg->quota.max_requests_per_sec)) {
		session_deny(s, &rep, -EAGAIN, srv->cfg->quota.max_requests_per_sec,
			     "over %u requests per second", srv->cfg->quota.max_requests_per_sec);
		goto fail;
	}
	if (!s->hello_done && kind != IOMMU_NEST__REQUEST__BODY_HELLO) {
		reply_error(&rep, -EPROTO, "the first request must be Hello");
		goto fail;
	}
	/*
	 * Requests of one session take effect in order: anything but another
	 * invalidation waits until the session's queued invalidations ran.
	 */
	if (s->n_pending && kind != IOMMU_NEST__REQUEST__BODY_INVALIDATE)
		server_flush(srv);
	/* Whatever it changed is on disk before its reply leaves (session_send_reply). */
	handlers[kind](s, req, &rep);
	return;
fail:
	srv->stats.request_errors++;
	session_send_reply(s, &rep);
}

static bool read_varint(const uint8_t *buf, size_t len, size_t *pos, uint64_t *v)
{
	*v = 0;
	for (unsigned shift = 0; shift < 64 && *pos < len; shift += 7) {
		uint8_t b = buf[(*pos)++];

		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return true;
	}
	return false;
}

/*
 * The id of a Request whose decode ran out of arena: a walk over its
 * top-level fields (wire format only). False if even that is broken.
 */
static bool scan_request_id(const uint8_t *buf, size_t len, uint64_t *id)
{
	size_t pos = 0;
	uint64_t tag, v;

	*id = 0;
	while (pos < len) {
		if (!read_varint(buf, len, &pos, &tag))
			return false;
		switch (tag & 7) {
		case 0:
			if (!read_varint(buf, len, &pos, &v))
				return false;
			if (tag >> 3 == 1)
				*id = v;
			break;
		case 1:
		case 5:
			v = (tag & 7) == 1 ? 8 : 4;
			if (len - pos < v)
				return false;
			pos += v;
			break;
		case 2:
			if (!read_varint(buf, len, &pos, &v) || v > len - pos)
				return false;
			pos += v;
			break;
		default:
			return false;
		}
	}
	return true;
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

	if (!scan_request_id(buf, len, &rep.id))
		return -EPROTO;
	srv->stats.requests++;
	srv->stats.request_errors++;
	s->n_requests++;
	reply_error(&rep, -E2BIG,
		    "the request decodes to more than %zu bytes (use packed arrays; at most "
		    "%u entries per request)",
		    srv->arena.cap, invalidate_max_entries(srv));
	rep.limit = invalidate_max_entries(srv);
	session_send_reply(s, &rep);
	return 0;
}

int dispatch_packet_fds(struct session *s, const uint8_t *buf, size_t len, int *fds, int nfds)
{
	struct decode_arena *arena = &s->srv->arena;
	IommuNest__Request *req;

	decode_arena_reset(arena);
	req = iommu_nest__request__unpack(&arena->allocator, len, buf);
	if (!req) {
		close_fds(fds, nfds);
		return arena->exhausted ? refuse_oversized_decode(s, buf, len) : -EPROTO;
	}
	/*
	 * Only MapMemory takes a descriptor, and exactly one: its handler
	 * refuses the request when it finds none. Anything else passed along
	 * is closed unseen, as before any request took descriptors.
	 */
	if (req->body_case == IOMMU_NEST__REQUEST__BODY_MAP_MEMORY && nfds == 1)
		passed_fd = fds[0];
	else
		close_fds(fds, nfds);
	route(s, req);
	/* Not taken: refused before its handler ran (Hello first, rate limit). */
	if (passed_fd >= 0) {
		close(passed_fd);
		passed_fd = -1;
	}
	/* Nothing to free one by one: the next decode reuses the arena. */
	return 0;
}

int dispatch_packet(struct session *s, const uint8_t *buf, size_t len)
{
	return dispatch_packet_fds(s, buf, len, NULL, 0);
}
