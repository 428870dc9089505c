// SPDX-License-Identifier: MIT
/*
 * The simulator's whole state (struct sim_state) to and from JSON, so that
 * a restarted daemon finds the same devices, nest parents, nested HWPTs,
 * model IOTLB / paging-structure caches, mock IOTLB slots and injected
 * faults the crashed one left: the sim stands in for the kernel objects
 * that the iommufd backend keeps alive in systemd's fd store.
 *
 * Loading trusts nothing: ids, references and ranges are checked, object
 * reference counts (users) are recomputed from the graph rather than read,
 * and interval sets are rebuilt through sim_iset_add(), which keeps them
 * canonical whatever the file says.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/json_util.h"
#include "backend/pasid_uapi.h"
#include "backend/sim/persist.h"
#include "backend/sim/state.h"
#include "util/journal.h"

/* ---- save -------------------------------------------------------------- */

static struct json_object *iset_to_json(const struct sim_iset *s)
{
	struct json_object *a = json_object_new_array_ext((int)(2 * s->n));

	/* Flat [start0, end0, start1, end1, ...]: half the objects of pairs. */
	for (uint32_t i = 0; a && i < s->n; i++)
		if (js_push(a, json_object_new_uint64(s->r[i].start)) ||
		    js_push(a, json_object_new_uint64(s->r[i].end))) {
			json_object_put(a);
			return NULL;
		}
	return a;
}

static int vtd_to_json(struct json_object *o, const struct iommu_hwpt_vtd_s1 *v)
{
	struct json_object *j = js_add_new(o, "vtd", false);

	if (!j || js_add_u64(j, "flags", v->flags) || js_add_u64(j, "pgtbl_addr", v->pgtbl_addr) ||
	    js_add_u64(j, "addr_width", v->addr_width) || js_add_u64(j, "reserved", v->__reserved))
		return -ENOMEM;
	return 0;
}

/*
 * Every object: the kernel keeps them all in a kept iommufd. Fault
 * objects come with their queues (fault_save.c); vIOMMUs, vDEVICEs and
 * the nested HWPTs on a vIOMMU with their fields (vpersist.c).
 */
static bool obj_persisted(const struct sim_state *st, const struct sim_obj *ob)
{
	(void)st;
	(void)ob;
	return true;
}

static struct json_object *obj_to_json(const struct sim_obj *ob)
{
	struct json_object *o = json_object_new_object(), *slots, *set;

	if (!o)
		return NULL;
	if (js_add_u64(o, "id", ob->id) || js_add_u64(o, "type", ob->type) ||
	    js_add_u64(o, "kind", ob->kind) || js_add_u64(o, "dev", ob->dev) ||
	    js_add_u64(o, "parent_id", ob->parent_id) || vtd_to_json(o, &ob->vtd) ||
	    (ob->fault_id && js_add_u64(o, "fault_id", ob->fault_id)) || sim_vobj_to_json(ob, o))
		goto nomem;
	/* IOMMU_HWPT_ALLOC_PASID stays with the HWPT in the kernel (only when set: old files lack
	 * it). */
	if (ob->pasid_compat && js_add_u64(o, "pasid_compat", 1))
		goto nomem;
	slots = js_add_new(o, "iotlb", true);
	for (int i = 0; slots && i < MOCK_NESTED_DOMAIN_IOTLB_NUM; i++)
		if (js_push(slots, json_object_new_uint64(ob->iotlb[i])))
			goto nomem;
	if (!slots)
		goto nomem;
	set = iset_to_json(&ob->iotlb_set);
	if (!set || json_object_object_add(o, "iotlb_set", set))
		goto nomem;
	set = iset_to_json(&ob->psc_set);
	if (!set || json_object_object_add(o, "psc_set", set))
		goto nomem;
	return o;
nomem:
	json_object_put(o);
	return NULL;
}

/* Flat [iova0, last0, flags0, iova1, ...], like the interval sets. */
static struct json_object *maps_to_json(const struct sim_dev *d)
{
	struct json_object *a = json_object_new_array_ext((int)(3 * d->n_maps));

	for (uint32_t i = 0; a && i < d->n_maps; i++)
		if (js_push(a, json_object_new_uint64(d->maps[i].iova)) ||
		    js_push(a, json_object_new_uint64(d->maps[i].last)) ||
		    js_push(a, json_object_new_uint64(d->maps[i].flags))) {
			json_object_put(a);
			return NULL;
		}
	return a;
}

/* A device's PASID table as flat [pasid0, hwpt0, pasid1, ...]; none: absent (old files too). */
static int pasids_to_json(struct json_object *o, const struct sim_dev *d)
{
	struct json_object *a;

	if (!d->n_pasids)
		return 0;
	a = js_add_new(o, "pasids", true);
	for (uint32_t i = 0; a && i < d->n_pasids; i++)
		if (js_push(a, json_object_new_uint64(d->pasids[i].pasid)) ||
		    js_push(a, json_object_new_uint64(d->pasids[i].hwpt_id)))
			return -ENOMEM;
	return a ? 0 : -ENOMEM;
}

static struct json_object *dev_to_json(const struct sim_dev *d)
{
	struct json_object *o = json_object_new_object(), *maps;

	if (o && (js_add_str(o, "name", d->name) || js_add_u64(o, "kind", d->kind) ||
		  js_add_u64(o, "parent_id", d->parent_id) ||
		  js_add_u64(o, "attached_id", d->attached_id) ||
		  js_add_u64(o, "present", d->present) || js_add_u64(o, "borrowed", d->borrowed) ||
		  sim_dev_cache_to_json(d, o) || pasids_to_json(o, d)))
		goto nomem;
	maps = o ? maps_to_json(d) : NULL;
	if (!maps || json_object_object_add(o, "maps", maps))
		goto nomem;
	return o;
nomem:
	json_object_put(o);
	return NULL;
}

static int fault_to_json(struct json_object *o, const struct sim_state *st)
{
	const struct backend_fault *f = &st->fault;
	struct json_object *j = js_add_new(o, "fault", false);

	if (!j || js_add_u64(j, "hwpt_id", f->hwpt_id) || js_add_u64(j, "mode", f->mode) ||
	    js_add_u64(j, "index", f->index) || js_add_u64(j, "addr", f->addr) ||
	    js_add_i64(j, "error", f->error) || js_add_u64(j, "hw_error", f->hw_error) ||
	    js_add_u64(j, "latency_us", f->latency_us) || js_add_u64(j, "count", f->count) ||
	    js_add_u64(o, "fault_fires_left", st->fault_fires_left) ||
	    js_add_u64(o, "latency_us", st->latency_us))
		return -ENOMEM;
	return 0;
}

int sim_state_save(const struct sim_state *st, struct json_object *o)
{
	struct json_object *devs, *objs;

	if (js_add_u64(o, "next_id", st->next_id))
		return -ENOMEM;
	devs = js_add_new(o, "devices", true);
	objs = js_add_new(o, "objects", true);
	if (!devs || !objs)
		return -ENOMEM;
	for (uint32_t i = 0; i < st->n_devs; i++)
		if (js_push(devs, dev_to_json(&st->devs[i])))
			return -ENOMEM;
	for (uint32_t i = 0; i < st->n_objs; i++)
		if (obj_persisted(st, &st->objs[i]) && js_push(objs, obj_to_json(&st->objs[i])))
			return -ENOMEM;
	/* A VM context's one IOAS, as {"maps": [...]} like a device's. */
	if (st->is_ctx) {
		struct json_object *ioas = js_add_new(o, "ctx_ioas", false), *maps;

		maps = ioas ? maps_to_json(&st->ioas) : NULL;
		if (!maps || json_object_object_add(ioas, "maps", maps))
			return -ENOMEM;
	}
	if (sim_faults_to_json(st, o) || sim_veventqs_to_json(st, o))
		return -ENOMEM;
	return fault_to_json(o, st);
}

static struct json_object *one_or_none(struct json_object *elem, bool present, int *rc)
{
	struct json_object *a = json_object_new_array();

	if (!a || (present && js_push(a, elem))) {
		json_object_put(a);
		*rc = -ENOMEM;
		return NULL;
	}
	return a;
}

int sim_state_save_delta(const struct sim_state *st, const uint32_t *ids, uint32_t n, uint64_t devs,
			 struct json_object *records)
{
	struct json_object *m;
	int rc = 0;

	for (uint32_t i = 0; !rc && i < n; i++) {
		/* sim_obj_find() does not change the state; it just is not const. */
		const struct sim_obj *o = sim_obj_find((struct sim_state *)st, ids[i]);
		struct json_object *v;

		if (o && !obj_persisted(st, o))
			o = NULL;
		v = one_or_none(o ? obj_to_json(o) : NULL, o, &rc);
		if (!rc)
			rc = journal_rec_replace(records, "backend_state.objects", "id",
						 json_object_new_int64(ids[i]), v);
	}
	for (uint32_t i = 0; !rc && i < st->n_devs; i++) {
		struct json_object *v;

		if (!(devs & (UINT64_C(1) << i)))
			continue;
		v = one_or_none(dev_to_json(&st->devs[i]), true, &rc);
		if (!rc)
			rc = journal_rec_replace(records, "backend_state.devices", "name",
						 json_object_new_string(st->devs[i].name), v);
	}
	if (rc)
		return rc;
	m = json_object_new_object();
	if (!m || js_add_u64(m, "next_id", st->next_id) || fault_to_json(m, st)) {
		json_object_put(m);
		return -ENOMEM;
	}
	return journal_rec_merge(records, "backend_state", m);
}

/* ---- load -------------------------------------------------------------- */

struct loader {
	struct sim_state *st;
	const char **errmsg;
};

static int bad(struct loader *l, const char *why)
{
	*l->errmsg = why;
	return -EINVAL;
}

static bool get_u64_at(struct json_object *arr, size_t i, uint64_t *v)
{
	struct json_object *j = json_object_array_get_idx(arr, i);

	if (!json_object_is_type(j, json_type_int) || json_object_get_int64(j) < 0)
		return false;
	*v = json_object_get_uint64(j);
	return true;
}

/*
 * A device's IOAS areas. Missing in files of daemons that predate guest
 * memory (no areas then); otherwise sorted, disjoint and mappable, as
 * sim_map_memory() would have left them.
 */
static int load_maps(struct loader *l, struct json_object *j, struct sim_dev *d)
{
	struct json_object *arr;
	size_t n;

	if (!json_object_object_get_ex(j, "maps", &arr))
		return 0;
	n = json_object_is_type(arr, json_type_array) ? json_object_array_length(arr) : 1;
	if (n % 3)
		return bad(l, "sim: malformed IOAS areas");
	for (size_t i = 0; i < n; i += 3) {
		uint64_t iova, last, flags;

		if (!get_u64_at(arr, i, &iova) || !get_u64_at(arr, i + 1, &last) ||
		    !get_u64_at(arr, i + 2, &flags) || iova > last || !flags ||
		    flags & ~(uint64_t)(IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE) ||
		    sim_map_range_ok(d->kind, iova, last) ||
		    (d->n_maps && iova <= d->maps[d->n_maps - 1].last))
			return bad(l, "sim: IOAS areas malformed, out of order or out of range");
		if (sim_map_append(d, iova, last, (uint32_t)flags))
			return -ENOMEM;
	}
	return 0;
}

/*
 * A device's PASID table, as pairs; what they name is checked once the
 * objects are in (link_pasids).
 */
static int load_pasids(struct loader *l, struct json_object *j, struct sim_dev *d)
{
	struct json_object *arr;
	size_t n;

	if (!json_object_object_get_ex(j, "pasids", &arr))
		return 0;
	n = json_object_is_type(arr, json_type_array) ? json_object_array_length(arr) : 1;
	if (n % 2 || n > 2 * (size_t)SIM_ID_MAX)
		return bad(l, "sim: malformed PASID table");
	d->pasids = n ? calloc(n / 2, sizeof(*d->pasids)) : NULL;
	if (n && !d->pasids)
		return -ENOMEM;
	d->cap_pasids = (uint32_t)(n / 2);
	for (size_t i = 0; i < n; i += 2) {
		uint64_t pasid, id;

		if (!get_u64_at(arr, i, &pasid) || !get_u64_at(arr, i + 1, &id) ||
		    pasid > UINT32_MAX || id > UINT32_MAX)
			return bad(l, "sim: malformed PASID table");
		d->pasids[d->n_pasids++] =
		    (struct sim_pasid){.pasid = (uint32_t)pasid, .hwpt_id = (uint32_t)id};
	}
	return 0;
}

static int load_devs(struct loader *l, const struct config *cfg, struct json_object *arr)
{
	struct sim_state *st = l->st;

	if (!arr || json_object_array_length(arr) != cfg->n_devices)
		return bad(l, "sim: the saved devices are not the configured ones");
	for (uint32_t i = 0; i < cfg->n_devices; i++) {
		struct json_object *j = json_object_array_get_idx(arr, i);
		struct sim_dev *d = &st->devs[i];
		uint32_t kind, present, borrowed;
		int rc;

		if (js_str(j, "name", d->name, sizeof(d->name)) || js_u32(j, "kind", &kind) ||
		    js_u32(j, "parent_id", &d->parent_id) ||
		    js_u32(j, "attached_id", &d->attached_id))
			return bad(l, "sim: malformed device");
		/* A renamed, reordered or re-kinded device is another machine. */
		if (strcmp(d->name, cfg->devices[i].name) || kind != cfg->devices[i].kind)
			return bad(l, "sim: the saved devices are not the configured ones");
		d->kind = (enum device_kind)kind;
		/* From the configuration, as at open (the attachments are: load_pasids). */
		d->pasid_bits = sim_pasid_bits(&cfg->devices[i], cfg->sim_kernel);
		/* Files from before VM contexts lack both: every device was held. */
		present = 1;
		borrowed = 0;
		if ((json_object_object_get_ex(j, "present", NULL) &&
		     js_u32(j, "present", &present)) ||
		    (json_object_object_get_ex(j, "borrowed", NULL) &&
		     js_u32(j, "borrowed", &borrowed)))
			return bad(l, "sim: malformed device");
		d->present = present;
		d->borrowed = borrowed;
		if (sim_dev_cache_load(j, d))
			return bad(l, "sim: malformed device cache");
		/* Counted before its areas load: sim_state_free() frees them. */
		st->n_devs = i + 1;
		rc = load_maps(l, j, d);
		if (!rc)
			rc = load_pasids(l, j, d);
		if (rc)
			return rc;
	}
	st->n_devs = cfg->n_devices;
	return 0;
}

static int load_iset(struct loader *l, struct json_object *o, const char *key, struct sim_iset *s)
{
	struct json_object *arr = js_get(o, key, json_type_array);
	size_t n = arr ? json_object_array_length(arr) : 0;
	uint64_t prev_end = 0;

	if (!arr || n % 2)
		return bad(l, "sim: malformed interval set");
	for (size_t i = 0; i < n; i += 2) {
		struct json_object *a = json_object_array_get_idx(arr, i);
		struct json_object *b = json_object_array_get_idx(arr, i + 1);
		uint64_t start, end;

		if (!json_object_is_type(a, json_type_int) ||
		    !json_object_is_type(b, json_type_int) || json_object_get_int64(a) < 0 ||
		    json_object_get_int64(b) < 0)
			return bad(l, "sim: malformed interval set");
		start = json_object_get_uint64(a);
		end = json_object_get_uint64(b);
		if (start >= end || end > SIM_PFN_LIMIT || (i && start < prev_end))
			return bad(l, "sim: interval set out of order or range");
		if (sim_iset_add(s, start, end))
			return -ENOMEM;
		prev_end = end;
	}
	return 0;
}

static int load_vtd(struct loader *l, struct json_object *o, struct iommu_hwpt_vtd_s1 *v)
{
	struct json_object *j = js_get(o, "vtd", json_type_object);
	uint64_t flags, pgtbl;
	uint32_t aw, rsv;

	if (js_u64(j, "flags", UINT64_MAX, &flags) || js_u64(j, "pgtbl_addr", UINT64_MAX, &pgtbl) ||
	    js_u32(j, "addr_width", &aw) || js_u32(j, "reserved", &rsv))
		return bad(l, "sim: malformed vtd data");
	v->flags = flags;
	v->pgtbl_addr = pgtbl;
	v->addr_width = aw;
	v->__reserved = rsv;
	return 0;
}

static int load_slots(struct loader *l, struct json_object *o, uint32_t *slots)
{
	struct json_object *arr = js_get(o, "iotlb", json_type_array);

	if (!arr || json_object_array_length(arr) != MOCK_NESTED_DOMAIN_IOTLB_NUM)
		return bad(l, "sim: malformed mock IOTLB");
	for (int i = 0; i < MOCK_NESTED_DOMAIN_IOTLB_NUM; i++) {
		struct json_object *v = json_object_array_get_idx(arr, i);

		if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0 ||
		    json_object_get_int64(v) > UINT32_MAX)
			return bad(l, "sim: malformed mock IOTLB");
		slots[i] = (uint32_t)json_object_get_int64(v);
	}
	return 0;
}

/* One object; the previous ones (smaller ids) are already loaded. */
static int load_obj(struct loader *l, struct json_object *j, struct sim_obj *o)
{
	struct sim_state *st = l->st;
	uint32_t type, kind;
	struct sim_obj *parent;
	int rc;

	if (js_u32(j, "id", &o->id) || js_u32(j, "type", &type) || js_u32(j, "kind", &kind) ||
	    js_u32(j, "dev", &o->dev) || js_u32(j, "parent_id", &o->parent_id))
		return bad(l, "sim: malformed object");
	if (!o->id || o->id >= st->next_id || (st->n_objs && o->id <= st->objs[st->n_objs - 1].id))
		return bad(l, "sim: object ids out of order");
	if (o->dev >= st->n_devs || kind != st->devs[o->dev].kind)
		return bad(l, "sim: object on an unknown device");
	o->type = (enum sim_obj_type)type;
	o->kind = (enum device_kind)kind;
	if (type == SIM_OBJ_PARENT) {
		if (o->parent_id || st->devs[o->dev].parent_id != o->id)
			return bad(l, "sim: nest parent not its device's");
	} else if (type == SIM_OBJ_NESTED) {
		/*
		 * On its device's nest parent (allocated at open: a smaller id),
		 * or on a vIOMMU, which may have the larger id (the lowest free
		 * one went to the HWPT): checked once all are in (link_vobjs).
		 */
		parent = sim_obj_find(st, o->parent_id);
		if (parent && parent->type == SIM_OBJ_PARENT && parent->dev != o->dev)
			return bad(l, "sim: nested HWPT without its nest parent");
		/* Its fault object has a smaller id (allocated first): loaded already. */
		if (json_object_object_get_ex(j, "fault_id", NULL) &&
		    (js_u32(j, "fault_id", &o->fault_id) || !sim_obj_find(st, o->fault_id) ||
		     sim_obj_find(st, o->fault_id)->type != SIM_OBJ_FAULT))
			return bad(l, "sim: nested HWPT without its fault object");
	} else if (type == SIM_OBJ_FAULT) {
		if (o->parent_id)
			return bad(l, "sim: malformed fault object");
	} else if (type == SIM_OBJ_VIOMMU) {
		/* viommu.c sim_viommu_alloc(): on its device's nest parent. */
		if (o->parent_id != st->devs[o->dev].parent_id)
			return bad(l, "sim: vIOMMU not on its device's nest parent");
	} else if (type == SIM_OBJ_VEVENTQ) {
		/* On a vIOMMU (checked in link_graph), with its queue (veventq_save.c). */
		if (o->fault_id)
			return bad(l, "sim: malformed vEVENTQ");
	} else if (type != SIM_OBJ_VDEVICE) {
		return bad(l, "sim: unknown object type");
	}
	if (type == SIM_OBJ_VIOMMU || type == SIM_OBJ_VDEVICE) {
		rc = sim_vobj_load(j, o, l->errmsg);
		if (rc)
			return rc;
	}
	if (json_object_object_get_ex(j, "pasid_compat", NULL)) {
		uint32_t compat;

		if (js_u32(j, "pasid_compat", &compat))
			return bad(l, "sim: malformed object");
		o->pasid_compat = compat != 0;
	}
	rc = load_vtd(l, j, &o->vtd);
	if (!rc)
		rc = load_slots(l, j, o->iotlb);
	if (!rc)
		rc = load_iset(l, j, "iotlb_set", &o->iotlb_set);
	if (!rc)
		rc = load_iset(l, j, "psc_set", &o->psc_set);
	return rc;
}

static int load_objs(struct loader *l, struct json_object *arr)
{
	struct sim_state *st = l->st;
	size_t n = arr ? json_object_array_length(arr) : 0;
	int rc;

	if (!arr || n > SIM_ID_MAX)
		return bad(l, "sim: malformed object list");
	st->objs = calloc(n ? n : 1, sizeof(*st->objs));
	if (!st->objs)
		return -ENOMEM;
	st->cap_objs = n ? (uint32_t)n : 1;
	for (size_t i = 0; i < n; i++) {
		struct sim_obj *o = &st->objs[i];

		sim_iset_init(&o->iotlb_set);
		sim_iset_init(&o->psc_set);
		rc = load_obj(l, json_object_array_get_idx(arr, i), o);
		/* Counted even on failure: sim_state_free() frees its sets. */
		st->n_objs++;
		if (rc)
			return rc;
	}
	return 0;
}

/*
 * What sits on a vIOMMU (a vDEVICE, a nested HWPT) names one of its
 * driver's; a device has one vDEVICE (idev->vdev), rebuilt here.
 */
static int link_vobjs(struct loader *l)
{
	struct sim_state *st = l->st;

	for (uint32_t i = 0; i < st->n_objs; i++) {
		struct sim_obj *o = &st->objs[i];
		const struct sim_obj *p = sim_obj_find(st, o->parent_id);

		if (o->type == SIM_OBJ_NESTED && p && p->type == SIM_OBJ_PARENT)
			continue; /* checked at load */
		if (o->type != SIM_OBJ_NESTED && o->type != SIM_OBJ_VDEVICE)
			continue;
		if (!p || p->type != SIM_OBJ_VIOMMU || p->kind != o->kind)
			return bad(l, o->type == SIM_OBJ_VDEVICE
					  ? "sim: vDEVICE without its vIOMMU"
					  : "sim: nested HWPT without its nest parent");
		if (o->type == SIM_OBJ_VDEVICE) {
			if (st->devs[o->dev].vdev_id)
				return bad(l, "sim: two vDEVICEs of one device");
			st->devs[o->dev].vdev_id = o->id;
		}
	}
	return 0;
}

/* objects.c sim_attach(): a nested HWPT on a vIOMMU, through the device's vDEVICE on it. */
static bool on_own_vdevice(struct sim_state *st, const struct sim_dev *d, const struct sim_obj *a)
{
	const struct sim_obj *v = sim_obj_find(st, a->parent_id);
	const struct sim_obj *vd = d->vdev_id ? sim_obj_find(st, d->vdev_id) : NULL;

	return a->type == SIM_OBJ_NESTED && v && v->type == SIM_OBJ_VIOMMU && vd &&
	       vd->parent_id == v->id;
}

/*
 * Devices must sit on their own parent or a nested HWPT on it; users are
 * then what the kernel's refcounts would be: attached devices, plus nested
 * children for a parent.
 */
static int link_graph(struct loader *l)
{
	struct sim_state *st = l->st;

	for (uint32_t i = 0; i < st->n_devs; i++) {
		struct sim_dev *d = &st->devs[i];
		struct sim_obj *p = sim_obj_find(st, d->parent_id);
		struct sim_obj *a = sim_obj_find(st, d->attached_id);

		/*
		 * Not held: a context's device not added (no parent), or a
		 * root's VTD device lent to a context (its parent stays).
		 */
		if (!d->present) {
			if (d->attached_id || (d->parent_id && (!p || p->dev != i)) ||
			    (st->is_ctx && d->parent_id))
				return bad(l, "sim: a device it does not hold is attached");
			continue;
		}
		if (!p || p->type != SIM_OBJ_PARENT || p->dev != i)
			return bad(l, "sim: device without its nest parent");
		if (!a || (a != p && a->parent_id != p->id && !on_own_vdevice(st, d, a)))
			return bad(l, "sim: device attached to a foreign HWPT");
		a->users++;
		p->pasid_compat = d->pasid_bits > 0;
	}
	for (uint32_t i = 0; i < st->n_objs; i++) {
		struct sim_obj *o = &st->objs[i];

		/* A vEVENTQ holds its vIOMMU (eventq.c iommufd_veventq_alloc()). */
		if (o->type == SIM_OBJ_VEVENTQ) {
			struct sim_obj *v = sim_obj_find(st, o->parent_id);

			if (!v || v->type != SIM_OBJ_VIOMMU || v->kind != o->kind)
				return bad(l, "sim: a vEVENTQ without its vIOMMU");
			v->users++;
			continue;
		}
		/* A nested HWPT, a vIOMMU, a vDEVICE: each holds what it sits on (and its fault).
		 */
		if (o->type == SIM_OBJ_NESTED || o->type == SIM_OBJ_VIOMMU ||
		    o->type == SIM_OBJ_VDEVICE) {
			sim_obj_find(st, o->parent_id)->users++;
			if (o->fault_id)
				sim_obj_find(st, o->fault_id)->users++;
		} else if (o->type == SIM_OBJ_PARENT && st->devs[o->dev].parent_id != o->id)
			return bad(l, "sim: stray nest parent");
	}
	return 0;
}

/*
 * What sits on each PASID, as pasid.c would have let it: a PASID-capable
 * HWPT of the device's driver on a held device, a PASID within its width,
 * once each; every attachment holds its HWPT (users), as the core's.
 */
static int link_pasids(struct loader *l)
{
	struct sim_state *st = l->st;

	for (uint32_t i = 0; i < st->n_devs; i++) {
		struct sim_dev *d = &st->devs[i];

		for (uint32_t k = 0; k < d->n_pasids; k++) {
			const struct sim_pasid *p = &d->pasids[k];
			struct sim_obj *o = sim_obj_find(st, p->hwpt_id);

			if (!d->present || !o ||
			    (o->type != SIM_OBJ_PARENT && o->type != SIM_OBJ_NESTED) ||
			    o->kind != d->kind || !o->pasid_compat || p->pasid == NESTD_NO_PASID ||
			    (d->pasid_bits && p->pasid >= (1u << d->pasid_bits)))
				return bad(l, "sim: a PASID attachment the kernel would not have");
			for (uint32_t m = 0; m < k; m++)
				if (d->pasids[m].pasid == p->pasid)
					return bad(l, "sim: two attachments on one PASID");
			o->users++;
		}
	}
	return 0;
}

static int load_fault(struct loader *l, struct json_object *o)
{
	struct sim_state *st = l->st;
	struct backend_fault *f = &st->fault;
	struct json_object *j = js_get(o, "fault", json_type_object);
	int64_t err;

	if (js_u32(j, "hwpt_id", &f->hwpt_id) || js_u32(j, "mode", &f->mode) ||
	    js_u32(j, "index", &f->index) || js_u64(j, "addr", UINT64_MAX, &f->addr) ||
	    js_i64(j, "error", -4095, 0, &err) || js_u32(j, "hw_error", &f->hw_error) ||
	    js_u32(j, "latency_us", &f->latency_us) || js_u32(j, "count", &f->count) ||
	    js_u32(o, "fault_fires_left", &st->fault_fires_left) ||
	    js_u32(o, "latency_us", &st->latency_us) || f->mode > FAULT_AT_ADDR)
		return bad(l, "sim: malformed fault");
	f->error = (int32_t)err;
	return 0;
}

int sim_state_load(struct sim_state *st, const struct config *cfg, struct json_object *o,
		   const char **errmsg)
{
	struct loader l = {.st = st, .errmsg = errmsg};
	uint64_t next_id;
	int rc;

	memset(st, 0, sizeof(*st));
	if (cfg->n_devices > CONFIG_MAX_DEVICES)
		return bad(&l, "sim: too many devices");
	if (js_u64(o, "next_id", (uint64_t)SIM_ID_MAX + 1, &next_id) || !next_id)
		return bad(&l, "sim: malformed next_id");
	st->next_id = (uint32_t)next_id;
	rc = load_devs(&l, cfg, js_get(o, "devices", json_type_array));
	/* A VM context: its one IOAS's areas. */
	st->is_ctx = json_object_object_get_ex(o, "ctx_ioas", NULL);
	if (!rc && st->is_ctx) {
		/*
		 * Its areas fit every domain on it: checked against one held
		 * device's, or VT-d's (the widest aperture) with none held.
		 */
		st->ioas.kind = DEVICE_KIND_VTD;
		for (uint32_t i = st->n_devs; i-- > 0;)
			if (st->devs[i].present)
				st->ioas.kind = st->devs[i].kind;
		rc = load_maps(&l, js_get(o, "ctx_ioas", json_type_object), &st->ioas);
	}
	if (!rc)
		rc = load_objs(&l, js_get(o, "objects", json_type_array));
	if (!rc)
		rc = link_vobjs(&l);
	if (!rc)
		rc = link_graph(&l);
	if (!rc)
		rc = link_pasids(&l);
	if (!rc)
		rc = sim_faults_load(st, o, errmsg);
	if (!rc)
		rc = sim_veventqs_load(st, o, errmsg);
	if (!rc)
		rc = load_fault(&l, o);
	if (rc == -ENOMEM)
		*errmsg = "sim: out of memory";
	if (rc)
		sim_state_free(st);
	return rc;
}
