/* SPDX-License-Identifier: MIT */
/*
 * Library-internal: the asynchronous events a handle has read and not yet
 * handed to its callback. Events are only queued while the library waits
 * for a reply, and handed over once no decoded reply is alive (end of the
 * call, iommu_nest_process()), so a callback may call the library.
 */
#ifndef IOMMU_NEST_EVENTS_H
#define IOMMU_NEST_EVENTS_H

#include <stdbool.h>
#include <stddef.h>

#include "iommu_nest.h"
#include "iommu_nest.pb-c.h"

/* Events held unhanded at most; past it they are dropped and counted in lost. */
#define NEST_EVENTS_MAX 4096

struct nest_events {
	iommu_nest_event_cb cb;
	void *arg;
	struct iommu_nest_event *q; /* ring of cap */
	size_t head, n, cap;
	uint64_t dropped; /* added to the next event's lost */
	bool delivering;
	bool waiting; /* inside a request/reply wait: hand nothing over */
};

/* Queues a received Event (dropped when no handler is set). 0 or -EPROTO. */
int nest_events_push(struct nest_events *e, const IommuNest__Event *m);
/* Hands queued events to the callback unless waiting or already doing so. */
void nest_events_deliver(struct iommu_nest *h, struct nest_events *e);
void nest_events_free(struct nest_events *e);

#endif
