/* SPDX-License-Identifier: MIT */
/*
 * The daemon's view of the nested HWPTs it allocated for clients: id ->
 * owner session, device, data types, attachments. The backend holds the
 * objects; the registry decides who may name them. The devices (bindings,
 * guest memory) are state/devices.h's; the registry only carries their
 * table, so that one pointer names everything a client holds.
 */
#ifndef IOMMU_NESTD_HWPT_REGISTRY_H
#define IOMMU_NESTD_HWPT_REGISTRY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/config.h"
#include "util/journal.h"
#include "state/devices.h"
#include "state/veventqs.h"
#include "state/pasids.h"
#include "state/viommus.h"
#include "state/vmctx.h"

/* Size of the random resume token an Alloc reply carries. */
#define HWPT_TOKEN_LEN 16

struct session;
struct inv_request;
struct backend;

/* What one HWPT's invalidations cost, for operators (ListHwpts, metrics). */
struct hwpt_counters {
	uint64_t requests; /* Invalidate requests that reached its batch */
	uint64_t entries_received;
	uint64_t entries_submitted;
	uint64_t submissions;
	uint64_t pages_flushed; /* saturates at UINT64_MAX (a flush-all) */
	uint64_t escalations;
	uint64_t entries_failed;
	uint64_t flush_alls;
	uint64_t ranged_pages;
};

struct client_faults;

struct hwpt_entry {
	uint32_t id;
	uint32_t parent_id;
	uint32_t data_type; /* IOMMU_HWPT_DATA_* it was allocated with */
	uint32_t inv_type;  /* IOMMU_HWPT_INVALIDATE_DATA_* it accepts */
	uint32_t n_attached;
	uint32_t viommu_id; /* 7.x: the vIOMMU it sits on (its pt_id); 0: the nest parent */
	char device[CONFIG_NAME_MAX];
	/*
	 * The backend instance the HWPT lives in: the owner's VM context, or
	 * the root (backends without contexts, persisted and restored ones).
	 * Every call on the HWPT goes there; (be, id) is its key.
	 */
	struct backend *be;
	/*
	 * NULL for an orphan: a HWPT a previous daemon instance allocated,
	 * restored from the state file and waiting for Reclaim. Nobody can
	 * name an orphan but Reclaim (lookup_owned never matches NULL).
	 */
	struct session *owner;
	bool orphan;

	/* Who allocated it (persisted: Reclaim checks the uid) and its token. */
	uid_t owner_uid;
	gid_t owner_gid;
	pid_t owner_pid;
	/*
	 * The owner's session id in the instance that saved it: what ties
	 * it to the vIOMMUs and vDEVICEs the same session made (they go with
	 * its Reclaim, persist/viommus.c). 0: unknown (older files).
	 */
	uint64_t owner_session;
	uint8_t token[HWPT_TOKEN_LEN];
	/* Its fault object (IOMMU_HWPT_FAULT_ID_VALID), or 0: Reclaim brings the queue back. */
	uint32_t fault_id;

	struct hwpt_counters counters; /* since this instance took it */

	/* Invalidate requests waiting for this pass's batch (net/server.c). */
	struct inv_request *pending_head;
	struct inv_request **pending_tail;
	struct hwpt_entry *next_pending;

	struct hwpt_entry *next_owned; /* owner's list, newest first */
	struct hwpt_entry *hash_next;
};

struct hwpt_registry {
	struct hwpt_entry **buckets;
	uint32_t n_buckets; /* power of two */
	uint32_t count;
	struct device_binding bindings[CONFIG_MAX_DEVICES];
	uint32_t n_bindings;
	uint32_t n_orphans;
	/* Ids added or removed since the state was last saved (persist/state_save.c). */
	struct dirty_ids dirty;
	/* Clients' vIOMMUs and vDEVICEs (state/viommus.h). */
	struct vobj_table vobjs;
	/* Clients' vEVENTQs (state/veventqs.h). */
	struct veventq_table veventqs;
	/* The open VM contexts (state/vmctx.h), sessions' and orphaned ones. */
	struct vm_ctx_list ctxs;
	/* Clients' PASID attachments (state/pasids.h). */
	struct pasid_table pasids;
	/* Every open fault queue (state/faults.h), sessions' and orphans', and the last number. */
	struct client_faults *faults;
	uint32_t fault_no;
};

int hwpt_registry_init(struct hwpt_registry *reg, const struct config *cfg);
void hwpt_registry_fini(struct hwpt_registry *reg);

/* Adds an entry (copied); returns the stored entry or NULL on -ENOMEM. */
struct hwpt_entry *hwpt_registry_add(struct hwpt_registry *reg, const struct hwpt_entry *e);
void hwpt_registry_remove(struct hwpt_registry *reg, struct hwpt_entry *e);
/*
 * The entry of HWPT id in backend instance be (the root, or a VM context:
 * ids are unique per instance only, so an id alone names nothing).
 */
struct hwpt_entry *hwpt_registry_find(const struct hwpt_registry *reg, const struct backend *be,
				      uint32_t id);

/*
 * The entry for id if session s may name it. Anyone else's id, or an id that
 * does not exist, gives NULL: callers answer -ENOENT for both, so a client
 * cannot learn that another tenant's HWPT exists.
 */
struct hwpt_entry *hwpt_registry_lookup_owned(const struct hwpt_registry *reg, uint32_t id,
					      const struct session *s);

/* Calls fn on every entry; fn may not add or remove entries. */
void hwpt_registry_for_each(const struct hwpt_registry *reg,
			    void (*fn)(struct hwpt_entry *e, void *arg), void *arg);

/* Inverse of the wire's data type pairing: IOMMU_HWPT_DATA_* -> INVALIDATE_DATA_*. */
int hwpt_inv_type_for(uint32_t hwpt_data_type, uint32_t *inv_type);
/* inv_type of a nested HWPT without cache_invalidate_user (ARM SMMUv3: -EOPNOTSUPP). */
#define HWPT_INV_TYPE_NONE UINT32_MAX /* no IOMMU_HWPT_INVALIDATE_DATA_* value */

#endif
