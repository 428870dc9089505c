/* SPDX-License-Identifier: MIT */
/*
 * The iommufd backend's fault objects (IOMMU_FAULT_QUEUE_ALLOC, the fault
 * fd's read and write) and the selftest's IOMMU_TEST_OP_TRIGGER_IOPF, on
 * the raw descriptors: iommufd.c owns the context and the device ids.
 */
#ifndef IOMMU_NESTD_BACKEND_IOMMUFD_FAULT_H
#define IOMMU_NESTD_BACKEND_IOMMUFD_FAULT_H

#include <stdint.h>

#include "backend/backend.h"

int ifd_fault_alloc(int iommufd, struct backend_fault_queue *out);
int ifd_fault_read(const struct backend_fault_queue *q, struct iommu_hwpt_pgfault *recs,
		   uint32_t max);
int ifd_fault_respond(const struct backend_fault_queue *q,
		      const struct iommu_hwpt_page_response *resp);
int ifd_fault_free(int iommufd, const struct backend_fault_queue *q);
int ifd_trigger_iopf(int iommufd, uint32_t dev_id, const struct backend_iopf *t);

#endif
