// SPDX-License-Identifier: MIT
/*
 * IOMMU_HWPT_INVALIDATE as Linux 6.12 does it (and 7.x where the two
 * differ, with st->rules: [daemon] sim_kernel): the core checks of
 * iommufd_hwpt_invalidate() (iommufd/hw_pagetable.c:413), then the
 * driver's cache_invalidate_user() (intel/nested.c:90 for VT-d,
 * iommufd/selftest.c mock_domain_cache_invalidate_user() for the mock),
 * which walks the entries in order and stops at the first failing one.
 *
 * On top of that, fault injection: a matching entry that passed the
 * kernel's checks fails with the injected errno (the walk stops) or, with
 * errno 0, reports only a hardware error and the walk goes on. Either way
 * the faulted entry does not take effect, so its pages stay cached.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "backend/sim/state.h"

/* A range for FAULT_AT_ADDR; selftest entries have none. */
struct sim_entry_range {
	bool valid;
	uint64_t start, end; /* pfns, [start, end) */
};

static void sim_sleep_us(uint32_t us)
{
	struct timespec ts = {
	    .tv_sec = us / 1000000,
	    .tv_nsec = (long)(us % 1000000) * 1000,
	};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

union inv_entry {
	struct iommu_hwpt_vtd_s1_invalidate vtd;
	struct iommu_hwpt_invalidate_selftest mock;
};

/*
 * iommu_copy_struct_from_user_array(): entry i sits at i * entry_len; a
 * length outside [min_len, size] is -EINVAL, a shorter one is zero-extended
 * into *buf. *e points at the entry to use: in the common case (the full
 * struct, aligned) the caller's own bytes, which hold still during the
 * call - a copy read back field by field at once would stall on
 * store-to-load forwarding.
 */
static int entry_at(union inv_entry *buf, const void **e, size_t size, size_t min_len,
		    const struct backend_inv *inv, uint32_t i)
{
	const char *src = (const char *)inv->entries + (size_t)inv->entry_len * i;

	if (inv->entry_len < min_len || inv->entry_len > size)
		return -EINVAL;
	if (inv->entry_len == size && !((uintptr_t)src & (_Alignof(union inv_entry) - 1))) {
		*e = src;
		return 0;
	}
	memcpy(buf, src, inv->entry_len);
	memset((char *)buf + inv->entry_len, 0, size - inv->entry_len);
	*e = buf;
	return 0;
}

static bool fault_matches(const struct sim_state *st, const struct sim_obj *o, uint32_t i,
			  const struct sim_entry_range *r)
{
	const struct backend_fault *f = &st->fault;
	uint64_t pfn = f->addr >> SIM_PFN_SHIFT;

	if (f->hwpt_id && f->hwpt_id != o->id)
		return false;
	switch (f->mode) {
	case FAULT_AT_INDEX:
		return i == f->index;
	case FAULT_AT_ADDR:
		return r->valid && pfn >= r->start && pfn < r->end;
	default:
		return false;
	}
}

/*
 * Fires the injected fault on entry i if it matches. Returns true when it
 * fired, with *rc the entry's result (0: handled but not applied).
 */
static bool fault_fire(struct sim_state *st, const struct sim_obj *o, struct backend_inv *inv,
		       uint32_t i, const struct sim_entry_range *r, int *rc)
{
	if (!fault_matches(st, o, i, r))
		return false;
	if (inv->hw_error)
		inv->hw_error[i] = st->fault.hw_error;
	*rc = st->fault.error;
	if (st->fault.count) {
		/* A counted fault's remaining fires are saved state. */
		st->inv_changed = true;
		if (!--st->fault_fires_left)
			memset(&st->fault, 0, sizeof(st->fault)); /* latency stays */
	}
	return true;
}

/*
 * One driver's cache_invalidate_user(), entry by entry: the walk is the
 * same for every driver (walk_entries()), only the entry type, its checks
 * and its effect differ.
 */
struct inv_driver {
	uint32_t data_type; /* the IOMMU_HWPT_INVALIDATE_DATA_* it takes */
	size_t entry_size, min_len;
	/* The driver's per-entry checks; on success *r is the entry's range. */
	int (*check)(const void *e, struct sim_entry_range *r);
	/* Sets *changed when it changed what the model keeps. */
	int (*apply)(struct sim_obj *o, const void *e, const struct sim_entry_range *r,
		     bool *changed);
};

/* intel/nested.c:110-120, the per-entry rules. */
static int vtd_check_entry(const void *entry, struct sim_entry_range *r)
{
	const struct iommu_hwpt_vtd_s1_invalidate *e = entry;

	if ((e->flags & ~(uint32_t)IOMMU_VTD_INV_FLAGS_LEAF) || e->__reserved)
		return -EOPNOTSUPP;
	if ((e->addr & (IOMMUFD_PAGE_SIZE - 1)) || (e->npages == UINT64_MAX && e->addr))
		return -EINVAL;
	r->valid = true;
	sim_range_of(e->addr, e->npages, &r->start, &r->end);
	return 0;
}

/*
 * Drops exactly the entry's pages, never the aligned block the hardware
 * would flush: the sim must expose a coalescer that under-invalidates.
 * Non-leaf also drops paging-structure caches.
 */
static int vtd_apply(struct sim_obj *o, const void *entry, const struct sim_entry_range *r,
		     bool *changed)
{
	const struct iommu_hwpt_vtd_s1_invalidate *e = entry;
	bool leaf = e->flags & IOMMU_VTD_INV_FLAGS_LEAF;
	/* Removal only ever drops pages: the totals tell whether anything went. */
	uint64_t before = o->iotlb_set.pages + o->psc_set.pages;
	int rc;

	/* Nothing cached that this entry drops: nothing to look up. */
	if (!o->iotlb_set.n && (leaf || !o->psc_set.n))
		return 0;
	rc = sim_iset_remove(&o->iotlb_set, r->start, r->end);
	if (!rc && !leaf)
		rc = sim_iset_remove(&o->psc_set, r->start, r->end);
	if (o->iotlb_set.pages + o->psc_set.pages != before)
		*changed = true;
	return rc;
}

static int mock_check_entry(const void *entry, struct sim_entry_range *r)
{
	const struct iommu_hwpt_invalidate_selftest *e = entry;

	if (e->flags & ~(uint32_t)IOMMU_TEST_INVALIDATE_FLAG_ALL)
		return -EOPNOTSUPP;
	if (e->iotlb_id > MOCK_NESTED_DOMAIN_IOTLB_ID_MAX)
		return -EINVAL;
	r->valid = false; /* mock entries name slots, not addresses */
	return 0;
}

static int mock_apply(struct sim_obj *o, const void *entry, const struct sim_entry_range *r,
		      bool *changed)
{
	const struct iommu_hwpt_invalidate_selftest *e = entry;
	int j;

	(void)r;
	if (!(e->flags & IOMMU_TEST_INVALIDATE_FLAG_ALL)) {
		*changed |= o->iotlb[e->iotlb_id] != 0;
		o->iotlb[e->iotlb_id] = 0;
		return 0;
	}
	/* FLAG_ALL ignores iotlb_id (but it was still range checked). */
	for (j = 0; j < MOCK_NESTED_DOMAIN_IOTLB_NUM; j++) {
		*changed |= o->iotlb[j] != 0;
		o->iotlb[j] = 0;
	}
	return 0;
}

static const struct inv_driver vtd_driver = {
    .data_type = IOMMU_HWPT_INVALIDATE_DATA_VTD_S1,
    .entry_size = sizeof(struct iommu_hwpt_vtd_s1_invalidate),
    .min_len = VTD_S1_INV_MIN_LEN,
    .check = vtd_check_entry,
    .apply = vtd_apply,
};

static const struct inv_driver mock_driver = {
    .data_type = IOMMU_HWPT_INVALIDATE_DATA_SELFTEST,
    .entry_size = sizeof(struct iommu_hwpt_invalidate_selftest),
    .min_len = SELFTEST_INV_MIN_LEN,
    .check = mock_check_entry,
    .apply = mock_apply,
};

/*
 * Walks the n entries in order and stops at the first failing one; a fault
 * that fires replaces the entry's effect. inv->entry_num gets the number
 * handled before the failure. Inlined into each call with its driver a
 * constant, so that the per-entry check and apply are direct (and inline)
 * calls, not through the table.
 */
#define WALK_INLINE static inline __attribute__((always_inline))
WALK_INLINE int walk_entries(struct sim_state *st, struct sim_obj *o, struct backend_inv *inv,
			     uint32_t n, const struct inv_driver *drv)
{
	union inv_entry buf;
	const void *e = NULL;
	struct sim_entry_range r = {.valid = false};
	uint32_t i, processed = 0;
	int rc = 0;

	if (inv->data_type != drv->data_type) {
		rc = -EINVAL;
		goto out;
	}
	for (i = 0; i < n; i++) {
		rc = entry_at(&buf, &e, drv->entry_size, drv->min_len, inv, i);
		if (!rc)
			rc = drv->check(e, &r);
		if (rc)
			break;
		/* No fault injected (the common case): no call to find that out. */
		if (st->fault.mode == FAULT_CLEAR || !fault_fire(st, o, inv, i, &r, &rc))
			rc = drv->apply(o, e, &r, &st->inv_changed);
		if (rc)
			break;
		processed++;
	}
out:
	inv->entry_num = processed;
	return rc;
}

int sim_invalidate(struct sim_state *st, struct backend_inv *inv)
{
	uint32_t n = inv->entry_num;
	struct sim_obj *o;

	if (st->latency_us)
		sim_sleep_us(st->latency_us);
	/* Every early exit reports nothing handled (hw_pagetable.c:454). */
	inv->entry_num = 0;
	if (inv->reserved)
		return -EOPNOTSUPP;
	if (n && (!inv->entries || !inv->entry_len || inv->entry_len > IOMMUFD_PAGE_SIZE ||
		  n > IOMMU_HWPT_INVALIDATE_ENTRY_NUM_MAX))
		return -EINVAL;
	/*
	 * 6.12's iommufd_get_hwpt_nested(): unknown or paging HWPT is -ENOENT;
	 * 7.x looks up any object and answers the wrong kind -EINVAL.
	 */
	o = sim_obj_find(st, inv->hwpt_id);
	if (!o)
		return -ENOENT;
	/* 7.x hw_pagetable.c: a vIOMMU id goes to its driver's cache_invalidate. */
	if (o->type == SIM_OBJ_VIOMMU)
		return sim_viommu_invalidate(st, o, inv, n);
	if (o->type != SIM_OBJ_NESTED)
		return kernel_rules_inv_wrong_object(st->rules);
	/* arm_smmu_nested_ops has no cache_invalidate_user: commands go to the vIOMMU. */
	if (o->kind == DEVICE_KIND_SMMUV3)
		return -EOPNOTSUPP;
	if (o->kind == DEVICE_KIND_VTD)
		return walk_entries(st, o, inv, n, &vtd_driver);
	return walk_entries(st, o, inv, n, &mock_driver);
}

int sim_inject_fault(struct sim_state *st, const struct backend_fault *f)
{
	if (f->mode > FAULT_AT_ADDR)
		return -EINVAL;
	/* A negative errno the kernel could return, or 0. */
	if (f->error > 0 || f->error < -4095)
		return -EINVAL;
	/* A fault that reports nothing would silently drop entries. */
	if (f->mode != FAULT_CLEAR && !f->error && !f->hw_error)
		return -EINVAL;
	if (f->mode == FAULT_CLEAR)
		memset(&st->fault, 0, sizeof(st->fault));
	else
		st->fault = *f;
	st->fault_fires_left = st->fault.count;
	/* Latency is independent of the mode: CLEAR with latency slows only. */
	st->latency_us = f->latency_us;
	return 0;
}
