/* SPDX-License-Identifier: MIT */
/*
 * Coalescing of selftest mock invalidations: each entry clears one of the
 * four mock IOTLB slots, FLAG_ALL clears them all. Duplicates collapse to
 * one entry per slot (in slot order); FLAG_ALL anywhere, or all four slots
 * asked for, becomes one FLAG_ALL entry. There is no page cost model for
 * the mock, so pages_flushed stays 0.
 */
#include "inv/coalesce.h"

#include <errno.h>
#include <string.h>

#include "backend/iommufd_uapi.h"

int coalesce_selftest(const void *in, uint32_t n, const struct coalesce_params *p,
		      struct coalesce_plan *plan)
{
	const struct iommu_hwpt_invalidate_selftest *e = in;
	struct iommu_hwpt_invalidate_selftest out[MOCK_NESTED_DOMAIN_IOTLB_NUM];
	uint32_t slot_sub[MOCK_NESTED_DOMAIN_IOTLB_NUM];
	uint32_t slots = 0, k = 0;
	bool all = false;
	int rc;

	if (!p->enabled)
		return coalesce_identity(in, n, sizeof(*e), plan);
	plan->n_sub = 0;
	plan->pages_flushed = 0;
	for (uint32_t i = 0; i < n; i++) {
		/* Validation rejects these; never guess what one would clear. */
		if (e[i].iotlb_id > MOCK_NESTED_DOMAIN_IOTLB_ID_MAX)
			return -EINVAL;
		if (e[i].flags & IOMMU_TEST_INVALIDATE_FLAG_ALL)
			all = true;
		slots |= 1u << e[i].iotlb_id;
	}
	if (!n)
		return 0;
	if (slots == (1u << MOCK_NESTED_DOMAIN_IOTLB_NUM) - 1)
		all = true;

	memset(out, 0, sizeof(out));
	if (all) {
		out[0].flags = IOMMU_TEST_INVALIDATE_FLAG_ALL;
		k = 1;
	} else {
		for (uint32_t s = 0; s < MOCK_NESTED_DOMAIN_IOTLB_NUM; s++) {
			if (!(slots & (1u << s)))
				continue;
			slot_sub[s] = k;
			out[k++].iotlb_id = s;
		}
	}
	rc = coalesce_plan_reserve(plan, n, k, sizeof(*e));
	if (rc)
		return rc;
	memcpy(plan->sub, out, k * sizeof(*e));
	for (uint32_t i = 0; i < n; i++)
		plan->first[i] = plan->last[i] = all ? 0 : slot_sub[e[i].iotlb_id];
	plan->n_sub = k;
	return 0;
}
