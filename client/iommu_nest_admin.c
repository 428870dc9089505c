/* SPDX-License-Identifier: MIT */
/*
 * Administration requests: Status, ListClients, ListHwpts, Reload. Each result is
 * one allocation the caller frees; lists are fetched page by page until
 * the daemon says there is no next page.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iommu_nest.h"
#include "iommu_nest_call.h"

/* Daemons list at most this many pages: a bound against a looping peer. */
#define MAX_PAGES 100000

static void copy_name(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src ? src : "");
}

/* ---- Status ---------------------------------------------------------------- */

static void copy_device(struct iommu_nest_device_status *d, const IommuNest__DeviceStatus *m)
{
	copy_name(d->name, sizeof(d->name), m->name);
	copy_name(d->kind, sizeof(d->kind), m->kind);
	d->hwpt_id = m->hwpt_id;
	d->owner_session = m->owner_session;
	d->owner_pid = m->owner_pid;
	d->mapped_bytes = m->mapped_bytes;
	d->mappings = m->mappings;
}

static int copy_histogram(struct iommu_nest_histogram *h, const IommuNest__Histogram *m)
{
	if (m->n_bound_ns > IOMMU_NEST_HIST_MAX || m->n_count != m->n_bound_ns + 1)
		return -EPROTO;
	copy_name(h->name, sizeof(h->name), m->name);
	copy_name(h->help, sizeof(h->help), m->help);
	h->n_bounds = (uint32_t)m->n_bound_ns;
	memcpy(h->bound_ns, m->bound_ns, m->n_bound_ns * sizeof(*h->bound_ns));
	memcpy(h->count, m->count, m->n_count * sizeof(*h->count));
	h->sum_ns = m->sum_ns;
	h->samples = m->samples;
	return 0;
}

static struct iommu_nest_status *status_from(const IommuNest__StatusReply *m)
{
	struct iommu_nest_status *st;
	size_t size = sizeof(*st) + m->n_devices * sizeof(*st->devices) +
		      m->n_histograms * sizeof(*st->histograms);

	st = calloc(1, size);
	if (!st)
		return NULL;
	copy_name(st->daemon_version, sizeof(st->daemon_version), m->daemon_version);
	copy_name(st->backend, sizeof(st->backend), m->backend);
	copy_name(st->socket, sizeof(st->socket), m->socket);
	st->pid = m->pid;
	st->uptime_ms = m->uptime_ms;
	st->clients = m->clients;
	st->hwpts = m->hwpts;
	st->orphans = m->orphans;
	if (m->totals) {
		nest_copy_stats(&st->totals, m->totals);
		st->flush_alls = m->totals->flush_alls;
		st->pages_flushed_ranged = m->totals->pages_flushed_ranged;
	}
	st->devices = (struct iommu_nest_device_status *)(st + 1);
	st->histograms = (struct iommu_nest_histogram *)(st->devices + m->n_devices);
	for (size_t i = 0; i < m->n_devices; i++)
		copy_device(&st->devices[st->n_devices++], m->devices[i]);
	for (size_t i = 0; i < m->n_histograms; i++) {
		if (copy_histogram(&st->histograms[st->n_histograms++], m->histograms[i])) {
			free(st);
			return NULL;
		}
	}
	return st;
}

int iommu_nest_status(struct iommu_nest *h, struct iommu_nest_status **status)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__Status s = IOMMU_NEST__STATUS__INIT;
	IommuNest__Reply *reply;
	int err;

	*status = NULL;
	req.body_case = IOMMU_NEST__REQUEST__BODY_STATUS;
	req.status = &s;
	err = nest_call(h, &req, IOMMU_NEST__REPLY__BODY_DAEMON_STATUS, &reply);
	if (err)
		return err;
	*status = status_from(reply->daemon_status);
	nest_release(h);
	if (!*status)
		return nest_fail(h, -EPROTO, "malformed status reply (or out of memory)");
	return 0;
}

int iommu_nest_reload(struct iommu_nest *h)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__Reload r = IOMMU_NEST__RELOAD__INIT;
	IommuNest__Reply *reply;
	int err;

	req.body_case = IOMMU_NEST__REQUEST__BODY_RELOAD;
	req.reload = &r;
	err = nest_call(h, &req, IOMMU_NEST__REPLY__BODY__NOT_SET, &reply);
	if (!err)
		nest_release(h);
	return err;
}

/* ---- Paged lists -------------------------------------------------------------- */

/* A growing array of fixed-size records. */
struct list_buf {
	void *v;
	size_t n, cap, size;
};

static void *list_slot(struct list_buf *l)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		void *v = realloc(l->v, cap * l->size);

		if (!v)
			return NULL;
		l->v = v;
		l->cap = cap;
	}
	memset((char *)l->v + l->n * l->size, 0, l->size);
	return (char *)l->v + l->n++ * l->size;
}

static void copy_client(struct iommu_nest_client_info *c, const IommuNest__ClientInfo *m)
{
	c->session = m->session;
	c->pid = m->pid;
	c->uid = m->uid;
	c->gid = m->gid;
	copy_name(c->comm, sizeof(c->comm), m->comm);
	copy_name(c->name, sizeof(c->name), m->name);
	c->hwpts = m->hwpts;
	c->requests = m->requests;
	c->errors = m->errors;
	c->entries = m->entries;
	c->denials = m->denials;
	c->in_flight = m->in_flight;
	c->connected_ms = m->connected_ms;
	c->mapped_bytes = m->mapped_bytes;
	c->admin = m->admin;
}

/*
 * One page of clients from *start on into l; *start becomes the next
 * page's start (0: done). A next that does not move forward is a protocol
 * error: it would loop forever.
 */
static int clients_page(struct iommu_nest *h, struct list_buf *l, uint64_t *start)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__ListClients lc = IOMMU_NEST__LIST_CLIENTS__INIT;
	IommuNest__Reply *reply;
	const IommuNest__ClientsReply *cr;
	int err = 0;

	lc.start = *start;
	req.body_case = IOMMU_NEST__REQUEST__BODY_LIST_CLIENTS;
	req.list_clients = &lc;
	err = nest_call(h, &req, IOMMU_NEST__REPLY__BODY_CLIENTS, &reply);
	if (err)
		return err;
	cr = reply->clients;
	for (size_t i = 0; i < cr->n_clients && !err; i++) {
		struct iommu_nest_client_info *c = list_slot(l);

		if (c)
			copy_client(c, cr->clients[i]);
		else
			err = -ENOMEM;
	}
	if (!err && cr->next && cr->next <= *start)
		err = nest_fail(h, -EPROTO, "client list does not advance");
	*start = cr->next;
	nest_release(h);
	return err;
}

/* Fetches every page with fn into one array of records of size bytes. */
static int list_all(struct iommu_nest *h,
		    int (*fn)(struct iommu_nest *, struct list_buf *, uint64_t *), size_t size,
		    void **out, size_t *n)
{
	struct list_buf l = {.size = size};
	uint64_t start = 0;
	int err, pages = 0;

	do {
		err = fn(h, &l, &start);
	} while (!err && start && ++pages < MAX_PAGES);
	if (err) {
		free(l.v);
		l.v = NULL;
		l.n = 0;
	}
	*out = l.v;
	*n = l.n;
	return err;
}

int iommu_nest_list_clients(struct iommu_nest *h, struct iommu_nest_client_info **clients,
			    size_t *n)
{
	return list_all(h, clients_page, sizeof(**clients), (void **)clients, n);
}

static void copy_hwpt(struct iommu_nest_hwpt_info *t, const IommuNest__HwptInfo *m)
{
	t->id = m->id;
	t->data_type = m->data_type;
	t->parent_id = m->parent_id;
	copy_name(t->device, sizeof(t->device), m->device);
	t->owner_session = m->owner_session;
	t->owner_pid = m->owner_pid;
	t->owner_uid = m->owner_uid;
	t->orphan = m->orphan;
	t->n_attached = (uint32_t)m->n_attached;
	for (size_t i = 0; i < m->n_attached && i < IOMMU_NEST_ATTACHED_MAX; i++)
		copy_name(t->attached[i], sizeof(t->attached[i]), m->attached[i]);
	t->requests = m->requests;
	t->entries_received = m->entries_received;
	t->entries_submitted = m->entries_submitted;
	t->submissions = m->submissions;
	t->pages_flushed = m->pages_flushed;
	t->escalations = m->escalations;
	t->entries_failed = m->entries_failed;
	t->flush_alls = m->flush_alls;
	t->pages_flushed_ranged = m->pages_flushed_ranged;
}

static int hwpts_page(struct iommu_nest *h, struct list_buf *l, uint64_t *start)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__ListHwpts lh = IOMMU_NEST__LIST_HWPTS__INIT;
	IommuNest__Reply *reply;
	const IommuNest__HwptsReply *hr;
	int err = 0;

	if (*start > UINT32_MAX)
		return nest_fail(h, -EPROTO, "HWPT list does not advance");
	lh.start = (uint32_t)*start;
	req.body_case = IOMMU_NEST__REQUEST__BODY_LIST_HWPTS;
	req.list_hwpts = &lh;
	err = nest_call(h, &req, IOMMU_NEST__REPLY__BODY_HWPTS, &reply);
	if (err)
		return err;
	hr = reply->hwpts;
	for (size_t i = 0; i < hr->n_hwpts && !err; i++) {
		struct iommu_nest_hwpt_info *t = list_slot(l);

		if (t)
			copy_hwpt(t, hr->hwpts[i]);
		else
			err = -ENOMEM;
	}
	if (!err && hr->next && hr->next <= *start)
		err = nest_fail(h, -EPROTO, "HWPT list does not advance");
	*start = hr->next;
	nest_release(h);
	return err;
}

int iommu_nest_list_hwpts(struct iommu_nest *h, struct iommu_nest_hwpt_info **hwpts, size_t *n)
{
	return list_all(h, hwpts_page, sizeof(**hwpts), (void **)hwpts, n);
}
