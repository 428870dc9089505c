/* SPDX-License-Identifier: MIT */
/*
 * Dirty tracking of a device's nest parent (SetDirtyTracking,
 * GetDirtyBitmap, the test-only SetDirty) through the daemon: bits the
 * test op sets read back bit-exact, NO_CLEAR keeps them and a read clears
 * them; tracking off, a bad page_size or range get the kernel's errnos; a
 * device another client holds is -EBUSY to anyone else; the bitmap's
 * memfd must be sealed against shrinking and large enough.
 *
 * Runs on the sim and, in the kernel tier, on the iommufd backend with the
 * kernel's selftest mock devices (IOMMU_TEST_OP_DIRTY): the same answers.
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
#define PG	 4096ULL
#define NPAGES	 (MIB / PG)

/* Guest memory, mapped writable at MEM_IOVA on dev. */
static int map_guest(struct iommu_nest *h, const char *dev)
{
	int fd = memfd_create("it-dirty-mem", MFD_CLOEXEC);

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL_FATAL(ftruncate(fd, (off_t)MIB), 0);
	CU_ASSERT_EQUAL_FATAL(
	    iommu_nest_map_memory(h, dev, MEM_IOVA, MIB, fd, 0,
				  IOMMU_NEST_MAP_READABLE | IOMMU_NEST_MAP_WRITEABLE),
	    0);
	close(fd);
	return 0;
}

/* A bitmap memfd of size bytes, sealed against shrinking unless told not to. */
static int bitmap_fd(size_t size, bool seal)
{
	int fd = memfd_create("it-dirty-bitmap", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL_FATAL(ftruncate(fd, (off_t)size), 0);
	if (seal)
		CU_ASSERT_EQUAL_FATAL(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK), 0);
	return fd;
}

/* GetDirtyBitmap of the guest range at page_size into out (words words). */
static int read_bits(struct iommu_nest *h, const char *dev, uint64_t page_size, uint32_t flags,
		     uint64_t *out, size_t words)
{
	int fd = bitmap_fd(4096, true);
	int rc;

	memset(out, 0xa5, words * 8);
	rc = iommu_nest_get_dirty_bitmap(h, dev, MEM_IOVA, MIB, page_size, flags, fd);
	CU_ASSERT_EQUAL_FATAL(pread(fd, out, words * 8, 0), (ssize_t)(words * 8));
	close(fd);
	return rc;
}

/*
 * The bits read back are the marked ones. Under 7.x the dirty bit lives in
 * the IOPTE the kernel chose for the mapping (generic_pt: a contiguous
 * run of physically contiguous pages is one larger entry), so a read may
 * also report the marked pages' neighbours in that entry: there, at least
 * the marked ones. The sim models 6.12's mock, one bit per page.
 */
static void check_bits(const uint64_t *got, const uint64_t *want, size_t words)
{
	if (!it_kernel7_rules(NULL)) {
		CU_ASSERT_EQUAL(memcmp(got, want, words * 8), 0);
		return;
	}
	for (size_t i = 0; i < words; i++)
		CU_ASSERT_EQUAL(got[i] & want[i], want[i]);
}

static void set_bit(uint64_t *bm, uint64_t i)
{
	bm[i / 64] |= 1ULL << (i % 64);
}

static const uint64_t marked[] = {0, 3, 63, 64, 65, 200, 255};

static void mark(struct iommu_nest *h, const char *dev, uint64_t *want)
{
	uint64_t bm[NPAGES / 64] = {0};

	for (size_t i = 0; i < sizeof(marked) / sizeof(marked[0]); i++)
		set_bit(bm, marked[i]);
	CU_ASSERT_EQUAL_FATAL(iommu_nest_mark_dirty(h, dev, MEM_IOVA, MIB, PG, bm, sizeof(bm)), 0);
	if (want)
		memcpy(want, bm, sizeof(bm));
}

static void test_roundtrip(void)
{
	struct nestd *d = it_start(NULL);
	struct iommu_nest *h = it_connect(d, "dirty-rt");
	uint64_t want[NPAGES / 64], got[NPAGES / 64], first[NPAGES / 64], zero[NPAGES / 64] = {0};
	uint64_t want2[NPAGES / 128] = {0}, got2[NPAGES / 128];

	map_guest(h, IT_ST0);
	CU_ASSERT_EQUAL_FATAL(iommu_nest_set_dirty_tracking(h, IT_ST0, 1), 0);
	/* Nothing written yet. */
	CU_ASSERT_EQUAL(read_bits(h, IT_ST0, PG, 0, got, NPAGES / 64), 0);
	CU_ASSERT_EQUAL(memcmp(got, zero, sizeof(got)), 0);

	mark(h, IT_ST0, want);
	/* NO_CLEAR reads them, twice. */
	CU_ASSERT_EQUAL(read_bits(h, IT_ST0, PG, IOMMU_NEST_DIRTY_NO_CLEAR, first, NPAGES / 64), 0);
	check_bits(first, want, NPAGES / 64);
	CU_ASSERT_EQUAL(read_bits(h, IT_ST0, PG, IOMMU_NEST_DIRTY_NO_CLEAR, got, NPAGES / 64), 0);
	CU_ASSERT_EQUAL(memcmp(got, first, sizeof(got)), 0);
	/* At 8 KiB a bit: the pair a page is in. */
	for (size_t i = 0; i < sizeof(marked) / sizeof(marked[0]); i++)
		set_bit(want2, marked[i] / 2);
	CU_ASSERT_EQUAL(read_bits(h, IT_ST0, 2 * PG, IOMMU_NEST_DIRTY_NO_CLEAR, got2, NPAGES / 128),
			0);
	check_bits(got2, want2, NPAGES / 128);
	/* A read that clears: the same bits once more, then none. */
	CU_ASSERT_EQUAL(read_bits(h, IT_ST0, PG, 0, got, NPAGES / 64), 0);
	CU_ASSERT_EQUAL(memcmp(got, first, sizeof(got)), 0);
	CU_ASSERT_EQUAL(read_bits(h, IT_ST0, PG, 0, got, NPAGES / 64), 0);
	CU_ASSERT_EQUAL(memcmp(got, zero, sizeof(got)), 0);

	/* Enabling again starts from a clean snapshot. */
	mark(h, IT_ST0, NULL);
	CU_ASSERT_EQUAL(iommu_nest_set_dirty_tracking(h, IT_ST0, 1), 0);
	CU_ASSERT_EQUAL(read_bits(h, IT_ST0, PG, 0, got, NPAGES / 64), 0);
	CU_ASSERT_EQUAL(memcmp(got, zero, sizeof(got)), 0);
	it_stop_ok(d);
}

/* Tracking never enabled: the test op is -EINVAL, a read the failed walk's answer, no bits. */
static void test_tracking_off(void)
{
	struct nestd *d = it_start(NULL);
	struct iommu_nest *h = it_connect(d, "dirty-off");
	uint64_t bm[NPAGES / 64] = {1}, got[NPAGES / 64], zero[NPAGES / 64] = {0};

	map_guest(h, IT_ST0);
	CU_ASSERT_EQUAL(iommu_nest_mark_dirty(h, IT_ST0, MEM_IOVA, MIB, PG, bm, sizeof(bm)),
			-EINVAL);
	CU_ASSERT_EQUAL(read_bits(h, IT_ST0, PG, 0, got, NPAGES / 64), it_dirty_walk_errno(NULL));
	CU_ASSERT_EQUAL(memcmp(got, zero, sizeof(got)), 0);
	CU_ASSERT_EQUAL(iommu_nest_set_dirty_tracking(h, IT_ST0, 0), 0);
	it_stop_ok(d);
}

static void test_bad_args(void)
{
	struct nestd *d = it_start(NULL);
	struct iommu_nest *h = it_connect(d, "dirty-args");
	int fd = bitmap_fd(4096, true);

	map_guest(h, IT_ST0);
	CU_ASSERT_EQUAL_FATAL(iommu_nest_set_dirty_tracking(h, IT_ST0, 1), 0);
	/* iommufd_check_iova_range(): page_size 0, ranges off page_size; length 0 (6.12's). */
	CU_ASSERT_EQUAL(iommu_nest_get_dirty_bitmap(h, IT_ST0, MEM_IOVA, MIB, 0, 0, fd), -EINVAL);
	CU_ASSERT_EQUAL(iommu_nest_get_dirty_bitmap(h, IT_ST0, MEM_IOVA, 0, PG, 0, fd), -EINVAL);
	CU_ASSERT_EQUAL(iommu_nest_get_dirty_bitmap(h, IT_ST0, MEM_IOVA + PG, MIB, 2 * PG, 0, fd),
			-EINVAL);
	CU_ASSERT_EQUAL(iommu_nest_get_dirty_bitmap(h, IT_ST0, MEM_IOVA, MIB + PG, 2 * PG, 0, fd),
			-EINVAL);
	CU_ASSERT_EQUAL(
	    iommu_nest_get_dirty_bitmap(h, IT_ST0, UINT64_MAX - PG + 1, 2 * PG, PG, 0, fd),
	    -EOVERFLOW);
	/* The daemon's own rule: a power of two. */
	CU_ASSERT_EQUAL(iommu_nest_get_dirty_bitmap(h, IT_ST0, MEM_IOVA, 3 * PG, 3 * PG, 0, fd),
			-EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(iommu_nest_last_error(h), "power of two"));
	/* Unknown flags, before anything else. */
	CU_ASSERT_EQUAL(iommu_nest_get_dirty_bitmap(h, IT_ST0, MEM_IOVA, MIB, PG, 2, fd),
			-EOPNOTSUPP);
	/* The test op's own checks. */
	CU_ASSERT_EQUAL(iommu_nest_mark_dirty(h, IT_ST0, MEM_IOVA, MIB, 0, NULL, 0), -EINVAL);
	CU_ASSERT_EQUAL(iommu_nest_mark_dirty(h, IT_ST0, MEM_IOVA + PG, MIB, 2 * PG, NULL, 0),
			-EINVAL);
	close(fd);
	it_stop_ok(d);
}

static void test_memfd(void)
{
	struct nestd *d = it_start(NULL);
	struct iommu_nest *h = it_connect(d, "dirty-memfd");
	int small = bitmap_fd(16, true), unsealed = bitmap_fd(4096, false);
	int ro, fd;

	map_guest(h, IT_ST0);
	CU_ASSERT_EQUAL_FATAL(iommu_nest_set_dirty_tracking(h, IT_ST0, 1), 0);
	/* 256 pages need 32 bytes. */
	CU_ASSERT_EQUAL(iommu_nest_get_dirty_bitmap(h, IT_ST0, MEM_IOVA, MIB, PG, 0, small),
			-EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(iommu_nest_last_error(h), "needs 32 bytes"));
	CU_ASSERT_EQUAL(iommu_nest_get_dirty_bitmap(h, IT_ST0, MEM_IOVA, MIB, PG, 0, unsealed),
			-EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(iommu_nest_last_error(h), "F_SEAL_SHRINK"));
	/* Exactly large enough is enough; read-only is not. */
	fd = bitmap_fd(32, true);
	CU_ASSERT_EQUAL(iommu_nest_get_dirty_bitmap(h, IT_ST0, MEM_IOVA, MIB, PG, 0, fd), 0);
	{
		char path[64];

		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		ro = open(path, O_RDONLY | O_CLOEXEC);
		CU_ASSERT_FATAL(ro >= 0);
		CU_ASSERT_EQUAL(iommu_nest_get_dirty_bitmap(h, IT_ST0, MEM_IOVA, MIB, PG, 0, ro),
				-EACCES);
		close(ro);
	}
	close(fd);
	close(small);
	close(unsealed);
	it_stop_ok(d);
}

/* B may not touch the device A holds; its own device has none of A's bits. */
static void test_tenants(void)
{
	struct nestd *d = it_start(NULL);
	struct iommu_nest *a = it_connect(d, "dirty-a");
	struct iommu_nest *b = it_connect(d, "dirty-b");
	uint64_t got[NPAGES / 64], zero[NPAGES / 64] = {0}, bm[NPAGES / 64] = {1};
	int fd = bitmap_fd(4096, true);

	map_guest(a, IT_ST0);
	CU_ASSERT_EQUAL_FATAL(iommu_nest_set_dirty_tracking(a, IT_ST0, 1), 0);
	mark(a, IT_ST0, NULL);
	CU_ASSERT_EQUAL(iommu_nest_get_dirty_bitmap(b, IT_ST0, MEM_IOVA, MIB, PG, 0, fd), -EBUSY);
	CU_ASSERT_EQUAL(iommu_nest_set_dirty_tracking(b, IT_ST0, 0), -EBUSY);
	CU_ASSERT_EQUAL(iommu_nest_mark_dirty(b, IT_ST0, MEM_IOVA, MIB, PG, bm, sizeof(bm)),
			-EBUSY);
	if (it_has_device(b, IT_ST1)) {
		map_guest(b, IT_ST1);
		CU_ASSERT_EQUAL(iommu_nest_set_dirty_tracking(b, IT_ST1, 1), 0);
		CU_ASSERT_EQUAL(read_bits(b, IT_ST1, PG, 0, got, NPAGES / 64), 0);
		CU_ASSERT_EQUAL(memcmp(got, zero, sizeof(got)), 0);
	}
	/* A's bits are still there, untouched by B's attempts. */
	CU_ASSERT_EQUAL(read_bits(a, IT_ST0, PG, 0, got, NPAGES / 64), 0);
	CU_ASSERT(got[0] & 1);
	/* Gone with the memory: unmapped pages have no dirty bits (and 6.12 refuses the walk). */
	mark(a, IT_ST0, NULL);
	CU_ASSERT_EQUAL(iommu_nest_unmap_memory(a, IT_ST0, MEM_IOVA, MIB), 0);
	CU_ASSERT_EQUAL(iommu_nest_get_dirty_bitmap(a, IT_ST0, MEM_IOVA, MIB, PG, 0, fd),
			it_dirty_walk_errno(NULL));
	CU_ASSERT_EQUAL(pread(fd, got, sizeof(got), 0), (ssize_t)sizeof(got));
	CU_ASSERT_EQUAL(memcmp(got, zero, sizeof(got)), 0);
	close(fd);
	it_stop_ok(d);
}

static void test_unknown_device(void)
{
	struct nestd *d = it_start(NULL);
	struct iommu_nest *h = it_connect(d, "dirty-nodev");

	CU_ASSERT_EQUAL(iommu_nest_set_dirty_tracking(h, "no-such-device", 1), -ENODEV);
	it_stop_ok(d);
}

/*
 * Guest memory in one 2 MiB huge page, at a 2 MiB-aligned IOVA: physically
 * contiguous by construction, so a 7.x kernel maps it as one contiguous
 * IOPTE (two 1 MiB items on the mock) - the case of 7.2's record_dirty()
 * defect (see check_bits() in test_walkthrough.c), which a mapping of
 * ordinary pages meets only when the allocator happens to lay them out so.
 * The first and the last page are marked. The sim and 6.12 read both,
 * bit-exact. A 7.x kernel must read the first; the last it reads, or -
 * the defect - its whole MiB reads clean, which is said on stderr. Skipped
 * where no huge page can be had (the kernel tier's guest reserves four).
 */
#define HUGE_IOVA (32ULL << 20)
#define HUGE_LEN  (2 * MIB)

static void test_huge_page(void)
{
	struct nestd *d;
	struct iommu_nest *h;
	uint64_t got[HUGE_LEN / PG / 64], want[HUGE_LEN / PG / 64] = {0};
	uint64_t last_mib_bits = 0;
	int mem = memfd_create("it-dirty-huge", MFD_CLOEXEC | MFD_HUGETLB), bm;
	/* Words of the bitmap, and the first word of the last MiB. */
	const size_t words = HUGE_LEN / PG / 64, last_mib = MIB / PG / 64;

	if (mem < 0 || ftruncate(mem, (off_t)HUGE_LEN)) {
		if (mem >= 0)
			close(mem);
		IT_SKIP("no 2 MiB huge page for a memfd here");
	}
	d = it_start(NULL);
	h = it_connect(d, "dirty-huge");
	CU_ASSERT_EQUAL_FATAL(
	    iommu_nest_map_memory(h, IT_ST0, HUGE_IOVA, HUGE_LEN, mem, 0,
				  IOMMU_NEST_MAP_READABLE | IOMMU_NEST_MAP_WRITEABLE),
	    0);
	close(mem);
	CU_ASSERT_EQUAL_FATAL(iommu_nest_set_dirty_tracking(h, IT_ST0, 1), 0);
	set_bit(want, 0);
	set_bit(want, HUGE_LEN / PG - 1);
	CU_ASSERT_EQUAL_FATAL(
	    iommu_nest_mark_dirty(h, IT_ST0, HUGE_IOVA, HUGE_LEN, PG, want, sizeof(want)), 0);
	bm = bitmap_fd(sizeof(got), true);
	CU_ASSERT_EQUAL(iommu_nest_get_dirty_bitmap(h, IT_ST0, HUGE_IOVA, HUGE_LEN, PG, 0, bm), 0);
	CU_ASSERT_EQUAL_FATAL(pread(bm, got, sizeof(got), 0), (ssize_t)sizeof(got));
	close(bm);
	if (!it_kernel7_rules(NULL)) {
		CU_ASSERT_EQUAL(memcmp(got, want, sizeof(got)), 0);
		it_stop_ok(d);
		return;
	}
	/* The first page is read, whatever IOPTE holds it. */
	CU_ASSERT_EQUAL(got[0] & 1, 1);
	for (size_t i = last_mib; i < words; i++)
		last_mib_bits |= got[i];
	if (!(got[words - 1] >> 63)) {
		fprintf(stderr, "huge_page: the last page reads clean%s\n",
			last_mib_bits ? "" : ", and its whole MiB: the 7.2 record_dirty() defect");
		CU_ASSERT_EQUAL(last_mib_bits, 0);
	}
	it_stop_ok(d);
}

static const struct it_case cases[] = {
    {"roundtrip", test_roundtrip}, {"tracking_off", test_tracking_off},
    {"bad_args", test_bad_args},   {"memfd", test_memfd},
    {"tenants", test_tenants},	   {"unknown_device", test_unknown_device},
    {"huge_page", test_huge_page}, {NULL, NULL},
};

int main(int argc, char **argv)
{
	return it_main(argc, argv, "dirty", cases);
}
