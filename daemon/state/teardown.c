/* SPDX-License-Identifier: MIT */
/*
 * The one teardown path (see teardown.h): detach, unmap, destroy. The log
 * lines differ by holder (a session's carry its id, an orphan's say so),
 * the steps do not.
 */
#include "state/teardown.h"
#include "state/claim.h"

#include <string.h>

#include "backend/backend.h"
#include "state/registry.h"
#include "util/log.h"

static void log_detach_failed(const struct teardown_holder *h, const struct device_binding *b,
			      int rc)
{
	if (h->s)
		log_event(LOG_WARNING, LOG_EV_BACKEND_ERROR,
			  LOG_FIELDS(LF_UINT("session", h->session_id), LF_STR("op", "detach"),
				     LF_STR("device", b->dev->name), LF_UINT("hwpt", b->hwpt_id),
				     LF_INT("error", rc)),
			  "detach at disconnect: %s", strerror(-rc));
	else
		log_event(LOG_WARNING, LOG_EV_BACKEND_ERROR,
			  LOG_FIELDS(LF_STR("op", "detach"), LF_STR("device", b->dev->name),
				     LF_UINT("hwpt", b->hwpt_id), LF_INT("error", rc)),
			  "detach %s from orphan hwpt %u: %s", b->dev->name, b->hwpt_id,
			  strerror(-rc));
}

static void log_unmap_failed(const struct teardown_holder *h, const struct device_binding *b,
			     const struct mem_map *m, int rc)
{
	uint64_t len = m->last - m->iova + 1;

	if (h->s)
		log_event(LOG_ERR, LOG_EV_BACKEND_ERROR,
			  LOG_FIELDS(LF_UINT("session", h->session_id), LF_STR("op", "unmap"),
				     LF_STR("device", b->dev->name), LF_HEX("iova", m->iova),
				     LF_HEX("length", len), LF_INT("error", rc)),
			  "unmap at disconnect: %s", strerror(-rc));
	else
		log_event(LOG_ERR, LOG_EV_BACKEND_ERROR,
			  LOG_FIELDS(LF_STR("op", "unmap"), LF_STR("device", b->dev->name),
				     LF_HEX("iova", m->iova), LF_HEX("length", len),
				     LF_INT("error", rc)),
			  "unmap orphaned [%#llx, %#llx] on %s: %s", (unsigned long long)m->iova,
			  (unsigned long long)m->last, b->dev->name, strerror(-rc));
}

static void log_destroy(const struct teardown_holder *h, const struct hwpt_entry *e, int rc)
{
	if (h->s && rc)
		log_event(LOG_ERR, LOG_EV_BACKEND_ERROR,
			  LOG_FIELDS(LF_UINT("session", h->session_id), LF_STR("op", "destroy"),
				     LF_UINT("hwpt", e->id), LF_INT("error", rc)),
			  "destroy at disconnect: %s", strerror(-rc));
	else if (h->s)
		log_event(LOG_INFO, LOG_EV_HWPT_DESTROY,
			  LOG_FIELDS(LF_UINT("session", h->session_id), LF_CRED(h->cred),
				     LF_UINT("hwpt", e->id), LF_STR("device", e->device)),
			  "hwpt destroyed at disconnect");
	else if (rc)
		log_event(LOG_ERR, LOG_EV_BACKEND_ERROR,
			  LOG_FIELDS(LF_STR("op", "destroy"), LF_UINT("hwpt", e->id),
				     LF_INT("error", rc)),
			  "destroy orphan hwpt %u: %s", e->id, strerror(-rc));
	else
		log_info("destroyed unclaimed hwpt %u (uid %u)", e->id, (unsigned)e->owner_uid);
}

/* Devices on the holder's HWPTs (an orphan's: attached, owner NULL) go to their nest parents. */
static bool detach_devices(struct hwpt_registry *reg, struct backend *be,
			   const struct teardown_holder *h)
{
	bool changed = false;

	for (uint32_t i = 0; i < reg->n_bindings; i++) {
		struct device_binding *b = &reg->bindings[i];
		struct hwpt_entry *e;
		int rc;

		if (!b->hwpt_id || b->owner != h->s || (h->only_be && b->hwpt_be != h->only_be))
			continue;
		changed = true;
		/* The device sits in the instance of the HWPT it is attached to. */
		rc = b->hwpt_be ? b->hwpt_be->ops->detach(b->hwpt_be, b->dev->name)
				: be->ops->detach(be, b->dev->name);
		if (rc)
			log_detach_failed(h, b, rc);
		e = hwpt_registry_find(reg, b->hwpt_be, b->hwpt_id);
		if (e)
			e->n_attached--;
		b->owner = NULL;
		b->hwpt_id = 0;
		b->hwpt_be = NULL;
	}
	return changed;
}

/* The holder's guest memory (an orphan's: mem_owner NULL), device by device, area by area. */
static bool unmap_memory(struct hwpt_registry *reg, struct backend *be,
			 const struct teardown_holder *h)
{
	bool changed = false;

	for (uint32_t i = 0; i < reg->n_bindings; i++) {
		struct device_binding *b = &reg->bindings[i];

		/*
		 * Memory lives in the instance holding the device: for an
		 * orphan, a restored VM context (be is the root then).
		 */
		struct vm_ctx *v = vmctx_of_device(&reg->ctxs, i);
		struct backend *mb = v ? v->be : be;

		if (!b->n_maps || b->mem_owner != h->s || (h->only_be && mb != h->only_be))
			continue;
		changed = true;

		for (uint32_t k = 0; k < b->n_maps; k++) {
			const struct mem_map *m = &b->maps[k];
			int rc =
			    mb->ops->unmap_memory(mb, b->dev->name, m->iova, m->last - m->iova + 1);

			if (rc)
				log_unmap_failed(h, b, m, rc);
		}
		if (!h->s)
			log_info("unmapped unclaimed guest memory on %s (uid %u)", b->dev->name,
				 (unsigned)b->mem_uid);
		binding_map_remove(b, 0, b->n_maps);
	}
	return changed;
}

struct orphan_chain {
	struct hwpt_entry **tail;
	const struct backend *only_be;
};

/* Chains the orphans in registry order through next_owned (an orphan has no owner's list). */
static void chain_orphan(struct hwpt_entry *e, void *arg)
{
	struct orphan_chain *c = arg;

	if (!e->orphan || (c->only_be && e->be != c->only_be))
		return;
	e->next_owned = NULL;
	*c->tail = e;
	c->tail = &e->next_owned;
}

static bool has_child(const struct hwpt_entry *list, uint32_t id)
{
	for (; list; list = list->next_owned)
		if (list->parent_id == id)
			return true;
	return false;
}

/*
 * Destroys the HWPTs of list, children first: a parent with children is
 * -EBUSY. A session's list is newest first, which is children first
 * already: one pass, in list order.
 */
static void destroy_hwpts(struct hwpt_registry *reg, struct backend *be,
			  const struct teardown_holder *h, struct hwpt_entry *list,
			  uint64_t *hwpts_active)
{
	for (uint32_t pass = 0; list && pass <= reg->count; pass++)
		for (struct hwpt_entry **pp = &list; *pp;) {
			struct hwpt_entry *e = *pp;

			if (has_child(list, e->id)) {
				pp = &e->next_owned;
				continue;
			}
			*pp = e->next_owned;
			log_destroy(h, e,
				    e->be ? e->be->ops->destroy(e->be, e->id)
					  : be->ops->destroy(be, e->id));
			if (e->orphan)
				reg->n_orphans--;
			hwpt_registry_remove(reg, e);
			(*hwpts_active)--;
		}
}

bool state_teardown(struct hwpt_registry *reg, struct backend *be, struct teardown_holder *h,
		    uint64_t *hwpts_active)
{
	struct hwpt_entry *list = h->owned;
	bool changed = list != NULL;

	if (!h->s) {
		struct orphan_chain c = {.tail = &list, .only_be = h->only_be};

		list = NULL;
		hwpt_registry_for_each(reg, chain_orphan, &c);
		changed = list != NULL;
	}
	/*
	 * PASIDs first: a HWPT on one cannot be destroyed, and the RID goes
	 * back under them (an orphan's too: restored with its HWPT).
	 */
	if (pasid_teardown(reg, h->s, h->session_id, h->only_be))
		changed = true;
	if (detach_devices(reg, be, h))
		changed = true;
	if (unmap_memory(reg, be, h))
		changed = true;
	/* The devices it held the fds of: back on the daemon's page table, reset, free. */
	if (h->s)
		for (uint32_t i = 0; i < reg->n_bindings; i++)
			if (reg->bindings[i].opener == h->s)
				device_claim_end(reg, be, &reg->bindings[i], h->s);
	destroy_hwpts(reg, be, h, list, hwpts_active);
	/* Then its vEVENTQs (each holds its vIOMMU), then vDEVICEs and vIOMMUs. */
	if (h->s && veventq_teardown(&reg->veventqs, h->s, h->session_id))
		changed = true;
	/* An orphan's vEVENTQs too (restored with their vIOMMUs, persist/veventqs.c). */
	if (!h->s && veventq_reap_orphans(&reg->veventqs, h->only_be))
		changed = true;
	/* After the HWPTs: a nested HWPT on a vIOMMU holds it. */
	if (h->s && vobj_teardown(&reg->vobjs, be, h->s, h->session_id))
		changed = true;
	if (!h->s && vobj_reap_orphans(&reg->vobjs, be, h->only_be))
		changed = true;
	h->owned = NULL;
	return changed;
}
