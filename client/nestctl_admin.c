/* SPDX-License-Identifier: MIT */
/*
 * iommu-nestctl operator commands: status, clients, hwpts, stats [--watch],
 * metrics. Tables for people, --json (json-c) for scripts, keyed by the
 * table's column names; where a table cell is formatted for people the key
 * names the unit (connected -> connected_ms, mapped -> mapped_bytes).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "nestctl.h"
#include "nestctl_metrics.h"

/* ---- Formatting -------------------------------------------------------------- */

static void fmt_duration(char *buf, size_t len, uint64_t ms)
{
	uint64_t s = ms / 1000;

	if (s >= 86400)
		snprintf(buf, len, "%" PRIu64 "d%02" PRIu64 "h%02" PRIu64 "m", s / 86400,
			 s / 3600 % 24, s / 60 % 60);
	else if (s >= 3600)
		snprintf(buf, len, "%" PRIu64 "h%02" PRIu64 "m%02" PRIu64 "s", s / 3600,
			 s / 60 % 60, s % 60);
	else if (s >= 60)
		snprintf(buf, len, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
	else
		snprintf(buf, len, "%" PRIu64 ".%01" PRIu64 "s", s, ms % 1000 / 100);
}

static void fmt_bytes(char *buf, size_t len, uint64_t b)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	double v = (double)b;
	unsigned u = 0;

	while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		u++;
	}
	if (u)
		snprintf(buf, len, "%.1f %s", v, units[u]);
	else
		snprintf(buf, len, "%" PRIu64 " B", b);
}

static const char *hwpt_type_name(uint32_t t)
{
	switch (t) {
	case IOMMU_NEST_HWPT_DATA_VTD_S1:
		return "vtd-s1";
	case IOMMU_NEST_HWPT_DATA_SELFTEST:
		return "selftest";
	default:
		return "?";
	}
}

void print_json(struct json_object *o, bool pretty)
{
	printf("%s\n", json_object_to_json_string_ext(o, pretty ? JSON_C_TO_STRING_PRETTY
								: JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
}

#define JSET(o, k, v) json_object_object_add((o), (k), (v))
#define JU64(v)	      json_object_new_uint64(v)
#define JI64(v)	      json_object_new_int64(v)
#define JSTR(v)	      json_object_new_string(v)

/* ---- stats --------------------------------------------------------------------- */

static struct json_object *stats_json(const struct iommu_nest_stats *st)
{
	struct json_object *o = json_object_new_object();

#define X(f) JSET(o, #f, JU64(st->f));
	STATS_FIELDS(X)
#undef X
	return o;
}

void print_stats(const struct iommu_nest_stats *st, bool json)
{
	if (json)
		print_json(stats_json(st), true);
	else
		print_stats_table(st);
}

/* The counters and the shared-queue counters after them, in one object or table. */
static void print_all_stats(const struct iommu_nest_stats *st,
			    const struct iommu_nest_queue_stats *qs, bool json)
{
	struct json_object *o;

	if (!json) {
		print_stats_table(st);
		print_queue_stats_table(qs);
		return;
	}
	o = stats_json(st);
#define X(f) JSET(o, "queue_" #f, JU64(qs->f));
	QUEUE_STATS_FIELDS(X)
#undef X
	print_json(o, true);
}

/* Per-second change of a counter; a saturated or reset one has no rate. */
static double rate(uint64_t now, uint64_t before, double secs)
{
	if (now == UINT64_MAX || now < before || secs <= 0)
		return 0;
	return (double)(now - before) / secs;
}

static void print_watch_frame(const struct ctl *c, const struct iommu_nest_stats *st,
			      const struct iommu_nest_stats *prev, double secs)
{
	struct json_object *o, *r;
	char when[16], v[24];
	time_t t = time(NULL);

	strftime(when, sizeof(when), "%H:%M:%S", localtime(&t));
	if (c->json) {
		o = stats_json(st);
		r = json_object_new_object();
#define X(f) JSET(r, #f, json_object_new_double(rate(st->f, prev->f, secs)));
		STATS_FIELDS(X)
#undef X
		JSET(o, "time", JSTR(when));
		JSET(o, "rates_per_sec", r);
		print_json(o, false);
		fflush(stdout);
		return;
	}
	/* In place on a terminal; a log of frames anywhere else. */
	if (isatty(STDOUT_FILENO))
		printf("\033[H\033[2J");
	printf("iommu-nestd counters at %s, every %.1f s (Ctrl-C stops)\n", when,
	       c->interval_ms / 1000.0);
	printf("  %-18s %20s %14s\n", "counter", "value", "per second");
#define X(f)                                                                                       \
	fmt_count(v, sizeof(v), st->f);                                                            \
	printf("  %-18s %20s %14.1f\n", #f, v, rate(st->f, prev->f, secs));
	STATS_FIELDS(X)
#undef X
	fflush(stdout);
}

static int watch_stats(struct ctl *c)
{
	struct iommu_nest_stats st, prev;
	struct timespec t0, t1;
	double secs = 0;
	int err;

	err = iommu_nest_stats(c->h, &prev);
	if (err)
		return fail(c, "stats", err);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	st = prev;
	for (uint32_t i = 0; !c->count || i < c->count; i++) {
		print_watch_frame(c, &st, &prev, secs);
		if (c->count && i + 1 == c->count)
			break;
		usleep(c->interval_ms * 1000);
		prev = st;
		err = iommu_nest_stats(c->h, &st);
		if (err)
			return fail(c, "stats", err);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
		t0 = t1;
	}
	return 0;
}

int cmd_stats(struct ctl *c, int argc, char **argv)
{
	struct iommu_nest_stats st;
	struct iommu_nest_queue_stats qs;
	int err;

	if (need_args(argc, 1, "stats [--watch [--interval SECONDS] [--count N]] [--json]"))
		return 2;
	if (c->watch)
		return watch_stats(c);
	err = iommu_nest_stats(c->h, &st);
	if (!err)
		err = iommu_nest_queue_stats(c->h, &qs);
	if (err)
		return fail(c, "stats", err);
	print_all_stats(&st, &qs, c->json);
	return 0;
}

/* ---- status ---------------------------------------------------------------------- */

static struct json_object *histogram_json(const struct iommu_nest_histogram *h)
{
	struct json_object *o = json_object_new_object(), *b = json_object_new_array();

	for (uint32_t i = 0; i <= h->n_bounds; i++) {
		struct json_object *e = json_object_new_object();

		JSET(e, "le_ns", i < h->n_bounds ? JU64(h->bound_ns[i]) : NULL);
		JSET(e, "count", JU64(h->count[i]));
		json_object_array_add(b, e);
	}
	JSET(o, "name", JSTR(h->name));
	JSET(o, "help", JSTR(h->help));
	JSET(o, "samples", JU64(h->samples));
	JSET(o, "sum_ns", JU64(h->sum_ns));
	JSET(o, "buckets", b);
	return o;
}

static struct json_object *status_json(const struct iommu_nest_status *st)
{
	struct json_object *o = json_object_new_object();
	struct json_object *devs = json_object_new_array(), *hists = json_object_new_array();

	for (size_t i = 0; i < st->n_devices; i++) {
		const struct iommu_nest_device_status *d = &st->devices[i];
		struct json_object *e = json_object_new_object();

		JSET(e, "device", JSTR(d->name));
		JSET(e, "kind", JSTR(d->kind));
		JSET(e, "hwpt", JU64(d->hwpt_id));
		JSET(e, "owner_session", JU64(d->owner_session));
		JSET(e, "owner_pid", JI64(d->owner_pid));
		JSET(e, "mapped_bytes", JU64(d->mapped_bytes));
		JSET(e, "mappings", JU64(d->mappings));
		json_object_array_add(devs, e);
	}
	for (size_t i = 0; i < st->n_histograms; i++)
		json_object_array_add(hists, histogram_json(&st->histograms[i]));
	JSET(o, "daemon_version", JSTR(st->daemon_version));
	JSET(o, "backend", JSTR(st->backend));
	JSET(o, "socket", JSTR(st->socket));
	JSET(o, "pid", JI64(st->pid));
	JSET(o, "uptime_ms", JU64(st->uptime_ms));
	JSET(o, "clients", JU64(st->clients));
	JSET(o, "hwpts", JU64(st->hwpts));
	JSET(o, "orphans", JU64(st->orphans));
	JSET(o, "devices", devs);
	JSET(o, "totals", stats_json(&st->totals));
	JSET(o, "histograms", hists);
	return o;
}

/* Upper bound of the bucket holding quantile q; UINT64_MAX above the last bound. */
static uint64_t quantile_bound(const struct iommu_nest_histogram *h, double q)
{
	uint64_t want = (uint64_t)((double)h->samples * q + 0.999999), seen = 0;

	for (uint32_t i = 0; i < h->n_bounds; i++) {
		seen += h->count[i];
		if (seen >= want)
			return h->bound_ns[i];
	}
	return UINT64_MAX;
}

static void fmt_ns(char *buf, size_t len, uint64_t ns)
{
	if (ns == UINT64_MAX)
		snprintf(buf, len, "above");
	else if (ns >= 1000000000)
		snprintf(buf, len, "%.2f s", ns / 1e9);
	else if (ns >= 1000000)
		snprintf(buf, len, "%.2f ms", ns / 1e6);
	else
		snprintf(buf, len, "%.1f us", ns / 1e3);
}

static void print_histogram_row(const struct iommu_nest_histogram *h)
{
	char mean[24] = "-", p50[24] = "-", p99[24] = "-";

	if (h->samples) {
		fmt_ns(mean, sizeof(mean), h->sum_ns / h->samples);
		fmt_ns(p50, sizeof(p50), quantile_bound(h, 0.5));
		fmt_ns(p99, sizeof(p99), quantile_bound(h, 0.99));
	}
	printf("  %-20s %10" PRIu64 " %12s %12s %12s\n", h->name, h->samples, mean, p50, p99);
}

static void print_status(const struct iommu_nest_status *st)
{
	char up[32], mapped[24];

	fmt_duration(up, sizeof(up), st->uptime_ms);
	printf("iommu-nestd %s, pid %d, backend %s\n", st->daemon_version, st->pid, st->backend);
	printf("socket      %s\n", st->socket);
	printf("uptime      %s\n", up);
	printf("clients     %u\n", st->clients);
	printf("hwpts       %u (%u orphans awaiting reclaim)\n", st->hwpts, st->orphans);
	printf("\ndevices:\n  %-16s %-9s %6s %10s %12s %8s\n", "device", "kind", "hwpt",
	       "owner_pid", "mapped", "mappings");
	for (size_t i = 0; i < st->n_devices; i++) {
		const struct iommu_nest_device_status *d = &st->devices[i];

		fmt_bytes(mapped, sizeof(mapped), d->mapped_bytes);
		printf("  %-16s %-9s %6u %10d %12s %8u\n", d->name, d->kind, d->hwpt_id,
		       d->owner_pid, mapped, d->mappings);
	}
	printf("\nlatency (bucket upper bounds):\n  %-20s %10s %12s %12s %12s\n", "name", "samples",
	       "mean", "p50", "p99");
	for (size_t i = 0; i < st->n_histograms; i++)
		print_histogram_row(&st->histograms[i]);
	printf("\ntotals:\n");
	print_stats(&st->totals, false);
}

int cmd_status(struct ctl *c, int argc, char **argv)
{
	struct iommu_nest_status *st;
	int err;

	if (need_args(argc, 1, "status [--json]"))
		return 2;
	err = iommu_nest_status(c->h, &st);
	if (err)
		return fail(c, "status", err);
	if (c->json)
		print_json(status_json(st), true);
	else
		print_status(st);
	free(st);
	return 0;
}

/* ---- clients -------------------------------------------------------------------------- */

static struct json_object *client_json(const struct iommu_nest_client_info *t)
{
	struct json_object *o = json_object_new_object();

	JSET(o, "session", JU64(t->session));
	JSET(o, "pid", JI64(t->pid));
	JSET(o, "uid", JU64(t->uid));
	JSET(o, "gid", JU64(t->gid));
	/* Chosen by the tenant: any bytes at all. */
	JSET(o, "comm", ctl_json_string(t->comm));
	JSET(o, "name", ctl_json_string(t->name));
	JSET(o, "hwpts", JU64(t->hwpts));
	JSET(o, "requests", JU64(t->requests));
	JSET(o, "errors", JU64(t->errors));
	JSET(o, "entries", JU64(t->entries));
	JSET(o, "denials", JU64(t->denials));
	JSET(o, "in_flight", JU64(t->in_flight));
	JSET(o, "connected_ms", JU64(t->connected_ms));
	JSET(o, "mapped_bytes", JU64(t->mapped_bytes));
	JSET(o, "admin", json_object_new_boolean(t->admin));
	return o;
}

static void print_clients(const struct iommu_nest_client_info *v, size_t n)
{
	char conn[32], comm[4 * sizeof(v->comm)], name[4 * sizeof(v->name)];

	printf("%-8s %-8s %-6s %-16s %-20s %5s %10s %7s %12s %8s %9s %5s\n", "session", "pid",
	       "uid", "comm", "name", "hwpts", "requests", "errors", "entries", "in_flight",
	       "connected", "admin");
	for (size_t i = 0; i < n; i++) {
		const struct iommu_nest_client_info *t = &v[i];

		fmt_duration(conn, sizeof(conn), t->connected_ms);
		printf("%-8" PRIu64 " %-8d %-6u %-16s %-20s %5u %10" PRIu64 " %7" PRIu64
		       " %12" PRIu64 " %8u %9s %5s\n",
		       t->session, t->pid, t->uid, ctl_escape(t->comm, comm, sizeof(comm)),
		       t->name[0] ? ctl_escape(t->name, name, sizeof(name)) : "-", t->hwpts,
		       t->requests, t->errors, t->entries, t->in_flight, conn,
		       t->admin ? "yes" : "no");
	}
}

int cmd_clients(struct ctl *c, int argc, char **argv)
{
	struct iommu_nest_client_info *v;
	struct json_object *a;
	size_t n;
	int err;

	if (need_args(argc, 1, "clients [--json]"))
		return 2;
	err = iommu_nest_list_clients(c->h, &v, &n);
	if (err)
		return fail(c, "clients", err);
	if (c->json) {
		a = json_object_new_array();
		for (size_t i = 0; i < n; i++)
			json_object_array_add(a, client_json(&v[i]));
		print_json(a, true);
	} else {
		print_clients(v, n);
	}
	free(v);
	return 0;
}

/* ---- hwpts ------------------------------------------------------------------------------ */

static struct json_object *hwpt_json(const struct iommu_nest_hwpt_info *t)
{
	struct json_object *o = json_object_new_object(), *att = json_object_new_array();

	for (uint32_t i = 0; i < t->n_attached && i < IOMMU_NEST_ATTACHED_MAX; i++)
		json_object_array_add(att, JSTR(t->attached[i]));
	JSET(o, "id", JU64(t->id));
	JSET(o, "type", JSTR(hwpt_type_name(t->data_type)));
	JSET(o, "parent", JU64(t->parent_id));
	JSET(o, "device", JSTR(t->device));
	JSET(o, "owner_session", JU64(t->owner_session));
	JSET(o, "owner_pid", JI64(t->owner_pid));
	JSET(o, "owner_uid", JU64(t->owner_uid));
	JSET(o, "orphan", json_object_new_boolean(t->orphan));
	JSET(o, "attached", att);
	JSET(o, "requests", JU64(t->requests));
	JSET(o, "entries_in", JU64(t->entries_received));
	JSET(o, "submitted", JU64(t->entries_submitted));
	JSET(o, "submissions", JU64(t->submissions));
	JSET(o, "pages_flushed", JU64(t->pages_flushed));
	JSET(o, "escalations", JU64(t->escalations));
	JSET(o, "failures", JU64(t->entries_failed));
	return o;
}

static void fmt_attached(char *buf, size_t len, const struct iommu_nest_hwpt_info *t)
{
	size_t off = 0;

	snprintf(buf, len, "-");
	for (uint32_t i = 0; i < t->n_attached && i < IOMMU_NEST_ATTACHED_MAX && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? "," : "", t->attached[i]);
}

static void print_hwpts(const struct iommu_nest_hwpt_info *v, size_t n)
{
	char owner[24], att[128], pages[24];

	printf("%-6s %-9s %-6s %-12s %-10s %-12s %9s %11s %10s %14s %11s %8s\n", "id", "type",
	       "parent", "device", "owner_pid", "attached", "requests", "entries_in", "submitted",
	       "pages_flushed", "escalations", "failures");
	for (size_t i = 0; i < n; i++) {
		const struct iommu_nest_hwpt_info *t = &v[i];

		if (t->orphan)
			snprintf(owner, sizeof(owner), "orphan");
		else
			snprintf(owner, sizeof(owner), "%d", t->owner_pid);
		fmt_attached(att, sizeof(att), t);
		fmt_count(pages, sizeof(pages), t->pages_flushed);
		printf("%-6u %-9s %-6u %-12s %-10s %-12s %9" PRIu64 " %11" PRIu64 " %10" PRIu64
		       " %14s %11" PRIu64 " %8" PRIu64 "\n",
		       t->id, hwpt_type_name(t->data_type), t->parent_id, t->device, owner, att,
		       t->requests, t->entries_received, t->entries_submitted, pages,
		       t->escalations, t->entries_failed);
	}
}

int cmd_hwpts(struct ctl *c, int argc, char **argv)
{
	struct iommu_nest_hwpt_info *v;
	struct json_object *a;
	size_t n;
	int err;

	if (need_args(argc, 1, "hwpts [--json]"))
		return 2;
	err = iommu_nest_list_hwpts(c->h, &v, &n);
	if (err)
		return fail(c, "hwpts", err);
	if (c->json) {
		a = json_object_new_array();
		for (size_t i = 0; i < n; i++)
			json_object_array_add(a, hwpt_json(&v[i]));
		print_json(a, true);
	} else {
		print_hwpts(v, n);
	}
	free(v);
	return 0;
}

/* ---- metrics ------------------------------------------------------------------------------ */

int cmd_metrics(struct ctl *c, int argc, char **argv)
{
	struct iommu_nest_queue_stats qs;
	struct iommu_nest_status *st;
	struct iommu_nest_hwpt_info *v;
	size_t n;
	int err;

	if (need_args(argc, 1, "metrics [--format openmetrics|prometheus]"))
		return 2;
	err = iommu_nest_status(c->h, &st);
	if (err)
		return fail(c, "metrics", err);
	err = iommu_nest_queue_stats(c->h, &qs);
	if (!err)
		err = iommu_nest_list_hwpts(c->h, &v, &n);
	if (err) {
		free(st);
		return fail(c, "metrics", err);
	}
	metrics_write(stdout, c->prometheus ? METRICS_PROMETHEUS : METRICS_OPENMETRICS, st, &qs, v,
		      n);
	free(st);
	free(v);
	return 0;
}

/* ---- reload ------------------------------------------------------------------------------- */

/*
 * Exits 0 only once the daemon applied the file: ExecReload= runs this, so
 * that `systemctl reload` fails, with the daemon's reason, on a bad config.
 */
int cmd_reload(struct ctl *c, int argc, char **argv)
{
	int err;

	if (need_args(argc, 1, "reload"))
		return 2;
	err = iommu_nest_reload(c->h);
	if (err)
		return fail(c, "reload", err);
	if (c->json) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "reloaded", json_object_new_boolean(1));
		print_json(o, true);
	} else {
		printf("configuration reloaded\n");
	}
	return 0;
}
