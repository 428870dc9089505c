/* SPDX-License-Identifier: MIT */
/* Facts about invalidation data types shared by the pipeline stages. */
#include "inv/request.h"

#include "backend/iommufd_uapi.h"

uint32_t inv_entry_size(uint32_t data_type)
{
	switch (data_type) {
	case IOMMU_HWPT_INVALIDATE_DATA_VTD_S1:
		return sizeof(struct iommu_hwpt_vtd_s1_invalidate);
	case IOMMU_HWPT_INVALIDATE_DATA_SELFTEST:
		return sizeof(struct iommu_hwpt_invalidate_selftest);
	default:
		return 0;
	}
}
