/* SPDX-License-Identifier: MIT */
/*
 * PASID attachments across a restart (restart.h). The kernel keeps an
 * attachment as long as the kept iommufd (and the VFIO cdev) live: the
 * HWPT on the PASID stays -EBUSY to destroy and the device's PASID stays
 * taken. So the state file says which (device, PASID, HWPT, owner's uid
 * and session, instance), written before AttachPasid's and DetachPasid's
 * replies leave; at start each one goes back into the backend's own table
 * (pasid_restore: the mock asks the kernel, the sim its saved table, VFIO
 * trusts the file) and the registry's as an orphan holding its device.
 * The Reclaim of a HWPT on that device hands them over (one client holds
 * a device, so they are the token holder's), a VM context's go with the
 * context; unclaimed ones are detached at the grace period's end before
 * the HWPTs are destroyed (state/teardown.c).
 */
#include "persist/restart.h"

#include <errno.h>
#include <json-c/json.h>
#include <string.h>

#include "net/session.h"
#include "state/registry.h"
#include "util/json_util.h"
#include "util/log.h"

static struct json_object *pasid_to_json(const struct restart *rs, const struct pasid_attach *p)
{
	struct json_object *o = json_object_new_object();
	uint32_t ctx = p->be != rs->be ? restart_ctx_no(rs, p->be) : 0;

	if (o &&
	    (js_add_str(o, "device", rs->reg->bindings[p->dev].dev->name) ||
	     js_add_u64(o, "pasid", p->pasid) || js_add_u64(o, "hwpt_id", p->hwpt_id) ||
	     js_add_u64(o, "uid", p->owner_uid) || js_add_u64(o, "session", p->owner_session) ||
	     (ctx && js_add_u64(o, "ctx", ctx)))) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

int restart_save_pasids(const struct restart *rs, struct json_object *root)
{
	const struct pasid_table *t = &rs->reg->pasids;
	struct json_object *arr;
	int rc = 0;

	/* Files without PASID attachments stay as earlier versions wrote them. */
	if (!t->n)
		return 0;
	arr = js_add_new(root, "pasids", true);
	if (!arr)
		return -ENOMEM;
	for (uint32_t i = 0; !rc && i < t->n; i++)
		rc = js_push(arr, pasid_to_json(rs, &t->a[i]));
	return rc;
}

/* The instance of context no (0: the root), or NULL when it did not come back. */
static struct backend *instance(const struct restart *rs, uint32_t no)
{
	if (!no)
		return rs->be;
	for (const struct vm_ctx *c = rs->reg->ctxs.head; c; c = c->next)
		if (c->no == no)
			return c->be;
	return NULL;
}

static int restore_one(struct restart *rs, struct json_object *j)
{
	char device[CONFIG_NAME_MAX];
	uint32_t pasid, hwpt, uid, ctx = 0, dev;
	struct device_binding *b;
	struct pasid_attach *p;
	uint64_t session;
	struct backend *be;
	int rc;

	if (js_str(j, "device", device, sizeof(device)) || js_u32(j, "pasid", &pasid) || !pasid ||
	    js_u32(j, "hwpt_id", &hwpt) || !hwpt || js_u32(j, "uid", &uid) ||
	    js_u64(j, "session", UINT64_MAX, &session) ||
	    (json_object_object_get_ex(j, "ctx", NULL) && (js_u32(j, "ctx", &ctx) || !ctx))) {
		log_warn("state file: malformed PASID attachment skipped");
		return 0;
	}
	be = instance(rs, ctx);
	b = hwpt_registry_binding(rs->reg, device);
	dev = b ? (uint32_t)(b - rs->reg->bindings) : 0;
	/* Gone with its context, not configured, twice, or not what the backend has. */
	rc = !be || !b || pasid_find(&rs->reg->pasids, dev, pasid) || !be->ops->pasid_restore
		 ? -ENOENT
		 : be->ops->pasid_restore(be, device, pasid, hwpt);
	if (rc) {
		log_warn("PASID %u of %s on hwpt %u (uid %u) cannot be recovered: %s", pasid,
			 device, hwpt, uid, strerror(-rc));
		return 0;
	}
	if (pasid_record(rs->reg, dev, pasid, hwpt, be, NULL))
		return -ENOMEM;
	p = pasid_find(&rs->reg->pasids, dev, pasid);
	p->owner_uid = uid;
	p->owner_session = session;
	p->orphan = true;
	rs->reg->pasids.n_orphans++;
	log_info("PASID %u of %s on hwpt %u (uid %u) waits for its owner's Reclaim", pasid, device,
		 hwpt, uid);
	return 0;
}

int restart_restore_pasids(struct restart *rs, struct json_object *st)
{
	struct json_object *arr = js_get(st, "pasids", json_type_array);
	size_t n = arr ? json_object_array_length(arr) : 0;
	int rc = 0;

	for (size_t i = 0; !rc && i < n; i++)
		rc = restore_one(rs, json_object_array_get_idx(arr, i));
	return rc;
}

uint32_t restart_orphan_pasids(const struct restart *rs)
{
	return rs->reg ? rs->reg->pasids.n_orphans : 0;
}

uint32_t restart_pasids_follow(struct restart *rs, struct session *s, const struct hwpt_entry *e,
			       uint64_t session_key)
{
	struct pasid_table *t = &rs->reg->pasids;
	uint32_t n = 0;

	for (uint32_t i = 0; i < t->n; i++) {
		struct pasid_attach *p = &t->a[i];
		struct device_binding *b = &rs->reg->bindings[p->dev];

		/* A context's all go with it; the root's with a HWPT on their device. */
		if (!p->orphan || p->be != e->be || p->owner_uid != s->cred.uid ||
		    (e->be == rs->be && strcmp(b->dev->name, e->device)))
			continue;
		p->orphan = false;
		p->owner = s;
		p->owner_session = session_key;
		b->pasid_owner = s;
		t->n_orphans--;
		n++;
		log_info("session %llu: PASID %u of %s (hwpt %u) reclaimed",
			 (unsigned long long)s->id, p->pasid, b->dev->name, p->hwpt_id);
	}
	return n;
}
