/* SPDX-License-Identifier: MIT */
/* The vIOMMU / vDEVICE table (see viommus.h): a list, a client holds a few. */
#include "state/viommus.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "util/log.h"

void vobj_table_fini(struct vobj_table *t)
{
	struct vobj *v = t->head, *next;

	for (; v; v = next) {
		next = v->next;
		free(v);
	}
	t->head = NULL;
	t->count = 0;
}

struct vobj *vobj_add(struct vobj_table *t, const struct vobj *v)
{
	struct vobj *n = malloc(sizeof(*n));

	if (!n)
		return NULL;
	*n = *v;
	n->next = t->head;
	t->head = n;
	t->count++;
	return n;
}

void vobj_remove(struct vobj_table *t, struct vobj *v)
{
	for (struct vobj **pp = &t->head; *pp; pp = &(*pp)->next)
		if (*pp == v) {
			*pp = v->next;
			t->count--;
			free(v);
			return;
		}
}

struct vobj *vobj_lookup_owned(const struct vobj_table *t, enum vobj_kind kind, uint32_t id,
			       const struct session *owner)
{
	for (struct vobj *v = t->head; v; v = v->next)
		if (v->id == id && v->kind == kind)
			return owner && v->owner == owner ? v : NULL;
	return NULL;
}

struct vobj *vobj_vdevice_of(const struct vobj_table *t, uint32_t viommu_id, uint64_t virt_id)
{
	for (struct vobj *v = t->head; v; v = v->next)
		if (v->kind == VOBJ_VDEVICE && v->viommu_id == viommu_id && v->virt_id == virt_id)
			return v;
	return NULL;
}

bool vobj_device_held_by_other(const struct vobj_table *t, const char *device,
			       const struct session *owner)
{
	for (struct vobj *v = t->head; v; v = v->next)
		if (v->owner != owner && !strcmp(v->device, device))
			return true;
	return false;
}

static void destroy_kind(struct vobj_table *t, struct backend *be, const struct session *owner,
			 uint64_t session_id, enum vobj_kind kind, uint32_t *n)
{
	for (struct vobj **pp = &t->head; *pp;) {
		struct vobj *v = *pp;
		int rc;

		if (v->owner != owner || v->kind != kind) {
			pp = &v->next;
			continue;
		}
		rc = be->ops->destroy_object ? be->ops->destroy_object(be, v->id) : -ENOTTY;
		if (rc)
			log_event(LOG_ERR, LOG_EV_BACKEND_ERROR,
				  LOG_FIELDS(LF_UINT("session", session_id),
					     LF_STR("op", "destroy"), LF_UINT("id", v->id),
					     LF_INT("error", rc)),
				  "destroy %s at disconnect: %s",
				  kind == VOBJ_VIOMMU ? "viommu" : "vdevice", strerror(-rc));
		*pp = v->next;
		t->count--;
		free(v);
		(*n)++;
	}
}

uint32_t vobj_teardown(struct vobj_table *t, struct backend *be, const struct session *owner,
		       uint64_t session_id)
{
	uint32_t n = 0;

	destroy_kind(t, be, owner, session_id, VOBJ_VDEVICE, &n);
	destroy_kind(t, be, owner, session_id, VOBJ_VIOMMU, &n);
	return n;
}
