/* SPDX-License-Identifier: MIT */
/*
 * The configured devices as the daemon holds them for its clients: which
 * nested HWPT each one is attached to and by whom, and the guest memory in
 * its stage 2. Apart from the HWPT registry (state/registry.h) because a
 * device is held by one client at a time while HWPTs are many per client:
 * different questions, different lifetimes. The table itself lives in
 * struct hwpt_registry (bindings[]), so that the names req/ and net/ use
 * (hwpt_registry_binding, ...) stay what they were.
 */
#ifndef IOMMU_NESTD_STATE_DEVICES_H
#define IOMMU_NESTD_STATE_DEVICES_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/config.h"

struct session;
struct hwpt_registry;
struct backend;

/* One MapMemory area on a device's stage 2: [iova, last], inclusive. */
struct mem_map {
	uint64_t iova;
	uint64_t last;
};

/*
 * Which nested HWPT each configured device is attached to, and by whom.
 * hwpt_id != 0 with owner NULL: attached to an orphan, busy for everyone.
 *
 * And the guest memory mapped into the device's stage 2 (its own IOAS),
 * sorted by iova and disjoint. All of it is mem_owner's: a device serves
 * one client at a time, whose memory and whose stage-1 tables it walks.
 * n_maps != 0 with mem_owner NULL: restored after a restart, waiting for
 * the Reclaim of the HWPT attached to the device (by a client of
 * mem_uid) or for the reaper; busy for everyone meanwhile.
 */
struct device_binding {
	const struct config_device *dev;
	uint32_t hwpt_id;	 /* 0: on its nest parent */
	struct backend *hwpt_be; /* the instance hwpt_id lives in (registry key with it) */
	struct session *owner;
	/* The session that holds the device's fd (OpenDevice / AdoptDevice); NULL: none. */
	struct session *opener;
	/*
	 * The claim as the state file has it (persist/claims.c): the
	 * opener's uid and pid. claim_orphan: restored after a restart, the
	 * VMM's fd still bound to the daemon's binding (its BARs, irqs and
	 * DMA keep working); busy for everyone until the holder's Reclaim
	 * gives the claim back, or the grace period ends it like a VMM's
	 * death.
	 */
	uid_t claim_uid;
	pid_t claim_pid;
	bool claim_orphan;
	/*
	 * A former holder kept the device's fd after its claim ended: the
	 * device serves nobody (it would DMA wherever that fd's owner
	 * programs it) until the backend takes it back (device_release).
	 */
	bool stale;

	/*
	 * PASIDs of the device with a HWPT on them (state/pasids.h), all
	 * pasid_owner's: like an attachment, they make the device busy for
	 * everyone else.
	 */
	struct session *pasid_owner;
	uint32_t n_pasids;

	struct session *mem_owner;
	uid_t mem_uid;
	struct mem_map *maps;
	uint32_t n_maps;
	uint32_t cap_maps;
	uint64_t mapped_bytes;
};

/* Binds each configured device of cfg to reg's table, all free. */
void device_bindings_init(struct hwpt_registry *reg, const struct config *cfg);
/* Frees the memory records (not the memory: that is the teardown's). */
void device_bindings_fini(struct hwpt_registry *reg);

struct device_binding *hwpt_registry_binding(struct hwpt_registry *reg, const char *device);

/*
 * Whether the device is held by anyone but s: attached to another
 * session's (or an orphan's) HWPT, or carrying another session's (or
 * orphaned) memory. Such a device takes neither s's memory nor s's HWPTs.
 */
bool hwpt_registry_held_by_other(const struct device_binding *b, const struct session *s);

/* Bytes of guest memory s has mapped, over all devices. */
uint64_t hwpt_registry_mapped_bytes(const struct hwpt_registry *reg, const struct session *s);

/* Whether an area of b meets [iova, last]. */
bool binding_map_overlaps(const struct device_binding *b, uint64_t iova, uint64_t last);
/* Records [iova, last] (no overlap allowed): 0, -EEXIST or -ENOMEM. */
int binding_map_add(struct device_binding *b, uint64_t iova, uint64_t last);
/*
 * The areas an IOMMU_IOAS_UNMAP of [iova, last] removes: *first and *count,
 * or -ENOENT if one of the areas meeting the range sticks out of it or no
 * area meets it at all.
 */
int binding_map_span(const struct device_binding *b, uint64_t iova, uint64_t last, uint32_t *first,
		     uint32_t *count);
/* Forgets count areas from first; the last one gone releases the device. */
void binding_map_remove(struct device_binding *b, uint32_t first, uint32_t count);

#endif
