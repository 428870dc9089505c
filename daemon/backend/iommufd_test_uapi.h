/* SPDX-License-Identifier: MIT */
/*
 * The iommufd selftest uAPI (IOMMU_TEST_CMD), which only exists in kernels
 * built with CONFIG_IOMMUFD_TEST. The kernel keeps it in
 * drivers/iommu/iommufd/iommufd_test.h, which is not exported to userspace,
 * so the layout is written out here and pinned by static asserts against
 * the Linux 6.12 values, which Linux 7.x keeps: 7.x only appends ops after
 * TRIGGER_IOPF (DEV_CHECK_CACHE = 16 ... DMABUF_REVOKE = 23) and union
 * members no larger than `dirty`, so one header serves both (checked
 * against 7.2's iommufd_test.h). The mock-driver data types shared with the rest of
 * the daemon (IOMMU_HWPT_DATA_SELFTEST, struct iommu_hwpt_selftest, ...)
 * are in iommufd_uapi.h.
 *
 * Only the union members the daemon and its tests use are named; the
 * others are covered by the padding member so that the size and the offset
 * of `last` (the kernel's minimum size for the ioctl) match exactly.
 */
#ifndef IOMMU_NESTD_IOMMUFD_TEST_UAPI_H
#define IOMMU_NESTD_IOMMUFD_TEST_UAPI_H

#include <stddef.h>
#include <stdint.h>

#include "backend/iommufd_uapi.h"

enum {
	IOMMU_TEST_OP_ADD_RESERVED = 1,
	IOMMU_TEST_OP_MOCK_DOMAIN = 2,
	IOMMU_TEST_OP_MD_CHECK_MAP = 3,
	IOMMU_TEST_OP_MD_CHECK_REFS = 4,
	IOMMU_TEST_OP_CREATE_ACCESS = 5,
	IOMMU_TEST_OP_DESTROY_ACCESS_PAGES = 6,
	IOMMU_TEST_OP_ACCESS_PAGES = 7,
	IOMMU_TEST_OP_ACCESS_RW = 8,
	IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT = 9,
	IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE = 10,
	IOMMU_TEST_OP_ACCESS_REPLACE_IOAS = 11,
	IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS = 12,
	IOMMU_TEST_OP_DIRTY = 13,
	IOMMU_TEST_OP_MD_CHECK_IOTLB = 14,
	IOMMU_TEST_OP_TRIGGER_IOPF = 15,
};

struct iommu_test_cmd {
	uint32_t size;
	uint32_t op;
	uint32_t id;
	uint32_t __reserved;
	union {
		struct {
			uint32_t out_stdev_id;
			uint32_t out_hwpt_id;
			uint32_t out_idev_id; /* the iommufd device object */
		} mock_domain;
		struct {
			uint32_t pt_id; /* in: new HWPT/IOAS; out: what it got */
		} mock_domain_replace;
		struct {
			uint32_t id;
			uint32_t iotlb;
		} check_iotlb;
		struct {
			uint64_t iova;
			uint64_t length;
			uint64_t uptr; /* the pages the domain must map there */
		} check_map;
		struct {
			uint32_t flags;
			uint64_t iova;
			uint64_t length;
			uint64_t page_size;
			uint64_t uptr;
			uint64_t out_nr_dirty;
		} dirty;
		struct {
			uint32_t dev_id; /* the iommufd device object */
			uint32_t pasid;
			uint32_t grpid;
			uint32_t perm;
			uint64_t addr;
		} trigger_iopf;
		struct {
			uint32_t dev_id; /* 7.x IOMMU_TEST_OP_TRIGGER_VEVENT */
		} trigger_vevent;
		/* The largest member (dirty): u32 flags, then five u64s. */
		uint64_t __pad[6];
	};
	uint32_t last;
} __attribute__((aligned(8)));

#define IOMMU_TEST_CMD _IO(IOMMUFD_TYPE, IOMMUFD_CMD_BASE + 32)

/* IOMMU_GET_HW_INFO of a mock device. */
#define IOMMU_HW_INFO_TYPE_SELFTEST   0xfeedbeef
#define IOMMU_HW_INFO_SELFTEST_REGVAL 0xdeadbeef

struct iommu_test_hw_info {
	uint32_t flags;
	uint32_t test_reg;
};

_Static_assert(sizeof(struct iommu_test_cmd) == 72, "iommu_test_cmd size");
_Static_assert(offsetof(struct iommu_test_cmd, mock_domain) == 16, "union offset");
_Static_assert(offsetof(struct iommu_test_cmd, mock_domain.out_idev_id) == 24,
	       "out_idev_id offset");
_Static_assert(offsetof(struct iommu_test_cmd, check_iotlb.iotlb) == 20, "iotlb offset");
_Static_assert(offsetof(struct iommu_test_cmd, last) == 64, "last offset");
_Static_assert(offsetof(struct iommu_test_cmd, check_map.uptr) == 32, "check_map.uptr offset");
_Static_assert(offsetof(struct iommu_test_cmd, dirty.uptr) == 48, "dirty.uptr offset");
_Static_assert(offsetof(struct iommu_test_cmd, trigger_iopf.addr) == 32,
	       "trigger_iopf.addr offset");
_Static_assert(IOMMU_TEST_CMD == 0x3ba0, "IOMMU_TEST_CMD number");
_Static_assert(sizeof(struct iommu_test_hw_info) == 8, "iommu_test_hw_info size");

#endif
