// SPDX-License-Identifier: MIT
/*
 * vIOMMU and vDEVICE objects with the 7.x kernel's rules: the core's
 * (iommufd/viommu.c iommufd_viommu_alloc_ioctl(), iommufd_vdevice_alloc_ioctl())
 * and the selftest mock driver's (iommufd/selftest.c mock_get_viommu_size(),
 * mock_viommu_cache_invalidate()). 6.12 has no such ioctls: -ENOTTY, as
 * an unknown iommufd ioctl number gets there. Lifetimes use the table's
 * users counts: a vIOMMU holds its nest parent, a vDEVICE its vIOMMU, so
 * IOMMU_DESTROY of a vIOMMU in use is objects.c's -EBUSY. Calls table.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backend/sim/state.h"

/* ops->get_viommu_size(): which driver makes a vIOMMU of which type. */
static bool driver_has_viommu(enum device_kind kind, uint32_t type)
{
	/* 7.2's VT-d driver has no viommu ops; the mock and the SMMUv3 know their own types. */
	return (kind == DEVICE_KIND_SELFTEST && type == NESTD_VIOMMU_TYPE_SELFTEST) ||
	       (kind == DEVICE_KIND_SMMUV3 && type == NESTD_VIOMMU_TYPE_ARM_SMMUV3);
}

int sim_viommu_alloc(struct sim_state *st, const char *device, uint32_t type, uint32_t flags,
		     uint32_t *out_id, uint32_t *out_parent)
{
	struct sim_obj *o;
	int dev, rc;

	if (st->rules != KERNEL_RULES_7)
		return -ENOTTY;
	if (flags || type == NESTD_VIOMMU_TYPE_DEFAULT)
		return -EOPNOTSUPP;
	dev = sim_dev_find(st, device);
	if (dev < 0)
		return -ENOENT; /* iommufd_get_device() of an unknown dev_id */
	if (!driver_has_viommu(st->devs[dev].kind, type))
		return -EOPNOTSUPP;
	/* hwpt_id is the device's nest parent: a paging HWPT with nest_parent set. */
	rc = sim_obj_new(st, SIM_OBJ_VIOMMU, (uint32_t)dev, &o);
	if (rc)
		return rc;
	o->viommu_type = type;
	o->parent_id = st->devs[dev].parent_id;
	sim_obj_find(st, o->parent_id)->users++;
	*out_id = o->id;
	if (out_parent)
		*out_parent = o->parent_id;
	return 0;
}

/* A vDEVICE of viommu with virt_id (its vdevs xarray), or NULL. */
static struct sim_obj *vdev_of(struct sim_state *st, uint32_t viommu_id, uint64_t virt_id)
{
	for (uint32_t i = 0; i < st->n_objs; i++) {
		struct sim_obj *o = &st->objs[i];

		if (o->type == SIM_OBJ_VDEVICE && o->parent_id == viommu_id &&
		    o->virt_id == virt_id)
			return o;
	}
	return NULL;
}

int sim_vdevice_alloc(struct sim_state *st, uint32_t viommu_id, const char *device,
		      uint64_t virt_id, uint32_t *out_id)
{
	struct sim_obj *v, *o;
	struct sim_dev *d;
	uint32_t vid;
	int dev, rc;

	if (st->rules != KERNEL_RULES_7)
		return -ENOTTY;
	/* virt_id > ULONG_MAX cannot happen on a 64-bit host. */
	v = sim_obj_find(st, viommu_id);
	if (!v || v->type != SIM_OBJ_VIOMMU)
		return -ENOENT; /* iommufd_get_viommu(): the wrong kind is not found either */
	dev = sim_dev_find(st, device);
	if (dev < 0)
		return -ENOENT;
	d = &st->devs[dev];
	/*
	 * viommu->iommu_dev must be the device's IOMMU instance: the sim's
	 * devices of one kind sit behind one modelled IOMMU (objects.c).
	 */
	if (st->devs[v->dev].kind != d->kind)
		return -EINVAL;
	if (d->vdev_id)
		return -EEXIST;
	if (vdev_of(st, viommu_id, virt_id))
		return -EEXIST; /* xa_insert's -EBUSY */
	vid = v->id;
	rc = sim_obj_new(st, SIM_OBJ_VDEVICE, (uint32_t)dev, &o);
	if (rc)
		return rc;
	o->parent_id = vid;
	o->virt_id = virt_id;
	sim_obj_find(st, vid)->users++; /* o may have moved v */
	d->vdev_id = o->id;
	*out_id = o->id;
	return 0;
}

/*
 * copy_struct_from_user(): a shorter user entry is zero-extended, a
 * longer one must have only zeros past the kernel's size (-E2BIG).
 */
static int copy_selftest(struct nestd_viommu_inv_selftest *dst, const struct backend_inv *inv,
			 uint32_t i)
{
	const uint8_t *src = (const uint8_t *)inv->entries + (size_t)inv->entry_len * i;
	size_t ksz = sizeof(*dst);

	memset(dst, 0, ksz);
	memcpy(dst, src, inv->entry_len < ksz ? inv->entry_len : ksz);
	for (size_t b = ksz; b < inv->entry_len; b++)
		if (src[b])
			return -E2BIG;
	return 0;
}

/* mock_viommu_cache_invalidate(): all entries copied first, then applied in order. */
static int mock_invalidate(struct sim_state *st, struct sim_obj *v, struct backend_inv *inv,
			   uint32_t n)
{
	struct nestd_viommu_inv_selftest e;
	uint32_t i;
	int rc = 0;

	if (!n && inv->data_type == NESTD_VIOMMU_INV_DATA_SELFTEST)
		return 0; /* the empty array validates the type */
	/* iommu_copy_struct_from_full_user_array(): type, emptiness, every entry. */
	if (inv->data_type != NESTD_VIOMMU_INV_DATA_SELFTEST || !n)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		rc = copy_selftest(&e, inv, i);
		if (rc)
			return rc;
	}
	for (i = 0; i < n; i++) {
		const struct sim_obj *vd;

		copy_selftest(&e, inv, i);
		if (e.flags & ~NESTD_VIOMMU_INV_SELFTEST_FLAG_ALL) {
			rc = -EOPNOTSUPP;
			break;
		}
		if (e.cache_id >= NESTD_MOCK_DEV_CACHE_NUM) {
			rc = -EINVAL;
			break;
		}
		vd = vdev_of(st, v->id, e.vdev_id);
		if (!vd) {
			rc = -EINVAL;
			break;
		}
		if (e.flags & NESTD_VIOMMU_INV_SELFTEST_FLAG_ALL)
			memset(st->devs[vd->dev].cache, 0, sizeof(st->devs[vd->dev].cache));
		else
			st->devs[vd->dev].cache[e.cache_id] = 0;
	}
	inv->entry_num = i;
	return rc;
}

int sim_viommu_invalidate(struct sim_state *st, struct sim_obj *v, struct backend_inv *inv,
			  uint32_t n)
{
	inv->entry_num = 0;
	if (v->viommu_type == NESTD_VIOMMU_TYPE_SELFTEST)
		return mock_invalidate(st, v, inv, n);
	if (v->viommu_type == NESTD_VIOMMU_TYPE_ARM_SMMUV3)
		return sim_vsmmu_invalidate(st, v, inv, n);
	return -EOPNOTSUPP; /* a vIOMMU without cache_invalidate */
}

int sim_viommu_nested_check(struct sim_state *st, uint32_t dev, const struct backend_alloc *req)
{
	const struct sim_obj *v = sim_obj_find(st, req->viommu_id);

	/*
	 * hw_pagetable.c iommufd_hwpt_alloc(): a pt_id that names no object,
	 * or one that is no IOAS, paging HWPT or vIOMMU (a vDEVICE), is -EINVAL.
	 */
	if (!v || v->type != SIM_OBJ_VIOMMU)
		return -EINVAL;
	/* hw_pagetable.c: the vIOMMU's IOMMU instance must be the device's. */
	if (st->devs[v->dev].kind != st->devs[dev].kind)
		return -EINVAL;
	if (v->viommu_type == NESTD_VIOMMU_TYPE_ARM_SMMUV3)
		return sim_vsmmu_nested_check(req);
	/* The mock's viommu ops take its own nested data only. */
	if (v->viommu_type != NESTD_VIOMMU_TYPE_SELFTEST ||
	    req->data_type != IOMMU_HWPT_DATA_SELFTEST)
		return -EOPNOTSUPP;
	return 0;
}
