/* SPDX-License-Identifier: MIT */
/*
 * vEVENTQs through the daemon (Linux 7.x): allocation on a vIOMMU of the
 * client's; the records arrive as events (events.c decodes them). Destroy
 * is iommu_nest_destroy_object(IOMMU_NEST_OBJECT_VEVENTQ).
 */
#include <errno.h>
#include <stdint.h>

#include "iommu_nest.h"
#include "iommu_nest_call.h"

_Static_assert(IOMMU_NEST_OBJECT_VEVENTQ == IOMMU_NEST__OBJECT_KIND__OBJECT_VEVENTQ, "kind");
_Static_assert(IOMMU_NEST_EVENT_VEVENT == IOMMU_NEST__EVENT_KIND__EVENT_VEVENT, "event kind");

int iommu_nest_alloc_veventq(struct iommu_nest *h, uint32_t viommu_id, uint32_t type,
			     uint32_t depth, uint32_t *veventq_id)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__AllocVeventq a = IOMMU_NEST__ALLOC_VEVENTQ__INIT;
	IommuNest__Reply *reply;
	int err;

	if (!veventq_id)
		return nest_fail(h, -EINVAL, "no veventq_id to fill");
	a.viommu_id = viommu_id;
	a.type = type;
	a.depth = depth;
	req.body_case = IOMMU_NEST__REQUEST__BODY_ALLOC_VEVENTQ;
	req.alloc_veventq = &a;
	err = nest_call(h, &req, IOMMU_NEST__REPLY__BODY_ALLOC_VEVENTQ, &reply);
	if (err)
		return err;
	*veventq_id = reply->alloc_veventq->veventq_id;
	nest_release(h);
	return 0;
}

int iommu_nest_trigger_vevent(struct iommu_nest *h, const char *device, uint32_t count)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__TriggerVevent m = IOMMU_NEST__TRIGGER_VEVENT__INIT;
	IommuNest__Reply *reply;
	int err;

	if (!device)
		return nest_fail(h, -EINVAL, "no device given");
	m.device = (char *)device;
	m.count = count;
	req.body_case = IOMMU_NEST__REQUEST__BODY_TRIGGER_VEVENT;
	req.trigger_vevent = &m;
	err = nest_call(h, &req, IOMMU_NEST__REPLY__BODY__NOT_SET, &reply);
	if (!err)
		nest_release(h);
	return err;
}
