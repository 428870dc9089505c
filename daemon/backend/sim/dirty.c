/* SPDX-License-Identifier: MIT */
/*
 * Simulator model of dirty tracking on a device's nest parent, after
 * Linux 6.12: IOMMU_HWPT_SET_DIRTY_TRACKING and IOMMU_HWPT_GET_DIRTY_BITMAP
 * (hw_pagetable.c, io_pagetable.c iopt_set_dirty_tracking() and
 * iommufd_check_iova_range(), iova_bitmap.c), and the selftest's
 * IOMMU_TEST_OP_DIRTY that plays the device writing to memory.
 *
 * The nest parent has dirty ops when the device reports
 * IOMMU_HW_CAP_DIRTY_TRACKING (hwinfo.c): the daemon allocates it with
 * IOMMU_HWPT_ALLOC_DIRTY_TRACKING then. Dirty pages are kept per 4 KiB
 * page of the device's IOAS, only mapped ones, like the IOPTEs' dirty bits.
 */
#include <errno.h>
#include <string.h>

#include "backend/sim/state.h"

/* iopt->iova_alignment: the domain's smallest page (the mock's is PAGE_SIZE / 2 on x86). */
static uint64_t iova_alignment(enum device_kind kind)
{
	return kind == DEVICE_KIND_SELFTEST ? 2048 : 4096;
}

static bool has_dirty_ops(const struct sim_state *st, const char *device)
{
	struct backend_hw_info info;

	return !sim_hw_info(st, device, &info) && (info.capabilities & IOMMU_HW_CAP_DIRTY_TRACKING);
}

int sim_set_dirty_tracking(struct sim_state *st, const char *device, bool enable)
{
	int dev = sim_dev_find(st, device);
	struct sim_dev *d;

	if (dev < 0)
		return dev;
	d = &st->devs[dev];
	/* iopt_set_dirty_tracking(): no dirty ops, either way. */
	if (!has_dirty_ops(st, device))
		return -EOPNOTSUPP;
	/* Enabling clears what the PTEs had, for a clean snapshot (iopt_clear_dirty_data()). */
	if (enable) {
		sim_iset_free(&d->dirty);
		sim_iset_init(&d->dirty);
	}
	d->dirty_tracking = enable;
	return 0;
}

/* iommufd_check_iova_range(), in its order. */
static int check_iova_range(enum device_kind kind, const struct backend_dirty *bm, uint64_t *last)
{
	uint64_t align = iova_alignment(kind);

	if (!bm->length)
		return -EINVAL;
	if (__builtin_add_overflow(bm->iova, bm->length - 1, last))
		return -EOVERFLOW;
	if ((bm->iova & (align - 1)) || ((*last + 1) & (align - 1)))
		return -EINVAL;
	if (!bm->page_size)
		return -EINVAL;
	if ((bm->iova & (bm->page_size - 1)) || ((*last + 1) & (bm->page_size - 1)))
		return -EINVAL;
	return 0;
}

static void set_bits(uint64_t *data, uint64_t first, uint64_t last)
{
	for (uint64_t b = first; b <= last; b++)
		data[b / 64] |= 1ULL << (b % 64);
}

int sim_get_dirty_bitmap(struct sim_state *st, const char *device, const struct backend_dirty *bm)
{
	int dev = sim_dev_find(st, device);
	uint64_t last, walked_last = 0;
	bool full, any;
	unsigned shift;
	struct sim_dev *d;
	int walk_rc;
	int rc;

	if (dev < 0)
		return dev;
	d = &st->devs[dev];
	if (bm->flags & ~IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR)
		return -EOPNOTSUPP;
	rc = check_iova_range(d->kind, bm, &last);
	if (rc)
		return rc;
	if (!has_dirty_ops(st, device))
		return -EOPNOTSUPP;
	/*
	 * __iommu_read_and_clear_dirty(): the driver reads the mapped areas
	 * from iova on, one contiguous run, and the walk fails at the first
	 * gap (-EINVAL); with tracking off the driver refuses the first area
	 * (-EINVAL, the mock's and VT-d's rule). 6.12 returns what the walk
	 * returns since 6.12.118 ("iommufd/iova_bitmap: Ensure that
	 * iova_bitmap_set() handles the full IOVA"); 7.2 drops it (as 6.12
	 * did before): 0. Either way only the run before the gap is read.
	 */
	walk_rc = st->rules == KERNEL_RULES_7 ? 0 : -EINVAL;
	full = sim_mapped_run(sim_ioas_of(st, (uint32_t)dev), bm->iova, last, &any, &walked_last);
	if (!d->dirty_tracking || !any)
		return walk_rc;
	/* The bit of an address, as iova_bitmap.c counts it: pgshift = __ffs(page_size). */
	shift = (unsigned)__builtin_ctzll(bm->page_size);
	for (uint32_t i = 0; i < d->dirty.n; i++) {
		uint64_t lo = d->dirty.r[i].start << SIM_PFN_SHIFT;
		uint64_t hi = (d->dirty.r[i].end << SIM_PFN_SHIFT) - 1; /* wraps at the limit */

		if (lo < bm->iova)
			lo = bm->iova;
		if (hi > walked_last)
			hi = walked_last;
		if (lo > hi)
			continue;
		set_bits(bm->data, (lo - bm->iova) >> shift, (hi - bm->iova) >> shift);
	}
	/* The read clears the dirty bits of the IO pages it walked. */
	rc = bm->flags & IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR
		 ? 0
		 : sim_iset_remove(&d->dirty, bm->iova >> SIM_PFN_SHIFT,
				   (walked_last >> SIM_PFN_SHIFT) + 1);
	return rc ? rc : full ? 0 : walk_rc;
}

/* Marks the mapped part of [iova, last] dirty. */
static int mark_mapped(const struct sim_dev *io, struct sim_dev *d, uint64_t iova, uint64_t last)
{
	for (uint32_t i = 0; i < io->n_maps; i++) {
		uint64_t lo = io->maps[i].iova > iova ? io->maps[i].iova : iova;
		uint64_t hi = io->maps[i].last < last ? io->maps[i].last : last;
		int rc;

		if (lo > hi)
			continue;
		rc = sim_iset_add(&d->dirty, lo >> SIM_PFN_SHIFT, (hi >> SIM_PFN_SHIFT) + 1);
		if (rc)
			return rc;
	}
	return 0;
}

/* iommufd_test_dirty(): its checks in its order, then a bit per page. */
int sim_set_dirty(struct sim_state *st, const char *device, const struct backend_dirty *bm)
{
	int dev = sim_dev_find(st, device);
	uint64_t n;
	struct sim_dev *d;

	if (dev < 0)
		return dev;
	d = &st->devs[dev];
	if (!bm->page_size || !bm->length || bm->iova % bm->page_size || bm->length % bm->page_size)
		return -EINVAL;
	n = bm->length / bm->page_size;
	if (n > (uint64_t)16 * 1024 * 1024 * 8)
		return -EOVERFLOW;
	if (!d->dirty_tracking)
		return -EINVAL;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t at = bm->iova + i * bm->page_size;
		int rc;

		if (!(bm->data[i / 64] & (1ULL << (i % 64))))
			continue;
		rc = mark_mapped(sim_ioas_of(st, (uint32_t)dev), d, at, at + bm->page_size - 1);
		if (rc)
			return rc;
	}
	return 0;
}

void sim_dirty_forget(struct sim_state *st, const char *device, uint64_t iova, uint64_t length)
{
	int dev = sim_dev_find(st, device);
	uint64_t last;

	if (dev < 0)
		return;
	if ((iova == 0 && length == UINT64_MAX) ||
	    __builtin_add_overflow(iova, length ? length - 1 : 0, &last)) {
		sim_iset_free(&st->devs[dev].dirty);
		sim_iset_init(&st->devs[dev].dirty);
		return;
	}
	/* Only an unmap that cut an interval in two can fail here (-ENOMEM): then stale bits stay.
	 */
	(void)sim_iset_remove(&st->devs[dev].dirty, iova >> SIM_PFN_SHIFT,
			      (last >> SIM_PFN_SHIFT) + 1);
}
