/* SPDX-License-Identifier: MIT */
/*
 * persist/'s own: $LISTEN_FDS and the fd store (fdstore.c), for the
 * other persist files.
 */
#ifndef IOMMU_NESTD_PERSIST_FDSTORE_H
#define IOMMU_NESTD_PERSIST_FDSTORE_H

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

/* Closes the inherited descriptors nobody took (a socket we do not serve, say) and says so. */
void fdstore_close_leftovers(struct restart *rs);

/* Clean stop: drops this instance's entries from the store. */
void fdstore_forget_ours(struct restart *rs);

/* Closes what was never taken and frees rs->in. */
void fdstore_fini(struct restart *rs);

#endif
