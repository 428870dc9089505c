/* SPDX-License-Identifier: MIT */
/*
 * The end of an event-loop pass: accepted Invalidate requests wait in the
 * per-HWPT queue (inv/queue.h) until the batch runs; the batch returns the
 * finished requests and they are encoded and sent from here.
 */
#ifndef IOMMU_NESTD_NET_FLUSH_H
#define IOMMU_NESTD_NET_FLUSH_H

struct server;
struct session;
struct hwpt_entry;
struct inv_request;

/*
 * Queues a validated request of its owner on hwpt for this pass's batch
 * and arms the flush; frees it instead when making room for it dropped
 * its own session (nothing was promised to it).
 */
void flush_enqueue(struct server *srv, struct hwpt_entry *hwpt, struct inv_request *r);

/* Answers one finished request (batch ran, or refused before); returns its failed entries. */
unsigned flush_answer(struct session *s, const struct inv_request *r);

#endif
