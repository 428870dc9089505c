// SPDX-License-Identifier: MIT
/*
 * The simulator's object table, the lowest of its files: ids as iommufd's
 * xarray hands them out, lookup by id, insertion and removal of objects,
 * and devices by name. Everything above uses it; it calls only the
 * interval sets an object owns.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backend/sim/smmuv3.h"
#include "backend/sim/state.h"
#include "util/search.h"

static bool id_ge(const void *arr, uint32_t i, uint64_t id)
{
	return ((const struct sim_obj *)arr)[i].id >= id;
}

struct sim_obj *sim_obj_find(struct sim_state *st, uint32_t id)
{
	uint32_t i = search_first_past(st->objs, st->n_objs, id, id_ge);

	if (i < st->n_objs && st->objs[i].id == id)
		return &st->objs[i];
	return NULL;
}

int sim_dev_find(const struct sim_state *st, const char *name)
{
	uint32_t i;

	if (!name)
		return -ENODEV;
	for (i = 0; i < st->n_devs; i++)
		if (st->devs[i].present && !strcmp(st->devs[i].name, name))
			return (int)i;
	return -ENODEV;
}

int sim_dev_find_any(const struct sim_state *st, const char *name)
{
	for (uint32_t i = 0; name && i < st->n_devs; i++)
		if (!strcmp(st->devs[i].name, name))
			return (int)i;
	return -ENODEV;
}

struct sim_dev *sim_ioas_of(struct sim_state *st, uint32_t dev)
{
	return st->is_ctx ? &st->ioas : &st->devs[dev];
}

/*
 * iommufd allocates object ids from an XA_FLAGS_ALLOC1 xarray: the lowest
 * free id from 1 up, so a destroyed id comes back with the next object.
 * objs is sorted by id and objs[i].id >= i + 1; the first index where that
 * is strict is the first gap, and the lowest free id is that index + 1.
 */
static bool id_past_gap(const void *arr, uint32_t i, uint64_t unused)
{
	return ((const struct sim_obj *)arr)[i].id > i + 1;
}

static uint32_t lowest_free_index(const struct sim_state *st)
{
	return search_first_past(st->objs, st->n_objs, 0, id_past_gap);
}

/* Keeps objs sorted (see state.h). */
int sim_obj_new(struct sim_state *st, enum sim_obj_type type, uint32_t dev, struct sim_obj **out)
{
	uint32_t i = lowest_free_index(st);
	struct sim_obj *o;

	/*
	 * iommufd allocates ids with xa_limit_31b (main.c
	 * iommufd_object_alloc()); xa_alloc() answers -EBUSY when that space
	 * is exhausted.
	 */
	if (i + 1 > SIM_ID_MAX)
		return -EBUSY;
	if (st->n_objs == st->cap_objs) {
		uint32_t cap = st->cap_objs ? st->cap_objs * 2 : 16;

		o = realloc(st->objs, (size_t)cap * sizeof(*o));
		if (!o)
			return -ENOMEM;
		st->objs = o;
		st->cap_objs = cap;
	}
	memmove(&st->objs[i + 1], &st->objs[i], (size_t)(st->n_objs - i) * sizeof(*o));
	st->n_objs++;
	o = &st->objs[i];
	memset(o, 0, sizeof(*o));
	o->id = i + 1;
	/* next_id stays one past the highest id ever live (the state file checks it). */
	if (o->id >= st->next_id)
		st->next_id = o->id + 1;
	o->type = type;
	o->kind = st->devs[dev].kind;
	o->dev = dev;
	sim_iset_init(&o->iotlb_set);
	sim_iset_init(&o->psc_set);
	*out = o;
	return 0;
}

void sim_obj_remove(struct sim_state *st, struct sim_obj *o)
{
	uint32_t i = (uint32_t)(o - st->objs);

	sim_iset_free(&o->iotlb_set);
	smmuv3_model_destroy(&o->smmu);
	sim_iset_free(&o->psc_set);
	memmove(&st->objs[i], &st->objs[i + 1], (size_t)(st->n_objs - i - 1) * sizeof(*o));
	st->n_objs--;
}
