// SPDX-License-Identifier: MIT
/*
 * vIOMMU and vDEVICE objects on the real kernel: the IOMMU_VIOMMU_ALLOC
 * and IOMMU_VDEVICE_ALLOC ioctls, on the ids iommufd.c resolved. Every
 * answer is the kernel's (6.12 has neither ioctl: -ENOTTY). The daemon's
 * state (state/viommus.c) decides which ids a client may name.
 */
#include <errno.h>
#include <sys/ioctl.h>

#include "backend/iommufd/iommufd.h"
#include "backend/viommu_uapi.h"

static int xioctl(int fd, unsigned long req, void *arg)
{
	return ioctl(fd, req, arg) ? -errno : 0;
}

int ifd_viommu_alloc(int fd, uint32_t dev_id, uint32_t hwpt_id, uint32_t type, uint32_t flags,
		     uint32_t *out_id, uint32_t *out_parent)
{
	struct nestd_viommu_alloc cmd = {.size = sizeof(cmd),
					 .flags = flags,
					 .type = type,
					 .dev_id = dev_id,
					 .hwpt_id = hwpt_id};
	int rc = xioctl(fd, NESTD_IOMMU_VIOMMU_ALLOC, &cmd);

	if (rc)
		return rc;
	*out_id = cmd.out_viommu_id;
	if (out_parent)
		*out_parent = hwpt_id;
	return 0;
}

int ifd_vdevice_alloc(int fd, uint32_t viommu_id, uint32_t dev_id, uint64_t virt_id,
		      uint32_t *out_id)
{
	struct nestd_vdevice_alloc cmd = {
	    .size = sizeof(cmd), .viommu_id = viommu_id, .dev_id = dev_id, .virt_id = virt_id};
	int rc = xioctl(fd, NESTD_IOMMU_VDEVICE_ALLOC, &cmd);

	if (!rc)
		*out_id = cmd.out_vdevice_id;
	return rc;
}

/*
 * The restart's kind-keyed probe. The empty invalidation answers for a
 * nested HWPT and for a vIOMMU alike (the selftest types share
 * 0xdeadbeef), so it cannot tell them apart; IOMMU_HW_QUEUE_ALLOC can:
 * after its argument checks (flags 0, a type other than DEFAULT, a
 * length, no overflow) it looks the id up as a vIOMMU
 * (iommufd_get_viommu(): -ENOENT for any other kind), and then a queue
 * type no driver has makes get_hw_queue_size() answer 0: -EOPNOTSUPP, and
 * nothing is made.
 */
#define PROBE_QUEUE_TYPE 0x7fffffffu /* no IOMMU_HW_QUEUE_TYPE_* */

int ifd_viommu_probe(int fd, uint32_t id)
{
	struct nestd_hw_queue_alloc cmd = {
	    .size = sizeof(cmd), .viommu_id = id, .type = PROBE_QUEUE_TYPE, .length = 4096};
	int rc = xioctl(fd, NESTD_IOMMU_HW_QUEUE_ALLOC, &cmd);

	if (rc == -EOPNOTSUPP)
		return 0;
	if (!rc) {
		/* A driver that took the type after all: undo, it is a vIOMMU. */
		struct iommu_destroy d = {.size = sizeof(d), .id = cmd.out_hw_queue_id};

		(void)xioctl(fd, IOMMU_DESTROY, &d);
		return 0;
	}
	return rc == -ENOTTY ? -ENOTTY : -ENOENT;
}
