/* SPDX-License-Identifier: MIT */
/*
 * One client Invalidate request on its way through the pipeline:
 * decode -> inv_validate -> inv_batch (coalesce, submit, map results) -> encode.
 */
#ifndef IOMMU_NESTD_INV_REQUEST_H
#define IOMMU_NESTD_INV_REQUEST_H

#include <stdbool.h>
#include <stdint.h>

/* Per-entry states; the first three are the wire's EntryState values. */
enum inv_state {
	INV_NOT_ATTEMPTED = 0,
	INV_DONE = 1,
	INV_FAILED = 2,
	INV_PENDING = 3, /* accepted by validation, not submitted yet (internal) */
};

struct inv_entry_result {
	uint8_t state;	   /* enum inv_state */
	int32_t error;	   /* negative errno when FAILED, else 0 */
	uint32_t hw_error; /* VT-d ICE/ITE bits or 0 */
};

struct inv_request {
	/* Input, from the decoded message. */
	uint64_t id; /* the Request id, echoed in the reply */
	uint32_t hwpt_id;
	uint64_t client_id; /* whose HWPT (an admin's foreign invalidation); 0: own */
	uint32_t data_type; /* IOMMU_HWPT_INVALIDATE_DATA_* */
	uint32_t reserved;  /* the ioctl's __reserved word */
	uint32_t entry_len; /* 0 = native size */
	bool cont;	    /* continue past failing entries */
	bool on_viommu;	    /* hwpt_id names a vIOMMU: entries in the driver's raw layout */
	uint64_t recv_ns;   /* CLOCK_MONOTONIC when its packet was read */
	uint32_t n;
	/*
	 * n entries in the kernel's native layout for data_type: struct
	 * iommu_hwpt_vtd_s1_invalidate or iommu_hwpt_invalidate_selftest.
	 */
	void *entries;

	/* Output. res has n slots. */
	struct inv_entry_result *res;
	int status;		    /* 0 or the first failure's negative errno */
	uint32_t entries_handled;   /* leading run of INV_DONE */
	uint32_t entries_submitted; /* backend entries that served this request */
	uint64_t pages_flushed;	    /* modelled pages flushed on its behalf */

	void *owner; /* the pending reply this request belongs to (dispatch) */
	/* The shared queue it came from (net/queue.h), NULL: the socket; and where its results go.
	 */
	void *queue;
	uint32_t result_off;
	bool res_inline;	  /* the one result goes in the completion (NESTQ_SQE_INLINE) */
	struct inv_request *next; /* batch list link */
};

/* Native entry size of an invalidation data type; 0 if unknown. */
uint32_t inv_entry_size(uint32_t data_type);

#endif
