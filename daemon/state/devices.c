/* SPDX-License-Identifier: MIT */
/*
 * Devices: bindings (who holds a device, which HWPT it is on) and the guest
 * memory in each device's stage 2, as sorted disjoint intervals.
 */
#include "state/devices.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "state/registry.h"
#include "util/search.h"
#include "util/common.h"

void device_bindings_init(struct hwpt_registry *reg, const struct config *cfg)
{
	for (uint32_t i = 0; i < cfg->n_devices; i++)
		reg->bindings[i].dev = &cfg->devices[i];
	reg->n_bindings = cfg->n_devices;
}

void device_bindings_fini(struct hwpt_registry *reg)
{
	for (uint32_t i = 0; i < reg->n_bindings; i++)
		free(reg->bindings[i].maps);
}

struct device_binding *hwpt_registry_binding(struct hwpt_registry *reg, const char *device)
{
	for (uint32_t i = 0; i < reg->n_bindings; i++)
		if (!strcmp(reg->bindings[i].dev->name, device))
			return &reg->bindings[i];
	return NULL;
}

/* ---- guest memory per device ------------------------------------------- */

bool hwpt_registry_held_by_other(const struct device_binding *b, const struct session *s)
{
	return (b->hwpt_id && b->owner != s) || (b->n_maps && b->mem_owner != s) ||
	       (b->opener && b->opener != s) || b->claim_orphan || b->stale ||
	       (b->n_pasids && b->pasid_owner != s);
}

uint64_t hwpt_registry_mapped_bytes(const struct hwpt_registry *reg, const struct session *s)
{
	uint64_t sum = 0;

	for (uint32_t i = 0; i < reg->n_bindings; i++)
		if (reg->bindings[i].n_maps && reg->bindings[i].mem_owner == s)
			sum += reg->bindings[i].mapped_bytes;
	return sum;
}

static bool map_last_ge(const void *arr, uint32_t i, uint64_t iova)
{
	return ((const struct mem_map *)arr)[i].last >= iova;
}

/* Index of the first area that ends at or after iova. */
static uint32_t map_first_from(const struct device_binding *b, uint64_t iova)
{
	return search_first_past(b->maps, b->n_maps, iova, map_last_ge);
}

bool binding_map_overlaps(const struct device_binding *b, uint64_t iova, uint64_t last)
{
	uint32_t i = map_first_from(b, iova);

	return i < b->n_maps && b->maps[i].iova <= last;
}

int binding_map_add(struct device_binding *b, uint64_t iova, uint64_t last)
{
	uint32_t i = map_first_from(b, iova);

	if (i < b->n_maps && b->maps[i].iova <= last)
		return -EEXIST;
	struct mem_map *m = array_room(b->maps, b->n_maps, &b->cap_maps, sizeof(*m), 8);

	if (!m)
		return -ENOMEM;
	b->maps = m;
	memmove(&b->maps[i + 1], &b->maps[i], (size_t)(b->n_maps - i) * sizeof(*b->maps));
	b->maps[i] = (struct mem_map){.iova = iova, .last = last};
	b->n_maps++;
	b->mapped_bytes += last - iova + 1;
	return 0;
}

int binding_map_span(const struct device_binding *b, uint64_t iova, uint64_t last, uint32_t *first,
		     uint32_t *count)
{
	uint32_t i = map_first_from(b, iova), j;

	for (j = i; j < b->n_maps && b->maps[j].iova <= last; j++)
		if (b->maps[j].iova < iova || b->maps[j].last > last)
			return -ENOENT;
	if (j == i)
		return -ENOENT;
	*first = i;
	*count = j - i;
	return 0;
}

void binding_map_remove(struct device_binding *b, uint32_t first, uint32_t count)
{
	for (uint32_t k = first; k < first + count; k++)
		b->mapped_bytes -= b->maps[k].last - b->maps[k].iova + 1;
	memmove(&b->maps[first], &b->maps[first + count],
		(size_t)(b->n_maps - first - count) * sizeof(*b->maps));
	b->n_maps -= count;
	if (!b->n_maps)
		b->mem_owner = NULL;
}
