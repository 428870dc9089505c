/* SPDX-License-Identifier: MIT */
/*
 * vEVENTQs across a restart (restart.h). The kernel object lives on in
 * the kept iommufd, holding its vIOMMU, and keeps queueing the driver's
 * records (up to its depth, then one LOST_EVENTS header); only its fd
 * reads them, so the fd goes in the fd store ("veventq.<no>") and the
 * queue (owner uid and session, instance, vIOMMU, type, depth, object id)
 * in the state file, both before AllocVeventq's reply leaves. At start
 * each one comes back as an orphan after its vIOMMU (a vEVENTQ whose
 * vIOMMU did not come back has nobody to go to); the Reclaim that hands
 * the vIOMMU over hands its vEVENTQs over too (restart_vobjs_follow), and
 * req/ has net/ read them again: what the kernel queued meanwhile arrives
 * in order, the kernel's sequence numbers continuing. Unclaimed ones are
 * closed and destroyed at the grace period's end, before their vIOMMUs
 * (state/teardown.c).
 *
 * An orphan's fd is kept out of the fd store: the store's copy would hold
 * the object (the fd's reference) past that destroy (-EBUSY, and then its
 * vIOMMU's too), and nothing tells when systemd has closed it. The price:
 * a second crash within the grace period loses the orphans' fds.
 */
#include "persist/restart.h"

#include <errno.h>
#include <json-c/json.h>
#include <string.h>
#include <unistd.h>

#include "net/session.h"
#include "persist/fdstore.h"
#include "state/registry.h"
#include "util/json_util.h"
#include "util/log.h"

static struct json_object *veventq_to_json(const struct restart *rs, const struct veventq *v)
{
	struct json_object *o = json_object_new_object();
	uint32_t ctx = v->be != rs->be ? restart_ctx_no(rs, v->be) : 0;

	if (o &&
	    (js_add_u64(o, "no", v->no) || js_add_u64(o, "id", v->id) ||
	     js_add_u64(o, "viommu_id", v->viommu_id) || js_add_u64(o, "type", v->type) ||
	     js_add_u64(o, "depth", v->depth) || js_add_u64(o, "uid", v->owner_uid) ||
	     js_add_u64(o, "session", v->owner_session) || (ctx && js_add_u64(o, "ctx", ctx)))) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

int restart_save_veventqs(const struct restart *rs, struct json_object *root)
{
	struct json_object *arr;
	int rc = 0;

	/* Files without vEVENTQs stay as earlier versions wrote them. */
	if (!rs->reg->veventqs.head)
		return 0;
	arr = js_add_new(root, "veventqs", true);
	if (!arr)
		return -ENOMEM;
	for (const struct veventq *v = rs->reg->veventqs.head; !rc && v; v = v->next)
		rc = js_push(arr, veventq_to_json(rs, v));
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

/* The restored vIOMMU id of be, or NULL. */
static const struct vobj *viommu_of(const struct restart *rs, const struct backend *be, uint32_t id)
{
	for (const struct vobj *v = rs->reg->vobjs.head; v; v = v->next)
		if (v->kind == VOBJ_VIOMMU && v->be == be && v->id == id)
			return v;
	return NULL;
}

static bool known(const struct restart *rs, const struct backend *be, uint32_t id, uint32_t no)
{
	for (const struct veventq *v = rs->reg->veventqs.head; v; v = v->next)
		if ((v->be == be && v->id == id) || v->no == no)
			return true;
	return false;
}

static void restore_one(struct restart *rs, struct json_object *j)
{
	struct veventq v = {.orphan = true};
	char name[BACKEND_FD_NAME_MAX];
	uint32_t uid, ctx = 0;
	bool taken;
	int fd, rc;

	if (js_u32(j, "no", &v.no) || !v.no || js_u32(j, "id", &v.id) || !v.id ||
	    js_u32(j, "viommu_id", &v.viommu_id) || js_u32(j, "type", &v.type) ||
	    js_u32(j, "depth", &v.depth) || js_u32(j, "uid", &uid) ||
	    js_u64(j, "session", UINT64_MAX, &v.owner_session) ||
	    (json_object_object_get_ex(j, "ctx", NULL) && (js_u32(j, "ctx", &ctx) || !ctx))) {
		log_warn("state file: malformed vEVENTQ entry skipped");
		return;
	}
	v.owner_uid = uid;
	v.be = instance(rs, ctx);
	fdstore_veventq_name(name, sizeof(name), v.no);
	fd = fdstore_take(rs, name);
	taken = fd >= 0;
	/* Without its vIOMMU (gone, or a lying entry) there is nobody to hand it to. */
	rc = !v.be || !viommu_of(rs, v.be, v.viommu_id) || known(rs, v.be, v.id, v.no) ||
		     !v.be->ops->veventq_reopen
		 ? -ENOENT
		 : v.be->ops->veventq_reopen(v.be, v.id, fd, &v.q);
	if (!rc && !veventq_add(&rs->reg->veventqs, &v)) {
		v.be->ops->veventq_free(v.be, &v.q);
		rc = -ENOMEM;
		fd = -1; /* the backend had it: closed with the queue */
	}
	if (rc) {
		log_warn("veventq %u (no %u, viommu %u, uid %u) cannot be recovered: %s", v.id,
			 v.no, v.viommu_id, uid, strerror(-rc));
		if (fd >= 0)
			close(fd);
	} else {
		log_info("veventq %u (type %#x, depth %u) on viommu %u (uid %u) waits for its "
			 "owner's Reclaim",
			 v.id, v.type, v.depth, v.viommu_id, uid);
	}
	/* Kept out of the store while an orphan (the header says why); taken or not, it goes. */
	if (taken)
		fdstore_drop_taken(rs, name);
	if (v.no > rs->reg->veventqs.last_no)
		rs->reg->veventqs.last_no = v.no;
}

void restart_restore_veventqs(struct restart *rs, struct json_object *st)
{
	struct json_object *arr = js_get(st, "veventqs", json_type_array);
	size_t n = arr ? json_object_array_length(arr) : 0;

	for (size_t i = 0; i < n; i++)
		restore_one(rs, json_object_array_get_idx(arr, i));
	fdstore_drop_stale_veventqs(rs);
}

void restart_veventq_release(struct restart *rs, const struct veventq *v)
{
	char name[BACKEND_FD_NAME_MAX];

	if (!rs || !rs->enabled)
		return;
	fdstore_veventq_name(name, sizeof(name), v->no);
	fdstore_release_queue(rs, name);
}

void restart_veventqs_release(struct restart *rs, const struct session *s)
{
	if (!rs || !rs->reg)
		return;
	for (const struct veventq *v = rs->reg->veventqs.head; v; v = v->next)
		if (v->owner == s)
			restart_veventq_release(rs, v);
}

uint32_t restart_orphan_veventqs(const struct restart *rs)
{
	return rs->reg ? rs->reg->veventqs.n_orphans : 0;
}

uint32_t restart_veventqs_follow(struct restart *rs, struct session *s, const struct backend *be,
				 uint32_t viommu_id, uint64_t session_key)
{
	struct veventq_table *t = &rs->reg->veventqs;
	uint32_t n = 0;

	for (struct veventq *v = t->head; v; v = v->next) {
		if (!v->orphan || v->be != be || v->viommu_id != viommu_id)
			continue;
		v->orphan = false;
		v->owner = s;
		v->owner_uid = s->cred.uid;
		v->owner_session = session_key;
		t->n_orphans--;
		n++;
		log_info("session %llu: veventq %u reclaimed with viommu %u",
			 (unsigned long long)s->id, v->id, viommu_id);
	}
	return n;
}
