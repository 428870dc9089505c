/* SPDX-License-Identifier: MIT */
/*
 * PASID attachments on the real kernel, without the daemon: the raw
 * ioctls of the selftest mock (IOMMU_TEST_OP_PASID_ATTACH / REPLACE /
 * DETACH / CHECK_HWPT on a mock made with MOCK_FLAGS_DEVICE_PASID), on
 * the objects the daemon builds (a nest parent allocated
 * IOMMU_HWPT_ALLOC_PASID on a PASID-capable device, nested HWPTs on it).
 * One check per rule with the errno that tests/integration/test_pasid.c
 * expects through the daemon, so the rules are shown the same directly
 * and through it. The daemon's AttachPasid is VFIO's attach-or-replace,
 * made of the kernel's attach (-EBUSY on an attached PASID) and replace
 * (-EINVAL on a free one), both checked here. On 6.12 (NESTD_KTEST_KERNEL)
 * none of it exists: the answers are 6.12's.
 *
 * Output is TAP-like; exit status 0 when every check passed, 1 otherwise.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strerrorname_np */
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "backend/iommufd_test_uapi.h"
#include "backend/iommufd_uapi.h"
#include "backend/pasid_uapi.h"

#include "ktest_tap.h"

#define WIDTH NESTD_MOCK_PASID_WIDTH

static int fd = -1;

static int xioctl(unsigned long req, void *arg)
{
	return ioctl(fd, req, arg) ? -errno : 0;
}

static uint32_t ioas_alloc(void)
{
	struct iommu_ioas_alloc cmd = {.size = sizeof(cmd)};

	return xioctl(IOMMU_IOAS_ALLOC, &cmd) ? 0 : cmd.out_ioas_id;
}

static int destroy(uint32_t id)
{
	struct iommu_destroy cmd = {.size = sizeof(cmd), .id = id};

	return xioctl(IOMMU_DESTROY, &cmd);
}

/* A mock device on ioas (dev_flags: MOCK_FLAGS_DEVICE_PASID or 0). */
static int mock_dev(uint32_t ioas, uint32_t dev_flags, uint32_t *stdev, uint32_t *dev_id)
{
	struct nestd_test_pasid_cmd cmd = {.size = sizeof(cmd),
					   .op = NESTD_TEST_OP_MOCK_DOMAIN_FLAGS,
					   .id = ioas,
					   .mock_domain_flags.dev_flags = dev_flags};
	int rc = xioctl(IOMMU_TEST_CMD, &cmd);

	*stdev = cmd.mock_domain_flags.out_stdev_id;
	*dev_id = cmd.mock_domain_flags.out_idev_id;
	return rc;
}

static int hwpt_alloc(uint32_t dev_id, uint32_t pt_id, uint32_t flags, bool nested, uint32_t *out)
{
	struct iommu_hwpt_selftest data = {.iotlb = IOMMU_TEST_IOTLB_DEFAULT};
	struct iommu_hwpt_alloc cmd = {.size = sizeof(cmd),
				       .flags = flags,
				       .dev_id = dev_id,
				       .pt_id = pt_id,
				       .data_type = nested ? IOMMU_HWPT_DATA_SELFTEST : 0,
				       .data_len = nested ? sizeof(data) : 0,
				       .data_uptr = nested ? (uintptr_t)&data : 0};
	int rc = xioctl(IOMMU_HWPT_ALLOC, &cmd);

	*out = rc ? 0 : cmd.out_hwpt_id;
	return rc;
}

static int rid_replace(uint32_t stdev, uint32_t pt_id)
{
	struct iommu_test_cmd cmd = {.size = sizeof(cmd),
				     .op = IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE,
				     .id = stdev,
				     .mock_domain_replace.pt_id = pt_id};

	return xioctl(IOMMU_TEST_CMD, &cmd);
}

static int pasid_op(uint32_t op, uint32_t stdev, uint32_t pasid, uint32_t pt_id)
{
	struct nestd_test_pasid_cmd cmd = {.size = sizeof(cmd),
					   .op = op,
					   .id = stdev,
					   .pasid_attach = {.pasid = pasid, .pt_id = pt_id}};

	return xioctl(IOMMU_TEST_CMD, &cmd);
}

#define ATTACH(s, p, h)	 pasid_op(NESTD_TEST_OP_PASID_ATTACH, (s), (p), (h))
#define REPLACE(s, p, h) pasid_op(NESTD_TEST_OP_PASID_REPLACE, (s), (p), (h))
#define DETACH(s, p)	 pasid_op(NESTD_TEST_OP_PASID_DETACH, (s), (p), 0)
#define CHECK(s, p, h)	 pasid_op(NESTD_TEST_OP_PASID_CHECK_HWPT, (s), (p), (h))

static uint8_t max_pasid_log2(uint32_t dev_id)
{
	uint64_t data[16];
	struct iommu_hw_info cmd = {.size = sizeof(cmd),
				    .dev_id = dev_id,
				    .data_len = sizeof(data),
				    .data_uptr = (uintptr_t)data};

	return xioctl(IOMMU_GET_HW_INFO, &cmd) ? 0xff : cmd.out_max_pasid_log2;
}

static int invalidate_slot(uint32_t hwpt, uint32_t slot)
{
	struct iommu_hwpt_invalidate_selftest e = {.iotlb_id = slot};
	struct iommu_hwpt_invalidate cmd = {.size = sizeof(cmd),
					    .hwpt_id = hwpt,
					    .data_uptr = (uintptr_t)&e,
					    .data_type = IOMMU_HWPT_INVALIDATE_DATA_SELFTEST,
					    .entry_len = sizeof(e),
					    .entry_num = 1};
	int rc = xioctl(IOMMU_HWPT_INVALIDATE, &cmd);

	return rc ? rc : (int)cmd.entry_num - 1; /* 0: the one entry handled */
}

static int check_iotlb(uint32_t hwpt, uint32_t slot, uint32_t want)
{
	struct iommu_test_cmd cmd = {.size = sizeof(cmd),
				     .op = IOMMU_TEST_OP_MD_CHECK_IOTLB,
				     .id = hwpt,
				     .check_iotlb = {.id = slot, .iotlb = want}};

	return xioctl(IOMMU_TEST_CMD, &cmd);
}

/* 6.12: no device flag, no test ops, no ALLOC_PASID. */
static void kernel_612(uint32_t ioas)
{
	uint32_t stdev, dev_id, parent, id;

	EXPECT_RC(-EINVAL, mock_dev(ioas, NESTD_MOCK_FLAGS_DEVICE_PASID, &stdev, &dev_id),
		  "6.12: MOCK_FLAGS_DEVICE_PASID unknown: EINVAL");
	EXPECT_RC(0, mock_dev(ioas, 0, &stdev, &dev_id), "6.12: plain mock device");
	EXPECT_RC(0, hwpt_alloc(dev_id, ioas, IOMMU_HWPT_ALLOC_NEST_PARENT, false, &parent),
		  "6.12: nest parent");
	EXPECT_RC(-EOPNOTSUPP, hwpt_alloc(dev_id, parent, NESTD_HWPT_ALLOC_PASID, true, &id),
		  "6.12: nested with ALLOC_PASID: EOPNOTSUPP");
	EXPECT_RC(0, hwpt_alloc(dev_id, parent, 0, true, &id), "6.12: nested without it");
	EXPECT_RC(-EOPNOTSUPP, ATTACH(stdev, 100, id), "6.12: PASID_ATTACH unknown: EOPNOTSUPP");
	EXPECT_RC(-EOPNOTSUPP, DETACH(stdev, 100), "6.12: PASID_DETACH unknown: EOPNOTSUPP");
	destroy(id);
	destroy(stdev);
	destroy(parent);
}

static void kernel_7(uint32_t ioas)
{
	uint32_t sp, sp_dev, st, st_dev, parent, st_parent, plain, a, b, st_compat;

	EXPECT_RC(0, mock_dev(ioas, NESTD_MOCK_FLAGS_DEVICE_PASID, &sp, &sp_dev),
		  "PASID-capable mock device");
	EXPECT_RC(0, mock_dev(ioas, 0, &st, &st_dev), "plain mock device");
	EXPECT_EQ(WIDTH, max_pasid_log2(sp_dev), "hw_info: the mock's PASID width");
	EXPECT_EQ(0, max_pasid_log2(st_dev), "hw_info: no PASIDs on the plain mock");
	/* The daemon's objects: parents (ALLOC_PASID where the device has PASIDs), RIDs on them. */
	EXPECT_RC(0,
		  hwpt_alloc(sp_dev, ioas, IOMMU_HWPT_ALLOC_NEST_PARENT | NESTD_HWPT_ALLOC_PASID,
			     false, &parent),
		  "nest parent with ALLOC_PASID");
	EXPECT_RC(0, hwpt_alloc(st_dev, ioas, IOMMU_HWPT_ALLOC_NEST_PARENT, false, &st_parent),
		  "nest parent without it");
	EXPECT_RC(0, rid_replace(sp, parent), "RID onto its parent");
	EXPECT_RC(0, rid_replace(st, st_parent), "plain RID onto its parent");
	EXPECT_RC(0, hwpt_alloc(sp_dev, parent, 0, true, &plain), "nested without ALLOC_PASID");
	EXPECT_RC(0, hwpt_alloc(sp_dev, parent, NESTD_HWPT_ALLOC_PASID, true, &a),
		  "nested with ALLOC_PASID");
	EXPECT_RC(0, hwpt_alloc(sp_dev, parent, NESTD_HWPT_ALLOC_PASID, true, &b),
		  "another with ALLOC_PASID");
	EXPECT_RC(0, hwpt_alloc(st_dev, st_parent, NESTD_HWPT_ALLOC_PASID, true, &st_compat),
		  "ALLOC_PASID nested on the plain mock");

	/* needs_alloc_pasid */
	EXPECT_RC(-EINVAL, ATTACH(sp, 100, plain), "HWPT without ALLOC_PASID: EINVAL");
	EXPECT_RC(0, CHECK(sp, 100, 0), "  and nothing on the PASID");
	EXPECT_RC(0, ATTACH(sp, 100, a), "HWPT with ALLOC_PASID: 0");
	EXPECT_RC(0, CHECK(sp, 100, a), "  and it is on the PASID");
	EXPECT_RC(0, DETACH(sp, 100), "detach");

	/* rid_rule */
	EXPECT_RC(0, rid_replace(sp, plain), "RID onto a HWPT without ALLOC_PASID");
	EXPECT_RC(-EINVAL, ATTACH(sp, 100, a),
		  "PASID while the RID's domain is not compat: EINVAL");
	EXPECT_RC(0, rid_replace(sp, a), "RID onto an ALLOC_PASID HWPT");
	EXPECT_RC(0, ATTACH(sp, 100, a), "then the PASID: 0");
	EXPECT_RC(-EINVAL, rid_replace(sp, plain),
		  "RID onto a non-compat HWPT with a PASID on: EINVAL");
	EXPECT_RC(0, rid_replace(sp, parent), "RID back onto its ALLOC_PASID parent: 0");
	EXPECT_RC(0, DETACH(sp, 100), "detach");
	EXPECT_RC(0, rid_replace(sp, plain), "no PASID on: RID onto the non-compat HWPT again");
	EXPECT_RC(0, rid_replace(sp, parent), "and back");

	/* non_pasid_device */
	EXPECT_RC(-EINVAL, ATTACH(st, 100, st_compat), "non-PASID device, RID not compat: EINVAL");

	/* replace: the kernel's two halves of the daemon's attach-or-replace */
	EXPECT_RC(-EINVAL, REPLACE(sp, 200, a), "replace on a free PASID: EINVAL");
	EXPECT_RC(0, ATTACH(sp, 200, a), "attach");
	EXPECT_RC(-EBUSY, ATTACH(sp, 200, a), "attach again, same HWPT: EBUSY");
	EXPECT_RC(-EBUSY, ATTACH(sp, 200, b), "attach again, another HWPT: EBUSY");
	EXPECT_RC(0, REPLACE(sp, 200, a), "replace with the same HWPT: 0");
	EXPECT_RC(0, REPLACE(sp, 200, b), "replace with another: 0");
	EXPECT_RC(0, CHECK(sp, 200, b), "  and it is on the PASID");
	EXPECT_RC(-EBUSY, destroy(b), "destroy the HWPT on the PASID: EBUSY");
	EXPECT_RC(0, DETACH(sp, 200), "detach");
	EXPECT_RC(0, destroy(b), "then destroy: 0");

	/* detach_nothing */
	EXPECT_RC(0, DETACH(sp, 100), "detach of nothing: 0");
	EXPECT_RC(0, DETACH(st, 100), "detach of nothing on the plain mock: 0");

	/* destroy_while_attached */
	EXPECT_RC(0, ATTACH(sp, 300, a), "one HWPT on two PASIDs (300)");
	EXPECT_RC(0, ATTACH(sp, 301, a), "  (301)");
	EXPECT_RC(-EBUSY, destroy(a), "destroy: EBUSY");
	EXPECT_RC(0, DETACH(sp, 300), "detach 300");
	EXPECT_RC(-EBUSY, destroy(a), "destroy with 301 on: EBUSY");
	EXPECT_RC(0, DETACH(sp, 301), "detach 301");

	/* width_and_rid_pasid */
	EXPECT_RC(-EINVAL, ATTACH(sp, 1u << WIDTH, a), "PASID 1 << width: EINVAL");
	EXPECT_RC(0, ATTACH(sp, (1u << WIDTH) - 1, a), "the last PASID: 0");
	EXPECT_RC(0, DETACH(sp, (1u << WIDTH) - 1), "detach it");

	/* parent_on_pasid */
	EXPECT_RC(0, ATTACH(sp, 400, parent), "the ALLOC_PASID nest parent on a PASID: 0");
	EXPECT_RC(0, REPLACE(sp, 400, a), "replaced by a nested HWPT: 0");
	EXPECT_RC(0, REPLACE(sp, 400, parent), "and back: 0");
	EXPECT_RC(0, DETACH(sp, 400), "detach");

	/* invalidate_on_pasid */
	EXPECT_RC(0, ATTACH(sp, 500, a), "nested HWPT on PASID 500");
	EXPECT_RC(0, invalidate_slot(a, 1), "invalidate its slot 1: one entry handled");
	EXPECT_RC(0, check_iotlb(a, 1, 0), "  slot 1 cleared");
	EXPECT_RC(0, check_iotlb(a, 0, IOMMU_TEST_IOTLB_DEFAULT), "  slot 0 kept");
	EXPECT_RC(0, DETACH(sp, 500), "detach");

	/* teardown: PASIDs off, then HWPTs, children first, then the devices */
	EXPECT_RC(0, CHECK(sp, 500, 0), "nothing left on PASID 500");
	EXPECT_RC(0, rid_replace(sp, ioas), "RID off the parent");
	EXPECT_RC(0, rid_replace(st, ioas), "plain RID off its parent");
	EXPECT_RC(0, destroy(a), "destroy a");
	EXPECT_RC(0, destroy(plain), "destroy plain");
	EXPECT_RC(0, destroy(st_compat), "destroy the plain mock's nested");
	EXPECT_RC(0, destroy(parent), "destroy the parent");
	EXPECT_RC(0, destroy(st_parent), "destroy the plain parent");
	EXPECT_RC(0, destroy(sp), "destroy the PASID mock");
	EXPECT_RC(0, destroy(st), "destroy the plain mock");
}

int main(void)
{
	const char *k = getenv("NESTD_KTEST_KERNEL");
	uint32_t ioas;

	fd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
	report(fd >= 0, "open /dev/iommu", fd >= 0 ? NULL : strerror(errno));
	if (fd < 0)
		return 1;
	ioas = ioas_alloc();
	report(ioas != 0, "IOMMU_IOAS_ALLOC", NULL);
	if (k && !strcmp(k, "7.x"))
		kernel_7(ioas);
	else
		kernel_612(ioas);
	destroy(ioas);
	close(fd);
	printf("# %d checks, %d failed\n", n_checks, n_failed);
	return n_failed ? 1 : 0;
}
