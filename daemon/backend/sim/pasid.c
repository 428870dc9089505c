// SPDX-License-Identifier: MIT
/*
 * PASID attachments as Linux 7.x makes them (6.15+; 6.12 has none). The
 * core's rules, in its order: iommufd/device.c iommufd_device_change_pt()
 * (the pt_id's object), iommufd_hw_pagetable_attach() / _do_replace() (one
 * HWPT per PASID: -EBUSY to attach again, -EINVAL to replace nothing),
 * iommufd_hwpt_pasid_compat() (the HWPT and the RID's domain both
 * IOMMU_HWPT_ALLOC_PASID), iommu.c iommu_attach_device_pasid() (a driver
 * with set_dev_pasid, the PASID below the device's max_pasids where it
 * has any) and the drivers' set_dev_pasid (VT-d sets up the stage 1 as
 * for the RID; the mock fakes a failure on PASID 1024's second call).
 *
 * A device whose max_pasids is 0 is skipped by the core's walk
 * (__iommu_set_group_pasid()): a PASID attach on it passes when both
 * domains are PASID-compatible and reaches no driver. That is the
 * kernel's answer, so it is the model's; the daemon adds no rule of its own.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backend/pasid_uapi.h"
#include "backend/sim/state.h"
#include "util/common.h"

/* selftest.c mock_domain_set_dev_pasid_nop(): the PASID its fake error hides behind. */
#define MOCK_PASID_FAKE_ERROR 1024u

uint8_t sim_pasid_bits(const struct config_device *cd, enum kernel_rules rules)
{
	return cd->pasid && rules == KERNEL_RULES_7 ? NESTD_MOCK_PASID_WIDTH : 0;
}

void sim_dev_pasids_free(struct sim_dev *d)
{
	free(d->pasids);
	d->pasids = NULL;
	d->n_pasids = d->cap_pasids = 0;
}

static struct sim_pasid *pasid_find(struct sim_dev *d, uint32_t pasid)
{
	for (uint32_t i = 0; i < d->n_pasids; i++)
		if (d->pasids[i].pasid == pasid)
			return &d->pasids[i];
	return NULL;
}

/* The device, and the HWPT id names (iommufd_get_object(ANY): -ENOENT, not a HWPT -EINVAL). */
static int lookup(struct sim_state *st, const char *device, uint32_t id, struct sim_dev **d,
		  struct sim_obj **o)
{
	int dev = sim_dev_find(st, device);

	if (dev < 0)
		return dev;
	*d = &st->devs[dev];
	*o = sim_obj_find(st, id);
	if (!*o)
		return -ENOENT;
	if ((*o)->type != SIM_OBJ_PARENT && (*o)->type != SIM_OBJ_NESTED)
		return -EINVAL;
	return 0;
}

/* iommufd_hwpt_pasid_compat() for a PASID: both the HWPT and the RID's domain. */
static int compat(struct sim_state *st, const struct sim_dev *d, const struct sim_obj *o)
{
	const struct sim_obj *rid = sim_obj_find(st, d->attached_id);

	if (!o->pasid_compat)
		return -EINVAL;
	if (rid && !rid->pasid_compat)
		return -EINVAL;
	return 0;
}

/*
 * iommu_attach_device_pasid() / iommu_replace_device_pasid() past the
 * core's table, down to the driver's set_dev_pasid (replace: only when the
 * domain changes, which the callers ensure).
 */
static int set_dev_pasid(struct sim_dev *d, const struct sim_obj *o, uint32_t pasid, bool attach)
{
	int rc;

	/* The SMMUv3 driver's nested domain has no set_dev_pasid. */
	if (o->kind == DEVICE_KIND_SMMUV3 && o->type == SIM_OBJ_NESTED)
		return -EOPNOTSUPP;
	/* domain_iommu_ops_compatible(): a domain of another driver. */
	if (o->kind != d->kind || pasid == NESTD_NO_PASID)
		return -EINVAL;
	if (!d->pasid_bits)
		return 0; /* no PASID support: the walk skips the device */
	if (attach && pasid >= (1u << d->pasid_bits))
		return -EINVAL;
	if (o->kind == DEVICE_KIND_VTD && o->type == SIM_OBJ_NESTED) {
		/* intel/nested.c: IOPF needs PRI, which the model lacks; then the stage 1. */
		if (o->fault_id)
			return -ENODEV;
		rc = sim_vtd_attach_check(o);
		if (rc)
			return rc;
	}
	if (d->kind == DEVICE_KIND_SELFTEST && pasid == MOCK_PASID_FAKE_ERROR) {
		/* Every other call fails: the first sets the flag, the next clears it and fails. */
		d->pasid_1024_fake_error = !d->pasid_1024_fake_error;
		if (!d->pasid_1024_fake_error)
			return -ENOMEM;
	}
	return 0;
}

int sim_pasid_attach(struct sim_state *st, const char *device, uint32_t pasid, uint32_t id)
{
	struct sim_dev *d;
	struct sim_obj *o;
	struct sim_pasid *p;
	int rc;

	if (st->rules != KERNEL_RULES_7)
		return -EOPNOTSUPP; /* 6.12 iommufd_test(): an unknown op */
	rc = lookup(st, device, id, &d, &o);
	if (rc)
		return rc;
	/* PASID 0 is the RID, attached all along (xa_insert into device_array: -EBUSY). */
	if (pasid == NESTD_NO_PASID || pasid_find(d, pasid))
		return -EBUSY;
	rc = compat(st, d, o);
	if (rc)
		return rc;
	rc = set_dev_pasid(d, o, pasid, true);
	if (rc)
		return rc;
	struct sim_pasid *n = array_room(d->pasids, d->n_pasids, &d->cap_pasids, sizeof(*n), 4);

	if (!n)
		return -ENOMEM;
	d->pasids = n;
	p = &d->pasids[d->n_pasids++];
	p->pasid = pasid;
	p->hwpt_id = id;
	o->users++;
	return 0;
}

int sim_pasid_replace(struct sim_state *st, const char *device, uint32_t pasid, uint32_t id)
{
	struct sim_dev *d;
	struct sim_obj *o;
	struct sim_pasid *p;
	int rc;

	if (st->rules != KERNEL_RULES_7)
		return -EOPNOTSUPP;
	rc = lookup(st, device, id, &d, &o);
	if (rc)
		return rc;
	/* PASID 0 is the RID's replace, which is sim_attach(): the daemon never asks. */
	if (pasid == NESTD_NO_PASID)
		return sim_attach(st, device, id);
	/* iommufd_device_do_replace(): nothing attached there is -EINVAL. */
	p = pasid_find(d, pasid);
	if (!p)
		return -EINVAL;
	if (p->hwpt_id == id)
		return 0;
	rc = compat(st, d, o);
	if (rc)
		return rc;
	rc = set_dev_pasid(d, o, pasid, false);
	if (rc)
		return rc; /* the old domain stays */
	sim_obj_find(st, p->hwpt_id)->users--;
	o->users++;
	p->hwpt_id = id;
	return 0;
}

int sim_pasid_detach(struct sim_state *st, const char *device, uint32_t pasid)
{
	struct sim_pasid *p;
	struct sim_dev *d;
	int dev;

	if (st->rules != KERNEL_RULES_7)
		return -EOPNOTSUPP;
	dev = sim_dev_find(st, device);
	if (dev < 0)
		return dev;
	d = &st->devs[dev];
	/* iommufd_hw_pagetable_detach(): nothing there is not an error. */
	p = pasid_find(d, pasid);
	if (!p)
		return 0;
	/* Blocking the PASID resets the mock's fake-error state too. */
	if (d->kind == DEVICE_KIND_SELFTEST && pasid == MOCK_PASID_FAKE_ERROR)
		d->pasid_1024_fake_error = false;
	sim_obj_find(st, p->hwpt_id)->users--;
	*p = d->pasids[--d->n_pasids];
	return 0;
}

/* 6.12: the mock's op is unknown (-EOPNOTSUPP), VFIO refuses any flag (device_cdev.c:175). */
static int rules_612_answer(struct sim_state *st, const char *device)
{
	int dev = sim_dev_find(st, device);

	if (dev < 0)
		return dev;
	return st->devs[dev].kind == DEVICE_KIND_SELFTEST ? -EOPNOTSUPP : -EINVAL;
}

int sim_pasid_op_attach(struct sim_state *st, const char *device, uint32_t pasid, uint32_t id)
{
	int dev;

	if (st->rules != KERNEL_RULES_7)
		return rules_612_answer(st, device);
	dev = sim_dev_find(st, device);
	if (dev < 0)
		return dev;
	/* vfio/iommufd.c vfio_iommufd_physical_pasid_attach_ioas(): replace once attached. */
	if (pasid != NESTD_NO_PASID && pasid_find(&st->devs[dev], pasid))
		return sim_pasid_replace(st, device, pasid, id);
	return sim_pasid_attach(st, device, pasid, id);
}

int sim_pasid_op_detach(struct sim_state *st, const char *device, uint32_t pasid)
{
	if (st->rules != KERNEL_RULES_7)
		return rules_612_answer(st, device);
	/* vfio_iommufd_physical_pasid_detach_ioas(): PASID 0 was never in its table. */
	if (pasid == NESTD_NO_PASID) {
		int dev = sim_dev_find(st, device);

		return dev < 0 ? dev : 0;
	}
	return sim_pasid_detach(st, device, pasid);
}

int sim_pasid_check(struct sim_state *st, const char *device, uint32_t pasid, uint32_t id)
{
	struct sim_pasid *p;
	int dev;

	if (st->rules != KERNEL_RULES_7)
		return -EOPNOTSUPP;
	dev = sim_dev_find(st, device);
	if (dev < 0)
		return dev;
	p = pasid_find(&st->devs[dev], pasid);
	if (!id)
		return p ? -EINVAL : 0;
	if (!sim_obj_find(st, id))
		return -ENOENT;
	return p && p->hwpt_id == id ? 0 : -EINVAL;
}
