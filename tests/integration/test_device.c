/* SPDX-License-Identifier: MIT */
/*
 * Device hand-off (OpenDevice, CloseDevice, AdoptDevice) where no VFIO
 * device exists: the sim (it models page tables, not VFIO, so it hands out
 * no stand-in fd) and, in the kernel tier, the iommufd backend's selftest
 * mock devices (the kernel gives them no cdev). Both refuse with
 * -EOPNOTSUPP and say why; the gates in front (configured, allowed, free)
 * answer as for every device request; a refused request leaks no
 * descriptor on either side. The real hand-off, with a VFIO device doing
 * DMA, is the edu tier's (tests/kernel/ktest_edu.c).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness.h"

static unsigned other_uid(void)
{
	return getuid() == 4242 ? 4243 : 4242;
}

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* The reason iommu_nest_last_error() gives for a device without a VFIO fd. */
static void assert_no_fd_reason(struct iommu_nest *h)
{
	const char *why = iommu_nest_last_error(h);

	CU_ASSERT(strstr(why, "models no VFIO device") || strstr(why, "selftest mock device"));
}

static void test_open_refused(void)
{
	struct nestd *d = it_start(NULL);
	struct iommu_nest *h = it_connect(d, "dev-open");
	struct iommu_nest_device_info info;
	int before = open_fds(), fd = 1234;

	CU_ASSERT_EQUAL(iommu_nest_open_device(h, IT_ST0, &fd, &info), -EOPNOTSUPP);
	CU_ASSERT_EQUAL(fd, -1);
	assert_no_fd_reason(h);
	if (it_has_device(h, IT_VTD0)) {
		CU_ASSERT_EQUAL(iommu_nest_open_device(h, IT_VTD0, &fd, NULL), -EOPNOTSUPP);
		assert_no_fd_reason(h);
	}
	CU_ASSERT_EQUAL(open_fds(), before);
	/* Nothing was claimed: another client may still take the device. */
	CU_ASSERT_EQUAL(iommu_nest_close_device(h, IT_ST0), -ENOENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(iommu_nest_last_error(h), "not open by this client"));
	it_stop_ok(d);
}

static void test_gates(void)
{
	char body[256];
	struct nestd *d;
	struct iommu_nest *h;
	int fd;

	snprintf(body, sizeof(body), "[device %s]\nkind = selftest\nallow_users = %u\n", IT_ST1,
		 other_uid());
	d = it_start(body);
	h = it_connect(d, "dev-gates");
	CU_ASSERT_EQUAL(iommu_nest_open_device(h, "no-such-device", &fd, NULL), -ENODEV);
	CU_ASSERT_PTR_NOT_NULL(strstr(iommu_nest_last_error(h), "not configured"));
	CU_ASSERT_EQUAL(iommu_nest_open_device(h, IT_ST1, &fd, NULL), -EPERM);
	CU_ASSERT_EQUAL(iommu_nest_close_device(h, IT_ST1), -EPERM);
	CU_ASSERT_EQUAL(iommu_nest_close_device(h, "no-such-device"), -ENODEV);
	CU_ASSERT_EQUAL(iommu_nest_open_device(h, IT_ST0, NULL, NULL), -EINVAL);
	it_stop_ok(d);
}

/* A device another client holds (an attachment) is busy for OpenDevice too. */
static void test_busy(void)
{
	struct nestd *d = it_start(NULL);
	struct iommu_nest *a = it_connect(d, "dev-holder");
	struct iommu_nest *b = it_connect(d, "dev-other");
	uint32_t mine = it_alloc_st(a, IT_ST0, 1);
	int fd;

	CU_ASSERT_EQUAL_FATAL(iommu_nest_attach(a, IT_ST0, mine), 0);
	CU_ASSERT_EQUAL(iommu_nest_open_device(b, IT_ST0, &fd, NULL), -EBUSY);
	it_stop_ok(d);
}

static void test_adopt_refused(void)
{
	struct nestd *d = it_start(NULL);
	struct iommu_nest *h = it_connect(d, "dev-adopt");
	int memfd = memfd_create("not-a-vfio-cdev", MFD_CLOEXEC);
	int before;

	CU_ASSERT_FATAL(memfd >= 0);
	before = open_fds();
	CU_ASSERT_EQUAL(iommu_nest_adopt_device(h, IT_ST0, -1, NULL), -EBADF);
	/* A selftest device has no cdev to replace: refused before the fd is looked at. */
	CU_ASSERT_EQUAL(iommu_nest_adopt_device(h, IT_ST0, memfd, NULL), -EOPNOTSUPP);
	assert_no_fd_reason(h);
	CU_ASSERT_EQUAL(open_fds(), before);
	close(memfd);
	it_stop_ok(d);
}

/* AdoptDevice without its descriptor, on the raw socket: refused, the session lives on. */
static void test_adopt_without_fd(void)
{
	struct nestd *d = it_start(NULL);
	int fd = it_raw_connect(d);
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__AdoptDevice a = IOMMU_NEST__ADOPT_DEVICE__INIT;
	IommuNest__Reply *rep;

	it_raw_hello(fd);
	a.device = IT_ST0;
	req.body_case = IOMMU_NEST__REQUEST__BODY_ADOPT_DEVICE;
	req.adopt_device = &a;
	rep = it_raw_call(fd, &req, 8);
	CU_ASSERT_EQUAL(rep->status, -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(rep->error, "AdoptDevice needs exactly one descriptor"));
	iommu_nest__reply__free_unpacked(rep, NULL);
	it_raw_close(fd);
	it_stop_ok(d);
}

static const struct it_case cases[] = {
    {"open_refused", test_open_refused},
    {"gates", test_gates},
    {"busy", test_busy},
    {"adopt_refused", test_adopt_refused},
    {"adopt_without_fd", test_adopt_without_fd},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
	return it_main(argc, argv, "device", cases);
}
