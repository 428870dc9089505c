/* SPDX-License-Identifier: MIT */
/*
 * vEVENTQ records on the asynchronous event channel (net/events.h): each
 * of a client's vEVENTQ fds is a libevent read event; a readable pass
 * reads at most VEVENT_BATCH records (whole ones, as the kernel hands
 * them out) and sends each to the owner as an EVENT_VEVENT Event, through
 * the same bounded per-client queue as faults ([policy] max_events:
 * dropped past it, counted in `lost`). A vEVENT needs no answer, so a
 * dropped one costs nothing but itself. A vEVENTQ reclaimed after a
 * restart (persist/veventqs.c) is watched again from Reclaim.
 */
#ifndef IOMMU_NESTD_NET_VEVENTS_H
#define IOMMU_NESTD_NET_VEVENTS_H

struct session;
struct veventq;

/*
 * Starts reading v's fd for s (srv->veventq_watch, for AllocVeventq); sets
 * v->watch and v->unwatch, which the vEVENTQ's destroy calls before its
 * fd closes. 0 or -ENOMEM.
 */
int vevents_watch(struct session *s, struct veventq *v);

#endif
