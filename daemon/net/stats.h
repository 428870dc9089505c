/* SPDX-License-Identifier: MIT */
/* Daemon-wide counters, served by the Stats request and logged at exit. */
#ifndef IOMMU_NESTD_STATS_H
#define IOMMU_NESTD_STATS_H

#include <stdint.h>

struct daemon_stats {
	uint64_t connections;
	uint64_t sessions_active;
	uint64_t requests;
	uint64_t request_errors;
	uint64_t entries_received;
	uint64_t entries_failed;
	uint64_t entries_submitted;
	uint64_t submissions;
	uint64_t pages_flushed;
	uint64_t hwpts_active;
	uint64_t protocol_errors;
	uint64_t batches;
	uint64_t denials;
	uint64_t flush_alls;   /* domain-wide flushes submitted */
	uint64_t ranged_pages; /* pages_flushed by all other submissions */
	uint64_t events_sent;  /* asynchronous events sent or queued (net/events.c) */
	uint64_t events_lost;  /* dropped: the client's event queue was full */
	/* The shared-memory queues (net/queue.c). */
	struct queue_stats {
		uint64_t submissions;	   /* slots taken */
		uint64_t completions;	   /* completions written, refusals included */
		uint64_t kicks;		   /* kick eventfd writes the daemon read */
		uint64_t kicks_suppressed; /* slots taken while polling: no kick needed */
		uint64_t calls;		   /* call eventfd writes */
		uint64_t calls_suppressed; /* completions published to a client not asleep */
		uint64_t stalls;	   /* back-pressure: completion ring or max_inflight */
		uint64_t poll_passes;	   /* turns of the poll loop over the polling queues */
	} queue;
};

#endif
