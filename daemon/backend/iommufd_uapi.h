/* SPDX-License-Identifier: MIT */
/*
 * The iommufd uAPI the daemon speaks. Layouts and values are the kernel's
 * (include/uapi/linux/iommufd.h and drivers/iommu/iommufd/iommufd_test.h of
 * Linux 6.12). When the system header already carries the invalidation uAPI
 * (Linux 6.8+; CMake defines NESTD_HAVE_SYSTEM_IOMMUFD) we use it; otherwise
 * (Debian 12 ships 6.1 headers) we carry our own definitions and do not
 * include the old header at all, so its partial set of structs cannot clash
 * with ours. Either way the static asserts at the end pin sizes and
 * offsets, so a mismatch fails the build instead of corrupting ioctls.
 */
#ifndef IOMMU_NESTD_IOMMUFD_UAPI_H
#define IOMMU_NESTD_IOMMUFD_UAPI_H

#include <stddef.h>
#include <stdint.h>

#ifdef NESTD_HAVE_SYSTEM_IOMMUFD
#include <linux/iommufd.h>
#else
/* System header too old (or absent): our own copy of the 6.12 layouts. */
#include <linux/ioctl.h>
#include <linux/types.h>

#define IOMMUFD_TYPE (';')

enum {
	IOMMUFD_CMD_BASE = 0x80,
	IOMMUFD_CMD_DESTROY = IOMMUFD_CMD_BASE,
	IOMMUFD_CMD_IOAS_ALLOC = 0x81,
	IOMMUFD_CMD_IOAS_ALLOW_IOVAS = 0x82,
	IOMMUFD_CMD_IOAS_COPY = 0x83,
	IOMMUFD_CMD_IOAS_IOVA_RANGES = 0x84,
	IOMMUFD_CMD_IOAS_MAP = 0x85,
	IOMMUFD_CMD_IOAS_UNMAP = 0x86,
	IOMMUFD_CMD_OPTION = 0x87,
	IOMMUFD_CMD_VFIO_IOAS = 0x88,
	IOMMUFD_CMD_HWPT_ALLOC = 0x89,
	IOMMUFD_CMD_GET_HW_INFO = 0x8a,
	IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING = 0x8b,
	IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP = 0x8c,
	IOMMUFD_CMD_HWPT_INVALIDATE = 0x8d,
	IOMMUFD_CMD_FAULT_QUEUE_ALLOC = 0x8e,
};

struct iommu_destroy {
	__u32 size;
	__u32 id;
};
#define IOMMU_DESTROY _IO(IOMMUFD_TYPE, IOMMUFD_CMD_DESTROY)

struct iommu_ioas_alloc {
	__u32 size;
	__u32 flags;
	__u32 out_ioas_id;
};
#define IOMMU_IOAS_ALLOC _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_ALLOC)

enum iommufd_ioas_map_flags {
	IOMMU_IOAS_MAP_FIXED_IOVA = 1 << 0,
	IOMMU_IOAS_MAP_WRITEABLE = 1 << 1,
	IOMMU_IOAS_MAP_READABLE = 1 << 2,
};

struct iommu_ioas_map {
	__u32 size;
	__u32 flags;
	__u32 ioas_id;
	__u32 __reserved;
	__aligned_u64 user_va;
	__aligned_u64 length;
	__aligned_u64 iova;
};
#define IOMMU_IOAS_MAP _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_MAP)

struct iommu_ioas_unmap {
	__u32 size;
	__u32 ioas_id;
	__aligned_u64 iova;
	__aligned_u64 length;
};
#define IOMMU_IOAS_UNMAP _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_UNMAP)

enum iommufd_hwpt_alloc_flags {
	IOMMU_HWPT_ALLOC_NEST_PARENT = 1 << 0,
	IOMMU_HWPT_ALLOC_DIRTY_TRACKING = 1 << 1,
	IOMMU_HWPT_FAULT_ID_VALID = 1 << 2,
};

enum iommu_hwpt_vtd_s1_flags {
	IOMMU_VTD_S1_SRE = 1 << 0,
	IOMMU_VTD_S1_EAFE = 1 << 1,
	IOMMU_VTD_S1_WPE = 1 << 2,
};

struct iommu_hwpt_vtd_s1 {
	__aligned_u64 flags;
	__aligned_u64 pgtbl_addr;
	__u32 addr_width;
	__u32 __reserved;
};

enum iommu_hwpt_data_type {
	IOMMU_HWPT_DATA_NONE = 0,
	IOMMU_HWPT_DATA_VTD_S1 = 1,
};

struct iommu_hwpt_alloc {
	__u32 size;
	__u32 flags;
	__u32 dev_id;
	__u32 pt_id;
	__u32 out_hwpt_id;
	__u32 __reserved;
	__u32 data_type;
	__u32 data_len;
	__aligned_u64 data_uptr;
	__u32 fault_id;
	__u32 __reserved2;
};
#define IOMMU_HWPT_ALLOC _IO(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_ALLOC)

/* The read-only-mapping erratum: no read-only mapping on a nest parent. */
enum iommu_hw_info_vtd_flags {
	IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17 = 1 << 0,
};

struct iommu_hw_info_vtd {
	__u32 flags;
	__u32 __reserved;
	__aligned_u64 cap_reg;
	__aligned_u64 ecap_reg;
};

enum iommu_hw_info_type {
	IOMMU_HW_INFO_TYPE_NONE = 0,
	IOMMU_HW_INFO_TYPE_INTEL_VTD = 1,
};

enum iommufd_hw_capabilities {
	IOMMU_HW_CAP_DIRTY_TRACKING = 1 << 0,
	IOMMU_HW_CAP_PCI_PASID_EXEC = 1 << 1,
	IOMMU_HW_CAP_PCI_PASID_PRIV = 1 << 2,
	IOMMU_HW_CAP_PCI_ATS_NOT_SUPPORTED = 1 << 3, /* Linux 7.x */
};

struct iommu_hw_info {
	__u32 size;
	__u32 flags;
	__u32 dev_id;
	__u32 data_len;
	__aligned_u64 data_uptr;
	__u32 out_data_type;
	__u8 out_max_pasid_log2; /* 0: no PASID support */
	__u8 __reserved[3];
	__aligned_u64 out_capabilities;
};
#define IOMMU_GET_HW_INFO _IO(IOMMUFD_TYPE, IOMMUFD_CMD_GET_HW_INFO)

enum iommufd_hwpt_set_dirty_tracking_flags {
	IOMMU_HWPT_DIRTY_TRACKING_ENABLE = 1,
};

struct iommu_hwpt_set_dirty_tracking {
	__u32 size;
	__u32 flags;
	__u32 hwpt_id;
	__u32 __reserved;
};
#define IOMMU_HWPT_SET_DIRTY_TRACKING _IO(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING)

enum iommufd_hwpt_get_dirty_bitmap_flags {
	IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR = 1,
};

struct iommu_hwpt_get_dirty_bitmap {
	__u32 size;
	__u32 hwpt_id;
	__u32 flags;
	__u32 __reserved;
	__aligned_u64 iova;
	__aligned_u64 length;
	__aligned_u64 page_size;
	__aligned_u64 data;
};
#define IOMMU_HWPT_GET_DIRTY_BITMAP _IO(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP)

enum iommu_hwpt_invalidate_data_type {
	IOMMU_HWPT_INVALIDATE_DATA_VTD_S1 = 0,
};

enum iommu_hwpt_vtd_s1_invalidate_flags {
	IOMMU_VTD_INV_FLAGS_LEAF = 1 << 0,
};

struct iommu_hwpt_vtd_s1_invalidate {
	__aligned_u64 addr;
	__aligned_u64 npages;
	__u32 flags;
	__u32 __reserved;
};

struct iommu_hwpt_invalidate {
	__u32 size;
	__u32 hwpt_id;
	__aligned_u64 data_uptr;
	__u32 data_type;
	__u32 entry_len;
	__u32 entry_num;
	__u32 __reserved;
};
#define IOMMU_HWPT_INVALIDATE _IO(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_INVALIDATE)
#endif /* !NESTD_HAVE_SYSTEM_IOMMUFD */

/*
 * Fault delivery (IOPF), Linux 6.11+; 6.12 and 7.x share these layouts
 * (include/uapi/linux/iommufd.h). Keyed on the ioctl's macro: a system
 * header new enough has them, an older one (6.8-6.10) does not.
 */
#ifndef IOMMU_FAULT_QUEUE_ALLOC
#ifdef NESTD_HAVE_SYSTEM_IOMMUFD
#define IOMMUFD_CMD_FAULT_QUEUE_ALLOC 0x8e
#endif
enum iommu_hwpt_pgfault_flags {
	IOMMU_PGFAULT_FLAGS_PASID_VALID = (1 << 0),
	IOMMU_PGFAULT_FLAGS_LAST_PAGE = (1 << 1),
};

enum iommu_hwpt_pgfault_perm {
	IOMMU_PGFAULT_PERM_READ = (1 << 0),
	IOMMU_PGFAULT_PERM_WRITE = (1 << 1),
	IOMMU_PGFAULT_PERM_EXEC = (1 << 2),
	IOMMU_PGFAULT_PERM_PRIV = (1 << 3),
};

struct iommu_hwpt_pgfault {
	__u32 flags;
	__u32 dev_id;
	__u32 pasid;
	__u32 grpid;
	__u32 perm;
	__u32 __reserved;
	__aligned_u64 addr;
	__u32 length;
	__u32 cookie;
};

enum iommufd_page_response_code {
	IOMMUFD_PAGE_RESP_SUCCESS = 0,
	IOMMUFD_PAGE_RESP_INVALID = 1,
};

struct iommu_hwpt_page_response {
	__u32 cookie;
	__u32 code;
};

struct iommu_fault_alloc {
	__u32 size;
	__u32 flags;
	__u32 out_fault_id;
	__u32 out_fault_fd;
};
#define IOMMU_FAULT_QUEUE_ALLOC _IO(IOMMUFD_TYPE, IOMMUFD_CMD_FAULT_QUEUE_ALLOC)
#endif

/*
 * The selftest mock driver's types (drivers/iommu/iommufd/iommufd_test.h is
 * not exported to userspace, so these are always ours).
 */
#define IOMMU_HWPT_DATA_SELFTEST 0xdead
#define IOMMU_TEST_IOTLB_DEFAULT 0xbadbeef
#define IOMMU_HWPT_INVALIDATE_DATA_SELFTEST 0xdeadbeef
#define IOMMU_HWPT_INVALIDATE_DATA_SELFTEST_INVALID 0xdadbeef
#define IOMMU_TEST_INVALIDATE_FLAG_ALL (1 << 0)
#define MOCK_NESTED_DOMAIN_IOTLB_ID_MAX 3
#define MOCK_NESTED_DOMAIN_IOTLB_NUM 4

/*
 * 6.12's layout. 7.x appends __u32 pagetable_type (for paging domains);
 * both copy nested data with iotlb as the last required member, so these
 * 4 bytes are accepted by each (zero-extended on 7.x).
 */
struct iommu_hwpt_selftest {
	__u32 iotlb;
};

struct iommu_hwpt_invalidate_selftest {
	__u32 flags;
	__u32 iotlb_id;
};

/* Kernel limits on IOMMU_HWPT_INVALIDATE (drivers/iommu/iommufd). */
#define IOMMUFD_PAGE_SIZE 4096u
#define IOMMU_HWPT_INVALIDATE_ENTRY_NUM_MAX (1u << 19)
#define VTD_PAGE_SHIFT 12

/* offsetofend() of the first-version last member: the minimum entry_len. */
#define NESTD_OFFSETOFEND(type, member) \
	(offsetof(type, member) + sizeof(((type *)0)->member))
#define VTD_S1_INV_MIN_LEN \
	NESTD_OFFSETOFEND(struct iommu_hwpt_vtd_s1_invalidate, __reserved)
#define SELFTEST_INV_MIN_LEN \
	NESTD_OFFSETOFEND(struct iommu_hwpt_invalidate_selftest, iotlb_id)

_Static_assert(sizeof(struct iommu_hwpt_invalidate) == 32, "iommu_hwpt_invalidate size");
_Static_assert(offsetof(struct iommu_hwpt_invalidate, data_uptr) == 8, "data_uptr offset");
_Static_assert(offsetof(struct iommu_hwpt_invalidate, data_type) == 16, "data_type offset");
_Static_assert(offsetof(struct iommu_hwpt_invalidate, entry_len) == 20, "entry_len offset");
_Static_assert(offsetof(struct iommu_hwpt_invalidate, entry_num) == 24, "entry_num offset");
_Static_assert(offsetof(struct iommu_hwpt_invalidate, __reserved) == 28, "__reserved offset");
_Static_assert(sizeof(struct iommu_hwpt_vtd_s1_invalidate) == 24, "vtd_s1_invalidate size");
_Static_assert(offsetof(struct iommu_hwpt_vtd_s1_invalidate, npages) == 8, "npages offset");
_Static_assert(offsetof(struct iommu_hwpt_vtd_s1_invalidate, flags) == 16, "flags offset");
_Static_assert(sizeof(struct iommu_hwpt_vtd_s1) == 24, "vtd_s1 size");
_Static_assert(offsetof(struct iommu_hwpt_vtd_s1, addr_width) == 16, "addr_width offset");
_Static_assert(sizeof(struct iommu_hwpt_alloc) == 48, "iommu_hwpt_alloc size");
_Static_assert(offsetof(struct iommu_hwpt_alloc, data_uptr) == 32, "data_uptr offset");
_Static_assert(offsetof(struct iommu_hwpt_alloc, fault_id) == 40, "fault_id offset");
_Static_assert(sizeof(struct iommu_ioas_map) == 40, "iommu_ioas_map size");
_Static_assert(sizeof(struct iommu_hwpt_invalidate_selftest) == 8, "selftest inv size");
_Static_assert(sizeof(struct iommu_hw_info) == 40, "iommu_hw_info size");
_Static_assert(offsetof(struct iommu_hw_info, out_max_pasid_log2) == 28, "max_pasid offset");
_Static_assert(offsetof(struct iommu_hw_info, out_capabilities) == 32, "capabilities offset");
_Static_assert(sizeof(struct iommu_hw_info_vtd) == 24, "iommu_hw_info_vtd size");
_Static_assert(sizeof(struct iommu_hwpt_get_dirty_bitmap) == 48, "get_dirty_bitmap size");
_Static_assert(IOMMU_HWPT_SET_DIRTY_TRACKING == 0x3b8b, "SET_DIRTY_TRACKING number");
_Static_assert(IOMMU_HWPT_GET_DIRTY_BITMAP == 0x3b8c, "GET_DIRTY_BITMAP number");
_Static_assert(IOMMU_HWPT_INVALIDATE == 0x3b8d, "IOMMU_HWPT_INVALIDATE number");
_Static_assert(IOMMU_HWPT_ALLOC == 0x3b89, "IOMMU_HWPT_ALLOC number");
_Static_assert(sizeof(struct iommu_hwpt_pgfault) == 40, "iommu_hwpt_pgfault size");
_Static_assert(offsetof(struct iommu_hwpt_pgfault, addr) == 24, "pgfault addr offset");
_Static_assert(offsetof(struct iommu_hwpt_pgfault, cookie) == 36, "pgfault cookie offset");
_Static_assert(sizeof(struct iommu_hwpt_page_response) == 8, "page_response size");
_Static_assert(sizeof(struct iommu_fault_alloc) == 16, "iommu_fault_alloc size");
_Static_assert(IOMMU_FAULT_QUEUE_ALLOC == 0x3b8e, "IOMMU_FAULT_QUEUE_ALLOC number");
_Static_assert(VTD_S1_INV_MIN_LEN == 24, "vtd min entry_len");
_Static_assert(SELFTEST_INV_MIN_LEN == 8, "selftest min entry_len");

#endif
