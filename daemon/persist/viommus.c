/* SPDX-License-Identifier: MIT */
/*
 * vIOMMUs and vDEVICEs across a restart (restart.h). The kernel objects
 * live on in the kept iommufd (the sim's in its saved state); the state
 * file says what they are and whose: "viommus" (id, type, device, nest
 * parent, smmu_range) and "vdevices" (id, viommu, device, virt_id), each
 * with its owner's uid, gid and pid and its VM context. At start they come
 * back as orphans that name nobody and hold their devices.
 *
 * Their hand-back follows the HWPTs': AllocViommu and AllocVdevice replies
 * carry no resume token, so the capability that proves ownership is the
 * token of a HWPT of the same owner. Reclaiming a HWPT hands over every
 * orphaned vIOMMU and vDEVICE of the same instance that the HWPT's owner
 * session made (uid and the session's number, saved with both: one VMM
 * connection, so two VMs of one process stay apart); with VM
 * contexts the context goes whole (contexts.c), and with it its vIOMMUs.
 * An owner that had vIOMMUs but no HWPT has no token, so nothing can prove
 * the objects are its: they wait for the grace period like any unclaimed
 * orphan and are destroyed then, vDEVICEs before vIOMMUs, after the HWPTs
 * (state/teardown.c).
 *
 * The journal has no records for them: a change writes a snapshot.
 */
#include "persist/restart.h"

#include <errno.h>
#include <json-c/json.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "net/session.h"
#include "state/registry.h"
#include "util/common.h"
#include "util/json_util.h"
#include "util/log.h"

static uint32_t ctx_no(const struct restart *rs, const struct vobj *v)
{
	return v->be && v->be != rs->be ? restart_ctx_no(rs, v->be) : 0;
}

static struct json_object *vobj_to_json(const struct restart *rs, const struct vobj *v)
{
	struct json_object *o = json_object_new_object();
	uint32_t no = ctx_no(rs, v);
	int rc;

	if (!o)
		return NULL;
	rc = js_add_u64(o, "id", v->id) || js_add_str(o, "device", v->device) ||
	     js_add_u64(o, "uid", v->owner_uid) || js_add_u64(o, "gid", v->owner_gid) ||
	     js_add_i64(o, "pid", v->owner_pid) || js_add_u64(o, "session", v->owner_session) ||
	     (no && js_add_u64(o, "ctx", no));
	if (!rc && v->kind == VOBJ_VIOMMU) {
		char hex[2 * VOBJ_TOKEN_LEN + 1];

		js_hex(hex, v->token, VOBJ_TOKEN_LEN);
		rc = js_add_u64(o, "type", v->type) || js_add_u64(o, "parent_id", v->parent_id) ||
		     js_add_u64(o, "smmu_range", v->smmu_range) ||
		     (v->has_token && js_add_str(o, "resume_token", hex));
	} else if (!rc)
		rc = js_add_u64(o, "viommu_id", v->viommu_id) ||
		     js_add_u64(o, "virt_id", v->virt_id);
	if (rc) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

int restart_save_vobjs(const struct restart *rs, struct json_object *root)
{
	struct json_object *vi, *vd;
	int rc = 0;

	/* Files without vIOMMUs stay as earlier versions wrote them. */
	if (!rs->reg->vobjs.head)
		return 0;
	vi = js_add_new(root, "viommus", true);
	vd = js_add_new(root, "vdevices", true);
	if (!vi || !vd)
		return -ENOMEM;
	/*
	 * Oldest first: restoring adds each to the table's front, so the
	 * table comes back in its order (newest first). A few per client
	 * (the HWPT quota counts them): the walk from the head is cheap.
	 */
	for (uint32_t k = rs->reg->vobjs.count; !rc && k-- > 0;) {
		const struct vobj *v = rs->reg->vobjs.head;

		for (uint32_t i = 0; i < k; i++)
			v = v->next;
		rc = js_push(v->kind == VOBJ_VIOMMU ? vi : vd, vobj_to_json(rs, v));
	}
	return rc;
}

bool restart_vobjs_changed(const struct restart *rs)
{
	return rs->reg->vobjs.gen != rs->vobj_saved_gen;
}

/* The restored VM context numbered no's instance, or NULL (it did not come back). */
static struct backend *ctx_backend(const struct restart *rs, uint32_t no)
{
	for (const struct vm_ctx *c = rs->reg->ctxs.head; c; c = c->next)
		if (c->no == no)
			return c->be;
	return NULL;
}

static struct vobj *find_in(const struct vobj_table *t, const struct backend *be, uint32_t id)
{
	for (struct vobj *v = t->head; v; v = v->next)
		if (v->id == id && v->be == be)
			return v;
	return NULL;
}

/* The fields both kinds have; -EINVAL for a malformed entry. */
static int common_from_json(struct restart *rs, struct json_object *j, struct vobj *v)
{
	uint32_t uid, gid, no = 0;
	int64_t pid;

	if (js_u32(j, "id", &v->id) || !v->id ||
	    js_str(j, "device", v->device, sizeof(v->device)) || js_u32(j, "uid", &uid) ||
	    js_u32(j, "gid", &gid) || js_i64(j, "pid", 0, INT32_MAX, &pid) ||
	    js_u64(j, "session", UINT64_MAX, &v->owner_session))
		return -EINVAL;
	if (json_object_object_get_ex(j, "ctx", NULL) && (js_u32(j, "ctx", &no) || !no))
		return -EINVAL;
	v->owner_uid = uid;
	v->owner_gid = gid;
	v->owner_pid = (pid_t)pid;
	v->be = no ? ctx_backend(rs, no) : rs->be;
	v->orphan = true;
	return 0;
}

static int restore_one(struct restart *rs, struct json_object *j, enum vobj_kind kind)
{
	const char *what = kind == VOBJ_VIOMMU ? "vIOMMU" : "vDEVICE";
	struct vobj v = {.kind = kind};
	uint32_t range = 0;
	int rc = common_from_json(rs, j, &v);

	if (!rc && kind == VOBJ_VIOMMU) {
		char hex[2 * VOBJ_TOKEN_LEN + 1];

		rc = js_u32(j, "type", &v.type) || js_u32(j, "parent_id", &v.parent_id) ||
		     js_u32(j, "smmu_range", &range);
		/* "resume_token": files from before vIOMMU tokens lack it (a HWPT's Reclaim only).
		 */
		if (!rc && json_object_object_get_ex(j, "resume_token", NULL)) {
			rc = js_str(j, "resume_token", hex, sizeof(hex)) ||
			     js_unhex(hex, v.token, VOBJ_TOKEN_LEN);
			v.has_token = !rc;
		}
	} else if (!rc)
		rc = js_u32(j, "viommu_id", &v.viommu_id) ||
		     js_u64(j, "virt_id", UINT64_MAX, &v.virt_id);
	if (rc) {
		log_warn("state file: malformed %s entry skipped", what);
		return 0;
	}
	v.smmu_range = range != 0;
	/*
	 * Gone with its context, unknown to the backend, a duplicate, or a
	 * vDEVICE whose vIOMMU did not come back: nothing to give back.
	 */
	if (!v.be || !config_find_device(rs->cfg, v.device) ||
	    find_in(&rs->reg->vobjs, v.be, v.id) ||
	    (kind == VOBJ_VDEVICE && !find_in(&rs->reg->vobjs, v.be, v.viommu_id)) ||
	    !v.be->ops->has_vobj || !v.be->ops->has_vobj(v.be, v.id, kind == VOBJ_VIOMMU)) {
		log_warn("state file: %s %u (device %s) is gone; skipped", what, v.id, v.device);
		return 0;
	}
	if (!vobj_add(&rs->reg->vobjs, &v))
		return -ENOMEM;
	log_info("%s %u on %s (uid %u, pid %d) waits for its owner's Reclaim", what, v.id, v.device,
		 (unsigned)v.owner_uid, (int)v.owner_pid);
	return 0;
}

static int restore_list(struct restart *rs, struct json_object *st, const char *key,
			enum vobj_kind kind)
{
	struct json_object *arr = js_get(st, key, json_type_array);
	size_t n = arr ? json_object_array_length(arr) : 0;
	int rc = 0;

	for (size_t i = 0; !rc && i < n; i++)
		rc = restore_one(rs, json_object_array_get_idx(arr, i), kind);
	return rc;
}

int restart_restore_vobjs(struct restart *rs, struct json_object *st)
{
	int rc = restore_list(rs, st, "viommus", VOBJ_VIOMMU);

	return rc ? rc : restore_list(rs, st, "vdevices", VOBJ_VDEVICE);
}

uint32_t restart_orphan_vobjs(const struct restart *rs)
{
	return rs->reg ? rs->reg->vobjs.n_orphans : 0;
}

uint64_t restart_session_key(struct restart *rs, const struct session *s)
{
	if (!rs)
		return s->id;
	while (!rs->session_salt)
		if (getrandom(&rs->session_salt, sizeof(rs->session_salt), GRND_NONBLOCK) !=
		    sizeof(rs->session_salt))
			rs->session_salt = monotonic_ns() ^ ((uint64_t)getpid() << 32);
	/* A bijection of the id within an instance; 0 stays "unknown" only by chance 2^-64. */
	return s->id ^ rs->session_salt;
}

uint32_t restart_vobjs_follow(struct restart *rs, struct session *s, const struct backend *be,
			      uid_t uid, uint64_t session)
{
	struct vobj_table *t = &rs->reg->vobjs;
	uint32_t n = 0;

	for (struct vobj *v = t->head; v; v = v->next) {
		if (!v->orphan || v->be != be || v->owner_uid != uid ||
		    (session && v->owner_session != session))
			continue;
		v->orphan = false;
		v->owner = s;
		v->owner_session = restart_session_key(rs, s);
		v->owner_pid = s->cred.pid;
		v->owner_gid = s->cred.gid;
		t->n_orphans--;
		t->gen++;
		n++;
		/* Its vEVENTQs with it: the kernel ties them to it (persist/veventqs.c). */
		if (v->kind == VOBJ_VIOMMU)
			restart_veventqs_follow(rs, s, be, v->id, v->owner_session);
		log_info("session %llu: %s %u reclaimed", (unsigned long long)s->id,
			 v->kind == VOBJ_VIOMMU ? "viommu" : "vdevice", v->id);
	}
	return n;
}
