/* SPDX-License-Identifier: MIT */
/*
 * The vEVENTQ part of the 7.x iommufd uAPI (Linux 6.14+; the layouts of
 * 7.2's include/uapi/linux/iommufd.h and iommufd_test.h), under our own
 * names like viommu_uapi.h, pinned by static asserts.
 */
#ifndef IOMMU_NESTD_VEVENTQ_UAPI_H
#define IOMMU_NESTD_VEVENTQ_UAPI_H

#include <stddef.h>
#include <stdint.h>

#include "backend/iommufd_uapi.h"

/* IOMMUFD_CMD_VEVENTQ_ALLOC = 0x93. */
#define NESTD_IOMMU_VEVENTQ_ALLOC _IO(IOMMUFD_TYPE, 0x93)

/* enum iommu_veventq_type, and the mock's (iommufd_test.h). */
#define NESTD_VEVENTQ_TYPE_DEFAULT	  0u
#define NESTD_VEVENTQ_TYPE_ARM_SMMUV3	  1u
#define NESTD_VEVENTQ_TYPE_TEGRA241_CMDQV 2u
#define NESTD_VEVENTQ_TYPE_SELFTEST	  0xbeefbeefu

/* eventq.c VEVENTQ_MAX_DEPTH: veventq_depth is 1..this. */
#define NESTD_VEVENTQ_MAX_DEPTH (1u << 19)

/* enum iommu_veventq_flag. */
#define NESTD_VEVENTQ_FLAG_LOST_EVENTS (1u << 0)

/*
 * struct iommufd_vevent_header: every record starts with it; a normal one
 * is followed by the type's data, a LOST_EVENTS one by nothing. sequence
 * runs 0..INT_MAX and wraps to 0.
 */
struct nestd_vevent_header {
	uint32_t flags;
	uint32_t sequence;
};
#define NESTD_VEVENT_SEQUENCE_MASK 0x7fffffffu

/* The record data sizes: struct iommu_vevent_arm_smmuv3 (evt[4]), the tegra's, the mock's. */
#define NESTD_VEVENT_ARM_SMMUV3_LEN 32u
#define NESTD_VEVENT_TEGRA241_LEN   16u
#define NESTD_VEVENT_SELFTEST_LEN   4u
#define NESTD_VEVENT_DATA_MAX	    32u

/* struct iommu_viommu_event_selftest: what IOMMU_TEST_OP_TRIGGER_VEVENT reports. */
struct nestd_vevent_selftest {
	uint32_t virt_id;
};

struct nestd_veventq_alloc {
	uint32_t size;
	uint32_t flags;
	uint32_t viommu_id;
	uint32_t type;
	uint32_t veventq_depth;
	uint32_t out_veventq_id;
	uint32_t out_veventq_fd;
	uint32_t reserved;
};

/* IOMMU_TEST_OP_TRIGGER_VEVENT (iommufd_test.h: after DEV_CHECK_CACHE = 16). */
#define NESTD_TEST_OP_TRIGGER_VEVENT 17u

/* The data length of a record of type, or 0 for a type the daemon cannot parse. */
static inline uint32_t nestd_vevent_data_len(uint32_t type)
{
	switch (type) {
	case NESTD_VEVENTQ_TYPE_ARM_SMMUV3:
		return NESTD_VEVENT_ARM_SMMUV3_LEN;
	case NESTD_VEVENTQ_TYPE_TEGRA241_CMDQV:
		return NESTD_VEVENT_TEGRA241_LEN;
	case NESTD_VEVENTQ_TYPE_SELFTEST:
		return NESTD_VEVENT_SELFTEST_LEN;
	default:
		return 0;
	}
}

_Static_assert(sizeof(struct nestd_veventq_alloc) == 32, "iommu_veventq_alloc");
_Static_assert(offsetof(struct nestd_veventq_alloc, out_veventq_fd) == 24, "iommu_veventq_alloc");
_Static_assert(sizeof(struct nestd_vevent_header) == 8, "iommufd_vevent_header");
_Static_assert(sizeof(struct nestd_vevent_selftest) == 4, "iommu_viommu_event_selftest");

#endif
