/* SPDX-License-Identifier: MIT */
/*
 * HWPT lifetime: Probe, Alloc, Destroy, Attach, Detach, Reclaim. Every
 * change is written to the state file (persist/state_save.c) before its reply
 * leaves, so a client never holds a resume token the next instance does
 * not know. The table resolved the owned HWPT (Probe) and the device
 * (Attach, Detach) already.
 */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "backend/iommufd_uapi.h"
#include "backend/viommu_uapi.h"
#include "util/log.h"
#include "persist/restart.h"
#include "net/server.h"
#include "net/session.h"
#include "req/handlers.h"
#include "state/faults.h"
#include "state/viommus.h"

/*
 * The nested HWPT of s that sits on nest parent id, if any: the client
 * learned id from its AllocReply, so it may name it (Attach to it,
 * Destroy it) and gets the kernel's answer.
 */
static struct hwpt_entry *child_of_parent(struct session *s, uint32_t id)
{
	for (struct hwpt_entry *e = s->owned; e; e = e->next_owned)
		if (e->parent_id == id)
			return e;
	return NULL;
}

int handle_probe(struct req_ctx *c)
{
	struct backend *be = c->hwpt->be;
	struct backend_inv inv = {.hwpt_id = c->hwpt->id, .data_type = c->msg->probe->data_type};
	int rc;

	/* The kernel's own probe: an empty array of the asked type. */
	rc = be->ops->invalidate(be, &inv);
	if (rc)
		reply_error(c->rep, rc, "hwpt %u does not take invalidation data type %#x",
			    inv.hwpt_id, inv.data_type);
	return rc;
}

/* Turns the Alloc oneof into the kernel's type-specific data. */
static void alloc_data(const IommuNest__Alloc *a, struct backend_alloc *ba,
		       struct iommu_hwpt_vtd_s1 *vtd, struct iommu_hwpt_selftest *st,
		       struct nestd_hwpt_arm_smmuv3 *ste)
{
	ba->data_type = a->data_type;
	ba->flags = a->flags;
	ba->fault_id = 0;
	switch (a->data_case) {
	case IOMMU_NEST__ALLOC__DATA_VTD_S1:
		memset(vtd, 0, sizeof(*vtd));
		vtd->flags = a->vtd_s1->flags;
		vtd->pgtbl_addr = a->vtd_s1->pgtbl_addr;
		vtd->addr_width = a->vtd_s1->addr_width;
		vtd->__reserved = a->vtd_s1->reserved;
		ba->data = vtd;
		ba->data_len = sizeof(*vtd);
		break;
	case IOMMU_NEST__ALLOC__DATA_SELFTEST:
		st->iotlb = a->selftest->iotlb;
		ba->data = st;
		ba->data_len = sizeof(*st);
		break;
	case IOMMU_NEST__ALLOC__DATA_SMMUV3: /* two words: alloc_allowed() checked */
		ste->ste[0] = htole64(a->smmuv3->ste[0]);
		ste->ste[1] = htole64(a->smmuv3->ste[1]);
		ba->data = ste;
		ba->data_len = sizeof(*ste);
		break;
	default:
		ba->data = NULL;
		ba->data_len = 0;
	}
}

static int record_hwpt(struct session *s, const IommuNest__Alloc *a, uint32_t id,
		       uint32_t parent_id, struct hwpt_entry **out)
{
	struct server *srv = s->srv;
	struct hwpt_entry e = {.id = id,
			       .parent_id = parent_id,
			       .viommu_id = a->viommu_id,
			       .data_type = a->data_type,
			       .owner = s,
			       .be = req_be_of(s),
			       .owner_uid = s->cred.uid,
			       .owner_gid = s->cred.gid,
			       .owner_pid = s->cred.pid,
			       .owner_session = restart_session_key(srv->rs, s)};
	struct hwpt_entry *stored;

	if (hwpt_inv_type_for(a->data_type, &e.inv_type))
		return -EOPNOTSUPP;
	/* The resume token is a capability: from the kernel's CSPRNG only. */
	if (getrandom(e.token, sizeof(e.token), 0) != (ssize_t)sizeof(e.token))
		return errno ? -errno : -EIO;
	snprintf(e.device, sizeof(e.device), "%s", a->device);
	stored = hwpt_registry_add(&srv->reg, &e);
	if (!stored)
		return -ENOMEM;
	stored->next_owned = s->owned;
	s->owned = stored;
	s->n_owned++;
	srv->stats.hwpts_active++;
	*out = stored;
	return 0;
}

/* Everything Alloc checks before the backend: device, policy, quota, data type. */
static int alloc_allowed(struct req_ctx *c, const IommuNest__Alloc *a)
{
	struct server *srv = c->srv;
	struct session *s = c->s;
	IommuNest__Reply *rep = c->rep;
	const struct config_device *dev = config_find_device(srv->cfg, a->device);
	struct device_binding *b;

	if (!dev) {
		reply_error(rep, -ENODEV, "device \"%s\" is not configured", a->device);
		return rep->status;
	}
	if (!policy_allows(&dev->allow, &s->cred)) {
		req_deny(s, rep, -EPERM, 0, "uid %u may not use device %s", (unsigned)s->cred.uid,
			 a->device);
		return rep->status;
	}
	/*
	 * Like Attach and MapMemory: a device another client holds is busy.
	 * A HWPT on it would sit on that client's stage 2 (its guest memory).
	 */
	b = hwpt_registry_binding(&srv->reg, a->device);
	if (b && hwpt_registry_held_by_other(b, s)) {
		reply_error(rep, -EBUSY, "device \"%s\" is in use by another client", a->device);
		return rep->status;
	}
	/* The HWPT goes on the device's nest parent in the client's VM context. */
	if (b && req_claim_device(c, b))
		return rep->status;
	c->dev = b; /* the table takes it out of the context again if the Alloc fails */
	if (quota_reached(s->n_owned, srv->cfg->quota.max_hwpts)) {
		req_deny(s, rep, -EDQUOT, srv->cfg->quota.max_hwpts, "HWPT quota of %u reached",
			 srv->cfg->quota.max_hwpts);
		return rep->status;
	}
	/* hw_pagetable.c iommufd_hwpt_alloc(): type NONE with data is -EINVAL. */
	if (a->data_type == IOMMU_HWPT_DATA_NONE &&
	    a->data_case != IOMMU_NEST__ALLOC__DATA__NOT_SET) {
		reply_error(rep, -EINVAL, "data type NONE takes no data");
		return rep->status;
	}
	if (a->data_type == IOMMU_HWPT_DATA_NONE) {
		reply_error(rep, -EOPNOTSUPP, "only nested HWPTs are brokered (data type NONE)");
		return rep->status;
	}
	/* The wire's STE is the uAPI's two words; any other count is no STE. */
	if (a->data_case == IOMMU_NEST__ALLOC__DATA_SMMUV3 && a->smmuv3->n_ste != 2) {
		reply_error(rep, -EINVAL, "SmmuV3Data.ste holds the STE's 2 words, not %zu",
			    a->smmuv3->n_ste);
		return rep->status;
	}
	return 0;
}

int handle_alloc(struct req_ctx *c)
{
	const IommuNest__Alloc *a = c->msg->alloc;
	struct server *srv = c->srv;
	struct session *s = c->s;
	IommuNest__Reply *rep = c->rep;
	IommuNest__AllocReply *ar = &c->out->body.alloc;
	struct iommu_hwpt_vtd_s1 vtd;
	struct iommu_hwpt_selftest st;
	struct nestd_hwpt_arm_smmuv3 ste;
	struct backend_alloc ba;
	struct hwpt_entry *e;
	uint32_t id = 0, parent = 0;
	struct backend *be;
	int rc = alloc_allowed(c, a);

	if (rc)
		return rc;
	be = req_be(c);
	/* A device on a plain paging HWPT: the kernel's answer, with its reason. */
	rc = be->ops->nest_err ? be->ops->nest_err(be, a->device) : 0;
	if (rc) {
		reply_error(rep, rc,
			    "IOMMU_HWPT_ALLOC on %s: the host IOMMU cannot nest: "
			    "IOMMU_HWPT_ALLOC_NEST_PARENT answered %s",
			    a->device, rc == -EOPNOTSUPP ? "EOPNOTSUPP" : strerror(-rc));
		return rep->status;
	}
	alloc_data(a, &ba, &vtd, &st, &ste);
	/* A vIOMMU as the parent: the client's own (state/viommus.h), else -ENOENT. */
	ba.viommu_id = a->viommu_id;
	if (a->viommu_id && !vobj_lookup_owned(&srv->reg.vobjs, VOBJ_VIOMMU, a->viommu_id, s)) {
		reply_error(rep, -ENOENT, "viommu %u: no such vIOMMU", a->viommu_id);
		return rep->status;
	}
	/*
	 * Fault delivery: the client asks with the kernel's flag, the daemon
	 * names the fault object (its own per client, made on first use).
	 */
	if (a->flags & IOMMU_HWPT_FAULT_ID_VALID) {
		rc = srv->events_open(s);
		if (rc) {
			reply_error(rep, rc, "IOMMU_FAULT_QUEUE_ALLOC: %s", strerror(-rc));
			return rep->status;
		}
		ba.fault_id = s->faults->q.id;
	}
	rc = be->ops->alloc_nested(be, a->device, &ba, &id, &parent);
	if (rc) {
		reply_error(rep, rc, "IOMMU_HWPT_ALLOC on %s: %s", a->device, strerror(-rc));
		return rep->status;
	}
	rc = record_hwpt(s, a, id, parent, &e);
	if (rc) {
		be->ops->destroy(be, id);
		reply_error(rep, rc, "cannot track hwpt: %s", strerror(-rc));
		return rep->status;
	}
	e->fault_id = ba.fault_id; /* saved: a Reclaim brings its queue back */
	log_event(LOG_INFO, LOG_EV_HWPT_ALLOC,
		  LOG_FIELDS(LF_UINT("session", s->id), LF_CRED(s->cred), LF_UINT("hwpt", id),
			     LF_STR("device", a->device), LF_UINT("parent", parent),
			     LF_UINT("data_type", a->data_type)),
		  "hwpt allocated");
	restart_save(srv->rs);
	iommu_nest__alloc_reply__init(ar);
	ar->hwpt_id = id;
	ar->parent_id = parent;
	ar->resume_token.data = e->token;
	ar->resume_token.len = sizeof(e->token);
	rep->body_case = IOMMU_NEST__REPLY__BODY_ALLOC;
	rep->alloc = ar;
	return 0;
}

static void unlink_owned(struct session *s, struct hwpt_entry *e)
{
	for (struct hwpt_entry **pp = &s->owned; *pp; pp = &(*pp)->next_owned)
		if (*pp == e) {
			*pp = e->next_owned;
			s->n_owned--;
			return;
		}
}

int handle_destroy(struct req_ctx *c)
{
	struct server *srv = c->srv;
	struct session *s = c->s;
	IommuNest__Reply *rep = c->rep;
	uint32_t id = c->msg->destroy->hwpt_id;
	struct hwpt_entry *e = hwpt_registry_lookup_owned(&srv->reg, id, s);
	int rc;

	/*
	 * The nest parent under one of the client's HWPTs: the kernel refuses
	 * to destroy it while children (or its device) hold it, -EBUSY, and so
	 * does the backend, which never destroys a parent.
	 */
	if (!e && child_of_parent(s, id)) {
		rc = req_be(c)->ops->destroy(req_be(c), id);
		if (rc)
			reply_error(rep, rc, "hwpt %u: nest parent of nested HWPTs", id);
		return rep->status;
	}
	if (!e)
		reply_error(rep, -ENOENT, "hwpt %u: no such HWPT", id);
	else {
		/* An admin's invalidation on it ran first (the table's needs_batch_first). */
		rc = e->be->ops->destroy(e->be, e->id);
		if (rc) {
			reply_error(rep, rc, "hwpt %u: %s", e->id,
				    rc == -EBUSY ? "a device is attached" : strerror(-rc));
		} else {
			log_event(LOG_INFO, LOG_EV_HWPT_DESTROY,
				  LOG_FIELDS(LF_UINT("session", s->id), LF_CRED(s->cred),
					     LF_UINT("hwpt", e->id), LF_STR("device", e->device)),
				  "hwpt destroyed");
			/* Its unanswered faults went with it (the kernel answers them). */
			if (s->faults)
				client_faults_forget_hwpt(s->faults, e->id);
			unlink_owned(s, e);
			hwpt_registry_remove(&srv->reg, e);
			srv->stats.hwpts_active--;
			restart_save(srv->rs);
		}
	}
	return rep->status;
}

/* Moves the binding to hwpt id (0: the device's nest parent). */
static void binding_move(struct server *srv, struct device_binding *b, struct session *s,
			 uint32_t id)
{
	struct hwpt_entry *old =
	    b->hwpt_id ? hwpt_registry_find(&srv->reg, b->hwpt_be, b->hwpt_id) : NULL;
	struct hwpt_entry *e = id ? hwpt_registry_lookup_owned(&srv->reg, id, s) : NULL;

	if (old)
		old->n_attached--;
	if (e)
		e->n_attached++;
	b->hwpt_id = id;
	b->hwpt_be = e ? e->be : NULL;
	b->owner = id ? s : NULL;
	restart_save(srv->rs);
}

static int attach_parent(struct session *s, struct device_binding *b, const char *device,
			 uint32_t id, IommuNest__Reply *rep)
{
	struct server *srv = s->srv;
	int rc;

	/*
	 * A device attached to its own nest parent is what Detach does to a
	 * selftest device, and the kernel answers 0 (a no-op replace when it
	 * is there already). Nothing changes for a device still on it.
	 */
	if (!b->hwpt_id)
		return rep->status;
	rc = req_be_of(s)->ops->attach(req_be_of(s), device, id);
	if (rc) {
		reply_error(rep, rc, "attach %s to its nest parent %u: %s", device, id,
			    strerror(-rc));
		return rep->status;
	}
	binding_move(srv, b, s, 0);
	return rep->status;
}

int handle_attach(struct req_ctx *c)
{
	const IommuNest__Attach *a = c->msg->attach;
	struct server *srv = c->srv;
	struct session *s = c->s;
	IommuNest__Reply *rep = c->rep;
	struct device_binding *b = c->dev;
	struct hwpt_entry *e, *child;
	int rc;

	e = hwpt_registry_lookup_owned(&srv->reg, a->hwpt_id, s);
	child = e ? NULL : child_of_parent(s, a->hwpt_id);
	/*
	 * Another tenant's id is -ENOENT whoever holds the device; only an
	 * id of the client's own claims it (into the client's VM context).
	 */
	if (!e && !child) {
		reply_error(rep, -ENOENT, "hwpt %u: no such HWPT", a->hwpt_id);
		return rep->status;
	}
	if (req_claim_device(c, b))
		return rep->status;
	if (child && !strcmp(child->device, a->device))
		return attach_parent(s, b, a->device, a->hwpt_id, rep);
	/*
	 * A HWPT translates through the stage 2 it was allocated on: the
	 * nest parent on its device's own IOAS, holding its owner's guest
	 * memory. The kernel lets any device with a compatible domain attach
	 * to it (device.c iommufd_hw_pagetable_attach() only checks the
	 * domain, not whose IOAS it is), so another device would reach that
	 * memory. Refused with the kernel's answer for a domain that does
	 * not fit the device, -EINVAL (iommu.c and intel/nested.c report
	 * incompatible domains so); another device's nest parent likewise.
	 */
	if ((e && strcmp(e->device, a->device)) || (!e && child_of_parent(s, a->hwpt_id))) {
		reply_error(rep, -EINVAL, "hwpt %u does not sit on the stage 2 of %s", a->hwpt_id,
			    a->device);
		return rep->status;
	}
	if (!e) {
		reply_error(rep, -ENOENT, "hwpt %u: no such HWPT", a->hwpt_id);
		return rep->status;
	}
	rc = e->be->ops->attach(e->be, a->device, e->id);
	if (rc) {
		reply_error(rep, rc, "attach %s to hwpt %u: %s", a->device, e->id, strerror(-rc));
		return rep->status;
	}
	/* Attaching replaces the previous nested domain, as in the kernel. */
	binding_move(srv, b, s, e->id);
	return rep->status;
}

int handle_detach(struct req_ctx *c)
{
	const IommuNest__Detach *req = c->msg->detach;
	struct server *srv = c->srv;
	struct session *s = c->s;
	IommuNest__Reply *rep = c->rep;
	struct device_binding *b = c->dev;
	int rc;

	/*
	 * Already on its nest parent: the kernel's detach (a replace with the
	 * parent, or VFIO_DEVICE_DETACH_IOMMUFD_PT) answers 0 and changes
	 * nothing, so the backend is not called.
	 */
	if (!b->hwpt_id)
		return rep->status;
	rc = b->hwpt_be ? b->hwpt_be->ops->detach(b->hwpt_be, req->device)
			: req_be(c)->ops->detach(req_be(c), req->device);
	if (rc) {
		reply_error(rep, rc, "detach %s: %s", req->device, strerror(-rc));
		return rep->status;
	}
	binding_move(srv, b, s, 0);
	return rep->status;
}

/* The devices attached to hwpt id, for ReclaimReply.attached. */
static size_t attached_devices(struct server *srv, const struct hwpt_entry *e, char **names)
{
	size_t n = 0;

	for (uint32_t i = 0; i < srv->reg.n_bindings; i++)
		if (srv->reg.bindings[i].hwpt_id == e->id && srv->reg.bindings[i].hwpt_be == e->be)
			names[n++] = (char *)srv->reg.bindings[i].dev->name;
	return n;
}

/* The devices whose claim s holds, for ReclaimReply.claimed. */
static size_t claimed_devices(struct server *srv, const struct session *s, char **names)
{
	size_t n = 0;

	for (uint32_t i = 0; i < srv->reg.n_bindings; i++)
		if (srv->reg.bindings[i].opener == s)
			names[n++] = (char *)srv->reg.bindings[i].dev->name;
	return n;
}

/*
 * Reclaim of a device claim alone (hwpt_id 0, the held device fd passed):
 * the descriptor is the proof, the claim's uid must be the caller's. One
 * answer for every miss, as for HWPTs.
 */
static int reclaim_device(struct req_ctx *c)
{
	IommuNest__ReclaimReply *rr = &c->out->body.reclaim.rr;
	struct device_binding *b;
	int rc = restart_reclaim_device(c->srv->rs, c->s, c->in->fd, &b);

	if (rc == -EPERM) {
		req_deny(c->s, c->rep, rc, 0, "uid %u may no longer use the device",
			 (unsigned)c->s->cred.uid);
		return rc;
	}
	if (rc == -EBUSY) {
		reply_error(c->rep, rc,
			    "the device is in another VM context than this session's own: a "
			    "session is one VM; reclaim it from a session of its own");
		return rc;
	}
	if (rc) {
		reply_error(c->rep, -ENOENT,
			    "no orphaned device claim of this uid whose binding the passed "
			    "descriptor is");
		return -ENOENT;
	}
	restart_grace_check(c->srv->rs);
	restart_save(c->srv->rs);
	log_event(LOG_NOTICE, LOG_EV_HWPT_RECLAIM,
		  LOG_FIELDS(LF_UINT("session", c->s->id), LF_CRED(c->s->cred),
			     LF_STR("device", b->dev->name)),
		  "device claim reclaimed from the previous instance");
	iommu_nest__reclaim_reply__init(rr);
	rr->device = (char *)b->dev->name;
	rr->claimed = c->out->body.reclaim.claimed;
	rr->n_claimed = claimed_devices(c->srv, c->s, rr->claimed);
	c->rep->body_case = IOMMU_NEST__REPLY__BODY_RECLAIM;
	c->rep->reclaim = rr;
	return 0;
}

/* vEVENTQs that came back with a Reclaim: read again (the kernel queued meanwhile, in order). */
static void watch_reclaimed(struct req_ctx *c)
{
	int rc;

	for (struct veventq *v = c->srv->reg.veventqs.head; v; v = v->next)
		if (v->owner == c->s && !v->watch && (rc = c->srv->veventq_watch(c->s, v)))
			log_err("session %llu: reading its reclaimed veventq %u: %s",
				(unsigned long long)c->s->id, v->id, strerror(-rc));
}

/* Reclaim with hwpt_id 0 and a vIOMMU's token: an owner that had no HWPT. */
static int reclaim_viommu(struct req_ctx *c)
{
	const IommuNest__Reclaim *r = c->msg->reclaim;
	IommuNest__ReclaimReply *rr = &c->out->body.reclaim.rr;
	int rc = restart_reclaim_viommu(c->srv->rs, c->s, r->viommu_id, r->resume_token.data,
					r->resume_token.len);

	if (rc == -EPERM) {
		req_deny(c->s, c->rep, rc, 0, "uid %u may no longer use the device of viommu %u",
			 (unsigned)c->s->cred.uid, r->viommu_id);
		return c->rep->status;
	}
	if (rc == -EBUSY) {
		reply_error(c->rep, rc,
			    "viommu %u is in another VM context than this session's own: a session "
			    "is one VM; reclaim it from a session of its own",
			    r->viommu_id);
		return rc;
	}
	if (rc) {
		reply_error(c->rep, -ENOENT, "viommu %u: no orphaned vIOMMU with this token",
			    r->viommu_id);
		return -ENOENT;
	}
	restart_save(c->srv->rs);
	watch_reclaimed(c);
	log_info("session %llu: viommu %u reclaimed by its token", (unsigned long long)c->s->id,
		 r->viommu_id);
	iommu_nest__reclaim_reply__init(rr);
	rr->viommu_id = r->viommu_id;
	rr->claimed = c->out->body.reclaim.claimed;
	rr->n_claimed = claimed_devices(c->srv, c->s, rr->claimed);
	c->rep->body_case = IOMMU_NEST__REPLY__BODY_RECLAIM;
	c->rep->reclaim = rr;
	return 0;
}

int handle_reclaim(struct req_ctx *c)
{
	const IommuNest__Reclaim *r = c->msg->reclaim;
	IommuNest__ReclaimReply *rr = &c->out->body.reclaim.rr;
	char **names = c->out->body.reclaim.names;
	struct server *srv = c->srv;
	struct session *s = c->s;
	IommuNest__Reply *rep = c->rep;
	struct hwpt_entry *e;
	int rc;

	if (!r->hwpt_id && c->in->fd >= 0)
		return reclaim_device(c);
	if (!r->hwpt_id && r->viommu_id)
		return reclaim_viommu(c);
	rc = restart_reclaim(srv->rs, s, r->hwpt_id, r->resume_token.data, r->resume_token.len, &e);
	if (rc == -EDQUOT) {
		req_deny(s, rep, rc, srv->cfg->quota.max_hwpts, "HWPT quota of %u reached",
			 srv->cfg->quota.max_hwpts);
		return rep->status;
	}
	if (rc == -EPERM) {
		req_deny(s, rep, rc, 0, "uid %u may no longer use the device of hwpt %u",
			 (unsigned)s->cred.uid, r->hwpt_id);
		return rep->status;
	}
	if (rc == -EEXIST) {
		reply_error(rep, rc,
			    "hwpt %u delivers its faults to a queue of the previous instance, and "
			    "this session reads a fault queue of its own already: reclaim before "
			    "allocating fault-capable HWPTs",
			    r->hwpt_id);
		return rep->status;
	}
	if (rc == -EBUSY) {
		/* Only the token's holder gets here: it learns nothing it did not know. */
		reply_error(rep, rc,
			    "hwpt %u is in another VM context than this session's own: a session "
			    "is one VM; reclaim it from a session of its own",
			    r->hwpt_id);
		return rep->status;
	}
	if (rc) {
		/* One answer for a wrong id, a wrong token and a live owner. */
		reply_error(rep, -ENOENT, "hwpt %u: no orphaned HWPT with this token", r->hwpt_id);
		return rep->status;
	}
	restart_save(srv->rs);
	/* vEVENTQs that came with its vIOMMUs: read again. */
	watch_reclaimed(c);
	/* A fault queue that came with it: watched, its unanswered groups sent again. */
	rc = srv->events_resume(s);
	if (rc)
		log_err("session %llu: fault delivery of its reclaimed queue: %s",
			(unsigned long long)s->id, strerror(-rc));
	log_event(LOG_NOTICE, LOG_EV_HWPT_RECLAIM,
		  LOG_FIELDS(LF_UINT("session", s->id), LF_CRED(s->cred), LF_UINT("hwpt", e->id),
			     LF_STR("device", e->device), LF_UINT("parent", e->parent_id)),
		  "hwpt reclaimed from the previous instance");
	iommu_nest__reclaim_reply__init(rr);
	rr->hwpt_id = e->id;
	rr->parent_id = e->parent_id;
	rr->device = e->device;
	rr->data_type = e->data_type;
	rr->attached = names;
	rr->n_attached = attached_devices(srv, e, names);
	rr->claimed = c->out->body.reclaim.claimed;
	rr->n_claimed = claimed_devices(srv, s, rr->claimed);
	rep->body_case = IOMMU_NEST__REPLY__BODY_RECLAIM;
	rep->reclaim = rr;
	return 0;
}
