// SPDX-License-Identifier: MIT
/*
 * Fault objects' queues in the sim's saved state ("fault_queues"), for a
 * restarted daemon: on the kernel a fault object and its queues live on
 * in the iommufd (its fd kept in the fd store), with the groups not read
 * yet and the ones read but not answered (the response xarray, by
 * cookie), and a response written after the restart still reaches them.
 * The sim stands in for that. The objects themselves are in "objects"
 * (persist.c); here each one's two queues, and the loader makes its
 * eventfd anew (the fd's reference: users + 1) and checks every group
 * names a held device and a nested HWPT using the object.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "backend/sim/persist.h"
#include "backend/sim/state.h"
#include "util/json_util.h"
#include "util/common.h"

/* A group as [dev, hwpt_id, cookie, pasid, grpid, perm, addr]. */
#define GROUP_FIELDS 7

static struct json_object *group_to_json(const struct sim_iopf_group *g)
{
	const uint64_t v[GROUP_FIELDS] = {g->dev,	g->hwpt_id,  g->cookie,	 g->req.pasid,
					  g->req.grpid, g->req.perm, g->req.addr};
	struct json_object *a = json_object_new_array_ext(GROUP_FIELDS);

	for (int i = 0; a && i < GROUP_FIELDS; i++)
		if (js_push(a, json_object_new_uint64(v[i]))) {
			json_object_put(a);
			return NULL;
		}
	return a;
}

static int queue_to_json(struct json_object *o, const char *key, const struct sim_iopf_group *g,
			 uint32_t n)
{
	struct json_object *arr = js_add_new(o, key, true);

	for (uint32_t i = 0; arr && i < n; i++)
		if (js_push(arr, group_to_json(&g[i])))
			return -ENOMEM;
	return arr ? 0 : -ENOMEM;
}

int sim_faults_to_json(const struct sim_state *st, struct json_object *o)
{
	struct json_object *arr;

	/* States without fault objects stay as earlier versions wrote them. */
	if (!st->n_faults)
		return 0;
	arr = js_add_new(o, "fault_queues", true);
	if (!arr)
		return -ENOMEM;
	for (uint32_t i = 0; i < st->n_faults; i++) {
		const struct sim_fault *f = &st->faults[i];
		struct json_object *q = json_object_new_object();

		if (!q || js_push(arr, q) || js_add_u64(q, "id", f->id) ||
		    queue_to_json(q, "deliver", f->deliver, f->n_deliver) ||
		    queue_to_json(q, "resp", f->resp, f->n_resp))
			return -ENOMEM;
	}
	return 0;
}

static bool group_ok(struct sim_state *st, uint32_t fault_id, const struct sim_iopf_group *g,
		     bool delivered)
{
	struct sim_obj *h = sim_obj_find(st, g->hwpt_id);

	return g->dev < st->n_devs && st->devs[g->dev].present && h && h->type == SIM_OBJ_NESTED &&
	       h->fault_id == fault_id && (delivered ? g->cookie != 0 : g->cookie == 0);
}

static int load_queue(struct sim_state *st, struct json_object *q, const char *key,
		      struct sim_fault *f, bool delivered)
{
	struct json_object *arr = js_get(q, key, json_type_array);
	size_t n = arr ? json_object_array_length(arr) : 0;
	struct sim_iopf_group *g;

	if (!arr || n > UINT32_MAX / 2)
		return -EINVAL;
	g = n ? calloc(n, sizeof(*g)) : NULL;
	if (n && !g)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(arr, i);
		uint64_t v[GROUP_FIELDS];

		if (!json_object_is_type(e, json_type_array) ||
		    json_object_array_length(e) != GROUP_FIELDS)
			goto bad;
		for (int k = 0; k < GROUP_FIELDS; k++) {
			struct json_object *x = json_object_array_get_idx(e, (size_t)k);

			if (!json_object_is_type(x, json_type_int) || json_object_get_int64(x) < 0)
				goto bad;
			v[k] = json_object_get_uint64(x);
			if (k < GROUP_FIELDS - 1 && v[k] > UINT32_MAX)
				goto bad;
		}
		g[i] = (struct sim_iopf_group){.dev = (uint32_t)v[0],
					       .hwpt_id = (uint32_t)v[1],
					       .cookie = (uint32_t)v[2],
					       .req = {.pasid = (uint32_t)v[3],
						       .grpid = (uint32_t)v[4],
						       .perm = (uint32_t)v[5],
						       .addr = v[6]}};
		/* Cookies of delivered groups are distinct, as the xarray's indices. */
		for (size_t k = 0; delivered && k < i; k++)
			if (g[k].cookie == g[i].cookie)
				goto bad;
		if (!group_ok(st, f->id, &g[i], delivered))
			goto bad;
	}
	if (delivered) {
		f->resp = g;
		f->n_resp = f->cap_resp = (uint32_t)n;
	} else {
		f->deliver = g;
		f->n_deliver = f->cap_deliver = (uint32_t)n;
	}
	return 0;
bad:
	free(g);
	return -EINVAL;
}

int sim_faults_load(struct sim_state *st, struct json_object *o, const char **errmsg)
{
	struct json_object *arr = NULL;
	int rc;

	if (json_object_object_get_ex(o, "fault_queues", NULL) &&
	    !(arr = js_get(o, "fault_queues", json_type_array))) {
		*errmsg = "sim: malformed fault queues";
		return -EINVAL;
	}
	for (uint32_t i = 0; i < st->n_objs; i++) {
		struct sim_obj *ob = &st->objs[i];
		struct json_object *q;
		struct sim_fault *f;
		uint64_t one = 1;

		if (ob->type != SIM_OBJ_FAULT)
			continue;
		struct sim_fault *nf =
		    array_room(st->faults, st->n_faults, &st->cap_faults, sizeof(*nf), 8);

		if (!nf)
			return -ENOMEM;
		st->faults = nf;
		f = &st->faults[st->n_faults];
		memset(f, 0, sizeof(*f));
		f->id = ob->id;
		f->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (f->efd < 0)
			return -errno;
		st->n_faults++;
		ob->users++; /* the fd's reference: kept in the fd store on the kernel */
		q = js_find_id(arr, ob->id);
		rc = q ? load_queue(st, q, "deliver", f, false) : 0;
		if (!rc && q)
			rc = load_queue(st, q, "resp", f, true);
		if (rc) {
			*errmsg = "sim: malformed fault queue";
			return rc;
		}
		if (f->n_deliver && write(f->efd, &one, sizeof(one)) != sizeof(one))
			return -errno;
	}
	return 0;
}
