/* SPDX-License-Identifier: MIT */
/*
 * Kernel smoke test, run inside the test VM (Linux 6.12 or 7.x,
 * CONFIG_IOMMUFD_TEST) against the real /dev/iommu through the iommufd
 * backend. Where the two kernels answer differently, the expectation is
 * the booted tier's (NESTD_KTEST_KERNEL, set by run-qemu.sh). It follows the
 * kernel's own nested-HWPT selftest (tools/testing/selftests/iommu/iommufd.c,
 * alloc_hwpt_nested) and asserts exact errnos and entry counts, plus the
 * backend's own behaviour: open errors, adoption of an fd, device bookkeeping.
 *
 * Output is TAP-like ("ok N - ..." / "not ok N - ..."); exit status 0 when
 * every check passed, 1 otherwise.
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
#include <sys/wait.h>
#include <unistd.h>

#include "backend/backend.h"
#include "backend/iommufd/iommufd.h"
#include "util/config.h"
#include "backend/iommufd_test_uapi.h"
#include "backend/iommufd_uapi.h"

#include "ktest_tap.h"

#define EXPECT_TRUE(cond, what) report((cond), what, (cond) ? NULL : #cond " is false")

static struct backend *be;

/* The rules of the kernel the tier booted (run-qemu.sh --source). */
static enum kernel_rules tier_rules(void)
{
	const char *k = getenv("NESTD_KTEST_KERNEL");

	return k && !strcmp(k, "7.x") ? KERNEL_RULES_7 : KERNEL_RULES_6_12;
}

static void config_with(struct config *cfg, const char *path, int n, const char *const *names,
			const enum device_kind *kinds, const char *const *paths)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->backend, sizeof(cfg->backend), "iommufd");
	snprintf(cfg->iommufd_path, sizeof(cfg->iommufd_path), "%s", path);
	for (int i = 0; i < n; i++) {
		snprintf(cfg->devices[i].name, sizeof(cfg->devices[i].name), "%s", names[i]);
		cfg->devices[i].kind = kinds[i];
		if (paths && paths[i])
			snprintf(cfg->devices[i].path, sizeof(cfg->devices[i].path), "%s",
				 paths[i]);
	}
	cfg->n_devices = (uint32_t)n;
}

static int inv(uint32_t hwpt, uint32_t type, const void *entries, uint32_t len, uint32_t *num)
{
	struct backend_inv in = {
	    .hwpt_id = hwpt,
	    .data_type = type,
	    .entry_len = len,
	    .entry_num = *num,
	    .entries = entries,
	};
	int rc = be->ops->invalidate(be, &in);

	*num = in.entry_num;
	return rc;
}

static int inv_st(uint32_t hwpt, const struct iommu_hwpt_invalidate_selftest *e, uint32_t n,
		  uint32_t *num)
{
	*num = n;
	return inv(hwpt, IOMMU_HWPT_INVALIDATE_DATA_SELFTEST, e, sizeof(*e), num);
}

static int alloc_st(const char *dev, uint32_t flags, uint32_t type, const void *data, uint32_t len,
		    uint32_t *id, uint32_t *parent)
{
	struct backend_alloc req = {
	    .data_type = type, .flags = flags, .data = data, .data_len = len};

	return be->ops->alloc_nested(be, dev, &req, id, parent);
}

/* Checks all four mock IOTLB slots of hwpt against want[]. */
static void expect_iotlb(uint32_t hwpt, const uint32_t want[4], const char *what)
{
	char name[128];

	for (uint32_t i = 0; i < MOCK_NESTED_DOMAIN_IOTLB_NUM; i++) {
		snprintf(name, sizeof(name), "%s: hwpt %u iotlb[%u] == %#x", what, hwpt, i,
			 want[i]);
		EXPECT_RC(0, be->ops->check_iotlb(be, hwpt, i, want[i]), name);
	}
}

static int raw_destroy(uint32_t id)
{
	struct iommu_destroy cmd = {.size = sizeof(cmd), .id = id};

	return ioctl(backend_iommufd_fd(be), IOMMU_DESTROY, &cmd) ? -errno : 0;
}

static void test_open_errors(void)
{
	static const char *const one[] = {"mock0"};
	static const enum device_kind st[] = {DEVICE_KIND_SELFTEST};
	static const char *const two[] = {"mock0", "gpu0"};
	static const enum device_kind st_vtd[] = {DEVICE_KIND_SELFTEST, DEVICE_KIND_VTD};
	static const char *const vpaths[] = {NULL, "/dev/vfio/devices/vfio-nestd-absent"};
	struct config cfg;
	struct backend *b = NULL;
	const char *msg = NULL;
	int rc;

	config_with(&cfg, "/dev/iommu-nestd-absent", 1, one, st, NULL);
	rc = backend_iommufd_open(&cfg, &b, &msg);
	EXPECT_RC(-ENOENT, rc, "open: absent device node");
	EXPECT_TRUE(msg && strstr(msg, "/dev/iommu-nestd-absent") && strstr(msg, "CONFIG_IOMMUFD"),
		    "open: ENOENT message names the node and CONFIG_IOMMUFD");
	printf("# message: %s\n", msg ? msg : "(none)");

	/* EACCES, as an unprivileged user (/dev/iommu is root:root 0660). */
	if (getuid() == 0) {
		int pfd[2] = {-1, -1};
		pid_t pid = pipe(pfd) == 0 ? fork() : -1;

		if (pid == 0) {
			char buf[600] = "";
			struct backend *cb = NULL;
			const char *cm = NULL;
			int crc;

			close(pfd[0]);
			if (setgid(65534) || setuid(65534))
				_exit(2);
			config_with(&cfg, "/dev/iommu", 1, one, st, NULL);
			crc = backend_iommufd_open(&cfg, &cb, &cm);
			snprintf(buf, sizeof(buf), "%d %s", -crc, cm ? cm : "");
			if (write(pfd[1], buf, strlen(buf)) < 0)
				_exit(3);
			_exit(0);
		} else if (pid > 0) {
			char buf[600] = "";
			ssize_t n;
			int st_;

			close(pfd[1]);
			n = read(pfd[0], buf, sizeof(buf) - 1);
			buf[n > 0 ? n : 0] = '\0';
			close(pfd[0]);
			waitpid(pid, &st_, 0);
			EXPECT_TRUE(atoi(buf) == EACCES, "open as uid 65534: EACCES");
			EXPECT_TRUE(strstr(buf, "/dev/iommu") && strstr(buf, "read and write"),
				    "open: EACCES message names the node and the permission");
			printf("# message: %s\n", buf);
		}
	}

	/* A device that fails to set up unwinds the whole open. */
	config_with(&cfg, "/dev/iommu", 2, two, st_vtd, vpaths);
	msg = NULL;
	rc = backend_iommufd_open(&cfg, &b, &msg);
	EXPECT_RC(-ENOENT, rc, "open: absent VFIO cdev fails the open");
	EXPECT_TRUE(msg && strstr(msg, "gpu0") && strstr(msg, "VFIO"),
		    "open: VFIO message names the device");
	printf("# message: %s\n", msg ? msg : "(none)");

	/* Adopting something that is not an iommufd. */
	msg = NULL;
	config_with(&cfg, "", 1, one, st, NULL);
	rc = backend_iommufd_adopt(open("/dev/null", O_RDWR | O_CLOEXEC), &cfg, &b, &msg);
	EXPECT_RC(-ENOTTY, rc, "adopt: /dev/null is refused");
	EXPECT_TRUE(msg && strstr(msg, "not an iommufd"), "adopt: message says why");
}

static void test_nested(void)
{
	static const char *const names[] = {"mock0", "mock1"};
	static const enum device_kind kinds[] = {DEVICE_KIND_SELFTEST, DEVICE_KIND_SELFTEST};
	const uint32_t dflt = IOMMU_TEST_IOTLB_DEFAULT;
	struct iommu_hwpt_selftest data = {.iotlb = IOMMU_TEST_IOTLB_DEFAULT};
	struct iommu_hwpt_invalidate_selftest reqs[2];
	struct backend_caps caps;
	struct config cfg;
	const char *msg = NULL;
	uint32_t nested[2] = {0, 0}, parent = 0, parent2 = 0, p0 = 0, p1 = 0, att = 0;
	uint32_t other = 0, num, tmp, dev0 = 0;
	const int wrong_obj = kernel_rules_inv_wrong_object(tier_rules());
	int rc;

	config_with(&cfg, "/dev/iommu", 2, names, kinds, NULL);
	rc = backend_iommufd_open(&cfg, &be, &msg);
	EXPECT_RC(0, rc, "open /dev/iommu with two selftest devices");
	if (rc) {
		printf("# %s\n", msg ? msg : "");
		return;
	}
	EXPECT_TRUE(strcmp(be->ops->name, "iommufd") == 0, "backend name");
	EXPECT_EQ(2, be->ops->n_devices(be), "n_devices");
	EXPECT_TRUE(strcmp(be->ops->device_name(be, 0), "mock0") == 0 &&
			strcmp(be->ops->device_name(be, 1), "mock1") == 0 &&
			be->ops->device_name(be, 2) == NULL,
		    "device names in config order");

	be->ops->get_caps(be, &caps);
	EXPECT_TRUE(caps.n_hwpt_types == 1 && caps.hwpt_types[0] == IOMMU_HWPT_DATA_SELFTEST,
		    "caps: hwpt type SELFTEST (from IOMMU_GET_HW_INFO)");
	EXPECT_TRUE(caps.n_inv_types == 1 &&
			caps.inv_types[0] == IOMMU_HWPT_INVALIDATE_DATA_SELFTEST,
		    "caps: invalidate type SELFTEST");
	EXPECT_TRUE(caps.check_iotlb && !caps.sim_model && !caps.fault_inject,
		    "caps: check_iotlb only");
	EXPECT_EQ(tier_rules(), caps.rules, "caps: the probe found the booted kernel's rules");
	EXPECT_TRUE(be->ops->sim_populate == NULL && be->ops->sim_query == NULL &&
			be->ops->inject_fault == NULL,
		    "sim/fault ops are NULL");

	EXPECT_RC(0, backend_iommufd_device_ids(be, "mock0", &dev0, &p0, &att),
		  "device ids of mock0");
	EXPECT_EQ(p0, att, "mock0 starts attached to its nest parent");
	EXPECT_RC(0, backend_iommufd_device_ids(be, "mock1", NULL, &p1, NULL),
		  "device ids of mock1");
	EXPECT_TRUE(p0 && p1 && p0 != p1, "each device has its own nest parent");

	/* Negative allocations, exactly as the kernel answers them. */
	EXPECT_RC(-ENOENT,
		  alloc_st("nope", 0, IOMMU_HWPT_DATA_SELFTEST, &data, sizeof(data), &tmp, NULL),
		  "alloc: unknown device");
	EXPECT_RC(-EINVAL,
		  alloc_st("mock0", 0, IOMMU_HWPT_DATA_NONE, &data, sizeof(data), &tmp, NULL),
		  "alloc: data type NONE on a parent");
	EXPECT_RC(
	    -EOPNOTSUPP,
	    alloc_st("mock0", 0, IOMMU_HWPT_DATA_SELFTEST + 1, &data, sizeof(data), &tmp, NULL),
	    "alloc: unknown data type");
	EXPECT_RC(-EOPNOTSUPP,
		  alloc_st("mock0", 0, IOMMU_HWPT_DATA_VTD_S1, &data, sizeof(data), &tmp, NULL),
		  "alloc: VTD_S1 data on the mock");
	EXPECT_RC(-EINVAL, alloc_st("mock0", 0, IOMMU_HWPT_DATA_SELFTEST, &data, 0, &tmp, NULL),
		  "alloc: data_len below the minimum");
	EXPECT_RC(-EFAULT,
		  alloc_st("mock0", 0, IOMMU_HWPT_DATA_SELFTEST, NULL, sizeof(data), &tmp, NULL),
		  "alloc: NULL data");
	EXPECT_RC(-EOPNOTSUPP,
		  alloc_st("mock0", IOMMU_HWPT_ALLOC_NEST_PARENT, IOMMU_HWPT_DATA_SELFTEST, &data,
			   sizeof(data), &tmp, NULL),
		  "alloc: NEST_PARENT flag on a nested HWPT");

	/* Two nested HWPTs sharing mock0's parent. */
	EXPECT_RC(0,
		  alloc_st("mock0", 0, IOMMU_HWPT_DATA_SELFTEST, &data, sizeof(data), &nested[0],
			   &parent),
		  "alloc nested[0] on mock0");
	EXPECT_RC(0,
		  alloc_st("mock0", 0, IOMMU_HWPT_DATA_SELFTEST, &data, sizeof(data), &nested[1],
			   &parent2),
		  "alloc nested[1] on mock0");
	EXPECT_TRUE(parent == p0 && parent2 == p0, "out_parent_id is mock0's parent");
	EXPECT_TRUE(nested[0] && nested[1] && nested[0] != nested[1], "distinct ids");
	{
		const uint32_t all_default[4] = {dflt, dflt, dflt, dflt};

		expect_iotlb(nested[0], all_default, "fresh");
		expect_iotlb(nested[1], all_default, "fresh");
	}
	EXPECT_RC(-EINVAL, be->ops->check_iotlb(be, nested[0], 0, 0),
		  "check_iotlb: a mismatch is EINVAL");
	EXPECT_RC(-EINVAL, be->ops->check_iotlb(be, nested[0], 4, dflt),
		  "check_iotlb: slot 4 is EINVAL");

	/* Parents cannot go while children exist: the kernel, and the backend. */
	EXPECT_RC(-EBUSY, raw_destroy(p0), "kernel: destroy a parent with children: EBUSY");
	EXPECT_RC(-EBUSY, be->ops->destroy(be, p0), "backend: destroy a parent: EBUSY");
	EXPECT_RC(-ENOENT, be->ops->destroy(be, 0xfffff), "backend: destroy an unknown id");

	memset(reqs, 0, sizeof(reqs));
	/*
	 * Invalidation only works on nested HWPTs. 6.12 looks the id up as
	 * one (ENOENT); 7.x looks up any object and refuses a paging HWPT or
	 * a device object with EINVAL.
	 */
	num = 1;
	EXPECT_RC(wrong_obj,
		  inv(p0, IOMMU_HWPT_INVALIDATE_DATA_SELFTEST, reqs, sizeof(reqs[0]), &num),
		  "invalidate the parent: ENOENT (6.12) / EINVAL (7.x)");
	EXPECT_EQ(0, num, "... entry_num out 0");
	num = 0;
	EXPECT_RC(wrong_obj,
		  inv(p0, IOMMU_HWPT_INVALIDATE_DATA_SELFTEST, reqs, sizeof(reqs[0]), &num),
		  "probe the parent: ENOENT (6.12) / EINVAL (7.x)");
	num = 1;
	EXPECT_RC(wrong_obj,
		  inv(dev0, IOMMU_HWPT_INVALIDATE_DATA_SELFTEST, reqs, sizeof(reqs[0]), &num),
		  "invalidate a device object: ENOENT (6.12) / EINVAL (7.x)");
	EXPECT_EQ(0, num, "... entry_num out 0");
	num = 1;
	EXPECT_RC(-ENOENT,
		  inv(0xfffff, IOMMU_HWPT_INVALIDATE_DATA_SELFTEST, reqs, sizeof(reqs[0]), &num),
		  "invalidate an unknown id: ENOENT");

	/* Probe. */
	num = 0;
	EXPECT_RC(0,
		  inv(nested[0], IOMMU_HWPT_INVALIDATE_DATA_SELFTEST, reqs, sizeof(reqs[0]), &num),
		  "probe: entry_num 0, right type");
	EXPECT_EQ(0, num, "... entry_num out 0");
	num = 0;
	EXPECT_RC(0, inv(nested[0], IOMMU_HWPT_INVALIDATE_DATA_SELFTEST, NULL, 0, &num),
		  "probe: entry_num 0 ignores data_uptr and entry_len");
	num = 0;
	EXPECT_RC(-EINVAL,
		  inv(nested[0], IOMMU_HWPT_INVALIDATE_DATA_SELFTEST_INVALID, reqs, sizeof(reqs[0]),
		      &num),
		  "probe: entry_num 0, wrong type: EINVAL");
	num = 0;
	EXPECT_RC(-EINVAL,
		  inv(nested[0], IOMMU_HWPT_INVALIDATE_DATA_VTD_S1, reqs, sizeof(reqs[0]), &num),
		  "probe: VTD_S1 on a selftest HWPT: EINVAL");

	/* Argument errors. */
	num = 1;
	EXPECT_RC(-EINVAL,
		  inv(nested[0], IOMMU_HWPT_INVALIDATE_DATA_SELFTEST_INVALID, reqs, sizeof(reqs[0]),
		      &num),
		  "invalid data type: EINVAL");
	EXPECT_EQ(0, num, "... entry_num out 0");
	num = 1;
	EXPECT_RC(
	    -EINVAL,
	    inv(nested[0], IOMMU_HWPT_INVALIDATE_DATA_SELFTEST, reqs, sizeof(reqs[0]) + 1, &num),
	    "entry_len above the kernel's struct: EINVAL");
	EXPECT_EQ(0, num, "... entry_num out 0");
	num = 1;
	EXPECT_RC(-EINVAL, inv(nested[0], IOMMU_HWPT_INVALIDATE_DATA_SELFTEST, reqs, 1, &num),
		  "entry_len below the minimum: EINVAL");
	num = 1;
	EXPECT_RC(-EINVAL, inv(nested[0], IOMMU_HWPT_INVALIDATE_DATA_SELFTEST, reqs, 0, &num),
		  "entry_len 0: EINVAL");
	num = 1;
	EXPECT_RC(-EINVAL,
		  inv(nested[0], IOMMU_HWPT_INVALIDATE_DATA_SELFTEST, NULL, sizeof(reqs[0]), &num),
		  "NULL data_uptr with entries: EINVAL");
	num = 1;
	EXPECT_RC(-EINVAL, inv(nested[0], IOMMU_HWPT_INVALIDATE_DATA_SELFTEST, reqs, 4097, &num),
		  "entry_len > PAGE_SIZE: EINVAL");
	num = IOMMU_HWPT_INVALIDATE_ENTRY_NUM_MAX + 1;
	EXPECT_RC(-EINVAL,
		  inv(nested[0], IOMMU_HWPT_INVALIDATE_DATA_SELFTEST, reqs, sizeof(reqs[0]), &num),
		  "entry_num > 2^19: EINVAL");
	EXPECT_EQ(0, num, "... entry_num out 0");
	{
		struct backend_inv r = {
		    .hwpt_id = nested[0],
		    .data_type = IOMMU_HWPT_INVALIDATE_DATA_SELFTEST,
		    .reserved = 1,
		    .entry_len = sizeof(reqs[0]),
		    .entry_num = 1,
		    .entries = reqs,
		};

		EXPECT_RC(-EOPNOTSUPP, be->ops->invalidate(be, &r),
			  "non-zero reserved word: EOPNOTSUPP");
		EXPECT_EQ(0, r.entry_num, "... entry_num out 0");
	}

	/* Entry errors. */
	reqs[0] = (struct iommu_hwpt_invalidate_selftest){.flags = 0xffffffff};
	EXPECT_RC(-EOPNOTSUPP, inv_st(nested[0], reqs, 1, &num), "invalid flags: EOPNOTSUPP");
	EXPECT_EQ(0, num, "... entry_num out 0");
	reqs[0] = (struct iommu_hwpt_invalidate_selftest){.iotlb_id =
							      MOCK_NESTED_DOMAIN_IOTLB_ID_MAX + 1};
	EXPECT_RC(-EINVAL, inv_st(nested[0], reqs, 1, &num), "iotlb_id 4: EINVAL");
	EXPECT_EQ(0, num, "... entry_num out 0");
	{
		const uint32_t all_default[4] = {dflt, dflt, dflt, dflt};

		expect_iotlb(nested[0], all_default, "after rejected entries");
	}

	/* Partial failures: the first entry takes effect, the second stops it. */
	reqs[0] = (struct iommu_hwpt_invalidate_selftest){.iotlb_id = 0};
	reqs[1] = (struct iommu_hwpt_invalidate_selftest){.flags = 0xffffffff, .iotlb_id = 1};
	EXPECT_RC(-EOPNOTSUPP, inv_st(nested[0], reqs, 2, &num),
		  "partial: 2nd entry bad flags: EOPNOTSUPP");
	EXPECT_EQ(1, num, "... entry_num out 1");
	{
		const uint32_t want[4] = {0, dflt, dflt, dflt};

		expect_iotlb(nested[0], want, "partial");
	}
	reqs[1] = (struct iommu_hwpt_invalidate_selftest){.iotlb_id =
							      MOCK_NESTED_DOMAIN_IOTLB_ID_MAX + 1};
	EXPECT_RC(-EINVAL, inv_st(nested[0], reqs, 2, &num),
		  "partial: 2nd entry iotlb_id 4: EINVAL");
	EXPECT_EQ(1, num, "... entry_num out 1");

	/* Successes. */
	reqs[0] = (struct iommu_hwpt_invalidate_selftest){.iotlb_id = 1};
	EXPECT_RC(0, inv_st(nested[0], reqs, 1, &num), "invalidate slot 1");
	EXPECT_EQ(1, num, "... entry_num out 1");
	{
		const uint32_t want[4] = {0, 0, dflt, dflt};

		expect_iotlb(nested[0], want, "slot 1");
	}
	reqs[0] = (struct iommu_hwpt_invalidate_selftest){.iotlb_id = 2};
	reqs[1] = (struct iommu_hwpt_invalidate_selftest){.iotlb_id = 3};
	EXPECT_RC(0, inv_st(nested[0], reqs, 2, &num), "invalidate slots 2 and 3");
	EXPECT_EQ(2, num, "... entry_num out 2");
	{
		const uint32_t zero[4] = {0, 0, 0, 0};

		expect_iotlb(nested[0], zero, "slots 2,3");
	}
	/*
	 * iommufd_test.h says FLAG_ALL ignores iotlb_id, but the mock checks
	 * iotlb_id > 3 before it looks at FLAG_ALL: the range still applies.
	 */
	reqs[0] = (struct iommu_hwpt_invalidate_selftest){.flags = IOMMU_TEST_INVALIDATE_FLAG_ALL,
							  .iotlb_id =
							      MOCK_NESTED_DOMAIN_IOTLB_ID_MAX + 1};
	EXPECT_RC(-EINVAL, inv_st(nested[1], reqs, 1, &num), "FLAG_ALL with iotlb_id 4: EINVAL");
	EXPECT_EQ(0, num, "... entry_num out 0");
	reqs[0] = (struct iommu_hwpt_invalidate_selftest){.flags = IOMMU_TEST_INVALIDATE_FLAG_ALL,
							  .iotlb_id = 3};
	EXPECT_RC(0, inv_st(nested[1], reqs, 1, &num), "FLAG_ALL on nested[1]");
	EXPECT_EQ(1, num, "... entry_num out 1");
	{
		const uint32_t zero[4] = {0, 0, 0, 0};

		expect_iotlb(nested[1], zero, "FLAG_ALL");
	}

	/* A large batch, then one that fails deep inside. */
	{
		enum { N = 4096, BAD = 3000 };
		struct iommu_hwpt_invalidate_selftest *big = calloc(N, sizeof(*big));

		for (uint32_t i = 0; big && i < N; i++)
			big[i].iotlb_id = i % 4;
		EXPECT_RC(0, inv_st(nested[0], big, N, &num), "batch of 4096 entries");
		EXPECT_EQ(N, num, "... entry_num out 4096");
		if (big)
			big[BAD].flags = 2;
		EXPECT_RC(-EOPNOTSUPP, inv_st(nested[0], big, N, &num),
			  "batch of 4096, entry 3000 bad: EOPNOTSUPP");
		EXPECT_EQ(BAD, num, "... entry_num out 3000");
		free(big);
	}

	/* Attach / replace / detach and EBUSY on destroy while attached. */
	EXPECT_RC(-ENOENT, be->ops->attach(be, "mock0", p1), "attach to a parent: refused");
	EXPECT_RC(-ENOENT, be->ops->attach(be, "nope", nested[0]), "attach unknown device");
	EXPECT_RC(0, be->ops->attach(be, "mock0", nested[0]), "attach mock0 to nested[0]");
	backend_iommufd_device_ids(be, "mock0", NULL, NULL, &att);
	EXPECT_EQ(nested[0], att, "... attached_id");
	EXPECT_RC(-EBUSY, be->ops->destroy(be, nested[0]), "destroy attached nested[0]: EBUSY");
	EXPECT_RC(0, be->ops->attach(be, "mock0", nested[1]), "replace with nested[1]");
	EXPECT_RC(-EBUSY, be->ops->destroy(be, nested[1]), "destroy attached nested[1]: EBUSY");
	EXPECT_RC(0, be->ops->destroy(be, nested[0]), "destroy detached nested[0]");
	EXPECT_RC(-ENOENT, be->ops->destroy(be, nested[0]), "destroy nested[0] again: ENOENT");
	num = 0;
	EXPECT_RC(-ENOENT,
		  inv(nested[0], IOMMU_HWPT_INVALIDATE_DATA_SELFTEST, reqs, sizeof(reqs[0]), &num),
		  "invalidate a destroyed HWPT: ENOENT");
	EXPECT_RC(0, be->ops->detach(be, "mock0"), "detach mock0 (back to its parent)");
	backend_iommufd_device_ids(be, "mock0", NULL, NULL, &att);
	EXPECT_EQ(p0, att, "... attached to the parent again");
	EXPECT_RC(0, be->ops->destroy(be, nested[1]), "destroy nested[1]");

	/* The second device, on its own parent. */
	EXPECT_RC(
	    0, alloc_st("mock1", 0, IOMMU_HWPT_DATA_SELFTEST, &data, sizeof(data), &other, &parent),
	    "alloc nested on mock1");
	EXPECT_EQ(p1, parent, "... on mock1's parent");
	EXPECT_RC(0, be->ops->attach(be, "mock1", other), "attach mock1");
	reqs[0] = (struct iommu_hwpt_invalidate_selftest){.iotlb_id = 2};
	EXPECT_RC(0, inv_st(other, reqs, 1, &num), "invalidate on mock1's nested HWPT");
	{
		const uint32_t want[4] = {dflt, dflt, 0, dflt};

		expect_iotlb(other, want, "mock1");
	}
	/* Left attached on purpose: close must tear it down. */

	be->ops->close(be);
	be = NULL;
	report(true, "close with an attached nested HWPT", NULL);
}

static void test_adopt(void)
{
	static const char *const names[] = {"m"};
	static const enum device_kind kinds[] = {DEVICE_KIND_SELFTEST};
	struct iommu_hwpt_selftest data = {.iotlb = 7};
	struct iommu_hwpt_invalidate_selftest all = {.flags = IOMMU_TEST_INVALIDATE_FLAG_ALL};
	struct config cfg;
	const char *msg = NULL;
	uint32_t id = 0, num;
	int fd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
	int rc;

	EXPECT_TRUE(fd >= 0, "open /dev/iommu for adoption");
	if (fd < 0)
		return;
	config_with(&cfg, "/nonexistent", 1, names, kinds, NULL); /* path unused */
	rc = backend_iommufd_adopt(fd, &cfg, &be, &msg);
	EXPECT_RC(0, rc, "adopt an open iommufd");
	if (rc) {
		printf("# %s\n", msg ? msg : "");
		return;
	}
	EXPECT_EQ(fd, backend_iommufd_fd(be), "the adopted fd is the backend's");
	EXPECT_RC(0, alloc_st("m", 0, IOMMU_HWPT_DATA_SELFTEST, &data, sizeof(data), &id, NULL),
		  "adopted: alloc nested");
	{
		const uint32_t want[4] = {7, 7, 7, 7};

		expect_iotlb(id, want, "adopted, iotlb seeded 7");
	}
	EXPECT_RC(0, inv_st(id, &all, 1, &num), "adopted: FLAG_ALL");
	{
		const uint32_t zero[4] = {0, 0, 0, 0};

		expect_iotlb(id, zero, "adopted, flushed");
	}
	be->ops->close(be);
	be = NULL;
	EXPECT_TRUE(fcntl(fd, F_GETFD) == -1 && errno == EBADF, "close closed the adopted fd");
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	test_open_errors();
	test_nested();
	test_adopt();
	printf("1..%d\n# %d of %d checks failed\n", n_checks, n_failed, n_checks);
	return n_failed ? 1 : 0;
}
