// SPDX-License-Identifier: MIT
/*
 * Simulator object lifecycle: nested HWPTs (alloc, destroy) and attaching
 * devices to them or to nest parents, on top of the object table (table.c).
 * The checks and their order follow Linux 6.12: IOMMU_HWPT_ALLOC in
 * drivers/iommu/iommufd/hw_pagetable.c, the drivers' domain_alloc_user
 * (intel/iommu.c, intel/nested.c, iommufd/selftest.c), IOMMU_DESTROY in
 * iommufd/main.c and attach/replace in iommufd/device.c + intel/pasid.c.
 */
#include <errno.h>
#include <string.h>

#include "backend/pasid_uapi.h"
#include "backend/sim/state.h"

/* The driver's domain_alloc_user for a nested domain, past the core checks. */
static int alloc_check_driver(enum device_kind kind, const struct backend_alloc *req)
{
	uint32_t type;
	uint32_t len;

	/* The SMMUv3 driver nests only through its vIOMMU (viommu.c checks its data). */
	if (kind == DEVICE_KIND_SMMUV3)
		return req->viommu_id ? 0 : -EOPNOTSUPP;
	type = kind == DEVICE_KIND_VTD ? IOMMU_HWPT_DATA_VTD_S1 : IOMMU_HWPT_DATA_SELFTEST;
	len = kind == DEVICE_KIND_VTD ? sizeof(struct iommu_hwpt_vtd_s1)
				      : sizeof(struct iommu_hwpt_selftest);

	/* intel/nested.c:148, selftest.c mock_domain_alloc_user. */
	if (req->data_type != type)
		return -EOPNOTSUPP;
	/*
	 * iommu_copy_struct_from_user(): len outside [min_len, sizeof] is
	 * -EINVAL. Both structs are still at their first version, so min_len
	 * is sizeof and only the exact size passes.
	 */
	if (req->data_len != len)
		return -EINVAL;
	if (!req->data)
		return -EFAULT; /* copy_from_user() of a NULL pointer */
	return 0;
}

int sim_alloc_nested(struct sim_state *st, const char *device, const struct backend_alloc *req,
		     uint32_t *out_id, uint32_t *out_parent)
{
	struct sim_obj *o, *parent;
	int dev, rc;

	/* hw_pagetable.c:283: data_type and data_len must agree. */
	if ((req->data_type == IOMMU_HWPT_DATA_NONE && req->data_len) ||
	    (req->data_type != IOMMU_HWPT_DATA_NONE && !req->data_len))
		return -EINVAL;
	dev = sim_dev_find(st, device);
	if (dev < 0)
		return dev;
	/*
	 * hw_pagetable.c:229: a nested HWPT takes no flags but FAULT_ID_VALID,
	 * and on 7.x ALLOC_PASID (hw_pagetable.c:237).
	 */
	if ((req->flags & ~(IOMMU_HWPT_FAULT_ID_VALID |
			    (st->rules == KERNEL_RULES_7 ? NESTD_HWPT_ALLOC_PASID : 0))) ||
	    !req->data_len)
		return -EOPNOTSUPP;
	rc = alloc_check_driver(st->devs[dev].kind, req);
	if (rc)
		return rc;
	/*
	 * FAULT_ID_VALID then looks up fault_id as a fault object
	 * (hw_pagetable.c:331 iommufd_get_fault(): -ENOENT for anything else).
	 */
	if (req->flags & IOMMU_HWPT_FAULT_ID_VALID) {
		struct sim_obj *f = sim_obj_find(st, req->fault_id);

		if (!f || f->type != SIM_OBJ_FAULT)
			return -ENOENT;
	}

	if (req->viommu_id) {
		rc = sim_viommu_nested_check(st, (uint32_t)dev, req);
		if (rc)
			return rc;
	}
	rc = sim_obj_new(st, SIM_OBJ_NESTED, (uint32_t)dev, &o);
	if (rc)
		return rc;
	o->pasid_compat = req->flags & NESTD_HWPT_ALLOC_PASID;
	/* On a vIOMMU the vIOMMU holds it up (EBUSY while it lives), as its parent. */
	o->parent_id = req->viommu_id ? req->viommu_id : st->devs[dev].parent_id;
	if (req->flags & IOMMU_HWPT_FAULT_ID_VALID) {
		o->fault_id = req->fault_id;
		sim_obj_find(st, req->fault_id)->users++;
	}
	if (o->kind == DEVICE_KIND_VTD) {
		memcpy(&o->vtd, req->data, sizeof(o->vtd));
	} else if (o->kind == DEVICE_KIND_SELFTEST) {
		struct iommu_hwpt_selftest cfg;
		int i;

		memcpy(&cfg, req->data, sizeof(cfg));
		for (i = 0; i < MOCK_NESTED_DOMAIN_IOTLB_NUM; i++)
			o->iotlb[i] = cfg.iotlb;
	}
	parent = sim_obj_find(st, o->parent_id);
	parent->users++;
	*out_id = o->id;
	if (out_parent)
		*out_parent = st->devs[dev].parent_id;
	return 0;
}

int sim_destroy(struct sim_state *st, uint32_t id)
{
	struct sim_obj *o = sim_obj_find(st, id);
	uint32_t parent_id, fault_id;

	if (!o)
		return -ENOENT;
	/* main.c iommufd_object_remove(): refcount_dec_if_one() or -EBUSY. */
	if (o->users)
		return -EBUSY;
	parent_id = o->parent_id;
	fault_id = o->fault_id;
	if (o->type == SIM_OBJ_FAULT)
		sim_fault_forget(st, o->id);
	if (o->type == SIM_OBJ_VEVENTQ)
		sim_veventq_forget(st, o->id);
	/* viommu.c iommufd_vdevice_abort(): the device may take a vDEVICE again. */
	if (o->type == SIM_OBJ_VDEVICE)
		st->devs[o->dev].vdev_id = 0;
	sim_obj_remove(st, o);
	if (parent_id)
		sim_obj_find(st, parent_id)->users--;
	if (fault_id)
		sim_obj_find(st, fault_id)->users--;
	return 0;
}

/* intel/pasid.c intel_pasid_setup_nested(): the stage-1 config is checked here. */
int sim_vtd_attach_check(const struct sim_obj *o)
{
	/*
	 * The simulated IOMMU supports 5-level first-stage paging, SRS and
	 * EAFS, so only an address width that is neither 4- nor 5-level
	 * fails.
	 */
	if (o->vtd.addr_width != 48 && o->vtd.addr_width != 57)
		return -EINVAL;
	return 0;
}

static void dev_move(struct sim_state *st, struct sim_dev *d, uint32_t id)
{
	struct sim_obj *old = sim_obj_find(st, d->attached_id);

	/* Leaving a HWPT with a fault object answers the device's groups there. */
	if (old->fault_id)
		sim_fault_detach(st, old->fault_id, (uint32_t)(d - st->devs), old->id);
	old->users--;
	sim_obj_find(st, id)->users++;
	d->attached_id = id;
}

int sim_attach(struct sim_state *st, const char *device, uint32_t id)
{
	struct sim_obj *o;
	struct sim_dev *d;
	int dev, rc;

	dev = sim_dev_find(st, device);
	if (dev < 0)
		return dev;
	d = &st->devs[dev];
	o = sim_obj_find(st, id);
	if (!o)
		return -ENOENT;
	/* device.c iommufd_device_do_replace(): same HWPT is a no-op. */
	if (id == d->attached_id)
		return 0;
	/*
	 * The core refuses a domain of another driver (iommu.c:
	 * domain->owner mismatch, -EINVAL). Within a driver the sim's devices
	 * sit behind one modelled IOMMU, so any domain of the device's kind
	 * fits: like the kernel (device.c iommufd_hw_pagetable_attach() and
	 * iommufd_device_do_replace() follow the HWPT to its IOAS), a device
	 * may go onto another device's nest parent or a nested HWPT on it,
	 * and then translates through that device's stage 2. Keeping
	 * tenants apart is the daemon's rule (req/hwpt.c), not the
	 * kernel's.
	 */
	/* device.c: a pt_id that is neither a HWPT nor an IOAS is -EINVAL. */
	if (o->type == SIM_OBJ_FAULT || o->type == SIM_OBJ_VEVENTQ || o->kind != d->kind)
		return -EINVAL;
	/*
	 * A HWPT with a fault object needs the device's IOPF on (6.12
	 * iommufd_fault_domain_attach_dev(), 7.x intel/nested.c
	 * iopf_for_domain_set()); the VT-d driver has it only with PRI, which
	 * the modelled devices lack: -ENODEV, before the stage-1 checks.
	 */
	if (o->type == SIM_OBJ_NESTED && o->fault_id && o->kind == DEVICE_KIND_VTD)
		return -ENODEV;
	/*
	 * selftest.c mock_domain_nop_attach(): a nested domain on a vIOMMU
	 * needs the device's vDEVICE on that vIOMMU (iommufd_viommu_get_vdev_id()).
	 */
	if (o->type == SIM_OBJ_NESTED && sim_obj_find(st, o->parent_id)->type == SIM_OBJ_VIOMMU) {
		const struct sim_obj *vd = d->vdev_id ? sim_obj_find(st, d->vdev_id) : NULL;

		if (!vd || vd->parent_id != o->parent_id)
			return -ENOENT;
	}
	if (o->type == SIM_OBJ_NESTED && o->kind == DEVICE_KIND_VTD) {
		rc = sim_vtd_attach_check(o);
		if (rc)
			return rc; /* a failed replace keeps the old domain */
	}
	/* device.c iommufd_hwpt_pasid_compat(): with PASIDs on, the RID's domain must be too. */
	rc = sim_pasid_rid_ok(d, o);
	if (rc)
		return rc;
	dev_move(st, d, id);
	return 0;
}

int sim_dev_stage2(struct sim_state *st, const char *device)
{
	int dev = sim_dev_find(st, device);
	struct sim_obj *o;

	if (dev < 0)
		return dev;
	o = sim_obj_find(st, st->devs[dev].attached_id);
	if (o && o->type == SIM_OBJ_NESTED)
		o = sim_obj_find(st, o->parent_id);
	if (o && o->type == SIM_OBJ_VIOMMU)
		o = sim_obj_find(st, o->parent_id);
	return (int)o->dev;
}

int sim_detach(struct sim_state *st, const char *device)
{
	int dev = sim_dev_find(st, device);

	if (dev < 0)
		return dev;
	/*
	 * Back to the nest parent. Like VFIO_DEVICE_DETACH_IOMMUFD_PT
	 * (vfio/iommufd.c:167) detaching a device that is not on a nested
	 * HWPT is not an error.
	 */
	if (st->devs[dev].attached_id != st->devs[dev].parent_id) {
		int rc =
		    sim_pasid_rid_ok(&st->devs[dev], sim_obj_find(st, st->devs[dev].parent_id));

		if (rc)
			return rc;
		dev_move(st, &st->devs[dev], st->devs[dev].parent_id);
	}
	return 0;
}

int sim_dev_plug(struct sim_state *st, uint32_t dev)
{
	struct sim_dev *d = &st->devs[dev];
	struct sim_obj *parent;
	int rc;

	if (d->present)
		return -EEXIST;
	rc = sim_obj_new(st, SIM_OBJ_PARENT, dev, &parent);
	if (rc)
		return rc;
	parent->users = 1; /* the device, attached to it */
	parent->pasid_compat = d->pasid_bits > 0; /* as the daemon allocates it */
	d->parent_id = d->attached_id = parent->id;
	d->present = true;
	return 0;
}

int sim_dev_unplug(struct sim_state *st, uint32_t dev)
{
	struct sim_dev *d = &st->devs[dev];
	struct sim_obj *o;

	if (!d->present)
		return -ENOENT;
	/* Attached PASIDs hold the device object (idev->obj.users). */
	if (d->n_pasids)
		return -EBUSY;
	for (uint32_t i = 0; i < st->n_objs; i++)
		if (st->objs[i].type == SIM_OBJ_NESTED && st->objs[i].parent_id == d->parent_id)
			return -EBUSY;
	/* Another device on the parent holds it too. */
	o = sim_obj_find(st, d->parent_id);
	if (o && o->users > (d->attached_id == d->parent_id ? 1u : 0u))
		return -EBUSY;
	/* Unbinding takes the device off whatever it is attached to. */
	o = sim_obj_find(st, d->attached_id);
	if (o)
		o->users--;
	o = sim_obj_find(st, d->parent_id);
	if (o)
		sim_obj_remove(st, o);
	sim_iset_free(&d->dirty);
	sim_iset_init(&d->dirty);
	d->dirty_tracking = false;
	d->parent_id = d->attached_id = 0;
	d->present = false;
	return 0;
}
