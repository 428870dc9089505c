/* SPDX-License-Identifier: MIT */
/* Protobuf in and out of the request path (see net/wire.h). */
#include "net/wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/iommufd_uapi.h"
#include "backend/smmuv3_cmd.h"
#include "backend/viommu_uapi.h"
#include "inv/request.h"
#include "net/server.h"
#include "net/session.h"
#include "util/common.h"

/* Optional arrays are either absent (all zero) or one value per entry. */
static bool optional_len_ok(size_t len, size_t n)
{
	return len == 0 || len == n;
}

/*
 * Number of entries the message carries, or -EINVAL when its arrays do not
 * describe entries of its data type (a malformed request, not a kernel
 * rule): VT-d entries are addr/npages (+ entry_flags, entry_reserved),
 * selftest entries are iotlb_id (+ entry_flags). Arrays of the other type
 * must be empty, or entries nobody described would be reported done.
 * An unknown type takes its length from whatever is there; the kernel's
 * rules reject the request later with every entry not attempted.
 */
static int64_t entry_count(const IommuNest__Invalidate *m)
{
	size_t n;

	switch (m->data_type) {
	case IOMMU_HWPT_INVALIDATE_DATA_VTD_S1:
		n = m->n_addr;
		if (m->n_npages != n || m->n_iotlb_id)
			return -EINVAL;
		break;
	case IOMMU_HWPT_INVALIDATE_DATA_SELFTEST:
		n = m->n_iotlb_id;
		if (m->n_addr || m->n_npages || m->n_entry_reserved)
			return -EINVAL;
		break;
	default:
		n = m->n_addr > m->n_iotlb_id ? m->n_addr : m->n_iotlb_id;
		if ((m->n_addr && m->n_iotlb_id) || m->n_npages != m->n_addr)
			return -EINVAL;
	}
	if (!optional_len_ok(m->n_entry_flags, n) || !optional_len_ok(m->n_entry_reserved, n))
		return -EINVAL;
	return (int64_t)n;
}

static void decode_vtd(const IommuNest__Invalidate *m, struct iommu_hwpt_vtd_s1_invalidate *e,
		       uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		e[i].addr = m->addr[i];
		e[i].npages = m->npages[i];
		e[i].flags = m->n_entry_flags ? m->entry_flags[i] : 0;
		e[i].__reserved = m->n_entry_reserved ? m->entry_reserved[i] : 0;
	}
}

static void decode_selftest(const IommuNest__Invalidate *m,
			    struct iommu_hwpt_invalidate_selftest *e, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		e[i].iotlb_id = m->iotlb_id[i];
		e[i].flags = m->n_entry_flags ? m->entry_flags[i] : 0;
	}
}

/*
 * One allocation per request (never per entry): the request, its entries in
 * the kernel's layout, and its results.
 */
static struct inv_request *inv_request_new(const IommuNest__Invalidate *m, uint32_t n)
{
	uint32_t esz = inv_entry_size(m->data_type);
	size_t ent_bytes = (size_t)n * (esz ? esz : 1);
	struct inv_request *r;

	ent_bytes = (ent_bytes + 7) & ~(size_t)7;
	r = calloc(1, sizeof(*r) + ent_bytes + (size_t)n * sizeof(struct inv_entry_result));
	if (!r)
		return NULL;
	r->hwpt_id = m->hwpt_id;
	r->client_id = m->client_id;
	r->data_type = m->data_type;
	r->reserved = m->reserved;
	r->entry_len = m->entry_len;
	r->cont = m->flags & IOMMU_NEST__INVALIDATE_FLAG__INV_CONTINUE;
	r->n = n;
	r->entries = (uint8_t *)(r + 1);
	r->res = (struct inv_entry_result *)((uint8_t *)r->entries + ent_bytes);
	/* entry_count() checked that the arrays are this type's. */
	if (m->data_type == IOMMU_HWPT_INVALIDATE_DATA_VTD_S1)
		decode_vtd(m, r->entries, n);
	else if (m->data_type == IOMMU_HWPT_INVALIDATE_DATA_SELFTEST)
		decode_selftest(m, r->entries, n);
	return r;
}

/* Native entry size of a data type on a vIOMMU; 0 if unknown. */
static uint32_t viommu_entry_size(uint32_t data_type)
{
	switch (data_type) {
	case NESTD_VIOMMU_INV_DATA_SELFTEST:
		return sizeof(struct nestd_viommu_inv_selftest);
	case NESTD_VIOMMU_INV_DATA_ARM_SMMUV3:
		return SMMUV3_CMD_SIZE;
	default:
		return 0;
	}
}

/*
 * Invalidate on a vIOMMU: raw_entries holds the entries as the guest laid
 * them out, entry_len bytes each (0: the type's native size); the typed
 * arrays must be empty. One allocation: request, entries, results.
 */
static int64_t viommu_entry_count(const IommuNest__Invalidate *m, uint32_t *len)
{
	*len = m->entry_len ? m->entry_len : viommu_entry_size(m->data_type);
	if (m->n_addr || m->n_npages || m->n_entry_flags || m->n_entry_reserved || m->n_iotlb_id)
		return -EINVAL;
	if (!m->raw_entries.len)
		return 0;
	if (!*len || m->raw_entries.len % *len)
		return -EINVAL;
	return (int64_t)(m->raw_entries.len / *len);
}

static struct inv_request *viommu_request_new(const IommuNest__Invalidate *m, uint32_t n,
					      uint32_t len)
{
	size_t ent_bytes = (m->raw_entries.len + 7) & ~(size_t)7;
	struct inv_request *r =
	    calloc(1, sizeof(*r) + ent_bytes + (size_t)n * sizeof(struct inv_entry_result));

	if (!r)
		return NULL;
	r->hwpt_id = m->hwpt_id;
	r->data_type = m->data_type;
	r->reserved = m->reserved;
	r->entry_len = len;
	r->cont = m->flags & IOMMU_NEST__INVALIDATE_FLAG__INV_CONTINUE;
	r->on_viommu = true;
	r->n = n;
	r->entries = (uint8_t *)(r + 1);
	r->res = (struct inv_entry_result *)((uint8_t *)r->entries + ent_bytes);
	if (m->raw_entries.len)
		memcpy(r->entries, m->raw_entries.data, m->raw_entries.len);
	return r;
}

/*
 * The arrays into the kernel's layout, or why not (the handler says so,
 * after the checks that come first). The entry limit is checked before
 * anything is allocated.
 */
static void decode_invalidate(struct session *s, struct req_in *in)
{
	const IommuNest__Invalidate *m = in->msg->invalidate;
	struct server *srv = s->srv;
	bool viommu = m->object_kind == IOMMU_NEST__OBJECT_KIND__OBJECT_VIOMMU;
	uint32_t len = 0;

	in->inv_n = viommu ? viommu_entry_count(m, &len) : entry_count(m);
	in->inv_max = invalidate_max_entries(srv);
	if (in->inv_n < 0) {
		in->inv_err = -EINVAL;
		return;
	}
	if ((uint64_t)in->inv_n > in->inv_max) {
		in->inv_err = -E2BIG;
		return;
	}
	/* A kind the daemon does not know is refused with the malformed arrays. */
	if (m->object_kind != IOMMU_NEST__OBJECT_KIND__OBJECT_HWPT && !viommu) {
		in->inv_err = -EINVAL;
		return;
	}
	in->inv = viommu ? viommu_request_new(m, (uint32_t)in->inv_n, len)
			 : inv_request_new(m, (uint32_t)in->inv_n);
	if (!in->inv) {
		in->inv_err = -ENOMEM;
		return;
	}
	in->inv->id = in->msg->id;
	in->inv->recv_ns = srv->rx_ns;
	in->inv->owner = s;
}

int wire_decode(struct session *s, const uint8_t *buf, size_t len, int *fds, int nfds,
		struct req_in *in)
{
	struct decode_arena *arena = &s->srv->arena;
	IommuNest__Request *msg;

	memset(in, 0, sizeof(*in));
	in->fd = -1;
	in->queue_fds[0] = in->queue_fds[1] = in->queue_fds[2] = -1;
	decode_arena_reset(arena);
	msg = iommu_nest__request__unpack(&arena->allocator, len, buf);
	if (!msg) {
		close_fds(fds, nfds);
		return arena->exhausted ? -E2BIG : -EPROTO;
	}
	in->msg = msg;
	/*
	 * Only MapMemory, GetDirtyBitmap (its bitmap's memfd), AdoptDevice
	 * (a VFIO cdev) and Reclaim (of a device claim: the held device fd)
	 * take a descriptor, and exactly one, and QueueSetup exactly
	 * three: the handlers refuse the request when they find none. Anything else passed along is
	 * closed unseen, as before any request took descriptors.
	 */
	if ((msg->body_case == IOMMU_NEST__REQUEST__BODY_MAP_MEMORY ||
	     msg->body_case == IOMMU_NEST__REQUEST__BODY_GET_DIRTY_BITMAP ||
	     msg->body_case == IOMMU_NEST__REQUEST__BODY_ADOPT_DEVICE ||
	     msg->body_case == IOMMU_NEST__REQUEST__BODY_RECLAIM) &&
	    nfds == 1)
		in->fd = fds[0];
	else if (msg->body_case == IOMMU_NEST__REQUEST__BODY_QUEUE_SETUP && nfds == 3)
		memcpy(in->queue_fds, fds, sizeof(in->queue_fds));
	else
		close_fds(fds, nfds);
	if (msg->body_case == IOMMU_NEST__REQUEST__BODY_INVALIDATE)
		decode_invalidate(s, in);
	/* Nothing to free one by one: the next decode reuses the arena. */
	return 0;
}

void wire_release(struct req_in *in)
{
	/* Not taken: refused before its handler ran (Hello first, rate limit). */
	if (in->fd >= 0)
		close(in->fd);
	in->fd = -1;
	for (int i = 0; i < 3; i++) {
		if (in->queue_fds[i] >= 0)
			close(in->queue_fds[i]);
		in->queue_fds[i] = -1;
	}
	free(in->inv);
	in->inv = NULL;
}

static bool read_varint(const uint8_t *buf, size_t len, size_t *pos, uint64_t *v)
{
	*v = 0;
	for (unsigned shift = 0; shift < 64 && *pos < len; shift += 7) {
		uint8_t b = buf[(*pos)++];

		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return true;
	}
	return false;
}

/* Skips one field's value of wire type wt at *pos; false if broken. */
static bool skip_value(const uint8_t *buf, size_t len, size_t *pos, unsigned wt, uint64_t *v)
{
	switch (wt) {
	case 0:
		return read_varint(buf, len, pos, v);
	case 1:
	case 5:
		*v = wt == 1 ? 8 : 4;
		if (len - *pos < *v)
			return false;
		*pos += *v;
		return true;
	case 2:
		if (!read_varint(buf, len, pos, v) || *v > len - *pos)
			return false;
		*pos += *v;
		return true;
	default:
		return false;
	}
}

bool wire_scan_request_id(const uint8_t *buf, size_t len, uint64_t *id)
{
	size_t pos = 0;
	uint64_t tag, v;

	*id = 0;
	while (pos < len) {
		if (!read_varint(buf, len, &pos, &tag) || !skip_value(buf, len, &pos, tag & 7, &v))
			return false;
		if ((tag & 7) == 0 && tag >> 3 == 1)
			*id = v;
	}
	return true;
}

static int enc_reserve(struct wire_enc *enc, uint32_t n)
{
	uint32_t cap = enc->cap ? enc->cap : 256;

	if (n <= enc->cap)
		return 0;
	while (cap < n)
		cap *= 2;
	wire_enc_free(enc);
	enc->state = malloc(cap * sizeof(*enc->state));
	enc->error = malloc(cap * sizeof(*enc->error));
	enc->hw_error = malloc(cap * sizeof(*enc->hw_error));
	enc->cap = enc->state && enc->error && enc->hw_error ? cap : 0;
	return enc->cap ? 0 : -ENOMEM;
}

int wire_inv_reply(struct wire_enc *enc, const struct inv_request *r, IommuNest__Reply *rep,
		   IommuNest__InvalidateReply *ir, uint32_t *failed)
{
	rep->id = r->id;
	*failed = 0;
	if (enc_reserve(enc, r->n)) {
		reply_error(rep, -ENOMEM, "out of memory encoding the reply");
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < r->n; i++) {
		enc->state[i] = r->res[i].state;
		enc->error[i] = r->res[i].error;
		enc->hw_error[i] = r->res[i].hw_error;
		*failed += r->res[i].state == INV_FAILED;
	}
	ir->entries_handled = r->entries_handled;
	ir->entries_submitted = r->entries_submitted;
	ir->pages_flushed = r->pages_flushed;
	ir->n_state = ir->n_error = ir->n_hw_error = r->n;
	ir->state = enc->state;
	ir->error = enc->error;
	ir->hw_error = enc->hw_error;
	rep->body_case = IOMMU_NEST__REPLY__BODY_INVALIDATE;
	rep->invalidate = ir;
	if (r->status)
		reply_error(rep, r->status, "invalidation stopped after %u of %u entries",
			    r->entries_handled, r->n);
	return 0;
}

void wire_enc_free(struct wire_enc *enc)
{
	free(enc->state);
	free(enc->error);
	free(enc->hw_error);
	memset(enc, 0, sizeof(*enc));
}
