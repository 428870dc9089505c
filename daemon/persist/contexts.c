/* SPDX-License-Identifier: MIT */
/*
 * VM contexts across a restart (restart.h). Each open context is saved
 * as its number, its owner's uid, its devices and what its backend
 * instance's save() writes ("contexts" in the state file); its
 * descriptors live in the fd store as "ctx.<no>.<name>". At start each
 * one is reopened with reopen_context as an orphan (heap, no session);
 * the first Reclaim of one of its HWPTs by the owner's token moves the
 * whole context (devices, memory, the other HWPTs to reclaim) into the
 * session; the grace period's end closes it after the teardown took its
 * objects. Apart from recovery.c because it is the contexts' half of
 * every job there, and small on its own.
 */
#include "persist/restart.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "net/session.h"
#include "persist/fdstore.h"
#include "state/registry.h"
#include "util/json_util.h"
#include "util/log.h"

uint32_t restart_ctx_no(const struct restart *rs, const struct backend *be)
{
	for (const struct vm_ctx *v = rs->reg->ctxs.head; v; v = v->next)
		if (v->be == be)
			return v->no;
	return 0;
}

static struct vm_ctx *ctx_numbered(const struct restart *rs, uint32_t no)
{
	for (struct vm_ctx *v = rs->reg->ctxs.head; v; v = v->next)
		if (v->no == no)
			return v;
	return NULL;
}

uint64_t restart_generation(const struct restart *rs)
{
	uint64_t g = rs->be->ops->generation ? rs->be->ops->generation(rs->be) : 0;

	if (!rs->reg)
		return g;
	for (const struct vm_ctx *v = rs->reg->ctxs.head; v; v = v->next)
		if (v->be->ops->generation)
			g += v->be->ops->generation(v->be);
	return g;
}

static struct json_object *ctx_to_json(const struct vm_ctx *v)
{
	struct json_object *o = json_object_new_object(), *bs;

	if (!o || js_add_u64(o, "no", v->no) || js_add_u64(o, "uid", v->uid) ||
	    js_add_u64(o, "devices", v->devs))
		goto nomem;
	bs = js_add_new(o, "backend_state", false);
	if (!bs || (v->be->ops->save && v->be->ops->save(v->be, bs)))
		goto nomem;
	return o;
nomem:
	json_object_put(o);
	return NULL;
}

int restart_save_contexts(const struct restart *rs, struct json_object *root)
{
	struct json_object *arr;
	int rc = 0;

	/* Files without contexts stay as earlier versions wrote them. */
	if (!rs->reg->ctxs.head)
		return 0;
	arr = js_add_new(root, "contexts", true);
	if (!arr)
		return -ENOMEM;
	for (const struct vm_ctx *v = rs->reg->ctxs.head; !rc && v; v = v->next)
		rc = js_push(arr, ctx_to_json(v));
	return rc;
}

/*
 * Reopens one saved context as an orphan. Returns the devices it had
 * when it cannot come back (0 when it did, or when the entry names
 * nothing trustworthy): the root lent them to it and must take them back.
 */
static uint64_t restore_context(struct restart *rs, struct json_object *j)
{
	struct fdstore_ctx_take take = {.rs = rs};
	struct json_object *bs = js_get(j, "backend_state", json_type_object);
	const char *why = NULL;
	struct backend *be = NULL;
	struct vm_ctx *v;
	uint64_t devs;
	uint32_t uid;
	int rc;

	if (js_u32(j, "no", &take.no) || !take.no || js_u32(j, "uid", &uid) ||
	    js_u64(j, "devices", UINT64_MAX, &devs) || !bs || ctx_numbered(rs, take.no)) {
		log_warn("state file: malformed VM context skipped");
		return 0;
	}
	if (!rs->be->ops->reopen_context) {
		log_warn("state file: VM context %u: the backend has no contexts; skipped",
			 take.no);
		return devs;
	}
	rc = rs->be->ops->reopen_context(rs->be, bs, fdstore_take_ctx, &take, &be, &why);
	v = rc ? NULL : calloc(1, sizeof(*v));
	if (!v) {
		/* Its HWPTs and memory are skipped with it: nothing names them any more. */
		log_warn("VM context %u (uid %u) cannot be recovered: %s", take.no, uid,
			 rc ? (why && *why ? why : strerror(-rc)) : "out of memory");
		if (be)
			be->ops->close(be);
		return devs;
	}
	v->be = be;
	v->devs = devs;
	v->uid = uid;
	v->orphan = true;
	vmctx_link(v, &rs->reg->ctxs, take.no);
	fdstore_adopt_ctx(rs, v);
	log_info("VM context %u (uid %u) waits for its owner's Reclaim", v->no, uid);
	return 0;
}

/*
 * The devices of contexts that could not come back: the root lent them
 * (a VFIO cdev binds to one iommufd at a time) and nobody would ever give
 * them back, so the root binds them again now, their old descriptors
 * being closed. One that a context that did come back holds stays there
 * (two saved contexts never share one, but a broken file might say so).
 */
static void take_back_devices(struct restart *rs, uint64_t lost)
{
	for (uint32_t i = 0; lost && i < rs->reg->n_bindings && i < 64; i++) {
		const char *name = rs->reg->bindings[i].dev->name;
		int rc;

		if (!(lost >> i & 1) || vmctx_of_device(&rs->reg->ctxs, i))
			continue;
		rc = rs->be->ops->take_back_device ? rs->be->ops->take_back_device(rs->be, name)
						   : -EOPNOTSUPP;
		if (rc)
			log_warn("device %s: its VM context is gone and the daemon's own iommufd "
				 "cannot bind it again yet: %s (retried when a request names it)",
				 name, strerror(-rc));
		else
			log_notice("device %s: its VM context is gone; back in the daemon's own "
				   "iommufd",
				   name);
	}
}

void restart_restore_contexts(struct restart *rs)
{
	struct json_object *arr =
	    rs->state && rs->restored ? js_get(rs->state, "contexts", json_type_array) : NULL;
	size_t n = arr ? json_object_array_length(arr) : 0;
	uint64_t lost = 0;

	for (size_t i = 0; i < n; i++)
		lost |= restore_context(rs, json_object_array_get_idx(arr, i));
	rs->lost_ctx_devs = lost;
	/* Entries of contexts that could not come back would pin their objects forever. */
	fdstore_drop_stale_ctx(rs);
	/* After their descriptors closed: until then the cdevs are still bound to them. */
	take_back_devices(rs, lost);
}

static int map_cmp(const void *a, const void *b)
{
	const struct mem_map *x = a, *y = b;

	return x->iova < y->iova ? -1 : x->iova > y->iova;
}

/*
 * recovery.c's scrub for a context: its devices share ONE IOAS, so the
 * recorded areas are those of all of them, and the gaps between them are
 * unmapped through any one of its devices (every device sees the IOAS).
 */
static void scrub_context(struct restart *rs, struct vm_ctx *v)
{
	struct backend *be = v->be;
	const char *dev = NULL;
	struct mem_map *all = NULL;
	uint32_t n = 0;
	uint64_t from = 0;

	if (!be->ops->unmap_memory)
		return;
	for (uint32_t i = 0; i < rs->reg->n_bindings; i++) {
		const struct device_binding *b = &rs->reg->bindings[i];
		struct mem_map *m;

		if (!vmctx_has(v, i))
			continue;
		dev = dev ? dev : b->dev->name;
		if (!b->n_maps)
			continue;
		m = realloc(all, (n + b->n_maps) * sizeof(*all));
		if (!m) {
			/* Unknown areas stay: the VM's own IOAS, gone with the context anyway. */
			free(all);
			log_warn("VM context %u: out of memory, unrecorded guest memory stays",
				 v->no);
			return;
		}
		all = m;
		memcpy(all + n, b->maps, b->n_maps * sizeof(*all));
		n += b->n_maps;
	}
	if (!dev) {
		free(all);
		return;
	}
	if (!n) {
		be->ops->unmap_memory(be, dev, 0, UINT64_MAX);
		return;
	}
	qsort(all, n, sizeof(*all), map_cmp);
	for (uint32_t k = 0; k < n; k++) {
		if (all[k].iova > from)
			be->ops->unmap_memory(be, dev, from, all[k].iova - from);
		from = all[k].last + 1;
	}
	if (from)
		be->ops->unmap_memory(be, dev, from, UINT64_MAX - from + 1);
	free(all);
}

void restart_scrub_context_memory(struct restart *rs)
{
	for (struct vm_ctx *v = rs->reg->ctxs.head; v; v = v->next)
		if (v->orphan)
			scrub_context(rs, v);
}

uint32_t restart_orphan_contexts(const struct restart *rs)
{
	uint32_t n = 0;

	if (!rs->reg)
		return 0;
	for (const struct vm_ctx *v = rs->reg->ctxs.head; v; v = v->next)
		n += v->orphan;
	return n;
}

void restart_close_orphan_contexts(struct restart *rs)
{
	struct vm_ctx *v, *next;

	for (v = rs->reg->ctxs.head; v; v = next) {
		next = v->next;
		if (!v->orphan)
			continue;
		/* After the teardown: its HWPTs and memory went first, then the context. */
		log_info("closing unclaimed VM context %u (uid %u)", v->no, (unsigned)v->uid);
		vmctx_close(v);
		free(v);
	}
}

int restart_adopt_context(struct restart *rs, struct session *s, struct backend *be)
{
	struct vm_ctx *v;
	uint32_t no;

	if (be == rs->be || s->vm.be == be)
		return 0; /* a root HWPT, or s has the context already */
	for (v = rs->reg->ctxs.head; v && v->be != be; v = v->next)
		;
	if (!v || !v->orphan)
		return -ENOENT; /* another session took it: its HWPTs are that one's */
	if (s->vm.be)
		return -EBUSY; /* a session is one VM: one context */
	no = v->no;
	vmctx_unlink(v);
	s->vm.be = v->be;
	s->vm.devs = v->devs;
	s->vm.tracking = 0; /* tracking is the nest parent's: the VMM turns it on again */
	s->vm.uid = s->cred.uid;
	vmctx_link(&s->vm, &rs->reg->ctxs, no);
	free(v);
	/* The VM's memory comes with it, on every device of the context. */
	for (uint32_t i = 0; i < rs->reg->n_bindings; i++) {
		struct device_binding *b = &rs->reg->bindings[i];

		if (vmctx_has(&s->vm, i) && b->n_maps && !b->mem_owner && b->mem_uid == s->cred.uid)
			b->mem_owner = s;
	}
	log_info("session %llu: VM context %u reclaimed", (unsigned long long)s->id, no);
	return 0;
}
