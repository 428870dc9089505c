/* SPDX-License-Identifier: MIT */
/*
 * Device claims across a restart (restart.h). A VMM that OpenDevice'd or
 * AdoptDevice'd a device keeps its descriptor of the daemon's binding
 * when the daemon crashes: the binding lives on in the fd store (the
 * backend's "vfio.<device>" or a context's), so the VMM's BAR mmaps,
 * irqs and DMA keep working. The claim itself (device, the opener's uid
 * and pid) is in the state file before the reply that grants it leaves;
 * after the restart it is held as an orphan: not reset, not rebound,
 * not detached, busy for everyone. It comes back to a session of the
 * same uid with the Reclaim of what came with the device (its attached
 * HWPT, its guest memory, its VM context), or with a Reclaim that passes
 * the held descriptor itself (a VMM without nested HWPTs has no token).
 * At the grace period's end it ends as on a VMM's death, after the
 * orphans' HWPTs and memory went: put back, reset, taken back, or stale
 * (-EBUSY, retried) while the VMM still keeps its descriptor.
 */
#include "persist/restart.h"

#include <errno.h>
#include <json-c/json.h>
#include <string.h>

#include "net/session.h"
#include "state/claim.h"
#include "state/registry.h"
#include "util/json_util.h"
#include "util/log.h"
#include "util/policy.h"

static bool claimed(const struct device_binding *b)
{
	return b->opener || b->claim_orphan;
}

static struct json_object *claim_to_json(const struct device_binding *b)
{
	struct json_object *o = json_object_new_object();

	if (o && (js_add_str(o, "device", b->dev->name) || js_add_u64(o, "uid", b->claim_uid) ||
		  js_add_i64(o, "pid", b->claim_pid))) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

int restart_save_claims(const struct restart *rs, struct json_object *root)
{
	struct json_object *arr = NULL;
	int rc = 0;

	for (uint32_t i = 0; !rc && i < rs->reg->n_bindings; i++) {
		const struct device_binding *b = &rs->reg->bindings[i];

		if (!claimed(b))
			continue;
		/* Files without claims stay as earlier versions wrote them. */
		if (!arr && !(arr = js_add_new(root, "claims", true)))
			return -ENOMEM;
		rc = js_push(arr, claim_to_json(b));
	}
	return rc;
}

/* The instance that has the device now: its VM context's, else the root. */
static struct backend *device_backend(const struct restart *rs, const struct device_binding *b)
{
	struct vm_ctx *v = vmctx_of_device(&rs->reg->ctxs, (uint32_t)(b - rs->reg->bindings));

	return v ? v->be : rs->be;
}

static void restore_claim(struct restart *rs, struct json_object *j)
{
	char device[CONFIG_NAME_MAX];
	struct device_binding *b;
	uint32_t uid;
	int64_t pid;

	if (js_str(j, "device", device, sizeof(device)) || js_u32(j, "uid", &uid) ||
	    js_i64(j, "pid", 0, INT32_MAX, &pid)) {
		log_warn("state file: malformed device claim skipped");
		return;
	}
	b = hwpt_registry_binding(rs->reg, device);
	if (!b || claimed(b)) {
		log_warn("state file: claim of device %s skipped", device);
		return;
	}
	b->claim_orphan = true;
	b->claim_uid = uid;
	b->claim_pid = (pid_t)pid;
	log_info("device %s: the claim of uid %u (pid %d) waits for its owner's Reclaim; the "
		 "device is held as it was",
		 device, uid, (int)pid);
}

void restart_restore_claims(struct restart *rs)
{
	struct json_object *arr =
	    rs->state && rs->restored ? js_get(rs->state, "claims", json_type_array) : NULL;
	size_t n = arr ? json_object_array_length(arr) : 0;

	for (size_t i = 0; i < n; i++)
		restore_claim(rs, json_object_array_get_idx(arr, i));
}

uint32_t restart_orphan_claims(const struct restart *rs)
{
	uint32_t n = 0;

	if (!rs->reg)
		return 0;
	for (uint32_t i = 0; i < rs->reg->n_bindings; i++)
		n += rs->reg->bindings[i].claim_orphan;
	return n;
}

static void give(struct device_binding *b, struct session *s)
{
	b->claim_orphan = false;
	b->opener = s;
	b->claim_pid = s->cred.pid;
	log_info("device %s: claim reclaimed by session %llu", b->dev->name,
		 (unsigned long long)s->id);
}

void restart_claims_follow(struct restart *rs, struct session *s)
{
	for (uint32_t i = 0; i < rs->reg->n_bindings; i++) {
		struct device_binding *b = &rs->reg->bindings[i];

		if (!b->claim_orphan || b->claim_uid != s->cred.uid)
			continue;
		/* The device came to s: its HWPT, its memory or its whole VM context. */
		if ((b->hwpt_id && b->owner == s) || (b->n_maps && b->mem_owner == s) ||
		    vmctx_has(&s->vm, i))
			give(b, s);
	}
}

int restart_reclaim_device(struct restart *rs, struct session *s, int fd,
			   struct device_binding **out)
{
	struct device_binding *b = NULL;
	struct backend *be = NULL;
	int rc;

	if (!rs || !rs->reg)
		return -ENOENT;
	for (uint32_t i = 0; i < rs->reg->n_bindings && !b; i++) {
		struct device_binding *c = &rs->reg->bindings[i];

		if (!c->claim_orphan || c->claim_uid != s->cred.uid)
			continue;
		be = device_backend(rs, c);
		if (be->ops->device_holds_fd && be->ops->device_holds_fd(be, c->dev->name, fd) == 0)
			b = c;
	}
	if (!b)
		return -ENOENT;
	if (!policy_allows(&b->dev->allow, &s->cred))
		return -EPERM;
	/* An orphaned context's device brings the whole context (-EBUSY: s has its own). */
	rc = restart_adopt_context(rs, s, be);
	if (rc)
		return rc;
	/* Root devices: the memory on it is the VMM's (one client's per device). */
	if (b->n_maps && !b->mem_owner && b->mem_uid == s->cred.uid)
		b->mem_owner = s;
	give(b, s);
	restart_claims_follow(rs, s);
	*out = b;
	return 0;
}

void restart_end_orphan_claims(struct restart *rs)
{
	if (!rs->reg)
		return;
	for (uint32_t i = 0; i < rs->reg->n_bindings; i++) {
		struct device_binding *b = &rs->reg->bindings[i];

		if (!b->claim_orphan)
			continue;
		log_info("device %s: unclaimed since the restart (uid %u, pid %d): released",
			 b->dev->name, (unsigned)b->claim_uid, (int)b->claim_pid);
		b->claim_orphan = false;
		/* The orphans' HWPTs and memory went first: nothing of s's is left on it. */
		device_claim_end(rs->reg, device_backend(rs, b), b, NULL);
	}
}
