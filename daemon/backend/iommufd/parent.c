/* SPDX-License-Identifier: MIT */
/*
 * A device's stage-2 page table: the nest parent, or, where the host IOMMU
 * cannot nest, a plain paging HWPT on the same IOAS.
 *
 * The Intel driver refuses IOMMU_HWPT_ALLOC_NEST_PARENT with -EOPNOTSUPP
 * when the IOMMU lacks nesting (!ecap_nest: intel/iommu.c, every emulated
 * VT-d of QEMU 7.2 among them). The device is still worth serving then: a
 * VMM maps guest memory into the IOAS and the device DMAs through the
 * paging HWPT, only nested HWPTs cannot be. So the allocation falls back
 * and remembers the kernel's answer, which Alloc then gives the client
 * with the reason instead of the driver's obscure -EINVAL on a parent that
 * is no nest parent (hw_pagetable.c, iommufd_hwpt_nested_alloc).
 */
#include <errno.h>
#include <sys/ioctl.h>

#include "backend/iommufd/parent.h"
#include "backend/iommufd_uapi.h"

static int hwpt_alloc(int fd, uint32_t dev_id, uint32_t pt_id, uint32_t flags, uint32_t *out)
{
	struct iommu_hwpt_alloc cmd = {
	    .size = sizeof(cmd),
	    .flags = flags,
	    .dev_id = dev_id,
	    .pt_id = pt_id,
	    .data_type = IOMMU_HWPT_DATA_NONE,
	};

	if (ioctl(fd, IOMMU_HWPT_ALLOC, &cmd) < 0)
		return -errno;
	*out = cmd.out_hwpt_id;
	return 0;
}

int ifd_parent_alloc(int fd, uint32_t dev_id, uint32_t ioas_id, uint32_t flags, uint32_t *out,
		     int *nest_err)
{
	int rc = hwpt_alloc(fd, dev_id, ioas_id, flags | IOMMU_HWPT_ALLOC_NEST_PARENT, out);

	*nest_err = 0;
	/* Only "cannot nest" falls back: any other refusal is the device's real trouble. */
	if (rc != -EOPNOTSUPP)
		return rc;
	if (hwpt_alloc(fd, dev_id, ioas_id, flags & ~IOMMU_HWPT_ALLOC_NEST_PARENT, out) != 0)
		return rc;
	*nest_err = rc;
	return 0;
}
