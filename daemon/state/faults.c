// SPDX-License-Identifier: MIT
/* A client's fault object and its book of unanswered groups (state/faults.h). */
#include "state/faults.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "state/registry.h"
#include "util/log.h"

void client_faults_link(struct hwpt_registry *reg, struct client_faults *cf, uint32_t no)
{
	cf->no = no;
	if (no > reg->fault_no)
		reg->fault_no = no;
	cf->next = reg->faults;
	reg->faults = cf;
}

int client_faults_open(struct hwpt_registry *reg, struct backend *be, uid_t uid,
		       struct client_faults **out)
{
	struct client_faults *cf;
	int rc;

	if (!be->ops->fault_alloc)
		return -EOPNOTSUPP;
	cf = calloc(1, sizeof(*cf));
	if (!cf)
		return -ENOMEM;
	rc = be->ops->fault_alloc(be, &cf->q);
	if (rc) {
		free(cf);
		return rc;
	}
	cf->be = be;
	cf->uid = uid;
	client_faults_link(reg, cf, reg->fault_no + 1);
	*out = cf;
	return 0;
}

struct fault_pending *client_faults_find(struct client_faults *cf, uint32_t cookie)
{
	for (uint32_t i = 0; i < cf->n_pending; i++)
		if (cf->pending[i].cookie == cookie)
			return &cf->pending[i];
	return NULL;
}

int client_faults_add(struct client_faults *cf, const struct fault_pending *p)
{
	struct fault_pending *old = client_faults_find(cf, p->cookie);

	if (old) {
		*old = *p;
		return 0;
	}
	if (cf->n_pending >= CLIENT_FAULTS_MAX)
		return -ENOBUFS;
	if (cf->n_pending == cf->cap_pending) {
		uint32_t cap = cf->cap_pending ? cf->cap_pending * 2 : 16;
		struct fault_pending *n = realloc(cf->pending, (size_t)cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		cf->pending = n;
		cf->cap_pending = cap;
	}
	cf->pending[cf->n_pending++] = *p;
	return 0;
}

void client_faults_remove(struct client_faults *cf, struct fault_pending *p)
{
	*p = cf->pending[--cf->n_pending];
}

void client_faults_forget_hwpt(struct client_faults *cf, uint32_t hwpt_id)
{
	uint32_t k = 0;

	for (uint32_t i = 0; i < cf->n_pending; i++)
		if (cf->pending[i].hwpt_id != hwpt_id)
			cf->pending[k++] = cf->pending[i];
	cf->n_pending = k;
}

void client_faults_close_orphans(struct hwpt_registry *reg, const struct backend *be)
{
	struct client_faults *cf, *next;

	for (cf = reg->faults; cf; cf = next) {
		next = cf->next;
		if (!cf->orphan || (be && cf->be != be))
			continue;
		log_info("closing unclaimed fault queue %u (uid %u, %u unanswered groups)", cf->no,
			 (unsigned)cf->uid, cf->n_pending);
		client_faults_close(reg, cf);
	}
}

void client_faults_close(struct hwpt_registry *reg, struct client_faults *cf)
{
	struct client_faults **pp;
	int rc;

	if (!cf)
		return;
	for (pp = &reg->faults; *pp && *pp != cf; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = cf->next;
	rc = cf->be->ops->fault_free(cf->be, &cf->q);
	if (rc)
		log_err("fault object %u: IOMMU_DESTROY: %s", cf->q.id, strerror(-rc));
	free(cf->pending);
	free(cf);
}
