/* SPDX-License-Identifier: MIT */
/* A device's stage-2 page table, with the fallback for IOMMUs that cannot nest (parent.c). */
#ifndef IOMMU_NESTD_BACKEND_IOMMUFD_PARENT_H
#define IOMMU_NESTD_BACKEND_IOMMUFD_PARENT_H

#include <stdint.h>

/*
 * IOMMU_HWPT_ALLOC of the device's nest parent on ioas_id with flags
 * (IOMMU_HWPT_ALLOC_DIRTY_TRACKING and the like; NEST_PARENT is added).
 * If the IOMMU cannot nest (-EOPNOTSUPP), a plain paging HWPT instead,
 * with *nest_err = -EOPNOTSUPP; else *nest_err = 0. Returns 0 with *out,
 * or the kernel's errno of the nest parent allocation.
 */
int ifd_parent_alloc(int fd, uint32_t dev_id, uint32_t ioas_id, uint32_t flags, uint32_t *out,
		     int *nest_err);

#endif
