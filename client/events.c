// SPDX-License-Identifier: MIT
/*
 * The event channel, client side: Event messages (Reply id 0) decoded into
 * struct iommu_nest_event, queued and handed to the handler; PageResponse;
 * the test-only TriggerIopf.
 */
#include "events.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iommu_nest_call.h"

static void decode(struct iommu_nest_event *ev, const IommuNest__Event *m)
{
	memset(ev, 0, sizeof(*ev));
	ev->kind = m->kind;
	ev->seq = m->seq;
	ev->lost = m->lost;
	ev->fault.flags = m->flags;
	ev->fault.dev_id = m->dev_id;
	ev->fault.pasid = m->pasid;
	ev->fault.grpid = m->grpid;
	ev->fault.perm = m->perm;
	ev->fault.addr = m->addr;
	ev->fault.length = m->length;
	ev->fault.cookie = m->cookie;
	ev->fault.hwpt_id = m->hwpt_id;
	snprintf(ev->fault.device, sizeof(ev->fault.device), "%s", m->device ? m->device : "");
	ev->vevent.viommu_id = m->viommu_id;
	ev->vevent.veventq_id = m->veventq_id;
	ev->vevent.type = m->vevent_type;
	ev->vevent.flags = m->vevent_flags;
	ev->vevent.sequence = m->vevent_sequence;
	/* Longer than any record type the library knows: cut to what fits. */
	ev->vevent.data_len = m->vevent_data.len < sizeof(ev->vevent.data)
				  ? (uint32_t)m->vevent_data.len
				  : (uint32_t)sizeof(ev->vevent.data);
	if (ev->vevent.data_len)
		memcpy(ev->vevent.data, m->vevent_data.data, ev->vevent.data_len);
}

static int grow(struct nest_events *e)
{
	size_t cap = e->cap ? e->cap * 2 : 16;
	struct iommu_nest_event *q = malloc(cap * sizeof(*q));

	if (!q)
		return -ENOMEM;
	/* Unwrap the ring into the new array. */
	for (size_t i = 0; i < e->n; i++)
		q[i] = e->q[(e->head + i) % e->cap];
	free(e->q);
	e->q = q;
	e->cap = cap;
	e->head = 0;
	return 0;
}

int nest_events_push(struct nest_events *e, const IommuNest__Event *m)
{
	if (m->kind != IOMMU_NEST_EVENT_FAULT && m->kind != IOMMU_NEST_EVENT_VEVENT)
		return -EPROTO;
	if (!e->cb)
		return 0;
	if (e->n >= NEST_EVENTS_MAX || (e->n == e->cap && grow(e))) {
		e->dropped += 1 + m->lost;
		return 0;
	}
	decode(&e->q[(e->head + e->n) % e->cap], m);
	e->q[(e->head + e->n) % e->cap].lost += e->dropped;
	e->dropped = 0;
	e->n++;
	return 0;
}

void nest_events_deliver(struct iommu_nest *h, struct nest_events *e)
{
	if (e->waiting || e->delivering)
		return;
	e->delivering = true;
	while (e->n && e->cb) {
		struct iommu_nest_event ev = e->q[e->head];

		e->head = (e->head + 1) % e->cap;
		e->n--;
		e->cb(h, &ev, e->arg);
	}
	e->delivering = false;
}

void nest_events_free(struct nest_events *e)
{
	free(e->q);
	memset(e, 0, sizeof(*e));
}

int iommu_nest_set_event_handler(struct iommu_nest *h, iommu_nest_event_cb cb, void *arg)
{
	struct nest_events *e = nest_events_of(h);

	e->cb = cb;
	e->arg = arg;
	if (!cb)
		e->n = 0; /* nobody to hand them to */
	return 0;
}

int iommu_nest_page_response(struct iommu_nest *h, uint32_t hwpt_id, const char *device,
			     const struct iommu_nest_page_response *r)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__PageResponse m = IOMMU_NEST__PAGE_RESPONSE__INIT;
	IommuNest__Reply *reply;
	int err;

	if (!r)
		return nest_fail(h, -EINVAL, "no response given");
	m.hwpt_id = hwpt_id;
	m.device = (char *)(device ? device : "");
	m.grpid = r->grpid;
	m.cookie = r->cookie;
	m.code = r->code;
	req.body_case = IOMMU_NEST__REQUEST__BODY_PAGE_RESPONSE;
	req.page_response = &m;
	err = nest_call(h, &req, IOMMU_NEST__REPLY__BODY__NOT_SET, &reply);
	if (!err)
		nest_release(h);
	return err;
}

int iommu_nest_trigger_iopf(struct iommu_nest *h, const char *device,
			    const struct iommu_nest_iopf *t, uint32_t count)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__TriggerIopf m = IOMMU_NEST__TRIGGER_IOPF__INIT;
	IommuNest__Reply *reply;
	int err;

	if (!device || !t)
		return nest_fail(h, -EINVAL, "no device or fault given");
	m.device = (char *)device;
	m.pasid = t->pasid;
	m.grpid = t->grpid;
	m.perm = t->perm;
	m.addr = t->addr;
	m.count = count;
	req.body_case = IOMMU_NEST__REQUEST__BODY_TRIGGER_IOPF;
	req.trigger_iopf = &m;
	err = nest_call(h, &req, IOMMU_NEST__REPLY__BODY__NOT_SET, &reply);
	if (!err)
		nest_release(h);
	return err;
}
