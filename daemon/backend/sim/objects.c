// SPDX-License-Identifier: MIT
/*
 * Simulator object lifecycle: devices, nest parents, nested HWPTs, attach.
 * The checks and their order follow Linux 6.12: IOMMU_HWPT_ALLOC in
 * drivers/iommu/iommufd/hw_pagetable.c, the drivers' domain_alloc_user
 * (intel/iommu.c, intel/nested.c, iommufd/selftest.c), IOMMU_DESTROY in
 * iommufd/main.c and attach/replace in iommufd/device.c + intel/pasid.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backend/sim/state.h"

/* iommufd allocates ids with xa_limit_31b (main.c iommufd_object_alloc). */

static uint32_t obj_index(const struct sim_state *st, uint32_t id)
{
	uint32_t lo = 0, hi = st->n_objs;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (st->objs[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct sim_obj *sim_obj_find(struct sim_state *st, uint32_t id)
{
	uint32_t i = obj_index(st, id);

	if (i < st->n_objs && st->objs[i].id == id)
		return &st->objs[i];
	return NULL;
}

int sim_dev_find(const struct sim_state *st, const char *name)
{
	uint32_t i;

	if (!name)
		return -ENODEV;
	for (i = 0; i < st->n_devs; i++)
		if (!strcmp(st->devs[i].name, name))
			return (int)i;
	return -ENODEV;
}

/*
 * iommufd allocates object ids from an XA_FLAGS_ALLOC1 xarray: the lowest
 * free id from 1 up, so a destroyed id comes back with the next object.
 * objs is sorted by id and objs[i].id >= i + 1; the first index where that
 * is strict is the first gap, and the lowest free id is that index + 1.
 */
static uint32_t lowest_free_index(const struct sim_state *st)
{
	uint32_t lo = 0, hi = st->n_objs;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (st->objs[mid].id > mid + 1)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/*
 * Inserts a new object with the lowest free id, keeping objs sorted. The
 * returned pointer is valid until the next insertion or removal.
 */
static int obj_new(struct sim_state *st, enum sim_obj_type type, uint32_t dev,
		   struct sim_obj **out)
{
	uint32_t i = lowest_free_index(st);
	struct sim_obj *o;

	/* xa_alloc() answers -EBUSY when the id space is exhausted. */
	if (i + 1 > SIM_ID_MAX)
		return -EBUSY;
	if (st->n_objs == st->cap_objs) {
		uint32_t cap = st->cap_objs ? st->cap_objs * 2 : 16;

		o = realloc(st->objs, (size_t)cap * sizeof(*o));
		if (!o)
			return -ENOMEM;
		st->objs = o;
		st->cap_objs = cap;
	}
	memmove(&st->objs[i + 1], &st->objs[i], (size_t)(st->n_objs - i) * sizeof(*o));
	st->n_objs++;
	o = &st->objs[i];
	memset(o, 0, sizeof(*o));
	o->id = i + 1;
	/* next_id stays one past the highest id ever live (the state file checks it). */
	if (o->id >= st->next_id)
		st->next_id = o->id + 1;
	o->type = type;
	o->kind = st->devs[dev].kind;
	o->dev = dev;
	sim_iset_init(&o->iotlb_set);
	sim_iset_init(&o->psc_set);
	*out = o;
	return 0;
}

static void obj_remove(struct sim_state *st, struct sim_obj *o)
{
	uint32_t i = (uint32_t)(o - st->objs);

	sim_iset_free(&o->iotlb_set);
	sim_iset_free(&o->psc_set);
	memmove(&st->objs[i], &st->objs[i + 1], (size_t)(st->n_objs - i - 1) * sizeof(*o));
	st->n_objs--;
}

static int dev_add(struct sim_state *st, const struct config_device *cd, const char **errmsg)
{
	struct sim_dev *d = &st->devs[st->n_devs];
	struct sim_obj *parent;
	int rc;

	if (!cd->name[0] || strnlen(cd->name, CONFIG_NAME_MAX) == CONFIG_NAME_MAX) {
		*errmsg = "sim: device name empty or too long";
		return -EINVAL;
	}
	if (cd->kind != DEVICE_KIND_VTD && cd->kind != DEVICE_KIND_SELFTEST) {
		*errmsg = "sim: unknown device kind";
		return -EINVAL;
	}
	/* Devices are addressed by name; a duplicate would be unreachable. */
	if (sim_dev_find(st, cd->name) >= 0) {
		*errmsg = "sim: duplicate device name";
		return -EINVAL;
	}
	memcpy(d->name, cd->name, sizeof(d->name));
	d->kind = cd->kind;
	rc = obj_new(st, SIM_OBJ_PARENT, st->n_devs, &parent);
	if (rc) {
		*errmsg = "sim: cannot allocate a nest parent";
		return rc;
	}
	/* The daemon keeps each device on its parent while no nested HWPT is. */
	parent->users = 1;
	d->parent_id = parent->id;
	d->attached_id = parent->id;
	st->n_devs++;
	return 0;
}

int sim_state_init(struct sim_state *st, const struct config *cfg, const char **errmsg)
{
	uint32_t i;
	int rc;

	memset(st, 0, sizeof(*st));
	st->next_id = 1;
	st->rules = cfg->sim_kernel;
	if (cfg->n_devices > CONFIG_MAX_DEVICES) {
		*errmsg = "sim: too many devices";
		return -EINVAL;
	}
	for (i = 0; i < cfg->n_devices; i++) {
		rc = dev_add(st, &cfg->devices[i], errmsg);
		if (rc)
			goto err;
	}
	if (cfg->sim_fault.mode != FAULT_CLEAR || cfg->sim_fault.latency_us) {
		rc = sim_inject_fault(st, &cfg->sim_fault);
		if (rc) {
			*errmsg = "sim: invalid sim_fault";
			goto err;
		}
	}
	return 0;
err:
	sim_state_free(st);
	return rc;
}

void sim_state_free(struct sim_state *st)
{
	uint32_t i;

	for (i = 0; i < st->n_objs; i++) {
		sim_iset_free(&st->objs[i].iotlb_set);
		sim_iset_free(&st->objs[i].psc_set);
	}
	for (i = 0; i < st->n_devs; i++)
		sim_dev_maps_free(&st->devs[i]);
	free(st->objs);
	st->objs = NULL;
	st->n_objs = 0;
	st->cap_objs = 0;
}

/* The driver's domain_alloc_user for a nested domain, past the core checks. */
static int alloc_check_driver(enum device_kind kind, const struct backend_alloc *req)
{
	uint32_t type = kind == DEVICE_KIND_VTD ? IOMMU_HWPT_DATA_VTD_S1 : IOMMU_HWPT_DATA_SELFTEST;
	uint32_t len = kind == DEVICE_KIND_VTD ? sizeof(struct iommu_hwpt_vtd_s1) :
						 sizeof(struct iommu_hwpt_selftest);

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

int sim_alloc_nested(struct sim_state *st, const char *device,
		     const struct backend_alloc *req, uint32_t *out_id, uint32_t *out_parent)
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
	/* hw_pagetable.c:229: a nested HWPT takes no flags but FAULT_ID_VALID. */
	if ((req->flags & ~IOMMU_HWPT_FAULT_ID_VALID) || !req->data_len)
		return -EOPNOTSUPP;
	rc = alloc_check_driver(st->devs[dev].kind, req);
	if (rc)
		return rc;
	/*
	 * FAULT_ID_VALID then looks up fault_id (hw_pagetable.c:331). The
	 * backend request carries no fault object and the sim has none, so
	 * the lookup fails like an unknown id does.
	 */
	if (req->flags & IOMMU_HWPT_FAULT_ID_VALID)
		return -ENOENT;

	rc = obj_new(st, SIM_OBJ_NESTED, (uint32_t)dev, &o);
	if (rc)
		return rc;
	o->parent_id = st->devs[dev].parent_id;
	if (o->kind == DEVICE_KIND_VTD) {
		memcpy(&o->vtd, req->data, sizeof(o->vtd));
	} else {
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
		*out_parent = o->parent_id;
	return 0;
}

int sim_destroy(struct sim_state *st, uint32_t id)
{
	struct sim_obj *o = sim_obj_find(st, id);
	uint32_t parent_id;

	if (!o)
		return -ENOENT;
	/* main.c iommufd_object_remove(): refcount_dec_if_one() or -EBUSY. */
	if (o->users)
		return -EBUSY;
	parent_id = o->parent_id;
	obj_remove(st, o);
	if (parent_id)
		sim_obj_find(st, parent_id)->users--;
	return 0;
}

/* intel/pasid.c intel_pasid_setup_nested(): the stage-1 config is checked here. */
static int vtd_attach_check(const struct sim_obj *o)
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
	sim_obj_find(st, d->attached_id)->users--;
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
	if (o->kind != d->kind)
		return -EINVAL;
	if (o->type == SIM_OBJ_NESTED && o->kind == DEVICE_KIND_VTD) {
		rc = vtd_attach_check(o);
		if (rc)
			return rc; /* a failed replace keeps the old domain */
	}
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
	if (st->devs[dev].attached_id != st->devs[dev].parent_id)
		dev_move(st, &st->devs[dev], st->devs[dev].parent_id);
	return 0;
}
