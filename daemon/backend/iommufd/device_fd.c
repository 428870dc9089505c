/* SPDX-License-Identifier: MIT */
/*
 * Device hand-off on the real kernel: the VFIO cdev the backend bound to
 * its iommufd (VFIO_DEVICE_BIND_IOMMUFD) is what a VMM needs for config
 * space, BARs, interrupts and reset, so OpenDevice passes it a dup. The
 * dup is the same open file: whatever the VMM does with it happens on the
 * daemon's binding, and an VFIO_DEVICE_ATTACH_IOMMUFD_PT it issues can
 * only name objects of the daemon's iommufd. That is why the daemon puts
 * the device back on its own page table (device_reclaim) whenever it
 * takes the device back.
 *
 * AdoptDevice goes the other way (libvirt opens the cdev and passes it
 * in): the backend's own binding is closed (which unbinds the device) and
 * the adopted file is bound and attached where the old one was.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "backend/iommufd/device_fd.h"
#include "backend/vfio_uapi.h"
#include "util/log.h"

/* *why for the requests' replies: one request at a time, from the event loop. */
static char whybuf[256];

static int ioctl_err(int fd, unsigned long req, void *arg)
{
	return ioctl(fd, req, arg) < 0 ? -errno : 0;
}

static int vfio_info(int fd, struct vfio_device_info *info)
{
	memset(info, 0, sizeof(*info));
	info->argsz = sizeof(*info);
	return ioctl_err(fd, VFIO_DEVICE_GET_INFO, info);
}

static int has_fd(const struct ifd_device_slots *sl, const char **why)
{
	if (sl->kind == DEVICE_KIND_VTD && *sl->vfio_fd < 0) {
		*why = "a former client still keeps the device's VFIO fd open: the daemon "
		       "cannot take the device back until that fd is closed";
		return -EBUSY;
	}
	if (sl->kind != DEVICE_KIND_VTD || *sl->vfio_fd < 0) {
		snprintf(whybuf, sizeof(whybuf),
			 "device %s is a selftest mock device: the kernel gives it no VFIO device "
			 "fd to hand over",
			 sl->name);
		*why = whybuf;
		return -EOPNOTSUPP;
	}
	return 0;
}

/*
 * A bound cdev can attach its device to any page table of the iommufd it
 * is bound to (VFIO_DEVICE_ATTACH_IOMMUFD_PT takes an object id, and ids
 * are small integers). While one iommufd holds several devices' IOASes
 * and HWPTs, a VMM with the fd could put its device on another tenant's
 * stage 2 and DMA into that tenant's memory: the fd may leave the daemon
 * only where it reaches the VM's own objects alone.
 */
static int sole_device(const struct ifd_device_slots *sl, const char **why)
{
	if (sl->n_devices <= 1)
		return 0;
	snprintf(whybuf, sizeof(whybuf),
		 "the daemon's iommufd holds the page tables of %u devices: a VMM holding "
		 "this device's fd could attach it to another device's "
		 "(VFIO_DEVICE_ATTACH_IOMMUFD_PT), so the fd is handed out only where the "
		 "device is alone in its iommufd",
		 sl->n_devices);
	*why = whybuf;
	return -EPERM;
}

int vfio_dev_get(const struct ifd_device_slots *sl, struct backend_device *out, const char **why)
{
	struct vfio_device_info info;
	int rc = has_fd(sl, why);

	if (!rc)
		rc = sole_device(sl, why);
	if (rc)
		return rc;
	rc = vfio_info(*sl->vfio_fd, &info);
	if (rc) {
		*why = "VFIO_DEVICE_GET_INFO on the bound cdev failed";
		return rc;
	}
	*sl->handed = true; /* the caller passes it on */
	*out = (struct backend_device){.fd = *sl->vfio_fd,
				       .dev_id = *sl->dev_id,
				       .parent_id = sl->nest_err ? 0 : *sl->parent_id,
				       .ioas_id = *sl->ioas_id,
				       .attached_id = *sl->attached_id,
				       .vfio_flags = info.flags,
				       .num_regions = info.num_regions,
				       .num_irqs = info.num_irqs};
	return 0;
}

static int attach_pt(int fd, uint32_t pt_id)
{
	struct vfio_device_attach_iommufd_pt cmd = {.argsz = sizeof(cmd), .pt_id = pt_id};

	return ioctl_err(fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &cmd);
}

/* Binds fd to the backend's iommufd and attaches it where the device was: 0 or the errno. */
static int bind_and_attach(struct ifd_device_slots *sl, int fd)
{
	struct vfio_device_bind_iommufd bind = {.argsz = sizeof(bind), .iommufd = sl->iommufd};
	uint32_t pt = *sl->attached_id ? *sl->attached_id : *sl->parent_id;
	int rc = ioctl_err(fd, VFIO_DEVICE_BIND_IOMMUFD, &bind);

	if (rc)
		return rc;
	rc = attach_pt(fd, pt);
	if (rc == 0) {
		*sl->dev_id = bind.out_devid;
		*sl->attached_id = pt;
	}
	return rc;
}

/* The passed descriptor must be the configured device's cdev, and not bound yet. */
static int check_adoptable(const struct ifd_device_slots *sl, int fd, const char **why)
{
	struct stat got, want;
	struct vfio_device_info info;

	if (fstat(fd, &got) != 0 || !S_ISCHR(got.st_mode)) {
		*why = "the descriptor is not a character device (a VFIO cdev is)";
		return -ENOTTY;
	}
	if (stat(sl->path, &want) != 0 || !S_ISCHR(want.st_mode)) {
		*why = "the configured VFIO cdev path is not a character device";
		return -ENODEV;
	}
	if (got.st_rdev != want.st_rdev) {
		snprintf(whybuf, sizeof(whybuf),
			 "the descriptor is character device %u:%u, the configured %s is %u:%u",
			 major(got.st_rdev), minor(got.st_rdev), sl->path, major(want.st_rdev),
			 minor(want.st_rdev));
		*why = whybuf;
		return -EXDEV;
	}
	/* An unbound cdev answers everything but BIND with EINVAL (device_cdev.c). */
	if (vfio_info(fd, &info) == 0) {
		*why = "the VFIO cdev is already bound to an iommufd: pass a freshly opened one";
		return -EBUSY;
	}
	return 0;
}

int vfio_dev_adopt(struct ifd_device_slots *sl, int fd, const char **why)
{
	int rc = has_fd(sl, why);
	int mine, old;

	if (!rc)
		rc = sole_device(sl, why);
	if (rc)
		return rc;
	/*
	 * A device's binding ends only when the last descriptor of its file
	 * closes. Once the daemon's went to a VMM, closing the daemon's own
	 * copy would not unbind it, the adopted cdev could not bind, and the
	 * daemon would have lost its handle on a device still bound.
	 */
	if (*sl->handed) {
		*why = "the daemon's binding of the device was handed to a VMM (OpenDevice), "
		       "which may still hold it: a cdev can be adopted only before that";
		return -EBUSY;
	}
	rc = check_adoptable(sl, fd, why);
	if (rc)
		return rc;
	mine = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (mine < 0) {
		*why = "dup of the descriptor failed";
		return -errno;
	}
	/* One binding per device: ours must go before the adopted file can bind. */
	old = *sl->vfio_fd;
	*sl->vfio_fd = -1;
	close(old);
	rc = bind_and_attach(sl, mine);
	if (rc == 0) {
		*sl->vfio_fd = mine;
		(*sl->fd_gen)++;
		return 0;
	}
	*why = "binding the adopted cdev to the daemon's iommufd failed; the daemon's own "
	       "binding is back";
	close(mine);
	/* Back to a binding of our own, so that the device stays served. */
	old = open(sl->path, O_RDWR | O_CLOEXEC);
	if (old >= 0 && bind_and_attach(sl, old) == 0) {
		*sl->vfio_fd = old;
		(*sl->fd_gen)++;
	} else {
		if (old >= 0)
			close(old);
		log_err("device %s: lost its VFIO binding while adopting a cdev", sl->name);
	}
	return rc;
}

int vfio_dev_reclaim(struct ifd_device_slots *sl)
{
	const char *why;
	uint32_t pt;
	int rc;

	if (has_fd(sl, &why))
		return 0; /* a mock has no fd anyone holds; a stale device none of ours */
	/*
	 * The kernel has no query of what a device is attached to, so a move
	 * the VMM made cannot be seen, only undone: a replace with the page
	 * table the device is on already is a no-op (iommufd_device_change_pt),
	 * any other puts it back. A detached device goes to its parent.
	 */
	pt = *sl->attached_id ? *sl->attached_id : *sl->parent_id;
	rc = attach_pt(*sl->vfio_fd, pt);
	if (rc == 0)
		*sl->attached_id = pt;
	return rc;
}

int vfio_dev_reset(const struct ifd_device_slots *sl)
{
	struct vfio_device_info info;
	const char *why;
	int rc = has_fd(sl, &why);

	if (rc)
		return rc == -EOPNOTSUPP ? -ENOTTY : rc; /* a mock has no VFIO reset */
	rc = vfio_info(*sl->vfio_fd, &info);
	if (rc)
		return rc;
	if (!(info.flags & VFIO_DEVICE_FLAGS_RESET))
		return -ENOTTY;
	return ioctl_err(*sl->vfio_fd, VFIO_DEVICE_RESET, NULL);
}

int vfio_dev_release(struct ifd_device_slots *sl)
{
	int fd, rc;

	if (sl->kind != DEVICE_KIND_VTD)
		return 0; /* a mock: nothing was handed out */
	if (*sl->vfio_fd >= 0 && !*sl->handed)
		return 0; /* nobody else ever held it */
	/*
	 * Ours closed, the binding ends unless the former holder keeps its
	 * copy; then the fresh cdev cannot bind (one binding per device:
	 * vfio_df_open) and the device stays out of service until it can.
	 */
	if (*sl->vfio_fd >= 0)
		close(*sl->vfio_fd);
	*sl->vfio_fd = -1;
	fd = open(sl->path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	rc = bind_and_attach(sl, fd);
	if (rc) {
		close(fd);
		return rc == -EINVAL ? -EBUSY : rc;
	}
	*sl->vfio_fd = fd;
	(*sl->fd_gen)++;
	*sl->handed = false;
	return 0;
}

/*
 * A device has one binding at a time (vfio_df_open refuses a second
 * while the first is open), and the backend's descriptor of it is in its
 * hands: so a descriptor of the configured cdev that answers
 * VFIO_DEVICE_GET_INFO (an unbound one answers EINVAL) is one of that
 * very file, the one the backend handed out.
 */
int vfio_dev_holds_fd(const struct ifd_device_slots *sl, int fd)
{
	struct vfio_device_info info;
	struct stat got, mine;

	if (sl->kind != DEVICE_KIND_VTD)
		return -EOPNOTSUPP;
	if (*sl->vfio_fd < 0 || !*sl->handed)
		return -ENOENT;
	if (fstat(fd, &got) || fstat(*sl->vfio_fd, &mine) || !S_ISCHR(got.st_mode) ||
	    got.st_rdev != mine.st_rdev)
		return -ENOENT;
	return vfio_info(fd, &info) ? -ENOENT : 0;
}
