/* SPDX-License-Identifier: MIT */
/* The handlers of the request table (req/dispatch.c), one file per family. */
#ifndef IOMMU_NESTD_REQ_HANDLERS_H
#define IOMMU_NESTD_REQ_HANDLERS_H

#include "req/dispatch.h"

int handle_hello(struct req_ctx *c);
int handle_probe(struct req_ctx *c);
int handle_alloc(struct req_ctx *c);
int handle_destroy(struct req_ctx *c);
int handle_attach(struct req_ctx *c);
int handle_detach(struct req_ctx *c);
int handle_reclaim(struct req_ctx *c);
int handle_invalidate(struct req_ctx *c);
int handle_check_iotlb(struct req_ctx *c);
int handle_sim_populate(struct req_ctx *c);
int handle_sim_query(struct req_ctx *c);
int handle_inject_fault(struct req_ctx *c);
int handle_map_memory(struct req_ctx *c);
int handle_unmap_memory(struct req_ctx *c);
int handle_stats(struct req_ctx *c);
int handle_status(struct req_ctx *c);
int handle_list_clients(struct req_ctx *c);
int handle_list_hwpts(struct req_ctx *c);
int handle_reload(struct req_ctx *c);
int handle_get_hw_info(struct req_ctx *c);
int handle_set_dirty_tracking(struct req_ctx *c);
int handle_get_dirty_bitmap(struct req_ctx *c);
int handle_set_dirty(struct req_ctx *c);
int handle_queue_setup(struct req_ctx *c);
int handle_open_device(struct req_ctx *c);
int handle_close_device(struct req_ctx *c);
int handle_adopt_device(struct req_ctx *c);
int handle_page_response(struct req_ctx *c);
int handle_trigger_iopf(struct req_ctx *c);
int handle_alloc_viommu(struct req_ctx *c);
int handle_alloc_vdevice(struct req_ctx *c);
int handle_destroy_object(struct req_ctx *c);
int handle_alloc_veventq(struct req_ctx *c);
int handle_trigger_vevent(struct req_ctx *c);
/* DestroyObject of kind OBJECT_VEVENTQ (req/veventq.c). */
int req_destroy_veventq(struct req_ctx *c);
int handle_attach_pasid(struct req_ctx *c); /* req/pasid.c */
int handle_detach_pasid(struct req_ctx *c);

/* Invalidate on a vIOMMU id (req/viommu.c): answered at once, REQ_INV_DONE. */
int req_viommu_invalidate(struct session *s, struct inv_request *r);
/*
 * The ARM SMMUv3 vIOMMU's part (req/viommu_smmuv3.c): validate, coalesce,
 * submit, map back; device is the vIOMMU's (its hw_info says RIL).
 */
struct vobj;
int req_viommu_smmuv3_invalidate(struct session *s, struct inv_request *r,
				 const struct vobj *viommu);
bool req_smmuv3_host_range(struct backend *be, const char *device);

/* The test backend ops the table checks for (req/test.c). */
bool has_check_iotlb(const struct backend_ops *ops);
bool has_set_dirty(const struct backend_ops *ops);
bool has_sim_populate(const struct backend_ops *ops);
bool has_sim_query(const struct backend_ops *ops);
bool has_inject_fault(const struct backend_ops *ops);
bool has_trigger_iopf(const struct backend_ops *ops); /* req/fault.c */
bool has_trigger_vevent(const struct backend_ops *ops); /* req/veventq.c */

#endif
