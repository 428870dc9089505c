/* SPDX-License-Identifier: MIT */
/*
 * Clients' PASID attachments (Linux 7.x): which HWPT sits on which PASID
 * of which device, and whose it is. The backend holds the attachment; the
 * table decides who may change it and takes it off at the teardown,
 * before the HWPTs go (a HWPT on a PASID cannot be destroyed). In the
 * state file with its owner (persist/pasids.c): a restored one is an
 * orphan (owner NULL, holding the device) until the Reclaim of a HWPT on
 * its device, or detached at the grace period's end before the HWPTs go.
 */
#ifndef IOMMU_NESTD_STATE_PASIDS_H
#define IOMMU_NESTD_STATE_PASIDS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct backend;
struct hwpt_registry;
struct session;

struct pasid_attach {
	uint32_t dev; /* the device's binding index */
	uint32_t pasid;
	uint32_t hwpt_id;   /* a nested HWPT of owner's, or the device's nest parent */
	struct backend *be; /* the instance the HWPT (and the device) live in */
	struct session *owner;
	uid_t owner_uid;	/* saved with it (persist/pasids.c) */
	uint64_t owner_session; /* restart_session_key() of owner */
	bool orphan;		/* a previous instance's, waiting for a Reclaim */
};

struct pasid_table {
	struct pasid_attach *a;
	uint32_t n, cap;
	uint32_t n_orphans;
};

/* The attachment on pasid of device dev, or NULL. */
struct pasid_attach *pasid_find(struct pasid_table *t, uint32_t dev, uint32_t pasid);
/*
 * Records that hwpt_id of be now sits on pasid of device dev for owner
 * (a replace updates the entry) and marks the device held. 0 or -ENOMEM.
 */
int pasid_record(struct hwpt_registry *reg, uint32_t dev, uint32_t pasid, uint32_t hwpt_id,
		 struct backend *be, struct session *owner);
/* Forgets p (detached), and the device's hold when it was the last. */
void pasid_forget(struct hwpt_registry *reg, struct pasid_attach *p);
/* Whether HWPT id of be sits on any PASID. */
bool pasid_hwpt_attached(const struct pasid_table *t, const struct backend *be, uint32_t id);
/*
 * Detaches every PASID s holds (s NULL: the orphans, of only_be when not
 * NULL; a backend error is logged and the attachment forgotten all the
 * same). Returns whether there were any.
 */
bool pasid_teardown(struct hwpt_registry *reg, const struct session *s, uint64_t session_id,
		    const struct backend *only_be);
void pasid_table_fini(struct pasid_table *t);

#endif
