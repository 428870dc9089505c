/* SPDX-License-Identifier: MIT */
/*
 * The end of a device hand-off (OpenDevice / AdoptDevice): CloseDevice and
 * the death of the session that held the device fd both come here.
 */
#ifndef IOMMU_NESTD_STATE_CLAIM_H
#define IOMMU_NESTD_STATE_CLAIM_H

#include <stdbool.h>

struct backend;
struct device_binding;
struct hwpt_registry;
struct session;

/*
 * Ends s's claim on b: s's nested HWPT is detached from the device and s's
 * guest memory on it unmapped (the VMM keeps its copy of the fd, and that
 * copy must reach none of its memory once the claim is over), the device
 * is put back on the daemon's own page table (the VMM may have attached it
 * elsewhere with the fd), reset where it supports reset and taken back by
 * the backend alone (b->stale while it cannot be). Returns whether the
 * registry or the backend's binding changed (then the state file must be
 * written).
 */
bool device_claim_end(struct hwpt_registry *reg, struct backend *be, struct device_binding *b,
		      const struct session *s);

#endif
