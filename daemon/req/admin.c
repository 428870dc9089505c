/* SPDX-License-Identifier: MIT */
/*
 * Admin requests: Stats, Status, ListClients, ListHwpts, Reload. Daemon-wide views
 * show every tenant's activity, so they are served to root and to the
 * [policy] admin_groups only (the table's ADMIN need); anyone else gets
 * -EPERM (counted as a denial).
 *
 * Lists come a page at a time: as many items as fit in one message from
 * the requested start on, and where the next page starts. A small
 * max_message_size then costs round trips, never a reply over the limit.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/server.h"
#include "net/session.h"
#include "req/handlers.h"

/* Room kept in a reply for its own fields, the status and a reason text. */
#define REPLY_OVERHEAD 512
/* An embedded message costs its size plus a tag and a length (<= 4 bytes). */
#define ITEM_OVERHEAD 5
/* No record encodes in fewer bytes (ids and counters at least one each). */
#define ITEM_MIN_BYTES 16

static size_t page_budget(const struct server *srv)
{
	return srv->tx_cap > REPLY_OVERHEAD ? srv->tx_cap - REPLY_OVERHEAD : 0;
}

/* Records one page can hold at most, of the n there are: what to allocate. */
static size_t page_items(const struct server *srv, size_t n)
{
	size_t most = page_budget(srv) / ITEM_MIN_BYTES + 1;

	return n < most ? (n ? n : 1) : most;
}

static void fill_stats(IommuNest__StatsReply *sr, const struct daemon_stats *st)
{
	sr->connections = st->connections;
	sr->sessions_active = st->sessions_active;
	sr->requests = st->requests;
	sr->request_errors = st->request_errors;
	sr->entries_received = st->entries_received;
	sr->entries_failed = st->entries_failed;
	sr->entries_submitted = st->entries_submitted;
	sr->submissions = st->submissions;
	sr->pages_flushed = st->pages_flushed;
	sr->hwpts_active = st->hwpts_active;
	sr->protocol_errors = st->protocol_errors;
	sr->batches = st->batches;
	sr->denials = st->denials;
	sr->flush_alls = st->flush_alls;
	sr->pages_flushed_ranged = st->ranged_pages;
	sr->queue_submissions = st->queue.submissions;
	sr->queue_completions = st->queue.completions;
	sr->queue_kicks = st->queue.kicks;
	sr->queue_kicks_suppressed = st->queue.kicks_suppressed;
	sr->queue_calls = st->queue.calls;
	sr->queue_calls_suppressed = st->queue.calls_suppressed;
	sr->queue_stalls = st->queue.stalls;
	sr->queue_poll_passes = st->queue.poll_passes;
}

int handle_stats(struct req_ctx *c)
{
	IommuNest__StatsReply *sr = &c->out->body.stats;

	iommu_nest__stats_reply__init(sr);
	fill_stats(sr, &c->srv->stats);
	c->rep->body_case = IOMMU_NEST__REPLY__BODY_STATS;
	c->rep->stats = sr;
	return 0;
}

/* ---- Status ---------------------------------------------------------------- */

static const char *const kind_names[] = {
    [DEVICE_KIND_VTD] = "vtd",
    [DEVICE_KIND_SELFTEST] = "selftest",
    [DEVICE_KIND_SMMUV3] = "smmuv3",
};

static void fill_device(IommuNest__DeviceStatus *d, const struct device_binding *b)
{
	const struct session *owner = b->owner ? b->owner : b->mem_owner;

	d->name = (char *)b->dev->name;
	d->kind = (char *)kind_names[b->dev->kind];
	d->hwpt_id = b->hwpt_id;
	d->owner_session = owner ? owner->id : 0;
	d->owner_pid = owner ? owner->cred.pid : 0;
	d->mapped_bytes = b->mapped_bytes;
	d->mappings = b->n_maps;
}

/* The bounds are shared by every histogram: one array, cast for protobuf-c. */
static void fill_histogram(IommuNest__Histogram *h, const struct latency_hist *lh, const char *name,
			   const char *help)
{
	h->name = (char *)name;
	h->help = (char *)help;
	h->n_bound_ns = LATENCY_HIST_BOUNDS;
	h->bound_ns = (uint64_t *)latency_hist_bound_ns;
	h->n_count = LATENCY_HIST_BOUNDS + 1;
	h->count = (uint64_t *)lh->count;
	h->sum_ns = lh->sum_ns;
	h->samples = lh->samples;
}

int handle_status(struct req_ctx *c)
{
	struct server *srv = c->srv;
	__typeof__(c->out->body.status) *b = &c->out->body.status;
	IommuNest__StatusReply sr = IOMMU_NEST__STATUS_REPLY__INIT;
	IommuNest__StatsReply totals = IOMMU_NEST__STATS_REPLY__INIT;
	IommuNest__DeviceStatus *devs = b->devs, **devp = b->devp;
	IommuNest__Histogram *hist = b->hist, **histp = b->histp;
	size_t used;

	histp[0] = &hist[0];
	histp[1] = &hist[1];
	sr.daemon_version = NESTD_VERSION;
	sr.backend = (char *)srv->cfg->backend;
	sr.socket = (char *)srv->cfg->socket_path;
	sr.pid = getpid();
	sr.uptime_ms = (monotonic_ns() - srv->start_ns) / 1000000;
	sr.clients = (uint32_t)srv->stats.sessions_active;
	sr.hwpts = srv->reg.count;
	sr.orphans = srv->reg.n_orphans;
	fill_stats(&totals, &srv->stats);
	b->totals = totals;
	sr.totals = &b->totals;
	for (int i = 0; i < 2; i++)
		iommu_nest__histogram__init(&hist[i]);
	fill_histogram(&hist[0], &srv->inv_latency, "invalidate_latency",
		       "Invalidate requests: packet read to reply sent");
	fill_histogram(&hist[1], &srv->batch_duration, "batch_duration",
		       "One HWPT's batch: coalescing and backend submission");
	sr.n_histograms = 2;
	sr.histograms = histp;
	used = iommu_nest__status_reply__get_packed_size(&sr);
	for (uint32_t i = 0; i < srv->reg.n_bindings; i++) {
		iommu_nest__device_status__init(&devs[i]);
		fill_device(&devs[i], &srv->reg.bindings[i]);
		used += iommu_nest__device_status__get_packed_size(&devs[i]) + ITEM_OVERHEAD;
		if (used > page_budget(srv))
			break;
		devp[sr.n_devices++] = &devs[i];
	}
	sr.devices = devp;
	b->sr = sr;
	c->rep->body_case = IOMMU_NEST__REPLY__BODY_DAEMON_STATUS;
	c->rep->daemon_status = &b->sr;
	return 0;
}

/* ---- ListClients ------------------------------------------------------------ */

static void fill_client(IommuNest__ClientInfo *c, const struct session *t, uint64_t now)
{
	const struct server *srv = t->srv;

	c->session = t->id;
	c->pid = t->cred.pid;
	c->uid = t->cred.uid;
	c->gid = t->cred.gid;
	c->comm = (char *)t->comm;
	c->name = (char *)t->name;
	c->hwpts = t->n_owned;
	c->requests = t->n_requests;
	c->errors = t->n_errors;
	c->entries = t->n_entries;
	c->denials = t->n_denied;
	c->in_flight = t->n_pending;
	c->connected_ms = (now - t->connected_ns) / 1000000;
	c->mapped_bytes = hwpt_registry_mapped_bytes(&srv->reg, t);
	c->admin = req_is_admin(t);
}

int handle_list_clients(struct req_ctx *c)
{
	struct server *srv = c->srv;
	IommuNest__ClientsReply *cr = &c->out->body.clients;
	IommuNest__ClientInfo *items, **ptrs;
	size_t n = 0, used = 0, cap = page_items(srv, srv->stats.sessions_active);
	uint64_t now = monotonic_ns();
	struct session *t;

	iommu_nest__clients_reply__init(cr);
	/* Freed by net/ once the reply is encoded. */
	items = c->out->heap[0] = calloc(cap, sizeof(*items));
	ptrs = c->out->heap[1] = calloc(cap, sizeof(*ptrs));
	if (!items || !ptrs) {
		reply_error(c->rep, -ENOMEM, "out of memory");
		return -ENOMEM;
	}
	TAILQ_FOREACH(t, &srv->sessions, link)
	{
		if (t->id < c->msg->list_clients->start || t->closing)
			continue;
		if (n == cap) {
			cr->next = t->id;
			break;
		}
		iommu_nest__client_info__init(&items[n]);
		fill_client(&items[n], t, now);
		used += iommu_nest__client_info__get_packed_size(&items[n]) + ITEM_OVERHEAD;
		if (used > page_budget(srv)) {
			cr->next = t->id;
			break;
		}
		ptrs[n] = &items[n];
		n++;
	}
	/* Not even one fits: a reply over the limit would close the session. */
	if (!n && cr->next) {
		reply_error(c->rep, -EMSGSIZE, "one client's record does not fit in a message");
		return -EMSGSIZE;
	}
	cr->n_clients = n;
	cr->clients = ptrs;
	c->rep->body_case = IOMMU_NEST__REPLY__BODY_CLIENTS;
	c->rep->clients = cr;
	return 0;
}

/* ---- ListHwpts ---------------------------------------------------------------- */

struct hwpt_pick {
	const struct hwpt_entry **v;
	size_t n;
	uint32_t start;
};

static void pick_hwpt(struct hwpt_entry *e, void *arg)
{
	struct hwpt_pick *p = arg;

	if (e->id >= p->start)
		p->v[p->n++] = e;
}

/* By id, then (VM contexts: the same id in several clients) by owner session. */
static uint64_t owner_id(const struct hwpt_entry *e)
{
	return e->owner ? e->owner->id : 0;
}

static int by_id(const void *a, const void *b)
{
	const struct hwpt_entry *x = *(const struct hwpt_entry *const *)a;
	const struct hwpt_entry *y = *(const struct hwpt_entry *const *)b;

	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return owner_id(x) < owner_id(y) ? -1 : owner_id(x) > owner_id(y);
}

/*
 * Names of the devices attached to e, into names. A device is attached to
 * one HWPT at most, so a page needs room for n_bindings names in all.
 */
static size_t attached_names(const struct hwpt_registry *reg, const struct hwpt_entry *e,
			     char **names)
{
	size_t n = 0;

	for (uint32_t i = 0; i < reg->n_bindings; i++)
		if (reg->bindings[i].hwpt_id == e->id && reg->bindings[i].hwpt_be == e->be)
			names[n++] = (char *)reg->bindings[i].dev->name;
	return n;
}

static void fill_hwpt(IommuNest__HwptInfo *h, const struct hwpt_entry *e)
{
	const struct hwpt_counters *c = &e->counters;

	h->id = e->id;
	h->data_type = e->data_type;
	h->parent_id = e->parent_id;
	h->device = (char *)e->device;
	h->owner_session = e->owner ? e->owner->id : 0;
	h->owner_pid = e->owner_pid;
	h->owner_uid = e->owner_uid;
	h->orphan = e->owner == NULL;
	h->requests = c->requests;
	h->entries_received = c->entries_received;
	h->entries_submitted = c->entries_submitted;
	h->submissions = c->submissions;
	h->pages_flushed = c->pages_flushed;
	h->escalations = c->escalations;
	h->entries_failed = c->entries_failed;
	h->flush_alls = c->flush_alls;
	h->pages_flushed_ranged = c->ranged_pages;
}

/*
 * A page ends before p->v[n]: *next is its id. With VM contexts several
 * clients may hold that id, and the next page starts at it: the page
 * gives back the run of that id it took, so that no HWPT is listed twice.
 */
static size_t page_end(const struct hwpt_pick *p, size_t n, uint32_t *next)
{
	*next = p->v[n]->id;
	while (n > 0 && p->v[n - 1]->id == *next)
		n--;
	return n;
}

/* Fills items from the sorted picks while they fit; *next: where to go on. */
static size_t fill_hwpt_page(const struct server *srv, const struct hwpt_pick *p,
			     IommuNest__HwptInfo *items, IommuNest__HwptInfo **ptrs, char **names,
			     uint32_t *next)
{
	size_t n = 0, used = 0, n_names = 0, cap = page_items(srv, p->n);

	*next = 0;
	for (; n < p->n; n++) {
		IommuNest__HwptInfo *h = &items[n];

		if (n == cap)
			return page_end(p, n, next);
		iommu_nest__hwpt_info__init(h);
		fill_hwpt(h, p->v[n]);
		h->attached = names + n_names;
		h->n_attached = attached_names(&srv->reg, p->v[n], h->attached);
		n_names += h->n_attached;
		used += iommu_nest__hwpt_info__get_packed_size(h) + ITEM_OVERHEAD;
		if (used > page_budget(srv))
			return page_end(p, n, next);
		ptrs[n] = h;
	}
	return n;
}

int handle_list_hwpts(struct req_ctx *c)
{
	struct server *srv = c->srv;
	IommuNest__HwptsReply *hr = &c->out->body.hwpts;
	size_t cap = page_items(srv, srv->reg.count);
	struct hwpt_pick pick = {.start = c->msg->list_hwpts->start};
	IommuNest__HwptInfo *items, **ptrs;
	char **names;

	iommu_nest__hwpts_reply__init(hr);
	/* Freed by net/ once the reply is encoded. */
	items = c->out->heap[0] = calloc(cap, sizeof(*items));
	ptrs = c->out->heap[1] = calloc(cap, sizeof(*ptrs));
	names = c->out->heap[2] = calloc(CONFIG_MAX_DEVICES, sizeof(*names));
	pick.v = c->out->heap[3] = calloc(srv->reg.count ? srv->reg.count : 1, sizeof(*pick.v));
	if (!items || !ptrs || !names || !pick.v) {
		reply_error(c->rep, -ENOMEM, "out of memory");
		return -ENOMEM;
	}
	hwpt_registry_for_each(&srv->reg, pick_hwpt, &pick);
	qsort(pick.v, pick.n, sizeof(*pick.v), by_id);
	hr->n_hwpts = fill_hwpt_page(srv, &pick, items, ptrs, names, &hr->next);
	if (!hr->n_hwpts && hr->next) {
		reply_error(c->rep, -EMSGSIZE, "one HWPT's record does not fit in a message");
		return -EMSGSIZE;
	}
	hr->hwpts = ptrs;
	c->rep->body_case = IOMMU_NEST__REPLY__BODY_HWPTS;
	c->rep->hwpts = hr;
	return 0;
}

/*
 * Reload: the SIGHUP reload, run now, so that `iommu-nestctl reload` (and
 * systemctl reload through ExecReload=) can say whether it was applied.
 */
int handle_reload(struct req_ctx *c)
{
	struct server *srv = c->srv;
	char why[512] = "";
	int rc;

	rc = srv->reload ? srv->reload(srv->reload_ctx, why, sizeof(why)) : -EOPNOTSUPP;
	if (rc)
		reply_error(c->rep, rc, "%s", why[0] ? why : "this daemon cannot reload");
	return rc;
}
