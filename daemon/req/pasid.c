// SPDX-License-Identifier: MIT
/*
 * AttachPasid, DetachPasid (Linux 7.x): a HWPT of the client on a PASID of
 * a device it holds, as QEMU's VT-d emulation attaches the guest's PASIDs
 * above 0. The table resolved the device (free or the client's); the
 * kernel (or the sim, with its rules) answers everything about the PASID
 * and the domains, the daemon only says which HWPTs the client may name:
 * its own nested HWPTs and the nest parents under them, on their own
 * device (another device's stage 2 would be another client's memory, as
 * for Attach). The attachments are kept in state/pasids.c so that a
 * disconnect takes them off before the HWPTs are destroyed, and in the
 * state file before either reply leaves (persist/pasids.c).
 */
#include <errno.h>
#include <string.h>

#include "backend/pasid_uapi.h"
#include "net/server.h"
#include "net/session.h"
#include "persist/restart.h"
#include "req/handlers.h"
#include "state/pasids.h"
#include "util/log.h"

/* A HWPT of s whose nest parent is id: the client learned id from its AllocReply. */
static struct hwpt_entry *child_on_parent(struct session *s, uint32_t id)
{
	for (struct hwpt_entry *e = s->owned; e; e = e->next_owned)
		if (e->parent_id == id)
			return e;
	return NULL;
}

/* PASID 0 is IOMMU_NO_PASID: the RID, which Attach and Detach move (iommu.c refuses it so too). */
static int refuse_rid(IommuNest__Reply *rep, uint32_t pasid)
{
	if (pasid != NESTD_NO_PASID)
		return 0;
	reply_error(rep, -EINVAL,
		    "PASID 0 is the device's RID (IOMMU_NO_PASID): use Attach/Detach");
	return rep->status;
}

int handle_attach_pasid(struct req_ctx *c)
{
	const IommuNest__AttachPasid *a = c->msg->attach_pasid;
	struct server *srv = c->srv;
	struct session *s = c->s;
	IommuNest__Reply *rep = c->rep;
	struct device_binding *b = c->dev;
	struct hwpt_entry *e, *child = NULL;
	struct pasid_attach *p;
	struct backend *be;
	int rc;

	if (refuse_rid(rep, a->pasid))
		return rep->status;
	e = hwpt_registry_lookup_owned(&srv->reg, a->hwpt_id, s);
	if (!e)
		child = child_on_parent(s, a->hwpt_id);
	/* Another tenant's id is -ENOENT, as for Attach: nothing says it exists. */
	if (!e && !child) {
		reply_error(rep, -ENOENT, "hwpt %u: no such HWPT", a->hwpt_id);
		return rep->status;
	}
	if (req_claim_device(c, b))
		return rep->status;
	if (strcmp(e ? e->device : child->device, a->device)) {
		reply_error(rep, -EINVAL, "hwpt %u does not sit on the stage 2 of %s", a->hwpt_id,
			    a->device);
		return rep->status;
	}
	be = e ? e->be : child->be;
	rc = be->ops->attach_pasid ? be->ops->attach_pasid(be, a->device, a->pasid, a->hwpt_id)
				   : -EOPNOTSUPP;
	if (rc) {
		reply_error(rep, rc, "attach PASID %u of %s to hwpt %u: %s", a->pasid, a->device,
			    a->hwpt_id, strerror(-rc));
		return rep->status;
	}
	rc =
	    pasid_record(&srv->reg, (uint32_t)(b - srv->reg.bindings), a->pasid, a->hwpt_id, be, s);
	if (rc) {
		/* Untracked, the teardown could not take it off: it must not stay. */
		be->ops->detach_pasid(be, a->device, a->pasid);
		reply_error(rep, rc, "cannot track PASID %u of %s: %s", a->pasid, a->device,
			    strerror(-rc));
		return rep->status;
	}
	p = pasid_find(&srv->reg.pasids, (uint32_t)(b - srv->reg.bindings), a->pasid);
	p->owner_uid = s->cred.uid;
	p->owner_session = restart_session_key(srv->rs, s);
	restart_save(srv->rs); /* in the state file before the reply says it is attached */
	log_debug("session %llu: PASID %u of %s on hwpt %u", (unsigned long long)s->id, a->pasid,
		  a->device, a->hwpt_id);
	return 0;
}

int handle_detach_pasid(struct req_ctx *c)
{
	const IommuNest__DetachPasid *d = c->msg->detach_pasid;
	struct server *srv = c->srv;
	IommuNest__Reply *rep = c->rep;
	struct device_binding *b = c->dev;
	struct pasid_attach *p;
	struct backend *be;
	int rc;

	if (refuse_rid(rep, d->pasid))
		return rep->status;
	/* The table let only a free device or the client's own through: p is the client's. */
	p = pasid_find(&srv->reg.pasids, (uint32_t)(b - srv->reg.bindings), d->pasid);
	be = p ? p->be : req_be(c);
	/* Nothing attached is still the kernel's to answer (7.x: 0; 6.12 knows no PASIDs). */
	rc = be->ops->detach_pasid ? be->ops->detach_pasid(be, d->device, d->pasid) : -EOPNOTSUPP;
	if (rc) {
		reply_error(rep, rc, "detach PASID %u of %s: %s", d->pasid, d->device,
			    strerror(-rc));
		return rep->status;
	}
	if (p) {
		pasid_forget(&srv->reg, p);
		restart_save(srv->rs); /* out of the state file before the reply says so */
	}
	return 0;
}
