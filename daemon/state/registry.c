/* SPDX-License-Identifier: MIT */
#include "state/registry.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backend/iommufd_uapi.h"
#include "backend/viommu_uapi.h"

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
	device_bindings_init(reg, cfg);
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
	veventq_table_fini(&reg->veventqs);
	vobj_table_fini(&reg->vobjs);
	pasid_table_fini(&reg->pasids);
	device_bindings_fini(reg);
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

struct hwpt_entry *hwpt_registry_find(const struct hwpt_registry *reg, const struct backend *be,
				      uint32_t id)
{
	struct hwpt_entry *e = reg->buckets[bucket_of(reg, id)];

	for (; e; e = e->hash_next)
		if (e->id == id && e->be == be)
			return e;
	return NULL;
}

struct hwpt_entry *hwpt_registry_lookup_owned(const struct hwpt_registry *reg, uint32_t id,
					      const struct session *s)
{
	struct hwpt_entry *e = reg->buckets[bucket_of(reg, id)];

	/* Two VM contexts may both have an id N: the owner tells them apart. */
	for (; e; e = e->hash_next)
		if (e->id == id && s && e->owner == s)
			return e;
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
	case NESTD_HWPT_DATA_ARM_SMMUV3:
		/* The driver's nested domain takes none: commands go to its vIOMMU. */
		*inv_type = HWPT_INV_TYPE_NONE;
		return 0;
	default:
		return -EOPNOTSUPP;
	}
}
