/* SPDX-License-Identifier: MIT */
/*
 * GetHwInfo: IOMMU_GET_HW_INFO of a device, passed through as the backend
 * answered it. The table checks only that the device is configured and
 * allowed to the caller, not that it is free: the answer describes the
 * host's IOMMU, the same for whoever holds the device, and a VMM needs it
 * to decide whether it can use the device before it claims it. Asked of
 * the instance the device is bound in now (with VM contexts, the root
 * has lent a claimed VFIO device away and knows nothing of it).
 */
#include <string.h>

#include "net/server.h"
#include "req/handlers.h"

int handle_get_hw_info(struct req_ctx *c)
{
	struct backend *be = req_be_holding(c, c->dev);
	struct backend_hw_info *info = &c->out->body.hw_info.info;
	IommuNest__HwInfoReply *hr = &c->out->body.hw_info.hr;
	int rc;

	if (!be->ops->hw_info) {
		reply_error(c->rep, -EOPNOTSUPP, "the %s backend does not report hw_info",
			    be->ops->name);
		return -EOPNOTSUPP;
	}
	rc = be->ops->hw_info(be, c->msg->get_hw_info->device, info);
	if (rc) {
		reply_error(c->rep, rc, "hw_info of %s: %s", c->msg->get_hw_info->device,
			    strerror(-rc));
		return rc;
	}
	iommu_nest__hw_info_reply__init(hr);
	hr->out_data_type = info->data_type;
	hr->data.data = info->data;
	hr->data.len = info->data_len < sizeof(info->data) ? info->data_len : sizeof(info->data);
	hr->data_len = info->data_len;
	hr->out_capabilities = info->capabilities;
	hr->out_max_pasid_log2 = info->max_pasid_log2;
	c->rep->body_case = IOMMU_NEST__REPLY__BODY_HW_INFO;
	c->rep->hw_info = hr;
	return 0;
}
