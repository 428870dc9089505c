/* SPDX-License-Identifier: MIT */
/*
 * The real backend: iommufd ioctls on /dev/iommu.
 *
 * Object graph it builds at open, one IOAS per device:
 *
 *   IOAS (per device) ── nest parent HWPT ── nested HWPTs (per client)
 *
 * The IOAS is the device's stage 2, where a client's guest memory is
 * mapped (map_memory). It is not shared: memory one client maps for its
 * device must never become reachable through a device another client
 * uses, and every HWPT_PAGING domain of an IOAS maps all of its areas.
 *
 * Devices come from the config:
 *   selftest  a mock device of the kernel's iommufd selftest
 *             (CONFIG_IOMMUFD_TEST), created with IOMMU_TEST_OP_MOCK_DOMAIN
 *             and moved between page tables with MOCK_DOMAIN_REPLACE;
 *   vtd       a VFIO device cdev (/dev/vfio/devices/vfioN) bound to the
 *             iommufd with VFIO_DEVICE_BIND_IOMMUFD and attached with
 *             VFIO_DEVICE_ATTACH_IOMMUFD_PT.
 *
 * Every device is attached to its own nest parent (IOMMU_HWPT_ALLOC with
 * IOMMU_HWPT_ALLOC_NEST_PARENT on the IOAS) until a client attaches it to a
 * nested HWPT.
 *
 * VM contexts (open_context) are instances of this backend too, each its
 * own open of /dev/iommu, so another tenant's ids are unreachable by the
 * kernel's own lookup, not only by our bookkeeping:
 *
 *   context iommufd ── ONE IOAS (the VM's guest RAM, mapped and pinned once)
 *                        ├── nest parent (device A) ── nested HWPTs
 *                        └── nest parent (device B) ── nested HWPTs
 *
 * A context holds only the devices added to it; a VFIO device's cdev moves
 * from this root instance to the context and back (one iommufd at a time). Every operation returns
 * the kernel's errno unchanged; the backend adds only one rule of its own: it acts only on nested
 * HWPTs it allocated, so a client can never reach the IOAS, a parent or a device object through it
 * (those ids answer ENOENT, or EBUSY for a parent, which is what the kernel would say while a
 * device holds it).
 *
 * Single threaded, like the event loop that calls it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/backend.h"
#include "backend/iommufd/fault.h"
#include "backend/iommufd/iommufd.h"
#include "util/config.h"
#include "backend/iommufd_test_uapi.h"
#include "backend/iommufd_uapi.h"
#include "backend/pasid_uapi.h"
#include "util/json_util.h"
#include "util/journal.h"
#include "util/log.h"
#include "backend/vfio_uapi.h"
#include "backend/iommufd/device_fd.h"
#include "backend/iommufd/parent.h"
#include "backend/iommufd/pasid.h"
#include "util/common.h"

#define DEFAULT_IOMMUFD_PATH "/dev/iommu"

/* Names in systemd's fd store (persist/fdstore.c): the context and each VFIO cdev. */
#define IFD_FD_NAME "iommufd"
#define IFD_VFIO_FD_PREFIX "vfio."

struct ifd_device {
	char name[CONFIG_NAME_MAX];
	char path[CONFIG_PATH_MAX];
	enum device_kind kind;
	bool pasid;	       /* config: a PASID-capable mock (MOCK_FLAGS_DEVICE_PASID) */
	int vfio_fd;	       /* vtd: the device cdev; -1 otherwise */
	uint32_t ioas_id;      /* its own IOAS: the stage 2 guest memory goes in */
	uint32_t dev_id;       /* the iommufd device object (HWPT_ALLOC dev_id) */
	uint32_t stdev_id;     /* selftest: the mock device object */
	uint32_t parent_id;    /* the nest parent HWPT */
	uint32_t attached_id;  /* what the device is attached to now; 0: none */
	uint32_t hw_info_type; /* IOMMU_HW_INFO_TYPE_*, from IOMMU_GET_HW_INFO */
	int nest_err;	       /* parent.c: the IOMMU cannot nest (parent_id is plain paging) */
	bool handed;	       /* device_fd.c: vfio_fd was handed out (a VMM may hold it) */
	bool handed_saved;     /* handed as the last full save() wrote it */
	uint32_t fd_gen;       /* bumped whenever vfio_fd is another open file (backend_fd.gen) */
	/*
	 * Whether this iommufd holds the device now. The root binds every
	 * device at open and gives up a VFIO one while a VM context holds it
	 * (a cdev is bound to one iommufd at a time); a context holds only
	 * the devices added to it.
	 */
	bool present;
	bool borrowed; /* a context's VFIO device the root gave up for it */
	/*
	 * Root: a context gave the device back while a former holder kept
	 * the context's fd open (the cdev stays bound there): device_release
	 * binds it again once that fd is closed.
	 */
	bool unbound;
};

struct ifd_nested {
	uint32_t id;
	uint32_t dev; /* index of the device whose parent it sits on */
};

/* A vIOMMU or vDEVICE alive in this iommufd (7.x), for restart and the sweep. */
struct ifd_vobj {
	uint32_t id;
	bool viommu; /* else a vDEVICE */
};

struct ifd_backend {
	struct backend base;
	int fd;
	struct ifd_device *devs;
	uint32_t n_devs;
	struct ifd_nested *nested; /* nested HWPTs alive, unordered */
	uint32_t n_nested, cap_nested;
	struct dirty_ids nested_dirty; /* nested ids added or gone since the last save */
	struct ifd_vobj *vobjs;	       /* newest last */
	uint32_t n_vobjs, cap_vobjs;
	bool vobjs_dirty; /* changed since the last save: the journal has no records for them */
	uint32_t vdev_intent; /* ifd_vdevice_intent(): the id IOMMU_VDEVICE_ALLOC is about to get */
	struct backend_caps caps;
	/* What backend_iommufd_restore() had to put right in the kernel. */
	uint32_t restore_moved, restore_swept;
	char path[CONFIG_PATH_MAX]; /* the /dev/iommu a VM context opens */
	/*
	 * A VM context (open_context): its own iommufd, so the kernel keeps
	 * every other tenant's ids out of reach, and ONE IOAS for the VM's
	 * guest memory, shared by all of its devices. root is the instance
	 * that lends it VFIO devices; NULL: this is the root.
	 */
	struct ifd_backend *root;
	uint32_t ctx_ioas;
	struct ifd_pasids pasids; /* the PASIDs attached through us (pasid.c) */
	/*
	 * A root with VM contexts on ([daemon] vm_contexts): it holds no
	 * client's state on a device (every claim moves the device into the
	 * client's context), and a cdev binds to one iommufd at a time, so
	 * its VFIO cdevs stay out of the fd store (systemd's copy would keep
	 * the root's binding alive when a context binds the device) and are
	 * bound afresh at a restart instead.
	 */
	bool fresh_vfio;
};

/*
 * Messages for backend_open's *errmsg: the caller treats them as static, so
 * they live here until the next failing open. Opening happens once, at
 * start, from one thread.
 */
static char errbuf[512];

static const char *seterr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *seterr(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errbuf, sizeof(errbuf), fmt, ap);
	va_end(ap);
	return errbuf;
}

static struct ifd_backend *to_ifd(struct backend *be)
{
	return (struct ifd_backend *)be;
}

static int ioctl_err(int fd, unsigned long req, void *arg)
{
	if (ioctl(fd, req, arg) == 0)
		return 0;
	return -errno;
}

/* --- raw iommufd operations --------------------------------------------- */

static int ifd_destroy_id(int fd, uint32_t id)
{
	struct iommu_destroy cmd = {.size = sizeof(cmd), .id = id};

	return ioctl_err(fd, IOMMU_DESTROY, &cmd);
}

static int ifd_ioas_alloc(int fd, uint32_t *out)
{
	struct iommu_ioas_alloc cmd = {.size = sizeof(cmd)};
	int rc = ioctl_err(fd, IOMMU_IOAS_ALLOC, &cmd);

	if (rc == 0)
		*out = cmd.out_ioas_id;
	return rc;
}

static int ifd_hwpt_alloc(int fd, uint32_t dev_id, uint32_t pt_id, uint32_t flags,
			  uint32_t data_type, const void *data, uint32_t data_len,
			  uint32_t fault_id, uint32_t *out)
{
	struct iommu_hwpt_alloc cmd = {
	    .size = sizeof(cmd),
	    .flags = flags,
	    .fault_id = fault_id,
	    .dev_id = dev_id,
	    .pt_id = pt_id,
	    .data_type = data_type,
	    .data_len = data_len,
	    .data_uptr = (uintptr_t)data,
	};
	int rc = ioctl_err(fd, IOMMU_HWPT_ALLOC, &cmd);

	if (rc == 0)
		*out = cmd.out_hwpt_id;
	return rc;
}

static int ifd_mock_domain(int fd, uint32_t ioas_id, uint32_t *stdev_id, uint32_t *dev_id)
{
	struct iommu_test_cmd cmd = {
	    .size = sizeof(cmd),
	    .op = IOMMU_TEST_OP_MOCK_DOMAIN,
	    .id = ioas_id,
	};
	int rc = ioctl_err(fd, IOMMU_TEST_CMD, &cmd);

	if (rc == 0) {
		*stdev_id = cmd.mock_domain.out_stdev_id;
		*dev_id = cmd.mock_domain.out_idev_id;
	}
	return rc;
}

static int ifd_mock_replace(int fd, uint32_t stdev_id, uint32_t pt_id)
{
	struct iommu_test_cmd cmd = {
	    .size = sizeof(cmd),
	    .op = IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE,
	    .id = stdev_id,
	    .mock_domain_replace.pt_id = pt_id,
	};

	return ioctl_err(fd, IOMMU_TEST_CMD, &cmd);
}

static int vfio_attach(int vfio_fd, uint32_t pt_id)
{
	struct vfio_device_attach_iommufd_pt cmd = {.argsz = sizeof(cmd), .pt_id = pt_id};

	return ioctl_err(vfio_fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &cmd);
}

static int vfio_detach(int vfio_fd)
{
	struct vfio_device_detach_iommufd_pt cmd = {.argsz = sizeof(cmd)};

	return ioctl_err(vfio_fd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &cmd);
}

/*
 * IOMMU_GET_HW_INFO's out_data_type; 0 (NONE) when the kernel cannot say.
 * *caps: its out_capabilities (0 then).
 */
static uint32_t ifd_hw_info_type(int fd, uint32_t dev_id, uint64_t *caps)
{
	/* Large enough for every 6.12 type (VT-d: 24 bytes, ARM SMMUv3: 76). */
	uint64_t data[16];
	struct iommu_hw_info cmd = {
	    .size = sizeof(cmd),
	    .dev_id = dev_id,
	    .data_len = sizeof(data),
	    .data_uptr = (uintptr_t)data,
	};

	*caps = 0;
	if (ioctl_err(fd, IOMMU_GET_HW_INFO, &cmd) != 0)
		return IOMMU_HW_INFO_TYPE_NONE;
	*caps = cmd.out_capabilities;
	return cmd.out_data_type;
}

/* Device → page table, whichever way the device kind needs. */
static int dev_attach(struct ifd_backend *b, struct ifd_device *d, uint32_t pt_id)
{
	int rc;

	if (d->kind == DEVICE_KIND_SELFTEST)
		rc = ifd_mock_replace(b->fd, d->stdev_id, pt_id);
	else
		rc = vfio_attach(d->vfio_fd, pt_id);
	if (rc == 0)
		d->attached_id = pt_id;
	return rc;
}

/* --- open ----------------------------------------------------------------- */

static const char *open_hint(int err)
{
	switch (err) {
	case EACCES:
		return "permission denied: the daemon needs read and write access to the "
		       "device node (file mode/owner/group or ACL; run as root or grant "
		       "its user rw on it)";
	case EPERM:
		return "operation not permitted: a device-access policy refused it (device "
		       "cgroup / systemd DeviceAllow=, or an LSM such as SELinux or "
		       "AppArmor); no capability is checked on open";
	case ENOENT:
		return "no such device node";
	case ENXIO:
	case ENODEV:
		return "no driver behind the device node";
	case EBUSY:
		return "device busy (already opened by another user)";
	default:
		return strerror(err);
	}
}

static const char *iommufd_open_msg(const char *path, int err)
{
	if (err == ENOENT || err == ENXIO || err == ENODEV)
		return seterr("cannot open %s: %s (%s): the kernel lacks CONFIG_IOMMUFD or "
			      "the iommufd module is not loaded (modprobe iommufd)",
			      path, strerror(err), open_hint(err));
	return seterr("cannot open %s: %s", path, open_hint(err));
}

static int setup_selftest(struct ifd_backend *b, struct ifd_device *d, const char **errmsg)
{
	int rc = -EINVAL;

	/*
	 * pasid = true: a PASID-capable mock on 7.x. 6.12 knows no such
	 * device flag (-EINVAL): the device is made without PASIDs there,
	 * which hw_info then reports (max_pasid_log2 0).
	 */
	if (d->pasid)
		rc = ifd_mock_domain_pasid(b->fd, d->ioas_id, &d->stdev_id, &d->dev_id);
	if (rc == -EINVAL)
		rc = ifd_mock_domain(b->fd, d->ioas_id, &d->stdev_id, &d->dev_id);

	if (rc == -ENOTTY) {
		*errmsg = seterr("device %s (selftest): IOMMU_TEST_CMD is not supported: the "
				 "kernel lacks CONFIG_IOMMUFD_TEST",
				 d->name);
	} else if (rc) {
		*errmsg = seterr("device %s (selftest): IOMMU_TEST_OP_MOCK_DOMAIN: %s", d->name,
				 strerror(-rc));
	}
	if (rc == 0)
		d->attached_id = d->ioas_id; /* (its auto domain on the IOAS) */
	return rc;
}

static int setup_vfio(struct ifd_backend *b, struct ifd_device *d, const char **errmsg)
{
	struct vfio_device_bind_iommufd bind = {.argsz = sizeof(bind), .iommufd = b->fd};
	int rc;

	if (!d->path[0]) {
		*errmsg = seterr("device %s (vtd): no VFIO cdev path configured", d->name);
		return -EINVAL;
	}
	d->vfio_fd = open(d->path, O_RDWR | O_CLOEXEC);
	d->fd_gen++;
	if (d->vfio_fd < 0) {
		rc = -errno;
		if (rc == -ENOENT)
			*errmsg = seterr("device %s: cannot open %s: no such VFIO device cdev "
					 "(bind the device to vfio-pci; the kernel needs "
					 "CONFIG_VFIO_DEVICE_CDEV)",
					 d->name, d->path);
		else
			*errmsg = seterr("device %s: cannot open %s: %s", d->name, d->path,
					 open_hint(-rc));
		return rc;
	}
	rc = ioctl_err(d->vfio_fd, VFIO_DEVICE_BIND_IOMMUFD, &bind);
	if (rc) {
		*errmsg =
		    seterr("device %s: VFIO_DEVICE_BIND_IOMMUFD on %s: %s%s", d->name, d->path,
			   strerror(-rc),
			   rc == -ENOTTY ? " (kernel older than 6.6 or not a VFIO cdev)" : "");
		return rc;
	}
	d->dev_id = bind.out_devid;
	rc = dev_attach(b, d, d->ioas_id);
	if (rc)
		*errmsg = seterr("device %s: VFIO_DEVICE_ATTACH_IOMMUFD_PT (IOAS %u): %s", d->name,
				 d->ioas_id, strerror(-rc));
	return rc;
}

/*
 * Binds the device to b's iommufd on the IOAS d->ioas_id, gives it a nest
 * parent there and attaches it to that parent.
 */
static int setup_on_ioas(struct ifd_backend *b, struct ifd_device *d, const char **errmsg)
{
	uint32_t flags = IOMMU_HWPT_ALLOC_NEST_PARENT;
	uint64_t caps;
	int rc;

	if (d->kind == DEVICE_KIND_SELFTEST)
		rc = setup_selftest(b, d, errmsg);
	else if (d->kind == DEVICE_KIND_VTD)
		rc = setup_vfio(b, d, errmsg);
	else if (d->kind == DEVICE_KIND_SMMUV3) {
		/* No x86 machine (nor its QEMU) has one to bind: the sim models it. */
		*errmsg = seterr("device %s: kind smmuv3 exists on the sim backend only (an ARM "
				 "SMMUv3 device cannot be bound on this host)",
				 d->name);
		return -EOPNOTSUPP;
	} else {
		*errmsg = seterr("device %s: unknown device kind %d", d->name, (int)d->kind);
		return -EINVAL;
	}
	if (rc)
		return rc;

	d->hw_info_type = ifd_hw_info_type(b->fd, d->dev_id, &caps);

	/* Dirty tracking for live migration wherever the IOMMU can (hw_pagetable.c:123). */
	if (caps & IOMMU_HW_CAP_DIRTY_TRACKING)
		flags |= IOMMU_HWPT_ALLOC_DIRTY_TRACKING;
	flags &= ~IOMMU_HWPT_ALLOC_NEST_PARENT; /* parent.c adds it, and falls back */
	/*
	 * A PASID-capable device's RID domain must be ALLOC_PASID for any
	 * PASID to be attached (device.c iommufd_hwpt_pasid_compat()), and so
	 * must the parent itself to sit on a PASID. Without the flag if the
	 * IOMMU refuses it: the device still works, its PASIDs do not.
	 */
	rc = -EOPNOTSUPP;
	if (ifd_max_pasid_log2(b->fd, d->dev_id))
		rc = ifd_parent_alloc(b->fd, d->dev_id, d->ioas_id, flags | NESTD_HWPT_ALLOC_PASID,
				      &d->parent_id, &d->nest_err);
	if (rc)
		rc = ifd_parent_alloc(b->fd, d->dev_id, d->ioas_id, flags, &d->parent_id,
				      &d->nest_err);
	if (rc) {
		*errmsg =
		    seterr("device %s: IOMMU_HWPT_ALLOC(NEST_PARENT): %s%s", d->name, strerror(-rc),
			   rc == -EOPNOTSUPP ? " (the device's IOMMU cannot nest)" : "");
		return rc;
	}
	rc = dev_attach(b, d, d->parent_id);
	if (rc)
		*errmsg = seterr("device %s: attaching to its nest parent %u: %s", d->name,
				 d->parent_id, strerror(-rc));
	return rc;
}

/* The root's way: every device on an IOAS of its own (see ioas_shared). */
static int setup_device(struct ifd_backend *b, struct ifd_device *d, const char **errmsg)
{
	int rc = ifd_ioas_alloc(b->fd, &d->ioas_id);

	if (rc) {
		*errmsg = seterr("device %s: IOMMU_IOAS_ALLOC: %s", d->name, strerror(-rc));
		return rc;
	}
	rc = setup_on_ioas(b, d, errmsg);
	if (rc == 0)
		d->present = true;
	return rc;
}

static void add_type(uint32_t *arr, uint32_t *n, uint32_t type)
{
	for (uint32_t i = 0; i < *n; i++)
		if (arr[i] == type)
			return;
	if (*n < BACKEND_MAX_TYPES)
		arr[(*n)++] = type;
}

/*
 * Which kernel's invalidation rules the running kernel follows, asked of
 * the kernel itself rather than read off uname (distribution kernels
 * backport): the empty invalidation of an IOAS is -ENOENT where only nested
 * HWPTs are looked up (6.12), -EINVAL where any object is and the wrong
 * kind is refused (7.x). Anything else (no such ioctl, no memory) keeps
 * the 6.12 rules the daemon has always followed.
 */
static enum kernel_rules probe_kernel_rules(int fd)
{
	struct iommu_hwpt_invalidate cmd = {
	    .size = sizeof(cmd),
	    .data_type = IOMMU_HWPT_INVALIDATE_DATA_VTD_S1,
	};
	enum kernel_rules r = KERNEL_RULES_6_12;

	if (ifd_ioas_alloc(fd, &cmd.hwpt_id))
		return r;
	if (ioctl_err(fd, IOMMU_HWPT_INVALIDATE, &cmd) == -EINVAL)
		r = KERNEL_RULES_7;
	ifd_destroy_id(fd, cmd.hwpt_id);
	return r;
}

static void compute_caps(struct ifd_backend *b)
{
	struct backend_caps *c = &b->caps;

	memset(c, 0, sizeof(*c));
	c->rules = probe_kernel_rules(b->fd);
	for (uint32_t i = 0; i < b->n_devs; i++) {
		const struct ifd_device *d = &b->devs[i];
		/* Trust the kernel's hw_info; fall back to the configured kind. */
		uint32_t t = d->hw_info_type;

		if (t == IOMMU_HW_INFO_TYPE_NONE)
			t = d->kind == DEVICE_KIND_SELFTEST ? IOMMU_HW_INFO_TYPE_SELFTEST
							    : IOMMU_HW_INFO_TYPE_INTEL_VTD;
		if (t == IOMMU_HW_INFO_TYPE_SELFTEST) {
			add_type(c->hwpt_types, &c->n_hwpt_types, IOMMU_HWPT_DATA_SELFTEST);
			add_type(c->inv_types, &c->n_inv_types,
				 IOMMU_HWPT_INVALIDATE_DATA_SELFTEST);
			c->check_iotlb = true;
		} else if (t == IOMMU_HW_INFO_TYPE_INTEL_VTD) {
			add_type(c->hwpt_types, &c->n_hwpt_types, IOMMU_HWPT_DATA_VTD_S1);
			add_type(c->inv_types, &c->n_inv_types, IOMMU_HWPT_INVALIDATE_DATA_VTD_S1);
		}
	}
}

static void teardown(struct ifd_backend *b);


/* An IOAS allocated and destroyed again: only an iommufd answers both. */
static int probe_iommufd(int fd, const char **errmsg)
{
	uint32_t id;
	int rc = ifd_ioas_alloc(fd, &id);

	if (rc == 0)
		return ifd_destroy_id(fd, id);
	*errmsg = rc == -ENOTTY
		      ? seterr("fd %d is not an iommufd (IOMMU_IOAS_ALLOC: %s)", fd, strerror(-rc))
				: seterr("IOMMU_IOAS_ALLOC: %s", strerror(-rc));
	return rc;
}

static int ifd_create(int fd, const struct config *cfg, struct backend **out, const char **errmsg)
{
	struct ifd_backend *b;
	int rc;

	b = calloc(1, sizeof(*b));
	if (!b) {
		close(fd);
		*errmsg = "out of memory";
		return -ENOMEM;
	}
	b->base.ops = &backend_iommufd_ops;
	b->fd = fd;
	b->fresh_vfio = cfg->vm_contexts;
	snprintf(b->path, sizeof(b->path), "%s",
		 cfg->iommufd_path[0] ? cfg->iommufd_path : DEFAULT_IOMMUFD_PATH);
	if (cfg->n_devices) {
		b->devs = calloc(cfg->n_devices, sizeof(*b->devs));
		if (!b->devs) {
			teardown(b);
			*errmsg = "out of memory";
			return -ENOMEM;
		}
	}
	rc = probe_iommufd(fd, errmsg);
	if (rc) {
		teardown(b);
		return rc;
	}
	for (uint32_t i = 0; i < cfg->n_devices; i++) {
		struct ifd_device *d = &b->devs[i];

		snprintf(d->name, sizeof(d->name), "%s", cfg->devices[i].name);
		snprintf(d->path, sizeof(d->path), "%s", cfg->devices[i].path);
		d->kind = cfg->devices[i].kind;
		d->pasid = cfg->devices[i].pasid;
		d->vfio_fd = -1;
		b->n_devs = i + 1;
		rc = setup_device(b, d, errmsg);
		if (rc) {
			teardown(b);
			return rc;
		}
	}
	compute_caps(b);
	*out = &b->base;
	return 0;
}

int backend_iommufd_open(const struct config *cfg, struct backend **out, const char **errmsg)
{
	const char *path = cfg->iommufd_path[0] ? cfg->iommufd_path : DEFAULT_IOMMUFD_PATH;
	int fd = open(path, O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		int err = errno;

		*errmsg = iommufd_open_msg(path, err);
		return -err;
	}
	return ifd_create(fd, cfg, out, errmsg);
}

int backend_iommufd_adopt(int fd, const struct config *cfg, struct backend **out,
			  const char **errmsg)
{
	struct stat st;

	if (fd < 0 || fstat(fd, &st) != 0) {
		*errmsg =
		    seterr("cannot adopt iommufd fd %d: %s", fd, strerror(fd < 0 ? EBADF : errno));
		return fd < 0 ? -EBADF : -errno;
	}
	if (!S_ISCHR(st.st_mode)) {
		*errmsg = seterr("cannot adopt fd %d: not a character device", fd);
		close(fd);
		return -ENOTTY;
	}
	/* ifd_create's probe (IOMMU_IOAS_ALLOC) tells an iommufd from any other chardev. */
	return ifd_create(fd, cfg, out, errmsg);
}

/* --- nested HWPT bookkeeping ------------------------------------------- */

static struct ifd_nested *find_nested(struct ifd_backend *b, uint32_t id)
{
	for (uint32_t i = 0; i < b->n_nested; i++)
		if (b->nested[i].id == id)
			return &b->nested[i];
	return NULL;
}

static int add_nested(struct ifd_backend *b, uint32_t id, uint32_t dev)
{
	struct ifd_nested *n = array_room(b->nested, b->n_nested, &b->cap_nested, sizeof(*n), 16);

	if (!n)
		return -ENOMEM;
	b->nested = n;
	b->nested[b->n_nested++] = (struct ifd_nested){.id = id, .dev = dev};
	dirty_ids_add(&b->nested_dirty, id);
	return 0;
}

static struct ifd_vobj *find_vobj(struct ifd_backend *b, uint32_t id)
{
	for (uint32_t i = 0; i < b->n_vobjs; i++)
		if (b->vobjs[i].id == id)
			return &b->vobjs[i];
	return NULL;
}

static int add_vobj(struct ifd_backend *b, uint32_t id, bool viommu)
{
	struct ifd_vobj *n = array_room(b->vobjs, b->n_vobjs, &b->cap_vobjs, sizeof(*n), 8);

	if (!n)
		return -ENOMEM;
	b->vobjs = n;
	b->vobjs[b->n_vobjs++] = (struct ifd_vobj){.id = id, .viommu = viommu};
	b->vobjs_dirty = true;
	return 0;
}

static void drop_vobj(struct ifd_backend *b, struct ifd_vobj *v)
{
	uint32_t i = (uint32_t)(v - b->vobjs);

	memmove(v, v + 1, (b->n_vobjs - i - 1) * sizeof(*v));
	b->n_vobjs--;
	b->vobjs_dirty = true;
}

static bool is_parent(struct ifd_backend *b, uint32_t id)
{
	for (uint32_t i = 0; i < b->n_devs; i++)
		if (b->devs[i].parent_id == id)
			return true;
	return false;
}

static struct ifd_device *find_device(struct ifd_backend *b, const char *name)
{
	if (!name)
		return NULL;
	for (uint32_t i = 0; i < b->n_devs; i++)
		if (b->devs[i].present && strcmp(b->devs[i].name, name) == 0)
			return &b->devs[i];
	return NULL;
}

/* --- backend_ops ---------------------------------------------------------- */

static void teardown(struct ifd_backend *b)
{
	/*
	 * Closing the iommufd frees every object in dependency order; the
	 * explicit destroys only matter when someone else still holds the fd
	 * (an adopted fd kept in systemd's fd store). Device cdevs go first:
	 * closing one unbinds the device and drops its attachment. A mock's
	 * PASIDs before that: destroying the mock detaches only its RID.
	 */
	for (uint32_t i = 0; i < b->n_devs; i++) {
		struct ifd_pasid_dev pd = {
		    .index = i, .stdev_id = b->devs[i].stdev_id, .vfio_fd = b->devs[i].vfio_fd};

		ifd_pasid_detach_all(b->fd, &b->pasids, &pd);
	}
	for (uint32_t i = 0; i < b->n_devs; i++) {
		struct ifd_device *d = &b->devs[i];

		if (d->vfio_fd >= 0)
			close(d->vfio_fd);
		else if (d->stdev_id)
			ifd_destroy_id(b->fd, d->stdev_id);
	}
	for (uint32_t i = 0; i < b->n_nested; i++)
		ifd_destroy_id(b->fd, b->nested[i].id);
	/* Newest first: a vDEVICE before the vIOMMU it sits on. */
	for (uint32_t i = b->n_vobjs; i-- > 0;)
		ifd_destroy_id(b->fd, b->vobjs[i].id);
	for (uint32_t i = 0; i < b->n_devs; i++)
		if (b->devs[i].parent_id)
			ifd_destroy_id(b->fd, b->devs[i].parent_id);
	/* Destroying an IOAS unmaps (and unpins) whatever is still mapped. */
	for (uint32_t i = 0; i < b->n_devs; i++)
		if (b->devs[i].ioas_id && b->devs[i].ioas_id != b->ctx_ioas)
			ifd_destroy_id(b->fd, b->devs[i].ioas_id);
	if (b->ctx_ioas)
		ifd_destroy_id(b->fd, b->ctx_ioas);
	if (b->fd >= 0)
		close(b->fd);
	free(b->nested);
	ifd_pasids_free(&b->pasids);
	free(b->vobjs);
	dirty_ids_free(&b->nested_dirty);
	free(b->devs);
	free(b);
}

static void ctx_give_back(struct ifd_backend *b, struct ifd_device *d);

static void ifd_close(struct backend *be)
{
	struct ifd_backend *b = to_ifd(be);

	if (!b)
		return;
	/* A context's VFIO devices go back to the root once their cdevs are closed. */
	for (uint32_t i = 0; b->root && i < b->n_devs; i++) {
		struct ifd_device *d = &b->devs[i];

		if (d->vfio_fd >= 0) {
			close(d->vfio_fd);
			d->vfio_fd = -1;
		}
		ctx_give_back(b, d);
	}
	teardown(b);
}

static void ifd_get_caps(struct backend *be, struct backend_caps *caps)
{
	*caps = to_ifd(be)->caps;
}

static uint32_t ifd_n_devices(struct backend *be)
{
	return to_ifd(be)->n_devs;
}

static const char *ifd_device_name(struct backend *be, uint32_t i)
{
	struct ifd_backend *b = to_ifd(be);

	return i < b->n_devs ? b->devs[i].name : NULL;
}

static int ifd_alloc_nested(struct backend *be, const char *device, const struct backend_alloc *req,
			    uint32_t *out_hwpt_id, uint32_t *out_parent_id)
{
	struct ifd_backend *b = to_ifd(be);
	struct ifd_device *d = find_device(b, device);
	uint32_t id;
	int rc;

	if (!d)
		return -ENOENT;
	if (d->nest_err)
		return d->nest_err; /* no nest parent to sit on (parent.c) */
	/* pt_id: a vIOMMU (7.x) or the device's nest parent. */
	rc = ifd_hwpt_alloc(b->fd, d->dev_id, req->viommu_id ? req->viommu_id : d->parent_id,
			    req->flags, req->data_type, req->data, req->data_len, req->fault_id,
			    &id);
	if (rc)
		return rc;
	rc = add_nested(b, id, (uint32_t)(d - b->devs));
	if (rc) {
		ifd_destroy_id(b->fd, id);
		return rc;
	}
	*out_hwpt_id = id;
	if (out_parent_id)
		*out_parent_id = d->parent_id;
	return 0;
}

static int ifd_destroy(struct backend *be, uint32_t hwpt_id)
{
	struct ifd_backend *b = to_ifd(be);
	struct ifd_nested *n = find_nested(b, hwpt_id);
	int rc;

	if (!n)
		/*
		 * A parent is always held by its device (directly or through a
		 * nested child), so the kernel would refuse with EBUSY; anything
		 * else is not a HWPT of ours.
		 */
		return is_parent(b, hwpt_id) ? -EBUSY : -ENOENT;
	rc = ifd_destroy_id(b->fd, hwpt_id);
	if (rc == 0 || rc == -ENOENT) {
		*n = b->nested[--b->n_nested];
		dirty_ids_add(&b->nested_dirty, hwpt_id);
	}
	return rc;
}

static int ifd_attach(struct backend *be, const char *device, uint32_t hwpt_id)
{
	struct ifd_backend *b = to_ifd(be);
	struct ifd_device *d = find_device(b, device);

	if (!d)
		return -ENOENT;
	/*
	 * A nested HWPT of ours on any device (the kernel decides whether the
	 * domains fit; the daemon keeps tenants apart), or the device's own
	 * nest parent. Another device's parent would move the device onto
	 * that device's IOAS: not an object a client can reach through us.
	 */
	if (!find_nested(b, hwpt_id) && hwpt_id != d->parent_id)
		return -ENOENT;
	return dev_attach(b, d, hwpt_id);
}

static int ifd_detach(struct backend *be, const char *device)
{
	struct ifd_backend *b = to_ifd(be);
	struct ifd_device *d = find_device(b, device);
	int rc;

	if (!d)
		return -ENOENT;
	if (d->kind == DEVICE_KIND_SELFTEST)
		return dev_attach(b, d, d->parent_id);
	rc = vfio_detach(d->vfio_fd);
	if (rc == 0)
		d->attached_id = 0;
	return rc;
}

static int ifd_invalidate(struct backend *be, struct backend_inv *inv)
{
	struct ifd_backend *b = to_ifd(be);
	struct iommu_hwpt_invalidate cmd = {
	    .size = sizeof(cmd),
	    .hwpt_id = inv->hwpt_id,
	    .data_uptr = (uintptr_t)inv->entries,
	    .data_type = inv->data_type,
	    .entry_len = inv->entry_len,
	    .entry_num = inv->entry_num,
	    .__reserved = inv->reserved,
	};
	uint32_t in = inv->entry_num;
	int rc = ioctl_err(b->fd, IOMMU_HWPT_INVALIDATE, &cmd);

	inv->entry_num = cmd.entry_num;
	/*
	 * The kernel writes entry_num back on every path of its handler, and a
	 * failure always leaves it below the input. If it did not (the ioctl
	 * failed before the handler ran, e.g. ENOTTY on a pre-6.8 kernel, or
	 * the write-back faulted), claim nothing was handled: reporting a
	 * failed entry as done would be an under-invalidation, while a
	 * resubmission is harmless.
	 */
	if (rc && inv->entry_num >= in)
		inv->entry_num = 0;
	if (inv->entry_num > in)
		inv->entry_num = in;
	return rc;
}

/*
 * An IOAS that two devices share (left by a daemon that predates one IOAS
 * per device, re-adopted after a restart) would put one client's memory
 * behind another client's device: no guest memory goes into one.
 */
static bool ioas_shared(const struct ifd_backend *b, const struct ifd_device *d)
{
	for (uint32_t i = 0; i < b->n_devs; i++)
		if (&b->devs[i] != d && b->devs[i].ioas_id == d->ioas_id)
			return true;
	return false;
}

/*
 * IOMMU_IOAS_MAP takes a user VA, so the file range goes through our
 * address space: mmap (shared, with only the access asked for, so the
 * client's descriptor mode and memfd seals apply), map, munmap. The
 * munmap right away is safe: IOMMU_IOAS_MAP pins the pages into the
 * nest parent's domain, and iommufd only goes back to the source VA
 * (pages->source_mm) for pages that neither a domain nor an access holds
 * (pages.c:927-932). The device's parent always is a domain on its IOAS
 * (hw_pagetable.c:192), so the VA is never needed again; keeping it would
 * only cost address space, and would not survive a restart anyway.
 */
static int ifd_map_memory(struct backend *be, const char *device, uint64_t iova, uint64_t length,
			  int fd, uint64_t offset, uint32_t flags)
{
	struct ifd_backend *b = to_ifd(be);
	struct ifd_device *d = find_device(b, device);
	int prot = (flags & IOMMU_IOAS_MAP_READABLE ? PROT_READ : 0) |
		   (flags & IOMMU_IOAS_MAP_WRITEABLE ? PROT_WRITE : 0);
	struct iommu_ioas_map cmd = {
	    .size = sizeof(cmd),
	    .flags = flags | IOMMU_IOAS_MAP_FIXED_IOVA,
	    .iova = iova,
	    .length = length,
	};
	void *va;
	int rc;

	if (!d)
		return -ENOENT;
	/* A context's one IOAS is shared on purpose: all of it is one VM's. */
	if (!b->root && ioas_shared(b, d))
		return -EBUSY;
	if (length > SIZE_MAX || offset > (uint64_t)INT64_MAX)
		return -EOVERFLOW;
	va = mmap(NULL, (size_t)length, prot ? prot : PROT_READ, MAP_SHARED, fd, (off_t)offset);
	if (va == MAP_FAILED)
		return -errno;
	cmd.ioas_id = d->ioas_id;
	cmd.user_va = (uintptr_t)va;
	rc = ioctl_err(b->fd, IOMMU_IOAS_MAP, &cmd);
	munmap(va, (size_t)length);
	return rc;
}

static int ifd_unmap_memory(struct backend *be, const char *device, uint64_t iova, uint64_t length)
{
	struct ifd_backend *b = to_ifd(be);
	struct ifd_device *d = find_device(b, device);
	struct iommu_ioas_unmap cmd = {
	    .size = sizeof(cmd),
	    .iova = iova,
	    .length = length,
	};

	if (!d)
		return -ENOENT;
	cmd.ioas_id = d->ioas_id;
	return ioctl_err(b->fd, IOMMU_IOAS_UNMAP, &cmd);
}

/*
 * IOMMU_GET_HW_INFO on the device object the device is bound as (VFIO:
 * the bind's devid; selftest: the mock's idev), with room for every type's
 * structure; what the kernel has beyond the buffer is reported by data_len.
 */
static int ifd_hw_info(struct backend *be, const char *device, struct backend_hw_info *out)
{
	struct ifd_backend *b = to_ifd(be);
	struct ifd_device *d = find_device(b, device);
	struct iommu_hw_info cmd = {.size = sizeof(cmd)};
	int rc;

	if (!d)
		return -ENODEV;
	memset(out, 0, sizeof(*out));
	cmd.dev_id = d->dev_id;
	cmd.data_len = sizeof(out->data);
	cmd.data_uptr = (uintptr_t)out->data;
	rc = ioctl_err(b->fd, IOMMU_GET_HW_INFO, &cmd);
	if (rc)
		return rc;
	out->data_type = cmd.out_data_type;
	out->data_len = cmd.data_len;
	out->capabilities = cmd.out_capabilities;
	out->max_pasid_log2 = cmd.out_max_pasid_log2;
	return 0;
}

static int ifd_set_dirty_tracking(struct backend *be, const char *device, bool enable)
{
	struct ifd_backend *b = to_ifd(be);
	struct ifd_device *d = find_device(b, device);
	struct iommu_hwpt_set_dirty_tracking cmd = {
	    .size = sizeof(cmd),
	    .flags = enable ? IOMMU_HWPT_DIRTY_TRACKING_ENABLE : 0,
	};

	if (!d)
		return -ENODEV;
	cmd.hwpt_id = d->parent_id;
	return ioctl_err(b->fd, IOMMU_HWPT_SET_DIRTY_TRACKING, &cmd);
}

static int ifd_get_dirty_bitmap(struct backend *be, const char *device,
				const struct backend_dirty *bm)
{
	struct ifd_backend *b = to_ifd(be);
	struct ifd_device *d = find_device(b, device);
	struct iommu_hwpt_get_dirty_bitmap cmd = {
	    .size = sizeof(cmd),
	    .flags = bm->flags,
	    .iova = bm->iova,
	    .length = bm->length,
	    .page_size = bm->page_size,
	    .data = (uintptr_t)bm->data,
	};

	if (!d)
		return -ENODEV;
	cmd.hwpt_id = d->parent_id;
	return ioctl_err(b->fd, IOMMU_HWPT_GET_DIRTY_BITMAP, &cmd);
}

/*
 * IOMMU_TEST_OP_DIRTY on a selftest device's nest parent. 6.12's mock
 * looks its IO pages up by iova / page_size while it stores them by
 * iova / MOCK_IO_PAGE_SIZE (PAGE_SIZE / 2), so only that page size marks
 * the right pages: the request's pages are spread to bits of that size
 * (7.x's mock marks the PTE at each bit's iova, right for any size).
 */
static int ifd_set_dirty(struct backend *be, const char *device, const struct backend_dirty *bm)
{
	struct ifd_backend *b = to_ifd(be);
	struct ifd_device *d = find_device(b, device);
	uint64_t unit = (uint64_t)sysconf(_SC_PAGESIZE) / 2;
	struct iommu_test_cmd cmd = {.size = sizeof(cmd), .op = IOMMU_TEST_OP_DIRTY};
	uint64_t per, n, *bits;
	int rc;

	if (!d)
		return -ENODEV;
	if (d->kind != DEVICE_KIND_SELFTEST)
		return -EOPNOTSUPP;
	/* The op's own first check, on the request's pages before the spreading. */
	if (!bm->page_size || !bm->length || bm->iova % bm->page_size ||
	    bm->length % bm->page_size || bm->page_size % unit)
		return -EINVAL;
	per = bm->page_size / unit;
	n = bm->length / unit;
	if (n > (uint64_t)16 * 1024 * 1024 * 8)
		return -EOVERFLOW; /* the op's limit (SZ_16M * BITS_PER_BYTE bits) */
	bits = calloc((n + 63) / 64, sizeof(*bits));
	if (!bits)
		return -ENOMEM;
	for (uint64_t i = 0; i < bm->length / bm->page_size; i++) {
		if (!(bm->data[i / 64] & (1ULL << (i % 64))))
			continue;
		for (uint64_t j = i * per; j < (i + 1) * per; j++)
			bits[j / 64] |= 1ULL << (j % 64);
	}
	cmd.id = d->parent_id;
	cmd.dirty.iova = bm->iova;
	cmd.dirty.length = bm->length;
	cmd.dirty.page_size = unit;
	cmd.dirty.uptr = (uintptr_t)bits;
	rc = ioctl_err(b->fd, IOMMU_TEST_CMD, &cmd);
	free(bits);
	return rc;
}

static int ifd_check_iotlb(struct backend *be, uint32_t hwpt_id, uint32_t iotlb_id,
			   uint32_t expected)
{
	struct ifd_backend *b = to_ifd(be);
	struct iommu_test_cmd cmd = {
	    .size = sizeof(cmd),
	    .op = IOMMU_TEST_OP_MD_CHECK_IOTLB,
	    .id = hwpt_id,
	    .check_iotlb = {.id = iotlb_id, .iotlb = expected},
	};

	if (!b->caps.check_iotlb)
		return -EOPNOTSUPP;
	return ioctl_err(b->fd, IOMMU_TEST_CMD, &cmd);
}

/* --- restart support --------------------------------------------------- */

static struct json_object *device_to_json(const struct ifd_device *d)
{
	struct json_object *o = json_object_new_object();

	if (o &&
	    (js_add_str(o, "name", d->name) || js_add_u64(o, "kind", d->kind) ||
	     js_add_u64(o, "dev_id", d->dev_id) || js_add_u64(o, "stdev_id", d->stdev_id) ||
	     js_add_u64(o, "ioas_id", d->ioas_id) || js_add_u64(o, "parent_id", d->parent_id) ||
	     js_add_u64(o, "attached_id", d->attached_id) ||
	     js_add_u64(o, "hw_info_type", d->hw_info_type) ||
	     js_add_u64(o, "nest_errno", (uint64_t)-d->nest_err) ||
	     js_add_u64(o, "handed", d->handed) || js_add_u64(o, "present", d->present) ||
	     js_add_u64(o, "borrowed", d->borrowed))) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static struct json_object *nested_to_json(const struct ifd_nested *n)
{
	struct json_object *o = json_object_new_object();

	if (o && (js_add_u64(o, "id", n->id) || js_add_u64(o, "dev", n->dev))) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

/*
 * The object ids are all a restarted daemon needs: the objects themselves
 * stay alive in the kernel as long as systemd's fd store holds the iommufd
 * (and, for VFIO devices, the device cdevs: closing one unbinds it).
 */
static int ifd_save(struct backend *be, struct json_object *o)
{
	struct ifd_backend *b = to_ifd(be);
	struct json_object *devs, *nested, *vobjs;

	devs = js_add_new(o, "devices", true);
	nested = js_add_new(o, "nested", true);
	if (!devs || !nested || (b->root && js_add_u64(o, "ctx_ioas", b->ctx_ioas)))
		return -ENOMEM;
	/* Files without vIOMMUs stay as earlier versions wrote them. */
	vobjs = b->n_vobjs ? js_add_new(o, "vobjs", true) : NULL;
	if (b->n_vobjs && !vobjs)
		return -ENOMEM;
	for (uint32_t i = 0; i < b->n_vobjs; i++) {
		struct json_object *v = json_object_new_object();

		if (!v || js_add_u64(v, "id", b->vobjs[i].id) ||
		    js_add_u64(v, "viommu", b->vobjs[i].viommu)) {
			json_object_put(v);
			return -ENOMEM;
		}
		if (js_push(vobjs, v))
			return -ENOMEM;
	}
	if (b->vdev_intent && js_add_u64(o, "vdevice_intent", b->vdev_intent))
		return -ENOMEM;
	b->vobjs_dirty = false;
	for (uint32_t i = 0; i < b->n_devs; i++)
		if (js_push(devs, device_to_json(&b->devs[i])))
			return -ENOMEM;
	for (uint32_t i = 0; i < b->n_nested; i++)
		if (js_push(nested, nested_to_json(&b->nested[i])))
			return -ENOMEM;
	dirty_ids_clear(&b->nested_dirty);
	for (uint32_t i = 0; i < b->n_devs; i++)
		b->devs[i].handed_saved = b->devs[i].handed;
	return 0;
}

/* [elem], or [] for NULL; NULL if out of memory (elem is taken over). */
static struct json_object *array_of(struct json_object *elem)
{
	struct json_object *a = json_object_new_array();

	if (!a) {
		json_object_put(elem);
		return NULL;
	}
	if (elem && js_push(a, elem)) {
		json_object_put(a);
		return NULL;
	}
	return a;
}

/*
 * Journal records: the nested HWPTs that came or went, and the devices
 * (a few, and attach/detach changes them).
 */
static int ifd_save_delta(struct backend *be, struct json_object *records)
{
	struct ifd_backend *b = to_ifd(be);
	struct dirty_ids *d = &b->nested_dirty;
	int rc = 0;

	if (d->lost)
		return -ENOMEM;
	if (b->vobjs_dirty)
		return -EAGAIN; /* no records for vIOMMUs/vDEVICEs: a snapshot */
	/* The journal has records for nested HWPTs only: a device change takes a snapshot. */
	for (uint32_t i = 0; i < b->n_devs; i++)
		if (b->devs[i].handed != b->devs[i].handed_saved)
			return -EAGAIN;
	dirty_ids_unique(d);
	for (uint32_t i = 0; !rc && i < d->n; i++) {
		struct ifd_nested *n = find_nested(b, d->id[i]);
		struct json_object *elem = n ? nested_to_json(n) : NULL;

		if (n && !elem)
			return -ENOMEM;
		rc = journal_rec_replace(records, "backend_state.nested", "id",
					 json_object_new_int64(d->id[i]), array_of(elem));
	}
	for (uint32_t i = 0; !rc && i < b->n_devs; i++) {
		struct json_object *elem = device_to_json(&b->devs[i]);

		if (!elem)
			return -ENOMEM;
		rc = journal_rec_replace(records, "backend_state.devices", "name",
					 json_object_new_string(b->devs[i].name), array_of(elem));
	}
	if (!rc)
		dirty_ids_clear(d);
	return rc;
}

static uint32_t ifd_stored_fds(struct backend *be, struct backend_fd *out, uint32_t max)
{
	struct ifd_backend *b = to_ifd(be);
	uint32_t n = 0;

	if (n < max) {
		snprintf(out[n].name, sizeof(out[n].name), "%s", IFD_FD_NAME);
		out[n].gen = 0;
		out[n++].fd = b->fd;
	}
	for (uint32_t i = 0; i < b->n_devs && n < max; i++) {
		if (b->devs[i].vfio_fd < 0 || b->fresh_vfio)
			continue;
		snprintf(out[n].name, sizeof(out[n].name), IFD_VFIO_FD_PREFIX "%s", b->devs[i].name);
		out[n].gen = b->devs[i].fd_gen;
		out[n++].fd = b->devs[i].vfio_fd;
	}
	return n;
}

static bool ifd_has_hwpt(struct backend *be, uint32_t hwpt_id)
{
	return find_nested(to_ifd(be), hwpt_id) != NULL;
}

/* Frees our copies only: the kernel objects live on in the fd store. */
static void ifd_abandon(struct backend *be)
{
	struct ifd_backend *b = to_ifd(be);

	if (!b)
		return;
	for (uint32_t i = 0; i < b->n_devs; i++)
		if (b->devs[i].vfio_fd >= 0)
			close(b->devs[i].vfio_fd);
	if (b->fd >= 0)
		close(b->fd);
	free(b->nested);
	free(b->vobjs);
	dirty_ids_free(&b->nested_dirty);
	free(b->devs);
	free(b);
}

/* IOMMU_GET_HW_INFO answers for a live device object only. */
static int ifd_dev_alive(int fd, uint32_t dev_id)
{
	uint64_t data[16];
	struct iommu_hw_info cmd = {
	    .size = sizeof(cmd),
	    .dev_id = dev_id,
	    .data_len = sizeof(data),
	    .data_uptr = (uintptr_t)data,
	};

	return ioctl_err(fd, IOMMU_GET_HW_INFO, &cmd);
}

/* The kernel's empty-array probe: 0 iff id is a nested HWPT taking type. */
static int ifd_nested_alive(int fd, uint32_t id, enum device_kind kind)
{
	struct iommu_hwpt_invalidate cmd = {
	    .size = sizeof(cmd),
	    .hwpt_id = id,
	    .data_type = kind == DEVICE_KIND_SELFTEST ? IOMMU_HWPT_INVALIDATE_DATA_SELFTEST
						      : IOMMU_HWPT_INVALIDATE_DATA_VTD_S1,
	};

	return ioctl_err(fd, IOMMU_HWPT_INVALIDATE, &cmd);
}

/*
 * Each device's own IOAS; a file of a daemon that predates that has one
 * shared "ioas_id" at the top (shared_ioas, 0 if none).
 */
static int restore_ioas(struct json_object *j, uint32_t shared_ioas, struct ifd_device *d)
{
	struct json_object *v;

	if (!json_object_object_get_ex(j, "ioas_id", &v)) {
		d->ioas_id = shared_ioas;
		return shared_ioas ? 0 : -EINVAL;
	}
	return js_u32(j, "ioas_id", &d->ioas_id);
}

static int restore_device(struct ifd_backend *b, const struct config_device *cd,
			  struct json_object *j, uint32_t shared_ioas, struct ifd_device *d,
			  backend_take_fd_fn take_fd, void *ctx, const char **errmsg)
{
	char fdname[BACKEND_FD_NAME_MAX];
	uint32_t kind, present = 1, borrowed = 0;
	int rc;

	d->vfio_fd = -1;
	d->present = true;
	if (js_str(j, "name", d->name, sizeof(d->name)) || js_u32(j, "kind", &kind) ||
	    js_u32(j, "dev_id", &d->dev_id) || js_u32(j, "stdev_id", &d->stdev_id) ||
	    js_u32(j, "parent_id", &d->parent_id) || js_u32(j, "attached_id", &d->attached_id) ||
	    js_u32(j, "hw_info_type", &d->hw_info_type) || restore_ioas(j, shared_ioas, d)) {
		*errmsg = "iommufd: malformed saved device";
		return -EINVAL;
	}
	if (strcmp(d->name, cd->name) || kind != cd->kind) {
		*errmsg =
		    seterr("iommufd: saved device %s is not the configured %s", d->name, cd->name);
		return -EINVAL;
	}
	d->kind = cd->kind;
	/* Configuration, not state: a VM context opened after the restart makes its mock so. */
	d->pasid = cd->pasid;
	if (json_object_object_get_ex(j, "nest_errno", NULL) && js_u32(j, "nest_errno", &kind) == 0)
		d->nest_err = -(int)kind;
	if (json_object_object_get_ex(j, "handed", NULL) && js_u32(j, "handed", &kind) == 0)
		d->handed = d->handed_saved = kind != 0;
	snprintf(d->path, sizeof(d->path), "%s", cd->path);
	/*
	 * Files from before VM contexts lack both: every device was bound.
	 * An absent one is a context's device not added, or a root's VFIO
	 * device lent to a context: no fd, no object to check.
	 */
	if ((json_object_object_get_ex(j, "present", NULL) && js_u32(j, "present", &present)) ||
	    (json_object_object_get_ex(j, "borrowed", NULL) && js_u32(j, "borrowed", &borrowed))) {
		*errmsg = "iommufd: malformed saved device";
		return -EINVAL;
	}
	d->present = present;
	d->borrowed = borrowed;
	if (!d->present)
		return 0;
	if (d->kind == DEVICE_KIND_VTD) {
		snprintf(fdname, sizeof(fdname), IFD_VFIO_FD_PREFIX "%s", d->name);
		d->vfio_fd = take_fd ? take_fd(ctx, fdname) : -1;
		/* The old binding went with the crashed process: bound afresh. */
		if (d->vfio_fd < 0 && b->fresh_vfio) {
			rc = setup_vfio(b, d, errmsg);
			return rc ? rc : dev_attach(b, d, d->parent_id);
		}
		if (d->vfio_fd < 0) {
			*errmsg =
			    seterr("device %s: its VFIO cdev fd is not in the fd store", d->name);
			return -ESTALE;
		}
	}
	rc = ifd_dev_alive(b->fd, d->dev_id);
	if (rc)
		*errmsg = seterr("device %s: device object %u is gone: %s", d->name, d->dev_id,
				 strerror(-rc));
	return rc;
}

static int restore_nested(struct ifd_backend *b, struct json_object *arr, const char **errmsg)
{
	size_t n = arr ? json_object_array_length(arr) : 0;

	if (!arr) {
		*errmsg = "iommufd: malformed nested list";
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		struct json_object *j = json_object_array_get_idx(arr, i);
		uint32_t id, dev;

		if (js_u32(j, "id", &id) || js_u32(j, "dev", &dev) || dev >= b->n_devs) {
			*errmsg = "iommufd: malformed nested HWPT";
			return -EINVAL;
		}
		/*
		 * One that does not answer the probe is not ours any more;
		 * leaving it out makes the registry drop it too.
		 */
		if (ifd_nested_alive(b->fd, id, b->devs[dev].kind))
			continue;
		if (add_nested(b, id, dev)) {
			*errmsg = "out of memory";
			return -ENOMEM;
		}
	}
	return 0;
}

/*
 * The vIOMMUs and vDEVICEs the file names ("vobjs", absent from files of
 * daemons before them), oldest first. A vIOMMU the kind probe says is no
 * vIOMMU any more is left out (the registry drops it too, as has_vobj
 * says); a vDEVICE has no probe that looks its id up, and lives as long
 * as its vIOMMU and device, which are checked.
 */
static int restore_vobjs(struct ifd_backend *b, struct json_object *o, const char **errmsg)
{
	struct json_object *arr = js_get(o, "vobjs", json_type_array);
	size_t n = arr ? json_object_array_length(arr) : 0;

	if (!arr && json_object_object_get_ex(o, "vobjs", NULL)) {
		*errmsg = "iommufd: malformed vIOMMU list";
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		struct json_object *j = json_object_array_get_idx(arr, i);
		uint32_t id, viommu;

		if (js_u32(j, "id", &id) || !id || js_u32(j, "viommu", &viommu) ||
		    find_vobj(b, id)) {
			*errmsg = "iommufd: malformed vIOMMU entry";
			return -EINVAL;
		}
		if (viommu && ifd_viommu_probe(b->fd, id) == -ENOENT)
			continue;
		if (add_vobj(b, id, viommu != 0)) {
			*errmsg = "out of memory";
			return -ENOMEM;
		}
	}
	return 0;
}

/*
 * The state file records a change after the ioctl that made it (the reply
 * waits for both), so a daemon that died in between left the kernel one
 * step ahead of the file; requests run one at a time, so it is one step at
 * most. The registry is restored from the file, so the kernel is brought
 * back to the file: a device goes where the file says it is attached (its
 * parent if that HWPT is gone), and a nested HWPT the file does not name
 * is destroyed. Left alone, a device could stay attached to a HWPT the
 * file does not record as its attachment: destroying that HWPT, an orphan
 * nobody reclaims, would be EBUSY, and until the device's next attach it
 * would keep translating through the previous owner's stage 1.
 */
static bool attach_target_ok(const struct ifd_backend *b, const struct ifd_device *d)
{
	const struct ifd_nested *n;

	if (d->attached_id == d->parent_id)
		return true;
	if (!d->attached_id)
		return d->kind == DEVICE_KIND_VTD; /* a detached VFIO device */
	n = find_nested((struct ifd_backend *)b, d->attached_id);
	return n && &b->devs[n->dev] == d;
}

static int reconcile_attachment(struct ifd_backend *b, struct ifd_device *d, const char **errmsg)
{
	uint32_t want;
	int rc;

	if (!attach_target_ok(b, d)) {
		d->attached_id = d->parent_id;
		b->restore_moved++;
	}
	want = d->attached_id;
	/* Both ways replace whatever the kernel has now; the same is a no-op. */
	if (want)
		rc = dev_attach(b, d, want);
	else
		rc = vfio_detach(d->vfio_fd);
	if (rc && want != d->parent_id) {
		b->restore_moved++;
		want = d->parent_id;
		rc = dev_attach(b, d, want);
	}
	if (rc)
		*errmsg = seterr("device %s: cannot put it back on hwpt %u: %s", d->name, want,
				 strerror(-rc));
	return rc;
}

/* Beyond the highest id the file names, where an unrecorded object can be. */
#define SWEEP_SLACK 64

static uint32_t max_u32(uint32_t a, uint32_t b)
{
	return a > b ? a : b;
}

/*
 * A vDEVICE the previous instance was making when it died (the file says
 * "vdevice_intent": the id it would get, ifd_vdevice_intent()) and never
 * recorded: nothing but the vDEVICE can hold that id (the iommufd is
 * ours, one request at a time), so an id the file does not name is it,
 * or free. Left, it would keep its device's one vDEVICE slot (-EEXIST for
 * the owner's next AllocVdevice) and its vIOMMU busy for ever.
 */
static bool known_id(struct ifd_backend *b, uint32_t id);

static void sweep_vdevice_intent(struct ifd_backend *b, struct json_object *o)
{
	uint32_t id;

	if (!json_object_object_get_ex(o, "vdevice_intent", NULL) ||
	    js_u32(o, "vdevice_intent", &id) || !id || known_id(b, id))
		return;
	if (!ifd_destroy_id(b->fd, id))
		b->restore_swept++;
}

/* Whether id is one the file names: a device's objects, a nested HWPT, a vIOMMU or vDEVICE. */
static bool known_id(struct ifd_backend *b, uint32_t id)
{
	return find_nested(b, id) || is_parent(b, id) || find_vobj(b, id);
}

/*
 * iommufd gives an object the lowest free id, which is at most one more
 * than the number of live objects: those the file names (ids up to the
 * highest it names), the few it does not (an auto domain per device at
 * most) and the lost one itself. So the lost object lies within a few ids
 * above the highest the file names; SWEEP_SLACK is generous. The kind is
 * asked first: a vIOMMU answers the empty invalidation as a nested HWPT
 * does (the selftest types share 0xdeadbeef), so what the vIOMMU probe
 * claims is never taken for a HWPT. Then only a nested HWPT answers the
 * empty invalidation, and this iommufd is the daemon's alone, so what
 * answers and is not in the file is ours and lost. Lost vIOMMUs go after
 * the lost HWPTs (the kernel's order: a HWPT on a vIOMMU holds it). Runs
 * after the devices are back on recorded HWPTs: none is attached to it.
 */
static void sweep_lost_viommus(struct ifd_backend *b, uint32_t top)
{
	for (uint32_t id = 1; id <= top + SWEEP_SLACK; id++)
		if (!known_id(b, id) && !ifd_viommu_probe(b->fd, id) && !ifd_destroy_id(b->fd, id))
			b->restore_swept++;
}

static void sweep_unknown_nested(struct ifd_backend *b)
{
	bool kinds[2] = {false, false}; /* selftest, vtd */
	uint32_t top = 0;

	for (uint32_t i = 0; i < b->n_devs; i++) {
		const struct ifd_device *d = &b->devs[i];

		top = max_u32(top, max_u32(max_u32(d->dev_id, d->stdev_id),
					   max_u32(d->ioas_id, d->parent_id)));
		kinds[d->kind == DEVICE_KIND_SELFTEST ? 0 : 1] = true;
	}
	for (uint32_t i = 0; i < b->n_nested; i++)
		top = max_u32(top, b->nested[i].id);
	for (uint32_t i = 0; i < b->n_vobjs; i++)
		top = max_u32(top, b->vobjs[i].id);
	for (uint32_t id = 1; id <= top + SWEEP_SLACK; id++) {
		if (known_id(b, id) || !ifd_viommu_probe(b->fd, id))
			continue;
		for (int k = 0; k < 2; k++) {
			if (!kinds[k] ||
			    ifd_nested_alive(b->fd, id, k ? DEVICE_KIND_VTD : DEVICE_KIND_SELFTEST))
				continue;
			if (!ifd_destroy_id(b->fd, id))
				b->restore_swept++;
			break;
		}
	}
	sweep_lost_viommus(b, top);
}

int backend_iommufd_restore(int fd, const struct config *cfg, struct json_object *o,
			    backend_take_fd_fn take_fd, void *ctx, struct backend **out,
			    const char **errmsg)
{
	struct json_object *devs = js_get(o, "devices", json_type_array);
	struct ifd_backend *b = calloc(1, sizeof(*b));
	uint32_t shared_ioas = 0;
	int rc = -EINVAL;

	if (!b || (cfg->n_devices && !(b->devs = calloc(cfg->n_devices, sizeof(*b->devs))))) {
		free(b);
		close(fd);
		*errmsg = "out of memory";
		return -ENOMEM;
	}
	b->base.ops = &backend_iommufd_ops;
	b->fd = fd;
	b->fresh_vfio = cfg->vm_contexts;
	snprintf(b->path, sizeof(b->path), "%s",
		 cfg->iommufd_path[0] ? cfg->iommufd_path : DEFAULT_IOMMUFD_PATH);
	/* The top "ioas_id" is absent from files written since each device has its own. */
	if ((json_object_object_get_ex(o, "ioas_id", NULL) && js_u32(o, "ioas_id", &shared_ioas)) ||
	    !devs || json_object_array_length(devs) != cfg->n_devices) {
		*errmsg = "iommufd: the saved devices are not the configured ones";
		goto fail;
	}
	for (uint32_t i = 0; i < cfg->n_devices; i++) {
		b->n_devs = i + 1;
		rc = restore_device(b, &cfg->devices[i], json_object_array_get_idx(devs, i),
				    shared_ioas, &b->devs[i], take_fd, ctx, errmsg);
		if (rc)
			goto fail;
	}
	/* A VM context's one IOAS (its caller links it to its root). */
	if (json_object_object_get_ex(o, "ctx_ioas", NULL) && js_u32(o, "ctx_ioas", &b->ctx_ioas)) {
		*errmsg = "iommufd: malformed context IOAS";
		rc = -EINVAL;
		goto fail;
	}
	rc = restore_nested(b, js_get(o, "nested", json_type_array), errmsg);
	if (!rc)
		rc = restore_vobjs(b, o, errmsg);
	if (rc)
		goto fail;
	for (uint32_t i = 0; i < b->n_devs; i++) {
		if (!b->devs[i].present)
			continue;
		rc = reconcile_attachment(b, &b->devs[i], errmsg);
		if (rc)
			goto fail;
	}
	sweep_vdevice_intent(b, o);
	sweep_unknown_nested(b);
	compute_caps(b);
	*out = &b->base;
	return 0;
fail:
	/*
	 * Closing our copies destroys nothing while systemd still holds the
	 * fds; the caller drops them from the store and starts afresh.
	 */
	ifd_abandon(&b->base);
	return rc;
}

/*
 * The objects live as long as the iommufd in the fd store: without it
 * they are gone, and without a saved state nobody can name them (closing
 * the fd frees them).
 */
static int ifd_reopen(const struct config *cfg, struct json_object *saved,
		      backend_take_fd_fn take_fd, void *ctx, struct backend **out,
		      const char **errmsg)
{
	int fd = take_fd(ctx, "iommufd");
	uint32_t moved, swept;
	int rc;

	if (fd < 0) {
		*errmsg = "the iommufd is not in the fd store (objects are gone)";
		return -ENOENT;
	}
	if (!saved) {
		log_warn("an iommufd from the fd store but no usable state file: dropping it");
		close(fd);
		*errmsg = NULL;
		return -ENOENT;
	}
	*errmsg = ""; /* what the caller logs if restoring fails without a reason */
	rc = backend_iommufd_restore(fd, cfg, saved, take_fd, ctx, out, errmsg);
	if (rc)
		return rc;
	backend_iommufd_restore_report(*out, &moved, &swept);
	/* Every device was put back where the file says, regardless. */
	if (moved || swept)
		log_warn(
		    "the kernel was ahead of the state file (a crash mid-request): %u "
		    "devices moved to their nest parent, %u unrecorded nested HWPTs, vIOMMUs or "
		    "vDEVICEs destroyed",
		    moved, swept);
	return 0;
}

/* --- device hand-off (the VFIO work is device_fd.c's) ------------------ */

static int dev_slots(struct backend *be, const char *device, struct ifd_device_slots *out)
{
	struct ifd_device *d = find_device(to_ifd(be), device);

	if (!d)
		return -ENOENT;
	*out = (struct ifd_device_slots){.iommufd = to_ifd(be)->fd,
					 .vfio_fd = &d->vfio_fd,
					 .dev_id = &d->dev_id,
					 .parent_id = &d->parent_id,
					 .ioas_id = &d->ioas_id,
					 .attached_id = &d->attached_id,
					 .nest_err = d->nest_err,
					 .handed = &d->handed,
					 .fd_gen = &d->fd_gen,
					 .kind = d->kind,
					 .name = d->name,
					 .path = d->path,
					 /*
					  * A VM context's iommufd holds one client's
					  * devices only: whatever its fd reaches is
					  * that VM's own, so it counts as alone.
					  */
					 .n_devices = to_ifd(be)->root ? 1 : to_ifd(be)->n_devs};
	return 0;
}

static int ifd_device_get(struct backend *be, const char *device, struct backend_device *out,
			  const char **why)
{
	struct ifd_device_slots sl;
	int rc = dev_slots(be, device, &sl);

	*why = "no such device";
	return rc ? rc : vfio_dev_get(&sl, out, why);
}

static int ifd_device_adopt(struct backend *be, const char *device, int fd, const char **why)
{
	struct ifd_device_slots sl;
	int rc = dev_slots(be, device, &sl);

	*why = "no such device";
	return rc ? rc : vfio_dev_adopt(&sl, fd, why);
}

static int ifd_device_reclaim(struct backend *be, const char *device)
{
	struct ifd_device_slots sl;
	int rc = dev_slots(be, device, &sl);

	return rc ? rc : vfio_dev_reclaim(&sl);
}

static int ifd_device_reset(struct backend *be, const char *device)
{
	struct ifd_device_slots sl;
	int rc = dev_slots(be, device, &sl);

	return rc ? rc : vfio_dev_reset(&sl);
}

static int root_rebind(struct ifd_backend *b, struct ifd_device *rd);

static int ifd_device_release(struct backend *be, const char *device)
{
	struct ifd_device_slots sl;
	int rc;

	for (uint32_t i = 0; device && i < to_ifd(be)->n_devs; i++)
		if (to_ifd(be)->devs[i].unbound && !strcmp(to_ifd(be)->devs[i].name, device))
			return root_rebind(to_ifd(be), &to_ifd(be)->devs[i]);
	rc = dev_slots(be, device, &sl);

	return rc ? rc : vfio_dev_release(&sl);
}

static int ifd_device_holds_fd(struct backend *be, const char *device, int fd)
{
	struct ifd_device_slots sl;
	int rc = dev_slots(be, device, &sl);

	return rc ? rc : vfio_dev_holds_fd(&sl, fd);
}

static int ifd_nest_err(struct backend *be, const char *device)
{
	struct ifd_device *d = find_device(to_ifd(be), device);

	return d ? d->nest_err : 0;
}

/* --- fault delivery (backend/iommufd/fault.c) ----------------------------- */

static int ifd_op_fault_alloc(struct backend *be, struct backend_fault_queue *out)
{
	return ifd_fault_alloc(to_ifd(be)->fd, out);
}

static int ifd_op_fault_read(struct backend *be, const struct backend_fault_queue *q,
			     struct iommu_hwpt_pgfault *recs, uint32_t max)
{
	(void)be;
	return ifd_fault_read(q, recs, max);
}

static int ifd_op_fault_respond(struct backend *be, const struct backend_fault_queue *q,
				const struct iommu_hwpt_page_response *resp)
{
	(void)be;
	return ifd_fault_respond(q, resp);
}

/*
 * The kept fd is the object's only handle (the kernel hands out no second
 * one): without it the queue cannot be read or answered. The file keeps
 * the O_NONBLOCK that ifd_fault_alloc set.
 */
static int ifd_op_fault_reopen(struct backend *be, uint32_t id, int fd,
			       struct backend_fault_queue *out)
{
	(void)be;
	if (fd < 0)
		return -ESTALE;
	out->id = id;
	out->fd = fd;
	return 0;
}

static int ifd_op_fault_free(struct backend *be, const struct backend_fault_queue *q)
{
	return ifd_fault_free(to_ifd(be)->fd, q);
}

static const char *ifd_dev_id_name(struct backend *be, uint32_t dev_id)
{
	struct ifd_backend *b = to_ifd(be);

	for (uint32_t i = 0; i < b->n_devs; i++)
		if (b->devs[i].dev_id == dev_id)
			return b->devs[i].name;
	return NULL;
}

/* Only the selftest's mock devices take it (selftest.c: -EINVAL for others). */
static int ifd_trigger(struct backend *be, const char *device, const struct backend_iopf *t)
{
	struct ifd_backend *b = to_ifd(be);
	struct ifd_device *d = find_device(b, device);

	if (!d)
		return -ENOENT;
	return ifd_trigger_iopf(b->fd, d->dev_id, t);
}

/* --- VM contexts -------------------------------------------------------- */

/*
 * A VFIO cdev can be bound to one iommufd at a time (vfio_df_open refuses
 * a second bind), so the root, which binds every device at open for
 * hw_info and the unclaimed pool, closes its cdev (which unbinds it and
 * drops its attachment) before a context binds the device, and binds it
 * again, on its own nest parent, when the context lets it go. Mock
 * devices are objects of one iommufd: every context makes its own.
 */
static void root_lend(struct ifd_backend *root, uint32_t i, struct ifd_device *d)
{
	struct ifd_device *rd = &root->devs[i];

	if (d->kind != DEVICE_KIND_VTD || !rd->present || rd->vfio_fd < 0)
		return;
	close(rd->vfio_fd);
	rd->vfio_fd = -1;
	rd->dev_id = 0;
	rd->attached_id = 0;
	rd->present = false;
	d->borrowed = true;
}

static void ctx_give_back(struct ifd_backend *b, struct ifd_device *d)
{
	struct ifd_device *rd = &b->root->devs[d - b->devs];
	const char *msg = NULL;
	int rc;

	if (!d->borrowed)
		return;
	d->borrowed = false;
	rc = setup_vfio(b->root, rd, &msg);
	if (rc == 0)
		rc = dev_attach(b->root, rd, rd->parent_id);
	if (rc) {
		log_warn("device %s: the daemon's own iommufd cannot bind it again: %s", rd->name,
			 msg ? msg : strerror(-rc));
		if (rd->vfio_fd >= 0)
			close(rd->vfio_fd);
		rd->vfio_fd = -1;
		rd->unbound = true;
		return;
	}
	rd->present = true;
}

/* The retry of a give-back that failed: 0, or -EBUSY while the old fd still binds it. */
static int root_rebind(struct ifd_backend *b, struct ifd_device *rd)
{
	const char *msg = NULL;
	int rc = setup_vfio(b, rd, &msg);

	if (rc == 0)
		rc = dev_attach(b, rd, rd->parent_id);
	if (rc) {
		if (rd->vfio_fd >= 0)
			close(rd->vfio_fd);
		rd->vfio_fd = -1;
		return rc == -EINVAL ? -EBUSY : rc;
	}
	rd->unbound = false;
	rd->present = true;
	return 0;
}

static int ifd_take_back_device(struct backend *be, const char *device)
{
	struct ifd_backend *b = to_ifd(be);
	struct ifd_device *rd = NULL;
	int rc;

	if (b->root)
		return -EINVAL; /* a context lends nothing */
	/* find_device() sees present devices only; a lent one is not. */
	for (uint32_t i = 0; device && i < b->n_devs; i++)
		if (!strcmp(b->devs[i].name, device))
			rd = &b->devs[i];
	if (!rd)
		return -ENODEV;
	if (rd->present || rd->kind != DEVICE_KIND_VTD)
		return 0;
	rc = root_rebind(b, rd);
	/* Not yet: the next request naming it retries (the failed give-back's path). */
	if (rc)
		rd->unbound = true;
	return rc;
}

/* Undoes what add_device built for d, in the kernel's dependency order. */
static void ctx_release(struct ifd_backend *b, struct ifd_device *d)
{
	if (d->vfio_fd >= 0) {
		close(d->vfio_fd); /* unbinds: the device leaves its page table */
		d->vfio_fd = -1;
	} else if (d->stdev_id) {
		ifd_destroy_id(b->fd, d->stdev_id);
	}
	if (d->parent_id)
		ifd_destroy_id(b->fd, d->parent_id);
	d->stdev_id = d->dev_id = d->parent_id = d->attached_id = d->ioas_id = 0;
	d->present = false;
	ctx_give_back(b, d);
}

static int ifd_open_context(struct backend *be, struct backend **out)
{
	struct ifd_backend *root = to_ifd(be), *b;
	int fd, rc;

	if (root->root)
		return -EINVAL; /* contexts do not nest */
	fd = open(root->path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	b = calloc(1, sizeof(*b));
	if (!b) {
		close(fd);
		return -ENOMEM;
	}
	b->base.ops = &backend_iommufd_ops;
	b->fd = fd;
	b->root = root;
	b->caps = root->caps;
	snprintf(b->path, sizeof(b->path), "%s", root->path);
	if (root->n_devs && !(b->devs = calloc(root->n_devs, sizeof(*b->devs)))) {
		teardown(b);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < root->n_devs; i++) {
		struct ifd_device *d = &b->devs[i];

		memcpy(d->name, root->devs[i].name, sizeof(d->name));
		memcpy(d->path, root->devs[i].path, sizeof(d->path));
		d->kind = root->devs[i].kind;
		d->pasid = root->devs[i].pasid;
		d->hw_info_type = root->devs[i].hw_info_type;
		d->vfio_fd = -1;
	}
	b->n_devs = root->n_devs;
	rc = ifd_ioas_alloc(fd, &b->ctx_ioas);
	if (rc) {
		teardown(b);
		return rc;
	}
	*out = &b->base;
	return 0;
}

static int ifd_add_device(struct backend *be, const char *device)
{
	struct ifd_backend *b = to_ifd(be);
	const char *msg = NULL;
	struct ifd_device *d = NULL;
	int rc;

	if (!b->root)
		return -EINVAL; /* the root holds every device from its open */
	for (uint32_t i = 0; device && i < b->n_devs; i++)
		if (strcmp(b->devs[i].name, device) == 0)
			d = &b->devs[i];
	if (!d)
		return -ENODEV;
	if (d->present)
		return -EEXIST;
	root_lend(b->root, (uint32_t)(d - b->devs), d);
	d->ioas_id = b->ctx_ioas;
	rc = setup_on_ioas(b, d, &msg);
	if (rc) {
		log_warn("VM context: device %s: %s", d->name, msg ? msg : strerror(-rc));
		ctx_release(b, d);
		return rc;
	}
	d->present = true;
	return 0;
}

static int ifd_remove_device(struct backend *be, const char *device)
{
	struct ifd_backend *b = to_ifd(be);
	struct ifd_device *d = find_device(b, device);

	if (!b->root)
		return -EINVAL;
	if (!d)
		return -ENOENT;
	/* Its nest parent cannot go while nested HWPTs sit on it (the kernel's EBUSY). */
	for (uint32_t i = 0; i < b->n_nested; i++)
		if (b->nested[i].dev == (uint32_t)(d - b->devs))
			return -EBUSY;
	ctx_release(b, d);
	return 0;
}

/*
 * A VM context back after a restart: its iommufd and its devices' cdevs
 * from the fd store (take_fd's names are the context's own, as
 * stored_fds gave them), its objects from saved (what save() wrote for
 * it), linked to root again, which lent it its VFIO devices.
 */
static int ifd_reopen_context(struct backend *be, struct json_object *saved,
			      backend_take_fd_fn take_fd, void *ctx, struct backend **out,
			      const char **errmsg)
{
	struct ifd_backend *root = to_ifd(be);
	struct config *cfg;
	int fd, rc;

	*errmsg = "";
	if (root->root || !saved || !json_object_object_get_ex(saved, "ctx_ioas", NULL)) {
		*errmsg = "iommufd: not a saved VM context";
		return -EINVAL;
	}
	fd = take_fd(ctx, IFD_FD_NAME);
	if (fd < 0) {
		*errmsg = "the context's iommufd is not in the fd store (objects are gone)";
		return -ENOENT;
	}
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg) {
		close(fd);
		*errmsg = "out of memory";
		return -ENOMEM;
	}
	snprintf(cfg->iommufd_path, sizeof(cfg->iommufd_path), "%s", root->path);
	for (uint32_t i = 0; i < root->n_devs; i++) {
		memcpy(cfg->devices[i].name, root->devs[i].name, sizeof(cfg->devices[i].name));
		memcpy(cfg->devices[i].path, root->devs[i].path, sizeof(cfg->devices[i].path));
		cfg->devices[i].kind = root->devs[i].kind;
		cfg->devices[i].pasid = root->devs[i].pasid;
	}
	cfg->n_devices = root->n_devs;
	rc = backend_iommufd_restore(fd, cfg, saved, take_fd, ctx, out, errmsg);
	free(cfg);
	if (rc)
		return rc;
	to_ifd(*out)->root = root;
	to_ifd(*out)->caps = root->caps;
	return 0;
}

/* --- vIOMMU objects (backend/iommufd/viommu.c has the ioctls) ------------- */

static int ifd_op_viommu_alloc(struct backend *be, const char *device, uint32_t type,
			       uint32_t flags, uint32_t *out_id, uint32_t *out_parent)
{
	struct ifd_backend *b = to_ifd(be);
	struct ifd_device *d = find_device(b, device);

	int rc;

	if (!d)
		return -ENOENT;
	rc = ifd_viommu_alloc(b->fd, d->dev_id, d->parent_id, type, flags, out_id, out_parent);
	if (!rc && add_vobj(b, *out_id, true)) {
		ifd_destroy_id(b->fd, *out_id);
		return -ENOMEM;
	}
	return rc;
}

static int ifd_op_vdevice_alloc(struct backend *be, uint32_t viommu_id, const char *device,
				uint64_t virt_id, uint32_t *out_id)
{
	struct ifd_backend *b = to_ifd(be);
	struct ifd_device *d = find_device(b, device);

	int rc;

	if (!d)
		return -ENOENT;
	rc = ifd_vdevice_alloc(b->fd, viommu_id, d->dev_id, virt_id, out_id);
	if (b->vdev_intent && !rc && *out_id != b->vdev_intent)
		log_warn("vDEVICE %u: the kernel gave another id than the %u foreseen", *out_id,
			 b->vdev_intent);
	b->vdev_intent = 0;
	b->vobjs_dirty = true;
	if (!rc && add_vobj(b, *out_id, false)) {
		ifd_destroy_id(b->fd, *out_id);
		return -ENOMEM;
	}
	return rc;
}

static int ifd_op_attach_pasid(struct backend *be, const char *device, uint32_t pasid,
			       uint32_t hwpt_id)
{
	struct ifd_backend *b = to_ifd(be);
	struct ifd_device *d = find_device(b, device);
	struct ifd_pasid_dev pd;

	if (!d)
		return -ENOENT;
	/* As ifd_attach(): a nested HWPT of ours, or the device's own nest parent. */
	if (!find_nested(b, hwpt_id) && hwpt_id != d->parent_id)
		return -ENOENT;
	pd = (struct ifd_pasid_dev){
	    .index = (uint32_t)(d - b->devs), .stdev_id = d->stdev_id, .vfio_fd = d->vfio_fd};
	return ifd_pasid_attach(b->fd, &b->pasids, &pd, pasid, hwpt_id);
}

static int ifd_op_detach_pasid(struct backend *be, const char *device, uint32_t pasid)
{
	struct ifd_backend *b = to_ifd(be);
	struct ifd_device *d = find_device(b, device);
	struct ifd_pasid_dev pd;

	if (!d)
		return -ENOENT;
	pd = (struct ifd_pasid_dev){
	    .index = (uint32_t)(d - b->devs), .stdev_id = d->stdev_id, .vfio_fd = d->vfio_fd};
	return ifd_pasid_detach(b->fd, &b->pasids, &pd, pasid);
}

static int ifd_op_pasid_restore(struct backend *be, const char *device, uint32_t pasid,
				uint32_t hwpt_id)
{
	struct ifd_backend *b = to_ifd(be);
	struct ifd_device *d = find_device(b, device);
	struct ifd_pasid_dev pd;

	if (!d)
		return -ENOENT;
	pd = (struct ifd_pasid_dev){
	    .index = (uint32_t)(d - b->devs), .stdev_id = d->stdev_id, .vfio_fd = d->vfio_fd};
	return ifd_pasid_restore(b->fd, &b->pasids, &pd, pasid, hwpt_id);
}

static int ifd_op_destroy_object(struct backend *be, uint32_t id)
{
	struct ifd_backend *b = to_ifd(be);
	struct ifd_vobj *v = find_vobj(b, id);
	int rc = ifd_destroy_id(b->fd, id);

	if (v && (!rc || rc == -ENOENT))
		drop_vobj(b, v);
	return rc;
}

/*
 * iommufd gives an object the lowest free id (xa_alloc), and this iommufd
 * is the daemon's alone, one request at a time: an IOAS made and destroyed
 * at once shows the id the next object, the vDEVICE, gets.
 */
static int ifd_vdevice_intent(struct backend *be)
{
	struct ifd_backend *b = to_ifd(be);
	uint32_t id;
	int rc = ifd_ioas_alloc(b->fd, &id);

	if (rc)
		return rc;
	rc = ifd_destroy_id(b->fd, id);
	if (!rc) {
		b->vdev_intent = id;
		b->vobjs_dirty = true;
	}
	return rc;
}

static bool ifd_has_vobj(struct backend *be, uint32_t id, bool viommu)
{
	const struct ifd_vobj *v = find_vobj(to_ifd(be), id);

	return v && v->viommu == viommu;
}

/* --- vEVENTQs (backend/iommufd/veventq.c) --------------------------------- */

static int ifd_op_veventq_alloc(struct backend *be, uint32_t viommu_id, uint32_t type,
				uint32_t depth, struct backend_veventq *out)
{
	return ifd_veventq_alloc(to_ifd(be)->fd, viommu_id, type, depth, out);
}

/*
 * As a fault fd: the kept fd is the vEVENTQ's only handle (the kernel
 * hands out no second one), and keeps the O_NONBLOCK ifd_veventq_alloc set.
 */
static int ifd_op_veventq_reopen(struct backend *be, uint32_t id, int fd,
				 struct backend_veventq *out)
{
	(void)be;
	if (fd < 0)
		return -ESTALE;
	out->id = id;
	out->fd = fd;
	return 0;
}

static int ifd_op_veventq_read(struct backend *be, const struct backend_veventq *q, void *buf,
			       uint32_t len)
{
	(void)be;
	return ifd_veventq_read(q, buf, len);
}

static int ifd_op_veventq_free(struct backend *be, const struct backend_veventq *q)
{
	return ifd_veventq_free(to_ifd(be)->fd, q);
}

static int ifd_op_trigger_vevent(struct backend *be, const char *device)
{
	struct ifd_backend *b = to_ifd(be);
	struct ifd_device *d = find_device(b, device);

	if (!d)
		return -ENOENT;
	return ifd_trigger_vevent(b->fd, d->dev_id);
}

const struct backend_ops backend_iommufd_ops = {
    .name = "iommufd",
    .close = ifd_close,
    .get_caps = ifd_get_caps,
    .n_devices = ifd_n_devices,
    .device_name = ifd_device_name,
    .alloc_nested = ifd_alloc_nested,
    .destroy = ifd_destroy,
    .attach = ifd_attach,
    .detach = ifd_detach,
    .invalidate = ifd_invalidate,
    .map_memory = ifd_map_memory,
    .unmap_memory = ifd_unmap_memory,
    .hw_info = ifd_hw_info,
    .set_dirty_tracking = ifd_set_dirty_tracking,
    .get_dirty_bitmap = ifd_get_dirty_bitmap,
    .set_dirty = ifd_set_dirty,
    .check_iotlb = ifd_check_iotlb,
    .device_get = ifd_device_get,
    .device_adopt = ifd_device_adopt,
    .device_reclaim = ifd_device_reclaim,
    .device_reset = ifd_device_reset,
    .device_release = ifd_device_release,
    .device_holds_fd = ifd_device_holds_fd,
    .nest_err = ifd_nest_err,
    .fault_alloc = ifd_op_fault_alloc,
    .fault_read = ifd_op_fault_read,
    .fault_respond = ifd_op_fault_respond,
    .fault_free = ifd_op_fault_free,
    .fault_reopen = ifd_op_fault_reopen,
    .dev_id_name = ifd_dev_id_name,
    .trigger_iopf = ifd_trigger,
    .sim_populate = NULL,
    .sim_query = NULL,
    .inject_fault = NULL,
    .save = ifd_save,
    .restore = NULL, /* restoring is construction: reopen */
    .reopen = ifd_reopen,
    .stored_fds = ifd_stored_fds,
    .generation = NULL, /* invalidations change nothing save() writes */
    .save_delta = ifd_save_delta,
    .has_hwpt = ifd_has_hwpt,
    .abandon = ifd_abandon,
    .open_context = ifd_open_context,
    .add_device = ifd_add_device,
    .remove_device = ifd_remove_device,
    .reopen_context = ifd_reopen_context,
    .take_back_device = ifd_take_back_device,
    .viommu_alloc = ifd_op_viommu_alloc,
    .vdevice_alloc = ifd_op_vdevice_alloc,
    .destroy_object = ifd_op_destroy_object,
    .veventq_alloc = ifd_op_veventq_alloc,
    .veventq_read = ifd_op_veventq_read,
    .veventq_free = ifd_op_veventq_free,
    .veventq_reopen = ifd_op_veventq_reopen,
    .trigger_vevent = ifd_op_trigger_vevent,
    .attach_pasid = ifd_op_attach_pasid,
    .detach_pasid = ifd_op_detach_pasid,
    .pasid_restore = ifd_op_pasid_restore,
    .has_vobj = ifd_has_vobj,
    .vdevice_intent = ifd_vdevice_intent,
};

/* --- introspection for tests ---------------------------------------------- */

int backend_iommufd_fd(struct backend *be)
{
	return to_ifd(be)->fd;
}

void backend_iommufd_restore_report(struct backend *be, uint32_t *moved, uint32_t *swept)
{
	*moved = to_ifd(be)->restore_moved;
	*swept = to_ifd(be)->restore_swept;
}

int backend_iommufd_device_ids(struct backend *be, const char *device, uint32_t *dev_id,
			       uint32_t *parent_id, uint32_t *attached_id)
{
	struct ifd_device *d = find_device(to_ifd(be), device);

	if (!d)
		return -ENOENT;
	if (dev_id)
		*dev_id = d->dev_id;
	if (parent_id)
		*parent_id = d->parent_id;
	if (attached_id)
		*attached_id = d->attached_id;
	return 0;
}
