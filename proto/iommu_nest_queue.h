/* SPDX-License-Identifier: MIT */
/*
 * The shared-memory invalidation queue (issue 17): the layout of the
 * memfd a client maps and passes to the daemon, which both sides include.
 *
 * The area is one header page of indices, then the submission ring, the
 * completion ring and the entry area, at offsets that follow from the
 * three sizes alone (nestq_layout()). The sizes travel in the setup
 * request, never read back from the area: the client can scribble on
 * every byte of it at any moment, so the daemon keeps its own copy of the
 * geometry and reads only the indices and slots from shared memory.
 *
 * Indices are free-running uint32 counters (masked by entries - 1 when
 * used): the producer owns the tail, the consumer the head, each on its
 * own cache line so that the two sides never write the same line.
 * Release on publishing an index, acquire on reading the other side's.
 */
#ifndef IOMMU_NEST_QUEUE_H
#define IOMMU_NEST_QUEUE_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NESTQ_MAGIC 0x3151544e53454e49ull /* "INESNTQ1", little-endian */
/*
 * The layout version. The library sends it in QueueSetup.layout_version and
 * the daemon refuses any other (-EPROTONOSUPPORT): the two sides read the
 * same bytes only if they agree on every struct below. 2: the one-entry
 * inline form (NESTQ_SQE_INLINE, nestq_cqe.result), completions of one cache
 * line each. 3: nestq_cqe.seq, so that a client waiting for one completion
 * looks at that completion's line alone.
 */
#define NESTQ_VERSION	3
#define NESTQ_CACHELINE 64
#define NESTQ_HDR_BYTES 4096 /* the header page: indices and flags */
/* Ring sizes are powers of two in [NESTQ_MIN_ENTRIES, NESTQ_MAX_ENTRIES]. */
#define NESTQ_MIN_ENTRIES 1u
#define NESTQ_MAX_ENTRIES 4096u

/* nestq_sqe.flags */
#define NESTQ_SQE_CONTINUE (1u << 0) /* Invalidate's INV_CONTINUE */
/*
 * The request's one entry (n == 1) is in the slot itself (inline_entry) and
 * its result comes back in the completion (nestq_cqe.result); entry_off and
 * result_off are zero. A 1-entry round trip then moves three cache lines
 * (sq_tail, the slot; the completion, see nestq_cqe.seq) instead of six.
 */
#define NESTQ_SQE_INLINE   (1u << 1)
#define NESTQ_INLINE_BYTES 24 /* the largest native entry (VT-d) */

/* nestq_header.sq_flags, written by the daemon. */
#define NESTQ_SQ_NEED_KICK (1u << 0) /* not polling: kick after publishing */
/*
 * Stopped taking submissions: the completion ring is full or the client has
 * max_inflight requests in flight. It resumes by itself when a completion
 * is written; a client that frees completion slots while it sees this flag
 * kicks.
 */
#define NESTQ_SQ_STALLED (1u << 1)
/* The client broke the ring's rules: the daemon closed the queue (and signalled the call). */
#define NESTQ_SQ_BROKEN (1u << 2)

/* nestq_header.cq_flags, written by the client. */
#define NESTQ_CQ_NEED_CALL (1u << 0) /* sleeping on the call eventfd: signal it */

/*
 * One submission: an Invalidate of n entries in the kernel's native layout
 * for data_type, at entry_off in the entry area; the daemon writes each
 * entry's result (struct nestq_result) at result_off in the entry area.
 * Both offsets are 8-byte aligned and both ranges lie inside the area.
 * With NESTQ_SQE_INLINE the entry is inline_entry instead (see there).
 */
struct nestq_sqe {
	uint64_t user_data; /* echoed in the completion */
	uint32_t hwpt_id;
	uint32_t data_type; /* IOMMU_HWPT_INVALIDATE_DATA_* */
	uint32_t flags;	    /* NESTQ_SQE_* */
	uint32_t reserved;  /* the ioctl's __reserved: must be zero */
	uint32_t entry_len; /* the entry size the guest used; 0 = native */
	uint32_t n;	    /* entries */
	uint32_t entry_off;
	uint32_t result_off;
	/*
	 * NESTQ_SQE_INLINE: the entry's native bytes, then zeros; otherwise
	 * all zero. It fills the slot to one cache line.
	 */
	uint8_t inline_entry[NESTQ_INLINE_BYTES];
};

/* Per-entry result, what InvalidateReply's state/error/hw_error carry. */
struct nestq_result {
	uint32_t state;	   /* IOMMU_NEST__ENTRY_STATE__* */
	int32_t error;	   /* negative errno */
	uint32_t hw_error; /* VT-d ICE/ITE bits or 0 */
	uint32_t pad;
};

/* One completion: what InvalidateReply carries besides the per-entry results. */
struct nestq_cqe {
	uint64_t user_data;
	int32_t status; /* 0 or the request's negative errno */
	uint32_t entries_handled;
	uint32_t entries_submitted;
	uint32_t n; /* results written: at result_off, or inline (result) */
	uint64_t pages_flushed;
	struct nestq_result result; /* an inline submission's result when n == 1 */
	/*
	 * Its completion index + 1, stored (release) after everything else
	 * in it: the completion at index i is there once seq == i + 1, before
	 * cq_tail says so. Waiting on cq_tail and then reading the completion
	 * costs a client two cache misses; waiting on seq, one, on the line it
	 * reads anyway. (The slot's previous seq, i + 1 - cq_entries, never
	 * matches.) cq_tail is still published, after seq.
	 */
	_Atomic uint32_t seq;
	uint32_t pad[3]; /* zero; one completion is one cache line */
};

/* The header page. The rings follow it (nestq_layout()). */
struct nestq_header {
	uint64_t magic;	  /* NESTQ_MAGIC, written by the client; informative only */
	uint32_t version; /* NESTQ_VERSION */
	uint32_t pad0;
	alignas(NESTQ_CACHELINE) _Atomic uint32_t sq_tail;  /* client: next slot it fills */
	alignas(NESTQ_CACHELINE) _Atomic uint32_t sq_head;  /* daemon: next slot it takes */
	alignas(NESTQ_CACHELINE) _Atomic uint32_t cq_tail;  /* daemon: next completion */
	alignas(NESTQ_CACHELINE) _Atomic uint32_t cq_head;  /* client: next it reads */
	alignas(NESTQ_CACHELINE) _Atomic uint32_t sq_flags; /* daemon: NESTQ_SQ_* */
	alignas(NESTQ_CACHELINE) _Atomic uint32_t cq_flags; /* client: NESTQ_CQ_* */
};

_Static_assert(sizeof(struct nestq_sqe) == NESTQ_CACHELINE, "one slot, one cache line");
_Static_assert(sizeof(struct nestq_cqe) == NESTQ_CACHELINE, "one completion, one cache line");
_Static_assert(sizeof(struct nestq_result) == 16, "result size is ABI");
_Static_assert(sizeof(struct nestq_header) <= NESTQ_HDR_BYTES, "header fits its page");

/* Where everything is, from the sizes in the setup request. */
struct nestq_layout {
	uint32_t sq_entries, cq_entries;
	uint64_t sq_off, cq_off, data_off, data_bytes;
	uint64_t total; /* the memfd's size */
};

static inline bool nestq_pow2_ok(uint32_t n)
{
	return n >= NESTQ_MIN_ENTRIES && n <= NESTQ_MAX_ENTRIES && !(n & (n - 1));
}

/*
 * Fills l; false when a ring size is not a power of two in range or
 * data_bytes is not a multiple of 8 (then nothing is mapped).
 */
static inline bool nestq_layout(struct nestq_layout *l, uint32_t sq_entries, uint32_t cq_entries,
				uint64_t data_bytes)
{
	if (!nestq_pow2_ok(sq_entries) || !nestq_pow2_ok(cq_entries) || (data_bytes & 7) ||
	    data_bytes > UINT32_MAX)
		return false;
	l->sq_entries = sq_entries;
	l->cq_entries = cq_entries;
	l->sq_off = NESTQ_HDR_BYTES;
	l->cq_off = l->sq_off + (uint64_t)sq_entries * sizeof(struct nestq_sqe);
	l->data_off = l->cq_off + (uint64_t)cq_entries * sizeof(struct nestq_cqe);
	l->data_off = (l->data_off + NESTQ_CACHELINE - 1) & ~(uint64_t)(NESTQ_CACHELINE - 1);
	l->data_bytes = data_bytes;
	l->total = l->data_off + data_bytes;
	return true;
}

#endif
