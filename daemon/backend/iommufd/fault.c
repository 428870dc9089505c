// SPDX-License-Identifier: MIT
/*
 * Fault objects on the real kernel: drivers/iommu/iommufd/fault.c (6.12)
 * and eventq.c (7.x) have the same fd semantics, which this file relies on:
 * read() takes a multiple of the record size and returns whole groups (a
 * buffer too small for the first group is -EINVAL), write() takes
 * responses and answers -EINVAL for an unknown cookie or code.
 */
#include "backend/iommufd/fault.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "backend/iommufd_test_uapi.h"
#include "backend/iommufd_uapi.h"

int ifd_fault_alloc(int iommufd, struct backend_fault_queue *out)
{
	struct iommu_fault_alloc cmd = {.size = sizeof(cmd)};
	int fl;

	if (ioctl(iommufd, IOMMU_FAULT_QUEUE_ALLOC, &cmd))
		return -errno;
	/* The event loop reads it: a read with nothing queued must not block. */
	fl = fcntl((int)cmd.out_fault_fd, F_GETFL);
	if (fl < 0 || fcntl((int)cmd.out_fault_fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		int err = -errno;
		struct iommu_destroy d = {.size = sizeof(d), .id = cmd.out_fault_id};

		close((int)cmd.out_fault_fd);
		ioctl(iommufd, IOMMU_DESTROY, &d);
		return err;
	}
	out->id = cmd.out_fault_id;
	out->fd = (int)cmd.out_fault_fd;
	return 0;
}

int ifd_fault_read(const struct backend_fault_queue *q, struct iommu_hwpt_pgfault *recs,
		   uint32_t max)
{
	ssize_t n;

	do {
		n = read(q->fd, recs, (size_t)max * sizeof(*recs));
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
	return (int)(n / (ssize_t)sizeof(*recs));
}

int ifd_fault_respond(const struct backend_fault_queue *q,
		      const struct iommu_hwpt_page_response *resp)
{
	ssize_t n;

	do {
		n = write(q->fd, resp, sizeof(*resp));
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n == (ssize_t)sizeof(*resp) ? 0 : -EIO;
}

/*
 * The fd holds a reference on the object (fault.c iommufd_fault_alloc()
 * takes one for it), so IOMMU_DESTROY would be -EBUSY while it is open:
 * the fd goes first. A HWPT still using the object makes the destroy
 * -EBUSY; the caller destroys its HWPTs before. The kernel answers the
 * groups still waiting for a response when the object goes.
 */
int ifd_fault_free(int iommufd, const struct backend_fault_queue *q)
{
	struct iommu_destroy d = {.size = sizeof(d), .id = q->id};

	close(q->fd);
	if (ioctl(iommufd, IOMMU_DESTROY, &d))
		return -errno;
	return 0;
}

int ifd_trigger_iopf(int iommufd, uint32_t dev_id, const struct backend_iopf *t)
{
	struct iommu_test_cmd cmd = {
	    .size = sizeof(cmd),
	    .op = IOMMU_TEST_OP_TRIGGER_IOPF,
	    .trigger_iopf = {.dev_id = dev_id,
			     .pasid = t->pasid,
			     .grpid = t->grpid,
			     .perm = t->perm,
			     .addr = t->addr},
	};

	if (ioctl(iommufd, IOMMU_TEST_CMD, &cmd))
		return -errno;
	return 0;
}
