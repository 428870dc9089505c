/* SPDX-License-Identifier: MIT */
/*
 * Ending a device claim (claim.h). Same order as the teardown of a whole
 * session: detach first, so that nothing walks the session's stage-1
 * tables while its memory goes, then unmap, then the device itself: back
 * on the daemon's page table, then reset, which stops whatever DMA the
 * VMM left programmed, then the daemon takes the device back for itself
 * alone: a fresh binding, so that the fd the VMM may have kept reaches
 * nothing. Where it cannot (the VMM still holds that fd) the device is
 * stale: busy for everyone, retried at every request naming it. Other
 * failures are logged and the claim ends anyway.
 */
#include "state/claim.h"

#include <errno.h>
#include <string.h>

#include "backend/backend.h"
#include "state/devices.h"
#include "state/registry.h"
#include "util/log.h"

static bool detach_own(struct hwpt_registry *reg, struct backend *be, struct device_binding *b,
		       const struct session *s)
{
	struct hwpt_entry *e;
	int rc;

	if (!b->hwpt_id || b->owner != s)
		return false;
	rc = be->ops->detach(be, b->dev->name);
	if (rc)
		log_err("device %s: detach at the end of its claim: %s", b->dev->name,
			strerror(-rc));
	e = hwpt_registry_find(reg, b->hwpt_be, b->hwpt_id);
	if (e)
		e->n_attached--;
	b->owner = NULL;
	b->hwpt_id = 0;
	b->hwpt_be = NULL;
	return true;
}

static bool unmap_own(struct backend *be, struct device_binding *b, const struct session *s)
{
	if (!b->n_maps || b->mem_owner != s)
		return false;
	for (uint32_t k = 0; k < b->n_maps; k++) {
		const struct mem_map *m = &b->maps[k];
		int rc = be->ops->unmap_memory(be, b->dev->name, m->iova, m->last - m->iova + 1);

		if (rc)
			log_err("device %s: unmapping [%#llx, %#llx] at the end of its claim: %s",
				b->dev->name, (unsigned long long)m->iova,
				(unsigned long long)m->last, strerror(-rc));
	}
	binding_map_remove(b, 0, b->n_maps);
	return true;
}

bool device_claim_end(struct hwpt_registry *reg, struct backend *be, struct device_binding *b,
		      const struct session *s)
{
	bool changed = detach_own(reg, be, b, s);
	int rc;

	if (unmap_own(be, b, s))
		changed = true;
	if (be->ops->device_reclaim) {
		rc = be->ops->device_reclaim(be, b->dev->name);
		if (rc)
			log_err("device %s: putting it back on its page table: %s", b->dev->name,
				strerror(-rc));
	}
	if (be->ops->device_reset) {
		rc = be->ops->device_reset(be, b->dev->name);
		if (rc == -ENOTTY)
			log_info("device %s: released unreset (it has no VFIO reset)",
				 b->dev->name);
		else if (rc)
			log_err("device %s: VFIO_DEVICE_RESET: %s", b->dev->name, strerror(-rc));
		else
			log_info("device %s: reset at the end of its claim", b->dev->name);
	}
	if (be->ops->device_release) {
		rc = be->ops->device_release(be, b->dev->name);
		b->stale = rc != 0;
		if (rc == -EBUSY)
			log_warn("device %s: its former client keeps the device fd open: out "
				 "of service until it closes it",
				 b->dev->name);
		else if (rc)
			log_err("device %s: taking it back: %s", b->dev->name, strerror(-rc));
	}
	b->opener = NULL;
	/* The backend's binding changed (taken back afresh) even where nothing else did. */
	return changed || be->ops->device_release != NULL;
}
