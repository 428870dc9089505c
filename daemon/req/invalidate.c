/* SPDX-License-Identifier: MIT */
/*
 * Invalidate: decode the entry arrays into the kernel's layout, apply the
 * kernel's request and entry rules, queue the request in this pass's batch
 * (net/server.c), and, once the batch ran, encode a result for every entry.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "req/dispatch.h"
#include "inv/validate.h"
#include "backend/iommufd_uapi.h"
#include "util/log.h"
#include "net/server.h"
#include "net/session.h"

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
static struct inv_request *inv_request_new(const IommuNest__Invalidate *m, uint32_t n,
					   struct session *s)
{
	uint32_t esz = inv_entry_size(m->data_type);
	size_t ent_bytes = (size_t)n * (esz ? esz : 1);
	struct inv_request *r;

	ent_bytes = (ent_bytes + 7) & ~(size_t)7;
	r = calloc(1, sizeof(*r) + ent_bytes + (size_t)n * sizeof(struct inv_entry_result));
	if (!r)
		return NULL;
	r->hwpt_id = m->hwpt_id;
	r->data_type = m->data_type;
	r->reserved = m->reserved;
	r->entry_len = m->entry_len;
	r->cont = m->flags & IOMMU_NEST__INVALIDATE_FLAG__INV_CONTINUE;
	r->n = n;
	r->entries = (uint8_t *)(r + 1);
	r->res = (struct inv_entry_result *)((uint8_t *)r->entries + ent_bytes);
	r->owner = s;
	/* entry_count() checked that the arrays are this type's. */
	if (m->data_type == IOMMU_HWPT_INVALIDATE_DATA_VTD_S1)
		decode_vtd(m, r->entries, n);
	else if (m->data_type == IOMMU_HWPT_INVALIDATE_DATA_SELFTEST)
		decode_selftest(m, r->entries, n);
	return r;
}

/* Answers at once, before anything was submitted: every entry not attempted. */
static void fail_request(struct session *s, struct inv_request *r, int err, const char *why)
{
	for (uint32_t i = 0; i < r->n; i++)
		r->res[i] = (struct inv_entry_result){ .state = INV_NOT_ATTEMPTED };
	r->status = err;
	r->entries_handled = 0;
	log_debug("session %llu: invalidate hwpt %u: %s", (unsigned long long)s->id, r->hwpt_id,
		  why);
	invalidate_send_reply(s, r);
	free(r);
}

/*
 * A reply costs up to 8 bytes per entry (state 1, error 2, hw_error 5 as
 * varints) plus fixed fields and the error text, while a selftest request
 * can cost 1 byte per entry: the entries a request may carry are bounded
 * by what its reply can carry too, so every accepted request gets an answer.
 */
#define REPLY_BYTES_PER_ENTRY 8
#define REPLY_FIXED_BYTES 512

uint32_t invalidate_max_entries(const struct server *srv)
{
	/* tx_cap: max_message_size, or less if the socket buffers take less. */
	uint64_t fit = srv->tx_cap > REPLY_FIXED_BYTES
			   ? (srv->tx_cap - REPLY_FIXED_BYTES) / REPLY_BYTES_PER_ENTRY
			   : 0;

	return fit < srv->cfg->max_entries ? (uint32_t)fit : srv->cfg->max_entries;
}

/*
 * The HWPT s may invalidate: its own, or, for an admin, any live session's
 * (a manual flush can only over-invalidate, which is safe). Orphans have
 * nobody to answer to and stay out of reach. The admin check looks up
 * groups, so it runs only when the id is not the client's own.
 */
static struct hwpt_entry *invalidate_target(struct session *s, uint32_t id)
{
	const struct hwpt_registry *reg = &s->srv->reg;
	struct hwpt_entry *e = hwpt_registry_lookup_owned(reg, id, s);

	if (e)
		return e;
	e = hwpt_registry_find(reg, id);
	return e && e->owner && session_is_admin(s) ? e : NULL;
}

struct parent_search {
	uint32_t id;
	bool found;
};

static void match_live_parent(struct hwpt_entry *e, void *arg)
{
	struct parent_search *ps = arg;

	ps->found |= e->owner && e->parent_id == ps->id;
}

/*
 * The errno for an id that names none of the nested HWPTs s may invalidate.
 * The nest parent of a HWPT s may invalidate (its own: the Alloc reply
 * told s the id; for an admin, any live session's, as ListHwpts shows) is
 * a live paging HWPT, which the running kernel answers by its own rule
 * (6.12 -ENOENT, 7.x -EINVAL). Every other id, unknown or some other
 * tenant's object, is -ENOENT: nobody learns what exists beyond their reach.
 */
static int no_target_err(struct session *s, uint32_t id)
{
	struct parent_search ps = {.id = id};

	for (const struct hwpt_entry *e = s->owned; e && !ps.found; e = e->next_owned)
		ps.found = e->parent_id == id;
	if (!ps.found && session_is_admin(s))
		hwpt_registry_for_each(&s->srv->reg, match_live_parent, &ps);
	return ps.found ? kernel_rules_inv_wrong_object(s->srv->caps.rules) : -ENOENT;
}

void handle_invalidate(struct session *s, const IommuNest__Request *req, IommuNest__Reply *rep)
{
	const IommuNest__Invalidate *m = req->invalidate;
	struct server *srv = s->srv;
	struct hwpt_entry *hwpt;
	struct inv_request *r;
	int64_t n = entry_count(m);
	uint32_t max = invalidate_max_entries(srv);
	int rc;

	if (n < 0) {
		reply_error(rep, -EINVAL, "entry arrays do not match each other or the data type");
		goto early;
	}
	if ((uint64_t)n > max) {
		reply_error(rep, -E2BIG, "%lld entries; the limit is %u per request", (long long)n,
			    max);
		rep->limit = max;
		goto early;
	}
	if (m->flags & ~(uint32_t)IOMMU_NEST__INVALIDATE_FLAG__INV_CONTINUE) {
		reply_error(rep, -EOPNOTSUPP, "unknown invalidate flags %#x", m->flags);
		goto early;
	}
	if (quota_reached(s->n_pending, srv->cfg->quota.max_inflight)) {
		session_deny(s, rep, -EAGAIN, srv->cfg->quota.max_inflight,
			     "%u invalidate requests already in flight", s->n_pending);
		goto early;
	}
	r = inv_request_new(m, (uint32_t)n, s);
	if (!r) {
		reply_error(rep, -ENOMEM, "out of memory");
		goto early;
	}
	r->id = req->id;
	r->recv_ns = srv->rx_ns;
	srv->stats.entries_received += r->n;
	s->n_entries += r->n;
	/* The kernel's order: array bounds, then the object, then its type. */
	rc = inv_validate_header(r);
	if (rc)
		return fail_request(s, r, rc, "request rejected by the kernel's rules");
	hwpt = invalidate_target(s, r->hwpt_id);
	if (!hwpt) {
		rc = no_target_err(s, r->hwpt_id);
		fail_request(s, r, rc, rc == -ENOENT ? "no such HWPT" : "not a nested HWPT");
		return;
	}
	rc = inv_validate_request(r, hwpt->inv_type);
	if (rc)
		return fail_request(s, r, rc, "request rejected by the kernel's rules");
	inv_validate_entries(r);
	server_queue_invalidate(srv, hwpt, r);
	return;
early:
	srv->stats.request_errors++;
	session_send_reply(s, rep);
}

/* Encoding scratch, reused: the loop is single-threaded. */
static struct {
	uint32_t *state;
	int32_t *error;
	uint32_t *hw_error;
	uint32_t cap;
} enc;

static int enc_reserve(uint32_t n)
{
	uint32_t cap = enc.cap ? enc.cap : 256;

	if (n <= enc.cap)
		return 0;
	while (cap < n)
		cap *= 2;
	free(enc.state);
	free(enc.error);
	free(enc.hw_error);
	enc.state = malloc(cap * sizeof(*enc.state));
	enc.error = malloc(cap * sizeof(*enc.error));
	enc.hw_error = malloc(cap * sizeof(*enc.hw_error));
	enc.cap = enc.state && enc.error && enc.hw_error ? cap : 0;
	return enc.cap ? 0 : -ENOMEM;
}

uint32_t invalidate_send_reply(struct session *s, struct inv_request *r)
{
	IommuNest__Reply rep = IOMMU_NEST__REPLY__INIT;
	IommuNest__InvalidateReply ir = IOMMU_NEST__INVALIDATE_REPLY__INIT;
	struct server *srv = s->srv;
	uint32_t failed = 0;

	rep.id = r->id;
	if (enc_reserve(r->n)) {
		reply_error(&rep, -ENOMEM, "out of memory encoding the reply");
		session_send_reply(s, &rep);
		return 0;
	}
	for (uint32_t i = 0; i < r->n; i++) {
		enc.state[i] = r->res[i].state;
		enc.error[i] = r->res[i].error;
		enc.hw_error[i] = r->res[i].hw_error;
		failed += r->res[i].state == INV_FAILED;
	}
	ir.entries_handled = r->entries_handled;
	ir.entries_submitted = r->entries_submitted;
	ir.pages_flushed = r->pages_flushed;
	ir.n_state = ir.n_error = ir.n_hw_error = r->n;
	ir.state = enc.state;
	ir.error = enc.error;
	ir.hw_error = enc.hw_error;
	rep.body_case = IOMMU_NEST__REPLY__BODY_INVALIDATE;
	rep.invalidate = &ir;
	if (r->status) {
		reply_error(&rep, r->status, "invalidation stopped after %u of %u entries",
			    r->entries_handled, r->n);
		srv->stats.request_errors++;
	}
	srv->stats.entries_failed += failed;
	session_send_reply(s, &rep);
	return failed;
}

void invalidate_encoder_free(void)
{
	free(enc.state);
	free(enc.error);
	free(enc.hw_error);
	memset(&enc, 0, sizeof(enc));
}
