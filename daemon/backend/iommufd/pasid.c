// SPDX-License-Identifier: MIT
/*
 * PASID attachments on the real kernel (see pasid.h). Every answer is the
 * kernel's: 6.12 has neither the test ops (-EOPNOTSUPP) nor the VFIO flag
 * (-EINVAL). The daemon's registry (state/pasids.c) decides which device
 * and HWPT a client may name; iommufd.c that the HWPT is one of ours.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "backend/iommufd/pasid.h"
#include "backend/iommufd_test_uapi.h"
#include "backend/iommufd_uapi.h"
#include "backend/pasid_uapi.h"
#include "backend/vfio_uapi.h"
#include "util/common.h"

static int xioctl(int fd, unsigned long req, void *arg)
{
	return ioctl(fd, req, arg) ? -errno : 0;
}

static struct ifd_pasid *find(struct ifd_pasids *t, uint32_t dev, uint32_t pasid)
{
	for (uint32_t i = 0; i < t->n; i++)
		if (t->a[i].dev == dev && t->a[i].pasid == pasid)
			return &t->a[i];
	return NULL;
}

static int remember(struct ifd_pasids *t, uint32_t dev, uint32_t pasid)
{
	struct ifd_pasid *n = array_room(t->a, t->n, &t->cap, sizeof(*n), 8);

	if (!n)
		return -ENOMEM;
	t->a = n;
	t->a[t->n].dev = dev;
	t->a[t->n].pasid = pasid;
	t->n++;
	return 0;
}

static int mock_op(int fd, uint32_t op, uint32_t stdev_id, uint32_t pasid, uint32_t pt_id)
{
	struct nestd_test_pasid_cmd cmd = {
	    .size = sizeof(cmd),
	    .op = op,
	    .id = stdev_id,
	    .pasid_attach = {.pasid = pasid, .pt_id = pt_id},
	};

	return xioctl(fd, IOMMU_TEST_CMD, &cmd);
}

int ifd_pasid_attach(int fd, struct ifd_pasids *t, const struct ifd_pasid_dev *d, uint32_t pasid,
		     uint32_t pt_id)
{
	bool known = find(t, d->index, pasid) != NULL;
	int rc;

	if (d->vfio_fd >= 0) {
		struct nestd_vfio_attach_pasid cmd = {.argsz = sizeof(cmd),
						      .flags = NESTD_VFIO_DEVICE_ATTACH_PASID,
						      .pt_id = pt_id,
						      .pasid = pasid};

		rc = xioctl(d->vfio_fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &cmd);
	} else {
		rc = mock_op(fd, known ? NESTD_TEST_OP_PASID_REPLACE : NESTD_TEST_OP_PASID_ATTACH,
			     d->stdev_id, pasid, pt_id);
	}
	if (rc || known)
		return rc;
	rc = remember(t, d->index, pasid);
	if (rc) {
		/* Untracked it could not be taken off at the teardown: undo it. */
		ifd_pasid_detach(fd, t, d, pasid);
	}
	return rc;
}

int ifd_pasid_detach(int fd, struct ifd_pasids *t, const struct ifd_pasid_dev *d, uint32_t pasid)
{
	struct ifd_pasid *p = find(t, d->index, pasid);
	int rc;

	if (d->vfio_fd >= 0) {
		struct nestd_vfio_detach_pasid cmd = {
		    .argsz = sizeof(cmd), .flags = NESTD_VFIO_DEVICE_DETACH_PASID, .pasid = pasid};

		rc = xioctl(d->vfio_fd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &cmd);
	} else {
		rc = mock_op(fd, NESTD_TEST_OP_PASID_DETACH, d->stdev_id, pasid, 0);
	}
	if (rc == 0 && p)
		*p = t->a[--t->n];
	return rc;
}

int ifd_pasid_restore(int fd, struct ifd_pasids *t, const struct ifd_pasid_dev *d, uint32_t pasid,
		      uint32_t pt_id)
{
	int rc = 0;

	/* VFIO asks nothing of a PASID; the mock has the selftest's own question. */
	if (d->vfio_fd < 0)
		rc = mock_op(fd, NESTD_TEST_OP_PASID_CHECK_HWPT, d->stdev_id, pasid, pt_id);
	if (rc)
		return rc;
	return find(t, d->index, pasid) ? 0 : remember(t, d->index, pasid);
}

void ifd_pasid_detach_all(int fd, struct ifd_pasids *t, const struct ifd_pasid_dev *d)
{
	/* Downwards: a removal moves the last entry, already visited, into slot i. */
	for (uint32_t i = t->n; i-- > 0;) {
		if (t->a[i].dev != d->index)
			continue;
		if (ifd_pasid_detach(fd, t, d, t->a[i].pasid) != 0)
			t->a[i] = t->a[--t->n]; /* the kernel refused: forgotten all the same */
	}
}

void ifd_pasids_free(struct ifd_pasids *t)
{
	free(t->a);
	memset(t, 0, sizeof(*t));
}

int ifd_mock_domain_pasid(int fd, uint32_t ioas_id, uint32_t *stdev_id, uint32_t *dev_id)
{
	struct nestd_test_pasid_cmd cmd = {
	    .size = sizeof(cmd),
	    .op = NESTD_TEST_OP_MOCK_DOMAIN_FLAGS,
	    .id = ioas_id,
	    .mock_domain_flags.dev_flags = NESTD_MOCK_FLAGS_DEVICE_PASID,
	};
	int rc = xioctl(fd, IOMMU_TEST_CMD, &cmd);

	if (rc == 0) {
		*stdev_id = cmd.mock_domain_flags.out_stdev_id;
		*dev_id = cmd.mock_domain_flags.out_idev_id;
	}
	return rc;
}

uint8_t ifd_max_pasid_log2(int fd, uint32_t dev_id)
{
	uint64_t data[16];
	struct iommu_hw_info cmd = {
	    .size = sizeof(cmd),
	    .dev_id = dev_id,
	    .data_len = sizeof(data),
	    .data_uptr = (uintptr_t)data,
	};

	if (xioctl(fd, IOMMU_GET_HW_INFO, &cmd))
		return 0;
	return cmd.out_max_pasid_log2;
}
