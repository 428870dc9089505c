// SPDX-License-Identifier: MIT
/*
 * PageResponse: a client's answer to a page fault it was sent as an event
 * (net/events.c), relayed to the kernel as struct iommu_hwpt_page_response
 * on its fault queue. The daemon's rule comes first: only a group it
 * delivered to this client, not answered yet, on the HWPT or device the
 * client names (-ENOENT otherwise); then the kernel's answer, errno
 * passed through (-EINVAL for a code it does not know, or a cookie it
 * no longer has). TriggerIopf (test-only): IOMMU_TEST_OP_TRIGGER_IOPF.
 */
#include <errno.h>
#include <string.h>

#include "net/server.h"
#include "net/session.h"
#include "persist/restart.h"
#include "req/handlers.h"
#include "state/faults.h"
#include "state/registry.h"

/* TriggerIopf.count at most: a test's flood, not an unbounded loop in one pass. */
#define TRIGGER_IOPF_MAX 65536

static bool matches(const struct fault_pending *p, const IommuNest__PageResponse *m)
{
	if (m->hwpt_id && p->hwpt_id != m->hwpt_id)
		return false;
	if (m->device[0] && strcmp(p->device, m->device))
		return false;
	return p->grpid == m->grpid;
}

static bool code_known(uint32_t code)
{
	return code == IOMMUFD_PAGE_RESP_SUCCESS || code == IOMMUFD_PAGE_RESP_INVALID;
}

int handle_page_response(struct req_ctx *c)
{
	const IommuNest__PageResponse *m = c->msg->page_response;
	struct session *s = c->s;
	struct iommu_hwpt_page_response r = {.cookie = m->cookie, .code = m->code};
	struct backend *be;
	struct fault_pending *p;
	int rc;

	if (!m->hwpt_id && !m->device[0]) {
		reply_error(c->rep, -EINVAL, "PageResponse names neither a HWPT nor a device");
		return -EINVAL;
	}
	if (m->hwpt_id && !hwpt_registry_lookup_owned(&c->srv->reg, m->hwpt_id, s)) {
		reply_error(c->rep, -ENOENT, "hwpt %u: no such HWPT", m->hwpt_id);
		return -ENOENT;
	}
	p = s->faults ? client_faults_find(s->faults, m->cookie) : NULL;
	if (!p || !matches(p, m)) {
		reply_error(c->rep, -ENOENT,
			    "no unanswered fault with cookie %u, group %u was delivered to this "
			    "client there",
			    m->cookie, m->grpid);
		return -ENOENT;
	}
	be = s->faults->be;
	rc = be->ops->fault_respond(be, &s->faults->q, &r);
	/*
	 * With a code it knows, the kernel's -EINVAL says the cookie is gone
	 * (answered for us when the device left the HWPT): so is the entry.
	 */
	if (!rc || (rc == -EINVAL && code_known(m->code))) {
		client_faults_remove(s->faults, p);
		restart_save(c->srv->rs); /* answered: not sent again after a restart */
	}
	if (rc)
		reply_error(c->rep, rc, "page response (cookie %u, code %u): %s", m->cookie,
			    m->code, strerror(-rc));
	return rc;
}

bool has_trigger_iopf(const struct backend_ops *ops)
{
	return ops->trigger_iopf != NULL;
}

int handle_trigger_iopf(struct req_ctx *c)
{
	const IommuNest__TriggerIopf *m = c->msg->trigger_iopf;
	struct backend *be = req_be(c);
	struct backend_iopf t = {
	    .pasid = m->pasid, .grpid = m->grpid, .perm = m->perm, .addr = m->addr};
	uint32_t n = m->count ? m->count : 1;
	int rc = 0;

	if (n > TRIGGER_IOPF_MAX) {
		reply_error(c->rep, -EINVAL, "count %u is over %u", n, TRIGGER_IOPF_MAX);
		c->rep->limit = TRIGGER_IOPF_MAX;
		return -EINVAL;
	}
	for (uint32_t i = 0; i < n && !rc; i++)
		rc = be->ops->trigger_iopf(be, m->device, &t);
	if (rc)
		reply_error(c->rep, rc, "IOMMU_TEST_OP_TRIGGER_IOPF on %s: %s", m->device,
			    strerror(-rc));
	return rc;
}
