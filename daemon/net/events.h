/* SPDX-License-Identifier: MIT */
/*
 * The asynchronous event channel: messages the daemon sends a client
 * unasked, as a Reply with id 0 and body Event. Today the page faults of
 * the client's fault-capable HWPTs (its fault queue, state/faults.h, read
 * in the event loop); vEVENTQ records take the same path (net/vevents.c). Per client
 * at most [policy] max_events wait unsent; past that an event is dropped
 * and counted (the next delivered one says how many in `lost`), so a
 * client that does not read never blocks the loop nor grows the daemon.
 */
#ifndef IOMMU_NESTD_NET_EVENTS_H
#define IOMMU_NESTD_NET_EVENTS_H

struct session;

/*
 * Gives s its fault queue (IOMMU_FAULT_QUEUE_ALLOC) and starts reading it,
 * if it has none yet. 0 or a negative errno. (srv->events_open, for Alloc;
 * session_free() closes it, after the HWPTs that use it.)
 */
int events_open(struct session *s);
/*
 * A fault queue the session reclaimed (persist/faults.c put it in
 * s->faults): watched from now on, and its book's groups sent again.
 * (srv->events_resume, for Reclaim.)
 */
int events_resume(struct session *s);

#endif
