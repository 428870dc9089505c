/* SPDX-License-Identifier: MIT */
#include "dispatch.h"

#include <errno.h>

#include "log.h"
#include "restart.h"
#include "server.h"
#include "session.h"

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
};

static void route(struct session *s, const IommuNest__Request *req)
{
	IommuNest__Reply rep = IOMMU_NEST__REPLY__INIT;
	unsigned kind = req->body_case;
	struct server *srv = s->srv;

	rep.id = req->id;
	srv->stats.requests++;
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
	handlers[kind](s, req, &rep);
	/*
	 * Handlers of lifecycle requests save before they reply; this catches
	 * backend state changed by the rest (SimPopulate, InjectFault).
	 */
	restart_save_if_changed(srv);
	return;
fail:
	srv->stats.request_errors++;
	session_send_reply(s, &rep);
}

int dispatch_packet(struct session *s, const uint8_t *buf, size_t len)
{
	struct decode_arena *arena = &s->srv->arena;
	IommuNest__Request *req;

	decode_arena_reset(arena);
	req = iommu_nest__request__unpack(&arena->allocator, len, buf);
	if (!req)
		return -EPROTO;
	route(s, req);
	/* Nothing to free one by one: the next decode reuses the arena. */
	return 0;
}
