/* SPDX-License-Identifier: MIT */
/*
 * The vIOMMU part of the 7.x iommufd uAPI (Linux 6.13+; the layouts of
 * 7.2's include/uapi/linux/iommufd.h and iommufd_test.h). Our own names
 * (nestd_*), so that they never clash with a system header that has them
 * and never depend on one that lacks them; the static asserts pin the
 * layouts the kernel reads.
 */
#ifndef IOMMU_NESTD_VIOMMU_UAPI_H
#define IOMMU_NESTD_VIOMMU_UAPI_H

#include <stddef.h>
#include <stdint.h>

#include "backend/iommufd_uapi.h"

/* IOMMUFD_CMD_VIOMMU_ALLOC = 0x90, IOMMUFD_CMD_VDEVICE_ALLOC = 0x91. */
#define NESTD_IOMMU_VIOMMU_ALLOC  _IO(IOMMUFD_TYPE, 0x90)
#define NESTD_IOMMU_VDEVICE_ALLOC _IO(IOMMUFD_TYPE, 0x91)
/* IOMMUFD_CMD_HW_QUEUE_ALLOC = 0x94 (6.17+): only its lookup of a vIOMMU id is used. */
#define NESTD_IOMMU_HW_QUEUE_ALLOC _IO(IOMMUFD_TYPE, 0x94)
struct nestd_hw_queue_alloc {
	uint32_t size;
	uint32_t flags;
	uint32_t viommu_id;
	uint32_t type;
	uint32_t index;
	uint32_t out_hw_queue_id;
	uint64_t nesting_parent_iova;
	uint64_t length;
};

/* enum iommu_viommu_type, and the mock's (iommufd_test.h). */
#define NESTD_VIOMMU_TYPE_DEFAULT    0u
#define NESTD_VIOMMU_TYPE_ARM_SMMUV3 1u
#define NESTD_VIOMMU_TYPE_SELFTEST   0xdeadbeefu

/* Invalidation data types on a vIOMMU id (the mock's shares 0xdeadbeef with the HWPT one). */
#define NESTD_VIOMMU_INV_DATA_ARM_SMMUV3 1u
#define NESTD_VIOMMU_INV_DATA_SELFTEST	 0xdeadbeefu

/* IOMMU_HW_INFO_TYPE_ARM_SMMUV3 and struct iommu_hw_info_arm_smmuv3 (40 bytes). */
#define NESTD_HW_INFO_TYPE_ARM_SMMUV3 2u
struct nestd_hw_info_arm_smmuv3 {
	uint32_t flags;
	uint32_t reserved;
	uint32_t idr[6];
	uint32_t iidr;
	uint32_t aidr;
};
#define NESTD_SMMU_IDR3_RIL (1u << 10)

/* IOMMU_HWPT_DATA_ARM_SMMUV3: the guest's STE, first two little-endian words. */
#define NESTD_HWPT_DATA_ARM_SMMUV3 2u
struct nestd_hwpt_arm_smmuv3 {
	uint64_t ste[2];
};

struct nestd_viommu_alloc {
	uint32_t size;
	uint32_t flags;
	uint32_t type;
	uint32_t dev_id;
	uint32_t hwpt_id;
	uint32_t out_viommu_id;
	uint32_t data_len;
	uint32_t reserved;
	uint64_t data_uptr;
};

struct nestd_vdevice_alloc {
	uint32_t size;
	uint32_t viommu_id;
	uint32_t dev_id;
	uint32_t out_vdevice_id;
	uint64_t virt_id;
};

/* struct iommu_viommu_invalidate_selftest: 12 bytes. */
#define NESTD_VIOMMU_INV_SELFTEST_FLAG_ALL 1u
struct nestd_viommu_inv_selftest {
	uint32_t flags;
	uint32_t vdev_id;
	uint32_t cache_id;
};

/* The mock device's cache (selftest.c mock_dev->cache, IOMMU_TEST_OP_DEV_CHECK_CACHE). */
#define NESTD_MOCK_DEV_CACHE_NUM     4u
#define NESTD_MOCK_DEV_CACHE_DEFAULT 0xbaddadu

_Static_assert(sizeof(struct nestd_viommu_alloc) == 40, "iommu_viommu_alloc");
_Static_assert(offsetof(struct nestd_viommu_alloc, data_uptr) == 32, "iommu_viommu_alloc");
_Static_assert(sizeof(struct nestd_vdevice_alloc) == 24, "iommu_vdevice_alloc");
_Static_assert(offsetof(struct nestd_vdevice_alloc, virt_id) == 16, "iommu_vdevice_alloc");
_Static_assert(sizeof(struct nestd_hw_info_arm_smmuv3) == 40, "iommu_hw_info_arm_smmuv3");
_Static_assert(sizeof(struct nestd_viommu_inv_selftest) == 12, "iommu_viommu_invalidate_selftest");
_Static_assert(sizeof(struct nestd_hw_queue_alloc) == 40, "iommu_hw_queue_alloc");

#endif
