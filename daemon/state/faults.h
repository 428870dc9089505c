/* SPDX-License-Identifier: MIT */
/*
 * A client's fault queue: the backend's fault object (one per session,
 * made on its first fault-capable Alloc) and the groups delivered to the
 * client and not yet answered, by the kernel's cookie. Only those a
 * client may answer (the daemon's rule: -ENOENT for any other cookie).
 */
#ifndef IOMMU_NESTD_STATE_FAULTS_H
#define IOMMU_NESTD_STATE_FAULTS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "backend/backend.h"
#include "util/config.h"

/*
 * Groups a client may hold unanswered at most: past it a new one is
 * answered INVALID by the daemon and counted lost (the book stays
 * bounded whatever the client does).
 */
#define CLIENT_FAULTS_MAX 65536

struct fault_pending {
	uint32_t cookie;
	uint32_t grpid;
	uint32_t hwpt_id; /* the HWPT the device was on when it faulted; 0: unknown */
	char device[CONFIG_NAME_MAX];
	/* The group's last record as the client was sent it: sent again after a restart. */
	struct iommu_hwpt_pgfault rec;
};

struct hwpt_registry;

/*
 * Listed in the registry (persist/faults.c saves them, with the book, and
 * keeps q.fd in the fd store as "fault.<no>"): be is the instance the
 * object lives in, uid its client's; orphan: restored after a restart,
 * waiting for the Reclaim of a HWPT that uses it.
 */
struct client_faults {
	struct backend_fault_queue q;
	struct fault_pending *pending;
	uint32_t n_pending, cap_pending;
	struct client_faults *next;
	uint32_t no;
	struct backend *be;
	uid_t uid;
	bool orphan;
};

/* IOMMU_FAULT_QUEUE_ALLOC for a client of uid, listed in reg. 0 with *out, or a negative errno. */
int client_faults_open(struct hwpt_registry *reg, struct backend *be, uid_t uid,
		       struct client_faults **out);
/* Lists a queue made otherwise (restored) under number no. */
void client_faults_link(struct hwpt_registry *reg, struct client_faults *cf, uint32_t no);
/*
 * Remembers a delivered group. A cookie the book has already is one the
 * kernel gave out again (it answered the old group itself, e.g. when the
 * device left the HWPT): the new group replaces it. 0, -ENOBUFS (the
 * book holds CLIENT_FAULTS_MAX) or -ENOMEM.
 */
int client_faults_add(struct client_faults *cf, const struct fault_pending *p);
/* Forgets the groups of a destroyed HWPT (the kernel answered them). */
void client_faults_forget_hwpt(struct client_faults *cf, uint32_t hwpt_id);
struct fault_pending *client_faults_find(struct client_faults *cf, uint32_t cookie);
void client_faults_remove(struct client_faults *cf, struct fault_pending *p);
/* Frees the fault object (its HWPTs must be gone) and the book, unlisted; logs a failure. */
void client_faults_close(struct hwpt_registry *reg, struct client_faults *cf);
/*
 * Closes the orphaned queues of instance be (NULL: of every instance), after
 * their HWPTs went: before a context closes, a queue must not outlive it.
 */
void client_faults_close_orphans(struct hwpt_registry *reg, const struct backend *be);

#endif
