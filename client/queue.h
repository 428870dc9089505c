/* SPDX-License-Identifier: MIT */
/*
 * The library's side of the shared-memory queue (iommu_nest_queue.h):
 * the memfd and eventfds, submissions in flight and their completions.
 * Internal to libiommu-nest; iommu_nest.c owns the setup request and the
 * handle's slots (which callback a completion goes to).
 *
 * Submissions and their entry-area ranges are taken in ring order and
 * freed in ring order: a completion that arrives before an older one
 * frees its slot only when the older one is read too. That keeps the
 * entry area a simple ring and bounds the completions in flight by the
 * submission ring (so the completion ring, the same size, never fills).
 */
#ifndef IOMMU_NEST_CLIENT_QUEUE_H
#define IOMMU_NEST_CLIENT_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iommu_nest.h"
#include "iommu_nest_queue.h"

/* One submission in flight, by its submission ring index. */
struct nestq_rec {
	uint64_t user_data;
	uint64_t end;	     /* where the entry-area ring's head goes once this is freed */
	uint32_t result_off; /* in the entry area */
	uint32_t n;
	bool async; /* wants the call eventfd signalled (the VMM's loop may sleep on it) */
	bool inl;   /* NESTQ_SQE_INLINE: entry in the slot, result in the completion */
	bool done;
};

struct nestq_client {
	struct nestq_layout l;
	uint8_t *base;
	int memfd, kick_fd, call_fd;
	uint32_t sq_tail, cq_head;     /* ours; published to the area */
	uint32_t rec_head;	       /* the oldest submission not freed */
	uint64_t data_head, data_tail; /* the entry-area ring, free-running bytes */
	struct nestq_rec *rec;	       /* sq_entries of them */
	uint32_t n_async;	       /* async submissions not read yet */
	uint32_t spin_us;
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
 * Publishes r as submission user_data (kicking the daemon only when it
 * does not poll). -EAGAIN when the ring or the entry area is full until
 * completions are read.
 */
int nestq_client_submit(struct nestq_client *q, const struct iommu_nest_inv_raw *r,
			uint64_t user_data, bool async);

/* Submissions published and not read back yet. */
static inline uint32_t nestq_client_in_flight(const struct nestq_client *q)
{
	return q->sq_tail - q->rec_head;
}

/*
 * Where the completion of user_data puts its n per-entry results (NULL:
 * nowhere), for nestq_client_reap().
 */
typedef struct iommu_nest_entry_result *(*nestq_results_fn)(void *opaque, uint64_t user_data);

/*
 * Reads the next completion, if any: 1 with *user_data and *sum filled
 * and the results copied where results_of says, 0 when there is none,
 * -EPROTO when the daemon wrote nonsense or closed the queue.
 */
int nestq_client_reap(struct nestq_client *q, nestq_results_fn results_of, void *opaque,
		      uint64_t *user_data, struct iommu_nest_inv_summary *sum);

/*
 * Waits until a completion can be read: spins for spin_us, then sleeps
 * on the call eventfd (and the socket sock, for a daemon that went away).
 * 0, -EPROTO the daemon closed the queue, -ECONNRESET the socket closed.
 */
int nestq_client_wait(struct nestq_client *q, int sock);

/* Empties the call eventfd's counter (the VMM's loop saw it readable). */
void nestq_client_drain_call(const struct nestq_client *q);

/*
 * Spins up to spin_us on the completion ring, without a system call but
 * a sched_yield() every 20 us, until a completion (or the daemon's
 * closing of the queue) is there. True when there is one. While it spins
 * the daemon does not signal the call eventfd.
 */
bool nestq_client_spin(struct nestq_client *q, uint32_t spin_us);

#endif
