/* SPDX-License-Identifier: MIT */
/*
 * The PASID part of the 7.x uAPI (Linux 6.15+; the layouts of 7.2's
 * include/uapi/linux/iommufd.h, include/uapi/linux/vfio.h and
 * drivers/iommu/iommufd/iommufd_test.h). Our own names (nestd_*), like
 * viommu_uapi.h, so that they never clash with a system header that has
 * them nor depend on one that lacks them; the static asserts pin the
 * layouts the kernel reads.
 */
#ifndef IOMMU_NESTD_PASID_UAPI_H
#define IOMMU_NESTD_PASID_UAPI_H

#include <stddef.h>
#include <stdint.h>

/* enum iommufd_hwpt_alloc_flags: a domain that may sit on a PASID. */
#define NESTD_HWPT_ALLOC_PASID (1u << 3)

/* IOMMU_NO_PASID: PASID 0 is the device's RID (requests without a PASID). */
#define NESTD_NO_PASID 0u

/* iommufd_test.h: the test ops after TRIGGER_IOPF (15). */
#define NESTD_TEST_OP_MOCK_DOMAIN_FLAGS 12u
#define NESTD_TEST_OP_PASID_ATTACH	18u
#define NESTD_TEST_OP_PASID_REPLACE	19u
#define NESTD_TEST_OP_PASID_DETACH	20u
#define NESTD_TEST_OP_PASID_CHECK_HWPT	21u

/* A PASID-capable mock device (selftest.c mock_dev_create()), MOCK_PASID_WIDTH bits. */
#define NESTD_MOCK_FLAGS_DEVICE_PASID (1u << 2)
#define NESTD_MOCK_PASID_WIDTH	      20u

/* struct iommu_test_cmd with the members the PASID ops use (72 bytes, like the kernel's). */
struct nestd_test_pasid_cmd {
	uint32_t size;
	uint32_t op;
	uint32_t id; /* the mock device object (stdev_id) */
	uint32_t __reserved;
	union {
		struct {
			uint32_t out_stdev_id;
			uint32_t out_hwpt_id;
			uint32_t out_idev_id;
			uint32_t dev_flags;
		} mock_domain_flags;
		struct {
			uint32_t pasid;
			uint32_t pt_id; /* attach / replace */
		} pasid_attach;
		struct {
			uint32_t pasid;
			uint32_t hwpt_id; /* CHECK_HWPT: 0 asks "is nothing attached" */
		} pasid_check;
		uint64_t __pad[6];
	};
	uint32_t last;
} __attribute__((aligned(8)));

/* VFIO_DEVICE_ATTACH_IOMMUFD_PT / _DETACH with the pasid member (6.15+). */
#define NESTD_VFIO_DEVICE_ATTACH_PASID (1u << 0)
#define NESTD_VFIO_DEVICE_DETACH_PASID (1u << 0)

struct nestd_vfio_attach_pasid {
	uint32_t argsz;
	uint32_t flags;
	uint32_t pt_id;
	uint32_t pasid;
};

struct nestd_vfio_detach_pasid {
	uint32_t argsz;
	uint32_t flags;
	uint32_t pasid;
};

_Static_assert(sizeof(struct nestd_test_pasid_cmd) == 72, "iommu_test_cmd size");
_Static_assert(offsetof(struct nestd_test_pasid_cmd, pasid_attach.pt_id) == 20, "pt_id offset");
_Static_assert(offsetof(struct nestd_test_pasid_cmd, mock_domain_flags.dev_flags) == 28,
	       "dev_flags offset");
_Static_assert(offsetof(struct nestd_test_pasid_cmd, last) == 64, "last offset");
_Static_assert(offsetof(struct nestd_vfio_attach_pasid, pasid) == 12, "attach pasid offset");
_Static_assert(offsetof(struct nestd_vfio_detach_pasid, pasid) == 8, "detach pasid offset");

#endif
