/* SPDX-License-Identifier: MIT */
/*
 * persist/'s own: $LISTEN_FDS and the fd store (fdstore.c), for the
 * other persist files.
 */
#ifndef IOMMU_NESTD_PERSIST_FDSTORE_H
#define IOMMU_NESTD_PERSIST_FDSTORE_H

#include <stdio.h>

#include "persist/restart.h"

/* Takes $LISTEN_FDS/$LISTEN_FDNAMES into rs->in: 0 or -ENOMEM. */
int fdstore_collect(struct restart *rs);

/* backend_take_fd_fn (ctx: rs): the first untaken descriptor called name. */
int fdstore_take(void *ctx, const char *name);

/*
 * Makes the fd store hold exactly be's descriptors: stale inherited
 * entries out, new descriptors in. An adopted descriptor is already
 * there: systemd keeps the store across our restart.
 */
void fdstore_sync(struct restart *rs, struct backend *be);

/*
 * At every save after that: the backend's descriptors that changed since
 * (a device's cdev closed, or bound afresh) replaced in the store.
 */
void fdstore_resync(struct restart *rs);

struct vm_ctx;
struct vm_ctx_list;

/* backend_take_fd_fn for a context: its own names, under "ctx.<no>." in the store. */
struct fdstore_ctx_take {
	struct restart *rs;
	uint32_t no;
};
int fdstore_take_ctx(void *arg, const char *name);

/* After recovery reopened the contexts: inherited context entries nobody took go. */
void fdstore_drop_stale_ctx(struct restart *rs);

/* A reopened context's descriptors are the store's already: recorded as kept. */
void fdstore_adopt_ctx(struct restart *rs, const struct vm_ctx *v);

/*
 * Makes the store hold exactly the open contexts' descriptors (at every
 * save): a closed context's or a left device's out, new ones in.
 */
void fdstore_sync_ctx(struct restart *rs, const struct vm_ctx_list *list);

/* A fault queue's store name ("fault.<no>", persist/faults.c). */
static inline void fdstore_fault_name(char *buf, size_t len, uint32_t no)
{
	snprintf(buf, len, "fault.%u", no);
}

/* A reopened fault queue's descriptor is the store's already: recorded as kept. */
void fdstore_adopt_fault(struct restart *rs, const char *name, int fd);
/* An inherited entry taken but not kept (the backend replaced it): out of the store. */
void fdstore_drop_taken(struct restart *rs, const char *name);
/* After recovery reopened the fault queues: inherited fault entries nobody took go. */
void fdstore_drop_stale_faults(struct restart *rs);
/*
 * Makes the store hold exactly the open fault queues' and the clients'
 * vEVENTQs' descriptors (at every save).
 */
void fdstore_sync_faults(struct restart *rs);

/* A vEVENTQ's store name ("veventq.<no>", persist/veventqs.c), kept with the fault queues'. */
static inline void fdstore_veventq_name(char *buf, size_t len, uint32_t no)
{
	snprintf(buf, len, "veventq.%u", no);
}
/*
 * Before a stored queue's object is destroyed: its entry out of the store
 * and waited for (sd_notify_barrier), as the store's copy of the fd holds
 * the object (-EBUSY to IOMMU_DESTROY). Not stored: nothing to do.
 */
void fdstore_release_queue(struct restart *rs, const char *name);
/* After recovery reopened the vEVENTQs: inherited vEVENTQ entries nobody took go. */
void fdstore_drop_stale_veventqs(struct restart *rs);

/* Closes the inherited descriptors nobody took (a socket we do not serve, say) and says so. */
void fdstore_close_leftovers(struct restart *rs);

/* Clean stop: drops this instance's entries from the store. */
void fdstore_forget_ours(struct restart *rs);

/* Closes what was never taken and frees rs->in. */
void fdstore_fini(struct restart *rs);

#endif
