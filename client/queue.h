/* SPDX-License-Identifier: MIT */
/*
 * The library's side of the shared-memory queue (iommu_nest_queue.h):
 * the memfd and eventfds, one synchronous invalidation through the rings.
 * Internal to libiommu-nest; iommu_nest.c owns the setup request.
 */
#ifndef IOMMU_NEST_CLIENT_QUEUE_H
#define IOMMU_NEST_CLIENT_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "iommu_nest.h"
#include "iommu_nest_queue.h"

struct nestq_client {
	struct nestq_layout l;
	uint8_t *base;
	int memfd, kick_fd, call_fd;
	uint32_t sq_tail, cq_head; /* ours; published to the area */
	uint32_t spin_us;
	uint64_t next_user_data;
	size_t max_entries; /* what one request may carry through the entry area */
};

/* Creates the area and both eventfds for rings of entries slots. 0 or -errno. */
int nestq_client_create(struct nestq_client *q, uint32_t entries, size_t max_entries,
			uint32_t spin_us);
void nestq_client_destroy(struct nestq_client *q);

/* Whether r goes through the queue (a known layout that fits the entry area). */
int nestq_client_fits(const struct nestq_client *q, const struct iommu_nest_inv_raw *r,
		      size_t daemon_max_entries);

/*
 * One invalidation, waiting for its completion: spins for spin_us, then
 * sleeps on the call eventfd (and the socket sock, for a daemon that went
 * away). Returns 0 with results and *sum filled (sum->status may be an
 * errno), or a transport error: -EPROTO the daemon closed the queue or
 * wrote nonsense, -ECONNRESET the socket closed.
 */
int nestq_client_invalidate(struct nestq_client *q, int sock, const struct iommu_nest_inv_raw *r,
			    struct iommu_nest_entry_result *results,
			    struct iommu_nest_inv_summary *sum);

#endif
