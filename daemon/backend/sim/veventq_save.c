// SPDX-License-Identifier: MIT
/*
 * vEVENTQs' queues in the sim's saved state ("veventq_queues"), for a
 * restarted daemon: on the kernel a vEVENTQ lives on in the iommufd (its
 * fd kept in the fd store) with its deliver list (records not read yet,
 * a LOST_EVENTS header last if it overflowed), its count of normal
 * records and its next sequence number, and the driver keeps reporting
 * into it. The sim stands in for that. The objects themselves are in
 * "objects" (persist.c); here each one's type, depth and queue, and the
 * loader makes its eventfd anew (the fd's reference: users + 1) and
 * checks the queue is one the kernel could hold (on a vIOMMU, at most
 * depth normal records, a LOST_EVENTS header only last).
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

/* A record as [flags, sequence, "data in hex"] ("" for the LOST_EVENTS header). */
static struct json_object *rec_to_json(const struct sim_vevent *r)
{
	char hex[2 * NESTD_VEVENT_DATA_MAX + 1];
	struct json_object *a = json_object_new_array_ext(3);

	hex[0] = '\0';
	js_hex(hex, r->data, r->data_len);
	if (!a || js_push(a, json_object_new_uint64(r->hdr.flags)) ||
	    js_push(a, json_object_new_uint64(r->hdr.sequence)) ||
	    js_push(a, json_object_new_string(hex))) {
		json_object_put(a);
		return NULL;
	}
	return a;
}

int sim_veventqs_to_json(const struct sim_state *st, struct json_object *o)
{
	struct json_object *arr;

	/* States without vEVENTQs stay as earlier versions wrote them. */
	if (!st->n_veventqs)
		return 0;
	arr = js_add_new(o, "veventq_queues", true);
	if (!arr)
		return -ENOMEM;
	for (uint32_t i = 0; i < st->n_veventqs; i++) {
		const struct sim_veventq *q = &st->veventqs[i];
		struct json_object *j = json_object_new_object(), *recs;

		if (!j || js_push(arr, j) || js_add_u64(j, "id", q->id) ||
		    js_add_u64(j, "type", q->type) || js_add_u64(j, "depth", q->depth) ||
		    js_add_u64(j, "sequence", q->sequence))
			return -ENOMEM;
		recs = js_add_new(j, "deliver", true);
		for (uint32_t k = 0; recs && k < q->n_deliver; k++)
			if (js_push(recs, rec_to_json(&q->deliver[k])))
				return -ENOMEM;
		if (!recs)
			return -ENOMEM;
	}
	return 0;
}

static int u32_at(struct json_object *a, size_t i, uint32_t *v)
{
	struct json_object *x = json_object_array_get_idx(a, i);
	int64_t n;

	if (!json_object_is_type(x, json_type_int))
		return -EINVAL;
	n = json_object_get_int64(x);
	if (n < 0 || n > UINT32_MAX)
		return -EINVAL;
	*v = (uint32_t)n;
	return 0;
}

/* One record of q's list; the LOST_EVENTS header only last (iommufd_vevent_handler()). */
static int load_rec(struct sim_veventq *q, struct json_object *a, bool last)
{
	struct sim_vevent *r = &q->deliver[q->n_deliver];
	const uint32_t want = nestd_vevent_data_len(q->type);
	const char *hex;
	bool lost;

	if (!json_object_is_type(a, json_type_array) || json_object_array_length(a) != 3 ||
	    u32_at(a, 0, &r->hdr.flags) || u32_at(a, 1, &r->hdr.sequence) ||
	    !json_object_is_type(json_object_array_get_idx(a, 2), json_type_string) ||
	    r->hdr.flags & ~NESTD_VEVENTQ_FLAG_LOST_EVENTS ||
	    r->hdr.sequence > NESTD_VEVENT_SEQUENCE_MASK)
		return -EINVAL;
	lost = r->hdr.flags & NESTD_VEVENTQ_FLAG_LOST_EVENTS;
	hex = json_object_get_string(json_object_array_get_idx(a, 2));
	r->data_len = (uint32_t)strlen(hex) / 2;
	if ((lost && (!last || *hex)) || (!lost && (r->data_len != want || !want)) ||
	    strlen(hex) != 2 * r->data_len || js_unhex(hex, r->data, r->data_len))
		return -EINVAL;
	q->num_events += !lost;
	q->n_deliver++;
	return 0;
}

static int load_queue(struct sim_state *st, struct json_object *j, struct sim_veventq *q)
{
	struct json_object *recs = js_get(j, "deliver", json_type_array);
	size_t n = recs ? json_object_array_length(recs) : 0;
	uint32_t type, depth;

	if (js_u32(j, "type", &type) || js_u32(j, "depth", &depth) ||
	    js_u32(j, "sequence", &q->sequence) || !recs || type != q->type || depth != q->depth ||
	    q->sequence > NESTD_VEVENT_SEQUENCE_MASK || n > (size_t)depth + 1)
		return -EINVAL;
	(void)st;
	q->deliver = n ? calloc(n, sizeof(*q->deliver)) : NULL;
	if (n && !q->deliver)
		return -ENOMEM;
	q->cap_deliver = (uint32_t)n;
	for (size_t i = 0; i < n; i++) {
		int rc = load_rec(q, json_object_array_get_idx(recs, i), i + 1 == n);

		if (rc)
			return rc;
	}
	return q->num_events <= q->depth ? 0 : -EINVAL;
}

int sim_veventqs_load(struct sim_state *st, struct json_object *o, const char **errmsg)
{
	struct json_object *arr = NULL;

	if (json_object_object_get_ex(o, "veventq_queues", NULL) &&
	    !(arr = js_get(o, "veventq_queues", json_type_array))) {
		*errmsg = "sim: malformed vEVENTQ queues";
		return -EINVAL;
	}
	for (uint32_t i = 0; i < st->n_objs; i++) {
		struct sim_obj *ob = &st->objs[i];
		struct sim_obj *v = sim_obj_find(st, ob->parent_id);
		struct json_object *j;
		struct sim_veventq *q;
		uint32_t type, depth;
		uint64_t one = 1;
		int rc;

		if (ob->type != SIM_OBJ_VEVENTQ)
			continue;
		j = js_find_id(arr, ob->id);
		/* Its type and depth live only here: a vEVENTQ without its queue is a lie. */
		if (!j || !v || v->type != SIM_OBJ_VIOMMU || js_u32(j, "type", &type) ||
		    js_u32(j, "depth", &depth) || !depth || depth > NESTD_VEVENTQ_MAX_DEPTH ||
		    type == NESTD_VEVENTQ_TYPE_DEFAULT) {
			*errmsg = "sim: a vEVENTQ without its vIOMMU or queue";
			return -EINVAL;
		}
		for (uint32_t k = 0; k < st->n_veventqs; k++)
			if (st->veventqs[k].viommu_id == v->id && st->veventqs[k].type == type) {
				*errmsg = "sim: two vEVENTQs of one type on a vIOMMU";
				return -EINVAL;
			}
		struct sim_veventq *nq =
		    array_room(st->veventqs, st->n_veventqs, &st->cap_veventqs, sizeof(*nq), 8);

		if (!nq)
			return -ENOMEM;
		st->veventqs = nq;
		q = &st->veventqs[st->n_veventqs];
		memset(q, 0, sizeof(*q));
		q->id = ob->id;
		q->viommu_id = v->id;
		q->type = type;
		q->depth = depth;
		q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (q->efd < 0)
			return -errno;
		st->n_veventqs++; /* counted now: sim_veventqs_free() frees it */
		ob->users++;	  /* the fd's reference: kept in the fd store on the kernel */
		rc = load_queue(st, j, q);
		if (rc) {
			if (rc == -EINVAL)
				*errmsg = "sim: malformed vEVENTQ queue";
			return rc;
		}
		if (q->n_deliver && write(q->efd, &one, sizeof(one)) != sizeof(one))
			return -errno;
	}
	return 0;
}
