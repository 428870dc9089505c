/* SPDX-License-Identifier: MIT */
/*
 * The session's VM context as requests see it (dispatch.h): which
 * instance a call goes to, when a device joins the context and when it
 * leaves.
 */
#include <errno.h>
#include <string.h>

#include "net/server.h"
#include "net/session.h"
#include "req/dispatch.h"
#include "state/viommus.h"
#include "state/vmctx.h"

struct backend *req_be_of(const struct session *s)
{
	return vmctx_backend(&s->vm, s->srv->be);
}

struct backend *req_be(const struct req_ctx *c)
{
	return req_be_of(c->s);
}

static uint32_t binding_index(const struct server *srv, const struct device_binding *b)
{
	return (uint32_t)(b - srv->reg.bindings);
}

int req_claim_device(struct req_ctx *c, struct device_binding *b)
{
	struct server *srv = c->srv;
	int rc;

	if (!srv->vm_contexts)
		return 0;
	rc = vmctx_claim(&c->s->vm, srv->be, binding_index(srv, b), b->dev->name);
	if (rc == -EBUSY)
		reply_error(c->rep, rc, "device \"%s\" is in another client's VM context",
			    b->dev->name);
	else if (rc)
		reply_error(c->rep, rc, "device \"%s\": cannot put it in the VM context: %s",
			    b->dev->name, strerror(-rc));
	return rc;
}

/*
 * Whether s still has anything on b: an attachment, memory, the fd, a HWPT
 * on its parent, dirty tracking on, a vIOMMU or vDEVICE.
 */
static bool holds(const struct session *s, const struct device_binding *b)
{
	if ((b->hwpt_id && b->owner == s) || (b->n_maps && b->mem_owner == s) || b->opener == s ||
	    (s->vm.tracking >> binding_index(s->srv, b) & 1) ||
	    (b->n_pasids && b->pasid_owner == s))
		return true;
	for (const struct hwpt_entry *e = s->owned; e; e = e->next_owned)
		if (!strcmp(e->device, b->dev->name))
			return true;
	/* A vIOMMU or vDEVICE of s on the device (its nest parent holds them). */
	for (const struct vobj *v = s->srv->reg.vobjs.head; v; v = v->next)
		if (v->owner == s && !strcmp(v->device, b->dev->name))
			return true;
	return false;
}

void req_settle_device(struct session *s, struct device_binding *b)
{
	uint32_t i = binding_index(s->srv, b);

	if (!vmctx_has(&s->vm, i) || holds(s, b))
		return;
	/* -EBUSY: an object the registry does not know still sits on it; it stays. */
	(void)vmctx_release(&s->vm, i, b->dev->name);
}

struct backend *req_be_holding(const struct req_ctx *c, const struct device_binding *b)
{
	uint32_t i = binding_index(c->srv, b);
	const struct session *o;

	if (vmctx_has(&c->s->vm, i))
		return c->s->vm.be;
	TAILQ_FOREACH(o, &c->srv->sessions, link)
	if (vmctx_has(&o->vm, i))
		return o->vm.be;
	return c->srv->be;
}
