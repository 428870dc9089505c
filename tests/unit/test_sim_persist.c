/* SPDX-License-Identifier: MIT */
/*
 * The sim backend's save/restore (backend/sim/persist.c): a round trip keeps the
 * whole model, and a state that lies (broken references, unordered
 * interval sets, other devices) is refused with the backend unchanged.
 * vEVENTQ queues and PASID tables (7.x) come back as the kernel keeps them.
 */
#include <endian.h>
#include <errno.h>
#include <json-c/json.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "backend/backend.h"
#include "backend/pasid_uapi.h"
#include "backend/veventq_uapi.h"
#include "backend/viommu_uapi.h"
#include "util/config.h"
#include "backend/iommufd_uapi.h"
#include "unit_run.h"

#define PAGE 4096ULL

static struct config cfg;

static void cfg_setup(void)
{
	config_defaults(&cfg);
	cfg.n_devices = 2;
	strcpy(cfg.devices[0].name, "vtd0");
	cfg.devices[0].kind = DEVICE_KIND_VTD;
	strcpy(cfg.devices[1].name, "st0");
	cfg.devices[1].kind = DEVICE_KIND_SELFTEST;
}

static struct backend *open_sim(void)
{
	struct backend *be = NULL;
	const char *err;

	CU_ASSERT_FATAL(backend_sim_open(&cfg, &be, &err) == 0);
	return be;
}

/* A backend with one VT-d HWPT attached, cached pages, one mock HWPT. */
static struct backend *populated(uint32_t *vtd, uint32_t *st)
{
	struct backend *be = open_sim();
	struct iommu_hwpt_vtd_s1 v = {.addr_width = 48, .pgtbl_addr = 0x1000};
	struct iommu_hwpt_selftest s = {.iotlb = 0x77};
	struct backend_alloc a = {
	    .data_type = IOMMU_HWPT_DATA_VTD_S1, .data = &v, .data_len = sizeof(v)};
	struct iommu_hwpt_vtd_s1_invalidate e = {.addr = 16 * PAGE, .npages = 8};
	struct backend_inv inv = {.data_type = IOMMU_HWPT_INVALIDATE_DATA_VTD_S1,
				  .entry_len = sizeof(e),
				  .entry_num = 1,
				  .entries = &e};

	CU_ASSERT_FATAL(be->ops->alloc_nested(be, "vtd0", &a, vtd, NULL) == 0);
	CU_ASSERT_FATAL(be->ops->attach(be, "vtd0", *vtd) == 0);
	CU_ASSERT_FATAL(be->ops->sim_populate(be, *vtd, 0, 64, SIM_KIND_IOTLB) == 0);
	CU_ASSERT_FATAL(be->ops->sim_populate(be, *vtd, 0, 64, SIM_KIND_PSC) == 0);
	inv.hwpt_id = *vtd;
	CU_ASSERT_FATAL(be->ops->invalidate(be, &inv) == 0);
	a = (struct backend_alloc){
	    .data_type = IOMMU_HWPT_DATA_SELFTEST, .data = &s, .data_len = sizeof(s)};
	CU_ASSERT_FATAL(be->ops->alloc_nested(be, "st0", &a, st, NULL) == 0);
	return be;
}

static struct json_object *saved(struct backend *be)
{
	struct json_object *o = json_object_new_object();

	CU_ASSERT_FATAL(be->ops->save(be, o) == 0);
	return o;
}

/* backend_take_fd_fn: hands out ctx's descriptor once, as the fd store would. */
static int take_once(void *ctx, const char *name)
{
	int *fd = ctx, got = *fd;

	CU_ASSERT_STRING_EQUAL(name, "sim");
	*fd = -1;
	return got;
}

/*
 * Restores o into b with a's anchor, as a restart gets it back from the fd
 * store (a copy: restore adopts or closes what it takes).
 */
static int restore_anchored(struct backend *b, struct backend *a, struct json_object *o,
			    const char **err)
{
	struct backend_fd f;
	int fd, rc;

	CU_ASSERT_FATAL(a->ops->stored_fds(a, &f, 1) == 1);
	fd = dup(f.fd);
	CU_ASSERT_FATAL(fd >= 0);
	rc = b->ops->restore(b, o, take_once, &fd, err);
	CU_ASSERT_EQUAL(fd, -1); /* it asked for the anchor */
	return rc;
}

static void test_round_trip(void)
{
	uint32_t vtd, st;
	struct backend *a = populated(&vtd, &st), *b = open_sim();
	struct json_object *o = saved(a);
	uint64_t io = 0, psc = 0;
	const char *err = "";

	CU_ASSERT_EQUAL(restore_anchored(b, a, o, &err), 0);
	CU_ASSERT_TRUE(b->ops->has_hwpt(b, vtd));
	CU_ASSERT_TRUE(b->ops->has_hwpt(b, st));
	CU_ASSERT_EQUAL(b->ops->sim_query(b, vtd, 0, 64, &io, &psc), 0);
	CU_ASSERT_EQUAL(io, 56);
	CU_ASSERT_EQUAL(psc, 56);
	CU_ASSERT_EQUAL(b->ops->check_iotlb(b, st, 2, 0x77), 0);
	/* Reference counts were rebuilt: attached and parented objects are busy. */
	CU_ASSERT_EQUAL(b->ops->destroy(b, vtd), -EBUSY);
	CU_ASSERT_EQUAL(b->ops->detach(b, "vtd0"), 0);
	CU_ASSERT_EQUAL(b->ops->destroy(b, vtd), 0);
	CU_ASSERT_EQUAL(b->ops->destroy(b, 1), -EBUSY); /* vtd0's nest parent */
	json_object_put(o);
	a->ops->close(a);
	b->ops->close(b);
}

/* The mock vIOMMU's walk on v: done, an unknown vdev_id (-EINVAL, it stops), not attempted. */
static int viommu_inv(struct backend *be, uint32_t v, uint32_t *handled)
{
	struct nestd_viommu_inv_selftest e[3] = {{0, 0x10, 1}, {0, 0x99, 0}, {0, 0x10, 2}};
	struct backend_inv inv = {.hwpt_id = v,
				  .data_type = NESTD_VIOMMU_INV_DATA_SELFTEST,
				  .entry_len = sizeof(e[0]),
				  .entry_num = 3,
				  .entries = e};
	int rc = be->ops->invalidate(be, &inv);

	*handled = inv.entry_num;
	return rc;
}

/*
 * vIOMMUs, vDEVICEs and the nested HWPTs on a vIOMMU survive a restart as
 * the kernel's do in a kept iommufd: the same objects, the same users
 * (destroy is -EBUSY in the kernel's order), the device's one vDEVICE
 * (-EEXIST for another), an attachment through the vDEVICE, and the
 * invalidation answers as before.
 */
static void test_viommu_saved(void)
{
	uint32_t vtd, st, v, vd, x, nested, h1, h2;
	struct iommu_hwpt_selftest s = {.iotlb = 0x99};
	struct backend_alloc a = {
	    .data_type = IOMMU_HWPT_DATA_SELFTEST, .data = &s, .data_len = sizeof(s)};
	struct backend *ab, *b;
	struct json_object *o;
	const char *err = "";

	cfg.sim_kernel = KERNEL_RULES_7;
	ab = populated(&vtd, &st);
	b = open_sim();
	CU_ASSERT_FATAL(ab->ops->viommu_alloc(ab, "st0", NESTD_VIOMMU_TYPE_SELFTEST, 0, &v, NULL) ==
			0);
	/* The lowest free id goes next: the vDEVICE gets a smaller id than its vIOMMU. */
	CU_ASSERT_FATAL(ab->ops->destroy(ab, st) == 0);
	CU_ASSERT_FATAL(ab->ops->vdevice_alloc(ab, v, "st0", 0x10, &vd) == 0);
	CU_ASSERT_FATAL(vd < v);
	a.viommu_id = v;
	CU_ASSERT_FATAL(ab->ops->alloc_nested(ab, "st0", &a, &nested, NULL) == 0);
	CU_ASSERT_FATAL(ab->ops->attach(ab, "st0", nested) == 0);
	CU_ASSERT_EQUAL(viommu_inv(ab, v, &h1), -EINVAL);
	CU_ASSERT_EQUAL(h1, 1);
	o = saved(ab);
	CU_ASSERT_EQUAL(restore_anchored(b, ab, o, &err), 0);
	CU_ASSERT_TRUE(b->ops->has_vobj(b, v, true));
	CU_ASSERT_FALSE(b->ops->has_vobj(b, v, false));
	CU_ASSERT_TRUE(b->ops->has_vobj(b, vd, false));
	CU_ASSERT_FALSE(b->ops->has_vobj(b, nested, true));
	CU_ASSERT_TRUE(b->ops->has_hwpt(b, nested));
	CU_ASSERT_EQUAL(b->ops->check_iotlb(b, nested, 0, 0x99), 0);
	CU_ASSERT_EQUAL(viommu_inv(b, v, &h2), -EINVAL);
	CU_ASSERT_EQUAL(h2, h1);
	CU_ASSERT_EQUAL(b->ops->vdevice_alloc(b, v, "st0", 0x11, &x), -EEXIST);
	CU_ASSERT_EQUAL(b->ops->destroy_object(b, v), -EBUSY);
	CU_ASSERT_EQUAL(b->ops->destroy(b, nested), -EBUSY); /* attached */
	CU_ASSERT_EQUAL(b->ops->detach(b, "st0"), 0);
	CU_ASSERT_EQUAL(b->ops->destroy(b, nested), 0);
	CU_ASSERT_EQUAL(b->ops->destroy_object(b, v), -EBUSY); /* the vDEVICE */
	CU_ASSERT_EQUAL(b->ops->destroy_object(b, vd), 0);
	CU_ASSERT_EQUAL(b->ops->destroy_object(b, v), 0);
	json_object_put(o);
	ab->ops->close(ab);
	b->ops->close(b);
	cfg.sim_kernel = KERNEL_RULES_6_12;
}

/*
 * An SMMUv3 vIOMMU's model (the host SMMU's TLB for its VMID) survives:
 * what the guest had cached before the crash is still cached after it,
 * so its commands still have something to invalidate.
 */
static void test_vsmmu_saved(void)
{
	struct config keep = cfg;
	struct nestd_hwpt_arm_smmuv3 ste = {{htole64(1 | 5u << 1), 0}};
	struct backend_alloc a = {
	    .data_type = NESTD_HWPT_DATA_ARM_SMMUV3, .data = &ste, .data_len = sizeof(ste)};
	uint32_t v, vd, nested;
	uint64_t io = 0, psc = 0;
	struct backend *ab, *b;
	struct json_object *o;
	const char *err = "";

	cfg.n_devices = 1;
	strcpy(cfg.devices[0].name, "sm0");
	cfg.devices[0].kind = DEVICE_KIND_SMMUV3;
	cfg.sim_kernel = KERNEL_RULES_7;
	ab = open_sim();
	b = open_sim();
	CU_ASSERT_FATAL(
	    ab->ops->viommu_alloc(ab, "sm0", NESTD_VIOMMU_TYPE_ARM_SMMUV3, 0, &v, NULL) == 0);
	CU_ASSERT_FATAL(ab->ops->vdevice_alloc(ab, v, "sm0", 0x20, &vd) == 0);
	a.viommu_id = v;
	CU_ASSERT_FATAL(ab->ops->alloc_nested(ab, "sm0", &a, &nested, NULL) == 0);
	CU_ASSERT_FATAL(ab->ops->attach(ab, "sm0", nested) == 0);
	CU_ASSERT_FATAL(
	    ab->ops->sim_smmu_populate(ab, nested, 5, 0x80000000ull, 16, SIM_KIND_IOTLB) == 0);
	o = saved(ab);
	CU_ASSERT_EQUAL(restore_anchored(b, ab, o, &err), 0);
	CU_ASSERT_EQUAL(b->ops->sim_smmu_query(b, nested, 5, 0x80000000ull, 16, &io, &psc), 0);
	CU_ASSERT_EQUAL(io, 16);
	CU_ASSERT_EQUAL(psc, 0);
	json_object_put(o);
	ab->ops->close(ab);
	b->ops->close(b);
	cfg = keep;
}

/* Applies a corruption to a saved state; restore must refuse it cleanly. */
static void refuse(void (*corrupt)(struct json_object *o))
{
	uint32_t vtd, st;
	struct backend *a = populated(&vtd, &st), *b = open_sim();
	struct json_object *o = saved(a);
	const char *err = "";

	corrupt(o);
	CU_ASSERT_NOT_EQUAL(restore_anchored(b, a, o, &err), 0);
	CU_ASSERT_FALSE(b->ops->has_hwpt(b, vtd));
	json_object_put(o);
	a->ops->close(a);
	b->ops->close(b);
}

/*
 * Without its anchor a state file describes objects that, on iommufd,
 * died with the fd store entry: the sim refuses it the same way.
 */
static void test_refuse_unanchored(void)
{
	uint32_t vtd, st;
	struct backend *a = populated(&vtd, &st), *b = open_sim(), *c = open_sim();
	struct json_object *o = saved(a);
	const char *err = "";

	CU_ASSERT_EQUAL(b->ops->restore(b, o, NULL, NULL, &err), -ENOENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "anchor"));
	CU_ASSERT_FALSE(b->ops->has_hwpt(b, vtd));
	/* Another instance's anchor is no better. */
	CU_ASSERT_EQUAL(restore_anchored(b, c, o, &err), -ESTALE);
	CU_ASSERT_FALSE(b->ops->has_hwpt(b, vtd));
	json_object_put(o);
	a->ops->close(a);
	b->ops->close(b);
	c->ops->close(c);
}

static struct json_object *object_at(struct json_object *o, size_t i)
{
	struct json_object *objs;

	json_object_object_get_ex(o, "objects", &objs);
	return json_object_array_get_idx(objs, i);
}

static void bad_parent(struct json_object *o)
{
	/* Objects: parent vtd0, parent st0, nested vtd, nested st. */
	json_object_object_add(object_at(o, 2), "parent_id", json_object_new_int64(2));
}

static void bad_iset(struct json_object *o)
{
	struct json_object *set = json_object_new_array();

	json_object_array_add(set, json_object_new_int64(10));
	json_object_array_add(set, json_object_new_int64(5));
	json_object_object_add(object_at(o, 2), "iotlb_set", set);
}

static void bad_device(struct json_object *o)
{
	struct json_object *devs, *d;

	json_object_object_get_ex(o, "devices", &devs);
	d = json_object_array_get_idx(devs, 0);
	json_object_object_add(d, "name", json_object_new_string("other"));
}

static void bad_attach(struct json_object *o)
{
	struct json_object *devs, *d;

	json_object_object_get_ex(o, "devices", &devs);
	d = json_object_array_get_idx(devs, 1);
	json_object_object_add(d, "attached_id", json_object_new_int64(3));
}

static void bad_type(struct json_object *o)
{
	json_object_object_add(o, "next_id", json_object_new_string("3"));
}

/*
 * A saved vIOMMU world that lies: each corruption of a state with a vIOMMU
 * (on st0) and its vDEVICE is refused, the backend left as it was.
 */
static void refuse_vobj(const char *key, struct json_object *val, uint32_t type)
{
	uint32_t vtd, st, v, vd;
	struct backend *a, *b;
	struct json_object *o, *objs;
	const char *err = "";
	size_t hit = 0;

	cfg.sim_kernel = KERNEL_RULES_7;
	a = populated(&vtd, &st);
	b = open_sim();
	CU_ASSERT_FATAL(a->ops->viommu_alloc(a, "st0", NESTD_VIOMMU_TYPE_SELFTEST, 0, &v, NULL) ==
			0);
	CU_ASSERT_FATAL(a->ops->vdevice_alloc(a, v, "st0", 0x10, &vd) == 0);
	o = saved(a);
	CU_ASSERT_FATAL(json_object_object_get_ex(o, "objects", &objs));
	for (size_t i = 0; i < json_object_array_length(objs); i++) {
		struct json_object *e = json_object_array_get_idx(objs, i), *t;

		if (json_object_object_get_ex(e, "type", &t) &&
		    (uint32_t)json_object_get_int64(t) == type) {
			json_object_object_add(e, key, json_object_get(val));
			hit++;
		}
	}
	CU_ASSERT_EQUAL(hit, 1);
	CU_ASSERT_NOT_EQUAL(restore_anchored(b, a, o, &err), 0);
	CU_ASSERT_FALSE(b->ops->has_hwpt(b, vtd));
	CU_ASSERT_FALSE(b->ops->has_vobj(b, v, true));
	json_object_put(val);
	json_object_put(o);
	a->ops->close(a);
	b->ops->close(b);
	cfg.sim_kernel = KERNEL_RULES_6_12;
}

/* Sim object types (backend/sim/state.h): a vIOMMU 4, a vDEVICE 5. */
static void test_refuse_vobjs(void)
{
	/* A vDEVICE on the nest parent (id 2: st0's), not on a vIOMMU. */
	refuse_vobj("parent_id", json_object_new_int64(2), 5);
	/* A vIOMMU on another device's nest parent. */
	refuse_vobj("parent_id", json_object_new_int64(1), 4);
	/* A vIOMMU without its type; an SMMUv3 model that is not one. */
	refuse_vobj("viommu_type", json_object_new_string("x"), 4);
	refuse_vobj("smmu", json_object_new_string("x"), 4);
	refuse_vobj("virt_id", json_object_new_double(1.5), 5);
}

/*
 * A 7.x world for the queue cases: populated(), a selftest vIOMMU v on st0
 * with its vDEVICE (virt_id 0x10) and a nested HWPT on v attached to st0,
 * so that TRIGGER_VEVENT reports on v; a vEVENTQ q of depth 2 on v.
 */
static struct backend *with_veventq(uint32_t *v, uint32_t *q)
{
	uint32_t vtd, st, vd, h;
	struct iommu_hwpt_selftest d = {.iotlb = 0x77};
	struct backend_alloc a = {
	    .data_type = IOMMU_HWPT_DATA_SELFTEST, .data = &d, .data_len = sizeof(d)};
	struct backend_veventq bq;
	struct backend *be;

	cfg.sim_kernel = KERNEL_RULES_7;
	be = populated(&vtd, &st);
	CU_ASSERT_FATAL(be->ops->viommu_alloc(be, "st0", NESTD_VIOMMU_TYPE_SELFTEST, 0, v, NULL) ==
			0);
	CU_ASSERT_FATAL(be->ops->vdevice_alloc(be, *v, "st0", 0x10, &vd) == 0);
	a.viommu_id = *v;
	CU_ASSERT_FATAL(be->ops->alloc_nested(be, "st0", &a, &h, NULL) == 0);
	CU_ASSERT_FATAL(be->ops->attach(be, "st0", h) == 0);
	CU_ASSERT_FATAL(be->ops->veventq_alloc(be, *v, NESTD_VEVENTQ_TYPE_SELFTEST, 2, &bq) == 0);
	*q = bq.id;
	return be;
}

/* The next record of q: its header, and the data's first word. */
static int read_one(struct backend *be, uint32_t q, struct nestd_vevent_header *h, uint32_t *w)
{
	struct backend_veventq bq = {.id = q};
	uint8_t buf[sizeof(*h) + 4];
	int n = be->ops->veventq_read(be, &bq, buf, sizeof(buf));

	if (n >= (int)sizeof(*h)) {
		memcpy(h, buf, sizeof(*h));
		*w = 0;
		if (n == (int)sizeof(buf))
			memcpy(w, buf + sizeof(*h), sizeof(*w));
	}
	return n;
}

/*
 * The kernel keeps a vEVENTQ's queue across the restart: after three
 * reports on depth 2 and one read, the restored one holds the second
 * record and the LOST_EVENTS header, goes on numbering, holds its vIOMMU,
 * and goes once its fd does.
 */
static void test_veventq_saved(void)
{
	uint32_t v, q, w;
	struct backend *a = with_veventq(&v, &q), *b = open_sim();
	struct nestd_vevent_header h;
	struct backend_veventq bq;
	struct json_object *o;
	const char *err = "";

	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(a->ops->trigger_vevent(a, "st0"), 0);
	CU_ASSERT_EQUAL(read_one(a, q, &h, &w), 12);
	CU_ASSERT_EQUAL(h.sequence, 0);
	o = saved(a);
	CU_ASSERT_EQUAL(restore_anchored(b, a, o, &err), 0);
	CU_ASSERT_EQUAL(b->ops->veventq_reopen(b, q + 1000, -1, &bq), -ENOENT);
	CU_ASSERT_EQUAL_FATAL(b->ops->veventq_reopen(b, q, -1, &bq), 0);
	CU_ASSERT_EQUAL(read_one(b, q, &h, &w), 12);
	CU_ASSERT_EQUAL(h.sequence, 1);
	CU_ASSERT_EQUAL(h.flags, 0);
	CU_ASSERT_EQUAL(le32toh(w), 0x10);
	CU_ASSERT_EQUAL(read_one(b, q, &h, &w), 8);
	CU_ASSERT_EQUAL(h.sequence, 2);
	CU_ASSERT_EQUAL(h.flags, NESTD_VEVENTQ_FLAG_LOST_EVENTS);
	CU_ASSERT_EQUAL(read_one(b, q, &h, &w), 0);
	CU_ASSERT_EQUAL(b->ops->trigger_vevent(b, "st0"), 0);
	CU_ASSERT_EQUAL(read_one(b, q, &h, &w), 12);
	CU_ASSERT_EQUAL(h.sequence, 3);
	/* It holds its vIOMMU; closing its fd lets it go, then the vIOMMU can. */
	CU_ASSERT_EQUAL(b->ops->destroy_object(b, v), -EBUSY);
	CU_ASSERT_EQUAL(b->ops->veventq_free(b, &bq), 0);
	json_object_put(o);
	a->ops->close(a);
	b->ops->close(b);
	cfg.sim_kernel = KERNEL_RULES_6_12;
}

/* One corruption of the saved queue of with_veventq() (two records, one read): refused. */
static void refuse_queue(void (*corrupt_q)(struct json_object *q))
{
	uint32_t v, q;
	struct backend *a = with_veventq(&v, &q), *b = open_sim();
	struct json_object *o, *arr;
	const char *err = "";

	CU_ASSERT_EQUAL(a->ops->trigger_vevent(a, "st0"), 0);
	CU_ASSERT_EQUAL(a->ops->trigger_vevent(a, "st0"), 0);
	o = saved(a);
	CU_ASSERT_FATAL(json_object_object_get_ex(o, "veventq_queues", &arr));
	corrupt_q(json_object_array_get_idx(arr, 0));
	CU_ASSERT_NOT_EQUAL(restore_anchored(b, a, o, &err), 0);
	CU_ASSERT_FALSE(b->ops->has_vobj(b, v, true));
	json_object_put(o);
	a->ops->close(a);
	b->ops->close(b);
	cfg.sim_kernel = KERNEL_RULES_6_12;
}

static void q_depth(struct json_object *q)
{
	json_object_object_add(q, "depth", json_object_new_int64(1)); /* not the object's */
}

static void q_lost_first(struct json_object *q)
{
	struct json_object *recs, *r;

	json_object_object_get_ex(q, "deliver", &recs);
	r = json_object_array_get_idx(recs, 0);
	json_object_array_put_idx(r, 0, json_object_new_int64(NESTD_VEVENTQ_FLAG_LOST_EVENTS));
	json_object_array_put_idx(r, 2, json_object_new_string(""));
}

static void q_data(struct json_object *q)
{
	struct json_object *recs;

	json_object_object_get_ex(q, "deliver", &recs);
	json_object_array_put_idx(json_object_array_get_idx(recs, 1), 2,
				  json_object_new_string("10")); /* one byte of four */
}

static void q_gone(struct json_object *q)
{
	json_object_object_add(q, "id", json_object_new_int64(9999)); /* the vEVENTQ's queue lost */
}

static void test_refuse_veventq(void)
{
	refuse_queue(q_depth);
	refuse_queue(q_lost_first);
	refuse_queue(q_data);
	refuse_queue(q_gone);
}

/*
 * A PASID attachment stays in the kernel across the restart: restored,
 * pasid_restore confirms exactly it, it holds its HWPT, and a saved table
 * naming a HWPT that is none is refused.
 */
static void test_pasid_saved(void)
{
	uint32_t vtd, st, h;
	struct iommu_hwpt_selftest d = {.iotlb = 0x77};
	struct backend_alloc al = {.data_type = IOMMU_HWPT_DATA_SELFTEST,
				   .flags = NESTD_HWPT_ALLOC_PASID,
				   .data = &d,
				   .data_len = sizeof(d)};
	struct backend *a, *b, *c;
	struct json_object *o, *devs, *p;
	const char *err = "";

	cfg.sim_kernel = KERNEL_RULES_7;
	cfg.devices[1].pasid = true;
	a = populated(&vtd, &st);
	b = open_sim();
	c = open_sim();
	CU_ASSERT_FATAL(a->ops->alloc_nested(a, "st0", &al, &h, NULL) == 0);
	CU_ASSERT_FATAL(a->ops->attach_pasid(a, "st0", 100, h) == 0);
	o = saved(a);
	CU_ASSERT_EQUAL(restore_anchored(b, a, o, &err), 0);
	CU_ASSERT_EQUAL(b->ops->pasid_restore(b, "st0", 100, h), 0);
	CU_ASSERT_EQUAL(b->ops->pasid_restore(b, "st0", 101, h), -EINVAL);
	CU_ASSERT_EQUAL(b->ops->pasid_restore(b, "st0", 100, st), -EINVAL);
	CU_ASSERT_EQUAL(b->ops->destroy(b, h), -EBUSY);
	CU_ASSERT_EQUAL(b->ops->detach_pasid(b, "st0", 100), 0);
	CU_ASSERT_EQUAL(b->ops->destroy(b, h), 0);
	/* A table naming no HWPT (the vtd one is not PASID-capable either). */
	json_object_object_get_ex(o, "devices", &devs);
	CU_ASSERT_FATAL(
	    json_object_object_get_ex(json_object_array_get_idx(devs, 1), "pasids", &p));
	json_object_array_put_idx(p, 1, json_object_new_int64(vtd));
	CU_ASSERT_NOT_EQUAL(restore_anchored(c, a, o, &err), 0);
	CU_ASSERT_FALSE(c->ops->has_hwpt(c, h));
	json_object_put(o);
	a->ops->close(a);
	b->ops->close(b);
	c->ops->close(c);
	cfg.devices[1].pasid = false;
	cfg.sim_kernel = KERNEL_RULES_6_12;
}

static void test_refuse_parent(void)
{
	refuse(bad_parent);
}
static void test_refuse_iset(void)
{
	refuse(bad_iset);
}
static void test_refuse_device(void)
{
	refuse(bad_device);
}
static void test_refuse_attach(void)
{
	refuse(bad_attach);
}
static void test_refuse_type(void)
{
	refuse(bad_type);
}

int main(void)
{
	static const struct unit_case tests[] = {
	    {"round_trip", test_round_trip},	   {"viommu_saved", test_viommu_saved},
	    {"vsmmu_saved", test_vsmmu_saved},	   {"refuse_vobjs", test_refuse_vobjs},
	    {"refuse_parent", test_refuse_parent}, {"refuse_iset", test_refuse_iset},
	    {"refuse_device", test_refuse_device}, {"refuse_attach", test_refuse_attach},
	    {"refuse_type", test_refuse_type},	   {"refuse_unanchored", test_refuse_unanchored},
	    {"veventq_saved", test_veventq_saved}, {"refuse_veventq", test_refuse_veventq},
	    {"pasid_saved", test_pasid_saved},
	};

	cfg_setup();
	return unit_run("sim_persist", UNIT_CASES(tests));
}
