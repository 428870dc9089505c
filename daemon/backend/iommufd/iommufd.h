/* SPDX-License-Identifier: MIT */
/*
 * The iommufd backend's entry points beyond backend.h's
 * backend_iommufd_open(): construction from an inherited fd, and read-only
 * introspection used by the kernel test tier.
 */
#ifndef IOMMU_NESTD_BACKEND_IOMMUFD_H
#define IOMMU_NESTD_BACKEND_IOMMUFD_H

#include <stdint.h>

#include "backend/backend.h"

/*
 * Like backend_iommufd_open(), on an already open /dev/iommu fd (systemd's
 * fd store, a socket-activated parent). The backend takes ownership of fd:
 * ops->close() closes it, and so does a failure here (except for an fd that
 * is not open at all). A fresh IOAS, devices and nest parents are created
 * in the context; objects a previous owner left in it are not recovered.
 */
int backend_iommufd_adopt(int fd, const struct config *cfg, struct backend **out,
			  const char **errmsg);

/*
 * Re-adopts the objects a previous daemon instance created on fd (from
 * systemd's fd store), by the ids it saved in o (its save() output): the
 * IOAS, each configured device (VFIO cdev fds come from take_fd, named
 * "vfio.<device>") and nest parent, and the nested HWPTs. Devices are
 * checked with IOMMU_GET_HW_INFO and nested HWPTs with the empty
 * invalidation probe; nested HWPTs that fail it are left out. Creates
 * nothing. Then brings the kernel back to the saved state, which a crash
 * between an ioctl and the state-file write leaves one step behind: each
 * device is attached again where the file says (its nest parent if that
 * HWPT is gone) and nested HWPTs the file does not name are destroyed
 * (see backend_iommufd_restore_report()). Takes ownership of fd
 * (closed on failure).
 */
int backend_iommufd_restore(int fd, const struct config *cfg, struct json_object *o,
			    backend_take_fd_fn take_fd, void *ctx, struct backend **out,
			    const char **errmsg);

/*
 * What backend_iommufd_restore() had to change from the saved state:
 * devices moved to their nest parent because the HWPT the file has them on
 * is gone (or refused them), and nested HWPTs destroyed because the file
 * did not name them. (Devices put back on the HWPT the file names are not
 * counted: the kernel cannot be asked where a device was.)
 */
void backend_iommufd_restore_report(struct backend *be, uint32_t *moved, uint32_t *swept);

/* The iommufd the backend owns (tests issue raw ioctls on it). */
int backend_iommufd_fd(struct backend *be);

/*
 * The kernel object ids behind a configured device: its iommufd device id,
 * its nest parent HWPT and what it is attached to now (0: nothing). Any
 * pointer may be NULL. Returns 0 or -ENOENT for an unknown device.
 */
int backend_iommufd_device_ids(struct backend *be, const char *device, uint32_t *dev_id,
			       uint32_t *parent_id, uint32_t *attached_id);

/*
 * backend/iommufd/viommu.c: IOMMU_VIOMMU_ALLOC on nest parent hwpt_id of
 * device dev_id, IOMMU_VDEVICE_ALLOC; 0 or the kernel's negative errno.
 */
int ifd_viommu_alloc(int fd, uint32_t dev_id, uint32_t hwpt_id, uint32_t type, uint32_t flags,
		     uint32_t *out_id, uint32_t *out_parent);
int ifd_vdevice_alloc(int fd, uint32_t viommu_id, uint32_t dev_id, uint64_t virt_id,
		      uint32_t *out_id);
/*
 * Whether id is a vIOMMU: 0 yes, -ENOENT no (any other object or none),
 * -ENOTTY the kernel cannot tell (no IOMMU_HW_QUEUE_ALLOC before 6.17).
 */
int ifd_viommu_probe(int fd, uint32_t id);

/*
 * backend/iommufd/veventq.c: IOMMU_VEVENTQ_ALLOC (the fd made non-blocking),
 * the fd's read, close + IOMMU_DESTROY, IOMMU_TEST_OP_TRIGGER_VEVENT.
 */
int ifd_veventq_alloc(int iommufd, uint32_t viommu_id, uint32_t type, uint32_t depth,
		      struct backend_veventq *out);
int ifd_veventq_read(const struct backend_veventq *q, void *buf, uint32_t len);
int ifd_veventq_free(int iommufd, const struct backend_veventq *q);
int ifd_trigger_vevent(int iommufd, uint32_t dev_id);

#endif
