/* SPDX-License-Identifier: MIT */
/*
 * Test-only requests: CheckIotlb, SimPopulate, SimQuery, InjectFault. The
 * table serves them only when the config enables them (test_requests =
 * true) and the backend implements them (has_*); otherwise -EOPNOTSUPP.
 */
#include <errno.h>
#include <string.h>

#include "backend/viommu_uapi.h"
#include "net/server.h"
#include "net/session.h"
#include "req/handlers.h"

bool has_check_iotlb(const struct backend_ops *ops)
{
	return ops->check_iotlb != NULL;
}

bool has_sim_populate(const struct backend_ops *ops)
{
	return ops->sim_populate != NULL;
}

bool has_sim_query(const struct backend_ops *ops)
{
	return ops->sim_query != NULL;
}

bool has_inject_fault(const struct backend_ops *ops)
{
	return ops->inject_fault != NULL;
}

/* The backend's answer, with what was asked for in the reason. */
static int backend_result(IommuNest__Reply *rep, int rc, const char *what)
{
	if (rc)
		reply_error(rep, rc, "%s: %s", what, strerror(-rc));
	return rc;
}

int handle_check_iotlb(struct req_ctx *c)
{
	const IommuNest__CheckIotlb *m = c->msg->check_iotlb;
	struct backend *be = c->hwpt->be;

	return backend_result(
	    c->rep, be->ops->check_iotlb(be, m->hwpt_id, m->iotlb_id, m->expected), "check iotlb");
}

/* A nested HWPT on an ARM SMMUv3 vIOMMU: its caches are the host SMMU's, by ASID. */
static bool smmu_hwpt(const struct req_ctx *c)
{
	return c->hwpt->data_type == NESTD_HWPT_DATA_ARM_SMMUV3;
}

int handle_sim_populate(struct req_ctx *c)
{
	const IommuNest__SimPopulate *p = c->msg->sim_populate;
	struct backend *be = c->hwpt->be;

	if (smmu_hwpt(c) && be->ops->sim_smmu_populate)
		return backend_result(c->rep,
				      be->ops->sim_smmu_populate(be, p->hwpt_id, p->asid, p->addr,
								 p->npages, p->kind),
				      "populate");

	return backend_result(
	    c->rep, be->ops->sim_populate(be, p->hwpt_id, p->addr, p->npages, p->kind), "populate");
}

int handle_sim_query(struct req_ctx *c)
{
	const IommuNest__SimQuery *q = c->msg->sim_query;
	IommuNest__SimQueryReply *qr = &c->out->body.sim_query;
	struct backend *be = c->hwpt->be;
	int rc;

	iommu_nest__sim_query_reply__init(qr);
	if (smmu_hwpt(c) && be->ops->sim_smmu_query)
		rc = be->ops->sim_smmu_query(be, q->hwpt_id, q->asid, q->addr, q->npages,
					     &qr->iotlb_pages, &qr->psc_pages);
	else
		rc = be->ops->sim_query(be, q->hwpt_id, q->addr, q->npages, &qr->iotlb_pages,
					&qr->psc_pages);
	if (!rc) {
		c->rep->body_case = IOMMU_NEST__REPLY__BODY_SIM_QUERY;
		c->rep->sim_query = qr;
	}
	return backend_result(c->rep, rc, "query");
}

int handle_inject_fault(struct req_ctx *c)
{
	const IommuNest__InjectFault *f = c->msg->inject_fault;
	const struct hwpt_entry *e = NULL;
	/* The HWPT's instance; hwpt_id 0 (any): the admin's own context, or the root. */
	struct backend *be = req_be(c);
	struct backend_fault bf = {
	    .hwpt_id = f->hwpt_id,
	    .mode = f->mode,
	    .index = f->index,
	    .addr = f->addr,
	    .error = f->error,
	    .hw_error = f->hw_error,
	    .latency_us = f->latency_us,
	    .count = f->count,
	};

	if (f->mode > FAULT_AT_ADDR || f->error > 0 || f->error < -4095)
		return backend_result(c->rep, -EINVAL, "inject fault");
	if (f->hwpt_id && !(e = hwpt_registry_lookup_owned(&c->srv->reg, f->hwpt_id, c->s))) {
		reply_error(c->rep, -ENOENT, "hwpt %u: no such HWPT", f->hwpt_id);
		return -ENOENT;
	}
	if (e)
		be = e->be;
	if ((!f->hwpt_id || f->latency_us) && !req_is_admin(c->s)) {
		/*
		 * hwpt_id 0 fires on whichever HWPT submits first, and the
		 * latency slows every submission: both reach other tenants.
		 */
		req_deny(c->s, c->rep, -EPERM, 0,
			 "a fault on any HWPT (hwpt_id 0) or with latency_us needs an admin; "
			 "name one of your HWPTs");
		return -EPERM;
	}
	return backend_result(c->rep, be->ops->inject_fault(be, &bf), "inject fault");
}
