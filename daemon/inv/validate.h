/* SPDX-License-Identifier: MIT */
/*
 * The kernel's IOMMU_HWPT_INVALIDATE rules, applied by the daemon before
 * anything is submitted (DESIGN.md section 2). Pure code: no I/O.
 */
#ifndef IOMMU_NESTD_INV_VALIDATE_H
#define IOMMU_NESTD_INV_VALIDATE_H

#include <stddef.h>

#include "inv/request.h"

/*
 * The rules hw_pagetable.c applies before it looks the HWPT up: non-zero
 * reserved -> -EOPNOTSUPP; with entries, entry_len > PAGE_SIZE or more than
 * 2^19 entries -> -EINVAL. (So they win over -ENOENT for a bad id.)
 */
int inv_validate_header(const struct inv_request *req);

/*
 * Request-level rules, in the kernel's order, for a request on a HWPT whose
 * invalidation data type is hwpt_inv_type: non-zero reserved -> -EOPNOTSUPP;
 * with entries, entry_len > PAGE_SIZE or more than 2^19 entries -> -EINVAL;
 * wrong data type -> -EINVAL; entry_len outside [first-version size, native
 * size] -> -EINVAL (the kernel fails the first entry; nothing is handled).
 * Returns 0 or the negative errno.
 */
int inv_validate_request(const struct inv_request *req, uint32_t hwpt_inv_type);

/* Per-entry rules; return 0 or the kernel's negative errno for the entry. */
int inv_validate_vtd_entry(const void *entry);
int inv_validate_selftest_entry(const void *entry);

/*
 * Marks every entry of req: INV_PENDING if it passes, INV_FAILED with the
 * errno if not. Without req->cont, entries after the first failure are
 * INV_NOT_ATTEMPTED (the kernel stops there). Returns the number pending.
 */
uint32_t inv_validate_entries(struct inv_request *req);

/*
 * The loop both validators share: check(entry, ctx) on each of req's n
 * entries of esz bytes marks it PENDING (0) or FAILED with the errno;
 * without cont the rest after the first failure is NOT_ATTEMPTED, as
 * the kernel stops there. Returns how many are pending.
 */
typedef int (*inv_entry_check_fn)(const void *entry, const void *ctx);
uint32_t inv_mark_entries(struct inv_request *req, size_t esz, inv_entry_check_fn check,
			  const void *ctx);

#endif
