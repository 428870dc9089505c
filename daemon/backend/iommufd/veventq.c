// SPDX-License-Identifier: MIT
/*
 * vEVENTQs on the real kernel (7.x drivers/iommu/iommufd/eventq.c): the
 * IOMMU_VEVENTQ_ALLOC ioctl and its fd, whose read() hands out whole
 * records (a count under a header, or under the first record, is
 * -EINVAL) and returns 0 when none wait (it never sleeps; O_NONBLOCK is
 * set all the same, as for the fault fd). The fd holds a reference on
 * the object, so it is closed before IOMMU_DESTROY. 6.12 has no such
 * ioctl: -ENOTTY. IOMMU_TEST_OP_TRIGGER_VEVENT for the mock.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "backend/iommufd/iommufd.h"
#include "backend/iommufd_test_uapi.h"
#include "backend/veventq_uapi.h"

int ifd_veventq_alloc(int iommufd, uint32_t viommu_id, uint32_t type, uint32_t depth,
		      struct backend_veventq *out)
{
	struct nestd_veventq_alloc cmd = {
	    .size = sizeof(cmd), .viommu_id = viommu_id, .type = type, .veventq_depth = depth};
	int fl;

	if (ioctl(iommufd, NESTD_IOMMU_VEVENTQ_ALLOC, &cmd))
		return -errno;
	fl = fcntl((int)cmd.out_veventq_fd, F_GETFL);
	if (fl < 0 || fcntl((int)cmd.out_veventq_fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		int err = -errno;
		struct iommu_destroy d = {.size = sizeof(d), .id = cmd.out_veventq_id};

		close((int)cmd.out_veventq_fd);
		ioctl(iommufd, IOMMU_DESTROY, &d);
		return err;
	}
	out->id = cmd.out_veventq_id;
	out->fd = (int)cmd.out_veventq_fd;
	return 0;
}

int ifd_veventq_read(const struct backend_veventq *q, void *buf, uint32_t len)
{
	ssize_t n;

	do {
		n = read(q->fd, buf, len);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
	return (int)n;
}

int ifd_veventq_free(int iommufd, const struct backend_veventq *q)
{
	struct iommu_destroy d = {.size = sizeof(d), .id = q->id};

	close(q->fd);
	if (ioctl(iommufd, IOMMU_DESTROY, &d))
		return -errno;
	return 0;
}

int ifd_trigger_vevent(int iommufd, uint32_t dev_id)
{
	struct iommu_test_cmd cmd = {.size = sizeof(cmd),
				     .op = NESTD_TEST_OP_TRIGGER_VEVENT,
				     .trigger_vevent = {.dev_id = dev_id}};

	if (ioctl(iommufd, IOMMU_TEST_CMD, &cmd))
		return -errno;
	return 0;
}
