// SPDX-License-Identifier: MIT
/*
 * The simulator's state from the configuration and back to nothing: one
 * device with its nest parent per configured device, the configured fault,
 * and freeing it all. Above the rooms it sets up (table, mem, inv).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backend/sim/smmuv3.h"
#include "backend/sim/state.h"

static int dev_add(struct sim_state *st, const struct config_device *cd, const char **errmsg)
{
	struct sim_dev *d = &st->devs[st->n_devs];
	struct sim_obj *parent;
	int rc;

	if (!cd->name[0] || strnlen(cd->name, CONFIG_NAME_MAX) == CONFIG_NAME_MAX) {
		*errmsg = "sim: device name empty or too long";
		return -EINVAL;
	}
	if (cd->kind != DEVICE_KIND_VTD && cd->kind != DEVICE_KIND_SELFTEST &&
	    cd->kind != DEVICE_KIND_SMMUV3) {
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
	d->pasid_bits = sim_pasid_bits(cd, st->rules);
	for (uint32_t c = 0; c < NESTD_MOCK_DEV_CACHE_NUM; c++)
		d->cache[c] = NESTD_MOCK_DEV_CACHE_DEFAULT;
	rc = sim_obj_new(st, SIM_OBJ_PARENT, st->n_devs, &parent);
	if (rc) {
		*errmsg = "sim: cannot allocate a nest parent";
		return rc;
	}
	/* The daemon keeps each device on its parent while no nested HWPT is. */
	parent->users = 1;
	/* Like the iommufd backend: a PASID-capable device's parent is ALLOC_PASID. */
	parent->pasid_compat = d->pasid_bits > 0;
	d->parent_id = parent->id;
	d->attached_id = parent->id;
	d->present = true;
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

void sim_state_init_ctx(struct sim_state *st, const struct sim_state *root)
{
	memset(st, 0, sizeof(*st));
	st->next_id = 1;
	st->rules = root->rules;
	st->is_ctx = true;
	for (uint32_t i = 0; i < root->n_devs; i++) {
		memcpy(st->devs[i].name, root->devs[i].name, sizeof(st->devs[i].name));
		st->devs[i].kind = root->devs[i].kind;
		st->devs[i].pasid_bits = root->devs[i].pasid_bits;
	}
	st->n_devs = root->n_devs;
}

void sim_state_free(struct sim_state *st)
{
	uint32_t i;

	for (i = 0; i < st->n_objs; i++) {
		sim_iset_free(&st->objs[i].iotlb_set);
		smmuv3_model_destroy(&st->objs[i].smmu);
		sim_iset_free(&st->objs[i].psc_set);
	}
	for (i = 0; i < st->n_devs; i++) {
		sim_dev_maps_free(&st->devs[i]);
		sim_iset_free(&st->devs[i].dirty);
		sim_dev_pasids_free(&st->devs[i]);
	}
	sim_faults_free(st);
	sim_veventqs_free(st);
	sim_dev_maps_free(&st->ioas);
	free(st->objs);
	st->objs = NULL;
	st->n_objs = 0;
	st->cap_objs = 0;
}
