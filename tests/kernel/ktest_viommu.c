/* SPDX-License-Identifier: MIT */
/*
 * The vIOMMU rule table (tests/support/viommu_rules.c) directly on the
 * kernel, without the daemon: raw ioctls on /dev/iommu in the test VM
 * (CONFIG_IOMMUFD_TEST). Each row gets a fresh iommufd with two selftest
 * mock devices (IOMMU_TEST_OP_MOCK_DOMAIN), each on its own IOAS and its
 * own nest parent (IOMMU_HWPT_ALLOC_NEST_PARENT, the device moved onto it),
 * as the daemon sets its devices up; closing the iommufd ends the row.
 * The same rows run through the daemon (integration/viommu_rules, in this
 * tier's integration suites) and on the sim (unit/test_sim_viommu_rules):
 * this program is what shows the table's errnos and entry counts are the
 * kernel's. On 6.12 every row's first step, IOMMU_VIOMMU_ALLOC, must be
 * -ENOTTY (an ioctl number the kernel does not have).
 * TAP output; exit 0 when every row passed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strerrorname_np */
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "backend/iommufd_test_uapi.h"
#include "backend/iommufd_uapi.h"
#include "backend/viommu_uapi.h"
#include "viommu_rules.h"

#include "ktest_tap.h"

struct kdev {
	uint32_t ioas, stdev, idev, parent, paging;
};

struct kctx {
	int fd;
	struct kdev dev[2];
};

static int xioctl(int fd, unsigned long nr, void *arg)
{
	return ioctl(fd, nr, arg) ? -errno : 0;
}

static int hwpt_alloc(int fd, uint32_t idev, uint32_t pt, uint32_t flags, uint32_t data_type,
		      const void *data, uint32_t len, uint32_t *out)
{
	struct iommu_hwpt_alloc cmd = {.size = sizeof(cmd),
				       .flags = flags,
				       .dev_id = idev,
				       .pt_id = pt,
				       .data_type = data_type,
				       .data_len = len,
				       .data_uptr = (uintptr_t)data};
	int rc = xioctl(fd, IOMMU_HWPT_ALLOC, &cmd);

	if (!rc)
		*out = cmd.out_hwpt_id;
	return rc;
}

static int replace(int fd, uint32_t stdev, uint32_t pt)
{
	struct iommu_test_cmd cmd = {.size = sizeof(cmd),
				     .op = IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE,
				     .id = stdev,
				     .mock_domain_replace.pt_id = pt};

	return xioctl(fd, IOMMU_TEST_CMD, &cmd);
}

/* A mock device on its own IOAS, moved onto its own nest parent. */
static int dev_up(int fd, struct kdev *d)
{
	struct iommu_ioas_alloc ioas = {.size = sizeof(ioas)};
	struct iommu_test_cmd md = {.size = sizeof(md), .op = IOMMU_TEST_OP_MOCK_DOMAIN};
	int rc = xioctl(fd, IOMMU_IOAS_ALLOC, &ioas);

	if (rc)
		return rc;
	d->ioas = ioas.out_ioas_id;
	md.id = d->ioas;
	rc = xioctl(fd, IOMMU_TEST_CMD, &md);
	if (rc)
		return rc;
	d->stdev = md.mock_domain.out_stdev_id;
	d->idev = md.mock_domain.out_idev_id;
	rc = hwpt_alloc(fd, d->idev, d->ioas, IOMMU_HWPT_ALLOC_NEST_PARENT, IOMMU_HWPT_DATA_NONE,
			NULL, 0, &d->parent);
	if (rc)
		return rc;
	d->paging = 0;
	return replace(fd, d->stdev, d->parent);
}

static int k_begin(void *p)
{
	struct kctx *c = p;
	int rc;

	c->fd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
	if (c->fd < 0)
		return -errno;
	for (unsigned i = 0; i < 2; i++) {
		rc = dev_up(c->fd, &c->dev[i]);
		if (rc) {
			close(c->fd);
			return rc;
		}
	}
	return 0;
}

/* Closing the iommufd destroys every object of the row. */
static void k_end(void *p)
{
	struct kctx *c = p;

	close(c->fd);
	c->fd = -1;
}

static int k_viommu(void *p, unsigned dev, enum vr_parent parent, uint32_t type, uint32_t flags,
		    uint32_t *id)
{
	struct kctx *c = p;
	struct kdev *d = &c->dev[dev];
	struct nestd_viommu_alloc cmd = {
	    .size = sizeof(cmd), .flags = flags, .type = type, .dev_id = d->idev};
	int rc = 0;

	if (parent == VR_PARENT_NEST)
		cmd.hwpt_id = d->parent;
	else if (parent == VR_PARENT_PAGING) {
		if (!d->paging)
			rc = hwpt_alloc(c->fd, d->idev, d->ioas, 0, IOMMU_HWPT_DATA_NONE, NULL, 0,
					&d->paging);
		if (rc) {
			printf("# plain paging HWPT: %s\n", errname(rc));
			return rc;
		}
		cmd.hwpt_id = d->paging;
	}
	rc = xioctl(c->fd, NESTD_IOMMU_VIOMMU_ALLOC, &cmd);
	if (!rc)
		*id = cmd.out_viommu_id;
	return rc;
}

static int k_vdev(void *p, uint32_t viommu, unsigned dev, uint64_t virt_id, uint32_t *id)
{
	struct kctx *c = p;
	struct nestd_vdevice_alloc cmd = {.size = sizeof(cmd),
					  .viommu_id = viommu,
					  .dev_id = c->dev[dev].idev,
					  .virt_id = virt_id};
	int rc = xioctl(c->fd, NESTD_IOMMU_VDEVICE_ALLOC, &cmd);

	if (!rc)
		*id = cmd.out_vdevice_id;
	return rc;
}

/* IOMMU_DESTROY takes any object's id: the kind is only the daemon's. */
static int k_destroy(void *p, enum vr_kind kind, uint32_t id)
{
	struct kctx *c = p;
	struct iommu_destroy cmd = {.size = sizeof(cmd), .id = id};

	(void)kind;
	return xioctl(c->fd, IOMMU_DESTROY, &cmd);
}

static int k_nested(void *p, unsigned dev, uint32_t viommu, uint32_t data_type, const void *data,
		    uint32_t len, uint32_t *id)
{
	struct kctx *c = p;

	return hwpt_alloc(c->fd, c->dev[dev].idev, viommu, 0, data_type, data, len, id);
}

static int k_attach(void *p, unsigned dev, uint32_t hwpt)
{
	struct kctx *c = p;

	return replace(c->fd, c->dev[dev].stdev, hwpt);
}

static int k_detach(void *p, unsigned dev)
{
	struct kctx *c = p;

	return replace(c->fd, c->dev[dev].stdev, c->dev[dev].parent);
}

static int k_inv(void *p, uint32_t id, uint32_t data_type, uint32_t entry_len, const void *entries,
		 uint32_t n, uint32_t *done)
{
	struct kctx *c = p;
	struct iommu_hwpt_invalidate cmd = {.size = sizeof(cmd),
					    .hwpt_id = id,
					    .data_uptr = (uintptr_t)entries,
					    .data_type = data_type,
					    .entry_len = entry_len,
					    .entry_num = n};
	int rc = xioctl(c->fd, IOMMU_HWPT_INVALIDATE, &cmd);

	*done = cmd.entry_num;
	return rc;
}

/* The tier run-qemu.sh booted (NESTD_KTEST_KERNEL), else the running kernel's major. */
static bool kernel7(void)
{
	const char *k = getenv("NESTD_KTEST_KERNEL");
	struct utsname u;

	if (k)
		return !strcmp(k, "7.x");
	return !uname(&u) && atoi(u.release) >= 7;
}

int main(void)
{
	struct kctx c = {.fd = -1};
	const struct vr_driver d = {
	    .side = VR_SIDE_KERNEL,
	    .ctx = &c,
	    .begin = k_begin,
	    .end = k_end,
	    .viommu_alloc = k_viommu,
	    .vdevice_alloc = k_vdev,
	    .destroy = k_destroy,
	    .alloc_nested = k_nested,
	    .attach = k_attach,
	    .detach = k_detach,
	    .invalidate = k_inv,
	};
	bool k7 = kernel7();
	const char *why = vr_table_check();

	printf("# %zu rows on the %s kernel's rules\n", vr_n_rows, k7 ? "7.x" : "6.12 (-ENOTTY)");
	report(why == NULL, "the rule table is well formed", why);
	for (size_t i = 0; i < vr_n_rows; i++) {
		char msg[200], what[160];
		enum vr_result r = vr_run(&vr_rows[i], &d, k7, msg, sizeof(msg));

		snprintf(what, sizeof(what), "%s (%s)", vr_rows[i].name, vr_rows[i].rule);
		/* Only the SMMUv3 rows skip here (no SMMUv3 on x86); any other skip fails. */
		if (r == VR_SKIP && (vr_rows[i].unreachable & VR_SIDE_KERNEL)) {
			n_checks++;
			printf("ok %d - %s # SKIP %s\n", n_checks, vr_rows[i].name, msg);
			continue;
		}
		report(r == VR_PASS, what, r == VR_PASS ? NULL : msg);
	}
	/* The rows start with IOMMU_VIOMMU_ALLOC; 6.12 lacks IOMMU_VDEVICE_ALLOC just the same. */
	if (!k7 && !k_begin(&c)) {
		struct nestd_vdevice_alloc cmd = {
		    .size = sizeof(cmd), .viommu_id = c.dev[0].parent, .dev_id = c.dev[0].idev};

		EXPECT_RC(-ENOTTY, xioctl(c.fd, NESTD_IOMMU_VDEVICE_ALLOC, &cmd),
			  "6.12: IOMMU_VDEVICE_ALLOC is no ioctl either");
		k_end(&c);
	}
	printf("1..%d\n", n_checks);
	return n_failed ? 1 : 0;
}
