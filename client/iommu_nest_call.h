/* SPDX-License-Identifier: MIT */
/*
 * Library-internal: one synchronous request/reply, for the parts of the
 * library that live outside iommu_nest.c. Not exported (see the map).
 */
#ifndef IOMMU_NEST_CALL_H
#define IOMMU_NEST_CALL_H

#include "iommu_nest.h"
#include "iommu_nest.pb-c.h"

/*
 * Sends req and waits for its reply. 0 with *out set when the reply's
 * status is 0 and its body is want; then release it with nest_release().
 * Otherwise the negative errno (the reply is released already).
 */
int nest_call(struct iommu_nest *h, IommuNest__Request *req, IommuNest__Reply__BodyCase want,
	      IommuNest__Reply **out);
void nest_release(struct iommu_nest *h);

/* AllocViommuReply.resume_token -> iommu_nest_last_viommu_token(). */
void nest_set_viommu_token(struct iommu_nest *h, const ProtobufCBinaryData *t);

/* StatsReply -> the public struct. */
void nest_copy_stats(struct iommu_nest_stats *st, const IommuNest__StatsReply *r);

/* The handle's event queue (events.c). */
struct nest_events *nest_events_of(struct iommu_nest *h);

/* Sets iommu_nest_last_error()'s text and returns err. */
int nest_fail(struct iommu_nest *h, int err, const char *why);

/*
 * Sends an Invalidate built by the caller and decodes its reply for n
 * entries, as iommu_nest_invalidate_raw() does (socket only).
 */
int nest_invalidate_msg(struct iommu_nest *h, IommuNest__Invalidate *inv, size_t n,
			struct iommu_nest_entry_result *results,
			struct iommu_nest_inv_summary *summary);

#endif
