/* SPDX-License-Identifier: MIT */
/*
 * Test-only requests: CheckIotlb, SimPopulate, SimQuery, InjectFault. They
 * are served only when the config enables them (test_requests = true) and
 * the backend implements them; otherwise -EOPNOTSUPP.
 */
#include <errno.h>
#include <string.h>

#include "req/dispatch.h"
#include "net/server.h"
#include "net/session.h"

static bool test_allowed(struct session *s, const void *op, IommuNest__Reply *rep)
{
	if (!s->srv->cfg->test_requests) {
		reply_error(rep, -EOPNOTSUPP, "test requests are disabled in the configuration");
		return false;
	}
	if (!op) {
		reply_error(rep, -EOPNOTSUPP, "the %s backend does not support this request",
			    s->srv->be->ops->name);
		return false;
	}
	return true;
}

static bool owned(struct session *s, uint32_t id, IommuNest__Reply *rep)
{
	if (hwpt_registry_lookup_owned(&s->srv->reg, id, s))
		return true;
	reply_error(rep, -ENOENT, "hwpt %u: no such HWPT", id);
	return false;
}

static void finish(struct session *s, IommuNest__Reply *rep, int rc, const char *what)
{
	if (rc && !rep->status)
		reply_error(rep, rc, "%s: %s", what, strerror(-rc));
	if (rep->status)
		s->srv->stats.request_errors++;
	session_send_reply(s, rep);
}

void handle_check_iotlb(struct session *s, const IommuNest__Request *req, IommuNest__Reply *rep)
{
	const IommuNest__CheckIotlb *c = req->check_iotlb;
	struct backend *be = s->srv->be;
	int rc = 0;

	if (test_allowed(s, be->ops->check_iotlb, rep) && owned(s, c->hwpt_id, rep))
		rc = be->ops->check_iotlb(be, c->hwpt_id, c->iotlb_id, c->expected);
	finish(s, rep, rc, "check iotlb");
}

void handle_sim_populate(struct session *s, const IommuNest__Request *req, IommuNest__Reply *rep)
{
	const IommuNest__SimPopulate *p = req->sim_populate;
	struct backend *be = s->srv->be;
	int rc = 0;

	if (test_allowed(s, be->ops->sim_populate, rep) && owned(s, p->hwpt_id, rep))
		rc = be->ops->sim_populate(be, p->hwpt_id, p->addr, p->npages, p->kind);
	finish(s, rep, rc, "populate");
}

void handle_sim_query(struct session *s, const IommuNest__Request *req, IommuNest__Reply *rep)
{
	const IommuNest__SimQuery *q = req->sim_query;
	IommuNest__SimQueryReply qr = IOMMU_NEST__SIM_QUERY_REPLY__INIT;
	struct backend *be = s->srv->be;
	int rc = 0;

	if (test_allowed(s, be->ops->sim_query, rep) && owned(s, q->hwpt_id, rep)) {
		rc = be->ops->sim_query(be, q->hwpt_id, q->addr, q->npages, &qr.iotlb_pages,
					&qr.psc_pages);
		if (!rc) {
			rep->body_case = IOMMU_NEST__REPLY__BODY_SIM_QUERY;
			rep->sim_query = &qr;
		}
	}
	finish(s, rep, rc, "query");
}

void handle_inject_fault(struct session *s, const IommuNest__Request *req, IommuNest__Reply *rep)
{
	const IommuNest__InjectFault *f = req->inject_fault;
	struct backend *be = s->srv->be;
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
	int rc = 0;

	if (!test_allowed(s, be->ops->inject_fault, rep))
		return finish(s, rep, 0, "");
	if (f->mode > FAULT_AT_ADDR || f->error > 0 || f->error < -4095)
		rc = -EINVAL;
	else if (f->hwpt_id && !owned(s, f->hwpt_id, rep))
		return finish(s, rep, 0, "");
	else if ((!f->hwpt_id || f->latency_us) && !session_is_admin(s))
		/*
		 * hwpt_id 0 fires on whichever HWPT submits first, and the
		 * latency slows every submission: both reach other tenants.
		 */
		session_deny(s, rep, -EPERM, 0,
			     "a fault on any HWPT (hwpt_id 0) or with latency_us needs an admin; "
			     "name one of your HWPTs");
	else
		rc = be->ops->inject_fault(be, &bf);
	finish(s, rep, rc, "inject fault");
}
