/* SPDX-License-Identifier: MIT */
/*
 * PASID attachments through the daemon (Linux 7.x): AttachPasid and
 * DetachPasid, answered with a status like Attach and Detach.
 */
#include <errno.h>
#include <stdint.h>

#include "iommu_nest.h"
#include "iommu_nest_call.h"

/* The kernel's IOMMU_HWPT_ALLOC_PASID, passed through Alloc.flags. */
_Static_assert(IOMMU_NEST_ALLOC_PASID == (1u << 3), "IOMMU_HWPT_ALLOC_PASID");

static int status_call(struct iommu_nest *h, IommuNest__Request *req)
{
	IommuNest__Reply *reply;
	int err = nest_call(h, req, IOMMU_NEST__REPLY__BODY__NOT_SET, &reply);

	if (!err)
		nest_release(h);
	return err;
}

int iommu_nest_attach_pasid(struct iommu_nest *h, const char *device, uint32_t pasid,
			    uint32_t hwpt_id)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__AttachPasid a = IOMMU_NEST__ATTACH_PASID__INIT;

	if (!device)
		return -EINVAL;
	a.device = (char *)device;
	a.pasid = pasid;
	a.hwpt_id = hwpt_id;
	req.body_case = IOMMU_NEST__REQUEST__BODY_ATTACH_PASID;
	req.attach_pasid = &a;
	return status_call(h, &req);
}

int iommu_nest_detach_pasid(struct iommu_nest *h, const char *device, uint32_t pasid)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__DetachPasid d = IOMMU_NEST__DETACH_PASID__INIT;

	if (!device)
		return -EINVAL;
	d.device = (char *)device;
	d.pasid = pasid;
	req.body_case = IOMMU_NEST__REQUEST__BODY_DETACH_PASID;
	req.detach_pasid = &d;
	return status_call(h, &req);
}
