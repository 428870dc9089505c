/* SPDX-License-Identifier: MIT */
/*
 * GetHwInfo: IOMMU_GET_HW_INFO of a device through the daemon. A VT-d
 * device reports the VT-d type with registers that say nesting, and an
 * erratum flag that agrees with what MapMemory does (read-only refused);
 * a selftest device reports what the kernel's mock does (regval
 * 0xdeadbeef, dirty tracking, no PASID); an unknown device is -ENODEV, a
 * device the caller is not allowed -EPERM, a device another client holds
 * is still answered (the host's hardware is no tenant's secret).
 *
 * Runs on the sim and, in the kernel tier, on the iommufd backend with the
 * kernel's selftest mock devices: the selftest cases must get the same
 * answer from the kernel as from the sim (6.12 and 7.x: 7.x adds the core's
 * "ATS not supported" bit). VT-d devices exist on the sim only.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness.h"

#define MEM_IOVA (16ULL << 20) /* inside the mock aperture too */
#define MIB	 (1ULL << 20)

/* VT-d extended capability bits a nesting-capable IOMMU has (intel/iommu.h ecap_*). */
#define ECAP_NEST (1ULL << 26)
#define ECAP_SMTS (1ULL << 43)
#define ECAP_FLTS (1ULL << 47)

static int memfd_of(uint64_t size)
{
	int fd = memfd_create("it-hwinfo", MFD_CLOEXEC);

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL_FATAL(ftruncate(fd, (off_t)size), 0);
	return fd;
}

/* The tests run as some uid; this one is certainly not it. */
static unsigned other_uid(void)
{
	return getuid() == 4242 ? 4243 : 4242;
}

/* Dirty tracking, and from 7.x on the core's "no ATS" bit (neither device kind has ATS). */
static uint64_t want_caps(const char *sim_kernel)
{
	return IOMMU_NEST_HW_CAP_DIRTY_TRACKING |
	       (it_kernel7_rules(sim_kernel) ? IOMMU_NEST_HW_CAP_PCI_ATS_NOT_SUPPORTED : 0);
}

static void test_vtd(void)
{
	struct nestd *d = it_start(NULL);
	struct iommu_nest *h = it_connect(d, "hwinfo-vtd");
	struct iommu_nest_hw_info info;
	int fd, want_ro;

	if (!it_has_device(h, IT_VTD0)) {
		it_stop_ok(d);
		IT_SKIP("no VT-d device");
	}
	CU_ASSERT_EQUAL_FATAL(iommu_nest_get_hw_info(h, IT_VTD0, &info), 0);
	CU_ASSERT_EQUAL(info.data_type, IOMMU_NEST_HW_INFO_TYPE_INTEL_VTD);
	CU_ASSERT_EQUAL(info.data_len, 24);
	CU_ASSERT_EQUAL(info.vtd.ecap_reg & (ECAP_NEST | ECAP_SMTS | ECAP_FLTS),
			ECAP_NEST | ECAP_SMTS | ECAP_FLTS);
	CU_ASSERT_NOT_EQUAL(info.vtd.cap_reg, 0);
	/* The raw bytes are the kernel's struct iommu_hw_info_vtd. */
	CU_ASSERT_EQUAL(memcmp(info.data, &info.vtd.flags, 4), 0);
	CU_ASSERT_EQUAL(memcmp(info.data + 8, &info.vtd.cap_reg, 8), 0);
	CU_ASSERT_EQUAL(memcmp(info.data + 16, &info.vtd.ecap_reg, 8), 0);
	CU_ASSERT(info.vtd.flags & IOMMU_NEST_HW_INFO_VTD_ERRATA_772415_SPR17);
	CU_ASSERT_EQUAL(info.capabilities, want_caps(NULL));
	CU_ASSERT_EQUAL(info.max_pasid_log2, 0);
	CU_ASSERT_EQUAL(info.selftest.regval, 0);

	/* The erratum flag and MapMemory agree: read-only is refused where it is set. */
	want_ro = info.vtd.flags & IOMMU_NEST_HW_INFO_VTD_ERRATA_772415_SPR17 ? -EINVAL : 0;
	fd = memfd_of(MIB);
	CU_ASSERT_EQUAL(
	    iommu_nest_map_memory(h, IT_VTD0, MEM_IOVA, MIB, fd, 0, IOMMU_NEST_MAP_READABLE),
	    want_ro);
	CU_ASSERT_EQUAL(iommu_nest_map_memory(h, IT_VTD0, MEM_IOVA, MIB, fd, 0,
					      IOMMU_NEST_MAP_READABLE | IOMMU_NEST_MAP_WRITEABLE),
			0);
	close(fd);
	it_stop_ok(d);
}

static void test_selftest(void)
{
	struct nestd *d = it_start(NULL);
	struct iommu_nest *h = it_connect(d, "hwinfo-st");
	struct iommu_nest_hw_info info;
	const uint32_t regval = 0xdeadbeef;
	int fd;

	CU_ASSERT_EQUAL_FATAL(iommu_nest_get_hw_info(h, IT_ST0, &info), 0);
	CU_ASSERT_EQUAL(info.data_type, IOMMU_NEST_HW_INFO_TYPE_SELFTEST);
	CU_ASSERT_EQUAL(info.data_len, 8);
	CU_ASSERT_EQUAL(info.selftest.regval, 0xdeadbeef);
	CU_ASSERT_EQUAL(info.selftest.flags, 0);
	CU_ASSERT_EQUAL(memcmp(info.data + 4, &regval, 4), 0);
	/* mock_domain_capable(): dirty tracking; the mock device has no PASID (nor ATS). */
	CU_ASSERT_EQUAL(info.capabilities, want_caps(NULL));
	CU_ASSERT_EQUAL(info.max_pasid_log2, 0);
	CU_ASSERT_EQUAL(info.vtd.cap_reg, 0);
	/* Past what the kernel has, the buffer is zero. */
	for (size_t i = 8; i < sizeof(info.data); i++)
		CU_ASSERT_EQUAL_FATAL(info.data[i], 0);

	/* No erratum on the mock: a read-only map is taken. */
	fd = memfd_of(MIB);
	CU_ASSERT_EQUAL(
	    iommu_nest_map_memory(h, IT_ST0, MEM_IOVA, MIB, fd, 0, IOMMU_NEST_MAP_READABLE), 0);
	close(fd);
	it_stop_ok(d);
}

/* The sim under 7.x rules answers as a 7.x kernel: the same, plus "no ATS". */
static void test_sim_kernel7(void)
{
	struct nestd *d = it_start("[daemon]\nsim_kernel = 7.0\n");
	struct iommu_nest *h = it_connect(d, "hwinfo-7");
	struct iommu_nest_hw_info info;

	if (strcmp(iommu_nest_backend(h), "sim")) {
		it_stop_ok(d);
		IT_SKIP("sim_kernel is the sim's");
	}
	CU_ASSERT_EQUAL_FATAL(iommu_nest_get_hw_info(h, IT_ST0, &info), 0);
	CU_ASSERT_EQUAL(info.selftest.regval, 0xdeadbeef);
	CU_ASSERT_EQUAL(info.capabilities, want_caps("7.0"));
	CU_ASSERT_EQUAL_FATAL(iommu_nest_get_hw_info(h, IT_VTD0, &info), 0);
	CU_ASSERT(info.vtd.flags & IOMMU_NEST_HW_INFO_VTD_ERRATA_772415_SPR17);
	CU_ASSERT_EQUAL(info.capabilities, want_caps("7.0"));
	it_stop_ok(d);
}

static void test_unknown_device(void)
{
	struct nestd *d = it_start(NULL);
	struct iommu_nest *h = it_connect(d, "hwinfo-nodev");
	struct iommu_nest_hw_info info;

	CU_ASSERT_EQUAL(iommu_nest_get_hw_info(h, "no-such-device", &info), -ENODEV);
	CU_ASSERT_PTR_NOT_NULL(strstr(iommu_nest_last_error(h), "not configured"));
	CU_ASSERT_EQUAL(iommu_nest_get_hw_info(h, "", &info), -ENODEV);
	it_stop_ok(d);
}

static void test_not_allowed(void)
{
	char body[256];
	struct nestd *d;
	struct iommu_nest *h;
	struct iommu_nest_hw_info info;

	snprintf(body, sizeof(body), "[device %s]\nkind = selftest\nallow_users = %u\n", IT_ST1,
		 other_uid());
	d = it_start(body);
	h = it_connect(d, "hwinfo-eperm");
	CU_ASSERT_EQUAL(iommu_nest_get_hw_info(h, IT_ST1, &info), -EPERM);
	CU_ASSERT_EQUAL(it_stats(h).denials, 1);
	/* The device it is allowed still answers. */
	CU_ASSERT_EQUAL(iommu_nest_get_hw_info(h, IT_ST0, &info), 0);
	it_stop_ok(d);
}

/* A device another client holds: busy for attach, still described. */
static void test_held_by_other(void)
{
	struct nestd *d = it_start(NULL);
	struct iommu_nest *a = it_connect(d, "hwinfo-holder");
	struct iommu_nest *b = it_connect(d, "hwinfo-other");
	struct iommu_nest_hw_info info;
	uint32_t mine = it_alloc_st(a, IT_ST0, 1), theirs = it_alloc_st(b, IT_ST0, 1);

	CU_ASSERT_EQUAL_FATAL(iommu_nest_attach(a, IT_ST0, mine), 0);
	CU_ASSERT_EQUAL(iommu_nest_attach(b, IT_ST0, theirs), -EBUSY);
	CU_ASSERT_EQUAL(iommu_nest_get_hw_info(b, IT_ST0, &info), 0);
	CU_ASSERT_EQUAL(info.data_type, IOMMU_NEST_HW_INFO_TYPE_SELFTEST);
	CU_ASSERT_EQUAL(info.selftest.regval, 0xdeadbeef);
	it_stop_ok(d);
}

static void test_before_hello(void)
{
	struct nestd *d = it_start(NULL);
	int fd = it_raw_connect(d);
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__GetHwInfo g = IOMMU_NEST__GET_HW_INFO__INIT;
	IommuNest__Reply *rep;

	g.device = IT_ST0;
	req.body_case = IOMMU_NEST__REQUEST__BODY_GET_HW_INFO;
	req.get_hw_info = &g;
	rep = it_raw_call(fd, &req, 7);
	CU_ASSERT_EQUAL(rep->status, -EPROTO);
	iommu_nest__reply__free_unpacked(rep, NULL);
	it_stop_ok(d);
}

static const struct it_case cases[] = {
    {"vtd", test_vtd},
    {"selftest", test_selftest},
    {"sim_kernel7", test_sim_kernel7},
    {"unknown_device", test_unknown_device},
    {"not_allowed", test_not_allowed},
    {"held_by_other", test_held_by_other},
    {"before_hello", test_before_hello},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
	return it_main(argc, argv, "hwinfo", cases);
}
