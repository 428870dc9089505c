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
#include "persist/restart.h"
#include "state/faults.h"
#include "state/registry.h"
#include "util/log.h"

#define FAULT_BATCH 64

static void answer_invalid(struct session *s, uint32_t cookie)
{
	struct backend *be = s->faults->be;
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

/* Sends one event for a group of the book: 0, or -ENOBUFS / -EPIPE as session_send_event. */
static int send_fault(struct session *s, const struct fault_pending *p)
{
	IommuNest__Reply rep = IOMMU_NEST__REPLY__INIT;
	IommuNest__Event ev = IOMMU_NEST__EVENT__INIT;

	fill_event(&ev, &p->rec, p);
	ev.seq = s->ev_seq;
	ev.lost = s->ev_lost;
	rep.id = 0;
	rep.body_case = IOMMU_NEST__REPLY__BODY_EVENT;
	rep.event = &ev;
	return session_send_event(s, &rep, s->srv->cfg->quota.max_events);
}

/*
 * The book gets a group before it is sent, so an answer can never
 * outrun it; the last record of a group carries the cookie to answer
 * (IOMMU_PGFAULT_FLAGS_LAST_PAGE), and the book keeps that one. 0, or
 * why the group cannot be delivered (then dropped and answered).
 */
static int book_fault(struct session *s, const struct iommu_hwpt_pgfault *f,
		      struct fault_pending *p)
{
	struct backend *be = s->faults->be;
	const char *name = be->ops->dev_id_name(be, f->dev_id);
	struct device_binding *b = name ? hwpt_registry_binding(&s->srv->reg, name) : NULL;

	*p = (struct fault_pending){.cookie = f->cookie, .grpid = f->grpid, .rec = *f};
	snprintf(p->device, sizeof(p->device), "%s", name ? name : "");
	p->hwpt_id = b ? b->hwpt_id : 0;
	return f->flags & IOMMU_PGFAULT_FLAGS_LAST_PAGE ? client_faults_add(s->faults, p) : 0;
}

/* Once the book is saved: the event, or its loss (booked_rc: book_fault's answer). */
static void send_or_drop(struct session *s, const struct fault_pending *p, int booked_rc)
{
	bool last = p->rec.flags & IOMMU_PGFAULT_FLAGS_LAST_PAGE;
	int rc = booked_rc;

	s->ev_seq++;
	if (!rc)
		rc = send_fault(s, p);
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
		struct fault_pending *q = client_faults_find(s->faults, p->cookie);

		if (q)
			client_faults_remove(s->faults, q);
		answer_invalid(s, p->cookie);
	}
}

static void on_fault_readable(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;
	struct backend *be = s->faults->be;
	struct iommu_hwpt_pgfault recs[FAULT_BATCH];
	struct fault_pending p[FAULT_BATCH];
	int rcs[FAULT_BATCH];
	bool booked = false;
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
	for (int i = 0; i < n; i++) {
		rcs[i] = book_fault(s, &recs[i], &p[i]);
		booked |= !rcs[i] && (recs[i].flags & IOMMU_PGFAULT_FLAGS_LAST_PAGE);
	}
	/* Persist first, once per pass: a crash after a send must leave its group answerable. */
	if (booked)
		restart_save(s->srv->rs);
	for (int i = 0; i < n && !s->closing; i++)
		send_or_drop(s, &p[i], rcs[i]);
}

static int watch(struct session *s)
{
	struct server *srv = s->srv;

	s->ev_fault =
	    event_new(srv->base, s->faults->q.fd, EV_READ | EV_PERSIST, on_fault_readable, s);
	if (!s->ev_fault || event_add(s->ev_fault, NULL)) {
		if (s->ev_fault)
			event_free(s->ev_fault);
		s->ev_fault = NULL;
		return -ENOMEM;
	}
	return 0;
}

int events_open(struct session *s)
{
	struct server *srv = s->srv;
	int rc;

	if (s->faults)
		return 0;
	rc = client_faults_open(&srv->reg, vmctx_backend(&s->vm, srv->be), s->cred.uid, &s->faults);
	if (rc)
		return rc;
	rc = watch(s);
	if (rc) {
		client_faults_close(&srv->reg, s->faults);
		s->faults = NULL;
	}
	return rc;
}

/*
 * A queue the session reclaimed after a restart: the groups of its book
 * were delivered before the crash or were on their way (the book is
 * written before the send), and the daemon cannot know which reached the
 * client: every one is sent again, with its cookie, so none is lost (a
 * client that saw one already knows it by the cookie). Groups the kernel
 * still holds unread follow as they are read.
 */
int events_resume(struct session *s)
{
	int rc;

	if (!s->faults || s->ev_fault)
		return 0;
	rc = watch(s);
	for (uint32_t i = 0; !rc && i < s->faults->n_pending; i++) {
		s->ev_seq++;
		if (send_fault(s, &s->faults->pending[i])) {
			s->ev_lost++;
			s->srv->stats.events_lost++;
		} else {
			s->ev_lost = 0;
			s->srv->stats.events_sent++;
		}
	}
	return rc;
}
