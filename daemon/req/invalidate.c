/* SPDX-License-Identifier: MIT */
/*
 * Invalidate: apply the kernel's request and entry rules to the request
 * net/wire.c decoded (its entries already in the kernel's layout), find
 * the HWPT, and hand it back to the loop for this pass's batch
 * (REQ_DEFERRED); the loop runs the batch and encodes every entry's
 * result. A request refused before submission comes back REQ_INV_DONE,
 * every entry not attempted.
 */
#include <errno.h>
#include <stdlib.h>

#include "inv/validate.h"
#include "net/server.h"
#include "net/session.h"
#include "req/handlers.h"
#include "util/log.h"

/* Refused before anything was submitted: every entry not attempted. */
static int fail_request(struct session *s, struct inv_request *r, int err, const char *why)
{
	for (uint32_t i = 0; i < r->n; i++)
		r->res[i] = (struct inv_entry_result){.state = INV_NOT_ATTEMPTED};
	r->status = err;
	r->entries_handled = 0;
	log_debug("session %llu: invalidate hwpt %u: %s", (unsigned long long)s->id, r->hwpt_id,
		  why);
	return REQ_INV_DONE;
}

/*
 * A reply costs up to 8 bytes per entry (state 1, error 2, hw_error 5 as
 * varints) plus fixed fields and the error text, while a selftest request
 * can cost 1 byte per entry: the entries a request may carry are bounded
 * by what its reply can carry too, so every accepted request gets an answer.
 */
#define REPLY_BYTES_PER_ENTRY 8
#define REPLY_FIXED_BYTES     512

uint32_t invalidate_max_entries(const struct server *srv)
{
	/* tx_cap: max_message_size, or less if the socket buffers take less. */
	uint64_t fit = srv->tx_cap > REPLY_FIXED_BYTES
			   ? (srv->tx_cap - REPLY_FIXED_BYTES) / REPLY_BYTES_PER_ENTRY
			   : 0;

	return fit < srv->cfg->max_entries ? (uint32_t)fit : srv->cfg->max_entries;
}

struct live_search {
	uint32_t id;
	uint64_t client_id; /* 0: any client */
	struct hwpt_entry *found;
	uint32_t n;
};

static void match_live(struct hwpt_entry *e, void *arg)
{
	struct live_search *ls = arg;

	if (e->id != ls->id || !e->owner ||
	    (ls->client_id && ((const struct session *)e->owner)->id != ls->client_id))
		return;
	ls->found = e;
	ls->n++;
}

/*
 * The HWPT s may invalidate: its own, or, for an admin, any live session's
 * (a manual flush can only over-invalidate, which is safe), named by the
 * client's id: each client has its own VM context, so the same id may be
 * several clients'. Without one, an admin reaches the id only while it is
 * one client's alone. Orphans have nobody to answer to and stay out of
 * reach. The admin check looks up groups, so it runs only when the id is
 * not the client's own.
 */
static struct hwpt_entry *invalidate_target(struct session *s, uint32_t id, uint64_t client_id)
{
	const struct hwpt_registry *reg = &s->srv->reg;
	struct live_search ls = {.id = id, .client_id = client_id};
	struct hwpt_entry *e;

	if (!client_id || client_id == s->id) {
		e = hwpt_registry_lookup_owned(reg, id, s);
		if (e || client_id)
			return e;
	}
	if (!req_is_admin(s))
		return NULL;
	hwpt_registry_for_each(reg, match_live, &ls);
	return ls.n == 1 ? ls.found : NULL;
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
	if (!ps.found && req_is_admin(s))
		hwpt_registry_for_each(&s->srv->reg, match_live_parent, &ps);
	return ps.found ? kernel_rules_inv_wrong_object(s->srv->caps.rules) : -ENOENT;
}

/* What net/wire.c could not decode, said in the order the checks always ran. */
static int decode_error(struct req_ctx *c)
{
	const struct req_in *in = c->in;

	if (in->inv_err == -EINVAL)
		reply_error(c->rep, -EINVAL,
			    "entry arrays do not match each other or the data type");
	if (in->inv_err != -E2BIG)
		return in->inv_err;
	reply_error(c->rep, -E2BIG, "%lld entries; the limit is %u per request",
		    (long long)in->inv_n, in->inv_max);
	c->rep->limit = in->inv_max;
	return -E2BIG;
}

int handle_invalidate(struct req_ctx *c)
{
	const IommuNest__Invalidate *m = c->msg->invalidate;
	struct server *srv = c->srv;
	struct session *s = c->s;
	struct inv_request *r = c->in->inv;

	if (c->in->inv_err && c->in->inv_err != -ENOMEM)
		return decode_error(c);
	if (m->flags & ~(uint32_t)IOMMU_NEST__INVALIDATE_FLAG__INV_CONTINUE) {
		reply_error(c->rep, -EOPNOTSUPP, "unknown invalidate flags %#x", m->flags);
		return -EOPNOTSUPP;
	}
	if (quota_reached(s->n_pending, srv->cfg->quota.max_inflight)) {
		req_deny(s, c->rep, -EAGAIN, srv->cfg->quota.max_inflight,
			 "%u invalidate requests already in flight", s->n_pending);
		return -EAGAIN;
	}
	if (!r) {
		reply_error(c->rep, -ENOMEM, "out of memory");
		return -ENOMEM;
	}
	return req_invalidate_accept(s, r, &c->in->inv_hwpt);
}

int req_invalidate_accept(struct session *s, struct inv_request *r, struct hwpt_entry **out)
{
	struct hwpt_entry *hwpt;
	int rc;

	s->srv->stats.entries_received += r->n;
	s->n_entries += r->n;
	/* Keyed on the object kind: the selftest types share 0xdeadbeef. */
	if (r->on_viommu)
		return req_viommu_invalidate(s, r);
	/* The kernel's order: array bounds, then the object, then its type. */
	rc = inv_validate_header(r);
	if (rc)
		return fail_request(s, r, rc, "request rejected by the kernel's rules");
	hwpt = invalidate_target(s, r->hwpt_id, r->client_id);
	if (!hwpt) {
		rc = no_target_err(s, r->hwpt_id);
		return fail_request(s, r, rc, rc == -ENOENT ? "no such HWPT" : "not a nested HWPT");
	}
	/* hw_pagetable.c: a domain without cache_invalidate_user, before any copy. */
	rc = hwpt->inv_type == HWPT_INV_TYPE_NONE ? -EOPNOTSUPP
						  : inv_validate_request(r, hwpt->inv_type);
	if (rc)
		return fail_request(s, r, rc, "request rejected by the kernel's rules");
	inv_validate_entries(r);
	*out = hwpt;
	return REQ_DEFERRED;
}
