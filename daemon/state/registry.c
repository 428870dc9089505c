/* SPDX-License-Identifier: MIT */
#include "state/registry.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backend/iommufd_uapi.h"

#define INITIAL_BUCKETS 64

static uint32_t bucket_of(const struct hwpt_registry *reg, uint32_t id)
{
	/* Object ids are small and dense; a multiplicative hash spreads them. */
	return (id * 2654435761u) & (reg->n_buckets - 1);
}

int hwpt_registry_init(struct hwpt_registry *reg, const struct config *cfg)
{
	memset(reg, 0, sizeof(*reg));
	reg->buckets = calloc(INITIAL_BUCKETS, sizeof(*reg->buckets));
	if (!reg->buckets)
		return -ENOMEM;
	reg->n_buckets = INITIAL_BUCKETS;
	for (uint32_t i = 0; i < cfg->n_devices; i++)
		reg->bindings[i].dev = &cfg->devices[i];
	reg->n_bindings = cfg->n_devices;
	return 0;
}

void hwpt_registry_fini(struct hwpt_registry *reg)
{
	for (uint32_t b = 0; b < reg->n_buckets; b++) {
		struct hwpt_entry *e = reg->buckets[b], *next;

		for (; e; e = next) {
			next = e->hash_next;
			free(e);
		}
	}
	free(reg->buckets);
	for (uint32_t i = 0; i < reg->n_bindings; i++)
		free(reg->bindings[i].maps);
	dirty_ids_free(&reg->dirty);
	memset(reg, 0, sizeof(*reg));
}

static int grow(struct hwpt_registry *reg)
{
	uint32_t old_n = reg->n_buckets;
	struct hwpt_entry **old = reg->buckets;
	struct hwpt_entry **nb = calloc((size_t)old_n * 2, sizeof(*nb));

	if (!nb)
		return -ENOMEM;
	reg->buckets = nb;
	reg->n_buckets = old_n * 2;
	for (uint32_t b = 0; b < old_n; b++) {
		struct hwpt_entry *e = old[b], *next;

		for (; e; e = next) {
			uint32_t h = bucket_of(reg, e->id);

			next = e->hash_next;
			e->hash_next = nb[h];
			nb[h] = e;
		}
	}
	free(old);
	return 0;
}

struct hwpt_entry *hwpt_registry_add(struct hwpt_registry *reg, const struct hwpt_entry *e)
{
	struct hwpt_entry *n;
	uint32_t h;

	if (reg->count >= reg->n_buckets && grow(reg))
		return NULL;
	n = malloc(sizeof(*n));
	if (!n)
		return NULL;
	*n = *e;
	n->pending_head = NULL;
	n->pending_tail = &n->pending_head;
	n->next_pending = NULL;
	h = bucket_of(reg, n->id);
	n->hash_next = reg->buckets[h];
	reg->buckets[h] = n;
	reg->count++;
	dirty_ids_add(&reg->dirty, n->id);
	return n;
}

void hwpt_registry_remove(struct hwpt_registry *reg, struct hwpt_entry *e)
{
	struct hwpt_entry **pp = &reg->buckets[bucket_of(reg, e->id)];

	for (; *pp; pp = &(*pp)->hash_next)
		if (*pp == e) {
			*pp = e->hash_next;
			reg->count--;
			dirty_ids_add(&reg->dirty, e->id);
			free(e);
			return;
		}
}

struct hwpt_entry *hwpt_registry_find(const struct hwpt_registry *reg, uint32_t id)
{
	struct hwpt_entry *e = reg->buckets[bucket_of(reg, id)];

	for (; e; e = e->hash_next)
		if (e->id == id)
			return e;
	return NULL;
}

struct hwpt_entry *hwpt_registry_lookup_owned(const struct hwpt_registry *reg, uint32_t id,
					      const struct session *s)
{
	struct hwpt_entry *e = hwpt_registry_find(reg, id);

	return e && e->owner == s ? e : NULL;
}

struct device_binding *hwpt_registry_binding(struct hwpt_registry *reg, const char *device)
{
	for (uint32_t i = 0; i < reg->n_bindings; i++)
		if (!strcmp(reg->bindings[i].dev->name, device))
			return &reg->bindings[i];
	return NULL;
}

void hwpt_registry_for_each(const struct hwpt_registry *reg,
			    void (*fn)(struct hwpt_entry *e, void *arg), void *arg)
{
	for (uint32_t b = 0; b < reg->n_buckets; b++)
		for (struct hwpt_entry *e = reg->buckets[b]; e; e = e->hash_next)
			fn(e, arg);
}

int hwpt_inv_type_for(uint32_t hwpt_data_type, uint32_t *inv_type)
{
	switch (hwpt_data_type) {
	case IOMMU_HWPT_DATA_VTD_S1:
		*inv_type = IOMMU_HWPT_INVALIDATE_DATA_VTD_S1;
		return 0;
	case IOMMU_HWPT_DATA_SELFTEST:
		*inv_type = IOMMU_HWPT_INVALIDATE_DATA_SELFTEST;
		return 0;
	default:
		return -EOPNOTSUPP;
	}
}

/* ---- guest memory per device ------------------------------------------- */

bool hwpt_registry_held_by_other(const struct device_binding *b, const struct session *s)
{
	return (b->hwpt_id && b->owner != s) || (b->n_maps && b->mem_owner != s);
}

uint64_t hwpt_registry_mapped_bytes(const struct hwpt_registry *reg, const struct session *s)
{
	uint64_t sum = 0;

	for (uint32_t i = 0; i < reg->n_bindings; i++)
		if (reg->bindings[i].n_maps && reg->bindings[i].mem_owner == s)
			sum += reg->bindings[i].mapped_bytes;
	return sum;
}

/* Index of the first area that ends at or after iova. */
static uint32_t map_first_from(const struct device_binding *b, uint64_t iova)
{
	uint32_t lo = 0, hi = b->n_maps;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (b->maps[mid].last < iova)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
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
	if (b->n_maps == b->cap_maps) {
		uint32_t cap = b->cap_maps ? 2 * b->cap_maps : 8;
		struct mem_map *m = realloc(b->maps, (size_t)cap * sizeof(*m));

		if (!m)
			return -ENOMEM;
		b->maps = m;
		b->cap_maps = cap;
	}
	memmove(&b->maps[i + 1], &b->maps[i], (size_t)(b->n_maps - i) * sizeof(*b->maps));
	b->maps[i] = (struct mem_map){ .iova = iova, .last = last };
	b->n_maps++;
	b->mapped_bytes += last - iova + 1;
	return 0;
}

int binding_map_span(const struct device_binding *b, uint64_t iova, uint64_t last,
		     uint32_t *first, uint32_t *count)
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
