/* SPDX-License-Identifier: MIT */
/*
 * PASID attachments on the real kernel (pasid.c): the selftest's PASID
 * test ops for a mock device, VFIO_DEVICE_ATTACH_IOMMUFD_PT /
 * _DETACH with the PASID flag for a VFIO cdev, and the table of PASIDs
 * this backend attached (for the mock's attach-or-replace and for the
 * teardown, which must take them off before the mock device goes).
 */
#ifndef IOMMU_NESTD_BACKEND_IOMMUFD_PASID_H
#define IOMMU_NESTD_BACKEND_IOMMUFD_PASID_H

#include <stdbool.h>
#include <stdint.h>

struct ifd_pasid {
	uint32_t dev; /* the device's index in the backend */
	uint32_t pasid;
};

struct ifd_pasids {
	struct ifd_pasid *a;
	uint32_t n, cap;
};

/* A device as the PASID calls need it: a mock's object, or a VFIO cdev. */
struct ifd_pasid_dev {
	uint32_t index;
	uint32_t stdev_id; /* selftest mock; 0 for VFIO */
	int vfio_fd;	   /* VFIO cdev; -1 for a mock */
};

/*
 * Attaches pt_id to pasid of d, or replaces what is there (VFIO's
 * semantics; for a mock: PASID_REPLACE when the table has the PASID, else
 * PASID_ATTACH). The kernel's errno.
 */
int ifd_pasid_attach(int fd, struct ifd_pasids *t, const struct ifd_pasid_dev *d, uint32_t pasid,
		     uint32_t pt_id);
/* PASID_DETACH / VFIO detach of pasid: 0 when nothing was attached, as the kernel answers. */
int ifd_pasid_detach(int fd, struct ifd_pasids *t, const struct ifd_pasid_dev *d, uint32_t pasid);
/* Detaches every PASID of d (teardown, device leaving the instance). */
/*
 * After a restart, hwpt pt_id on pasid of d as the state file says: a
 * mock's checked with the kernel (PASID_CHECK_HWPT: -EINVAL when another
 * or none sits there), a VFIO device's trusted; then tracked again.
 */
int ifd_pasid_restore(int fd, struct ifd_pasids *t, const struct ifd_pasid_dev *d, uint32_t pasid,
		      uint32_t pt_id);
void ifd_pasid_detach_all(int fd, struct ifd_pasids *t, const struct ifd_pasid_dev *d);
void ifd_pasids_free(struct ifd_pasids *t);

/*
 * IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS with MOCK_FLAGS_DEVICE_PASID on ioas_id
 * (7.x); 6.12 refuses the flag with -EINVAL.
 */
int ifd_mock_domain_pasid(int fd, uint32_t ioas_id, uint32_t *stdev_id, uint32_t *dev_id);
/* IOMMU_GET_HW_INFO's out_max_pasid_log2 of dev_id; 0 when the kernel reports none. */
uint8_t ifd_max_pasid_log2(int fd, uint32_t dev_id);

#endif
