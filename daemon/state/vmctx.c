/* SPDX-License-Identifier: MIT */
/* A client's VM context (see vmctx.h). */
#include "state/vmctx.h"

#include <errno.h>
#include <string.h>

#include "backend/backend.h"
#include "util/log.h"

int vmctx_claim(struct vm_ctx *v, struct backend *root, uint32_t i, const char *name)
{
	int rc;

	if (i >= 64)
		return -EINVAL;
	if (!v->be) {
		rc = root->ops->open_context(root, &v->be);
		if (rc) {
			v->be = NULL;
			return rc;
		}
		v->devs = 0;
		if (v->list)
			vmctx_link(v, v->list, 0);
		log_info("session %llu: VM context opened", (unsigned long long)v->id);
	}
	if (v->devs >> i & 1)
		return 0;
	rc = v->be->ops->add_device(v->be, name);
	/*
	 * The root lent the device to another context (sim: -EINVAL; the
	 * kernel answers a second bind of a cdev with -EINVAL too): to the
	 * client that is a busy device, as the registry says for one
	 * attached elsewhere.
	 */
	if (rc == -EINVAL || rc == -EEXIST)
		rc = -EBUSY;
	if (!rc)
		v->devs |= UINT64_C(1) << i;
	return rc;
}

int vmctx_release(struct vm_ctx *v, uint32_t i, const char *name)
{
	int rc;

	if (!vmctx_has(v, i))
		return 0;
	rc = v->be->ops->remove_device(v->be, name);
	/* -ENOENT: the context lost it already (a failed add); forget it all the same. */
	if (!rc || rc == -ENOENT) {
		v->devs &= ~(UINT64_C(1) << i);
		v->tracking &= ~(UINT64_C(1) << i);
	}
	return rc == -ENOENT ? 0 : rc;
}

void vmctx_link(struct vm_ctx *v, struct vm_ctx_list *list, uint32_t no)
{
	if (!no)
		no = ++list->next_no;
	else if (no > list->next_no)
		list->next_no = no;
	v->no = no;
	v->list = list;
	v->next = list->head;
	if (v->next)
		v->next->pprev = &v->next;
	v->pprev = &list->head;
	list->head = v;
}

void vmctx_unlink(struct vm_ctx *v)
{
	if (!v->pprev)
		return;
	*v->pprev = v->next;
	if (v->next)
		v->next->pprev = v->pprev;
	v->next = NULL;
	v->pprev = NULL;
	v->no = 0;
}

struct vm_ctx *vmctx_of_device(const struct vm_ctx_list *list, uint32_t i)
{
	for (struct vm_ctx *v = list->head; v; v = v->next)
		if (vmctx_has(v, i))
			return v;
	return NULL;
}

void vmctx_close(struct vm_ctx *v)
{
	if (!v->be)
		return;
	vmctx_unlink(v);
	/* Closing removes every device (backend.h); the context goes before its root. */
	v->be->ops->close(v->be);
	log_info("session %llu: VM context closed", (unsigned long long)v->id);
	v->be = NULL;
	v->devs = 0;
	v->tracking = 0;
}
