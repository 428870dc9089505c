/* SPDX-License-Identifier: MIT */
/*
 * The iommufd backend's device hand-off (device_fd.c), over the device
 * slots iommufd.c lends it: iommufd.c calls here, never the other way.
 */
#ifndef IOMMU_NESTD_BACKEND_IOMMUFD_DEVICE_FD_H
#define IOMMU_NESTD_BACKEND_IOMMUFD_DEVICE_FD_H

#include <stdbool.h>
#include <stdint.h>

#include "backend/backend.h"
#include "util/config.h"

/* A configured device's state, lent by iommufd.c for one call. */
struct ifd_device_slots {
	int iommufd;
	int *vfio_fd; /* -1: no cdev (selftest mock) */
	uint32_t *dev_id, *parent_id, *ioas_id, *attached_id;
	int nest_err;
	bool *handed;	  /* *vfio_fd was handed out: another holder may keep its binding alive */
	uint32_t *fd_gen; /* bumped whenever *vfio_fd becomes another open file */
	enum device_kind kind;
	const char *name;
	const char *path;   /* the configured VFIO cdev */
	uint32_t n_devices; /* devices with objects in the same iommufd, this one included */
};

/* The backend ops of the same names (backend.h), on one device's slots. */
int vfio_dev_get(const struct ifd_device_slots *sl, struct backend_device *out, const char **why);
int vfio_dev_adopt(struct ifd_device_slots *sl, int fd, const char **why);
int vfio_dev_reclaim(struct ifd_device_slots *sl);
int vfio_dev_reset(const struct ifd_device_slots *sl);
int vfio_dev_release(struct ifd_device_slots *sl);
int vfio_dev_holds_fd(const struct ifd_device_slots *sl, int fd);

#endif
