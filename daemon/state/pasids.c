// SPDX-License-Identifier: MIT
/*
 * Clients' PASID attachments (see pasids.h): a small unordered table, a
 * VM attaches a handful of PASIDs per device.
 */
#include "state/pasids.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "state/registry.h"
#include "util/log.h"
#include "util/common.h"

struct pasid_attach *pasid_find(struct pasid_table *t, uint32_t dev, uint32_t pasid)
{
	for (uint32_t i = 0; i < t->n; i++)
		if (t->a[i].dev == dev && t->a[i].pasid == pasid)
			return &t->a[i];
	return NULL;
}

int pasid_record(struct hwpt_registry *reg, uint32_t dev, uint32_t pasid, uint32_t hwpt_id,
		 struct backend *be, struct session *owner)
{
	struct pasid_table *t = &reg->pasids;
	struct device_binding *b = &reg->bindings[dev];
	struct pasid_attach *p = pasid_find(t, dev, pasid);

	if (!p) {
		struct pasid_attach *n = array_room(t->a, t->n, &t->cap, sizeof(*n), 8);

		if (!n)
			return -ENOMEM;
		t->a = n;
		p = &t->a[t->n++];
		p->dev = dev;
		p->pasid = pasid;
		p->orphan = false;
		b->n_pasids++;
	}
	/* A replace by the owner: it is the owner's now, whatever it was. */
	t->n_orphans -= p->orphan;
	p->orphan = false;
	p->hwpt_id = hwpt_id;
	p->be = be;
	p->owner = owner;
	b->pasid_owner = owner;
	return 0;
}

void pasid_forget(struct hwpt_registry *reg, struct pasid_attach *p)
{
	struct pasid_table *t = &reg->pasids;
	struct device_binding *b = &reg->bindings[p->dev];

	if (--b->n_pasids == 0)
		b->pasid_owner = NULL;
	t->n_orphans -= p->orphan;
	*p = t->a[--t->n];
}

bool pasid_hwpt_attached(const struct pasid_table *t, const struct backend *be, uint32_t id)
{
	for (uint32_t i = 0; i < t->n; i++)
		if (t->a[i].be == be && t->a[i].hwpt_id == id)
			return true;
	return false;
}

bool pasid_teardown(struct hwpt_registry *reg, const struct session *s, uint64_t session_id,
		    const struct backend *only_be)
{
	struct pasid_table *t = &reg->pasids;
	bool changed = false;

	/* Downwards: forgetting moves the last entry, already visited, into slot i. */
	for (uint32_t i = t->n; i-- > 0;) {
		struct pasid_attach *p = &t->a[i];
		const char *device = reg->bindings[p->dev].dev->name;
		int rc;

		if (p->owner != s || (!s && (!p->orphan || (only_be && p->be != only_be))))
			continue;
		changed = true;
		rc = p->be->ops->detach_pasid ? p->be->ops->detach_pasid(p->be, device, p->pasid)
					      : -EOPNOTSUPP;
		if (rc)
			log_event(LOG_WARNING, LOG_EV_BACKEND_ERROR,
				  LOG_FIELDS(LF_UINT("session", session_id),
					     LF_STR("op", "detach_pasid"), LF_STR("device", device),
					     LF_UINT("pasid", p->pasid),
					     LF_UINT("hwpt", p->hwpt_id), LF_INT("error", rc)),
				  "detach pasid at disconnect: %s", strerror(-rc));
		else if (!s)
			log_info("detached unclaimed PASID %u of %s (hwpt %u)", p->pasid, device,
				 p->hwpt_id);
		pasid_forget(reg, p);
	}
	return changed;
}

void pasid_table_fini(struct pasid_table *t)
{
	free(t->a);
	memset(t, 0, sizeof(*t));
}
