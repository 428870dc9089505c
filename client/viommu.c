/* SPDX-License-Identifier: MIT */
/*
 * vIOMMU and vDEVICE objects through the daemon (Linux 7.x), and
 * invalidation on a vIOMMU id: the entries go as raw bytes in the driver's
 * layout, with the object kind saying which layout that is.
 */
#include <errno.h>
#include <stdint.h>

#include "iommu_nest.h"
#include "iommu_nest_call.h"

_Static_assert(sizeof(struct iommu_nest_viommu_selftest_inv) == 12, "selftest vIOMMU entry");
_Static_assert(IOMMU_NEST_OBJECT_VIOMMU == IOMMU_NEST__OBJECT_KIND__OBJECT_VIOMMU, "kind");
_Static_assert(IOMMU_NEST_OBJECT_VDEVICE == IOMMU_NEST__OBJECT_KIND__OBJECT_VDEVICE, "kind");

int iommu_nest_alloc_viommu(struct iommu_nest *h, const char *device, uint32_t type, uint32_t flags,
			    uint32_t *viommu_id)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__AllocViommu a = IOMMU_NEST__ALLOC_VIOMMU__INIT;
	IommuNest__Reply *reply;
	int err;

	if (!device || !viommu_id)
		return -EINVAL;
	a.device = (char *)device;
	a.type = type;
	a.flags = flags;
	req.body_case = IOMMU_NEST__REQUEST__BODY_ALLOC_VIOMMU;
	req.alloc_viommu = &a;
	err = nest_call(h, &req, IOMMU_NEST__REPLY__BODY_ALLOC_VIOMMU, &reply);
	if (err)
		return err;
	*viommu_id = reply->alloc_viommu->viommu_id;
	nest_set_viommu_token(h, &reply->alloc_viommu->resume_token);
	nest_release(h);
	return 0;
}

int iommu_nest_alloc_vdevice(struct iommu_nest *h, uint32_t viommu_id, const char *device,
			     uint64_t virt_id, uint32_t *vdevice_id)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__AllocVdevice a = IOMMU_NEST__ALLOC_VDEVICE__INIT;
	IommuNest__Reply *reply;
	int err;

	if (!device || !vdevice_id)
		return -EINVAL;
	a.viommu_id = viommu_id;
	a.device = (char *)device;
	a.virt_id = virt_id;
	req.body_case = IOMMU_NEST__REQUEST__BODY_ALLOC_VDEVICE;
	req.alloc_vdevice = &a;
	err = nest_call(h, &req, IOMMU_NEST__REPLY__BODY_ALLOC_VDEVICE, &reply);
	if (err)
		return err;
	*vdevice_id = reply->alloc_vdevice->vdevice_id;
	nest_release(h);
	return 0;
}

int iommu_nest_destroy_object(struct iommu_nest *h, uint32_t kind, uint32_t id)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__DestroyObject d = IOMMU_NEST__DESTROY_OBJECT__INIT;
	IommuNest__Reply *reply;
	int err;

	d.kind = (IommuNest__ObjectKind)kind;
	d.id = id;
	req.body_case = IOMMU_NEST__REQUEST__BODY_DESTROY_OBJECT;
	req.destroy_object = &d;
	err = nest_call(h, &req, IOMMU_NEST__REPLY__BODY_DESTROY_OBJECT, &reply);
	if (!err)
		nest_release(h);
	return err;
}

/* The native size of a vIOMMU data type, for entry_len 0; 0 if unknown. */
static uint32_t native_len(uint32_t data_type)
{
	if (data_type == IOMMU_NEST_VIOMMU_INV_DATA_SELFTEST)
		return sizeof(struct iommu_nest_viommu_selftest_inv);
	if (data_type == IOMMU_NEST_VIOMMU_INV_DATA_ARM_SMMUV3)
		return 16;
	return 0;
}

int iommu_nest_invalidate_viommu(struct iommu_nest *h, uint32_t viommu_id, uint32_t data_type,
				 uint32_t entry_len, const void *entries, size_t n, uint32_t flags,
				 struct iommu_nest_entry_result *results,
				 struct iommu_nest_inv_summary *summary)
{
	IommuNest__Invalidate inv = IOMMU_NEST__INVALIDATE__INIT;
	uint32_t len = entry_len ? entry_len : native_len(data_type);

	if (n && (!entries || !len || n > SIZE_MAX / len))
		return nest_fail(h, -EINVAL, "no entry layout for this vIOMMU data type");
	inv.hwpt_id = viommu_id;
	inv.data_type = data_type;
	inv.flags = flags;
	inv.entry_len = entry_len;
	inv.object_kind = IOMMU_NEST__OBJECT_KIND__OBJECT_VIOMMU;
	inv.raw_entries.data = (uint8_t *)entries;
	inv.raw_entries.len = n * len;
	return nest_invalidate_msg(h, &inv, n, results, summary);
}
