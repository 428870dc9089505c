// SPDX-License-Identifier: MIT
/*
 * Fault delivery: the fault fd of a client is a libevent read event; each
 * readable pass reads at most FAULT_BATCH records (whole groups, as the
 * kernel hands them out), so one busy device cannot starve the other
 * clients, and turns each into an Event for the owner. A group that cannot
 * reach the client (its event queue full, no memory) is answered INVALID
 * by the daemon at once: a page request left unanswered would stall the
 * device's PRI queue for as long as the client lives.
 */
#include "net/events.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <string.h>

#include "net/server.h"
#include "net/session.h"
#include "state/faults.h"
#include "state/registry.h"
#include "util/log.h"

#define FAULT_BATCH 64

static void answer_invalid(struct session *s, uint32_t cookie)
{
	struct backend *be = vmctx_backend(&s->vm, s->srv->be);
	struct iommu_hwpt_page_response r = {.cookie = cookie, .code = IOMMUFD_PAGE_RESP_INVALID};
	int rc = be->ops->fault_respond(be, &s->faults->q, &r);

	if (rc)
		log_warn("session %llu: answering dropped fault cookie %u: %s",
			 (unsigned long long)s->id, cookie, strerror(-rc));
}

static void fill_event(IommuNest__Event *ev, const struct iommu_hwpt_pgfault *f,
		       const struct fault_pending *p)
{
	ev->kind = IOMMU_NEST__EVENT_KIND__EVENT_FAULT;
	ev->hwpt_id = p->hwpt_id;
	ev->device = (char *)p->device;
	ev->flags = f->flags;
	ev->dev_id = f->dev_id;
	ev->pasid = f->pasid;
	ev->grpid = f->grpid;
	ev->perm = f->perm;
	ev->addr = f->addr;
	ev->length = f->length;
	ev->cookie = f->cookie;
}

/*
 * The book gets a group before it is sent, so an answer can never
 * outrun it; the last record of a group carries the cookie to answer
 * (IOMMU_PGFAULT_FLAGS_LAST_PAGE), and the book keeps that one.
 */
static void deliver_fault(struct session *s, const struct iommu_hwpt_pgfault *f)
{
	struct backend *be = vmctx_backend(&s->vm, s->srv->be);
	IommuNest__Reply rep = IOMMU_NEST__REPLY__INIT;
	IommuNest__Event ev = IOMMU_NEST__EVENT__INIT;
	struct fault_pending p = {.cookie = f->cookie, .grpid = f->grpid};
	const char *name = be->ops->dev_id_name(be, f->dev_id);
	struct device_binding *b = name ? hwpt_registry_binding(&s->srv->reg, name) : NULL;
	bool last = f->flags & IOMMU_PGFAULT_FLAGS_LAST_PAGE;
	int rc = 0;

	snprintf(p.device, sizeof(p.device), "%s", name ? name : "");
	p.hwpt_id = b ? b->hwpt_id : 0;
	s->ev_seq++;
	if (last)
		rc = client_faults_add(s->faults, &p);
	if (!rc) {
		fill_event(&ev, f, &p);
		ev.seq = s->ev_seq;
		ev.lost = s->ev_lost;
		rep.id = 0;
		rep.body_case = IOMMU_NEST__REPLY__BODY_EVENT;
		rep.event = &ev;
		rc = session_send_event(s, &rep, s->srv->cfg->quota.max_events);
	}
	if (!rc) {
		s->ev_lost = 0;
		s->srv->stats.events_sent++;
		return;
	}
	/* Said once per run of losses: the next delivered event reports the count. */
	if (!s->ev_lost++)
		log_warn("session %llu (%s): event queue full (max_events %u), dropping events",
			 (unsigned long long)s->id, s->name, s->srv->cfg->quota.max_events);
	s->srv->stats.events_lost++;
	if (last) {
		struct fault_pending *q = client_faults_find(s->faults, f->cookie);

		if (q)
			client_faults_remove(s->faults, q);
		answer_invalid(s, f->cookie);
	}
}

static void on_fault_readable(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	struct backend *be = vmctx_backend(&s->vm, s->srv->be);
	struct iommu_hwpt_pgfault recs[FAULT_BATCH];
	int n;

	(void)fd;
	(void)what;
	n = be->ops->fault_read(be, &s->faults->q, recs, FAULT_BATCH);
	if (n < 0) {
		/* Not transient (a group larger than the batch, a dead fd): stop, don't spin. */
		log_err("session %llu: reading fault object %u: %s; fault delivery stopped",
			(unsigned long long)s->id, s->faults->q.id, strerror(-n));
		event_del(s->ev_fault);
		return;
	}
	for (int i = 0; i < n && !s->closing; i++)
		deliver_fault(s, &recs[i]);
}

int events_open(struct session *s)
{
	struct server *srv = s->srv;
	int rc;

	if (s->faults)
		return 0;
	rc = client_faults_open(vmctx_backend(&s->vm, srv->be), &s->faults);
	if (rc)
		return rc;
	s->ev_fault =
	    event_new(srv->base, s->faults->q.fd, EV_READ | EV_PERSIST, on_fault_readable, s);
	if (!s->ev_fault || event_add(s->ev_fault, NULL)) {
		if (s->ev_fault)
			event_free(s->ev_fault);
		s->ev_fault = NULL;
		client_faults_close(vmctx_backend(&s->vm, srv->be), s->faults);
		s->faults = NULL;
		return -ENOMEM;
	}
	return 0;
}
