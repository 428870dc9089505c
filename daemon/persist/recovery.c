/* SPDX-License-Identifier: MIT */
/*
 * Recovery once the server exists: the saved HWPTs, attachments and guest
 * memory go back into the registry as orphans, wait for their owners'
 * Reclaim (which hands them over) until the grace period ends, and are
 * then torn down through state/teardown.h. It works on what restart_restore
 * is given (registry, HWPT counter, event base), not on the server.
 */
#include "persist/restart.h"

#include <errno.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "net/session.h"
#include "persist/fdstore.h"
#include "state/registry.h"
#include "state/teardown.h"
#include "util/json_util.h"
#include "util/log.h"
#include "util/policy.h"

/* The restored VM context numbered no's instance, or NULL (it did not come back). */
static struct backend *ctx_backend(const struct restart *rs, uint32_t no)
{
	for (const struct vm_ctx *v = rs->reg->ctxs.head; v; v = v->next)
		if (v->no == no)
			return v->be;
	return NULL;
}

static int restore_hwpt(struct restart *rs, struct json_object *j)
{
	struct hwpt_entry e = {.orphan = true};
	struct hwpt_entry *stored;
	char hex[2 * HWPT_TOKEN_LEN + 1];
	uint32_t uid, gid, no = 0;
	struct backend *be = rs->be;
	int64_t pid;

	if (js_u32(j, "id", &e.id) || js_u32(j, "parent_id", &e.parent_id) ||
	    js_u32(j, "data_type", &e.data_type) ||
	    js_str(j, "device", e.device, sizeof(e.device)) || js_u32(j, "uid", &uid) ||
	    js_u32(j, "gid", &gid) || js_i64(j, "pid", 0, INT32_MAX, &pid) ||
	    js_str(j, "resume_token", hex, sizeof(hex)) || js_unhex(hex, e.token, HWPT_TOKEN_LEN) ||
	    hwpt_inv_type_for(e.data_type, &e.inv_type)) {
		log_warn("state file: malformed HWPT entry skipped");
		return 0;
	}
	/* "fault_id": its fault object (files before fault queues were saved have none). */
	if (json_object_object_get_ex(j, "fault_id", NULL) && js_u32(j, "fault_id", &e.fault_id)) {
		log_warn("state file: malformed HWPT entry skipped");
		return 0;
	}
	/* "ctx": it lives in that VM context (files without contexts have none). */
	if (json_object_object_get_ex(j, "ctx", NULL) && (js_u32(j, "ctx", &no) || !no)) {
		log_warn("state file: malformed HWPT entry skipped");
		return 0;
	}
	/* "session": whose vIOMMUs go with it; files before vIOMMUs lack it (0). */
	if (json_object_object_get_ex(j, "session", NULL) &&
	    js_u64(j, "session", UINT64_MAX, &e.owner_session)) {
		log_warn("state file: malformed HWPT entry skipped");
		return 0;
	}
	/* "viommu_id": it sits on a vIOMMU (7.x), not on the device's nest parent. */
	if (json_object_object_get_ex(j, "viommu_id", NULL) &&
	    (js_u32(j, "viommu_id", &e.viommu_id) || !e.viommu_id)) {
		log_warn("state file: malformed HWPT entry skipped");
		return 0;
	}
	if (no)
		be = ctx_backend(rs, no);
	if (!be || !config_find_device(rs->cfg, e.device) ||
	    hwpt_registry_find(rs->reg, be, e.id) || !be->ops->has_hwpt ||
	    !be->ops->has_hwpt(be, e.id)) {
		log_warn("state file: hwpt %u (device %s) is gone; skipped", e.id, e.device);
		return 0;
	}
	e.be = be;
	e.owner_uid = uid;
	e.owner_gid = gid;
	e.owner_pid = (pid_t)pid;
	stored = hwpt_registry_add(rs->reg, &e);
	if (!stored)
		return -ENOMEM;
	rs->reg->n_orphans++;
	(*rs->hwpts_active)++;
	log_info("hwpt %u on %s (uid %u, pid %d) waits for its owner's Reclaim", e.id, e.device,
		 uid, (int)pid);
	return 0;
}

static void restore_attachment(struct restart *rs, struct json_object *j)
{
	char device[CONFIG_NAME_MAX];
	struct device_binding *b;
	struct backend *be = rs->be;
	struct hwpt_entry *e;
	uint32_t id, no = 0;

	if (js_str(j, "device", device, sizeof(device)) || js_u32(j, "hwpt_id", &id) ||
	    (json_object_object_get_ex(j, "ctx", NULL) && js_u32(j, "ctx", &no))) {
		log_warn("state file: malformed attachment skipped");
		return;
	}
	if (no)
		be = ctx_backend(rs, no);
	b = hwpt_registry_binding(rs->reg, device);
	e = be ? hwpt_registry_find(rs->reg, be, id) : NULL;
	if (!b || !e || b->hwpt_id) {
		log_warn("state file: attachment of %s to hwpt %u skipped", device, id);
		return;
	}
	b->hwpt_id = id;
	b->hwpt_be = be;
	b->owner = NULL; /* held by the orphan until Reclaim */
	e->n_attached++;
}

/* One area of guest memory, restored as an orphan (no mem_owner). */
static int restore_mapping(struct restart *rs, struct json_object *j)
{
	char device[CONFIG_NAME_MAX];
	struct device_binding *b;
	uint64_t iova, length, last;
	uint32_t uid, idx;
	int rc;

	if (js_str(j, "device", device, sizeof(device)) || js_u64(j, "iova", UINT64_MAX, &iova) ||
	    js_u64(j, "length", UINT64_MAX, &length) || js_u32(j, "uid", &uid) || !length ||
	    __builtin_add_overflow(iova, length - 1, &last)) {
		log_warn("state file: malformed mapping skipped");
		return 0;
	}
	b = hwpt_registry_binding(rs->reg, device);
	idx = b ? (uint32_t)(b - rs->reg->bindings) : 64;
	/* Memory of a context that could not come back went with its IOAS. */
	if (idx < 64 && (rs->lost_ctx_devs >> idx & 1) && !vmctx_of_device(&rs->reg->ctxs, idx)) {
		log_warn("state file: mapping [%#llx, +%#llx) on %s went with its lost VM context",
			 (unsigned long long)iova, (unsigned long long)length, device);
		return 0;
	}
	/* One client's memory per device: a second uid on it is a corrupt file. */
	if (!b || (b->n_maps && b->mem_uid != uid)) {
		log_warn("state file: mapping [%#llx, +%#llx) on %s skipped",
			 (unsigned long long)iova, (unsigned long long)length, device);
		return 0;
	}
	rc = binding_map_add(b, iova, last);
	if (rc == -ENOMEM)
		return rc;
	if (rc)
		log_warn("state file: overlapping mapping on %s skipped", device);
	b->mem_uid = uid;
	b->mem_owner = NULL;
	return 0;
}

/*
 * Unmaps what the backend has in a device's stage 2 but the file does not
 * know: areas mapped by a daemon that crashed before it saved them. Left
 * there, they would put a client's memory behind whichever client takes
 * the device next. The kernel's areas are disjoint and the recorded ones
 * exist, so an unknown area lies wholly inside a gap between recorded
 * ones, and unmapping each gap removes exactly the unknown areas.
 */
static void scrub_unknown_memory(struct restart *rs, struct device_binding *b)
{
	const char *dev = b->dev->name;
	uint64_t from = 0;

	if (!rs->be->ops->unmap_memory)
		return;
	if (!b->n_maps) {
		rs->be->ops->unmap_memory(rs->be, dev, 0, UINT64_MAX);
		return;
	}
	for (uint32_t k = 0; k < b->n_maps; k++) {
		if (b->maps[k].iova > from)
			rs->be->ops->unmap_memory(rs->be, dev, from, b->maps[k].iova - from);
		from = b->maps[k].last + 1;
	}
	/* from 0: the last recorded area ends at the top of the IOVA space. */
	if (from)
		rs->be->ops->unmap_memory(rs->be, dev, from, UINT64_MAX - from + 1);
}

static int restore_registry(struct restart *rs, struct json_object *st)
{
	struct json_object *hwpts = js_get(st, "hwpts", json_type_array);
	struct json_object *att = js_get(st, "attachments", json_type_array);
	struct json_object *maps = js_get(st, "mappings", json_type_array);
	size_t n = hwpts ? json_object_array_length(hwpts) : 0;
	int rc;

	/* Before the HWPTs: a nested HWPT may sit on a vIOMMU (persist/viommus.c). */
	rc = restart_restore_vobjs(rs, st);
	if (rc)
		return rc;
	/* After their vIOMMUs: each goes to whoever reclaims its vIOMMU. */
	restart_restore_veventqs(rs, st);
	for (size_t i = 0; i < n; i++) {
		rc = restore_hwpt(rs, json_object_array_get_idx(hwpts, i));
		if (rc)
			return rc;
	}
	n = att ? json_object_array_length(att) : 0;
	for (size_t i = 0; i < n; i++)
		restore_attachment(rs, json_object_array_get_idx(att, i));
	/* After the HWPTs that sit on them (persist/pasids.c). */
	rc = restart_restore_pasids(rs, st);
	if (rc)
		return rc;
	/* Files of daemons that predate guest memory have no "mappings". */
	n = maps ? json_object_array_length(maps) : 0;
	for (size_t i = 0; i < n; i++) {
		rc = restore_mapping(rs, json_object_array_get_idx(maps, i));
		if (rc)
			return rc;
	}
	/* A context's devices share its one IOAS: scrubbed together (contexts.c). */
	for (uint32_t i = 0; i < rs->reg->n_bindings; i++)
		if (!vmctx_of_device(&rs->reg->ctxs, i))
			scrub_unknown_memory(rs, &rs->reg->bindings[i]);
	restart_scrub_context_memory(rs);
	return 0;
}

/* Devices whose guest memory waits for its owner's Reclaim. */
static uint32_t orphan_memory(const struct restart *rs)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < rs->reg->n_bindings; i++)
		n += rs->reg->bindings[i].n_maps && !rs->reg->bindings[i].mem_owner;
	return n;
}

/* Anything of the previous instance still waiting for its owner's Reclaim. */
static bool orphans_left(const struct restart *rs)
{
	return rs->reg->n_orphans || orphan_memory(rs) || restart_orphan_contexts(rs) ||
	       restart_orphan_claims(rs) || restart_orphan_vobjs(rs) ||
	       restart_orphan_veventqs(rs) || restart_orphan_pasids(rs);
}

void restart_grace_check(struct restart *rs)
{
	if (rs && rs->reg && !orphans_left(rs) && rs->ev_grace)
		evtimer_del(rs->ev_grace);
}

static void on_grace(evutil_socket_t fd, short what, void *arg)
{
	struct restart *rs = arg;

	if (!orphans_left(rs))
		return;
	log_event(LOG_NOTICE, LOG_EV_RECOVERY,
		  LOG_FIELDS(LF_STR("phase", "grace_over"), LF_UINT("hwpts", rs->reg->n_orphans),
			     LF_UINT("devices", orphan_memory(rs)),
			     LF_UINT("vobjs", restart_orphan_vobjs(rs))),
		  "reclaim grace period over: destroying %u unclaimed HWPTs, %u vEVENTQs, %u "
		  "vIOMMU/vDEVICE objects and the guest memory of %u devices",
		  rs->reg->n_orphans, restart_orphan_veventqs(rs), restart_orphan_vobjs(rs),
		  orphan_memory(rs));
	restart_reap_orphans(rs);
	restart_save(rs);
}

static int arm_grace(struct restart *rs)
{
	uint32_t ms = rs->cfg->reclaim_grace_ms;
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

	rs->ev_grace = evtimer_new(rs->base, on_grace, rs);
	if (!rs->ev_grace || evtimer_add(rs->ev_grace, &tv))
		return -ENOMEM;
	log_event(LOG_NOTICE, LOG_EV_RECOVERY,
		  LOG_FIELDS(LF_STR("phase", "waiting"), LF_UINT("hwpts", rs->reg->n_orphans),
			     LF_UINT("devices", orphan_memory(rs)), LF_UINT("grace_ms", ms)),
		  "%u HWPTs (and guest memory on %u devices) of the previous instance wait %u ms "
		  "for Reclaim",
		  rs->reg->n_orphans, orphan_memory(rs), ms);
	return 0;
}

int restart_restore(struct restart *rs, struct event_base *base, struct hwpt_registry *reg,
		    uint64_t *hwpts_active)
{
	int rc = 0;

	rs->base = base;
	rs->reg = reg;
	rs->hwpts_active = hwpts_active;
	/* Contexts first: their HWPTs, attachments and memory name them. */
	restart_restore_contexts(rs);
	/* Before the leftovers close: their fds are in the store. */
	restart_restore_faults(rs);
	if (rs->state && rs->restored)
		rc = restore_registry(rs, rs->state);
	/* After the registry: the vEVENTQs' fds are in the store (persist/veventqs.c). */
	fdstore_close_leftovers(rs);
	if (!rc)
		restart_restore_claims(rs);
	if (rs->state) {
		json_object_put(rs->state);
		rs->state = NULL;
	}
	if (rc)
		return rc;
	if (orphans_left(rs))
		rc = arm_grace(rs);
	/* A fresh start overwrites a stale file; a restore normalises it. */
	restart_save(rs);
	return rc;
}

bool restart_token_equal(const uint8_t *a, const uint8_t *b)
{
	volatile uint8_t diff = 0;

	for (size_t i = 0; i < HWPT_TOKEN_LEN; i++)
		diff |= a[i] ^ b[i];
	return diff == 0;
}

/*
 * The orphan id whose token is token: ids repeat across instances (the
 * root and each restored VM context), so every instance's orphan of that
 * id is a candidate and the token tells them apart.
 */
static struct hwpt_entry *find_orphan(struct restart *rs, const struct session *s, uint32_t id,
				      const uint8_t *token, size_t len)
{
	static const uint8_t dummy[HWPT_TOKEN_LEN];
	const uint8_t *tok = len == HWPT_TOKEN_LEN ? token : dummy;
	struct hwpt_entry *e, *found = NULL;
	const struct vm_ctx *v = NULL;
	struct backend *be = rs && rs->reg ? rs->be : NULL;

	/* Without recovery (tests, fuzzers) there are no orphans. */
	if (!be) {
		(void)restart_token_equal(dummy, tok);
		return NULL;
	}
	for (;;) {
		e = hwpt_registry_find(rs->reg, be, id);
		/* Compare even without a candidate: timing says nothing about ids. */
		if (restart_token_equal(e ? e->token : dummy, tok) && e && e->orphan &&
		    len == HWPT_TOKEN_LEN && e->owner_uid == s->cred.uid)
			found = e;
		v = v ? v->next : rs->reg->ctxs.head;
		/* Only orphaned contexts and s's own: another session's HWPTs are not orphans. */
		while (v && !v->orphan && v != &s->vm)
			v = v->next;
		if (!v)
			return found;
		be = v->be;
	}
}

int restart_reclaim(struct restart *rs, struct session *s, uint32_t id, const uint8_t *token,
		    size_t len, struct hwpt_entry **out)
{
	struct hwpt_entry *e = find_orphan(rs, s, id, token, len);
	const struct config_device *dev;
	int rc;

	if (!e)
		return -ENOENT;
	/* The token holder may learn that the policy changed under it. */
	dev = config_find_device(rs->cfg, e->device);
	if (dev && !policy_allows(&dev->allow, &s->cred))
		return -EPERM;
	if (quota_reached(s->n_owned, rs->cfg->quota.max_hwpts))
		return -EDQUOT;
	/* Its fault queue must become the session's: it reads one (before anything moves). */
	if (restart_fault_conflict(rs, s, e))
		return -EEXIST;
	/* A restored VM context's HWPT: the first one brings the whole context. */
	rc = restart_adopt_context(rs, s, e->be);
	if (rc)
		return rc;
	/*
	 * The vIOMMUs and vDEVICEs the same owner made go with its token
	 * (persist/viommus.c): in a VM context, all of the context's.
	 */
	restart_vobjs_follow(rs, s, e->be, e->owner_uid, e->be == rs->be ? e->owner_session : 0);
	e->orphan = false;
	e->owner_session = restart_session_key(rs, s);
	e->owner = s;
	e->owner_pid = s->cred.pid;
	e->owner_gid = s->cred.gid;
	dirty_ids_add(&rs->reg->dirty, id); /* its record names the new pid and gid */
	e->next_owned = s->owned;
	s->owned = e;
	s->n_owned++;
	rs->reg->n_orphans--;
	for (uint32_t i = 0; i < rs->reg->n_bindings; i++) {
		struct device_binding *b = &rs->reg->bindings[i];

		if (b->hwpt_id != id || b->hwpt_be != e->be)
			continue;
		b->owner = s;
		/*
		 * The guest memory behind a device goes with the HWPT attached
		 * to it: the device was held by one client, so the holder of
		 * this HWPT's token is the one whose memory it is.
		 */
		if (b->n_maps && !b->mem_owner && b->mem_uid == s->cred.uid)
			b->mem_owner = s;
	}
	/* The PASIDs on its device, which one client held (in a context: all of its). */
	restart_pasids_follow(rs, s, e, e->owner_session);
	/* The devices that came with it bring the claims their VMM holds the fds of. */
	restart_claims_follow(rs, s);
	/* Its fault queue, with the groups it has not answered yet. */
	(void)restart_faults_follow(rs, s, e);
	restart_grace_check(rs);
	*out = e;
	return 0;
}

/*
 * The orphan vIOMMU id whose token is token (of the root or an orphaned
 * context: ids repeat across instances), compared in constant time.
 */
static struct vobj *find_viommu(struct restart *rs, const struct session *s, uint32_t id,
				const uint8_t *token, size_t len)
{
	static const uint8_t dummy[VOBJ_TOKEN_LEN];
	const uint8_t *tok = len == VOBJ_TOKEN_LEN ? token : dummy;
	struct vobj *found = NULL;

	if (!rs || !rs->reg)
		return NULL;
	for (struct vobj *v = rs->reg->vobjs.head; v; v = v->next) {
		if (v->kind != VOBJ_VIOMMU || v->id != id)
			continue;
		if (restart_token_equal(v->has_token ? v->token : dummy, tok) && v->has_token &&
		    v->orphan && len == VOBJ_TOKEN_LEN && v->owner_uid == s->cred.uid)
			found = v;
	}
	return found;
}

int restart_reclaim_viommu(struct restart *rs, struct session *s, uint32_t id, const uint8_t *token,
			   size_t len)
{
	struct vobj *v = find_viommu(rs, s, id, token, len);
	const struct config_device *dev;
	bool ctx;
	int rc;

	if (!v)
		return -ENOENT;
	/* As for a HWPT: the token holder may learn that the policy changed under it. */
	dev = config_find_device(rs->cfg, v->device);
	if (dev && !policy_allows(&dev->allow, &s->cred))
		return -EPERM;
	ctx = v->be != rs->be;
	/* A restored VM context's vIOMMU brings the whole context, as a HWPT of it does. */
	rc = ctx ? restart_adopt_context(rs, s, v->be) : 0;
	if (rc)
		return rc;
	restart_vobjs_follow(rs, s, v->be, v->owner_uid, ctx ? 0 : v->owner_session);
	restart_grace_check(rs);
	return 0;
}

void restart_reap_orphans(struct restart *rs)
{
	struct teardown_holder h = {.s = NULL};

	if (!rs->reg)
		return; /* stopped before the registry was restored */
	state_teardown(rs->reg, rs->be, &h, rs->hwpts_active);
	/* Then the claims nobody reclaimed, as on their VMMs' death (in their contexts still). */
	restart_end_orphan_claims(rs);
	/* The fault queues nobody reclaimed: their HWPTs went, the kernel answered their groups. */
	restart_close_orphan_faults(rs);
	/* Their objects are gone: now the unclaimed contexts themselves (before the root). */
	restart_close_orphan_contexts(rs);
}
