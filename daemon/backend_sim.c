// SPDX-License-Identifier: MIT
/*
 * The "sim" backend: the daemon's default, an in-process model of iommufd
 * nested HWPTs with the kernel's exact errnos and entry_num semantics, so
 * that the socket-level tests written against it hold unchanged against a
 * real kernel. The model lives in sim_state.h; this file is the vtable.
 */
#include <errno.h>
#include <stdlib.h>

#include "backend.h"
#include "config.h"
#include "sim_state.h"

struct sim_backend {
	struct backend be;
	struct sim_state st;
};

static struct sim_state *to_st(struct backend *be)
{
	return &((struct sim_backend *)be)->st;
}

static void sim_close(struct backend *be)
{
	if (!be)
		return;
	sim_state_free(to_st(be));
	free(be);
}

static void caps_add(uint32_t *types, uint32_t *n, uint32_t type)
{
	uint32_t i;

	for (i = 0; i < *n; i++)
		if (types[i] == type)
			return;
	if (*n < BACKEND_MAX_TYPES)
		types[(*n)++] = type;
}

static void sim_get_caps(struct backend *be, struct backend_caps *caps)
{
	struct sim_state *st = to_st(be);
	uint32_t i;

	*caps = (struct backend_caps){
		.check_iotlb = true,
		.sim_model = true,
		.fault_inject = true,
	};
	/* Only what the configured devices' drivers support, in config order. */
	for (i = 0; i < st->n_devs; i++) {
		bool vtd = st->devs[i].kind == DEVICE_KIND_VTD;

		caps_add(caps->hwpt_types, &caps->n_hwpt_types,
			 vtd ? IOMMU_HWPT_DATA_VTD_S1 : IOMMU_HWPT_DATA_SELFTEST);
		caps_add(caps->inv_types, &caps->n_inv_types,
			 vtd ? IOMMU_HWPT_INVALIDATE_DATA_VTD_S1 :
			       IOMMU_HWPT_INVALIDATE_DATA_SELFTEST);
	}
}

static uint32_t sim_n_devices(struct backend *be)
{
	return to_st(be)->n_devs;
}

static const char *sim_device_name(struct backend *be, uint32_t i)
{
	struct sim_state *st = to_st(be);

	return i < st->n_devs ? st->devs[i].name : NULL;
}

static int sim_op_alloc_nested(struct backend *be, const char *device,
			       const struct backend_alloc *req, uint32_t *out_hwpt_id,
			       uint32_t *out_parent_id)
{
	return sim_alloc_nested(to_st(be), device, req, out_hwpt_id, out_parent_id);
}

static int sim_op_destroy(struct backend *be, uint32_t hwpt_id)
{
	return sim_destroy(to_st(be), hwpt_id);
}

static int sim_op_attach(struct backend *be, const char *device, uint32_t hwpt_id)
{
	return sim_attach(to_st(be), device, hwpt_id);
}

static int sim_op_detach(struct backend *be, const char *device)
{
	return sim_detach(to_st(be), device);
}

static int sim_op_invalidate(struct backend *be, struct backend_inv *inv)
{
	return sim_invalidate(to_st(be), inv);
}

static int sim_op_check_iotlb(struct backend *be, uint32_t hwpt_id, uint32_t iotlb_id,
			      uint32_t expected)
{
	return sim_check_iotlb(to_st(be), hwpt_id, iotlb_id, expected);
}

static int sim_op_populate(struct backend *be, uint32_t hwpt_id, uint64_t addr,
			   uint64_t npages, uint32_t kind)
{
	return sim_populate(to_st(be), hwpt_id, addr, npages, kind);
}

static int sim_op_query(struct backend *be, uint32_t hwpt_id, uint64_t addr, uint64_t npages,
			uint64_t *iotlb_pages, uint64_t *psc_pages)
{
	return sim_query(to_st(be), hwpt_id, addr, npages, iotlb_pages, psc_pages);
}

static int sim_op_inject_fault(struct backend *be, const struct backend_fault *f)
{
	return sim_inject_fault(to_st(be), f);
}

static const struct backend_ops sim_ops = {
	.name = "sim",
	.close = sim_close,
	.get_caps = sim_get_caps,
	.n_devices = sim_n_devices,
	.device_name = sim_device_name,
	.alloc_nested = sim_op_alloc_nested,
	.destroy = sim_op_destroy,
	.attach = sim_op_attach,
	.detach = sim_op_detach,
	.invalidate = sim_op_invalidate,
	.check_iotlb = sim_op_check_iotlb,
	.sim_populate = sim_op_populate,
	.sim_query = sim_op_query,
	.inject_fault = sim_op_inject_fault,
};

int backend_sim_open(const struct config *cfg, struct backend **out, const char **errmsg)
{
	struct sim_backend *sb;
	const char *dummy;
	int rc;

	if (!errmsg)
		errmsg = &dummy;
	sb = calloc(1, sizeof(*sb));
	if (!sb) {
		*errmsg = "sim: out of memory";
		return -ENOMEM;
	}
	sb->be.ops = &sim_ops;
	rc = sim_state_init(&sb->st, cfg, errmsg);
	if (rc) {
		free(sb);
		return rc;
	}
	*out = &sb->be;
	return 0;
}
