// SPDX-License-Identifier: MIT
/*
 * The 7.x objects' part of the sim's saved state (persist.c has the
 * rest): a vIOMMU's type and, for an ARM SMMUv3 one, the host SMMU's
 * caches for its VMID (TLB, CD cache, ATCs: what a guest's commands still
 * have to invalidate after a restart, as the hardware keeps them across a
 * daemon crash); a vDEVICE's virt_id; a mock device's cache (what the
 * selftest vIOMMU invalidates). Entries are flat number arrays, one per
 * cache entry, in the model's order.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "backend/sim/persist.h"
#include "backend/sim/smmuv3.h"
#include "util/json_util.h"

static int push_row(struct json_object *arr, const uint64_t *v, size_t n)
{
	struct json_object *row = json_object_new_array_ext((int)n);

	for (size_t i = 0; row && i < n; i++)
		if (js_push(row, json_object_new_uint64(v[i]))) {
			json_object_put(row);
			return -ENOMEM;
		}
	return row ? js_push(arr, row) : -ENOMEM;
}

static int smmu_to_json(struct json_object *o, const struct smmuv3_model *m)
{
	struct json_object *j = js_add_new(o, "smmu", false), *tlb, *cd, *atc;
	int rc = 0;

	tlb = j ? js_add_new(j, "tlb", true) : NULL;
	cd = j ? js_add_new(j, "cd", true) : NULL;
	atc = j ? js_add_new(j, "atc", true) : NULL;
	if (!tlb || !cd || !atc)
		return -ENOMEM;
	for (uint32_t i = 0; !rc && i < m->n_tlb; i++) {
		const struct smmuv3_tlb_ent *e = &m->tlb[i];
		uint64_t v[] = {e->vmid,  e->asid, e->va,     e->size_shift,
				e->level, e->leaf, e->global, e->valid};

		rc = push_row(tlb, v, sizeof(v) / sizeof(v[0]));
	}
	for (uint32_t i = 0; !rc && i < m->n_cd; i++) {
		const struct smmuv3_cd_ent *e = &m->cd[i];
		uint64_t v[] = {e->sid, e->ssid, e->leaf, e->valid};

		rc = push_row(cd, v, sizeof(v) / sizeof(v[0]));
	}
	for (uint32_t i = 0; !rc && i < m->n_atc; i++) {
		const struct smmuv3_atc_ent *e = &m->atc[i];
		uint64_t v[] = {e->sid, e->ssid, e->page, e->lg, e->valid};

		rc = push_row(atc, v, sizeof(v) / sizeof(v[0]));
	}
	return rc;
}

int sim_vobj_to_json(const struct sim_obj *ob, struct json_object *o)
{
	if (ob->type == SIM_OBJ_VDEVICE)
		return js_add_u64(o, "virt_id", ob->virt_id) ? -ENOMEM : 0;
	if (ob->type != SIM_OBJ_VIOMMU)
		return 0;
	if (js_add_u64(o, "viommu_type", ob->viommu_type))
		return -ENOMEM;
	return ob->smmu ? smmu_to_json(o, ob->smmu) : 0;
}

/* Row i of arr as n numbers, each at most max[k]; false if it is not one. */
static bool get_row(struct json_object *arr, size_t i, uint64_t *v, const uint64_t *max, size_t n)
{
	struct json_object *row = json_object_array_get_idx(arr, i);

	if (!json_object_is_type(row, json_type_array) || json_object_array_length(row) != n)
		return false;
	for (size_t k = 0; k < n; k++) {
		struct json_object *x = json_object_array_get_idx(row, k);

		if (!json_object_is_type(x, json_type_int))
			return false;
		errno = 0;
		v[k] = json_object_get_uint64(x);
		if (errno || v[k] > max[k])
			return false;
	}
	return true;
}

static size_t len_of(struct json_object *a)
{
	return a ? json_object_array_length(a) : 0;
}

static int smmu_load(struct json_object *j, struct smmuv3_model *m)
{
	static const uint64_t tlb_max[] = {UINT16_MAX, UINT16_MAX, UINT64_MAX, 63, 3, 1, 1, 1};
	static const uint64_t cd_max[] = {UINT32_MAX, UINT32_MAX, 1, 1};
	static const uint64_t atc_max[] = {UINT32_MAX, UINT32_MAX, UINT64_MAX, 63, 1};
	struct json_object *tlb = js_get(j, "tlb", json_type_array);
	struct json_object *cd = js_get(j, "cd", json_type_array);
	struct json_object *atc = js_get(j, "atc", json_type_array);
	uint64_t v[8];
	int rc = tlb && cd && atc ? 0 : -EINVAL;

	for (size_t i = 0; !rc && i < len_of(tlb); i++) {
		if (!get_row(tlb, i, v, tlb_max, 8))
			return -EINVAL;
		rc = smmuv3_model_add_tlb(m, &(struct smmuv3_tlb_ent){.vmid = (uint16_t)v[0],
								      .asid = (uint16_t)v[1],
								      .va = v[2],
								      .size_shift = (uint8_t)v[3],
								      .level = (uint8_t)v[4],
								      .leaf = v[5],
								      .global = v[6],
								      .valid = v[7]});
	}
	for (size_t i = 0; !rc && i < len_of(cd); i++) {
		if (!get_row(cd, i, v, cd_max, 4))
			return -EINVAL;
		rc = smmuv3_model_add_cd(m, &(struct smmuv3_cd_ent){.sid = (uint32_t)v[0],
								    .ssid = (uint32_t)v[1],
								    .leaf = v[2],
								    .valid = v[3]});
	}
	for (size_t i = 0; !rc && i < len_of(atc); i++) {
		if (!get_row(atc, i, v, atc_max, 5))
			return -EINVAL;
		rc = smmuv3_model_add_atc(m, &(struct smmuv3_atc_ent){.sid = (uint32_t)v[0],
								      .ssid = (uint32_t)v[1],
								      .page = v[2],
								      .lg = (uint8_t)v[3],
								      .valid = v[4]});
	}
	return rc;
}

int sim_vobj_load(struct json_object *j, struct sim_obj *o, const char **why)
{
	struct json_object *smmu;
	int rc;

	if (o->type == SIM_OBJ_VDEVICE) {
		if (js_u64(j, "virt_id", UINT64_MAX, &o->virt_id)) {
			*why = "sim: malformed vDEVICE";
			return -EINVAL;
		}
		return 0;
	}
	if (js_u32(j, "viommu_type", &o->viommu_type)) {
		*why = "sim: malformed vIOMMU";
		return -EINVAL;
	}
	/* Absent: no command reached the model yet; anything but an object lies. */
	if (!json_object_object_get_ex(j, "smmu", NULL))
		return 0;
	smmu = js_get(j, "smmu", json_type_object);
	if (!smmu || o->viommu_type != NESTD_VIOMMU_TYPE_ARM_SMMUV3) {
		*why = "sim: malformed SMMUv3 model of a vIOMMU";
		return -EINVAL;
	}
	o->smmu = calloc(1, sizeof(*o->smmu));
	if (!o->smmu)
		return -ENOMEM;
	smmuv3_model_init(o->smmu);
	rc = smmu_load(smmu, o->smmu);
	if (rc == -EINVAL)
		*why = "sim: malformed SMMUv3 model of a vIOMMU";
	return rc;
}

int sim_dev_cache_to_json(const struct sim_dev *d, struct json_object *o)
{
	struct json_object *a = js_add_new(o, "cache", true);

	for (uint32_t c = 0; a && c < NESTD_MOCK_DEV_CACHE_NUM; c++)
		if (js_push(a, json_object_new_uint64(d->cache[c])))
			return -ENOMEM;
	return a ? 0 : -ENOMEM;
}

int sim_dev_cache_load(struct json_object *j, struct sim_dev *d)
{
	static const uint64_t max[NESTD_MOCK_DEV_CACHE_NUM] = {UINT32_MAX, UINT32_MAX, UINT32_MAX,
							       UINT32_MAX};
	struct json_object *a = js_get(j, "cache", json_type_array);
	struct json_object *wrap;
	uint64_t v[NESTD_MOCK_DEV_CACHE_NUM];
	bool ok;

	/* Files from before vIOMMUs lack it: the cache as a new mock device has it. */
	if (!json_object_object_get_ex(j, "cache", NULL)) {
		for (uint32_t c = 0; c < NESTD_MOCK_DEV_CACHE_NUM; c++)
			d->cache[c] = NESTD_MOCK_DEV_CACHE_DEFAULT;
		return 0;
	}
	wrap = json_object_new_array();
	if (!wrap)
		return -ENOMEM;
	/* get_row() reads rows of an array: the cache is the one row of wrap. */
	ok = a && !js_push(wrap, json_object_get(a)) &&
	     get_row(wrap, 0, v, max, NESTD_MOCK_DEV_CACHE_NUM);
	json_object_put(wrap);
	if (!ok)
		return -EINVAL;
	for (uint32_t c = 0; c < NESTD_MOCK_DEV_CACHE_NUM; c++)
		d->cache[c] = (uint32_t)v[c];
	return 0;
}
