/* SPDX-License-Identifier: MIT */
/*
 * VM contexts through the daemon ([daemon] vm_contexts = true): every
 * client's objects live in its own backend instance (iommufd: its own
 * open of /dev/iommu, one IOAS), so two VMMs get the same numeric ids and
 * neither can reach the other's.
 *
 *   bystander   VMMs A and B both get HWPT id N. B's invalidations of its
 *               N leave A's N's cache untouched (mock IOTLB slots, checked
 *               by the backend); an id only A has is -ENOENT to B for
 *               invalidate, probe, destroy, attach, check and page
 *               response; A's device (memory, dirty bits) is busy to B;
 *               afterwards A's HWPTs and memory are all still there.
 *   shared_ioas one MapMemory through st0 is seen by st1 of the same VM
 *               (dirty bits the test op sets on st1's nest parent exist
 *               only where memory is mapped); mapping the same range
 *               through st1 is -EEXIST, unmapping it through st1 -EBUSY.
 *   teardown    A's disconnect gives its devices back: B claims them;
 *               the daemon's descriptors (one per context) go with it.
 *
 * Runs on the sim and, in the kernel tier, on the iommufd backend with the
 * kernel's selftest mock devices: the same answers.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness.h"

#define CTX_ON	 "vm_contexts = true"
#define MEM_IOVA (16ULL << 20) /* inside the mock aperture too */
#define MIB	 (1ULL << 20)
#define PG	 4096ULL
#define NPAGES	 (MIB / PG)
#define RW	 (IOMMU_NEST_MAP_READABLE | IOMMU_NEST_MAP_WRITEABLE)

static int guest_memfd(void)
{
	int fd = memfd_create("it-vmctx-mem", MFD_CLOEXEC);

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL_FATAL(ftruncate(fd, (off_t)MIB), 0);
	return fd;
}

static int map_guest(struct iommu_nest *h, const char *dev)
{
	int fd = guest_memfd();
	int rc = iommu_nest_map_memory(h, dev, MEM_IOVA, MIB, fd, 0, RW);

	close(fd);
	return rc;
}

/* A flush-all of every mock IOTLB slot of hwpt. */
static int flush_all(struct iommu_nest *h, uint32_t hwpt)
{
	struct iommu_nest_selftest_inv se = {IOMMU_NEST_TEST_INVALIDATE_FLAG_ALL, 0};
	struct iommu_nest_entry_result res;
	struct iommu_nest_inv_summary sum;

	return iommu_nest_invalidate(h, hwpt, IOMMU_NEST_INV_DATA_SELFTEST, &se, 1, 0, &res, &sum);
}

static void slots_are(struct iommu_nest *h, uint32_t hwpt, uint32_t val)
{
	for (uint32_t s = 0; s < 4; s++)
		CU_ASSERT_EQUAL(iommu_nest_check_iotlb(h, hwpt, s, val), 0);
}

static void test_bystander(void)
{
	struct iommu_nest_page_response pr = {.grpid = 1, .cookie = 1, .code = 0};
	struct nestd *d;
	struct iommu_nest *a, *b;
	uint32_t na, nb, only_a, id = 0;
	int bm;

	IT_REQUIRE_ROOT();
	d = it_start(CTX_ON);
	a = it_connect(d, "vmm-a");
	b = it_connect_as(d, "vmm-b", IT_NOBODY, IT_NOBODY);
	/* Same order of objects in two fresh contexts: the same ids. */
	na = it_alloc_st(a, IT_ST0, 0x11);
	nb = it_alloc_st(b, IT_ST1, 0x22);
	CU_ASSERT_EQUAL(na, nb);
	only_a = it_alloc_st(a, IT_ST0, 0x33);
	CU_ASSERT_NOT_EQUAL(only_a, na);
	CU_ASSERT_EQUAL_FATAL(iommu_nest_attach(a, IT_ST0, na), 0);
	CU_ASSERT_EQUAL_FATAL(map_guest(a, IT_ST0), 0);

	/* B's N is B's: flushing it leaves A's N's slots as they were. */
	if (it_has_cap(a, IOMMU_NEST_CAP_CHECK_IOTLB)) {
		slots_are(a, na, 0x11);
		slots_are(b, nb, 0x22);
	}
	CU_ASSERT_EQUAL(flush_all(b, nb), 0);
	if (it_has_cap(a, IOMMU_NEST_CAP_CHECK_IOTLB)) {
		slots_are(b, nb, 0);
		slots_are(a, na, 0x11);
	}

	/* An id only A has names nothing for B. */
	CU_ASSERT_EQUAL(flush_all(b, only_a), -ENOENT);
	CU_ASSERT_EQUAL(iommu_nest_probe(b, only_a, IOMMU_NEST_INV_DATA_SELFTEST), -ENOENT);
	CU_ASSERT_EQUAL(iommu_nest_attach(b, IT_ST1, only_a), -ENOENT);
	CU_ASSERT_EQUAL(iommu_nest_destroy(b, only_a), -ENOENT);
	if (it_has_cap(b, IOMMU_NEST_CAP_CHECK_IOTLB))
		CU_ASSERT_EQUAL(iommu_nest_check_iotlb(b, only_a, 0, 0x33), -ENOENT);
	CU_ASSERT_EQUAL(iommu_nest_page_response(b, only_a, NULL, &pr), -ENOENT);

	/* A's device, memory and dirty bits are A's: busy to B. */
	CU_ASSERT_EQUAL(map_guest(b, IT_ST0), -EBUSY);
	CU_ASSERT_EQUAL(iommu_nest_unmap_memory(b, IT_ST0, MEM_IOVA, MIB), -ENOENT);
	CU_ASSERT_EQUAL(iommu_nest_attach(b, IT_ST0, nb), -EBUSY);
	CU_ASSERT_EQUAL(iommu_nest_alloc_selftest(b, IT_ST0, 1, &id), -EBUSY);
	CU_ASSERT_EQUAL(iommu_nest_set_dirty_tracking(b, IT_ST0, 1), -EBUSY);
	bm = memfd_create("it-vmctx-bitmap", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	CU_ASSERT_FATAL(bm >= 0);
	CU_ASSERT_EQUAL_FATAL(ftruncate(bm, 4096), 0);
	CU_ASSERT_EQUAL_FATAL(fcntl(bm, F_ADD_SEALS, F_SEAL_SHRINK), 0);
	CU_ASSERT_EQUAL(iommu_nest_get_dirty_bitmap(b, IT_ST0, MEM_IOVA, MIB, PG, 0, bm), -EBUSY);
	close(bm);

	/* The operator sees id N twice, each with its owner, A's attached. */
	{
		struct iommu_nest_hwpt_info *v = NULL;
		size_t n = 0, seen = 0;
		uint64_t owner[2] = {0, 0};

		CU_ASSERT_EQUAL_FATAL(iommu_nest_list_hwpts(a, &v, &n), 0);
		CU_ASSERT_EQUAL(n, 3);
		for (size_t i = 0; i < n; i++) {
			if (v[i].id != na)
				continue;
			if (seen < 2)
				owner[seen] = v[i].owner_session;
			seen++;
			CU_ASSERT_STRING_EQUAL(v[i].device, v[i].owner_uid ? IT_ST1 : IT_ST0);
			CU_ASSERT_EQUAL(v[i].n_attached, v[i].owner_uid ? 0 : 1);
		}
		CU_ASSERT_EQUAL(seen, 2);
		CU_ASSERT(owner[0] && owner[1] && owner[0] != owner[1]);
		free(v);
	}
	/* B destroys its own N; A's N is alive, attached and unflushed. */
	CU_ASSERT_EQUAL(iommu_nest_destroy(b, nb), 0);
	CU_ASSERT_EQUAL(iommu_nest_probe(a, na, IOMMU_NEST_INV_DATA_SELFTEST), 0);
	CU_ASSERT_EQUAL(iommu_nest_probe(a, only_a, IOMMU_NEST_INV_DATA_SELFTEST), 0);
	if (it_has_cap(a, IOMMU_NEST_CAP_CHECK_IOTLB)) {
		slots_are(a, na, 0x11);
		slots_are(a, only_a, 0x33);
	}
	/* A's memory is still mapped (an unmap of it finds it) and A's to unmap. */
	CU_ASSERT_EQUAL(iommu_nest_destroy(a, na), -EBUSY); /* still attached */
	CU_ASSERT_EQUAL(iommu_nest_unmap_memory(a, IT_ST0, MEM_IOVA, MIB), 0);
	CU_ASSERT_EQUAL(iommu_nest_unmap_memory(a, IT_ST0, MEM_IOVA, MIB), -ENOENT);
	CU_ASSERT_EQUAL(it_stats(a).hwpts_active, 2);
	it_stop_ok(d);
}

static void set_bit(uint64_t *bm, uint64_t i)
{
	bm[i / 64] |= 1ULL << (i % 64);
}

/* Bits the test op marks on dev's nest parent and reads back through dev. */
static int read_marked(struct iommu_nest *h, const char *dev, const uint64_t *mark, uint64_t *got)
{
	int fd = memfd_create("it-vmctx-bitmap", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	int rc;

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL_FATAL(ftruncate(fd, 4096), 0);
	CU_ASSERT_EQUAL_FATAL(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK), 0);
	rc = iommu_nest_mark_dirty(h, dev, MEM_IOVA, MIB, PG, mark, NPAGES / 8);
	if (!rc)
		rc = iommu_nest_get_dirty_bitmap(h, dev, MEM_IOVA, MIB, PG, 0, fd);
	CU_ASSERT_EQUAL_FATAL(pread(fd, got, NPAGES / 8, 0), (ssize_t)(NPAGES / 8));
	close(fd);
	return rc;
}

static void test_shared_ioas(void)
{
	uint64_t mark[NPAGES / 64] = {0}, got[NPAGES / 64];
	struct nestd *d = it_start(CTX_ON);
	struct iommu_nest *a = it_connect(d, "vmm-shared");
	int fd;

	set_bit(mark, 0);
	set_bit(mark, 77);
	set_bit(mark, NPAGES - 1);
	/* Both devices in A's context, memory mapped once, through st0. */
	CU_ASSERT_EQUAL_FATAL(iommu_nest_set_dirty_tracking(a, IT_ST1, 1), 0);
	CU_ASSERT_EQUAL_FATAL(map_guest(a, IT_ST0), 0);
	/* st1's nest parent sits on the same IOAS: it translates the pages. */
	CU_ASSERT_EQUAL(read_marked(a, IT_ST1, mark, got), 0);
	for (size_t i = 0; i < NPAGES / 64; i++)
		CU_ASSERT_EQUAL(got[i] & mark[i], mark[i]);
	/* One IOAS: the range is taken through either device. */
	fd = guest_memfd();
	CU_ASSERT_EQUAL(iommu_nest_map_memory(a, IT_ST1, MEM_IOVA, MIB, fd, 0, RW), -EEXIST);
	close(fd);
	CU_ASSERT_EQUAL(iommu_nest_unmap_memory(a, IT_ST1, 0, UINT64_MAX), -EBUSY);
	/* Unmapped through the device it was mapped with, st1 reads nothing (6.12: -EINVAL). */
	CU_ASSERT_EQUAL(iommu_nest_unmap_memory(a, IT_ST0, MEM_IOVA, MIB), 0);
	memset(got, 0, sizeof(got));
	CU_ASSERT_EQUAL(read_marked(a, IT_ST1, mark, got), it_dirty_walk_errno(NULL));
	for (size_t i = 0; i < NPAGES / 64; i++)
		CU_ASSERT_EQUAL(got[i], 0);
	it_stop_ok(d);
}

static void test_teardown(void)
{
	struct nestd *d = it_start(CTX_ON);
	struct iommu_nest *b = it_connect(d, "vmm-next");
	struct iommu_nest *a;
	int before = it_daemon_fds(d);
	uint32_t id;

	a = it_connect(d, "vmm-first");
	id = it_alloc_st(a, IT_ST0, 1);
	CU_ASSERT_EQUAL(iommu_nest_attach(a, IT_ST0, id), 0);
	CU_ASSERT_EQUAL(map_guest(a, IT_ST0), 0);
	if (it_has_device(a, IT_VTD0))
		CU_ASSERT_EQUAL(iommu_nest_attach(a, IT_VTD0, it_alloc_vtd(a, IT_VTD0)), 0);
	/* A's socket and its context's descriptor at least. */
	CU_ASSERT(it_daemon_fds(d) >= before + 2);
	it_close(a);
	it_wait_sessions(b, 1);
	/* Everything of A's went: its context's descriptors too. */
	CU_ASSERT_EQUAL(it_daemon_fds(d), before);
	CU_ASSERT_EQUAL(it_stats(b).hwpts_active, 0);
	/* B takes A's devices, with the same memory range. */
	CU_ASSERT_EQUAL(iommu_nest_attach(b, IT_ST0, it_alloc_st(b, IT_ST0, 2)), 0);
	CU_ASSERT_EQUAL(map_guest(b, IT_ST0), 0);
	if (it_has_device(b, IT_VTD0))
		CU_ASSERT_EQUAL(iommu_nest_attach(b, IT_VTD0, it_alloc_vtd(b, IT_VTD0)), 0);
	it_stop_ok(d);
}

static const struct it_case cases[] = {
    {"bystander", test_bystander},
    {"shared_ioas", test_shared_ioas},
    {"teardown", test_teardown},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
	return it_main(argc, argv, "vmctx", cases);
}
