/* SPDX-License-Identifier: MIT */
/*
 * iommu-nestctl probe DEVICE TYPE: can this daemon broker a nested HWPT of
 * TYPE on DEVICE for this caller? Walks what a VMM would do - the device is
 * offered, the type is offered, an allocation succeeds, the kernel's
 * empty-array invalidation probe accepts the paired invalidation type -
 * and destroys the temporary HWPT. Every step's answer is printed, so an
 * operator sees where it stops (e.g. EBUSY: another client holds it).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "nestctl.h"

struct probe_type {
	const char *name;
	uint32_t hwpt_type;
	uint32_t inv_type;
};

static const struct probe_type probe_types[] = {
    {"vtd-s1", IOMMU_NEST_HWPT_DATA_VTD_S1, IOMMU_NEST_INV_DATA_VTD_S1},
    {"selftest", IOMMU_NEST_HWPT_DATA_SELFTEST, IOMMU_NEST_INV_DATA_SELFTEST},
};

static const struct probe_type *find_type(const char *arg)
{
	uint32_t n;

	for (size_t i = 0; i < sizeof(probe_types) / sizeof(probe_types[0]); i++)
		if (!strcmp(arg, probe_types[i].name) || (!strcmp(arg, "vtd") && i == 0))
			return &probe_types[i];
	if (parse_u32(arg, &n))
		return NULL;
	for (size_t i = 0; i < sizeof(probe_types) / sizeof(probe_types[0]); i++)
		if (probe_types[i].hwpt_type == n)
			return &probe_types[i];
	fprintf(stderr, "iommu-nestctl: unknown HWPT type '%s' (vtd-s1, selftest)\n", arg);
	return NULL;
}

static bool device_offered(struct iommu_nest *h, const char *dev)
{
	for (size_t i = 0; i < iommu_nest_device_count(h); i++)
		if (!strcmp(iommu_nest_device(h, i), dev))
			return true;
	return false;
}

static bool type_offered(struct iommu_nest *h, uint32_t type)
{
	size_t n;
	const uint32_t *t = iommu_nest_hwpt_data_types(h, &n);

	for (size_t i = 0; i < n; i++)
		if (t[i] == type)
			return true;
	return false;
}

struct probe_result {
	bool device_offered;
	bool type_offered;
	int alloc; /* 0 or -errno; 1: not tried */
	uint32_t hwpt;
	int inv_probe; /* likewise */
	int destroy;   /* likewise */
	char why[256]; /* the daemon's reason for the first failure */
};

static int alloc_for(struct ctl *c, const char *dev, const struct probe_type *t, uint32_t *id)
{
	if (t->hwpt_type == IOMMU_NEST_HWPT_DATA_VTD_S1)
		return iommu_nest_alloc_vtd_s1(c->h, dev, 0, c->pgtbl, c->addr_width, id);
	return iommu_nest_alloc_selftest(c->h, dev, c->iotlb, id);
}

static void note(struct probe_result *r, struct ctl *c, int err)
{
	if (err && !r->why[0])
		snprintf(r->why, sizeof(r->why), "%s", iommu_nest_last_error(c->h));
}

static void run_probe(struct ctl *c, const char *dev, const struct probe_type *t,
		      struct probe_result *r)
{
	*r = (struct probe_result){.alloc = 1, .inv_probe = 1, .destroy = 1};
	r->device_offered = device_offered(c->h, dev);
	r->type_offered = type_offered(c->h, t->hwpt_type);
	/* Try even so: the daemon's own answer says more than our guess. */
	r->alloc = alloc_for(c, dev, t, &r->hwpt);
	note(r, c, r->alloc);
	if (r->alloc)
		return;
	r->inv_probe = iommu_nest_probe(c->h, r->hwpt, t->inv_type);
	note(r, c, r->inv_probe);
	r->destroy = iommu_nest_destroy(c->h, r->hwpt);
	note(r, c, r->destroy);
}

static const char *outcome(int rc)
{
	return rc == 1 ? "not tried" : rc ? errname(rc) : "ok";
}

static void print_probe(const struct ctl *c, const char *dev, const struct probe_type *t,
			const struct probe_result *r, bool ok)
{
	struct json_object *o;

	if (!c->json) {
		printf("probe %s on %s:\n", t->name, dev);
		printf("  %-28s %s\n", "device offered to us", r->device_offered ? "yes" : "no");
		printf("  %-28s %s\n", "HWPT type offered", r->type_offered ? "yes" : "no");
		printf("  %-28s %s", "allocate nested HWPT", outcome(r->alloc));
		if (!r->alloc)
			printf(" (hwpt %u)", r->hwpt);
		printf("\n  %-28s %s\n", "invalidation probe", outcome(r->inv_probe));
		printf("  %-28s %s\n", "destroy", outcome(r->destroy));
		if (r->why[0])
			printf("  reason: %s\n", r->why);
		printf("result: %s\n", ok ? "supported" : "not supported");
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "device", json_object_new_string(dev));
	json_object_object_add(o, "type", json_object_new_string(t->name));
	json_object_object_add(o, "device_offered", json_object_new_boolean(r->device_offered));
	json_object_object_add(o, "type_offered", json_object_new_boolean(r->type_offered));
	json_object_object_add(o, "alloc", json_object_new_string(outcome(r->alloc)));
	json_object_object_add(o, "invalidation_probe",
			       json_object_new_string(outcome(r->inv_probe)));
	json_object_object_add(o, "destroy", json_object_new_string(outcome(r->destroy)));
	json_object_object_add(o, "reason", json_object_new_string(r->why));
	json_object_object_add(o, "supported", json_object_new_boolean(ok));
	print_json(o, true);
}

int cmd_probe_device(struct ctl *c, const char *dev, const char *type)
{
	const struct probe_type *t = find_type(type);
	struct probe_result r;
	bool ok;

	if (!t)
		return 2;
	run_probe(c, dev, t, &r);
	ok = !r.alloc && !r.inv_probe;
	print_probe(c, dev, t, &r, ok);
	return ok ? 0 : 1;
}
