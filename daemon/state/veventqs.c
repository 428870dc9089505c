/* SPDX-License-Identifier: MIT */
/* The vEVENTQ table (see veventqs.h): a list, a client holds a few. */
#include "state/veventqs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

struct veventq *veventq_add(struct veventq_table *t, const struct veventq *v)
{
	struct veventq *n = malloc(sizeof(*n));

	if (!n)
		return NULL;
	*n = *v;
	n->next = t->head;
	t->head = n;
	t->count++;
	t->n_orphans += n->orphan;
	return n;
}

struct veventq *veventq_lookup_owned(const struct veventq_table *t, uint32_t id,
				     const struct session *owner)
{
	for (struct veventq *v = t->head; v; v = v->next)
		if (v->id == id)
			return owner && v->owner == owner ? v : NULL;
	return NULL;
}

static void unlink_entry(struct veventq_table *t, struct veventq *v)
{
	for (struct veventq **pp = &t->head; *pp; pp = &(*pp)->next)
		if (*pp == v) {
			*pp = v->next;
			t->count--;
			t->n_orphans -= v->orphan;
			return;
		}
}

int veventq_destroy(struct veventq_table *t, struct veventq *v)
{
	int rc;

	/* The reader first: the fd it watches is about to close. */
	if (v->unwatch)
		v->unwatch(v);
	rc = v->be->ops->veventq_free ? v->be->ops->veventq_free(v->be, &v->q) : -ENOTTY;
	unlink_entry(t, v);
	free(v);
	return rc;
}

uint32_t veventq_teardown(struct veventq_table *t, const struct session *owner, uint64_t session_id)
{
	uint32_t n = 0;

	for (struct veventq *v = t->head, *next; v; v = next) {
		uint32_t id = v->id;
		int rc;

		next = v->next;
		if (v->owner != owner)
			continue;
		rc = veventq_destroy(t, v);
		if (rc)
			log_event(LOG_ERR, LOG_EV_BACKEND_ERROR,
				  LOG_FIELDS(LF_UINT("session", session_id),
					     LF_STR("op", "destroy"), LF_UINT("id", id),
					     LF_INT("error", rc)),
				  "destroy veventq at disconnect: %s", strerror(-rc));
		n++;
	}
	return n;
}

uint32_t veventq_reap_orphans(struct veventq_table *t, const struct backend *only_be)
{
	uint32_t n = 0;

	for (struct veventq *v = t->head, *next; v; v = next) {
		uint32_t id = v->id, viommu = v->viommu_id;
		int rc;

		next = v->next;
		if (!v->orphan || (only_be && v->be != only_be))
			continue;
		rc = veventq_destroy(t, v);
		if (rc)
			log_event(LOG_ERR, LOG_EV_BACKEND_ERROR,
				  LOG_FIELDS(LF_STR("op", "destroy"), LF_UINT("id", id),
					     LF_INT("error", rc)),
				  "destroy orphan veventq %u: %s", id, strerror(-rc));
		else
			log_info("destroyed unclaimed veventq %u (viommu %u)", id, viommu);
		n++;
	}
	return n;
}

void veventq_table_fini(struct veventq_table *t)
{
	for (struct veventq *v = t->head, *next; v; v = next) {
		/* Sessions went first (their teardown destroyed theirs): nothing is watched. */
		next = v->next;
		free(v);
	}
	t->head = NULL;
	t->count = 0;
	t->n_orphans = 0;
}
