/* SPDX-License-Identifier: MIT */
/*
 * vEVENTQ rules on the real kernel, without the daemon (run inside the
 * test VM, CONFIG_IOMMUFD_TEST): the same checks, errnos and sequence
 * numbers as tests/integration/test_veventq.c makes through the daemon,
 * made here with the raw IOMMU_VEVENTQ_ALLOC, read() of its fd and
 * IOMMU_TEST_OP_TRIGGER_VEVENT (the mock devices, vIOMMU, vDEVICE and the
 * nested HWPT come from the iommufd backend, which only issues the
 * ioctls). On 6.12 the only check is the ioctl's absence: -ENOTTY.
 * TAP-like output; exit 0 when every check passed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strerrorname_np */
#endif
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "backend/backend.h"
#include "backend/iommufd/iommufd.h"
#include "backend/iommufd_test_uapi.h"
#include "backend/iommufd_uapi.h"
#include "backend/veventq_uapi.h"
#include "backend/viommu_uapi.h"
#include "util/config.h"

#include "ktest_tap.h"

#define ST_Q NESTD_VEVENTQ_TYPE_SELFTEST
#define HSZ  sizeof(struct nestd_vevent_header)
#define REC  (HSZ + sizeof(struct nestd_vevent_selftest))

static struct backend *be;
static int ifd;

static int veventq_alloc(uint32_t viommu, uint32_t type, uint32_t depth, uint32_t *id, int *fd)
{
	struct nestd_veventq_alloc cmd = {
	    .size = sizeof(cmd), .viommu_id = viommu, .type = type, .veventq_depth = depth};

	if (ioctl(ifd, NESTD_IOMMU_VEVENTQ_ALLOC, &cmd))
		return -errno;
	if (id)
		*id = cmd.out_veventq_id;
	if (fd)
		*fd = (int)cmd.out_veventq_fd;
	else
		close((int)cmd.out_veventq_fd);
	return 0;
}

static int destroy(uint32_t id)
{
	struct iommu_destroy cmd = {.size = sizeof(cmd), .id = id};

	return ioctl(ifd, IOMMU_DESTROY, &cmd) ? -errno : 0;
}

static int trigger(const char *dev, uint32_t count)
{
	uint32_t dev_id = 0;
	struct iommu_test_cmd cmd = {.size = sizeof(cmd), .op = NESTD_TEST_OP_TRIGGER_VEVENT};

	backend_iommufd_device_ids(be, dev, &dev_id, NULL, NULL);
	cmd.trigger_vevent.dev_id = dev_id;
	while (count--)
		if (ioctl(ifd, IOMMU_TEST_CMD, &cmd))
			return -errno;
	return 0;
}

/* read() of the fd: bytes, or -errno. The kernel's read never sleeps: 0 is "none". */
static int rd(int fd, void *buf, size_t len)
{
	ssize_t n = read(fd, buf, len);

	return n < 0 ? -errno : (int)n;
}

struct rec {
	uint32_t flags, sequence, virt_id;
};

/* Reads what waits (at most max records) into r; how many records, or -1. */
static int read_records(int fd, struct rec *r, int max)
{
	uint8_t buf[64 * REC];
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int n, k = 0;
	size_t off = 0;

	if (poll(&p, 1, 1000) != 1)
		return 0;
	n = rd(fd, buf, sizeof(buf));
	if (n < 0)
		return -1;
	while (off + HSZ <= (size_t)n && k < max) {
		struct nestd_vevent_header h;

		memcpy(&h, buf + off, HSZ);
		off += HSZ;
		r[k] = (struct rec){h.flags, h.sequence, 0};
		if (!(h.flags & NESTD_VEVENTQ_FLAG_LOST_EVENTS)) {
			memcpy(&r[k].virt_id, buf + off, sizeof(uint32_t));
			off += sizeof(uint32_t);
		}
		k++;
	}
	return k;
}

static uint32_t nested_on(uint32_t viommu, const char *dev)
{
	struct iommu_hwpt_selftest data = {.iotlb = IOMMU_TEST_IOTLB_DEFAULT};
	struct backend_alloc req = {.data_type = IOMMU_HWPT_DATA_SELFTEST,
				    .data = &data,
				    .data_len = sizeof(data),
				    .viommu_id = viommu};
	uint32_t id = 0;

	EXPECT_RC(0, be->ops->alloc_nested(be, dev, &req, &id, NULL), "nested HWPT on the vIOMMU");
	return id;
}

static void check_alloc_rules(uint32_t v)
{
	uint32_t q = 0, q2 = 0;
	int fd = -1;

	EXPECT_RC(-EOPNOTSUPP, veventq_alloc(v, NESTD_VEVENTQ_TYPE_DEFAULT, 2, NULL, NULL),
		  "type DEFAULT: EOPNOTSUPP");
	EXPECT_RC(-EINVAL, veventq_alloc(v, ST_Q, 0, NULL, NULL), "depth 0: EINVAL");
	EXPECT_RC(-EINVAL, veventq_alloc(v, ST_Q, NESTD_VEVENTQ_MAX_DEPTH + 1, NULL, NULL),
		  "depth 2^19 + 1: EINVAL");
	EXPECT_RC(0, veventq_alloc(v, ST_Q, NESTD_VEVENTQ_MAX_DEPTH, &q, &fd), "depth 2^19");
	/* The fd holds the object: IOMMU_DESTROY is EBUSY until it is closed. */
	EXPECT_RC(-EBUSY, destroy(q), "destroy with its fd open: EBUSY");
	close(fd);
	EXPECT_RC(0, destroy(q), "destroy after closing its fd");
	EXPECT_RC(0, veventq_alloc(v, ST_Q, 2, &q, &fd), "depth 2");
	EXPECT_RC(-EEXIST, veventq_alloc(v, ST_Q, 2, NULL, NULL), "a second of the type: EEXIST");
	EXPECT_RC(0, veventq_alloc(v, NESTD_VEVENTQ_TYPE_ARM_SMMUV3, 2, &q2, NULL),
		  "an SMMUv3 queue on the mock's vIOMMU");
	EXPECT_RC(-ENOENT, veventq_alloc(q, ST_Q, 2, NULL, NULL), "a vEVENTQ's id: ENOENT");
	EXPECT_RC(-ENOENT, veventq_alloc(v + 1000, ST_Q, 2, NULL, NULL), "an unknown id: ENOENT");
	/* Each holds the vIOMMU. */
	EXPECT_RC(-EBUSY, be->ops->destroy_object(be, v), "destroy the vIOMMU: EBUSY");
	/* Read counts under a header, on an empty queue. */
	{
		char b[REC];

		EXPECT_RC(-EINVAL, rd(fd, b, 0), "read 0 bytes: EINVAL");
		EXPECT_RC(-EINVAL, rd(fd, b, HSZ - 1), "read under a header: EINVAL");
		EXPECT_RC(0, rd(fd, b, sizeof(b)), "read with none waiting: 0");
	}
	close(fd);
	EXPECT_RC(0, destroy(q), "destroy the selftest queue");
	EXPECT_RC(0, destroy(q2), "destroy the SMMUv3 queue");
	EXPECT_RC(-ENOENT, destroy(q), "destroy it again: ENOENT");
}

static void check_events(uint32_t v)
{
	struct rec r[8];
	uint32_t q = 0, vdev = 0, hwpt;
	char b[REC];
	int fd = -1;

	EXPECT_RC(-ENOENT, trigger("mock0", 1), "trigger, not attached through a vIOMMU: ENOENT");
	EXPECT_RC(0, be->ops->vdevice_alloc(be, v, "mock0", 0x99, &vdev), "vDEVICE 0x99");
	hwpt = nested_on(v, "mock0");
	EXPECT_RC(0, be->ops->attach(be, "mock0", hwpt), "attach through the vDEVICE");
	EXPECT_RC(-EOPNOTSUPP, trigger("mock0", 1), "trigger without a selftest queue: EOPNOTSUPP");
	EXPECT_RC(0, veventq_alloc(v, ST_Q, 8, &q, &fd), "queue of depth 8");

	/* In order, consecutive sequence numbers, the vDEVICE's virt_id. */
	EXPECT_RC(0, trigger("mock0", 3), "three records");
	EXPECT_RC(-EINVAL, rd(fd, b, HSZ), "read a header's worth: the record does not fit");
	EXPECT_EQ(3, read_records(fd, r, 8), "three records read");
	for (uint32_t i = 0; i < 3; i++) {
		EXPECT_EQ(i, r[i].sequence, "sequence numbers from 0");
		EXPECT_EQ(0, r[i].flags, "normal records");
		EXPECT_EQ(0x99, r[i].virt_id, "the vDEVICE's virt_id");
	}
	EXPECT_RC(0, be->ops->detach(be, "mock0"), "detach");
	EXPECT_RC(-ENOENT, trigger("mock0", 1), "trigger after detach: ENOENT");
	EXPECT_RC(0, be->ops->destroy_object(be, vdev), "destroy the vDEVICE");
	EXPECT_RC(0, be->ops->vdevice_alloc(be, v, "mock0", 0x88, &vdev), "vDEVICE 0x88");
	EXPECT_RC(0, be->ops->attach(be, "mock0", hwpt), "attach again");
	EXPECT_RC(0, trigger("mock0", 1), "one more record");
	EXPECT_EQ(1, read_records(fd, r, 8), "it is read");
	EXPECT_EQ(3, r[0].sequence, "the sequence goes on");
	EXPECT_EQ(0x88, r[0].virt_id, "the new virt_id");
	close(fd);
	EXPECT_RC(0, destroy(q), "destroy the queue");

	/* depth 2, five records: 0, 1, then the LOST_EVENTS header with 4; then 5. */
	EXPECT_RC(0, veventq_alloc(v, ST_Q, 2, &q, &fd), "queue of depth 2");
	EXPECT_RC(0, trigger("mock0", 5), "five records");
	EXPECT_EQ(3, read_records(fd, r, 8), "two records and a header");
	EXPECT_EQ(0, r[0].sequence, "record 0");
	EXPECT_EQ(1, r[1].sequence, "record 1");
	EXPECT_EQ(0, r[0].flags | r[1].flags, "both normal");
	EXPECT_EQ(NESTD_VEVENTQ_FLAG_LOST_EVENTS, r[2].flags, "then LOST_EVENTS");
	EXPECT_EQ(4, r[2].sequence, "with the last sequence number");
	EXPECT_RC(0, trigger("mock0", 1), "one more record");
	EXPECT_EQ(1, read_records(fd, r, 8), "read");
	EXPECT_EQ(0, r[0].flags, "a normal record again");
	EXPECT_EQ(5, r[0].sequence, "sequence 5");
	close(fd);
	EXPECT_RC(0, destroy(q), "destroy the queue");
	EXPECT_RC(-EOPNOTSUPP, trigger("mock0", 1), "trigger after the destroy: EOPNOTSUPP");
	EXPECT_RC(0, be->ops->detach(be, "mock0"), "detach");
	EXPECT_RC(0, be->ops->destroy(be, hwpt), "destroy the nested HWPT");
	EXPECT_RC(0, be->ops->destroy_object(be, vdev), "destroy the vDEVICE");
}

int main(void)
{
	static struct config cfg;
	const char *k = getenv("NESTD_KTEST_KERNEL");
	const char *err = NULL;
	uint32_t v = 0;

	memset(&cfg, 0, sizeof(cfg));
	snprintf(cfg.backend, sizeof(cfg.backend), "iommufd");
	snprintf(cfg.iommufd_path, sizeof(cfg.iommufd_path), "/dev/iommu");
	snprintf(cfg.devices[0].name, sizeof(cfg.devices[0].name), "mock0");
	cfg.devices[0].kind = DEVICE_KIND_SELFTEST;
	cfg.n_devices = 1;
	if (backend_iommufd_open(&cfg, &be, &err)) {
		printf("Bail out! iommufd backend: %s\n", err ? err : "?");
		return 1;
	}
	ifd = backend_iommufd_fd(be);
	if (!k || strcmp(k, "7.x")) {
		EXPECT_RC(-ENOTTY, veventq_alloc(1, ST_Q, 2, NULL, NULL),
			  "6.12 has no IOMMU_VEVENTQ_ALLOC: ENOTTY");
	} else {
		EXPECT_RC(
		    0, be->ops->viommu_alloc(be, "mock0", NESTD_VIOMMU_TYPE_SELFTEST, 0, &v, NULL),
		    "selftest vIOMMU");
		check_alloc_rules(v);
		check_events(v);
		EXPECT_RC(0, be->ops->destroy_object(be, v), "destroy the vIOMMU");
	}
	be->ops->close(be);
	printf("1..%d\n", n_checks);
	return n_failed ? 1 : 0;
}
