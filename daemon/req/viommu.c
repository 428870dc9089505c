/* SPDX-License-Identifier: MIT */
/*
 * vIOMMU and vDEVICE objects (Linux 7.x): AllocViommu, AllocVdevice,
 * DestroyObject, and Invalidate on a vIOMMU id. The kernel decides what is
 * allowed (its errnos pass through: 6.12 answers -ENOTTY); the daemon's own
 * rules come first: a client names only its own objects (anyone else's id
 * is -ENOENT, as an id that does not exist), a device another client holds
 * is -EBUSY, and the objects count against the HWPT quota.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "backend/viommu_uapi.h"
#include "inv/validate.h"
#include "net/server.h"
#include "net/session.h"
#include "persist/restart.h"
#include "req/handlers.h"
#include "state/viommus.h"
#include "util/log.h"

static uint32_t owned_count(const struct vobj_table *t, const struct session *s)
{
	uint32_t n = 0;

	for (const struct vobj *v = t->head; v; v = v->next)
		n += v->owner == s;
	return n;
}

/* The daemon's rules before any object is made on a device (the table checked policy). */
static int vobj_allowed(struct req_ctx *c, const char *device)
{
	struct server *srv = c->srv;
	uint32_t max = srv->cfg->quota.max_hwpts;

	if (vobj_device_held_by_other(&srv->reg.vobjs, device, c->s)) {
		reply_error(c->rep, -EBUSY, "device \"%s\" is in use by another client", device);
		return -EBUSY;
	}
	if (quota_reached((uint64_t)c->s->n_owned + owned_count(&srv->reg.vobjs, c->s), max)) {
		req_deny(c->s, c->rep, -EDQUOT, max, "HWPT quota of %u reached", max);
		return -EDQUOT;
	}
	return 0;
}

static int backend_answer(struct req_ctx *c, int rc, const char *what)
{
	if (rc == -ENOTTY)
		reply_error(c->rep, rc, "%s: the kernel has no vIOMMU objects (Linux 6.13+)", what);
	else if (rc)
		reply_error(c->rep, rc, "%s: %s", what, strerror(-rc));
	return rc;
}

int handle_alloc_viommu(struct req_ctx *c)
{
	const IommuNest__AllocViommu *m = c->msg->alloc_viommu;
	struct backend *be = req_be(c); /* the client's VM context, or the root */
	struct vobj v = {.kind = VOBJ_VIOMMU,
			 .type = m->type,
			 .owner = c->s,
			 .be = be,
			 .owner_uid = c->s->cred.uid,
			 .owner_gid = c->s->cred.gid,
			 .owner_pid = c->s->cred.pid,
			 .owner_session = restart_session_key(c->srv->rs, c->s)};
	struct vobj *stored;
	int rc = vobj_allowed(c, m->device);

	if (rc)
		return rc;
	rc = be->ops->viommu_alloc
		 ? be->ops->viommu_alloc(be, m->device, m->type, m->flags, &v.id, &v.parent_id)
		 : -ENOTTY;
	if (rc)
		return backend_answer(c, rc, "IOMMU_VIOMMU_ALLOC");
	/* The resume token is a capability: from the kernel's CSPRNG only (as a HWPT's). */
	if (getrandom(v.token, sizeof(v.token), 0) != (ssize_t)sizeof(v.token)) {
		be->ops->destroy_object(be, v.id);
		reply_error(c->rep, -EIO, "no random bytes for the resume token");
		return -EIO;
	}
	v.has_token = true;
	snprintf(v.device, sizeof(v.device), "%s", m->device);
	if (v.type == NESTD_VIOMMU_TYPE_ARM_SMMUV3) /* once, not per request */
		v.smmu_range = req_smmuv3_host_range(be, m->device);
	stored = vobj_add(&c->srv->reg.vobjs, &v);
	if (!stored) {
		be->ops->destroy_object(be, v.id);
		reply_error(c->rep, -ENOMEM, "out of memory");
		return -ENOMEM;
	}
	log_info("session %llu: viommu %u (type %#x) on %s", (unsigned long long)c->s->id, v.id,
		 v.type, v.device);
	restart_save(c->srv->rs); /* in the state file before the reply says it exists */
	iommu_nest__alloc_viommu_reply__init(&c->out->body.alloc_viommu);
	c->out->body.alloc_viommu.viommu_id = v.id;
	c->out->body.alloc_viommu.parent_id = v.parent_id;
	/* Only a daemon that keeps it across a restart hands it out. */
	if (c->srv->rs && c->srv->rs->enabled) {
		c->out->body.alloc_viommu.resume_token.data = stored->token;
		c->out->body.alloc_viommu.resume_token.len = sizeof(stored->token);
	}
	c->rep->body_case = IOMMU_NEST__REPLY__BODY_ALLOC_VIOMMU;
	c->rep->alloc_viommu = &c->out->body.alloc_viommu;
	return 0;
}

int handle_alloc_vdevice(struct req_ctx *c)
{
	const IommuNest__AllocVdevice *m = c->msg->alloc_vdevice;
	struct backend *be = req_be(c); /* the client's VM context, or the root */
	struct vobj *vi = vobj_lookup_owned(&c->srv->reg.vobjs, VOBJ_VIOMMU, m->viommu_id, c->s);
	struct vobj v = {.kind = VOBJ_VDEVICE,
			 .viommu_id = m->viommu_id,
			 .virt_id = m->virt_id,
			 .owner = c->s,
			 .be = be,
			 .owner_uid = c->s->cred.uid,
			 .owner_gid = c->s->cred.gid,
			 .owner_pid = c->s->cred.pid,
			 .owner_session = restart_session_key(c->srv->rs, c->s)};
	int rc;

	if (!vi) {
		reply_error(c->rep, -ENOENT, "viommu %u: no such vIOMMU", m->viommu_id);
		return -ENOENT;
	}
	rc = vobj_allowed(c, m->device);
	if (rc)
		return rc;
	/* The id it will get, in the state file before the kernel makes it. */
	if (be->ops->vdevice_intent && be->ops->vdevice_intent(be) == 0)
		restart_save(c->srv->rs);
	rc = be->ops->vdevice_alloc
		 ? be->ops->vdevice_alloc(be, m->viommu_id, m->device, m->virt_id, &v.id)
		 : -ENOTTY;
	if (rc) {
		restart_save(c->srv->rs); /* the intent is void: no id the file names */
		return backend_answer(c, rc, "IOMMU_VDEVICE_ALLOC");
	}
	snprintf(v.device, sizeof(v.device), "%s", m->device);
	if (!vobj_add(&c->srv->reg.vobjs, &v)) {
		be->ops->destroy_object(be, v.id);
		reply_error(c->rep, -ENOMEM, "out of memory");
		return -ENOMEM;
	}
	restart_save(c->srv->rs);
	iommu_nest__alloc_vdevice_reply__init(&c->out->body.alloc_vdevice);
	c->out->body.alloc_vdevice.vdevice_id = v.id;
	c->rep->body_case = IOMMU_NEST__REPLY__BODY_ALLOC_VDEVICE;
	c->rep->alloc_vdevice = &c->out->body.alloc_vdevice;
	return 0;
}

int handle_destroy_object(struct req_ctx *c)
{
	const IommuNest__DestroyObject *m = c->msg->destroy_object;
	struct backend *be = req_be(c); /* the client's VM context, or the root */
	struct vobj *v;
	int rc;

	if (m->kind == IOMMU_NEST__OBJECT_KIND__OBJECT_VEVENTQ)
		return req_destroy_veventq(c);
	if (m->kind != IOMMU_NEST__OBJECT_KIND__OBJECT_VIOMMU &&
	    m->kind != IOMMU_NEST__OBJECT_KIND__OBJECT_VDEVICE) {
		reply_error(
		    c->rep, -EINVAL,
		    "DestroyObject takes a vIOMMU, a vDEVICE or a vEVENTQ (Destroy: HWPTs)");
		return -EINVAL;
	}
	v = vobj_lookup_owned(&c->srv->reg.vobjs, (enum vobj_kind)m->kind, m->id, c->s);
	if (!v) {
		reply_error(c->rep, -ENOENT, "object %u: no such %s", m->id,
			    m->kind == IOMMU_NEST__OBJECT_KIND__OBJECT_VIOMMU ? "vIOMMU"
									      : "vDEVICE");
		return -ENOENT;
	}
	/* The kernel's answer: -EBUSY for a vIOMMU with vDEVICEs or nested HWPTs on it. */
	if (v->be) /* where it lives (a reclaimed one: where it was restored) */
		be = v->be;
	rc = be->ops->destroy_object ? be->ops->destroy_object(be, v->id) : -ENOTTY;
	if (rc)
		return backend_answer(c, rc, "IOMMU_DESTROY");
	vobj_remove(&c->srv->reg.vobjs, v);
	restart_save(c->srv->rs);
	iommu_nest__destroy_object_reply__init(&c->out->body.destroy_object);
	c->out->body.destroy_object.id = m->id;
	c->rep->body_case = IOMMU_NEST__REPLY__BODY_DESTROY_OBJECT;
	c->rep->destroy_object = &c->out->body.destroy_object;
	return 0;
}

/* Entries [from, handled) done, the next one failed with rc: what the kernel said. */
static uint32_t record(struct inv_request *r, uint32_t from, uint32_t handled, int rc)
{
	for (uint32_t i = from; i < from + handled; i++)
		r->res[i] = (struct inv_entry_result){.state = INV_DONE};
	if (!rc)
		return from + handled;
	r->res[from + handled] = (struct inv_entry_result){.state = INV_FAILED, .error = rc};
	if (!r->status)
		r->status = rc;
	return from + handled + 1;
}

/*
 * One submission per run of entries, in the guest's order (one request is
 * one guest sync batch: nothing moves across it). The kernel stops at the
 * first failing entry; with continue-past-errors the rest goes again from
 * the entry after it. The kernel's entry_num counts what it handled.
 */
static void submit(struct session *s, struct inv_request *r)
{
	struct server *srv = s->srv;
	struct backend *be = req_be_of(s);
	uint32_t i = 0;

	do {
		struct backend_inv inv = {.hwpt_id = r->hwpt_id,
					  .data_type = r->data_type,
					  .reserved = r->reserved,
					  .entry_len = r->entry_len,
					  .entry_num = r->n - i,
					  .entries = (const uint8_t *)r->entries +
						     (size_t)i * r->entry_len};
		int rc = be->ops->invalidate(be, &inv);

		srv->stats.submissions++;
		srv->stats.entries_submitted += r->n - i;
		r->entries_submitted += r->n - i;
		/* A failure always leaves an entry the kernel did not handle. */
		if (rc && inv.entry_num >= r->n - i)
			inv.entry_num = r->n - i - 1;
		i = record(r, i, inv.entry_num, rc);
		/*
		 * Success short of the whole array is no answer the kernel
		 * gives: what it did not count stays not attempted.
		 */
		if ((rc && !r->cont) || (!rc && i < r->n))
			break;
	} while (i < r->n);
	for (r->entries_handled = 0; r->entries_handled < r->n; r->entries_handled++)
		if (r->res[r->entries_handled].state != INV_DONE)
			break;
	for (uint32_t k = 0; k < r->n; k++)
		srv->stats.entries_failed += r->res[k].state == INV_FAILED;
}

int req_viommu_invalidate(struct session *s, struct inv_request *r)
{
	const struct vobj *v;
	int rc;

	for (uint32_t i = 0; i < r->n; i++)
		r->res[i] = (struct inv_entry_result){.state = INV_NOT_ATTEMPTED};
	r->status = 0;
	r->entries_handled = 0;
	/* The core's order: the array's bounds, then the object. */
	rc = inv_validate_header(r);
	v = rc ? NULL : vobj_lookup_owned(&s->srv->reg.vobjs, VOBJ_VIOMMU, r->hwpt_id, s);
	if (!rc && !v)
		rc = -ENOENT;
	if (rc) {
		r->status = rc;
		return REQ_INV_DONE;
	}
	/* Its commands are screened and coalesced first (viommu_smmuv3.c). */
	if (v->type == NESTD_VIOMMU_TYPE_ARM_SMMUV3)
		req_viommu_smmuv3_invalidate(s, r, v);
	else if (r->n)
		submit(s, r);
	else {
		/* The empty array: the driver's type check, nothing to do. */
		struct backend_inv inv = {
		    .hwpt_id = r->hwpt_id, .data_type = r->data_type, .entry_len = r->entry_len};

		r->status = req_be_of(s)->ops->invalidate(req_be_of(s), &inv);
	}
	return REQ_INV_DONE;
}
