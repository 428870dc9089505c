/* SPDX-License-Identifier: MIT */
/*
 * The vIOMMU rule table (tests/support/viommu_rules.c) through the daemon
 * and libiommu-nest: every row must give the errno and entry count the
 * 7.2 kernel gives directly (tests/kernel/ktest_viommu.c runs the same
 * rows on /dev/iommu, unit/test_sim_viommu_rules on the sim backend),
 * except where a row names the daemon's own documented rule. One client
 * per row on the mock devices st0 and st1; its disconnect clears the row's
 * objects. On the sim under 6.12 rules and on a 6.12 kernel every row's
 * first step, an AllocViommu, is -ENOTTY. The ARM SMMUv3 rows run on the
 * sim's smmuv3 devices only (no SMMUv3 on an x86 guest); there the sim
 * stands for the 7.2 driver and the daemon must answer as the sim does.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "viommu_rules.h"

#define K7_CONFIG "[daemon]\nsim_kernel = 7.0\n"

static const char *const devs[VR_N_DEVS] = {IT_ST0, IT_ST1, "sm0", "sm1"};

/* The sim's SMMUv3 devices; the iommufd backend has none (no SMMUv3 on x86). */
#define SMMU_DEVICES "[device sm0]\nkind = smmuv3\n[device sm1]\nkind = smmuv3\n"

struct it_ctx {
	struct nestd *d;
	struct iommu_nest *watch; /* stays connected: sees each row's client gone */
	struct iommu_nest *h;
	unsigned row;
};

static int it_begin(void *p)
{
	struct it_ctx *c = p;
	char name[32];

	snprintf(name, sizeof(name), "rules-%u", c->row++);
	c->h = it_connect(c->d, name);
	return c->h ? 0 : -ECONNREFUSED;
}

/* The disconnect destroys the row's HWPTs, vDEVICEs and vIOMMUs before the next row. */
static void it_end(void *p)
{
	struct it_ctx *c = p;

	it_close(c->h);
	c->h = NULL;
	CU_ASSERT(it_wait_sessions(c->watch, 1));
}

static bool it_dev(void *p, unsigned dev)
{
	struct it_ctx *c = p;

	return it_has_device(c->watch, devs[dev]);
}

static int it_viommu(void *p, unsigned dev, enum vr_parent parent, uint32_t type, uint32_t flags,
		     uint32_t *id)
{
	struct it_ctx *c = p;

	(void)parent; /* always the nest parent: the rows naming others skip here */
	return iommu_nest_alloc_viommu(c->h, devs[dev], type, flags, id);
}

static int it_vdev(void *p, uint32_t viommu, unsigned dev, uint64_t virt_id, uint32_t *id)
{
	struct it_ctx *c = p;

	return iommu_nest_alloc_vdevice(c->h, viommu, devs[dev], virt_id, id);
}

static int it_destroy(void *p, enum vr_kind kind, uint32_t id)
{
	struct it_ctx *c = p;

	if (kind == VR_KIND_HWPT)
		return iommu_nest_destroy(c->h, id);
	return iommu_nest_destroy_object(c->h, kind, id);
}

static int it_nested(void *p, unsigned dev, uint32_t viommu, uint32_t data_type, const void *data,
		     uint32_t len, uint32_t *id)
{
	struct it_ctx *c = p;

	return iommu_nest_alloc_on_viommu(c->h, devs[dev], viommu, data_type, 0, data_type, data,
					  len, id);
}

static int it_attach(void *p, unsigned dev, uint32_t hwpt)
{
	struct it_ctx *c = p;

	return iommu_nest_attach(c->h, devs[dev], hwpt);
}

static int it_detach(void *p, unsigned dev)
{
	struct it_ctx *c = p;

	return iommu_nest_detach(c->h, devs[dev]);
}

/*
 * entries_handled is the kernel's entry_num; the per-entry results must
 * tell the same: that many done, then at most the failing one, the rest
 * not attempted.
 */
static int it_inv(void *p, uint32_t id, uint32_t data_type, uint32_t entry_len, const void *entries,
		  uint32_t n, uint32_t *done)
{
	struct it_ctx *c = p;
	struct iommu_nest_entry_result res[VR_MAX_ENTRIES];
	struct iommu_nest_inv_summary sum;
	int rc;

	memset(res, 0xa5, sizeof(res));
	memset(&sum, 0xa5, sizeof(sum));
	rc = iommu_nest_invalidate_viommu(c->h, id, data_type, entry_len, entries, n, 0, res, &sum);
	*done = sum.entries_handled;
	for (uint32_t i = 0; i < n && sum.entries_handled <= n; i++) {
		bool failed = res[i].state == IOMMU_NEST_ENTRY_FAILED;

		if (i < sum.entries_handled) {
			CU_ASSERT_EQUAL(res[i].state, IOMMU_NEST_ENTRY_DONE);
		} else if (i == sum.entries_handled && failed) {
			CU_ASSERT_EQUAL(res[i].error, rc);
		} else {
			CU_ASSERT_EQUAL(res[i].state, IOMMU_NEST_ENTRY_NOT_ATTEMPTED);
		}
	}
	return rc;
}

static bool on_sim(void)
{
	const char *be = getenv("NESTD_BACKEND");

	return !be || !strcmp(be, "sim");
}

static void run_rows(const char *config, bool kernel7)
{
	struct it_ctx c = {.d = it_start(config)};
	const struct vr_driver drv = {
	    .side = VR_SIDE_DAEMON,
	    .ctx = &c,
	    .begin = it_begin,
	    .has_dev = it_dev,
	    .end = it_end,
	    .viommu_alloc = it_viommu,
	    .vdevice_alloc = it_vdev,
	    .destroy = it_destroy,
	    .alloc_nested = it_nested,
	    .attach = it_attach,
	    .detach = it_detach,
	    .invalidate = it_inv,
	};
	unsigned ran = 0, differs = 0, no_dev = 0;

	c.watch = it_connect(c.d, "rules-watch");
	if (!it_has_device(c.watch, IT_ST0) || !it_has_device(c.watch, IT_ST1)) {
		it_stop_ok(c.d);
		IT_SKIP("needs the mock devices st0, st1");
	}
	for (size_t i = 0; i < vr_n_rows; i++) {
		const struct vr_row *row = &vr_rows[i];
		char msg[200];
		enum vr_result r = vr_run(row, &drv, kernel7, msg, sizeof(msg));

		if (r == VR_FAIL)
			printf("\n  daemon row %s: %s\n", row->name, msg);
		else if (r == VR_PASS && row->daemon_differs && kernel7)
			printf("\n  daemon row %s: %s (the daemon's rule: %s)\n", row->name,
			       vr_errname(row->daemon_want, msg, sizeof(msg)), row->daemon_why);
		CU_ASSERT(r != VR_FAIL);
		ran += r != VR_SKIP;
		no_dev += r == VR_SKIP && !(row->unreachable & VR_SIDE_DAEMON);
		differs += r == VR_PASS && row->daemon_differs;
	}
	/*
	 * Two rows name a page table AllocViommu cannot name; every other one
	 * ran, but for the SMMUv3 rows off the sim.
	 */
	CU_ASSERT_EQUAL(ran + 2 + no_dev, vr_n_rows);
	if (on_sim())
		CU_ASSERT_EQUAL(no_dev, 0);
	CU_ASSERT(differs <= 6);
	it_stop_ok(c.d);
}

/* 7.x rules: the sim with sim_kernel = 7.0, or a 7.x kernel (6.12: all -ENOTTY). */
static void test_rows(void)
{
	run_rows(on_sim() ? K7_CONFIG SMMU_DEVICES : K7_CONFIG, it_kernel7_rules("7.0"));
}

/* 6.12 rules: the sim's default; on a 7.x kernel the rows above already ran. */
static void test_rows_6_12(void)
{
	if (it_kernel7_rules(NULL))
		IT_SKIP("the running kernel has vIOMMU objects (case rows ran them)");
	run_rows(on_sim() ? SMMU_DEVICES : NULL, false);
}

static const struct it_case cases[] = {
    {"rows", test_rows},
    {"rows_6_12", test_rows_6_12},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
	return it_main(argc, argv, "viommu_rules", cases);
}
