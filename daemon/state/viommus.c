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
	t->n_orphans += n->orphan;
	t->gen++;
	return n;
}

void vobj_remove(struct vobj_table *t, struct vobj *v)
{
	for (struct vobj **pp = &t->head; *pp; pp = &(*pp)->next)
		if (*pp == v) {
			*pp = v->next;
			t->count--;
			t->n_orphans -= v->orphan;
			t->gen++;
			free(v);
			return;
		}
}

struct vobj *vobj_lookup_owned(const struct vobj_table *t, enum vobj_kind kind, uint32_t id,
			       const struct session *owner)
{
	/*
	 * Ids repeat across instances (the root, each VM context, a previous
	 * instance's orphans): the owner is part of the key.
	 */
	for (struct vobj *v = t->head; owner && v; v = v->next)
		if (v->id == id && v->kind == kind && v->owner == owner)
			return v;
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

/* Whose objects go: a session's, or (owner NULL) the orphans of only_be (NULL: all). */
struct vobj_holder {
	const struct session *owner;
	const struct backend *only_be;
	uint64_t session_id;
};

static bool held_by(const struct vobj *v, const struct vobj_holder *h)
{
	if (h->owner)
		return v->owner == h->owner;
	return v->orphan && (!h->only_be || v->be == h->only_be);
}

static void destroy_kind(struct vobj_table *t, struct backend *be, const struct vobj_holder *h,
			 enum vobj_kind kind, uint32_t *n)
{
	for (struct vobj **pp = &t->head; *pp;) {
		struct vobj *v = *pp;
		struct backend *ob = v->be ? v->be : be;
		int rc;

		if (!held_by(v, h) || v->kind != kind) {
			pp = &v->next;
			continue;
		}
		rc = ob->ops->destroy_object ? ob->ops->destroy_object(ob, v->id) : -ENOTTY;
		if (rc && h->owner)
			log_event(LOG_ERR, LOG_EV_BACKEND_ERROR,
				  LOG_FIELDS(LF_UINT("session", h->session_id),
					     LF_STR("op", "destroy"), LF_UINT("id", v->id),
					     LF_INT("error", rc)),
				  "destroy %s at disconnect: %s",
				  kind == VOBJ_VIOMMU ? "viommu" : "vdevice", strerror(-rc));
		else if (rc)
			log_event(LOG_ERR, LOG_EV_BACKEND_ERROR,
				  LOG_FIELDS(LF_STR("op", "destroy"), LF_UINT("id", v->id),
					     LF_INT("error", rc)),
				  "destroy orphan %s %u: %s",
				  kind == VOBJ_VIOMMU ? "viommu" : "vdevice", v->id, strerror(-rc));
		else if (!h->owner)
			log_info("destroyed unclaimed %s %u (uid %u)",
				 kind == VOBJ_VIOMMU ? "viommu" : "vdevice", v->id,
				 (unsigned)v->owner_uid);
		*pp = v->next;
		t->count--;
		t->n_orphans -= v->orphan;
		t->gen++;
		free(v);
		(*n)++;
	}
}

/* The kernel's order: a vIOMMU with vDEVICEs on it is -EBUSY. */
static uint32_t destroy_held(struct vobj_table *t, struct backend *be, const struct vobj_holder *h)
{
	uint32_t n = 0;

	destroy_kind(t, be, h, VOBJ_VDEVICE, &n);
	destroy_kind(t, be, h, VOBJ_VIOMMU, &n);
	return n;
}

uint32_t vobj_teardown(struct vobj_table *t, struct backend *be, const struct session *owner,
		       uint64_t session_id)
{
	struct vobj_holder h = {.owner = owner, .session_id = session_id};

	return owner ? destroy_held(t, be, &h) : 0;
}

uint32_t vobj_reap_orphans(struct vobj_table *t, struct backend *be, const struct backend *only_be)
{
	struct vobj_holder h = {.only_be = only_be};

	return destroy_held(t, be, &h);
}
