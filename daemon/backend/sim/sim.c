// SPDX-License-Identifier: MIT
/*
 * The "sim" backend: the daemon's default, an in-process model of iommufd
 * nested HWPTs with the kernel's exact errnos and entry_num semantics, so
 * that the socket-level tests written against it hold unchanged against a
 * real kernel. The model lives in sim_state.h; this file is the vtable.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#include "backend/backend.h"
#include "util/config.h"
#include "util/json_util.h"
#include "backend/sim/persist.h"
#include "backend/sim/state.h"
#include "util/journal.h"

#define SIM_ANCHOR_LEN 16
#define SIM_FD_NAME "sim"

/*
 * The sim's objects live in this process, so nothing needs to outlive it;
 * the state file carries them across a restart. To make the restart path
 * the same as iommufd's (whose objects live as long as its fd is open in
 * systemd's fd store), the sim keeps an anchor: a memfd holding a random
 * instance id, stored in the fd store as "sim". A restored instance
 * accepts the state file only with the anchor back and only if the ids
 * match: without it (no fd store, or a store systemd emptied on stop while
 * the state file stayed) iommufd's objects would be gone, so the sim's are.
 */
struct sim_backend {
	struct backend be;
	struct sim_state st;
	const struct config *cfg; /* the devices a restored state must match */
	uint64_t gen; /* bumped by every change save() would write */
	/* What changed since the last save (for save_delta's journal records). */
	struct dirty_ids dirty_objs;
	uint64_t dirty_devs; /* bit i: devs[i] */
	int anchor_fd;
	uint8_t anchor[SIM_ANCHOR_LEN];
	/* A VM context: the instance that lends it VTD devices; NULL: the root. */
	struct sim_backend *root;
};

static struct sim_backend *to_sb(struct backend *be)
{
	return (struct sim_backend *)be;
}

static struct sim_state *to_st(struct backend *be)
{
	return &((struct sim_backend *)be)->st;
}

static void ctx_give_back(struct sim_backend *sb, uint32_t i);
static int anchor_new(uint8_t *id);

static void sim_free(struct backend *be)
{
	sim_state_free(to_st(be));
	dirty_ids_free(&to_sb(be)->dirty_objs);
	if (to_sb(be)->anchor_fd >= 0)
		close(to_sb(be)->anchor_fd);
	free(be);
}

static void sim_close(struct backend *be)
{
	if (!be)
		return;
	/* A context's devices leave with it; a borrowed VTD device goes back to the root. */
	for (uint32_t i = 0; to_sb(be)->root && i < to_st(be)->n_devs; i++)
		ctx_give_back(to_sb(be), i);
	sim_free(be);
}

/* Like iommufd's: the objects outlive us (here: in the state file), nothing is given back. */
static void sim_abandon(struct backend *be)
{
	if (be)
		sim_free(be);
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
		.rules = st->rules,
	};
	/* Only what the configured devices' drivers support, in config order. */
	for (i = 0; i < st->n_devs; i++) {
		bool vtd = st->devs[i].kind == DEVICE_KIND_VTD;

		/* Its nested data goes through a vIOMMU, its commands too. */
		if (st->devs[i].kind == DEVICE_KIND_SMMUV3) {
			caps_add(caps->hwpt_types, &caps->n_hwpt_types, NESTD_HWPT_DATA_ARM_SMMUV3);
			continue;
		}

		caps_add(caps->hwpt_types, &caps->n_hwpt_types,
			 vtd ? IOMMU_HWPT_DATA_VTD_S1 : IOMMU_HWPT_DATA_SELFTEST);
		caps_add(caps->inv_types, &caps->n_inv_types,
			 vtd ? IOMMU_HWPT_INVALIDATE_DATA_VTD_S1
			     : IOMMU_HWPT_INVALIDATE_DATA_SELFTEST);
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

/* Object id changed: its journal record is due (and so is a save). */
static void obj_changed(struct sim_backend *sb, uint32_t id)
{
	dirty_ids_add(&sb->dirty_objs, id);
	sb->gen++;
}

static void dev_changed(struct sim_backend *sb, const char *device)
{
	int i = sim_dev_find(&sb->st, device);

	if (i >= 0)
		sb->dirty_devs |= UINT64_C(1) << i;
	sb->gen++;
}

static int sim_op_alloc_nested(struct backend *be, const char *device,
			       const struct backend_alloc *req, uint32_t *out_hwpt_id,
			       uint32_t *out_parent_id)
{
	int rc = sim_alloc_nested(to_st(be), device, req, out_hwpt_id, out_parent_id);

	if (!rc)
		obj_changed(to_sb(be), *out_hwpt_id);
	return rc;
}

static int sim_op_destroy(struct backend *be, uint32_t hwpt_id)
{
	int rc = sim_destroy(to_st(be), hwpt_id);

	if (!rc)
		obj_changed(to_sb(be), hwpt_id);
	return rc;
}

/* Users counts are not saved (the loader recomputes them): only the device. */
static int sim_op_attach(struct backend *be, const char *device, uint32_t hwpt_id)
{
	int rc = sim_attach(to_st(be), device, hwpt_id);

	if (!rc)
		dev_changed(to_sb(be), device);
	return rc;
}

static int sim_op_detach(struct backend *be, const char *device)
{
	int rc = sim_detach(to_st(be), device);

	if (!rc)
		dev_changed(to_sb(be), device);
	return rc;
}

/*
 * What an invalidation can change of the saved state: the HWPT's caches
 * and mock slots, and the fault's remaining fires. Compared before and
 * after, so that the common case, an invalidation of pages nothing
 * cached, changes nothing and costs no write at all.
 */
struct inv_print {
	/* Scalars only, no padding: compared with memcmp. */
	uint64_t iotlb_pages, psc_pages, f_addr;
	uint32_t n_iotlb, n_psc;
	uint32_t slots[MOCK_NESTED_DOMAIN_IOTLB_NUM];
	uint32_t f_hwpt, f_mode, f_index, f_hw_error, f_latency, f_count, fires_left;
	int32_t f_error;
};

static void inv_print_of(struct sim_state *st, uint32_t id, struct inv_print *p)
{
	const struct sim_obj *o = sim_obj_find(st, id);
	const struct backend_fault *f = &st->fault;

	memset(p, 0, sizeof(*p));
	if (o) {
		p->n_iotlb = o->iotlb_set.n;
		p->n_psc = o->psc_set.n;
		p->iotlb_pages = sim_iset_total(&o->iotlb_set);
		p->psc_pages = sim_iset_total(&o->psc_set);
		memcpy(p->slots, o->iotlb, sizeof(p->slots));
	}
	p->f_addr = f->addr;
	p->f_hwpt = f->hwpt_id;
	p->f_mode = f->mode;
	p->f_index = f->index;
	p->f_hw_error = f->hw_error;
	p->f_latency = f->latency_us;
	p->f_count = f->count;
	p->f_error = f->error;
	p->fires_left = st->fault_fires_left;
}

static int sim_op_invalidate(struct backend *be, struct backend_inv *inv)
{
	struct sim_backend *sb = to_sb(be);
	const struct sim_obj *o = sim_obj_find(&sb->st, inv->hwpt_id);
	bool viommu = o && o->type == SIM_OBJ_VIOMMU;
	struct inv_print before, after;
	int rc;

	/*
	 * A nested HWPT's walk says itself whether it changed anything (the
	 * hot path: no fingerprints); the vIOMMU paths are compared.
	 */
	if (o && o->type == SIM_OBJ_NESTED) {
		sb->st.inv_changed = false;
		rc = sim_invalidate(&sb->st, inv);
		if (sb->st.inv_changed)
			obj_changed(sb, inv->hwpt_id);
		return rc;
	}
	inv_print_of(&sb->st, inv->hwpt_id, &before);
	/* Even a failing submission applied the entries before the failure. */
	rc = sim_invalidate(&sb->st, inv);
	inv_print_of(&sb->st, inv->hwpt_id, &after);
	/*
	 * A vIOMMU's commands change its SMMUv3 model or its devices' mock
	 * caches, which the print does not cover: saved whenever entries went.
	 */
	if (viommu && inv->entry_num) {
		obj_changed(sb, inv->hwpt_id);
		sb->dirty_devs |=
		    sb->st.n_devs >= 64 ? UINT64_MAX : (UINT64_C(1) << sb->st.n_devs) - 1;
	} else if (memcmp(&before, &after, sizeof(before)))
		obj_changed(sb, inv->hwpt_id);
	return rc;
}

static int sim_op_map_memory(struct backend *be, const char *device, uint64_t iova, uint64_t length,
			     int fd, uint64_t offset, uint32_t flags)
{
	/*
	 * The model keeps ranges, not memory: the descriptor was checked by
	 * the daemon (type, size, access) and is not needed here.
	 */
	int rc = sim_map_memory(to_st(be), device, iova, length, flags | IOMMU_IOAS_MAP_FIXED_IOVA);

	(void)fd;
	(void)offset;
	if (!rc)
		dev_changed(to_sb(be), device);
	return rc;
}

static int sim_op_unmap_memory(struct backend *be, const char *device, uint64_t iova,
			       uint64_t length)
{
	/* A failing unmap may have removed areas before the one that stopped it. */
	dev_changed(to_sb(be), device);
	int rc = sim_unmap_memory(to_st(be), device, iova, length);

	/* The unmapped pages' PTEs and their dirty bits are gone, from every parent on the IOAS. */
	for (uint32_t i = 0; !rc && to_st(be)->is_ctx && i < to_st(be)->n_devs; i++)
		sim_dirty_forget(to_st(be), to_st(be)->devs[i].name, iova, length);
	if (!rc && !to_st(be)->is_ctx)
		sim_dirty_forget(to_st(be), device, iova, length);
	return rc;
}

static int sim_op_set_dirty_tracking(struct backend *be, const char *device, bool enable)
{
	return sim_set_dirty_tracking(to_st(be), device, enable);
}

static int sim_op_get_dirty_bitmap(struct backend *be, const char *device,
				   const struct backend_dirty *bm)
{
	return sim_get_dirty_bitmap(to_st(be), device, bm);
}

static int sim_op_set_dirty(struct backend *be, const char *device, const struct backend_dirty *bm)
{
	return sim_set_dirty(to_st(be), device, bm);
}

static int sim_op_hw_info(struct backend *be, const char *device, struct backend_hw_info *out)
{
	return sim_hw_info(to_st(be), device, out);
}

static int sim_op_check_iotlb(struct backend *be, uint32_t hwpt_id, uint32_t iotlb_id,
			      uint32_t expected)
{
	return sim_check_iotlb(to_st(be), hwpt_id, iotlb_id, expected);
}

static int sim_op_smmu_populate(struct backend *be, uint32_t hwpt_id, uint32_t asid, uint64_t addr,
				uint64_t npages, uint32_t kind)
{
	/* The model is not saved: a restart finds the caches cold. */
	return sim_vsmmu_populate(to_st(be), hwpt_id, asid, addr, npages, kind);
}

static int sim_op_smmu_query(struct backend *be, uint32_t hwpt_id, uint32_t asid, uint64_t addr,
			     uint64_t npages, uint64_t *iotlb_pages, uint64_t *psc_pages)
{
	return sim_vsmmu_query(to_st(be), hwpt_id, asid, addr, npages, iotlb_pages, psc_pages);
}

static int sim_op_populate(struct backend *be, uint32_t hwpt_id, uint64_t addr, uint64_t npages,
			   uint32_t kind)
{
	int rc = sim_populate(to_st(be), hwpt_id, addr, npages, kind);

	if (!rc)
		obj_changed(to_sb(be), hwpt_id);
	return rc;
}

static int sim_op_query(struct backend *be, uint32_t hwpt_id, uint64_t addr, uint64_t npages,
			uint64_t *iotlb_pages, uint64_t *psc_pages)
{
	return sim_query(to_st(be), hwpt_id, addr, npages, iotlb_pages, psc_pages);
}

static int sim_op_inject_fault(struct backend *be, const struct backend_fault *f)
{
	int rc = sim_inject_fault(to_st(be), f);

	to_sb(be)->gen += !rc;
	return rc;
}

/* ---- restart support ------------------------------------------------- */

static void mark_clean(struct sim_backend *sb)
{
	dirty_ids_clear(&sb->dirty_objs);
	sb->dirty_devs = 0;
}

static int sim_save(struct backend *be, struct json_object *obj)
{
	char hex[2 * SIM_ANCHOR_LEN + 1];

	js_hex(hex, to_sb(be)->anchor, SIM_ANCHOR_LEN);
	if (js_add_str(obj, "anchor", hex))
		return -ENOMEM;
	mark_clean(to_sb(be));
	return sim_state_save(to_st(be), obj);
}

/* The fault and next_id are a few bytes: written with every delta. */
static int sim_save_delta(struct backend *be, struct json_object *records)
{
	struct sim_backend *sb = to_sb(be);
	int rc;

	/*
	 * A context's IOAS is not a device record, and fault queues have no
	 * records: their changes take a full save.
	 */
	if (sb->dirty_objs.lost || sb->st.is_ctx || sb->st.n_faults)
		return -ENOMEM;
	dirty_ids_unique(&sb->dirty_objs);
	rc = sim_state_save_delta(&sb->st, sb->dirty_objs.id, sb->dirty_objs.n, sb->dirty_devs,
				  records);
	if (!rc)
		mark_clean(sb);
	return rc;
}

/* Reads an inherited anchor's id; -EINVAL if it is not one of ours. */
static int anchor_read(int fd, uint8_t *id)
{
	char buf[2 * SIM_ANCHOR_LEN + 1];
	ssize_t n = pread(fd, buf, sizeof(buf), 0);

	if (n != 2 * SIM_ANCHOR_LEN)
		return -EINVAL;
	buf[n] = '\0';
	return js_unhex(buf, id, SIM_ANCHOR_LEN);
}

/*
 * With an anchor from the fd store, the state file must be the one its
 * instance wrote: another id means the file is stale (left by an instance
 * whose fd store entry is gone), and restoring it would resurrect objects
 * that no longer exist anywhere else.
 */
static int anchor_check(struct sim_backend *sb, struct json_object *obj, int fd,
			const char **errmsg)
{
	uint8_t saved[SIM_ANCHOR_LEN], got[SIM_ANCHOR_LEN];
	char hex[2 * SIM_ANCHOR_LEN + 1];

	if (js_str(obj, "anchor", hex, sizeof(hex)) || js_unhex(hex, saved, SIM_ANCHOR_LEN)) {
		*errmsg = "sim: malformed anchor";
		return -EINVAL;
	}
	if (fd < 0) {
		/* iommufd's rule: no stored fd, no objects (backend/iommufd/iommufd.c, ifd_reopen).
		 */
		*errmsg = "sim: the anchor is not in the fd store (objects are gone)";
		return -ENOENT;
	}
	if (anchor_read(fd, got) || memcmp(saved, got, SIM_ANCHOR_LEN)) {
		*errmsg = "sim: the stored anchor does not match the state file";
		return -ESTALE;
	}
	return 0;
}

static int sim_restore(struct backend *be, struct json_object *obj, backend_take_fd_fn take_fd,
		       void *ctx, const char **errmsg)
{
	struct sim_backend *sb = to_sb(be);
	int fd = take_fd ? take_fd(ctx, SIM_FD_NAME) : -1;
	struct sim_state fresh;
	int rc;

	rc = anchor_check(sb, obj, fd, errmsg);
	if (!rc)
		rc = sim_state_load(&fresh, sb->cfg, obj, errmsg);
	if (rc) {
		if (fd >= 0)
			close(fd);
		return rc;
	}
	sim_state_free(&sb->st);
	sb->st = fresh;
	/* Configuration, not state: the file does not carry it. */
	sb->st.rules = sb->cfg->sim_kernel;
	if (fd >= 0) {
		/* Adopt it: it is already in the store, nothing to add. */
		close(sb->anchor_fd);
		sb->anchor_fd = fd;
		anchor_read(fd, sb->anchor);
	}
	sb->gen++;
	return 0;
}

/* Restoring the sim is a fresh model whose state is then the saved one. */
static int sim_reopen(const struct config *cfg, struct json_object *saved,
		      backend_take_fd_fn take_fd, void *ctx, struct backend **out,
		      const char **errmsg)
{
	int rc;

	if (!saved) {
		*errmsg = "no backend state saved";
		return -ENOENT;
	}
	*errmsg = ""; /* what the caller logs if restoring fails without a reason */
	rc = backend_sim_open(cfg, out, errmsg);
	if (rc)
		return rc;
	rc = sim_restore(*out, saved, take_fd, ctx, errmsg);
	if (rc) {
		sim_close(*out);
		*out = NULL;
	}
	return rc;
}

static uint32_t sim_stored_fds(struct backend *be, struct backend_fd *out, uint32_t max)
{
	if (!max || to_sb(be)->anchor_fd < 0)
		return 0;
	snprintf(out[0].name, sizeof(out[0].name), "%s", SIM_FD_NAME);
	out[0].fd = to_sb(be)->anchor_fd;
	out[0].gen = 0;
	return 1;
}

static uint64_t sim_generation(struct backend *be)
{
	return to_sb(be)->gen;
}

/* A device's PASID table is saved state (persist.c): a change is the device's. */
static int sim_op_attach_pasid(struct backend *be, const char *device, uint32_t pasid,
			       uint32_t hwpt_id)
{
	int rc = sim_pasid_op_attach(to_st(be), device, pasid, hwpt_id);

	if (!rc)
		dev_changed(to_sb(be), device);
	return rc;
}

static int sim_op_detach_pasid(struct backend *be, const char *device, uint32_t pasid)
{
	int rc = sim_pasid_op_detach(to_st(be), device, pasid);

	if (!rc)
		dev_changed(to_sb(be), device);
	return rc;
}

/* The saved table came back with the state: the mock's PASID_CHECK_HWPT on it. */
static int sim_op_pasid_restore(struct backend *be, const char *device, uint32_t pasid,
				uint32_t hwpt_id)
{
	return hwpt_id ? sim_pasid_check(to_st(be), device, pasid, hwpt_id) : -EINVAL;
}

static int sim_op_viommu_alloc(struct backend *be, const char *device, uint32_t type,
			       uint32_t flags, uint32_t *out_id, uint32_t *out_parent)
{
	int rc = sim_viommu_alloc(to_st(be), device, type, flags, out_id, out_parent);

	if (!rc)
		obj_changed(to_sb(be), *out_id);
	return rc;
}

static int sim_op_vdevice_alloc(struct backend *be, uint32_t viommu_id, const char *device,
				uint64_t virt_id, uint32_t *out_id)
{
	int rc = sim_vdevice_alloc(to_st(be), viommu_id, device, virt_id, out_id);

	if (!rc)
		obj_changed(to_sb(be), *out_id);
	return rc;
}

static bool sim_has_vobj(struct backend *be, uint32_t id, bool viommu)
{
	struct sim_obj *o = sim_obj_find(to_st(be), id);

	return o && o->type == (viommu ? SIM_OBJ_VIOMMU : SIM_OBJ_VDEVICE);
}

static bool sim_has_hwpt(struct backend *be, uint32_t hwpt_id)
{
	struct sim_obj *o = sim_obj_find(to_st(be), hwpt_id);

	return o && o->type == SIM_OBJ_NESTED;
}

/*
 * Fault objects (backend/sim/fault.c): their queues are saved state
 * (fault_save.c), so every call that changes them is a change to save.
 */
static int sim_op_fault_alloc(struct backend *be, struct backend_fault_queue *out)
{
	int rc = sim_fault_alloc(to_st(be), out);

	to_sb(be)->gen += !rc;
	return rc;
}

static int sim_op_fault_read(struct backend *be, const struct backend_fault_queue *q,
			     struct iommu_hwpt_pgfault *recs, uint32_t max)
{
	int rc = sim_fault_read(to_st(be), q, recs, max);

	to_sb(be)->gen += rc > 0;
	return rc;
}

static int sim_op_fault_respond(struct backend *be, const struct backend_fault_queue *q,
				const struct iommu_hwpt_page_response *resp)
{
	int rc = sim_fault_respond(to_st(be), q, resp);

	to_sb(be)->gen += !rc;
	return rc;
}

/* The saved queues came back with the state (fault_save.c), each with an eventfd of its own. */
static int sim_op_fault_reopen(struct backend *be, uint32_t id, int fd,
			       struct backend_fault_queue *out)
{
	int efd = sim_fault_fd(to_st(be), id);

	if (efd < 0)
		return efd;
	if (fd >= 0)
		close(fd); /* a previous instance's eventfd: the model keeps its own */
	out->id = id;
	out->fd = efd;
	return 0;
}

static int sim_op_fault_free(struct backend *be, const struct backend_fault_queue *q)
{
	to_sb(be)->gen++;
	return sim_fault_free(to_st(be), q);
}

static const char *sim_dev_id_name(struct backend *be, uint32_t dev_id)
{
	struct sim_state *st = to_st(be);
	uint32_t i = dev_id - SIM_DEV_ID_BASE;

	return dev_id >= SIM_DEV_ID_BASE && i < st->n_devs ? st->devs[i].name : NULL;
}

static int sim_op_trigger_iopf(struct backend *be, const char *device, const struct backend_iopf *t)
{
	to_sb(be)->gen++;
	return sim_trigger_iopf(to_st(be), device, t);
}

/*
 * vEVENTQs (backend/sim/veventq.c): their queues are saved state
 * (veventq_save.c), so every call that changes one is a change to save.
 */
static int sim_op_veventq_alloc(struct backend *be, uint32_t viommu_id, uint32_t type,
				uint32_t depth, struct backend_veventq *out)
{
	int rc = sim_veventq_alloc(to_st(be), viommu_id, type, depth, &out->id, &out->fd);

	if (!rc)
		obj_changed(to_sb(be), out->id);
	to_sb(be)->gen += !rc;
	return rc;
}

static int sim_op_veventq_read(struct backend *be, const struct backend_veventq *q, void *buf,
			       uint32_t len)
{
	int rc = sim_veventq_read(to_st(be), q->id, buf, len);

	to_sb(be)->gen += rc > 0;
	return rc;
}

/* The saved queue came back with the state (veventq_save.c), with an eventfd of its own. */
static int sim_op_veventq_reopen(struct backend *be, uint32_t id, int fd,
				 struct backend_veventq *out)
{
	int efd = sim_veventq_fd(to_st(be), id);

	if (efd < 0)
		return efd;
	if (fd >= 0)
		close(fd); /* a previous instance's eventfd: the model keeps its own */
	out->id = id;
	out->fd = efd;
	return 0;
}

/* As the iommufd backend: the fd first (its reference), then IOMMU_DESTROY. */
static int sim_op_veventq_free(struct backend *be, const struct backend_veventq *q)
{
	sim_veventq_close(to_st(be), q->id);
	return sim_op_destroy(be, q->id);
}

static int sim_op_trigger_vevent(struct backend *be, const char *device)
{
	int rc = sim_trigger_vevent(to_st(be), device);

	to_sb(be)->gen += !rc;
	return rc;
}

/* --- VM contexts ------------------------------------------------------ */

/*
 * Like the kernel's: a VFIO cdev binds to one iommufd at a time
 * (vfio_df_open: a second bind of the cdev path is -EINVAL), so the root
 * unbinds a VTD device a context takes (off its page table; its nest
 * parent stays) and binds it again when the context lets it go. Mock
 * devices are objects of one iommufd: every context makes its own.
 */
static int root_lend(struct sim_backend *sb, uint32_t i)
{
	struct sim_state *rs = &sb->root->st;
	struct sim_dev *rd = &rs->devs[i];
	struct sim_obj *o;

	if (rd->kind != DEVICE_KIND_VTD)
		return 0;
	if (!rd->present)
		return -EINVAL; /* bound to another iommufd */
	o = sim_obj_find(rs, rd->attached_id);
	if (o)
		o->users--;
	rd->attached_id = 0;
	rd->present = false;
	sb->st.devs[i].borrowed = true;
	sb->root->dirty_devs |= UINT64_C(1) << i;
	sb->root->gen++;
	return 0;
}

/* The root binds device i again, back on its own nest parent. */
static void root_take_back(struct sim_backend *root, uint32_t i)
{
	struct sim_state *rs = &root->st;
	struct sim_dev *rd = &rs->devs[i];
	struct sim_obj *o;

	if (rd->present || rd->kind != DEVICE_KIND_VTD)
		return;
	o = sim_obj_find(rs, rd->parent_id);
	if (o)
		o->users++;
	rd->attached_id = rd->parent_id;
	rd->present = true;
	root->dirty_devs |= UINT64_C(1) << i;
	root->gen++;
}

static void ctx_give_back(struct sim_backend *sb, uint32_t i)
{
	struct sim_dev *d = &sb->st.devs[i];

	if (!d->borrowed)
		return;
	d->borrowed = false;
	root_take_back(sb->root, i);
}

static int sim_take_back_device(struct backend *be, const char *device)
{
	struct sim_backend *root = to_sb(be);
	int i = sim_dev_find_any(&root->st, device);

	if (root->root)
		return -EINVAL; /* a context lends nothing */
	if (i < 0)
		return i;
	root_take_back(root, (uint32_t)i);
	return 0;
}

static int sim_open_context(struct backend *be, struct backend **out)
{
	struct sim_backend *root = to_sb(be), *sb;

	if (root->root)
		return -EINVAL; /* contexts do not nest */
	sb = calloc(1, sizeof(*sb));
	if (!sb)
		return -ENOMEM;
	sb->be.ops = &backend_sim_ops;
	sb->cfg = root->cfg;
	sb->root = root;
	/* Its own anchor, as a context has its own iommufd to keep in the fd store. */
	sb->anchor_fd = anchor_new(sb->anchor);
	sim_state_init_ctx(&sb->st, &root->st);
	*out = &sb->be;
	return 0;
}

static int sim_add_device(struct backend *be, const char *device)
{
	struct sim_backend *sb = to_sb(be);
	int i = sim_dev_find_any(&sb->st, device);
	int rc;

	if (!sb->root)
		return -EINVAL; /* the root holds every device from its open */
	if (i < 0)
		return i;
	if (sb->st.devs[i].present)
		return -EEXIST;
	rc = root_lend(sb, (uint32_t)i);
	if (rc)
		return rc;
	rc = sim_dev_plug(&sb->st, (uint32_t)i);
	if (rc)
		ctx_give_back(sb, (uint32_t)i);
	return rc;
}

static int sim_remove_device(struct backend *be, const char *device)
{
	struct sim_backend *sb = to_sb(be);
	int i = sim_dev_find(&sb->st, device);
	int rc;

	if (!sb->root)
		return -EINVAL;
	if (i < 0)
		return -ENOENT;
	rc = sim_dev_unplug(&sb->st, (uint32_t)i);
	if (rc == 0)
		ctx_give_back(sb, (uint32_t)i);
	return rc;
}

static int sim_reopen_context(struct backend *be, struct json_object *saved,
			      backend_take_fd_fn take_fd, void *ctx, struct backend **out,
			      const char **errmsg)
{
	int rc;

	*errmsg = "";
	if (!saved || !json_object_object_get_ex(saved, "ctx_ioas", NULL)) {
		*errmsg = "sim: not a saved VM context";
		return -EINVAL;
	}
	rc = sim_open_context(be, out);
	if (rc)
		return rc;
	rc = sim_restore(*out, saved, take_fd, ctx, errmsg);
	if (rc) {
		sim_abandon(*out);
		*out = NULL;
	}
	return rc;
}

const struct backend_ops backend_sim_ops = {
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
    .map_memory = sim_op_map_memory,
    .unmap_memory = sim_op_unmap_memory,
    .hw_info = sim_op_hw_info,
    .set_dirty_tracking = sim_op_set_dirty_tracking,
    .get_dirty_bitmap = sim_op_get_dirty_bitmap,
    .set_dirty = sim_op_set_dirty,
    .check_iotlb = sim_op_check_iotlb,
    .sim_populate = sim_op_populate,
    .sim_query = sim_op_query,
    .sim_smmu_populate = sim_op_smmu_populate,
    .sim_smmu_query = sim_op_smmu_query,
    .inject_fault = sim_op_inject_fault,
    .save = sim_save,
    .restore = sim_restore,
    .reopen = sim_reopen,
    .stored_fds = sim_stored_fds,
    .generation = sim_generation,
    .save_delta = sim_save_delta,
    .has_hwpt = sim_has_hwpt,
    .fault_alloc = sim_op_fault_alloc,
    .fault_read = sim_op_fault_read,
    .fault_respond = sim_op_fault_respond,
    .fault_free = sim_op_fault_free,
    .fault_reopen = sim_op_fault_reopen,
    .dev_id_name = sim_dev_id_name,
    .trigger_iopf = sim_op_trigger_iopf,
    .abandon = sim_abandon,
    .open_context = sim_open_context,
    .add_device = sim_add_device,
    .remove_device = sim_remove_device,
    .reopen_context = sim_reopen_context,
    .take_back_device = sim_take_back_device,
    .viommu_alloc = sim_op_viommu_alloc,
    .vdevice_alloc = sim_op_vdevice_alloc,
    .destroy_object = sim_op_destroy,
    .veventq_alloc = sim_op_veventq_alloc,
    .veventq_read = sim_op_veventq_read,
    .veventq_free = sim_op_veventq_free,
    .veventq_reopen = sim_op_veventq_reopen,
    .trigger_vevent = sim_op_trigger_vevent,
    .attach_pasid = sim_op_attach_pasid,
    .detach_pasid = sim_op_detach_pasid,
    .pasid_restore = sim_op_pasid_restore,
    .has_vobj = sim_has_vobj,
};

/* A memfd with a fresh random id; -1 if memfd or getrandom fail (no anchor). */
static int anchor_new(uint8_t *id)
{
	char hex[2 * SIM_ANCHOR_LEN + 1];
	int fd;

	if (getrandom(id, SIM_ANCHOR_LEN, 0) != SIM_ANCHOR_LEN)
		return -1;
	fd = memfd_create("iommu-nestd-sim-anchor", MFD_CLOEXEC);
	if (fd < 0)
		return -1;
	js_hex(hex, id, SIM_ANCHOR_LEN);
	if (write(fd, hex, 2 * SIM_ANCHOR_LEN) != 2 * SIM_ANCHOR_LEN) {
		close(fd);
		return -1;
	}
	return fd;
}

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
	sb->be.ops = &backend_sim_ops;
	rc = sim_state_init(&sb->st, cfg, errmsg);
	if (rc) {
		free(sb);
		return rc;
	}
	sb->cfg = cfg;
	sb->anchor_fd = anchor_new(sb->anchor);
	*out = &sb->be;
	return 0;
}
