/* SPDX-License-Identifier: MIT */
/*
 * vEVENTQs (Linux 7.x): AllocVeventq, DestroyObject of one, TriggerVevent
 * (test-only: IOMMU_TEST_OP_TRIGGER_VEVENT). The kernel decides what is
 * allowed and its errnos pass through (a second one of a type on the
 * vIOMMU -EEXIST, depth outside 1..2^19 -EINVAL, type DEFAULT
 * -EOPNOTSUPP); the daemon's own rules come first: a 6.12 kernel has none
 * (-ENOTTY, whatever the request names), a client names only its own
 * vIOMMU and vEVENTQ (anyone else's id is -ENOENT), and a type whose
 * record size the daemon does not know is -EOPNOTSUPP (the kernel takes
 * any type, but nothing could parse its records). The records reach the
 * client as events (net/vevents.c). A vEVENTQ is in the state file (and
 * its fd in the fd store) before its reply leaves, and out of it before
 * DestroyObject's does (persist/veventqs.c).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "backend/veventq_uapi.h"
#include "net/server.h"
#include "net/session.h"
#include "persist/restart.h"
#include "req/handlers.h"
#include "state/veventqs.h"
#include "state/viommus.h"
#include "util/log.h"

/* TriggerVevent.count at most: a test's flood, not an unbounded loop in one pass. */
#define TRIGGER_VEVENT_MAX 65536

static bool no_veventq(struct req_ctx *c, struct backend *be)
{
	struct backend_caps caps = {0};

	be->ops->get_caps(be, &caps);
	if (caps.rules == KERNEL_RULES_7 && be->ops->veventq_alloc)
		return false;
	reply_error(c->rep, -ENOTTY, "the kernel has no vEVENTQ objects (Linux 6.14+)");
	return true;
}

int handle_alloc_veventq(struct req_ctx *c)
{
	const IommuNest__AllocVeventq *m = c->msg->alloc_veventq;
	struct backend *be = req_be(c); /* the client's VM context, or the root */
	struct veventq v = {
	    .viommu_id = m->viommu_id, .type = m->type, .depth = m->depth, .be = be, .owner = c->s};
	struct veventq *e;
	int rc;

	if (no_veventq(c, be))
		return -ENOTTY;
	if (!vobj_lookup_owned(&c->srv->reg.vobjs, VOBJ_VIOMMU, m->viommu_id, c->s)) {
		reply_error(c->rep, -ENOENT, "viommu %u: no such vIOMMU", m->viommu_id);
		return -ENOENT;
	}
	/* DEFAULT is the kernel's -EOPNOTSUPP; others it would take, but nobody could read. */
	if (m->type != NESTD_VEVENTQ_TYPE_DEFAULT && !nestd_vevent_data_len(m->type)) {
		reply_error(c->rep, -EOPNOTSUPP,
			    "vEVENTQ type %#x: the daemon does not know its record size", m->type);
		return -EOPNOTSUPP;
	}
	rc = be->ops->veventq_alloc(be, m->viommu_id, m->type, m->depth, &v.q);
	if (rc == -ENOTTY) {
		/* 6.13 has vIOMMUs but no vEVENTQs: the same answer as 6.12's. */
		reply_error(c->rep, rc, "the kernel has no vEVENTQ objects (Linux 6.14+)");
		return rc;
	}
	if (rc) {
		reply_error(c->rep, rc, "IOMMU_VEVENTQ_ALLOC (viommu %u, type %#x, depth %u): %s",
			    m->viommu_id, m->type, m->depth, strerror(-rc));
		return rc;
	}
	v.id = v.q.id;
	v.owner_uid = c->s->cred.uid;
	v.owner_session = restart_session_key(c->srv->rs, c->s);
	v.no = ++c->srv->reg.veventqs.last_no;
	e = veventq_add(&c->srv->reg.veventqs, &v);
	rc = e ? c->srv->veventq_watch(c->s, e) : -ENOMEM;
	if (rc) {
		if (e)
			veventq_destroy(&c->srv->reg.veventqs, e);
		else
			be->ops->veventq_free(be, &v.q);
		reply_error(c->rep, rc, "out of memory");
		return rc;
	}
	restart_save(c->srv->rs); /* in the state file before the reply says it exists */
	log_info("session %llu: veventq %u (type %#x, depth %u) on viommu %u",
		 (unsigned long long)c->s->id, v.id, v.type, v.depth, v.viommu_id);
	iommu_nest__alloc_veventq_reply__init(&c->out->body.alloc_veventq);
	c->out->body.alloc_veventq.veventq_id = v.id;
	c->rep->body_case = IOMMU_NEST__REPLY__BODY_ALLOC_VEVENTQ;
	c->rep->alloc_veventq = &c->out->body.alloc_veventq;
	return 0;
}

int req_destroy_veventq(struct req_ctx *c)
{
	const IommuNest__DestroyObject *m = c->msg->destroy_object;
	struct veventq *v = veventq_lookup_owned(&c->srv->reg.veventqs, m->id, c->s);
	int rc;

	if (!v) {
		reply_error(c->rep, -ENOENT, "object %u: no such vEVENTQ", m->id);
		return -ENOENT;
	}
	/*
	 * Nothing holds a vEVENTQ but its fd, which goes first (the fd
	 * store's copy too): the kernel's answer is final.
	 */
	restart_veventq_release(c->srv->rs, v);
	rc = veventq_destroy(&c->srv->reg.veventqs, v);
	restart_save(c->srv->rs); /* the entry went whatever the kernel said */
	if (rc) {
		log_warn("session %llu: IOMMU_DESTROY of veventq %u: %s",
			 (unsigned long long)c->s->id, m->id, strerror(-rc));
		reply_error(c->rep, rc, "IOMMU_DESTROY of veventq %u: %s", m->id, strerror(-rc));
		return rc;
	}
	iommu_nest__destroy_object_reply__init(&c->out->body.destroy_object);
	c->out->body.destroy_object.id = m->id;
	c->rep->body_case = IOMMU_NEST__REPLY__BODY_DESTROY_OBJECT;
	c->rep->destroy_object = &c->out->body.destroy_object;
	return 0;
}

bool has_trigger_vevent(const struct backend_ops *ops)
{
	return ops->trigger_vevent != NULL;
}

int handle_trigger_vevent(struct req_ctx *c)
{
	const IommuNest__TriggerVevent *m = c->msg->trigger_vevent;
	struct backend *be = req_be(c);
	uint32_t n = m->count ? m->count : 1;
	int rc = 0;

	if (n > TRIGGER_VEVENT_MAX) {
		reply_error(c->rep, -EINVAL, "count %u is over %u", n, TRIGGER_VEVENT_MAX);
		c->rep->limit = TRIGGER_VEVENT_MAX;
		return -EINVAL;
	}
	for (uint32_t i = 0; i < n && !rc; i++)
		rc = be->ops->trigger_vevent(be, m->device);
	if (rc)
		reply_error(c->rep, rc, "IOMMU_TEST_OP_TRIGGER_VEVENT on %s: %s", m->device,
			    strerror(-rc));
	return rc;
}
