// SPDX-License-Identifier: MIT
/*
 * vEVENTQ delivery (net/vevents.h). A record is a struct
 * nestd_vevent_header and then the type's data; a LOST_EVENTS header has
 * none. The kernel's read never splits one, so what does not parse is a
 * broken fd: reading stops (logged), it does not spin.
 */
#include "net/vevents.h"

#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "backend/veventq_uapi.h"
#include "net/server.h"
#include "net/session.h"
#include "persist/restart.h"
#include "state/veventqs.h"
#include "util/log.h"

#define VEVENT_BATCH 64

struct vevent_watch {
	struct event *ev;
	struct session *s;
	struct veventq *v;
};

static void deliver(struct vevent_watch *w, const struct nestd_vevent_header *h,
		    const uint8_t *data, uint32_t len)
{
	struct session *s = w->s;
	IommuNest__Reply rep = IOMMU_NEST__REPLY__INIT;
	IommuNest__Event ev = IOMMU_NEST__EVENT__INIT;

	s->ev_seq++;
	ev.kind = IOMMU_NEST__EVENT_KIND__EVENT_VEVENT;
	ev.seq = s->ev_seq;
	ev.lost = s->ev_lost;
	ev.viommu_id = w->v->viommu_id;
	ev.veventq_id = w->v->id;
	ev.vevent_type = w->v->type;
	ev.vevent_flags = h->flags;
	ev.vevent_sequence = h->sequence;
	ev.vevent_data.len = len;
	ev.vevent_data.data = (uint8_t *)data;
	rep.id = 0;
	rep.body_case = IOMMU_NEST__REPLY__BODY_EVENT;
	rep.event = &ev;
	if (!session_send_event(s, &rep, s->srv->cfg->quota.max_events)) {
		s->ev_lost = 0;
		s->srv->stats.events_sent++;
		return;
	}
	/* Said once per run of losses: the next delivered event reports the count. */
	if (!s->ev_lost++)
		log_warn("session %llu (%s): event queue full (max_events %u), dropping events",
			 (unsigned long long)s->id, s->name, s->srv->cfg->quota.max_events);
	s->srv->stats.events_lost++;
}

static void stop(struct vevent_watch *w, const char *why, int rc)
{
	log_err("session %llu: reading veventq %u: %s (%s); its delivery stopped",
		(unsigned long long)w->s->id, w->v->id, why, strerror(-rc));
	event_del(w->ev);
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct vevent_watch *w = arg;
	struct veventq *v = w->v;
	const uint32_t hsz = sizeof(struct nestd_vevent_header);
	const uint32_t dlen = nestd_vevent_data_len(v->type);
	uint8_t buf[VEVENT_BATCH * (sizeof(struct nestd_vevent_header) + NESTD_VEVENT_DATA_MAX)];
	uint32_t off = 0;
	int n;

	(void)fd;
	(void)what;
	n = v->be->ops->veventq_read(v->be, &v->q, buf, VEVENT_BATCH * (hsz + dlen));
	/* The sim's queue is saved state: read means gone, after a restart too (as the kernel's).
	 */
	if (n > 0)
		restart_save_if_changed(w->s->srv->rs);
	if (n < 0) {
		stop(w, "read failed", n);
		return;
	}
	while (off < (uint32_t)n && !w->s->closing) {
		struct nestd_vevent_header h;
		uint32_t len;

		if ((uint32_t)n - off < hsz) {
			stop(w, "a partial record header", -EIO);
			return;
		}
		memcpy(&h, buf + off, hsz);
		len = h.flags & NESTD_VEVENTQ_FLAG_LOST_EVENTS ? 0 : dlen;
		if ((uint32_t)n - off - hsz < len) {
			stop(w, "a partial record", -EIO);
			return;
		}
		deliver(w, &h, buf + off + hsz, len);
		off += hsz + len;
	}
}

static void unwatch(struct veventq *v)
{
	struct vevent_watch *w = v->watch;

	if (!w)
		return;
	event_free(w->ev);
	free(w);
	v->watch = NULL;
}

int vevents_watch(struct session *s, struct veventq *v)
{
	struct vevent_watch *w = calloc(1, sizeof(*w));

	if (!w)
		return -ENOMEM;
	w->s = s;
	w->v = v;
	w->ev = event_new(s->srv->base, v->q.fd, EV_READ | EV_PERSIST, on_readable, w);
	if (!w->ev || event_add(w->ev, NULL)) {
		if (w->ev)
			event_free(w->ev);
		free(w);
		return -ENOMEM;
	}
	v->watch = w;
	v->unwatch = unwatch;
	return 0;
}
