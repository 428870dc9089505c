// SPDX-License-Identifier: MIT
/*
 * The sim backend against the kernel's rules (Linux 6.12 hw_pagetable.c,
 * intel/nested.c, iommufd/selftest.c and the nested HWPT sequence of
 * tools/testing/selftests/iommu/iommufd.c), plus its IOTLB model and fault
 * injection. Self-contained: needs only nestd_sim (and what it links).
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "backend/backend.h"
#include "util/config.h"
#include "backend/iommufd_uapi.h"
#include "backend/sim/iset.h"
#include "backend/sim/state.h"
#include "unit_run.h"

#define PG 4096ull
#define LAST_PAGE (~0ull - PG + 1) /* 0xfffffffffffff000 */
#define ALL_PAGES (1ull << 52)
#define FAULT_ID_VALID (1u << 2)

typedef struct iommu_hwpt_vtd_s1_invalidate vtd_inv_t;
typedef struct iommu_hwpt_invalidate_selftest mock_inv_t;

static struct config cfg;
static struct backend *be;

/* --- fixtures and helpers ---------------------------------------------- */

static void cfg_add(struct config *c, const char *name, enum device_kind kind)
{
	struct config_device *d = &c->devices[c->n_devices++];

	strncpy(d->name, name, sizeof(d->name) - 1);
	d->kind = kind;
}

static void cfg_default(struct config *c)
{
	memset(c, 0, sizeof(*c));
	strcpy(c->backend, "sim");
	cfg_add(c, "vtd0", DEVICE_KIND_VTD);
	cfg_add(c, "mock0", DEVICE_KIND_SELFTEST);
	cfg_add(c, "vtd1", DEVICE_KIND_VTD);
	cfg_add(c, "mock1", DEVICE_KIND_SELFTEST);
}

static void sim_up(void)
{
	const char *err = NULL;

	cfg_default(&cfg);
	be = NULL;
	CU_ASSERT_FATAL(backend_sim_open(&cfg, &be, &err) == 0);
}

static void sim_down(void)
{
	be->ops->close(be);
	be = NULL;
}

static int alloc_raw(const char *dev, uint32_t type, uint32_t flags, const void *data,
		     uint32_t len, uint32_t *id)
{
	struct backend_alloc req = {
		.data_type = type, .flags = flags, .data = data, .data_len = len,
	};
	uint32_t parent;

	return be->ops->alloc_nested(be, dev, &req, id, &parent);
}

static uint32_t alloc_vtd_aw(const char *dev, uint32_t addr_width)
{
	struct iommu_hwpt_vtd_s1 s1 = { .pgtbl_addr = 0x100000, .addr_width = addr_width };
	uint32_t id = 0;

	CU_ASSERT_EQUAL(alloc_raw(dev, IOMMU_HWPT_DATA_VTD_S1, 0, &s1, sizeof(s1), &id), 0);
	return id;
}

static uint32_t alloc_vtd(const char *dev)
{
	return alloc_vtd_aw(dev, 48);
}

static uint32_t alloc_mock(const char *dev, uint32_t iotlb)
{
	struct iommu_hwpt_selftest data = { .iotlb = iotlb };
	uint32_t id = 0;

	CU_ASSERT_EQUAL(alloc_raw(dev, IOMMU_HWPT_DATA_SELFTEST, 0, &data, sizeof(data), &id), 0);
	return id;
}

/* One IOMMU_HWPT_INVALIDATE; *num is in/out like the ioctl's entry_num. */
static int inv_raw(uint32_t id, uint32_t type, const void *e, uint32_t len, uint32_t *num,
		   uint32_t *hw_error)
{
	struct backend_inv inv = {
		.hwpt_id = id, .data_type = type, .entry_len = len,
		.entry_num = *num, .entries = e, .hw_error = hw_error,
	};
	int rc = be->ops->invalidate(be, &inv);

	*num = inv.entry_num;
	return rc;
}

static int inv_vtd(uint32_t id, const vtd_inv_t *e, uint32_t *num, uint32_t *hw)
{
	return inv_raw(id, IOMMU_HWPT_INVALIDATE_DATA_VTD_S1, e, sizeof(*e), num, hw);
}

static int inv_mock(uint32_t id, const mock_inv_t *e, uint32_t *num)
{
	return inv_raw(id, IOMMU_HWPT_INVALIDATE_DATA_SELFTEST, e, sizeof(*e), num, NULL);
}

static void check_iotlb_all(uint32_t id, uint32_t v)
{
	uint32_t i;

	for (i = 0; i < MOCK_NESTED_DOMAIN_IOTLB_NUM; i++)
		CU_ASSERT_EQUAL(be->ops->check_iotlb(be, id, i, v), 0);
}

static uint64_t q_iotlb(uint32_t id, uint64_t addr, uint64_t npages)
{
	uint64_t t = ~0ull, p = ~0ull;

	CU_ASSERT_EQUAL(be->ops->sim_query(be, id, addr, npages, &t, &p), 0);
	return t;
}

static uint64_t q_psc(uint32_t id, uint64_t addr, uint64_t npages)
{
	uint64_t t = ~0ull, p = ~0ull;

	CU_ASSERT_EQUAL(be->ops->sim_query(be, id, addr, npages, &t, &p), 0);
	return p;
}

static void populate_both(uint32_t id, uint64_t addr, uint64_t npages)
{
	CU_ASSERT_EQUAL(be->ops->sim_populate(be, id, addr, npages, SIM_KIND_IOTLB), 0);
	CU_ASSERT_EQUAL(be->ops->sim_populate(be, id, addr, npages, SIM_KIND_PSC), 0);
}

static int inject(uint32_t mode, uint32_t hwpt, uint32_t index, uint64_t addr, int32_t error,
		  uint32_t hw_error, uint32_t count)
{
	struct backend_fault f = {
		.hwpt_id = hwpt, .mode = mode, .index = index, .addr = addr,
		.error = error, .hw_error = hw_error, .count = count,
	};

	return be->ops->inject_fault(be, &f);
}

/* --- interval set ------------------------------------------------------ */

static void test_iset_basic(void)
{
	struct sim_iset s;

	sim_iset_init(&s);
	CU_ASSERT_EQUAL(sim_iset_add(&s, 10, 20), 0);
	CU_ASSERT_EQUAL(sim_iset_add(&s, 30, 40), 0);
	CU_ASSERT_EQUAL(s.n, 2);
	CU_ASSERT_EQUAL(sim_iset_add(&s, 20, 30), 0); /* adjacent both sides: merge */
	CU_ASSERT_EQUAL(s.n, 1);
	CU_ASSERT_EQUAL(sim_iset_total(&s), 30);
	CU_ASSERT_EQUAL(sim_iset_remove(&s, 15, 25), 0); /* split */
	CU_ASSERT_EQUAL(s.n, 2);
	CU_ASSERT_EQUAL(sim_iset_count(&s, 0, 100), 20);
	CU_ASSERT_EQUAL(sim_iset_count(&s, 14, 26), 2);
	CU_ASSERT_EQUAL(sim_iset_remove(&s, 0, 12), 0); /* left trim */
	CU_ASSERT_EQUAL(sim_iset_remove(&s, 38, 100), 0); /* right trim */
	CU_ASSERT_EQUAL(sim_iset_total(&s), 16);
	CU_ASSERT_EQUAL(sim_iset_remove(&s, 12, 38), 0); /* covers both */
	CU_ASSERT_EQUAL(s.n, 0);
	CU_ASSERT_EQUAL(sim_iset_add(&s, ALL_PAGES - 1, ALL_PAGES), 0);
	CU_ASSERT_EQUAL(sim_iset_count(&s, 0, ALL_PAGES), 1);
	CU_ASSERT_EQUAL(sim_iset_remove(&s, 0, ALL_PAGES), 0);
	CU_ASSERT_EQUAL(sim_iset_total(&s), 0);
	sim_iset_free(&s);
}

/* Random operations against a bitmap reference over a small universe. */
static void test_iset_random(void)
{
	enum { U = 256 };
	unsigned char ref[U];
	struct sim_iset s;
	unsigned int seed = 12345;
	int iter, ok = 1;

	memset(ref, 0, sizeof(ref));
	sim_iset_init(&s);
	for (iter = 0; iter < 20000 && ok; iter++) {
		uint64_t a = rand_r(&seed) % U, b = rand_r(&seed) % (U + 1), lo, hi, want = 0, i;
		int add = rand_r(&seed) & 1;

		lo = a < b ? a : b;
		hi = a < b ? b : a;
		if (add)
			ok &= sim_iset_add(&s, lo, hi) == 0;
		else
			ok &= sim_iset_remove(&s, lo, hi) == 0;
		for (i = lo; i < hi; i++)
			ref[i] = add;
		a = rand_r(&seed) % U;
		b = a + rand_r(&seed) % (U - a + 1);
		for (i = a; i < b; i++)
			want += ref[i];
		ok &= sim_iset_count(&s, a, b) == want;
		/* The kept page total (the sim's change check reads it) is the model's. */
		for (want = 0, i = 0; i < U; i++)
			want += ref[i];
		ok &= sim_iset_total(&s) == want;
		/* Canonical: sorted, non-empty, neither overlapping nor adjacent. */
		for (i = 0; i < s.n; i++) {
			ok &= s.r[i].start < s.r[i].end;
			if (i)
				ok &= s.r[i - 1].end < s.r[i].start;
		}
	}
	CU_ASSERT(ok);
	sim_iset_free(&s);
}

/* --- open, devices, caps ----------------------------------------------- */

static void test_open_devices_caps(void)
{
	struct backend_caps caps;

	sim_up();
	CU_ASSERT_STRING_EQUAL(be->ops->name, "sim");
	CU_ASSERT_EQUAL(be->ops->n_devices(be), 4);
	CU_ASSERT_STRING_EQUAL(be->ops->device_name(be, 0), "vtd0");
	CU_ASSERT_STRING_EQUAL(be->ops->device_name(be, 1), "mock0");
	CU_ASSERT_STRING_EQUAL(be->ops->device_name(be, 3), "mock1");
	CU_ASSERT_PTR_NULL(be->ops->device_name(be, 4));
	be->ops->get_caps(be, &caps);
	CU_ASSERT_EQUAL(caps.n_hwpt_types, 2);
	CU_ASSERT_EQUAL(caps.hwpt_types[0], IOMMU_HWPT_DATA_VTD_S1);
	CU_ASSERT_EQUAL(caps.hwpt_types[1], IOMMU_HWPT_DATA_SELFTEST);
	CU_ASSERT_EQUAL(caps.n_inv_types, 2);
	CU_ASSERT_EQUAL(caps.inv_types[0], IOMMU_HWPT_INVALIDATE_DATA_VTD_S1);
	CU_ASSERT_EQUAL(caps.inv_types[1], IOMMU_HWPT_INVALIDATE_DATA_SELFTEST);
	CU_ASSERT(caps.check_iotlb && caps.sim_model && caps.fault_inject);
	sim_down();
}

static void test_open_rejects(void)
{
	struct backend *b = NULL;
	const char *err = NULL;
	struct backend_caps caps;

	cfg_default(&cfg);
	cfg_add(&cfg, "vtd0", DEVICE_KIND_VTD);
	CU_ASSERT_EQUAL(backend_sim_open(&cfg, &b, &err), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(err);

	cfg_default(&cfg);
	cfg.devices[1].kind = 7;
	CU_ASSERT_EQUAL(backend_sim_open(&cfg, &b, &err), -EINVAL);

	cfg_default(&cfg);
	cfg.sim_fault.mode = FAULT_AT_INDEX; /* reports nothing */
	CU_ASSERT_EQUAL(backend_sim_open(&cfg, &b, &err), -EINVAL);

	/* No devices: a valid, if useless, sim. */
	memset(&cfg, 0, sizeof(cfg));
	CU_ASSERT_EQUAL_FATAL(backend_sim_open(&cfg, &b, &err), 0);
	b->ops->get_caps(b, &caps);
	CU_ASSERT_EQUAL(caps.n_hwpt_types, 0);
	CU_ASSERT_EQUAL(b->ops->n_devices(b), 0);
	b->ops->close(b);
}

/* --- IOMMU_HWPT_ALLOC ---------------------------------------------------- */

static void test_alloc_errors(void)
{
	struct iommu_hwpt_selftest md = { .iotlb = IOMMU_TEST_IOTLB_DEFAULT };
	struct iommu_hwpt_vtd_s1 vd = { .addr_width = 48 };
	const uint32_t ST = IOMMU_HWPT_DATA_SELFTEST, VT = IOMMU_HWPT_DATA_VTD_S1;
	uint32_t id = 0;

	sim_up();
	/* hw_pagetable.c:283: data_type NONE with data, or a type without. */
	CU_ASSERT_EQUAL(alloc_raw("mock0", IOMMU_HWPT_DATA_NONE, 0, &md, sizeof(md), &id), -EINVAL);
	CU_ASSERT_EQUAL(alloc_raw("mock0", ST, 0, &md, 0, &id), -EINVAL);
	/* Daemon level: a device the config does not declare. */
	CU_ASSERT_EQUAL(alloc_raw("nope", ST, 0, &md, sizeof(md), &id), -ENODEV);
	CU_ASSERT_EQUAL(alloc_raw(NULL, ST, 0, &md, sizeof(md), &id), -ENODEV);
	/* hw_pagetable.c:229: nested takes no flags; DATA_NONE has no data. */
	CU_ASSERT_EQUAL(alloc_raw("mock0", ST, IOMMU_HWPT_ALLOC_NEST_PARENT, &md, sizeof(md), &id),
			-EOPNOTSUPP);
	CU_ASSERT_EQUAL(alloc_raw("vtd0", VT, IOMMU_HWPT_ALLOC_DIRTY_TRACKING, &vd, sizeof(vd),
				  &id), -EOPNOTSUPP);
	CU_ASSERT_EQUAL(alloc_raw("mock0", IOMMU_HWPT_DATA_NONE, 0, NULL, 0, &id), -EOPNOTSUPP);
	/* Driver: a data type it does not know. */
	CU_ASSERT_EQUAL(alloc_raw("mock0", ST + 1, 0, &md, sizeof(md), &id), -EOPNOTSUPP);
	CU_ASSERT_EQUAL(alloc_raw("mock0", VT, 0, &vd, sizeof(vd), &id), -EOPNOTSUPP);
	CU_ASSERT_EQUAL(alloc_raw("vtd0", ST, 0, &md, sizeof(md), &id), -EOPNOTSUPP);
	/* iommu_copy_struct_from_user(): length outside [min, sizeof]. */
	CU_ASSERT_EQUAL(alloc_raw("mock0", ST, 0, &md, sizeof(md) - 1, &id), -EINVAL);
	CU_ASSERT_EQUAL(alloc_raw("mock0", ST, 0, &md, sizeof(md) + 1, &id), -EINVAL);
	CU_ASSERT_EQUAL(alloc_raw("vtd0", VT, 0, &vd, sizeof(vd) - 8, &id), -EINVAL);
	CU_ASSERT_EQUAL(alloc_raw("mock0", ST, 0, NULL, sizeof(md), &id), -EFAULT);
	/* FAULT_ID_VALID passes the flag check, then the fault lookup fails. */
	CU_ASSERT_EQUAL(alloc_raw("mock0", ST, FAULT_ID_VALID, &md, sizeof(md), &id), -ENOENT);
	sim_down();
}

static void test_alloc_ids(void)
{
	struct iommu_hwpt_vtd_s1 vd = { .addr_width = 48 };
	struct backend_alloc req = {
		.data_type = IOMMU_HWPT_DATA_VTD_S1, .data = &vd, .data_len = sizeof(vd),
	};
	uint32_t a, b, c, parent = 0;

	sim_up();
	/* Parents take ids 1..4 in config order; nested ones follow. */
	CU_ASSERT_EQUAL(be->ops->alloc_nested(be, "vtd1", &req, &a, &parent), 0);
	CU_ASSERT_EQUAL(parent, 3);
	CU_ASSERT_EQUAL(a, 5);
	b = alloc_mock("mock0", 1);
	CU_ASSERT_EQUAL(b, 6);
	CU_ASSERT_EQUAL(be->ops->destroy(be, a), 0);
	CU_ASSERT_EQUAL(be->ops->destroy(be, a), -ENOENT);
	CU_ASSERT_EQUAL(be->ops->check_iotlb(be, a, 0, 1), -ENOENT);
	/* Like iommufd's xarray: the lowest free id comes back first (the kernel tier saw it). */
	c = alloc_mock("mock0", 1);
	CU_ASSERT_EQUAL(c, a);
	CU_ASSERT_EQUAL(alloc_mock("mock0", 1), 7);
	CU_ASSERT_EQUAL(be->ops->destroy(be, c), 0);
	CU_ASSERT_EQUAL(be->ops->destroy(be, 0), -ENOENT);
	/* Reserved fields and flags of the VT-d data are not checked at alloc. */
	vd.flags = ~0ull;
	vd.__reserved = 1;
	CU_ASSERT_EQUAL(be->ops->alloc_nested(be, "vtd0", &req, &a, NULL), 0);
	sim_down();
}

/* --- destroy, attach, detach --------------------------------------------- */

static void test_destroy_busy(void)
{
	uint32_t n0, n1;

	sim_up();
	n0 = alloc_mock("mock0", IOMMU_TEST_IOTLB_DEFAULT);
	n1 = alloc_mock("mock0", IOMMU_TEST_IOTLB_DEFAULT);
	/* A parent with nested children (and its device) is busy. */
	CU_ASSERT_EQUAL(be->ops->destroy(be, 2), -EBUSY);
	CU_ASSERT_EQUAL(be->ops->attach(be, "mock0", n0), 0);
	CU_ASSERT_EQUAL(be->ops->destroy(be, n0), -EBUSY);
	/* Replace: n0 is free again, n1 busy. */
	CU_ASSERT_EQUAL(be->ops->attach(be, "mock0", n1), 0);
	CU_ASSERT_EQUAL(be->ops->destroy(be, n1), -EBUSY);
	CU_ASSERT_EQUAL(be->ops->destroy(be, n0), 0);
	CU_ASSERT_EQUAL(be->ops->detach(be, "mock0"), 0);
	CU_ASSERT_EQUAL(be->ops->destroy(be, n1), 0);
	/* The device itself still sits on its parent. */
	CU_ASSERT_EQUAL(be->ops->destroy(be, 2), -EBUSY);
	sim_down();
}

static void test_attach_rules(void)
{
	uint32_t v0, v1, m0, bad;

	sim_up();
	v0 = alloc_vtd("vtd0");
	v1 = alloc_vtd("vtd1");
	m0 = alloc_mock("mock0", 0);
	CU_ASSERT_EQUAL(be->ops->attach(be, "nope", v0), -ENODEV);
	CU_ASSERT_EQUAL(be->ops->attach(be, "vtd0", 999), -ENOENT);
	/* Incompatible domains: another driver's, nested (m0) or parent (mock0's, 2). */
	CU_ASSERT_EQUAL(be->ops->attach(be, "vtd0", m0), -EINVAL);
	CU_ASSERT_EQUAL(be->ops->attach(be, "vtd0", 2), -EINVAL);
	CU_ASSERT_EQUAL(be->ops->attach(be, "mock0", v1), -EINVAL);
	CU_ASSERT_EQUAL(be->ops->attach(be, "vtd0", 1), 0); /* own parent */
	CU_ASSERT_EQUAL(be->ops->attach(be, "vtd0", v0), 0);
	CU_ASSERT_EQUAL(be->ops->attach(be, "vtd0", v0), 0); /* same: no-op */
	/* intel/pasid.c: stage-1 address width neither 48 nor 57. */
	bad = alloc_vtd_aw("vtd0", 39);
	CU_ASSERT_EQUAL(be->ops->attach(be, "vtd0", bad), -EINVAL);
	CU_ASSERT_EQUAL(be->ops->destroy(be, v0), -EBUSY); /* old attachment kept */
	CU_ASSERT_EQUAL(be->ops->destroy(be, bad), 0);
	CU_ASSERT_NOT_EQUAL(alloc_vtd_aw("vtd0", 57), 0);
	/* Attaching the parent returns the device there, like detach. */
	CU_ASSERT_EQUAL(be->ops->attach(be, "vtd0", 1), 0);
	CU_ASSERT_EQUAL(be->ops->destroy(be, v0), 0);
	/* Detach is idempotent, like VFIO_DEVICE_DETACH_IOMMUFD_PT. */
	CU_ASSERT_EQUAL(be->ops->detach(be, "vtd1"), 0);
	CU_ASSERT_EQUAL(be->ops->detach(be, "vtd1"), 0);
	CU_ASSERT_EQUAL(be->ops->detach(be, "nope"), -ENODEV);
	sim_down();
}

/*
 * The kernel lets a device attach to a compatible domain that sits on
 * another device's IOAS (device.c follows the HWPT to its IOAS), and so
 * does the model: keeping tenants apart is the daemon's rule. The device
 * then translates through the other device's stage 2.
 */
static void test_attach_cross_device(void)
{
	const struct backend_alloc mock = {
	    .data_type = IOMMU_HWPT_DATA_SELFTEST,
	    .data = &(struct iommu_hwpt_selftest){.iotlb = 1},
	    .data_len = sizeof(struct iommu_hwpt_selftest),
	};
	const char *err = NULL;
	struct sim_state st;
	uint32_t n1, p1;

	cfg_default(&cfg);
	CU_ASSERT_FATAL(sim_state_init(&st, &cfg, &err) == 0);
	CU_ASSERT_EQUAL(sim_dev_stage2(&st, "mock0"), 1);
	CU_ASSERT_EQUAL(sim_alloc_nested(&st, "mock1", &mock, &n1, &p1), 0);
	/* mock0 onto a nested HWPT of mock1's parent: mock1's stage 2. */
	CU_ASSERT_EQUAL(sim_attach(&st, "mock0", n1), 0);
	CU_ASSERT_EQUAL(sim_dev_stage2(&st, "mock0"), 3);
	CU_ASSERT_EQUAL(sim_destroy(&st, n1), -EBUSY);
	/* And onto mock1's parent itself. */
	CU_ASSERT_EQUAL(sim_attach(&st, "mock0", p1), 0);
	CU_ASSERT_EQUAL(sim_dev_stage2(&st, "mock0"), 3);
	CU_ASSERT_EQUAL(sim_destroy(&st, n1), 0);
	/* Detach goes back to its own parent, its own stage 2. */
	CU_ASSERT_EQUAL(sim_detach(&st, "mock0"), 0);
	CU_ASSERT_EQUAL(sim_dev_stage2(&st, "mock0"), 1);
	CU_ASSERT_EQUAL(sim_dev_stage2(&st, "nope"), -ENODEV);
	sim_state_free(&st);
}

/*
 * IOMMU_IOAS_UNMAP on an IOAS that never had an area: -ENOENT (ioas.c),
 * without touching the absent area array (UBSan: memmove of NULL).
 */
static void test_unmap_empty_ioas(void)
{
	sim_up();
	CU_ASSERT_EQUAL(be->ops->unmap_memory(be, "mock0", 16 << 20, 1 << 20), -ENOENT);
	CU_ASSERT_EQUAL(be->ops->unmap_memory(be, "vtd0", 0, UINT64_MAX), 0);
	sim_down();
}

/* --- IOMMU_HWPT_INVALIDATE: core checks ---------------------------------- */

static void test_inv_core_checks(void)
{
	const uint32_t ST = IOMMU_HWPT_INVALIDATE_DATA_SELFTEST;
	mock_inv_t e[2] = { 0 };
	struct backend_inv inv;
	uint32_t m, num;

	sim_up();
	m = alloc_mock("mock0", IOMMU_TEST_IOTLB_DEFAULT);
	/* Reserved word first, even before the object lookup. */
	inv = (struct backend_inv){ .hwpt_id = 999, .data_type = ST, .reserved = 1,
				    .entry_len = sizeof(e[0]), .entry_num = 1, .entries = e };
	CU_ASSERT_EQUAL(be->ops->invalidate(be, &inv), -EOPNOTSUPP);
	CU_ASSERT_EQUAL(inv.entry_num, 0);
	num = 1;
	CU_ASSERT_EQUAL(inv_raw(m, ST, NULL, sizeof(e[0]), &num, NULL), -EINVAL);
	CU_ASSERT_EQUAL(num, 0);
	num = 1;
	CU_ASSERT_EQUAL(inv_raw(m, ST, e, 0, &num, NULL), -EINVAL);
	num = 1;
	CU_ASSERT_EQUAL(inv_raw(m, ST, e, PG + 1, &num, NULL), -EINVAL);
	num = IOMMU_HWPT_INVALIDATE_ENTRY_NUM_MAX + 1;
	CU_ASSERT_EQUAL(inv_raw(m, ST, e, sizeof(e[0]), &num, NULL), -EINVAL);
	CU_ASSERT_EQUAL(num, 0);
	/* Unknown object, and a paging (parent) HWPT. */
	num = 1;
	CU_ASSERT_EQUAL(inv_raw(999, ST, e, sizeof(e[0]), &num, NULL), -ENOENT);
	CU_ASSERT_EQUAL(num, 0);
	num = 1;
	CU_ASSERT_EQUAL(inv_raw(2, ST, e, sizeof(e[0]), &num, NULL), -ENOENT);
	CU_ASSERT_EQUAL(num, 0);
	/* With no entries, NULL data and entry_len 0 are fine. */
	num = 0;
	CU_ASSERT_EQUAL(inv_raw(m, ST, NULL, 0, &num, NULL), 0);
	sim_down();
}

/*
 * [daemon] sim_kernel: a live object that cannot be invalidated (here the
 * nest parent, a paging HWPT) is -ENOENT on 6.12 (iommufd_get_hwpt_nested)
 * and -EINVAL on 7.x (any object is looked up, the wrong kind refused);
 * an unknown id is -ENOENT on both.
 */
/* backend_take_fd_fn: hands the sim's anchor back once, as the fd store would. */
static int take_anchor(void *ctx, const char *name)
{
	int *fd = ctx, got = *fd;

	*fd = -1;
	return strcmp(name, "sim") ? -1 : got;
}

static void check_wrong_object(enum kernel_rules rules, uint32_t id, uint32_t parent)
{
	const uint32_t ST = IOMMU_HWPT_INVALIDATE_DATA_SELFTEST;
	const int want = rules == KERNEL_RULES_7 ? -EINVAL : -ENOENT;
	struct backend_caps caps;
	mock_inv_t e = {0};
	uint32_t num;

	be->ops->get_caps(be, &caps);
	CU_ASSERT_EQUAL(caps.rules, rules);
	num = 1;
	CU_ASSERT_EQUAL(inv_raw(parent, ST, &e, sizeof(e), &num, NULL), want);
	CU_ASSERT_EQUAL(num, 0);
	num = 0; /* the probe too: the lookup comes before the type check */
	CU_ASSERT_EQUAL(inv_raw(parent, ST, NULL, 0, &num, NULL), want);
	num = 1;
	CU_ASSERT_EQUAL(inv_raw(999, ST, &e, sizeof(e), &num, NULL), -ENOENT);
	num = 1;
	CU_ASSERT_EQUAL(inv_raw(id, ST, &e, sizeof(e), &num, NULL), 0);
	CU_ASSERT_EQUAL(num, 1);
}

/*
 * Both knob values, each also after a restore into a daemon configured
 * with the other one: the rules are configuration, not saved state.
 */
static void test_inv_wrong_object_per_kernel(void)
{
	const enum kernel_rules all[2] = {KERNEL_RULES_6_12, KERNEL_RULES_7};
	struct iommu_hwpt_selftest data = {.iotlb = 1};
	struct backend_alloc req = {
	    .data_type = IOMMU_HWPT_DATA_SELFTEST, .data = &data, .data_len = sizeof(data)};
	const char *err = NULL;

	for (int i = 0; i < 2; i++) {
		struct json_object *saved = json_object_new_object();
		uint32_t id = 0, parent = 0;
		struct backend_fd anchor;
		int anchor_fd;

		cfg_default(&cfg);
		cfg.sim_kernel = all[i];
		CU_ASSERT_FATAL(backend_sim_open(&cfg, &be, &err) == 0);
		CU_ASSERT_EQUAL_FATAL(be->ops->alloc_nested(be, "mock0", &req, &id, &parent), 0);
		check_wrong_object(all[i], id, parent);
		CU_ASSERT_EQUAL_FATAL(be->ops->save(be, saved), 0);
		/* A restart gets the anchor back from the fd store with the state. */
		CU_ASSERT_FATAL(be->ops->stored_fds(be, &anchor, 1) == 1);
		anchor_fd = dup(anchor.fd);
		CU_ASSERT_FATAL(anchor_fd >= 0);
		sim_down();
		cfg.sim_kernel = all[1 - i];
		CU_ASSERT_FATAL(backend_sim_open(&cfg, &be, &err) == 0);
		CU_ASSERT_EQUAL_FATAL(be->ops->restore(be, saved, take_anchor, &anchor_fd, &err), 0);
		CU_ASSERT_EQUAL(anchor_fd, -1);
		check_wrong_object(all[1 - i], id, parent);
		json_object_put(saved);
		sim_down();
	}
}

static void test_inv_max_entries(void)
{
	const uint32_t max = IOMMU_HWPT_INVALIDATE_ENTRY_NUM_MAX;
	mock_inv_t *e = calloc(max, sizeof(*e));
	uint32_t m, num = max;

	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	sim_up();
	m = alloc_mock("mock0", 5);
	e[max - 1].iotlb_id = 3;
	CU_ASSERT_EQUAL(inv_mock(m, e, &num), 0);
	CU_ASSERT_EQUAL(num, max);
	CU_ASSERT_EQUAL(be->ops->check_iotlb(be, m, 3, 0), 0);
	CU_ASSERT_EQUAL(be->ops->check_iotlb(be, m, 1, 5), 0);
	sim_down();
	free(e);
}

/* --- driver: data type, probe, entry length ------------------------------ */

static void test_inv_probe_and_type(void)
{
	const uint32_t ST = IOMMU_HWPT_INVALIDATE_DATA_SELFTEST;
	const uint32_t VT = IOMMU_HWPT_INVALIDATE_DATA_VTD_S1;
	mock_inv_t me = { 0 };
	vtd_inv_t ve = { 0 };
	uint32_t m, v, num;

	sim_up();
	m = alloc_mock("mock0", IOMMU_TEST_IOTLB_DEFAULT);
	v = alloc_vtd("vtd0");
	num = 0;
	CU_ASSERT_EQUAL(inv_raw(m, ST, &me, sizeof(me), &num, NULL), 0);
	CU_ASSERT_EQUAL(num, 0);
	num = 0;
	CU_ASSERT_EQUAL(inv_raw(v, VT, &ve, sizeof(ve), &num, NULL), 0);
	/* A probe with the wrong type fails: that is what makes it a probe. */
	num = 0;
	CU_ASSERT_EQUAL(inv_raw(m, VT, NULL, 0, &num, NULL), -EINVAL);
	num = 0;
	CU_ASSERT_EQUAL(inv_raw(v, ST, NULL, 0, &num, NULL), -EINVAL);
	num = 1;
	CU_ASSERT_EQUAL(inv_raw(m, IOMMU_HWPT_INVALIDATE_DATA_SELFTEST_INVALID, &me, sizeof(me),
				&num, NULL), -EINVAL);
	CU_ASSERT_EQUAL(num, 0);
	check_iotlb_all(m, IOMMU_TEST_IOTLB_DEFAULT);
	sim_down();
}

static void test_inv_entry_len(void)
{
	const uint32_t ST = IOMMU_HWPT_INVALIDATE_DATA_SELFTEST;
	const uint32_t VT = IOMMU_HWPT_INVALIDATE_DATA_VTD_S1;
	char buf[64] = { 0 };
	uint32_t m, v, num;

	sim_up();
	m = alloc_mock("mock0", IOMMU_TEST_IOTLB_DEFAULT);
	v = alloc_vtd("vtd0");
	num = 1;
	CU_ASSERT_EQUAL(inv_raw(m, ST, buf, sizeof(mock_inv_t) + 1, &num, NULL), -EINVAL);
	CU_ASSERT_EQUAL(num, 0);
	num = 1;
	CU_ASSERT_EQUAL(inv_raw(m, ST, buf, 1, &num, NULL), -EINVAL);
	num = 1;
	CU_ASSERT_EQUAL(inv_raw(v, VT, buf, sizeof(vtd_inv_t) - 1, &num, NULL), -EINVAL);
	num = 1;
	CU_ASSERT_EQUAL(inv_raw(v, VT, buf, sizeof(vtd_inv_t) + 8, &num, NULL), -EINVAL);
	CU_ASSERT_EQUAL(num, 0);
	check_iotlb_all(m, IOMMU_TEST_IOTLB_DEFAULT);
	sim_down();
}

/* --- selftest mock driver (the kernel selftest's sequence) --------------- */

static void test_mock_invalidate(void)
{
	mock_inv_t e[2];
	uint32_t n0, n1, num;

	sim_up();
	n0 = alloc_mock("mock0", IOMMU_TEST_IOTLB_DEFAULT);
	n1 = alloc_mock("mock0", IOMMU_TEST_IOTLB_DEFAULT);
	check_iotlb_all(n0, IOMMU_TEST_IOTLB_DEFAULT);

	memset(e, 0, sizeof(e));
	e[0].flags = 0xffffffff;
	num = 1;
	CU_ASSERT_EQUAL(inv_mock(n0, e, &num), -EOPNOTSUPP);
	CU_ASSERT_EQUAL(num, 0);
	e[0].flags = 0;
	e[0].iotlb_id = MOCK_NESTED_DOMAIN_IOTLB_ID_MAX + 1;
	num = 1;
	CU_ASSERT_EQUAL(inv_mock(n0, e, &num), -EINVAL);
	CU_ASSERT_EQUAL(num, 0);

	/* Partial failure: entry 0 took effect, entry 1 failed. */
	e[0] = (mock_inv_t){ .flags = 0, .iotlb_id = 0 };
	e[1] = (mock_inv_t){ .flags = 0xffffffff, .iotlb_id = 1 };
	num = 2;
	CU_ASSERT_EQUAL(inv_mock(n0, e, &num), -EOPNOTSUPP);
	CU_ASSERT_EQUAL(num, 1);
	CU_ASSERT_EQUAL(be->ops->check_iotlb(be, n0, 0, 0), 0);
	CU_ASSERT_EQUAL(be->ops->check_iotlb(be, n0, 1, IOMMU_TEST_IOTLB_DEFAULT), 0);
	e[1] = (mock_inv_t){ .flags = 0, .iotlb_id = MOCK_NESTED_DOMAIN_IOTLB_ID_MAX + 1 };
	num = 2;
	CU_ASSERT_EQUAL(inv_mock(n0, e, &num), -EINVAL);
	CU_ASSERT_EQUAL(num, 1);
	CU_ASSERT_EQUAL(be->ops->check_iotlb(be, n0, 2, IOMMU_TEST_IOTLB_DEFAULT), 0);

	e[0] = (mock_inv_t){ .iotlb_id = 1 };
	num = 1;
	CU_ASSERT_EQUAL(inv_mock(n0, e, &num), 0);
	CU_ASSERT_EQUAL(num, 1);
	CU_ASSERT_EQUAL(be->ops->check_iotlb(be, n0, 1, 0), 0);
	CU_ASSERT_EQUAL(be->ops->check_iotlb(be, n0, 3, IOMMU_TEST_IOTLB_DEFAULT), 0);
	e[0] = (mock_inv_t){ .iotlb_id = 2 };
	e[1] = (mock_inv_t){ .iotlb_id = 3 };
	num = 2;
	CU_ASSERT_EQUAL(inv_mock(n0, e, &num), 0);
	CU_ASSERT_EQUAL(num, 2);
	check_iotlb_all(n0, 0);

	/* FLAG_ALL ignores iotlb_id for the effect but still range checks it. */
	e[0] = (mock_inv_t){ .flags = IOMMU_TEST_INVALIDATE_FLAG_ALL, .iotlb_id = 4 };
	num = 1;
	CU_ASSERT_EQUAL(inv_mock(n1, e, &num), -EINVAL);
	check_iotlb_all(n1, IOMMU_TEST_IOTLB_DEFAULT);
	e[0].iotlb_id = 2;
	num = 1;
	CU_ASSERT_EQUAL(inv_mock(n1, e, &num), 0);
	CU_ASSERT_EQUAL(num, 1);
	check_iotlb_all(n1, 0);
	sim_down();
}

static void test_check_iotlb(void)
{
	uint32_t m, v;

	sim_up();
	m = alloc_mock("mock1", 0x1234);
	v = alloc_vtd("vtd0");
	check_iotlb_all(m, 0x1234);
	CU_ASSERT_EQUAL(be->ops->check_iotlb(be, 999, 0, 0x1234), -ENOENT);
	CU_ASSERT_EQUAL(be->ops->check_iotlb(be, 4, 0, 0x1234), -ENOENT); /* parent */
	CU_ASSERT_EQUAL(be->ops->check_iotlb(be, v, 0, 0), -EINVAL);      /* VT-d */
	CU_ASSERT_EQUAL(be->ops->check_iotlb(be, m, 4, 0x1234), -EINVAL);
	CU_ASSERT_EQUAL(be->ops->check_iotlb(be, m, 0, 0x1235), -EINVAL);
	sim_down();
}

/* --- VT-d driver rules and IOTLB model ----------------------------------- */

static void test_vtd_entry_rules(void)
{
	vtd_inv_t e[2];
	uint32_t v, num;

	sim_up();
	v = alloc_vtd("vtd0");
	populate_both(v, 0, 64);
	memset(e, 0, sizeof(e));
	e[0] = (vtd_inv_t){ .addr = 0, .npages = 1, .flags = 2 };
	num = 1;
	CU_ASSERT_EQUAL(inv_vtd(v, e, &num, NULL), -EOPNOTSUPP);
	e[0] = (vtd_inv_t){ .addr = 0, .npages = 1, .__reserved = 1 };
	num = 1;
	CU_ASSERT_EQUAL(inv_vtd(v, e, &num, NULL), -EOPNOTSUPP);
	e[0] = (vtd_inv_t){ .addr = 0x800, .npages = 1 };
	num = 1;
	CU_ASSERT_EQUAL(inv_vtd(v, e, &num, NULL), -EINVAL);
	e[0] = (vtd_inv_t){ .addr = PG, .npages = UINT64_MAX };
	num = 1;
	CU_ASSERT_EQUAL(inv_vtd(v, e, &num, NULL), -EINVAL);
	CU_ASSERT_EQUAL(num, 0);
	CU_ASSERT_EQUAL(q_iotlb(v, 0, 64), 64);

	/* Partial failure: entry 0 takes effect, entry 1 is rejected. */
	e[0] = (vtd_inv_t){ .addr = 0, .npages = 2 };
	e[1] = (vtd_inv_t){ .addr = 8 * PG + 1, .npages = 2 };
	num = 2;
	CU_ASSERT_EQUAL(inv_vtd(v, e, &num, NULL), -EINVAL);
	CU_ASSERT_EQUAL(num, 1);
	CU_ASSERT_EQUAL(q_iotlb(v, 0, 64), 62);
	CU_ASSERT_EQUAL(q_iotlb(v, 8 * PG, 2), 2);
	/* npages 0 is not rejected by the kernel; it covers nothing. */
	e[0] = (vtd_inv_t){ .addr = 16 * PG, .npages = 0 };
	num = 1;
	CU_ASSERT_EQUAL(inv_vtd(v, e, &num, NULL), 0);
	CU_ASSERT_EQUAL(num, 1);
	CU_ASSERT_EQUAL(q_iotlb(v, 0, 64), 62);
	sim_down();
}

static void test_vtd_leaf_vs_nonleaf(void)
{
	vtd_inv_t e;
	uint32_t v, num;

	sim_up();
	v = alloc_vtd("vtd0");
	populate_both(v, 0x10000, 16);
	CU_ASSERT_EQUAL(q_iotlb(v, 0, UINT64_MAX), 16);
	/* Leaf: IOTLB only, exactly the range (no aligned-block rounding). */
	e = (vtd_inv_t){ .addr = 0x11000, .npages = 3, .flags = IOMMU_VTD_INV_FLAGS_LEAF };
	num = 1;
	CU_ASSERT_EQUAL(inv_vtd(v, &e, &num, NULL), 0);
	CU_ASSERT_EQUAL(q_iotlb(v, 0x10000, 16), 13);
	CU_ASSERT_EQUAL(q_iotlb(v, 0x10000, 1), 1);
	CU_ASSERT_EQUAL(q_iotlb(v, 0x14000, 1), 1);
	CU_ASSERT_EQUAL(q_psc(v, 0x10000, 16), 16);
	/* Non-leaf: both caches. */
	e = (vtd_inv_t){ .addr = 0x18000, .npages = 2 };
	num = 1;
	CU_ASSERT_EQUAL(inv_vtd(v, &e, &num, NULL), 0);
	CU_ASSERT_EQUAL(q_iotlb(v, 0x10000, 16), 11);
	CU_ASSERT_EQUAL(q_psc(v, 0x10000, 16), 14);
	CU_ASSERT_EQUAL(q_psc(v, 0x18000, 2), 0);
	sim_down();
}

static void test_vtd_flush_all(void)
{
	vtd_inv_t e = { .addr = 0, .npages = UINT64_MAX, .flags = IOMMU_VTD_INV_FLAGS_LEAF };
	uint32_t v, other, num;

	sim_up();
	v = alloc_vtd("vtd0");
	other = alloc_vtd("vtd0");
	populate_both(v, 0, 1);
	populate_both(v, 0x7f000000, 300);
	populate_both(v, LAST_PAGE, 1);
	populate_both(other, 0, 8);
	num = 1;
	CU_ASSERT_EQUAL(inv_vtd(v, &e, &num, NULL), 0);
	CU_ASSERT_EQUAL(q_iotlb(v, 0, UINT64_MAX), 0);
	CU_ASSERT_EQUAL(q_psc(v, 0, UINT64_MAX), 302);
	e.flags = 0;
	num = 1;
	CU_ASSERT_EQUAL(inv_vtd(v, &e, &num, NULL), 0);
	CU_ASSERT_EQUAL(q_psc(v, 0, UINT64_MAX), 0);
	/* Per HWPT: the other one is untouched. */
	CU_ASSERT_EQUAL(q_iotlb(other, 0, UINT64_MAX), 8);
	sim_down();
}

static void test_vtd_top_of_space(void)
{
	vtd_inv_t e;
	uint32_t v, num;

	sim_up();
	v = alloc_vtd("vtd0");
	CU_ASSERT_EQUAL(be->ops->sim_populate(be, v, LAST_PAGE, 1, SIM_KIND_IOTLB), 0);
	CU_ASSERT_EQUAL(be->ops->sim_populate(be, v, LAST_PAGE, 2, SIM_KIND_IOTLB), -EINVAL);
	CU_ASSERT_EQUAL(be->ops->sim_populate(be, v, LAST_PAGE - 15 * PG, 16, SIM_KIND_PSC), 0);
	CU_ASSERT_EQUAL(q_iotlb(v, LAST_PAGE, UINT64_MAX - 1), 1);
	CU_ASSERT_EQUAL(q_psc(v, LAST_PAGE - 15 * PG, 1000), 16);
	/* Past the top clamps, never wraps to page 0. */
	CU_ASSERT_EQUAL(be->ops->sim_populate(be, v, 0, 4, SIM_KIND_IOTLB), 0);
	e = (vtd_inv_t){ .addr = LAST_PAGE - PG, .npages = 1000 };
	num = 1;
	CU_ASSERT_EQUAL(inv_vtd(v, &e, &num, NULL), 0);
	CU_ASSERT_EQUAL(q_iotlb(v, LAST_PAGE, 1), 0);
	CU_ASSERT_EQUAL(q_iotlb(v, 0, 4), 4);
	CU_ASSERT_EQUAL(q_psc(v, LAST_PAGE - 15 * PG, 16), 14);
	e = (vtd_inv_t){ .addr = LAST_PAGE - 15 * PG, .npages = UINT64_MAX - 1 };
	num = 1;
	CU_ASSERT_EQUAL(inv_vtd(v, &e, &num, NULL), 0);
	CU_ASSERT_EQUAL(q_psc(v, 0, UINT64_MAX), 0);
	CU_ASSERT_EQUAL(q_iotlb(v, 0, UINT64_MAX), 4);
	sim_down();
}

static void test_populate_errors(void)
{
	uint64_t t, p;
	uint32_t v, m;

	sim_up();
	v = alloc_vtd("vtd1");
	m = alloc_mock("mock0", 0);
	CU_ASSERT_EQUAL(be->ops->sim_populate(be, 999, 0, 1, SIM_KIND_IOTLB), -ENOENT);
	CU_ASSERT_EQUAL(be->ops->sim_populate(be, 3, 0, 1, SIM_KIND_IOTLB), -ENOENT);
	CU_ASSERT_EQUAL(be->ops->sim_populate(be, m, 0, 1, SIM_KIND_IOTLB), -EINVAL);
	CU_ASSERT_EQUAL(be->ops->sim_populate(be, v, 0x10, 1, SIM_KIND_IOTLB), -EINVAL);
	CU_ASSERT_EQUAL(be->ops->sim_populate(be, v, 0, 0, SIM_KIND_IOTLB), -EINVAL);
	CU_ASSERT_EQUAL(be->ops->sim_populate(be, v, 0, 1, 0), -EINVAL);
	CU_ASSERT_EQUAL(be->ops->sim_populate(be, v, 0, 1, 3), -EINVAL);
	CU_ASSERT_EQUAL(be->ops->sim_query(be, v, 0x10, 1, &t, &p), -EINVAL);
	CU_ASSERT_EQUAL(be->ops->sim_query(be, m, 0, 1, &t, &p), -EINVAL);
	CU_ASSERT_EQUAL(be->ops->sim_query(be, 999, 0, 1, &t, &p), -ENOENT);
	CU_ASSERT_EQUAL(be->ops->sim_query(be, v, 0, 1, NULL, NULL), 0);
	sim_down();
}

/* --- fault injection ----------------------------------------------------- */

static void three_entries(vtd_inv_t *e)
{
	e[0] = (vtd_inv_t){ .addr = 0x0000, .npages = 2 };
	e[1] = (vtd_inv_t){ .addr = 0x4000, .npages = 2 };
	e[2] = (vtd_inv_t){ .addr = 0x8000, .npages = 2 };
}

static void test_fault_index(void)
{
	/* Zero on the call; 77 past the stop shows the sim never reads that far. */
	uint32_t hw[3] = {0, 0, 77};
	vtd_inv_t e[3];
	uint32_t v, num;

	sim_up();
	v = alloc_vtd("vtd0");
	populate_both(v, 0, 16);
	three_entries(e);
	CU_ASSERT_EQUAL(inject(FAULT_AT_INDEX, 0, 1, 0, -EIO, 5, 1), 0);
	/* A shorter submission does not reach the index nor use up the count. */
	num = 1;
	CU_ASSERT_EQUAL(inv_vtd(v, e, &num, NULL), 0);
	num = 3;
	CU_ASSERT_EQUAL(inv_vtd(v, e, &num, hw), -EIO);
	CU_ASSERT_EQUAL(num, 1);
	CU_ASSERT_EQUAL(hw[0], 0);
	CU_ASSERT_EQUAL(hw[1], 5);
	CU_ASSERT_EQUAL(hw[2], 77);
	CU_ASSERT_EQUAL(q_iotlb(v, 0x4000, 2), 2); /* faulted: still cached */
	CU_ASSERT_EQUAL(q_iotlb(v, 0x8000, 2), 2); /* not attempted */
	/* count 1: spent. */
	memset(hw, 0, sizeof(hw));
	num = 3;
	CU_ASSERT_EQUAL(inv_vtd(v, e, &num, hw), 0);
	CU_ASSERT_EQUAL(num, 3);
	CU_ASSERT_EQUAL(hw[1], 0);
	CU_ASSERT_EQUAL(q_iotlb(v, 0, 16), 10);
	sim_down();
}

static void test_fault_after_validation(void)
{
	vtd_inv_t e[2] = { { .addr = 0, .npages = 1 }, { .addr = 1, .npages = 1 } };
	uint32_t v, num;

	sim_up();
	v = alloc_vtd("vtd0");
	CU_ASSERT_EQUAL(inject(FAULT_AT_INDEX, 0, 1, 0, -ETIMEDOUT, 0, 1), 0);
	/* The kernel's own check answers first and the fault is not spent. */
	num = 2;
	CU_ASSERT_EQUAL(inv_vtd(v, e, &num, NULL), -EINVAL);
	CU_ASSERT_EQUAL(num, 1);
	e[1].addr = PG;
	num = 2;
	CU_ASSERT_EQUAL(inv_vtd(v, e, &num, NULL), -ETIMEDOUT);
	CU_ASSERT_EQUAL(num, 1);
	sim_down();
}

static void test_fault_addr(void)
{
	vtd_inv_t e[3], all = { .addr = 0, .npages = UINT64_MAX };
	uint32_t v, other, num;

	sim_up();
	v = alloc_vtd("vtd0");
	other = alloc_vtd("vtd0");
	populate_both(v, 0, 16);
	three_entries(e);
	/* Page 0x9000 lies in entry 2 only; filtered to HWPT v. */
	CU_ASSERT_EQUAL(inject(FAULT_AT_ADDR, v, 0, 0x9abc, -EIO, 0, 0), 0);
	num = 3;
	CU_ASSERT_EQUAL(inv_vtd(other, e, &num, NULL), 0);
	CU_ASSERT_EQUAL(num, 3);
	num = 3;
	CU_ASSERT_EQUAL(inv_vtd(v, e, &num, NULL), -EIO);
	CU_ASSERT_EQUAL(num, 2);
	CU_ASSERT_EQUAL(q_iotlb(v, 0, 16), 12);
	/* count 0: fires until cleared; flush-all covers every page. */
	num = 1;
	CU_ASSERT_EQUAL(inv_vtd(v, &all, &num, NULL), -EIO);
	CU_ASSERT_EQUAL(q_iotlb(v, 0, 16), 12);
	CU_ASSERT_EQUAL(inject(FAULT_CLEAR, 0, 0, 0, 0, 0, 0), 0);
	num = 1;
	CU_ASSERT_EQUAL(inv_vtd(v, &all, &num, NULL), 0);
	CU_ASSERT_EQUAL(q_iotlb(v, 0, 16), 0);
	sim_down();
}

static void test_fault_hw_error_only(void)
{
	uint32_t hw[3] = {0, 0, 0};
	mock_inv_t me = { .iotlb_id = 2 };
	vtd_inv_t e[3];
	uint32_t v, m, num;

	sim_up();
	v = alloc_vtd("vtd0");
	m = alloc_mock("mock0", 7);
	populate_both(v, 0, 16);
	three_entries(e);
	/* errno 0: the entry is handled, reports hw_error, does not take effect. */
	CU_ASSERT_EQUAL(inject(FAULT_AT_INDEX, 0, 0, 0, 0, 2, 2), 0);
	num = 3;
	CU_ASSERT_EQUAL(inv_vtd(v, e, &num, hw), 0);
	CU_ASSERT_EQUAL(num, 3);
	CU_ASSERT_EQUAL(hw[0], 2);
	CU_ASSERT_EQUAL(hw[1], 0);
	CU_ASSERT_EQUAL(hw[2], 0);
	CU_ASSERT_EQUAL(q_iotlb(v, 0, 2), 2);
	CU_ASSERT_EQUAL(q_iotlb(v, 0x4000, 2), 0);
	CU_ASSERT_EQUAL(q_iotlb(v, 0x8000, 2), 0);
	/* The mock driver is faulted by index too (second and last firing). */
	num = 1;
	CU_ASSERT_EQUAL(inv_mock(m, &me, &num), 0);
	CU_ASSERT_EQUAL(num, 1);
	CU_ASSERT_EQUAL(be->ops->check_iotlb(be, m, 2, 7), 0);
	num = 1;
	CU_ASSERT_EQUAL(inv_mock(m, &me, &num), 0);
	CU_ASSERT_EQUAL(be->ops->check_iotlb(be, m, 2, 0), 0);
	/* FAULT_AT_ADDR never matches selftest entries. */
	CU_ASSERT_EQUAL(inject(FAULT_AT_ADDR, 0, 0, 0, -EIO, 0, 0), 0);
	me.iotlb_id = 1;
	num = 1;
	CU_ASSERT_EQUAL(inv_mock(m, &me, &num), 0);
	sim_down();
}

static void test_fault_validation(void)
{
	const char *err = NULL;
	mock_inv_t me = { 0 };
	uint32_t m, num;

	sim_up();
	CU_ASSERT_EQUAL(inject(3, 0, 0, 0, -EIO, 0, 0), -EINVAL);
	CU_ASSERT_EQUAL(inject(FAULT_AT_INDEX, 0, 0, 0, EIO, 0, 0), -EINVAL);
	CU_ASSERT_EQUAL(inject(FAULT_AT_INDEX, 0, 0, 0, 0, 0, 0), -EINVAL);
	sim_down();

	/* cfg->sim_fault is in force from open. */
	cfg_default(&cfg);
	cfg.sim_fault = (struct backend_fault){ .mode = FAULT_AT_INDEX, .error = -ENOSPC };
	CU_ASSERT_EQUAL_FATAL(backend_sim_open(&cfg, &be, &err), 0);
	m = alloc_mock("mock0", 1);
	num = 1;
	CU_ASSERT_EQUAL(inv_mock(m, &me, &num), -ENOSPC);
	CU_ASSERT_EQUAL(num, 0);
	sim_down();
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void test_fault_latency(void)
{
	struct backend_fault f = { .mode = FAULT_CLEAR, .latency_us = 20000 };
	uint64_t t0;
	uint32_t num = 0;

	sim_up();
	CU_ASSERT_EQUAL(be->ops->inject_fault(be, &f), 0);
	t0 = now_us();
	CU_ASSERT_EQUAL(inv_raw(999, 0, NULL, 0, &num, NULL), -ENOENT);
	CU_ASSERT(now_us() - t0 >= 20000);
	f.latency_us = 0;
	CU_ASSERT_EQUAL(be->ops->inject_fault(be, &f), 0);
	t0 = now_us();
	CU_ASSERT_EQUAL(inv_raw(999, 0, NULL, 0, &num, NULL), -ENOENT);
	CU_ASSERT(now_us() - t0 < 20000);
	sim_down();
}

/* --- main ---------------------------------------------------------------- */

static const struct unit_case tests[] = {
	{ "iset basic", test_iset_basic },
	{ "iset random vs bitmap", test_iset_random },
	{ "open: devices and caps", test_open_devices_caps },
	{ "open: rejects bad config", test_open_rejects },
	{ "alloc: kernel errors", test_alloc_errors },
	{ "alloc: ids", test_alloc_ids },
	{ "destroy: EBUSY", test_destroy_busy },
	{ "attach/detach rules", test_attach_rules },
	{ "attach across devices (kernel parity)", test_attach_cross_device },
	{ "unmap: empty IOAS", test_unmap_empty_ioas },
	{ "invalidate: core checks", test_inv_core_checks },
	{ "invalidate: paging HWPT per sim_kernel", test_inv_wrong_object_per_kernel },
	{ "invalidate: 2^19 entries", test_inv_max_entries },
	{ "invalidate: probe and data type", test_inv_probe_and_type },
	{ "invalidate: entry_len", test_inv_entry_len },
	{ "mock: selftest sequence", test_mock_invalidate },
	{ "mock: check_iotlb", test_check_iotlb },
	{ "vtd: entry rules", test_vtd_entry_rules },
	{ "vtd: leaf vs non-leaf", test_vtd_leaf_vs_nonleaf },
	{ "vtd: flush-all", test_vtd_flush_all },
	{ "vtd: top of address space", test_vtd_top_of_space },
	{ "vtd: populate/query errors", test_populate_errors },
	{ "fault: at index, count", test_fault_index },
	{ "fault: after kernel checks", test_fault_after_validation },
	{ "fault: at addr, clear", test_fault_addr },
	{ "fault: hw_error only", test_fault_hw_error_only },
	{ "fault: validation, config", test_fault_validation },
	{ "fault: latency", test_fault_latency },
};

int main(void)
{
	return unit_run("sim", UNIT_CASES(tests));
}
