/* SPDX-License-Identifier: MIT */
/*
 * Fault queues across a restart (restart.h). The kernel keeps a fault
 * object, its unread groups and the delivered ones waiting for a
 * response as long as its iommufd lives, but the only way to read or
 * answer them is the fault fd: that goes in the fd store ("fault.<no>",
 * fdstore.c), and the queue (its object id, its instance, its client's
 * uid and the book of delivered, unanswered groups) in the state file,
 * written before a group is sent (net/events.c). At start each one is
 * reopened as an orphan; the Reclaim of a HWPT that uses it hands it to
 * the session, which is sent the book's groups again and may answer them
 * (PageResponse reaches the kernel on the kept fd); groups still unread
 * are delivered as the session reads them. Unclaimed ones are closed at
 * the grace period's end, after their HWPTs (the kernel answers their
 * groups then).
 */
#include "persist/restart.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/session.h"
#include "persist/fdstore.h"
#include "state/faults.h"
#include "state/registry.h"
#include "util/json_util.h"
#include "util/log.h"

static struct json_object *pending_to_json(const struct fault_pending *p)
{
	struct json_object *o = json_object_new_object();
	const struct iommu_hwpt_pgfault *r = &p->rec;

	if (o && (js_add_u64(o, "cookie", p->cookie) || js_add_u64(o, "grpid", p->grpid) ||
		  js_add_u64(o, "hwpt_id", p->hwpt_id) || js_add_str(o, "device", p->device) ||
		  js_add_u64(o, "flags", r->flags) || js_add_u64(o, "dev_id", r->dev_id) ||
		  js_add_u64(o, "pasid", r->pasid) || js_add_u64(o, "perm", r->perm) ||
		  js_add_u64(o, "addr", r->addr) || js_add_u64(o, "length", r->length))) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static struct json_object *queue_to_json(const struct restart *rs, const struct client_faults *cf)
{
	struct json_object *o = json_object_new_object(), *arr;
	uint32_t ctx = cf->be != rs->be ? restart_ctx_no(rs, cf->be) : 0;

	if (!o || js_add_u64(o, "no", cf->no) || js_add_u64(o, "id", cf->q.id) ||
	    js_add_u64(o, "uid", cf->uid) || (ctx && js_add_u64(o, "ctx", ctx)))
		goto nomem;
	arr = js_add_new(o, "pending", true);
	for (uint32_t i = 0; arr && i < cf->n_pending; i++)
		if (js_push(arr, pending_to_json(&cf->pending[i])))
			goto nomem;
	if (!arr)
		goto nomem;
	return o;
nomem:
	json_object_put(o);
	return NULL;
}

int restart_save_faults(const struct restart *rs, struct json_object *root)
{
	struct json_object *arr;
	int rc = 0;

	/* Files without fault queues stay as earlier versions wrote them. */
	if (!rs->reg->faults)
		return 0;
	arr = js_add_new(root, "faults", true);
	if (!arr)
		return -ENOMEM;
	for (const struct client_faults *cf = rs->reg->faults; !rc && cf; cf = cf->next)
		rc = js_push(arr, queue_to_json(rs, cf));
	return rc;
}

static int restore_pending(struct client_faults *cf, struct json_object *j)
{
	struct fault_pending p = {0};
	struct iommu_hwpt_pgfault *r = &p.rec;
	uint64_t addr;

	if (js_u32(j, "cookie", &p.cookie) || js_u32(j, "grpid", &p.grpid) ||
	    js_u32(j, "hwpt_id", &p.hwpt_id) || js_str(j, "device", p.device, sizeof(p.device)) ||
	    js_u32(j, "flags", &r->flags) || js_u32(j, "dev_id", &r->dev_id) ||
	    js_u32(j, "pasid", &r->pasid) || js_u32(j, "perm", &r->perm) ||
	    js_u64(j, "addr", UINT64_MAX, &addr) || js_u32(j, "length", &r->length))
		return -EINVAL;
	r->addr = addr;
	r->cookie = p.cookie;
	r->grpid = p.grpid;
	return client_faults_add(cf, &p);
}

/* The instance of context no (0: the root), or NULL when it did not come back. */
static struct backend *instance(const struct restart *rs, uint32_t no)
{
	if (!no)
		return rs->be;
	for (const struct vm_ctx *v = rs->reg->ctxs.head; v; v = v->next)
		if (v->no == no)
			return v->be;
	return NULL;
}

static void restore_queue(struct restart *rs, struct json_object *j)
{
	struct json_object *arr = js_get(j, "pending", json_type_array);
	char name[BACKEND_FD_NAME_MAX];
	struct client_faults *cf;
	struct backend *be;
	uint32_t no, id, uid, ctx = 0;
	size_t n = arr ? json_object_array_length(arr) : 0;
	int fd, rc;

	if (js_u32(j, "no", &no) || !no || js_u32(j, "id", &id) || js_u32(j, "uid", &uid) || !arr ||
	    (json_object_object_get_ex(j, "ctx", NULL) && js_u32(j, "ctx", &ctx))) {
		log_warn("state file: malformed fault queue skipped");
		return;
	}
	fdstore_fault_name(name, sizeof(name), no);
	fd = fdstore_take(rs, name);
	be = instance(rs, ctx);
	cf = be && be->ops->fault_reopen ? calloc(1, sizeof(*cf)) : NULL;
	rc = cf ? be->ops->fault_reopen(be, id, fd, &cf->q) : -ENOENT;
	if (rc) {
		/* Its HWPTs' groups are the kernel's to answer when they go. */
		log_warn("fault queue %u (object %u, uid %u) cannot be recovered: %s", no, id, uid,
			 strerror(-rc));
		if (fd >= 0) {
			close(fd);
			fdstore_drop_taken(rs, name); /* the store's copy would pin the object */
		}
		free(cf);
		return;
	}
	cf->be = be;
	cf->uid = uid;
	cf->orphan = true;
	for (size_t i = 0; i < n; i++)
		if (restore_pending(cf, json_object_array_get_idx(arr, i)))
			log_warn("fault queue %u: a malformed unanswered group skipped", no);
	client_faults_link(rs->reg, cf, no);
	/* Taken from the store, so there already; one the backend replaced is dropped from it. */
	if (fd >= 0 && fd == cf->q.fd)
		fdstore_adopt_fault(rs, name, fd);
	else if (fd >= 0)
		fdstore_drop_taken(rs, name);
	log_info("fault queue %u (object %u, uid %u, %u unanswered groups) waits for its "
		 "owner's Reclaim",
		 no, id, uid, cf->n_pending);
}

void restart_restore_faults(struct restart *rs)
{
	struct json_object *arr =
	    rs->state && rs->restored ? js_get(rs->state, "faults", json_type_array) : NULL;
	size_t n = arr ? json_object_array_length(arr) : 0;

	for (size_t i = 0; i < n; i++)
		restore_queue(rs, json_object_array_get_idx(arr, i));
	/* Entries of queues that could not come back would pin their objects. */
	fdstore_drop_stale_faults(rs);
}

int restart_faults_follow(struct restart *rs, struct session *s, const struct hwpt_entry *e)
{
	struct client_faults *cf;

	if (!e->fault_id)
		return 0;
	for (cf = rs->reg->faults; cf; cf = cf->next)
		if (cf->be == e->be && cf->q.id == e->fault_id)
			break;
	if (!cf || !cf->orphan || cf->uid != s->cred.uid)
		return 0; /* the session's own already, or the kernel's to answer */
	/* One queue per session: it reads one fault fd. */
	if (s->faults)
		return -EEXIST;
	cf->orphan = false;
	s->faults = cf;
	log_info("session %llu: fault queue %u (%u unanswered groups) reclaimed",
		 (unsigned long long)s->id, cf->no, cf->n_pending);
	return 0;
}

bool restart_fault_conflict(const struct restart *rs, const struct session *s,
			    const struct hwpt_entry *e)
{
	for (const struct client_faults *cf = rs->reg->faults; e->fault_id && cf; cf = cf->next)
		if (cf->be == e->be && cf->q.id == e->fault_id)
			return cf->orphan && cf->uid == s->cred.uid && s->faults;
	return false;
}

void restart_close_orphan_faults(struct restart *rs)
{
	if (rs->reg)
		client_faults_close_orphans(rs->reg, NULL);
}

void restart_fault_release(struct restart *rs, const struct client_faults *cf)
{
	char name[BACKEND_FD_NAME_MAX];

	if (!rs || !rs->enabled || !cf)
		return;
	fdstore_fault_name(name, sizeof(name), cf->no);
	fdstore_release_queue(rs, name);
}
