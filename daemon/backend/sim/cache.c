// SPDX-License-Identifier: MIT
/*
 * The simulator's cache models, seen from the test side: the selftest mock
 * IOTLB slots (IOMMU_TEST_OP_MD_CHECK_IOTLB) and the VT-d IOTLB / paging-
 * structure cache interval sets (populate and query). Invalidation, the
 * only thing that clears them, lives in backend/sim/inv.c.
 */
#include <errno.h>

#include "backend/sim/state.h"

#define SIM_PAGE_MASK ((UINT64_C(1) << SIM_PFN_SHIFT) - 1)

int sim_check_iotlb(struct sim_state *st, uint32_t id, uint32_t iotlb_id, uint32_t expected)
{
	struct sim_obj *o = sim_obj_find(st, id);

	/*
	 * selftest.c get_md_pagetable_nested(): not a nested HWPT is -ENOENT
	 * (object type mismatch), a nested HWPT of another driver -EINVAL.
	 */
	if (!o || o->type != SIM_OBJ_NESTED)
		return -ENOENT;
	if (o->kind != DEVICE_KIND_SELFTEST)
		return -EINVAL;
	/* selftest.c iommufd_test_md_check_iotlb() */
	if (iotlb_id > MOCK_NESTED_DOMAIN_IOTLB_ID_MAX || o->iotlb[iotlb_id] != expected)
		return -EINVAL;
	return 0;
}

/* The VT-d nested HWPT a populate/query names, or the errno. */
static int vtd_nested(struct sim_state *st, uint32_t id, struct sim_obj **out)
{
	struct sim_obj *o = sim_obj_find(st, id);

	if (!o || o->type != SIM_OBJ_NESTED)
		return -ENOENT;
	if (o->kind != DEVICE_KIND_VTD)
		return -EINVAL;
	*out = o;
	return 0;
}

int sim_populate(struct sim_state *st, uint32_t id, uint64_t addr, uint64_t npages, uint32_t kind)
{
	struct sim_obj *o;
	uint64_t start;
	int rc;

	rc = vtd_nested(st, id, &o);
	if (rc)
		return rc;
	if ((addr & SIM_PAGE_MASK) || !npages)
		return -EINVAL;
	if (kind != SIM_KIND_IOTLB && kind != SIM_KIND_PSC)
		return -EINVAL;
	/* Unlike invalidation, seeding past the top is a caller bug. */
	start = addr >> SIM_PFN_SHIFT;
	if (npages > SIM_PFN_LIMIT - start)
		return -EINVAL;
	return sim_iset_add(kind == SIM_KIND_IOTLB ? &o->iotlb_set : &o->psc_set, start,
			    start + npages);
}

int sim_query(struct sim_state *st, uint32_t id, uint64_t addr, uint64_t npages,
	      uint64_t *iotlb_pages, uint64_t *psc_pages)
{
	uint64_t start, end;
	struct sim_obj *o;
	int rc;

	rc = vtd_nested(st, id, &o);
	if (rc)
		return rc;
	if (addr & SIM_PAGE_MASK)
		return -EINVAL;
	sim_range_of(addr, npages, &start, &end);
	if (iotlb_pages)
		*iotlb_pages = sim_iset_count(&o->iotlb_set, start, end);
	if (psc_pages)
		*psc_pages = sim_iset_count(&o->psc_set, start, end);
	return 0;
}
