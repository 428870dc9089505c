/* SPDX-License-Identifier: MIT */
/*
 * The request table. An entry names the handler and what it needs; the
 * needs are resolved here, in a fixed order (the order the handlers
 * checked them in before, so every refusal keeps its errno and text),
 * and a handler runs only once they all hold. Failed gates and handlers
 * alike leave their answer in the reply; req_dispatch() counts it.
 */
#include "req/dispatch.h"

#include <errno.h>

#include "net/server.h"
#include "net/session.h"
#include "persist/restart.h"
#include "req/handlers.h"
#include "state/registry.h"

enum {
	REQ_NEED_HELLO = 1 << 0,    /* a Hello was accepted on this session */
	REQ_NEED_ADMIN = 1 << 1,    /* root or [policy] admin_groups */
	REQ_NEED_TEST = 1 << 2,	    /* test_requests on, and the backend has the op */
	REQ_NEED_FD = 1 << 3,	    /* exactly one descriptor came with the packet */
	REQ_NEED_DEVICE = 1 << 4,   /* configured, and this peer may use it */
	REQ_NEED_FREE_DEV = 1 << 5, /* ... and no other client holds it */
	REQ_NEED_OWN_HWPT = 1 << 6, /* a HWPT of this session */
	/* The handler claims the free device itself, once it knows the HWPT is the client's. */
	REQ_CLAIM_IN_HANDLER = 1 << 7,
};

struct req_op {
	int (*run)(struct req_ctx *c);
	unsigned needs;
	bool (*backend_has)(const struct backend_ops *ops);    /* REQ_NEED_TEST */
	uint32_t (*hwpt_of)(const IommuNest__Request *m);      /* REQ_NEED_OWN_HWPT */
	const char *(*device_of)(const IommuNest__Request *m); /* REQ_NEED_DEVICE */
};

static uint32_t probe_hwpt(const IommuNest__Request *m)
{
	return m->probe->hwpt_id;
}

static uint32_t check_iotlb_hwpt(const IommuNest__Request *m)
{
	return m->check_iotlb->hwpt_id;
}

static uint32_t sim_populate_hwpt(const IommuNest__Request *m)
{
	return m->sim_populate->hwpt_id;
}

static uint32_t sim_query_hwpt(const IommuNest__Request *m)
{
	return m->sim_query->hwpt_id;
}

static const char *attach_device(const IommuNest__Request *m)
{
	return m->attach->device;
}

static const char *detach_device(const IommuNest__Request *m)
{
	return m->detach->device;
}

static const char *map_device(const IommuNest__Request *m)
{
	return m->map_memory->device;
}

static const char *unmap_device(const IommuNest__Request *m)
{
	return m->unmap_memory->device;
}

static const char *hw_info_device(const IommuNest__Request *m)
{
	return m->get_hw_info->device;
}

static const char *set_dirty_tracking_device(const IommuNest__Request *m)
{
	return m->set_dirty_tracking->device;
}

static const char *get_dirty_bitmap_device(const IommuNest__Request *m)
{
	return m->get_dirty_bitmap->device;
}

static const char *set_dirty_device(const IommuNest__Request *m)
{
	return m->set_dirty->device;
}

static const char *open_device_device(const IommuNest__Request *m)
{
	return m->open_device->device;
}

static const char *close_device_device(const IommuNest__Request *m)
{
	return m->close_device->device;
}

static const char *adopt_device_device(const IommuNest__Request *m)
{
	return m->adopt_device->device;
}

static const char *trigger_iopf_device(const IommuNest__Request *m)
{
	return m->trigger_iopf->device;
}

static const char *alloc_viommu_device(const IommuNest__Request *m)
{
	return m->alloc_viommu->device;
}

static const char *alloc_vdevice_device(const IommuNest__Request *m)
{
	return m->alloc_vdevice->device;
}

static const char *trigger_vevent_device(const IommuNest__Request *m)
{
	return m->trigger_vevent->device;
}

static const char *attach_pasid_device(const IommuNest__Request *m)
{
	return m->attach_pasid->device;
}

static const char *detach_pasid_device(const IommuNest__Request *m)
{
	return m->detach_pasid->device;
}

#define H   REQ_NEED_HELLO
#define DEV (REQ_NEED_DEVICE | REQ_NEED_FREE_DEV)

static const struct req_op ops[] = {
    [IOMMU_NEST__REQUEST__BODY_HELLO] = {.run = handle_hello},
    [IOMMU_NEST__REQUEST__BODY_PROBE] = {.run = handle_probe,
					 .needs = H | REQ_NEED_OWN_HWPT,
					 .hwpt_of = probe_hwpt},
    [IOMMU_NEST__REQUEST__BODY_ALLOC] = {.run = handle_alloc, .needs = H},
    [IOMMU_NEST__REQUEST__BODY_DESTROY] = {.run = handle_destroy, .needs = H},
    [IOMMU_NEST__REQUEST__BODY_ATTACH] = {.run = handle_attach,
					  .needs = H | DEV | REQ_CLAIM_IN_HANDLER,
					  .device_of = attach_device},
    [IOMMU_NEST__REQUEST__BODY_DETACH] = {.run = handle_detach,
					  .needs = H | DEV,
					  .device_of = detach_device},
    [IOMMU_NEST__REQUEST__BODY_INVALIDATE] = {.run = handle_invalidate, .needs = H},
    [IOMMU_NEST__REQUEST__BODY_CHECK_IOTLB] = {.run = handle_check_iotlb,
					       .needs = H | REQ_NEED_TEST | REQ_NEED_OWN_HWPT,
					       .backend_has = has_check_iotlb,
					       .hwpt_of = check_iotlb_hwpt},
    [IOMMU_NEST__REQUEST__BODY_SIM_POPULATE] = {.run = handle_sim_populate,
						.needs = H | REQ_NEED_TEST | REQ_NEED_OWN_HWPT,
						.backend_has = has_sim_populate,
						.hwpt_of = sim_populate_hwpt},
    [IOMMU_NEST__REQUEST__BODY_SIM_QUERY] = {.run = handle_sim_query,
					     .needs = H | REQ_NEED_TEST | REQ_NEED_OWN_HWPT,
					     .backend_has = has_sim_query,
					     .hwpt_of = sim_query_hwpt},
    /* Its HWPT is optional and checked after its arguments: the handler looks. */
    [IOMMU_NEST__REQUEST__BODY_INJECT_FAULT] = {.run = handle_inject_fault,
						.needs = H | REQ_NEED_TEST,
						.backend_has = has_inject_fault},
    [IOMMU_NEST__REQUEST__BODY_STATS] = {.run = handle_stats, .needs = H | REQ_NEED_ADMIN},
    [IOMMU_NEST__REQUEST__BODY_RECLAIM] = {.run = handle_reclaim, .needs = H},
    [IOMMU_NEST__REQUEST__BODY_MAP_MEMORY] = {.run = handle_map_memory,
					      .needs = H | REQ_NEED_FD | DEV,
					      .device_of = map_device},
    [IOMMU_NEST__REQUEST__BODY_UNMAP_MEMORY] = {.run = handle_unmap_memory,
						.needs = H | REQ_NEED_DEVICE,
						.device_of = unmap_device},
    [IOMMU_NEST__REQUEST__BODY_STATUS] = {.run = handle_status, .needs = H | REQ_NEED_ADMIN},
    [IOMMU_NEST__REQUEST__BODY_LIST_CLIENTS] = {.run = handle_list_clients,
						.needs = H | REQ_NEED_ADMIN},
    [IOMMU_NEST__REQUEST__BODY_LIST_HWPTS] = {.run = handle_list_hwpts,
					      .needs = H | REQ_NEED_ADMIN},
    [IOMMU_NEST__REQUEST__BODY_RELOAD] = {.run = handle_reload, .needs = H | REQ_NEED_ADMIN},
    /* Allowed, not free: the host's hardware is the same whoever holds the device. */
    [IOMMU_NEST__REQUEST__BODY_GET_HW_INFO] = {.run = handle_get_hw_info,
					       .needs = H | REQ_NEED_DEVICE,
					       .device_of = hw_info_device},
    /* Held or free, as MapMemory: the bits are the holder's guest memory. */
    [IOMMU_NEST__REQUEST__BODY_SET_DIRTY_TRACKING] = {.run = handle_set_dirty_tracking,
						      .needs = H | DEV,
						      .device_of = set_dirty_tracking_device},
    /* Its descriptor (the bitmap's memfd) is checked by the handler. */
    [IOMMU_NEST__REQUEST__BODY_GET_DIRTY_BITMAP] = {.run = handle_get_dirty_bitmap,
						    .needs = H | DEV,
						    .device_of = get_dirty_bitmap_device},
    [IOMMU_NEST__REQUEST__BODY_SET_DIRTY] = {.run = handle_set_dirty,
					     .needs = H | REQ_NEED_TEST | DEV,
					     .backend_has = has_set_dirty,
					     .device_of = set_dirty_device},
    [IOMMU_NEST__REQUEST__BODY_QUEUE_SETUP] = {.run = handle_queue_setup, .needs = H},
    /* Device hand-off (req/device.c): a claim, free as for Attach. */
    [IOMMU_NEST__REQUEST__BODY_OPEN_DEVICE] = {.run = handle_open_device,
					       .needs = H | DEV,
					       .device_of = open_device_device},
    [IOMMU_NEST__REQUEST__BODY_CLOSE_DEVICE] = {.run = handle_close_device,
						.needs = H | REQ_NEED_DEVICE,
						.device_of = close_device_device},
    [IOMMU_NEST__REQUEST__BODY_ADOPT_DEVICE] = {.run = handle_adopt_device,
						.needs = H | REQ_NEED_FD | DEV,
						.device_of = adopt_device_device},
    /* Its HWPT or device is optional (one of them): the handler looks. */
    [IOMMU_NEST__REQUEST__BODY_PAGE_RESPONSE] = {.run = handle_page_response, .needs = H},
    [IOMMU_NEST__REQUEST__BODY_TRIGGER_IOPF] = {.run = handle_trigger_iopf,
						.needs = H | REQ_NEED_TEST | DEV,
						.backend_has = has_trigger_iopf,
						.device_of = trigger_iopf_device},
    /* vIOMMU objects (req/viommu.c): on a device this client may use and nobody else holds. */
    [IOMMU_NEST__REQUEST__BODY_ALLOC_VIOMMU] = {.run = handle_alloc_viommu,
						.needs = H | DEV,
						.device_of = alloc_viommu_device},
    [IOMMU_NEST__REQUEST__BODY_ALLOC_VDEVICE] = {.run = handle_alloc_vdevice,
						 .needs = H | DEV,
						 .device_of = alloc_vdevice_device},
    [IOMMU_NEST__REQUEST__BODY_DESTROY_OBJECT] = {.run = handle_destroy_object, .needs = H},
    /* vEVENTQs (req/veventq.c): on the client's own vIOMMU, which the handler looks up. */
    [IOMMU_NEST__REQUEST__BODY_ALLOC_VEVENTQ] = {.run = handle_alloc_veventq, .needs = H},
    [IOMMU_NEST__REQUEST__BODY_TRIGGER_VEVENT] = {.run = handle_trigger_vevent,
						  .needs = H | REQ_NEED_TEST | DEV,
						  .backend_has = has_trigger_vevent,
						  .device_of = trigger_vevent_device},
    /* PASIDs (req/pasid.c): as Attach and Detach. */
    [IOMMU_NEST__REQUEST__BODY_ATTACH_PASID] = {.run = handle_attach_pasid,
						.needs = H | DEV | REQ_CLAIM_IN_HANDLER,
						.device_of = attach_pasid_device},
    [IOMMU_NEST__REQUEST__BODY_DETACH_PASID] = {.run = handle_detach_pasid,
						.needs = H | DEV,
						.device_of = detach_pasid_device},
};

#undef H
#undef DEV

void req_count_error(struct server *srv, int status)
{
	if (status)
		srv->stats.request_errors++;
}

/* The session-wide gates: a known kind, the rate limit, Hello first. */
static int admit(struct req_ctx *c, const struct req_op *op)
{
	struct session *s = c->s;
	uint32_t rate = c->srv->cfg->quota.max_requests_per_sec;

	/* Id 0 is the event channel's (net/events.c): a reply to it would read as one. */
	if (!c->msg->id) {
		reply_error(c->rep, -EINVAL, "request id 0 is reserved for events");
		return -EINVAL;
	}
	if (!op || !op->run) {
		/* An unknown oneof member decodes as BODY__NOT_SET. */
		reply_error(c->rep, -EOPNOTSUPP, "unknown or empty request");
		return -EOPNOTSUPP;
	}
	if (!rate_limiter_take(&s->rate, rate)) {
		req_deny(s, c->rep, -EAGAIN, rate, "over %u requests per second", rate);
		return -EAGAIN;
	}
	if ((op->needs & REQ_NEED_HELLO) && !s->hello_done) {
		reply_error(c->rep, -EPROTO, "the first request must be Hello");
		return -EPROTO;
	}
	return 0;
}

static int need_admin(struct req_ctx *c)
{
	if (req_is_admin(c->s))
		return 0;
	req_deny(c->s, c->rep, -EPERM, 0,
		 "admin request: needs root or a member of [policy] admin_groups");
	return -EPERM;
}

static int need_test(struct req_ctx *c, const struct req_op *op)
{
	const struct backend *be = c->srv->be;

	if (!c->srv->cfg->test_requests) {
		reply_error(c->rep, -EOPNOTSUPP, "test requests are disabled in the configuration");
		return -EOPNOTSUPP;
	}
	if (!op->backend_has(be->ops)) {
		reply_error(c->rep, -EOPNOTSUPP, "the %s backend does not support this request",
			    be->ops->name);
		return -EOPNOTSUPP;
	}
	return 0;
}

static int need_fd(struct req_ctx *c)
{
	if (c->in->fd >= 0)
		return 0;
	reply_error(c->rep, -EINVAL, "%s needs exactly one descriptor (SCM_RIGHTS)",
		    c->msg->body_case == IOMMU_NEST__REQUEST__BODY_ADOPT_DEVICE ? "AdoptDevice"
										: "MapMemory");
	return -EINVAL;
}

/*
 * A device may be attached to a nested HWPT of only one session at a
 * time, and its stage 2 serves one client's memory: to anyone else it is
 * busy until that session lets go or goes away (an orphan's, until it is
 * reclaimed or reaped).
 */
static int need_device(struct req_ctx *c, const struct req_op *op)
{
	const char *device = op->device_of(c->msg);
	struct device_binding *b = hwpt_registry_binding(&c->srv->reg, device);

	if (!b) {
		reply_error(c->rep, -ENODEV, "device \"%s\" is not configured", device);
		return -ENODEV;
	}
	if (!policy_allows(&b->dev->allow, &c->s->cred)) {
		req_deny(c->s, c->rep, -EPERM, 0, "uid %u may not use device %s",
			 (unsigned)c->s->cred.uid, device);
		return -EPERM;
	}
	/*
	 * A device a former client still drives: retried here, busy while it
	 * lasts. Asked of whoever has the device now: with VM contexts the
	 * context let it go and the root could not bind it while that fd
	 * lived.
	 */
	if (b->stale && req_be_holding(c, b)->ops->device_release &&
	    req_be_holding(c, b)->ops->device_release(req_be_holding(c, b), device) == 0) {
		b->stale = false;
		/* The fresh binding goes in the fd store in place of the old one. */
		restart_save(c->srv->rs);
	}
	if (b->stale) {
		reply_error(c->rep, -EBUSY,
			    "device \"%s\": a former client still keeps its VFIO fd open; it "
			    "serves nobody until that fd is closed",
			    device);
		return -EBUSY;
	}
	if ((op->needs & REQ_NEED_FREE_DEV) && hwpt_registry_held_by_other(b, c->s)) {
		reply_error(c->rep, -EBUSY, "device \"%s\" is in use by another client", device);
		return -EBUSY;
	}
	/*
	 * A claim puts the device in the client's VM context, where the
	 * request then works on it. Requests that do not claim (UnmapMemory,
	 * CloseDevice, GetHwInfo) find it there or answer from the root.
	 */
	if ((op->needs & REQ_NEED_FREE_DEV) && !(op->needs & REQ_CLAIM_IN_HANDLER) &&
	    req_claim_device(c, b))
		return c->rep->status;
	c->dev = b;
	return 0;
}

static int need_own_hwpt(struct req_ctx *c, const struct req_op *op)
{
	uint32_t id = op->hwpt_of(c->msg);

	c->hwpt = hwpt_registry_lookup_owned(&c->srv->reg, id, c->s);
	if (c->hwpt)
		return 0;
	reply_error(c->rep, -ENOENT, "hwpt %u: no such HWPT", id);
	return -ENOENT;
}

/* What the handler needs, in the order the handlers used to check it. */
static int resolve(struct req_ctx *c, const struct req_op *op)
{
	int rc = 0;

	if (op->needs & REQ_NEED_ADMIN)
		rc = need_admin(c);
	if (!rc && (op->needs & REQ_NEED_TEST))
		rc = need_test(c, op);
	if (!rc && (op->needs & REQ_NEED_FD))
		rc = need_fd(c);
	if (!rc && (op->needs & REQ_NEED_DEVICE))
		rc = need_device(c, op);
	if (!rc && (op->needs & REQ_NEED_OWN_HWPT))
		rc = need_own_hwpt(c, op);
	return rc;
}

/*
 * Requests of one session take effect in order: anything but another
 * invalidation waits until the session's queued invalidations ran, and a
 * Destroy until those of an admin queued on the HWPT ran.
 */
static bool needs_batch_first(const struct session *s, const IommuNest__Request *m)
{
	const struct hwpt_entry *e;

	if (m->body_case == IOMMU_NEST__REQUEST__BODY_INVALIDATE)
		/* One on a vIOMMU is answered at once: what came before goes first. */
		return s->n_pending &&
		       m->invalidate->object_kind == IOMMU_NEST__OBJECT_KIND__OBJECT_VIOMMU;
	if (s->n_pending)
		return true;
	if (m->body_case != IOMMU_NEST__REQUEST__BODY_DESTROY)
		return false;
	e = hwpt_registry_lookup_owned(&s->srv->reg, m->destroy->hwpt_id, s);
	return e && e->pending_head;
}

int req_dispatch(struct session *s, struct req_in *in, struct req_reply *out)
{
	unsigned kind = in->msg->body_case;
	const struct req_op *op = kind < sizeof(ops) / sizeof(ops[0]) ? &ops[kind] : NULL;
	struct req_ctx c = {
	    .s = s, .srv = s->srv, .in = in, .msg = in->msg, .out = out, .rep = &out->rep};
	int rc = 0;

	if (!in->admitted) {
		out->rep.id = in->msg->id;
		c.srv->stats.requests++;
		s->n_requests++;
		rc = admit(&c, op);
		in->admitted = !rc;
		if (!rc && needs_batch_first(s, in->msg))
			return REQ_RUN_BATCH;
	}
	if (!rc)
		rc = resolve(&c, op);
	if (!rc)
		rc = op->run(&c);
	/* A device the client no longer holds leaves its context, free for the next. */
	if (c.dev)
		req_settle_device(s, c.dev);
	/* An Invalidate's reply is counted when its results are encoded (net/flush.c). */
	if (rc != REQ_DEFERRED && rc != REQ_INV_DONE)
		req_count_error(c.srv, out->rep.status);
	return rc;
}
