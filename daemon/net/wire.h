/* SPDX-License-Identifier: MIT */
/*
 * The wire: every protobuf decode and encode of the request path. A
 * packet decodes into the arena once, an Invalidate's arrays into a
 * struct inv_request in the kernel's layout, and finished inv_requests
 * encode into an InvalidateReply. Nothing below net/ packs or unpacks.
 */
#ifndef IOMMU_NESTD_NET_WIRE_H
#define IOMMU_NESTD_NET_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iommu_nest.pb-c.h"
#include "req/dispatch.h"

struct session;
struct inv_request;

/* Reusable arrays for encoding per-entry results (the loop is single-threaded). */
struct wire_enc {
	uint32_t *state;
	int32_t *error;
	uint32_t *hw_error;
	uint32_t cap;
};

/*
 * Decodes one packet of s into in (the message in the server's arena),
 * taking over the nfds descriptors that came with it: the one a MapMemory
 * carries goes to in->fd, any other is closed now. 0; -EPROTO for a broken
 * frame; -E2BIG for a well-formed one that decodes to more than the arena.
 */
int wire_decode(struct session *s, const uint8_t *buf, size_t len, int *fds, int nfds,
		struct req_in *in);
/* Closes and frees what in still holds (a descriptor, an inv_request). */
void wire_release(struct req_in *in);

/* The id of a Request, by a walk over its top-level fields. False if broken. */
bool wire_scan_request_id(const uint8_t *buf, size_t len, uint64_t *id);

/*
 * Fills rep (with ir as its body) with r's results; the arrays live in
 * enc until the next call. *failed: entries that failed. -ENOMEM when
 * enc cannot grow (rep then carries that error only).
 */
int wire_inv_reply(struct wire_enc *enc, const struct inv_request *r, IommuNest__Reply *rep,
		   IommuNest__InvalidateReply *ir, uint32_t *failed);
void wire_enc_free(struct wire_enc *enc);

#endif
