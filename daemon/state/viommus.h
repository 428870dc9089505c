/* SPDX-License-Identifier: MIT */
/*
 * The vIOMMUs and vDEVICEs the daemon allocated for clients (Linux 7.x):
 * id -> kind, owner session, device, and for a vDEVICE its vIOMMU and the
 * guest's id for the device (virt_id: an SMMUv3 vSID). The backend holds
 * the objects; this table decides who may name them. Kept apart from the
 * HWPT registry behind a small interface (owner + kind + id) so that a
 * per-VM-context registry can carry it unchanged.
 */
#ifndef IOMMU_NESTD_STATE_VIOMMUS_H
#define IOMMU_NESTD_STATE_VIOMMUS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/config.h"

struct backend;
struct session;

/* Object kinds; the values are the wire's ObjectKind. */
enum vobj_kind {
	VOBJ_VIOMMU = 1,
	VOBJ_VDEVICE = 2,
};

#define VOBJ_TOKEN_LEN 16 /* as a HWPT's (HWPT_TOKEN_LEN) */

struct vobj {
	uint32_t id;
	enum vobj_kind kind;
	uint32_t type;	    /* vIOMMU: IOMMU_VIOMMU_TYPE_* */
	uint32_t parent_id; /* vIOMMU: the nest parent it sits on */
	uint32_t viommu_id; /* vDEVICE: its vIOMMU */
	uint64_t virt_id;   /* vDEVICE: the guest's id for the device */
	char device[CONFIG_NAME_MAX];
	/*
	 * vIOMMU of type ARM SMMUv3: the host SMMU has range invalidation
	 * (SMMU_IDR3.RIL), read from hw_info once at alloc, not per request.
	 */
	bool smmu_range;
	const struct session *owner;
	/*
	 * The backend instance it lives in (the owner's VM context or the
	 * root); NULL: the one the caller passes (tests, older callers).
	 */
	struct backend *be;
	/*
	 * Restart survival (persist/viommus.c): who allocated it, saved in
	 * the state file; an orphan (owner NULL) is a previous instance's,
	 * waiting for its owner's Reclaim or the end of the grace period.
	 */
	uid_t owner_uid;
	gid_t owner_gid;
	pid_t owner_pid;
	uint64_t owner_session; /* as hwpt_entry's: the session that made it */
	bool orphan;
	/* A vIOMMU's resume token (AllocViommuReply): Reclaim by it, without a HWPT. */
	uint8_t token[VOBJ_TOKEN_LEN];
	bool has_token; /* files from before tokens have none: only a HWPT brings it back */
	struct vobj *next;
};

struct vobj_table {
	struct vobj *head; /* newest first: vDEVICEs before the vIOMMU they sit on */
	uint32_t count;
	uint32_t n_orphans;
	/* Bumped on every change (add, remove, hand-over): the state file's is due. */
	uint64_t gen;
};

void vobj_table_fini(struct vobj_table *t);

/* Adds a copy of v (newest first); the stored entry, or NULL on -ENOMEM. */
struct vobj *vobj_add(struct vobj_table *t, const struct vobj *v);
void vobj_remove(struct vobj_table *t, struct vobj *v);

/*
 * The object of kind with id if owner holds it, else NULL: someone else's
 * id and an id that does not exist look the same (-ENOENT for both).
 */
struct vobj *vobj_lookup_owned(const struct vobj_table *t, enum vobj_kind kind, uint32_t id,
			       const struct session *owner);

/* The vDEVICE on viommu_id with virt_id, or NULL (a vSID -> vDEVICE lookup). */
struct vobj *vobj_vdevice_of(const struct vobj_table *t, uint32_t viommu_id, uint64_t virt_id);

/* Whether a vIOMMU or vDEVICE of anyone but owner sits on device. */
bool vobj_device_held_by_other(const struct vobj_table *t, const char *device,
			       const struct session *owner);

/*
 * Destroys everything owner holds, vDEVICEs before their vIOMMUs (the
 * kernel refuses a vIOMMU in use with -EBUSY). A backend error is logged
 * and the object forgotten all the same. Returns how many went.
 */
uint32_t vobj_teardown(struct vobj_table *t, struct backend *be, const struct session *owner,
		       uint64_t session_id);

/*
 * The orphans' end (grace expiry, clean stop): vDEVICEs, then vIOMMUs, of
 * instance only_be (NULL: every instance). Returns how many went.
 */
uint32_t vobj_reap_orphans(struct vobj_table *t, struct backend *be, const struct backend *only_be);

#endif
