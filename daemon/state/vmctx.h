/* SPDX-License-Identifier: MIT */
/*
 * A client's VM context: the backend instance (backend.h open_context)
 * that holds everything the client's VM has: its own iommufd, ONE IOAS
 * for its guest memory shared by all of its devices, each device's nest
 * parent on it, and the nested HWPTs on those. The kernel itself then
 * keeps every other tenant's ids out of the client's reach, not only the
 * registry. Opened at the client's first device claim (a client that
 * never names a device, an operator's CLI, costs no /dev/iommu open);
 * devices join when the client claims one and leave when it holds
 * nothing on it any more; closed at teardown, after its objects went.
 */
#ifndef IOMMU_NESTD_STATE_VMCTX_H
#define IOMMU_NESTD_STATE_VMCTX_H

#include <stdbool.h>
#include <stdint.h>

#include <sys/types.h>

struct backend;
struct vm_ctx;

/*
 * The open contexts, sessions' and orphans' alike (the registry has it):
 * persist/ saves each one and names its descriptors in the fd store by
 * its number, the teardown finds the instance a device's memory is in.
 */
struct vm_ctx_list {
	struct vm_ctx *head;
	uint32_t next_no; /* the last number given; restored ones count too */
};

struct vm_ctx {
	struct backend *be; /* NULL: not opened (yet) */
	uint64_t devs;	    /* bit i: configured device i is in it */
	uint64_t tracking;  /* bit i: dirty tracking on for device i (it stays in) */
	uint64_t id;	    /* the owning session's id, for logs */
	/*
	 * Its number while open (from 1; fd store names "ctx.<no>.*", the
	 * state file's "ctx"), unique among the open contexts of this and
	 * the previous instance.
	 */
	uint32_t no;
	/* Restored after a restart, waiting for its owner's Reclaim (heap, no session). */
	bool orphan;
	uid_t uid;		  /* the owner's, persisted: Reclaim checks it */
	struct vm_ctx_list *list; /* where it goes when opened (set by its holder) */
	struct vm_ctx *next, **pprev;
};

/* The instance a session's device, memory and HWPT calls go to. */
static inline struct backend *vmctx_backend(const struct vm_ctx *v, struct backend *root)
{
	return v && v->be ? v->be : root;
}

static inline bool vmctx_has(const struct vm_ctx *v, uint32_t i)
{
	return v->be && i < 64 && (v->devs >> i & 1);
}

/* Tracking on: the device's nest parent records the VM's writes, it must stay. */
static inline void vmctx_set_tracking(struct vm_ctx *v, uint32_t i, bool on)
{
	if (!vmctx_has(v, i))
		return;
	if (on)
		v->tracking |= UINT64_C(1) << i;
	else
		v->tracking &= ~(UINT64_C(1) << i);
}

/*
 * Puts configured device i (called name) into v, opening v on root
 * first: 0 (also when it is in already), -EBUSY when another context
 * holds it (a VFIO cdev binds to one iommufd at a time), or the
 * backend's errno.
 */
int vmctx_claim(struct vm_ctx *v, struct backend *root, uint32_t i, const char *name);

/* Takes device i out of v (-EBUSY while HWPTs sit on its nest parent). */
int vmctx_release(struct vm_ctx *v, uint32_t i, const char *name);

/* Links v (opened: v->be set) into list under number no (0: the next free). */
void vmctx_link(struct vm_ctx *v, struct vm_ctx_list *list, uint32_t no);
/* Takes v out of its list (nothing when not in one). */
void vmctx_unlink(struct vm_ctx *v);

/* The open context holding configured device i, or NULL (a device is in one at most). */
struct vm_ctx *vmctx_of_device(const struct vm_ctx_list *list, uint32_t i);

/*
 * Closes v: every device leaves, then the instance (its objects must be
 * gone already: the teardown's order, contexts before their root).
 */
void vmctx_close(struct vm_ctx *v);

#endif
