/* SPDX-License-Identifier: MIT */
/*
 * The vEVENTQs the daemon allocated for clients (Linux 7.x), one per
 * (vIOMMU, type) as the kernel allows: id -> owner, vIOMMU, type, depth,
 * the backend's queue (id + fd) and the instance it lives in. The
 * registry holds the table; net/ reads each fd in the event loop (watch,
 * which it stops through unwatch before the fd closes: this room never
 * touches the loop). Kept apart from the vIOMMU table because an entry
 * owns a descriptor and a reader. Saved in the state file with its owner
 * (persist/veventqs.c); a restored one is an orphan (owner NULL, no
 * reader) until the Reclaim that brings its vIOMMU back, or reaped at the
 * grace period's end before its vIOMMU.
 */
#ifndef IOMMU_NESTD_STATE_VEVENTQS_H
#define IOMMU_NESTD_STATE_VEVENTQS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "backend/backend.h"

struct session;

struct veventq {
	uint32_t id;
	uint32_t viommu_id;
	uint32_t type; /* IOMMU_VEVENTQ_TYPE_* */
	uint32_t depth;
	struct backend_veventq q;
	struct backend *be; /* the instance (the client's VM context, or the root) */
	const struct session *owner;
	/* Saved with it: whose it is, and its number in the fd store's name ("veventq.<no>"). */
	uid_t owner_uid;
	uint64_t owner_session; /* restart_session_key() of the session that made it */
	uint32_t no;
	bool orphan; /* a previous instance's, waiting for its vIOMMU's Reclaim */
	void *watch;			    /* net/'s reader, or NULL */
	void (*unwatch)(struct veventq *v); /* stops and frees watch */
	struct veventq *next;
};

struct veventq_table {
	struct veventq *head;
	uint32_t count;
	uint32_t n_orphans;
	uint32_t last_no; /* the fd store numbers handed out */
};

/* Adds a copy of v; the stored entry, or NULL on -ENOMEM. */
struct veventq *veventq_add(struct veventq_table *t, const struct veventq *v);
/* The vEVENTQ id if owner holds it, else NULL (someone else's: -ENOENT, as none). */
struct veventq *veventq_lookup_owned(const struct veventq_table *t, uint32_t id,
				     const struct session *owner);
/*
 * Stops its reader, closes its fd and destroys it (the backend's
 * veventq_free); the entry goes whatever the kernel said. 0 or the
 * backend's negative errno.
 */
int veventq_destroy(struct veventq_table *t, struct veventq *v);
/* Destroys every vEVENTQ owner holds (a backend error is logged); how many went. */
uint32_t veventq_teardown(struct veventq_table *t, const struct session *owner,
			  uint64_t session_id);
/*
 * Destroys the orphans (of only_be, or all when NULL), each before its
 * vIOMMU can go (it holds it); how many went.
 */
uint32_t veventq_reap_orphans(struct veventq_table *t, const struct backend *only_be);
/* Frees the table's entries without touching the backend or the loop (the daemon's end). */
void veventq_table_fini(struct veventq_table *t);

#endif
