/* SPDX-License-Identifier: MIT */
/*
 * Guest memory for stage 2: MapMemory / UnmapMemory with a memfd passed in
 * SCM_RIGHTS. Mapping and unmapping, the request rules and the kernel's
 * errnos, descriptor framing (none, two, a broken packet: -EINVAL or a
 * closed session, and never a leaked descriptor on either side), overlap,
 * quota, one client per device, and the unmapping at disconnect.
 *
 * Runs on the sim and, in the kernel tier, on the iommufd backend with the
 * kernel's selftest mock devices, whose domain aperture is [16 MiB, 2 GiB)
 * (iommufd_test.h MOCK_APERTURE_*): every mapping here lies inside it, and
 * the sim models the same aperture for its selftest devices.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness.h"

#define MEM_IOVA (16ULL << 20) /* the mock aperture's first byte */
#define MIB (1ULL << 20)
#define RW (IOMMU_NEST_MAP_READABLE | IOMMU_NEST_MAP_WRITEABLE)

/* A memfd of size bytes (closed by the caller). */
static int memfd_of(uint64_t size)
{
	int fd = memfd_create("it-guest-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL_FATAL(ftruncate(fd, (off_t)size), 0);
	return fd;
}

/* Open descriptors of pid (0: this process). */
static int fd_count(pid_t pid)
{
	char path[64];
	struct dirent *e;
	int n = 0;
	DIR *dir;

	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	else
		snprintf(path, sizeof(path), "/proc/self/fd");
	dir = opendir(path);
	CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
	while ((e = readdir(dir)))
		n += e->d_name[0] != '.';
	closedir(dir);
	/* Our own count includes the directory we are reading. */
	return pid ? n : n - 1;
}

static int map(struct iommu_nest *h, const char *dev, uint64_t iova, uint64_t len, int fd,
	       uint64_t off, uint32_t flags)
{
	return iommu_nest_map_memory(h, dev, iova, len, fd, off, flags);
}

/* ---- the happy path -------------------------------------------------------------- */

static void test_map_unmap(void)
{
	struct nestd *d = it_start(NULL);
	struct iommu_nest *h = it_connect(d, "mem");
	int fd = memfd_of(2 * MIB);
	int before = fd_count(0);
	uint32_t id;

	/* Guest RAM first, then the nested HWPT on top of it: the VMM's order. */
	CU_ASSERT_EQUAL(map(h, IT_ST0, MEM_IOVA, 2 * MIB, fd, 0, RW), 0);
	id = it_alloc_st(h, IT_ST0, 7);
	CU_ASSERT_EQUAL(iommu_nest_attach(h, IT_ST0, id), 0);
	CU_ASSERT_EQUAL(iommu_nest_probe(h, id, IOMMU_NEST_INV_DATA_SELFTEST), 0);
	CU_ASSERT_EQUAL(iommu_nest_detach(h, IT_ST0), 0);
	CU_ASSERT_EQUAL(iommu_nest_destroy(h, id), 0);
	CU_ASSERT_EQUAL(iommu_nest_unmap_memory(h, IT_ST0, MEM_IOVA, 2 * MIB), 0);
	/* Gone: the kernel's IOMMU_IOAS_UNMAP of nothing is ENOENT (ioas.c:320). */
	CU_ASSERT_EQUAL(iommu_nest_unmap_memory(h, IT_ST0, MEM_IOVA, 2 * MIB), -ENOENT);

	/* Two slices of one memfd, read-only and read-write, then one unmap for both. */
	CU_ASSERT_EQUAL(map(h, IT_ST0, MEM_IOVA, MIB, fd, 0, IOMMU_NEST_MAP_READABLE), 0);
	CU_ASSERT_EQUAL(map(h, IT_ST0, MEM_IOVA + 4 * MIB, MIB, fd, MIB, RW), 0);
	CU_ASSERT_EQUAL(iommu_nest_unmap_memory(h, IT_ST0, MEM_IOVA, 5 * MIB), 0);

	/* A range that cuts a mapping: ENOENT, and the mapping stays whole. */
	CU_ASSERT_EQUAL(map(h, IT_ST0, MEM_IOVA, 2 * MIB, fd, 0, RW), 0);
	CU_ASSERT_EQUAL(iommu_nest_unmap_memory(h, IT_ST0, MEM_IOVA, MIB), -ENOENT);
	CU_ASSERT_EQUAL(map(h, IT_ST0, MEM_IOVA, IT_PAGE, fd, 0, RW), -EEXIST);
	/* iova 0, length UINT64_MAX: everything, like IOMMU_IOAS_UNMAP. */
	CU_ASSERT_EQUAL(iommu_nest_unmap_memory(h, IT_ST0, 0, UINT64_MAX), 0);
	CU_ASSERT_EQUAL(iommu_nest_unmap_memory(h, IT_ST0, 0, UINT64_MAX), 0);
	CU_ASSERT_EQUAL(map(h, IT_ST0, MEM_IOVA, IT_PAGE, fd, 0, RW), 0);

	/* The library passed copies: nothing of ours stayed open or was taken. */
	CU_ASSERT_EQUAL(fd_count(0), before);
	close(fd);
	it_stop_ok(d);
}

/* ---- request rules ---------------------------------------------------------------- */

static void test_map_invalid(void)
{
	struct nestd *d = it_start(NULL);
	struct iommu_nest *h = it_connect(d, "mem-invalid");
	int fd = memfd_of(MIB), ro, p[2];
	char path[64];

	/* Alignment and size (the daemon's rules: mmap needs pages). */
	CU_ASSERT_EQUAL(map(h, IT_ST0, MEM_IOVA + 0x800, IT_PAGE, fd, 0, RW), -EINVAL);
	CU_ASSERT_EQUAL(map(h, IT_ST0, MEM_IOVA, IT_PAGE + 1, fd, 0, RW), -EINVAL);
	CU_ASSERT_EQUAL(map(h, IT_ST0, MEM_IOVA, IT_PAGE, fd, 0x100, RW), -EINVAL);
	CU_ASSERT_EQUAL(map(h, IT_ST0, MEM_IOVA, 0, fd, 0, RW), -EINVAL);
	/* Flags: no access is EINVAL, an unknown bit EOPNOTSUPP (ioas.c:208-218). */
	CU_ASSERT_EQUAL(map(h, IT_ST0, MEM_IOVA, IT_PAGE, fd, 0, 0), -EINVAL);
	CU_ASSERT_EQUAL(map(h, IT_ST0, MEM_IOVA, IT_PAGE, fd, 0, RW | 8), -EOPNOTSUPP);
	/* A range that wraps. */
	CU_ASSERT_EQUAL(map(h, IT_ST0, UINT64_MAX - IT_PAGE + 1, 2 * IT_PAGE, fd, 0, RW),
			-EOVERFLOW);
	/* The file must cover offset + length. */
	CU_ASSERT_EQUAL(map(h, IT_ST0, MEM_IOVA, 2 * MIB, fd, 0, RW), -EINVAL);
	CU_ASSERT_EQUAL(map(h, IT_ST0, MEM_IOVA, MIB, fd, IT_PAGE, RW), -EINVAL);
	/* Not a file at all. */
	CU_ASSERT_EQUAL_FATAL(pipe2(p, O_CLOEXEC), 0);
	CU_ASSERT_EQUAL(map(h, IT_ST0, MEM_IOVA, IT_PAGE, p[0], 0, RW), -EINVAL);
	close(p[0]);
	close(p[1]);
	/* Writable needs a descriptor open for writing; sealed memory refuses it. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ro = open(path, O_RDONLY | O_CLOEXEC);
	CU_ASSERT_FATAL(ro >= 0);
	CU_ASSERT_EQUAL(map(h, IT_ST0, MEM_IOVA, IT_PAGE, ro, 0, RW), -EACCES);
	CU_ASSERT_EQUAL(map(h, IT_ST0, MEM_IOVA, IT_PAGE, ro, 0, IOMMU_NEST_MAP_READABLE), 0);
	close(ro);
	CU_ASSERT_EQUAL(iommu_nest_unmap_memory(h, IT_ST0, MEM_IOVA, IT_PAGE), 0);
	/*
	 * An O_PATH descriptor names the file but gives no access to it:
	 * mmap (iommufd backend) fails with EBADF, and so must the sim.
	 */
	ro = open(path, O_PATH | O_CLOEXEC);
	CU_ASSERT_FATAL(ro >= 0);
	CU_ASSERT_EQUAL(map(h, IT_ST0, MEM_IOVA, IT_PAGE, ro, 0, IOMMU_NEST_MAP_READABLE), -EBADF);
	CU_ASSERT_EQUAL(map(h, IT_ST0, MEM_IOVA, IT_PAGE, ro, 0, RW), -EBADF);
	close(ro);
	ro = memfd_of(MIB);
	CU_ASSERT_EQUAL_FATAL(fcntl(ro, F_ADD_SEALS, F_SEAL_FUTURE_WRITE), 0);
	CU_ASSERT_EQUAL(map(h, IT_ST0, MEM_IOVA, IT_PAGE, ro, 0, RW), -EPERM);
	CU_ASSERT_EQUAL(map(h, IT_ST0, MEM_IOVA, IT_PAGE, ro, 0, IOMMU_NEST_MAP_READABLE), 0);
	close(ro);
	CU_ASSERT_EQUAL(iommu_nest_unmap_memory(h, IT_ST0, MEM_IOVA, IT_PAGE), 0);
	/* Outside the mock domain's aperture: reserved, EINVAL (io_pagetable.c:196). */
	CU_ASSERT_EQUAL(map(h, IT_ST0, 0, IT_PAGE, fd, 0, RW), -EINVAL);
	CU_ASSERT_EQUAL(map(h, IT_ST0, (2ULL << 30) - IT_PAGE, 2 * IT_PAGE, fd, 0, RW), -EINVAL);
	/* Devices. */
	CU_ASSERT_EQUAL(map(h, "nonexistent", MEM_IOVA, IT_PAGE, fd, 0, RW), -ENODEV);
	CU_ASSERT_EQUAL(iommu_nest_unmap_memory(h, "nonexistent", MEM_IOVA, IT_PAGE), -ENODEV);
	/* Unmap ranges, with IOMMU_IOAS_UNMAP's errnos (io_pagetable.c:761). */
	CU_ASSERT_EQUAL(iommu_nest_unmap_memory(h, IT_ST0, MEM_IOVA, 0), -EINVAL);
	CU_ASSERT_EQUAL(iommu_nest_unmap_memory(h, IT_ST0, UINT64_MAX - IT_PAGE + 1, 2 * IT_PAGE),
			-EOVERFLOW);
	CU_ASSERT_EQUAL(iommu_nest_unmap_memory(h, IT_ST0, MEM_IOVA, IT_PAGE), -ENOENT);
	/* Nothing failed for good: the session is fine. */
	CU_ASSERT_EQUAL(map(h, IT_ST0, MEM_IOVA, MIB, fd, 0, RW), 0);
	close(fd);
	it_stop_ok(d);
}

/* Root mode: every device has its own IOAS, so another device's areas are free. */
static void test_overlap_root(void)
{
	struct nestd *d = it_start(IT_ROOT_MODE);
	struct iommu_nest *h = it_connect(d, "mem-overlap");
	int fd = memfd_of(2 * MIB);

	CU_ASSERT_EQUAL(map(h, IT_ST0, MEM_IOVA + MIB, MIB, fd, 0, RW), 0);
	CU_ASSERT_EQUAL(map(h, IT_ST0, MEM_IOVA + MIB, MIB, fd, 0, RW), -EEXIST);
	CU_ASSERT_EQUAL(map(h, IT_ST0, MEM_IOVA + MIB / 2, MIB, fd, 0, RW), -EEXIST);
	CU_ASSERT_EQUAL(map(h, IT_ST0, MEM_IOVA + 2 * MIB - IT_PAGE, MIB, fd, 0, RW), -EEXIST);
	CU_ASSERT_EQUAL(map(h, IT_ST0, MEM_IOVA, 2 * MIB, fd, 0, RW), -EEXIST);
	/* Adjacent on either side is fine; the same memory twice is fine too. */
	CU_ASSERT_EQUAL(map(h, IT_ST0, MEM_IOVA, MIB, fd, 0, RW), 0);
	CU_ASSERT_EQUAL(map(h, IT_ST0, MEM_IOVA + 2 * MIB, MIB, fd, 0, RW), 0);
	/* One device's areas say nothing about another's IOAS. */
	CU_ASSERT_EQUAL(map(h, IT_ST1, MEM_IOVA + MIB, MIB, fd, 0, RW), 0);
	/* A range over all three: one unmap. */
	CU_ASSERT_EQUAL(iommu_nest_unmap_memory(h, IT_ST0, MEM_IOVA, 3 * MIB), 0);
	CU_ASSERT_EQUAL(iommu_nest_unmap_memory(h, IT_ST1, MEM_IOVA + MIB, MIB), 0);
	close(fd);
	it_stop_ok(d);
}

/*
 * A VM context: ONE IOAS for all of the client's devices, so a range mapped
 * through one device is taken for every other; unmapping it through another
 * device is EBUSY (the kernel would, behind the record of the first).
 */
static void test_overlap_context(void)
{
	struct nestd *d = it_start("vm_contexts = true");
	struct iommu_nest *h = it_connect(d, "mem-overlap");
	int fd = memfd_of(2 * MIB);

	CU_ASSERT_EQUAL(map(h, IT_ST0, MEM_IOVA + MIB, MIB, fd, 0, RW), 0);
	CU_ASSERT_EQUAL(map(h, IT_ST0, MEM_IOVA + MIB / 2, MIB, fd, 0, RW), -EEXIST);
	CU_ASSERT_EQUAL(map(h, IT_ST1, MEM_IOVA + MIB, MIB, fd, 0, RW), -EEXIST);
	CU_ASSERT_EQUAL(map(h, IT_ST1, MEM_IOVA + 2 * MIB - IT_PAGE, MIB, fd, 0, RW), -EEXIST);
	/* Adjacent through the other device is fine: one address space, no overlap. */
	CU_ASSERT_EQUAL(map(h, IT_ST1, MEM_IOVA + 2 * MIB, MIB, fd, 0, RW), 0);
	CU_ASSERT_EQUAL(iommu_nest_unmap_memory(h, IT_ST1, MEM_IOVA, 3 * MIB), -EBUSY);
	CU_ASSERT_EQUAL(iommu_nest_unmap_memory(h, IT_ST0, MEM_IOVA + MIB, MIB), 0);
	/* Nothing of st0's is left in the range: st1 unmaps its own. */
	CU_ASSERT_EQUAL(iommu_nest_unmap_memory(h, IT_ST1, MEM_IOVA, 3 * MIB), 0);
	CU_ASSERT_EQUAL(map(h, IT_ST1, MEM_IOVA + MIB, MIB, fd, 0, RW), 0);
	close(fd);
	it_stop_ok(d);
}

static void test_quota(void)
{
	struct nestd *d = it_start("[policy]\nmax_mapped_bytes = 2097152");
	struct iommu_nest *h = it_connect(d, "mem-quota");
	int fd = memfd_of(2 * MIB);

	CU_ASSERT_EQUAL(map(h, IT_ST0, MEM_IOVA, MIB, fd, 0, RW), 0);
	/* Counted over all devices of the client (apart: one IOAS with contexts). */
	CU_ASSERT_EQUAL(map(h, IT_ST1, MEM_IOVA + 8 * MIB, MIB, fd, MIB, RW), 0);
	CU_ASSERT_EQUAL(map(h, IT_ST0, MEM_IOVA + MIB, IT_PAGE, fd, 0, RW), -EDQUOT);
	CU_ASSERT_EQUAL(iommu_nest_last_limit(h), 2 * MIB);
	CU_ASSERT(it_stats(h).denials >= 1);
	/* Unmapping gives the bytes back. */
	CU_ASSERT_EQUAL(iommu_nest_unmap_memory(h, IT_ST1, MEM_IOVA + 8 * MIB, MIB), 0);
	CU_ASSERT_EQUAL(map(h, IT_ST0, MEM_IOVA + MIB, MIB, fd, 0, RW), 0);
	/* One request over the whole quota. */
	CU_ASSERT_EQUAL(iommu_nest_unmap_memory(h, IT_ST0, 0, UINT64_MAX), 0);
	close(fd);
	fd = memfd_of(4 * MIB);
	CU_ASSERT_EQUAL(map(h, IT_ST0, MEM_IOVA, 4 * MIB, fd, 0, RW), -EDQUOT);
	close(fd);
	it_stop_ok(d);
}

/*
 * The VT-d driver maps nothing read-only into a nest parent (erratum
 * 772415_SPR17, intel/iommu.c __domain_mapping(): -EINVAL); the mock
 * domain takes it (map_unmap above). VT-d devices exist on the sim only.
 */
static void test_vtd_read_only(void)
{
	struct nestd *d = it_start(NULL);
	struct iommu_nest *h = it_connect(d, "mem-vtd");
	int fd = memfd_of(MIB);

	if (!it_has_device(h, IT_VTD0)) {
		close(fd);
		it_stop_ok(d);
		IT_SKIP("no VT-d device");
	}
	CU_ASSERT_EQUAL(map(h, IT_VTD0, MEM_IOVA, MIB, fd, 0, IOMMU_NEST_MAP_READABLE), -EINVAL);
	/* Nothing was mapped: the same range read-write is free. */
	CU_ASSERT_EQUAL(map(h, IT_VTD0, MEM_IOVA, MIB, fd, 0, RW), 0);
	CU_ASSERT_EQUAL(map(h, IT_VTD0, MEM_IOVA + MIB, MIB, fd, 0, IOMMU_NEST_MAP_WRITEABLE), 0);
	/*
	 * A mock device: in root mode its own IOAS takes read-only memory. In a
	 * VM context it shares vtd0's IOAS, and a map fills every domain on it,
	 * the VT-d nest parent too: the driver's -EINVAL for the whole map.
	 */
	CU_ASSERT_EQUAL(map(h, IT_ST0, MEM_IOVA + 4 * MIB, MIB, fd, 0, IOMMU_NEST_MAP_READABLE),
			it_vm_contexts() ? -EINVAL : 0);
	close(fd);
	it_stop_ok(d);
}

/* ---- one client per device --------------------------------------------------------- */

static void test_other_clients_device(void)
{
	struct nestd *d = it_start("[device " IT_ST1 "]\nallow_users = 54321");
	struct iommu_nest *a = it_connect(d, "mem-a");
	struct iommu_nest *b = it_connect(d, "mem-b");
	int fd = memfd_of(MIB);
	uint32_t ha = it_alloc_st(a, IT_ST0, 1), hb = it_alloc_st(b, IT_ST0, 2);

	/* a's memory on st0 makes st0 a's: b may neither map there nor attach. */
	CU_ASSERT_EQUAL(map(a, IT_ST0, MEM_IOVA, MIB, fd, 0, RW), 0);
	CU_ASSERT_EQUAL(map(b, IT_ST0, MEM_IOVA + 4 * MIB, MIB, fd, 0, RW), -EBUSY);
	CU_ASSERT_EQUAL(iommu_nest_attach(b, IT_ST0, hb), -EBUSY);
	/* b cannot see, let alone unmap, a's memory. */
	CU_ASSERT_EQUAL(iommu_nest_unmap_memory(b, IT_ST0, MEM_IOVA, MIB), -ENOENT);
	CU_ASSERT_EQUAL(iommu_nest_unmap_memory(b, IT_ST0, 0, UINT64_MAX), -ENOENT);
	/* a attaches its own HWPT over its memory. */
	CU_ASSERT_EQUAL(iommu_nest_attach(a, IT_ST0, ha), 0);
	/* All unmapped, a still holds st0 by its attachment. */
	CU_ASSERT_EQUAL(iommu_nest_unmap_memory(a, IT_ST0, MEM_IOVA, MIB), 0);
	CU_ASSERT_EQUAL(map(b, IT_ST0, MEM_IOVA, MIB, fd, 0, RW), -EBUSY);
	/* Detached and unmapped: st0 is free again. */
	CU_ASSERT_EQUAL(iommu_nest_detach(a, IT_ST0), 0);
	CU_ASSERT_EQUAL(map(b, IT_ST0, MEM_IOVA, MIB, fd, 0, RW), 0);
	CU_ASSERT_EQUAL(iommu_nest_attach(a, IT_ST0, ha), -EBUSY);
	CU_ASSERT_EQUAL(iommu_nest_attach(b, IT_ST0, hb), 0);
	/* A device the policy does not give us. */
	CU_ASSERT_EQUAL(map(a, IT_ST1, MEM_IOVA, MIB, fd, 0, RW), -EPERM);
	CU_ASSERT_EQUAL(iommu_nest_unmap_memory(a, IT_ST1, MEM_IOVA, MIB), -EPERM);
	close(fd);
	it_stop_ok(d);
}

/* What the daemon's status view says is attached to dev, and for whom. */
static uint32_t status_hwpt(struct iommu_nest *h, const char *dev, uint64_t *owner)
{
	struct iommu_nest_status *st;
	uint32_t id = UINT32_MAX;

	CU_ASSERT_EQUAL_FATAL(iommu_nest_status(h, &st), 0);
	for (size_t i = 0; i < st->n_devices; i++)
		if (!strcmp(st->devices[i].name, dev)) {
			id = st->devices[i].hwpt_id;
			*owner = st->devices[i].owner_session;
		}
	free(st);
	CU_ASSERT_FATAL(id != UINT32_MAX);
	return id;
}

/*
 * Tenant A's guest memory sits on st0's stage 2, under A's nested HWPT.
 * Tenant B holds st1 (its own memory and HWPT) and tries to reach A's
 * memory through st1: a HWPT on st0 (allocated while st0 was free, or
 * now), attaching st1 to it, or attaching st1 to st0's nest parent. The
 * kernel would take the cross attach (compatible mock domains), so every
 * refusal is the daemon's: Alloc -EBUSY, Attach -EINVAL. Afterwards
 * nothing but B's own HWPT is on st1 in the daemon's view and in the
 * backend's (B's stray HWPT on st0 has no device: Destroy is 0, not
 * -EBUSY), and A's invalidations still hit exactly what they name.
 */
static void test_cross_tenant_stage2(void)
{
	struct nestd *d = it_start(NULL);
	struct iommu_nest *a = it_connect(d, "tenant-a");
	struct iommu_nest *b = it_connect(d, "tenant-b");
	struct iommu_nest_selftest_inv e = {0, 2};
	struct iommu_nest_entry_result res;
	struct iommu_nest_inv_summary sum;
	int fd = memfd_of(2 * MIB);
	uint32_t stray, ha, hb, id = 0;
	uint64_t owner_a, owner_b;

	/* B's HWPT on st0 from before A took it (st0 was free then). */
	stray = it_alloc_st(b, IT_ST0, 9);
	CU_ASSERT_EQUAL(map(a, IT_ST0, MEM_IOVA, 2 * MIB, fd, 0, RW), 0);
	ha = it_alloc_st(a, IT_ST0, 0xa);
	CU_ASSERT_EQUAL(iommu_nest_attach(a, IT_ST0, ha), 0);
	CU_ASSERT_EQUAL(map(b, IT_ST1, MEM_IOVA, MIB, fd, 0, RW), 0);
	hb = it_alloc_st(b, IT_ST1, 0xb);
	CU_ASSERT_EQUAL(iommu_nest_attach(b, IT_ST1, hb), 0);

	/* A HWPT on A's stage 2 for B: busy, like Attach and MapMemory. */
	CU_ASSERT_EQUAL(iommu_nest_alloc_selftest(b, IT_ST0, 5, &id), -EBUSY);
	CU_ASSERT_EQUAL(id, 0);
	/* st1 onto B's own HWPT on st0, i.e. onto A's IOAS: not its stage 2. */
	CU_ASSERT_EQUAL(iommu_nest_attach(b, IT_ST1, stray), -EINVAL);
	/* st1 onto st0's nest parent (B knows its id from the stray's Alloc). */
	CU_ASSERT_EQUAL(iommu_nest_attach(b, IT_ST1, it_parent_of(b, stray)), -EINVAL);
	CU_ASSERT_EQUAL(iommu_nest_attach(b, IT_ST0, stray), -EBUSY);

	/* The daemon's view: each device on its own tenant's HWPT. */
	CU_ASSERT_EQUAL(status_hwpt(a, IT_ST0, &owner_a), ha);
	CU_ASSERT_EQUAL(status_hwpt(a, IT_ST1, &owner_b), hb);
	CU_ASSERT(owner_a != 0 && owner_b != 0 && owner_a != owner_b);
	/* The backend's: st1 never went onto the stray, so no device holds it. */
	CU_ASSERT_EQUAL(iommu_nest_destroy(b, stray), 0);
	/* B's own HWPT is still what st1 is on: destroying it is -EBUSY. */
	CU_ASSERT_EQUAL(iommu_nest_destroy(b, hb), -EBUSY);

	/* A's invalidation: exactly slot 2 of A's HWPT, B's slots untouched. */
	CU_ASSERT_EQUAL(
	    iommu_nest_invalidate(a, ha, IOMMU_NEST_INV_DATA_SELFTEST, &e, 1, 0, &res, &sum), 0);
	CU_ASSERT_EQUAL(sum.entries_handled, 1);
	CU_ASSERT_EQUAL(res.state, IOMMU_NEST_ENTRY_DONE);
	if (it_has_cap(a, IOMMU_NEST_CAP_CHECK_IOTLB)) {
		for (uint32_t slot = 0; slot < 4; slot++) {
			CU_ASSERT_EQUAL(iommu_nest_check_iotlb(a, ha, slot, slot == 2 ? 0 : 0xa),
					0);
			CU_ASSERT_EQUAL(iommu_nest_check_iotlb(b, hb, slot, 0xb), 0);
		}
	}
	close(fd);
	it_stop_ok(d);
}

static void test_disconnect_unmaps(void)
{
	struct nestd *d = it_start(NULL);
	struct iommu_nest *a = it_connect(d, "mem-gone");
	struct iommu_nest *b;
	int fd = memfd_of(2 * MIB);
	uint32_t id = it_alloc_st(a, IT_ST0, 3);

	CU_ASSERT_EQUAL(map(a, IT_ST0, MEM_IOVA, 2 * MIB, fd, 0, RW), 0);
	CU_ASSERT_EQUAL(map(a, IT_ST1, MEM_IOVA + 4 * MIB, 2 * MIB, fd, 0, RW), 0);
	CU_ASSERT_EQUAL(iommu_nest_attach(a, IT_ST0, id), 0);
	it_close(a);
	/* The same ranges, on the same devices, for the next client. */
	b = it_connect(d, "mem-next");
	id = it_alloc_st(b, IT_ST0, 4);
	CU_ASSERT_EQUAL(map(b, IT_ST0, MEM_IOVA, 2 * MIB, fd, 0, RW), 0);
	CU_ASSERT_EQUAL(map(b, IT_ST1, MEM_IOVA + 4 * MIB, 2 * MIB, fd, 0, RW), 0);
	CU_ASSERT_EQUAL(iommu_nest_attach(b, IT_ST0, id), 0);
	CU_ASSERT_EQUAL(it_stats(b).hwpts_active, 1);
	close(fd);
	it_stop_ok(d);
}

/* ---- descriptor framing ------------------------------------------------------------ */

static IommuNest__Reply *raw_map(int x, uint64_t id, uint64_t iova, const int *fds, int nfds)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__MapMemory m = IOMMU_NEST__MAP_MEMORY__INIT;
	IommuNest__Reply *rep;
	uint8_t buf[128];
	size_t len;
	int err;

	m.device = IT_ST0;
	m.iova = iova;
	m.length = IT_PAGE;
	m.flags = RW;
	req.id = id;
	req.body_case = IOMMU_NEST__REQUEST__BODY_MAP_MEMORY;
	req.map_memory = &m;
	len = iommu_nest__request__pack(&req, buf);
	CU_ASSERT_EQUAL_FATAL(it_raw_send_fds(x, buf, len, fds, nfds), 0);
	rep = it_raw_recv(x, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(rep);
	CU_ASSERT_EQUAL(rep->id, id);
	return rep;
}

static int32_t raw_map_status(int x, uint64_t id, uint64_t iova, const int *fds, int nfds)
{
	IommuNest__Reply *rep = raw_map(x, id, iova, fds, nfds);
	int32_t status = rep->status;

	iommu_nest__reply__free_unpacked(rep, NULL);
	return status;
}

/* The daemon's descriptors, once it settled (it answers before it closes its side). */
static void expect_daemon_fds(struct nestd *d, int want)
{
	int n = -1;

	for (int i = 0; i < 200; i++) {
		n = fd_count(d->pid);
		if (n == want)
			break;
		usleep(10000);
	}
	CU_ASSERT_EQUAL(n, want);
}

static void test_fd_framing(void)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__Stats st = IOMMU_NEST__STATS__INIT;
	struct nestd *d = it_start(NULL);
	int x = it_raw_connect(d), y;
	int fds[20], mine, base;
	IommuNest__Reply *rep;
	uint8_t buf[64];
	size_t len;

	it_raw_hello(x);
	for (int i = 0; i < 20; i++)
		fds[i] = memfd_of(MIB);
	mine = fd_count(0);
	base = fd_count(d->pid);
	/*
	 * The session's first device claim opens its VM context: one more
	 * descriptor (its /dev/iommu; the sim's anchor), held until it ends.
	 */
	CU_ASSERT_EQUAL(raw_map_status(x, 9, MEM_IOVA + 8 * MIB, fds, 1), 0);
	base += it_context_fds();
	expect_daemon_fds(d, base);

	/* MapMemory without a descriptor, and with two: EINVAL, both closed. */
	CU_ASSERT_EQUAL(raw_map_status(x, 10, MEM_IOVA, NULL, 0), -EINVAL);
	CU_ASSERT_EQUAL(raw_map_status(x, 11, MEM_IOVA, fds, 2), -EINVAL);
	expect_daemon_fds(d, base);
	/* A failing MapMemory with its one descriptor closes it too. */
	CU_ASSERT_EQUAL(raw_map_status(x, 12, MEM_IOVA + 0x800, fds, 1), -EINVAL);
	expect_daemon_fds(d, base);
	/* Exactly one: mapped, and the daemon keeps no descriptor for it. */
	CU_ASSERT_EQUAL(raw_map_status(x, 13, MEM_IOVA, fds, 1), 0);
	expect_daemon_fds(d, base);
	/* Any other request with a descriptor: served, descriptor closed. */
	req.id = 14;
	req.body_case = IOMMU_NEST__REQUEST__BODY_STATS;
	req.stats = &st;
	len = iommu_nest__request__pack(&req, buf);
	CU_ASSERT_EQUAL(it_raw_send_fds(x, buf, len, fds, 3), 0);
	rep = it_raw_recv(x, &(int){ 0 });
	CU_ASSERT_PTR_NOT_NULL_FATAL(rep);
	CU_ASSERT_EQUAL(rep->status, 0);
	iommu_nest__reply__free_unpacked(rep, NULL);
	expect_daemon_fds(d, base);

	/* An undecodable packet with a descriptor: session closed, descriptor too. */
	y = it_raw_connect(d);
	it_raw_hello(y);
	memset(buf, 0xff, sizeof(buf));
	CU_ASSERT_EQUAL(it_raw_send_fds(y, buf, sizeof(buf), fds, 1), 0);
	rep = it_raw_recv(y, &(int){ 0 });
	if (rep) {
		CU_ASSERT_EQUAL(rep->status, -EPROTO);
		iommu_nest__reply__free_unpacked(rep, NULL);
	}
	CU_ASSERT(it_raw_eof(y));
	it_raw_close(y);
	expect_daemon_fds(d, base);

	/* More descriptors than a packet may carry (MSG_CTRUNC): closed all the same. */
	y = it_raw_connect(d);
	it_raw_hello(y);
	req.id = 15;
	len = iommu_nest__request__pack(&req, buf);
	CU_ASSERT_EQUAL(it_raw_send_fds(y, buf, len, fds, 20), 0);
	rep = it_raw_recv(y, &(int){ 0 });
	if (rep)
		iommu_nest__reply__free_unpacked(rep, NULL);
	CU_ASSERT(it_raw_eof(y));
	it_raw_close(y);
	expect_daemon_fds(d, base);

	/* The session that took them is still fine, and so are our descriptors. */
	CU_ASSERT_EQUAL(raw_map_status(x, 16, MEM_IOVA, fds, 1), -EEXIST);
	CU_ASSERT_EQUAL(fd_count(0), mine);
	for (int i = 0; i < 20; i++)
		close(fds[i]);
	it_stop_ok(d);
}

static const struct it_case cases[] = {
	{ "map_unmap", test_map_unmap },
	{ "map_invalid", test_map_invalid },
	{ "overlap_root", test_overlap_root },
	{ "overlap_context", test_overlap_context },
	{ "quota", test_quota },
	{ "other_clients_device", test_other_clients_device },
	{ "vtd_read_only", test_vtd_read_only },
	{ "cross_tenant_stage2", test_cross_tenant_stage2 },
	{ "disconnect_unmaps", test_disconnect_unmaps },
	{ "fd_framing", test_fd_framing },
	{ NULL, NULL },
};

int main(int argc, char **argv)
{
	return it_main(argc, argv, "memory", cases);
}
