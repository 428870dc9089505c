/* SPDX-License-Identifier: MIT */
/*
 * The one teardown path (state/teardown.c) on the sim: a session's and the
 * orphans' objects go in the one order (detach, unmap, destroy; children
 * before parents), only the holder's go, and the registry, the devices and
 * the counters say so afterwards.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "backend/backend.h"
#include "backend/iommufd_uapi.h"
#include "state/registry.h"
#include "state/teardown.h"
#include "util/config.h"
#include "unit_run.h"

static struct config cfg;
static struct backend *be;
static struct hwpt_registry reg;
static uint64_t hwpts_active;

/* The sim's operations, with every teardown call written down in order. */
static const struct backend_ops *sim_ops;
static struct backend_ops rec_ops;
static char calls[16][64];
static unsigned n_calls;

static void note(const char *fmt, const char *dev, uint32_t id)
{
	if (n_calls < 16)
		snprintf(calls[n_calls++], sizeof(calls[0]), fmt, dev, id);
}

static int rec_detach(struct backend *b, const char *device)
{
	note("detach %s%.0u", device, 0);
	return sim_ops->detach(b, device);
}

static int rec_unmap(struct backend *b, const char *device, uint64_t iova, uint64_t length)
{
	note("unmap %s %#x", device, (uint32_t)iova);
	return sim_ops->unmap_memory(b, device, iova, length);
}

static int rec_destroy(struct backend *b, uint32_t id)
{
	note("destroy%s %u", "", id);
	return sim_ops->destroy(b, id);
}

static int rec_destroy_object(struct backend *b, uint32_t id)
{
	note("destroy-object%s %u", "", id);
	return sim_ops->destroy_object(b, id);
}

/* Stand-ins: teardown only compares holders. */
static char session_a, session_b;
#define SA ((const struct session *)&session_a)
#define SB ((const struct session *)&session_b)

/* Two devices of kind (VT-d, or selftest mock devices under 7.x rules for vIOMMUs). */
static void up_kind(enum device_kind kind)
{
	const char *err = NULL;

	memset(&cfg, 0, sizeof(cfg));
	config_defaults(&cfg);
	strcpy(cfg.backend, "sim");
	cfg.n_devices = 2;
	strcpy(cfg.devices[0].name, kind == DEVICE_KIND_VTD ? "vtd0" : "st0");
	cfg.devices[0].kind = kind;
	strcpy(cfg.devices[1].name, kind == DEVICE_KIND_VTD ? "vtd1" : "st1");
	cfg.devices[1].kind = kind;
	if (kind != DEVICE_KIND_VTD)
		cfg.sim_kernel = KERNEL_RULES_7;
	CU_ASSERT_FATAL(backend_sim_open(&cfg, &be, &err) == 0);
	sim_ops = be->ops;
	rec_ops = *sim_ops;
	rec_ops.detach = rec_detach;
	rec_ops.unmap_memory = rec_unmap;
	rec_ops.destroy = rec_destroy;
	rec_ops.destroy_object = rec_destroy_object;
	be->ops = &rec_ops;
	CU_ASSERT_FATAL(hwpt_registry_init(&reg, &cfg) == 0);
	hwpts_active = 0;
	n_calls = 0;
}

static void up(void)
{
	up_kind(DEVICE_KIND_VTD);
}

static void down(void)
{
	hwpt_registry_fini(&reg);
	be->ops = sim_ops;
	be->ops->close(be);
	be = NULL;
}

/* A nested HWPT on device, in the backend and the registry, held by owner (NULL: an orphan). */
static struct hwpt_entry *hwpt(const char *device, const struct session *owner)
{
	struct iommu_hwpt_vtd_s1 s1 = {.pgtbl_addr = 0x100000, .addr_width = 48};
	struct backend_alloc req = {
	    .data_type = IOMMU_HWPT_DATA_VTD_S1, .data = &s1, .data_len = sizeof(s1)};
	struct hwpt_entry e = {.orphan = !owner, .owner = (struct session *)owner};
	struct hwpt_entry *stored;

	CU_ASSERT_FATAL(be->ops->alloc_nested(be, device, &req, &e.id, &e.parent_id) == 0);
	snprintf(e.device, sizeof(e.device), "%s", device);
	stored = hwpt_registry_add(&reg, &e);
	CU_ASSERT_FATAL(stored != NULL);
	hwpts_active++;
	reg.n_orphans += !owner;
	return stored;
}

static void attach(const char *device, struct hwpt_entry *e)
{
	struct device_binding *b = hwpt_registry_binding(&reg, device);

	CU_ASSERT_FATAL(be->ops->attach(be, device, e->id) == 0);
	b->hwpt_id = e->id;
	b->owner = e->owner;
	e->n_attached++;
}

static void map(const char *device, const struct session *owner, uint64_t iova)
{
	struct device_binding *b = hwpt_registry_binding(&reg, device);
	int fd = memfd_create("guest", MFD_CLOEXEC);

	CU_ASSERT_FATAL(fd >= 0 && ftruncate(fd, 1 << 16) == 0);
	CU_ASSERT_FATAL(be->ops->map_memory(be, device, iova, 1 << 16, fd, 0,
					    IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE) ==
			0);
	close(fd);
	CU_ASSERT_FATAL(binding_map_add(b, iova, iova + (1 << 16) - 1) == 0);
	b->mem_owner = (struct session *)owner;
	b->mem_uid = 1000;
}

static void expect_calls(const char *const *want, unsigned n)
{
	CU_ASSERT_EQUAL(n_calls, n);
	for (unsigned i = 0; i < n && i < n_calls; i++) {
		if (strcmp(calls[i], want[i]))
			fprintf(stderr, "call %u: got \"%s\", want \"%s\"\n", i, calls[i], want[i]);
		CU_ASSERT_STRING_EQUAL(calls[i], want[i]);
	}
}

/* A session's: its device detached, its memory unmapped, its HWPTs destroyed newest first. */
static void test_session(void)
{
	struct hwpt_entry *a, *b, *other;
	struct teardown_holder h;
	char want[3][64];

	up();
	a = hwpt("vtd0", SA);
	b = hwpt("vtd1", SA);
	other = hwpt("vtd1", SB);
	b->next_owned = a; /* the owner's list, newest first */
	attach("vtd0", a);
	map("vtd0", SA, 0x100000);
	snprintf(want[0], sizeof(want[0]), "destroy %u", b->id);
	snprintf(want[1], sizeof(want[1]), "destroy %u", a->id);
	h = (struct teardown_holder){.s = SA, .session_id = 7, .owned = b};
	CU_ASSERT_TRUE(state_teardown(&reg, be, &h, &hwpts_active));
	{
		const char *const order[] = {"detach vtd0", "unmap vtd0 0x100000", want[0],
					     want[1]};

		expect_calls(order, 4);
	}
	CU_ASSERT_PTR_NULL(h.owned);
	CU_ASSERT_EQUAL(reg.count, 1);
	CU_ASSERT_EQUAL(hwpts_active, 1);
	CU_ASSERT_PTR_EQUAL(hwpt_registry_find(&reg, NULL, other->id), other);
	CU_ASSERT_EQUAL(reg.bindings[0].hwpt_id, 0);
	CU_ASSERT_PTR_NULL(reg.bindings[0].owner);
	CU_ASSERT_EQUAL(reg.bindings[0].n_maps, 0);
	CU_ASSERT_EQUAL(reg.bindings[0].mapped_bytes, 0);
	CU_ASSERT_TRUE(be->ops->has_hwpt(be, other->id));
	down();
}

/* Nothing held, nothing done: no state file write either. */
static void test_nothing(void)
{
	struct teardown_holder h = {.s = SA};

	up();
	hwpt("vtd0", SB);
	CU_ASSERT_FALSE(state_teardown(&reg, be, &h, &hwpts_active));
	CU_ASSERT_EQUAL(n_calls, 0);
	CU_ASSERT_EQUAL(reg.count, 1);
	down();
}

/*
 * The orphans': detach, unmap, destroy, children before parents whatever
 * the registry's order; a session's objects stay.
 */
static void test_orphans(void)
{
	struct hwpt_entry *parent, *child, *mine;
	struct teardown_holder h = {.s = NULL};
	int at_parent = -1, at_child = -1;
	char p[64], c[64];

	up();
	/* Made first, so that the registry's walk (by id hash) meets the parent first. */
	child = hwpt("vtd0", NULL);
	parent = hwpt("vtd0", NULL);
	child->parent_id = parent->id; /* as the registry sees it */
	mine = hwpt("vtd1", SA);
	attach("vtd0", child);
	attach("vtd1", mine);
	map("vtd0", NULL, 0x200000);
	map("vtd1", SA, 0x300000);
	/* Names before the teardown frees the entries. */
	snprintf(p, sizeof(p), "destroy %u", parent->id);
	snprintf(c, sizeof(c), "destroy %u", child->id);
	CU_ASSERT_TRUE(state_teardown(&reg, be, &h, &hwpts_active));
	CU_ASSERT_EQUAL_FATAL(n_calls, 4);
	CU_ASSERT_STRING_EQUAL(calls[0], "detach vtd0");
	CU_ASSERT_STRING_EQUAL(calls[1], "unmap vtd0 0x200000");
	for (int i = 2; i < 4; i++) {
		if (!strcmp(calls[i], p))
			at_parent = i;
		if (!strcmp(calls[i], c))
			at_child = i;
	}
	CU_ASSERT_TRUE(at_child >= 0 && at_parent > at_child);
	CU_ASSERT_EQUAL(reg.n_orphans, 0);
	CU_ASSERT_EQUAL(reg.count, 1);
	CU_ASSERT_EQUAL(hwpts_active, 1);
	CU_ASSERT_EQUAL(reg.bindings[0].n_maps, 0);
	CU_ASSERT_EQUAL(reg.bindings[0].hwpt_id, 0);
	CU_ASSERT_EQUAL(reg.bindings[1].hwpt_id, mine->id);
	CU_ASSERT_EQUAL(reg.bindings[1].n_maps, 1);
	CU_ASSERT_EQUAL(mine->n_attached, 1);
	down();
}

/* A vIOMMU or vDEVICE in the backend and the table, held by owner (NULL: an orphan). */
static uint32_t vobj(enum vobj_kind kind, const char *device, uint32_t viommu,
		     const struct session *owner)
{
	struct vobj v = {.kind = kind, .viommu_id = viommu, .owner = owner, .orphan = !owner};

	int rc = kind == VOBJ_VIOMMU
		     ? be->ops->viommu_alloc(be, device, 0xdeadbeefu, 0, &v.id, NULL)
		     : be->ops->vdevice_alloc(be, viommu, device, 0x10, &v.id);

	CU_ASSERT_FATAL(rc == 0);
	snprintf(v.device, sizeof(v.device), "%s", device);
	CU_ASSERT_FATAL(vobj_add(&reg.vobjs, &v) != NULL);
	return v.id;
}

/*
 * The orphans' vIOMMUs and vDEVICEs, after their HWPTs (a HWPT on a
 * vIOMMU holds it) and vDEVICEs before vIOMMUs, whatever the table's
 * order: each destroy meets an object nothing holds any more. A
 * session's vIOMMU stays.
 */
static void test_orphan_vobjs(void)
{
	struct iommu_hwpt_selftest st = {.iotlb = 1};
	struct backend_alloc req = {
	    .data_type = IOMMU_HWPT_DATA_SELFTEST, .data = &st, .data_len = sizeof(st)};
	struct hwpt_entry e = {.orphan = true}, *h;
	struct teardown_holder th = {.s = NULL};
	uint32_t v, d, mine;
	char want[3][64];

	up_kind(DEVICE_KIND_SELFTEST);
	v = vobj(VOBJ_VIOMMU, "st0", 0, NULL);
	d = vobj(VOBJ_VDEVICE, "st0", v, NULL);
	mine = vobj(VOBJ_VIOMMU, "st1", 0, SA);
	req.viommu_id = v;
	CU_ASSERT_FATAL(be->ops->alloc_nested(be, "st0", &req, &e.id, &e.parent_id) == 0);
	snprintf(e.device, sizeof(e.device), "st0");
	e.viommu_id = v;
	h = hwpt_registry_add(&reg, &e);
	CU_ASSERT_FATAL(h != NULL);
	reg.n_orphans++;
	hwpts_active++;
	attach("st0", h);
	snprintf(want[0], sizeof(want[0]), "destroy %u", e.id);
	snprintf(want[1], sizeof(want[1]), "destroy-object %u", d);
	snprintf(want[2], sizeof(want[2]), "destroy-object %u", v);
	CU_ASSERT_EQUAL(reg.vobjs.n_orphans, 2);
	CU_ASSERT_TRUE(state_teardown(&reg, be, &th, &hwpts_active));
	{
		const char *const order[] = {"detach st0", want[0], want[1], want[2]};

		expect_calls(order, 4);
	}
	CU_ASSERT_EQUAL(reg.vobjs.count, 1);
	CU_ASSERT_EQUAL(reg.vobjs.n_orphans, 0);
	CU_ASSERT_PTR_NOT_NULL(vobj_lookup_owned(&reg.vobjs, VOBJ_VIOMMU, mine, SA));
	CU_ASSERT_TRUE(be->ops->has_vobj(be, mine, true));
	CU_ASSERT_FALSE(be->ops->has_vobj(be, v, true));
	CU_ASSERT_FALSE(be->ops->has_vobj(be, d, false));
	CU_ASSERT_EQUAL(hwpts_active, 0);
	down();
}

int main(void)
{
	static const struct unit_case tests[] = {
	    {"session: detach, unmap, destroy newest first", test_session},
	    {"session: nothing held, nothing changed", test_nothing},
	    {"orphans: only theirs, children first", test_orphans},
	    {"orphans: vIOMMUs after their HWPTs, vDEVICEs first", test_orphan_vobjs},
	};

	return unit_run("teardown", UNIT_CASES(tests));
}
