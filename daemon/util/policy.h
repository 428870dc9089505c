/* SPDX-License-Identifier: MIT */
/*
 * Who may connect, which devices each may use, and per-client quotas.
 * Identities come from SO_PEERCRED at accept, never from the client.
 */
#ifndef IOMMU_NESTD_POLICY_H
#define IOMMU_NESTD_POLICY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#define POLICY_MAX_IDS 32

/* A set of uids and gids; empty means "anyone". */
struct policy_ids {
	uint32_t uids[POLICY_MAX_IDS];
	uint32_t n_uids;
	uint32_t gids[POLICY_MAX_IDS];
	uint32_t n_gids;
};

/* Counts limits: 0 means unlimited for all but max_outq_bytes (see quota_reached). */
struct policy_quota {
	uint32_t max_clients;      /* connections in all */
	uint32_t max_clients_per_uid; /* connections of one tenant uid */
	uint32_t max_clients_per_pid; /* connections of one peer process */
	uint32_t hello_timeout_ms;    /* a connection must have said Hello by then */
	uint32_t max_hwpts;        /* nested HWPTs per client */
	uint32_t max_inflight;     /* invalidate requests per client awaiting a reply */
	uint32_t max_outq_bytes;   /* replies buffered for a client that does not read */
	uint32_t max_requests_per_sec; /* per client; 0 = unlimited */
	/* Replies and queued requests of all clients together; 0 = unlimited. */
	uint64_t max_total_buffered_bytes;
	/* A client's shared-memory queue (memfd) at most; 0 = unlimited. */
	uint64_t max_queue_bytes;
	uint32_t max_events; /* events queued for a client that is not reading; more: lost */
};

/* True when used has reached a limit; a limit of 0 is unlimited (the man page's promise). */
static inline bool quota_reached(uint64_t used, uint64_t limit)
{
	return limit && used >= limit;
}

/* Parses "0 1000 root" (uids) or "kvm 27" (groups) into ids. */
int policy_parse_uids(struct policy_ids *ids, const char *list);
int policy_parse_gids(struct policy_ids *ids, const char *list);

/*
 * True if ids is empty, or cred's uid is listed, or its primary or a
 * supplementary group (of the uid's account) is listed.
 */
bool policy_allows(const struct policy_ids *ids, const struct ucred *cred);

/*
 * Whether cred may send admin requests (daemon-wide views, invalidating
 * any client's HWPT): root always, else a member of a group in admin.
 * An empty admin set means root only, unlike policy_allows().
 */
bool policy_is_admin(const struct policy_ids *admin, const struct ucred *cred);

/* A token bucket of max_requests_per_sec, refilled from CLOCK_MONOTONIC. */
struct rate_limiter {
	uint64_t last_ns;
	uint64_t tokens_milli; /* thousandths of a request */
};

/* True if one more request fits in the rate; rate 0 always fits. */
bool rate_limiter_take(struct rate_limiter *rl, uint32_t rate);
/*
 * The same at a given time (CLOCK_MONOTONIC ns, non-decreasing, not 0):
 * the bucket's arithmetic without a clock, so that tests can drive it.
 */
bool rate_limiter_take_at(struct rate_limiter *rl, uint32_t rate, uint64_t now_ns);

#endif
