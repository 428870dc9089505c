/* SPDX-License-Identifier: MIT */
/*
 * The VFIO device cdev ioctls that bind a device to an iommufd and attach
 * it to a page table (include/uapi/linux/vfio.h, Linux 6.6+). Debian 12's
 * headers (6.1) predate them, so when the system header lacks them we carry
 * the 6.12 layouts; the static asserts pin them either way.
 */
#ifndef IOMMU_NESTD_VFIO_UAPI_H
#define IOMMU_NESTD_VFIO_UAPI_H

#include <stddef.h>
#include <stdint.h>
#include <linux/ioctl.h>
#include <linux/types.h>
#include <linux/vfio.h>

#ifndef VFIO_DEVICE_BIND_IOMMUFD
struct vfio_device_bind_iommufd {
	__u32 argsz;
	__u32 flags;
	__s32 iommufd;
	__u32 out_devid;
};
#define VFIO_DEVICE_BIND_IOMMUFD _IO(VFIO_TYPE, VFIO_BASE + 18)
#endif

#ifndef VFIO_DEVICE_ATTACH_IOMMUFD_PT
struct vfio_device_attach_iommufd_pt {
	__u32 argsz;
	__u32 flags;
	__u32 pt_id;
};
#define VFIO_DEVICE_ATTACH_IOMMUFD_PT _IO(VFIO_TYPE, VFIO_BASE + 19)
#endif

#ifndef VFIO_DEVICE_DETACH_IOMMUFD_PT
struct vfio_device_detach_iommufd_pt {
	__u32 argsz;
	__u32 flags;
};
#define VFIO_DEVICE_DETACH_IOMMUFD_PT _IO(VFIO_TYPE, VFIO_BASE + 20)
#endif

_Static_assert(sizeof(struct vfio_device_bind_iommufd) == 16, "bind_iommufd size");
_Static_assert(offsetof(struct vfio_device_bind_iommufd, out_devid) == 12, "out_devid offset");
/*
 * attach/detach grew a pasid field in 6.15 (argsz tells the kernel which
 * version it got), so only the 6.12 members' offsets are pinned.
 */
_Static_assert(offsetof(struct vfio_device_attach_iommufd_pt, pt_id) == 8, "pt_id offset");
_Static_assert(offsetof(struct vfio_device_detach_iommufd_pt, flags) == 4, "detach flags offset");
_Static_assert(VFIO_DEVICE_BIND_IOMMUFD == 0x3b76, "VFIO_DEVICE_BIND_IOMMUFD number");
_Static_assert(VFIO_DEVICE_ATTACH_IOMMUFD_PT == 0x3b77, "VFIO_DEVICE_ATTACH_IOMMUFD_PT number");
_Static_assert(VFIO_DEVICE_DETACH_IOMMUFD_PT == 0x3b78, "VFIO_DEVICE_DETACH_IOMMUFD_PT number");

#endif
