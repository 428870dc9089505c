/* SPDX-License-Identifier: MIT */
/*
 * Metrics exposition, OpenMetrics or Prometheus text. Families are written
 * whole (TYPE, HELP, then every sample), counter samples with the _total
 * suffix, histograms with cumulative buckets in seconds and a +Inf bucket,
 * label values escaped. The two formats differ only in how a counter or
 * info family is named and typed and in the UNIT and EOF lines. No Debian
 * package writes these formats from C, and it is a few lines of printf;
 * tests validate the output with the Python reference parsers.
 */
#include "nestctl_metrics.h"

#include <inttypes.h>
#include <string.h>

#define PREFIX "iommu_nestd_"

struct out {
	FILE *f;
	enum metrics_format fmt;
};

static void family(const struct out *o, const char *name, const char *type, const char *help)
{
	const char *suffix = "";

	/* Prometheus text types a counter under its samples' name; it has no info type. */
	if (o->fmt == METRICS_PROMETHEUS && !strcmp(type, "counter"))
		suffix = "_total";
	if (o->fmt == METRICS_PROMETHEUS && !strcmp(type, "info")) {
		suffix = "_info";
		type = "gauge";
	}
	fprintf(o->f, "# TYPE " PREFIX "%s%s %s\n# HELP " PREFIX "%s%s %s\n", name, suffix, type,
		name, suffix, help);
}

/* A label value: backslash, double quote and newline escaped. */
static void label_value(FILE *f, const char *v)
{
	fputc('"', f);
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			fprintf(f, "\\%c", *v);
		else if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
	fputc('"', f);
}

/* clang-format off */
#define TOTALS(X)										\
	X(connections, "Connections accepted")							\
	X(requests, "Requests received")							\
	X(request_errors, "Requests answered with an error")					\
	X(entries_received, "Invalidation entries received from clients")			\
	X(entries_failed, "Invalidation entries that failed")					\
	X(entries_submitted, "Invalidation entries submitted to the backend after coalescing")	\
	X(submissions, "Backend invalidation calls")						\
	X(protocol_errors, "Connections closed for a broken frame")				\
	X(batches, "Per-HWPT batches run")							\
	X(denials, "Connections or requests refused by policy or quota")

#define HWPT_COUNTERS(X)									\
	X(requests, "Invalidate requests that reached the HWPT's batch")			\
	X(entries_received, "Invalidation entries received for the HWPT")			\
	X(entries_submitted, "Entries submitted for the HWPT after coalescing")		\
	X(submissions, "Backend invalidation calls for the HWPT")				\
	X(pages_flushed_ranged, "Modelled pages flushed on the HWPT by range invalidations")	\
	X(flush_alls, "Domain-wide flushes submitted for the HWPT")				\
	X(escalations, "Batches the coalescer widened to a domain-wide flush-all")		\
	X(entries_failed, "Invalidation entries on the HWPT that failed")
/* clang-format on */

static void write_totals(const struct out *o, const struct iommu_nest_stats *t)
{
	FILE *f = o->f;

#define X(name, help)                                                                              \
	family(o, #name, "counter", help);                                                         \
	fprintf(f, PREFIX "%s_total %" PRIu64 "\n", #name, t->name);
	TOTALS(X)
#undef X
}

/*
 * pages_flushed saturates at the first flush-all, which a rate() would
 * read as one enormous spike: export its two parts instead.
 */
static void write_flushed(const struct out *o, const struct iommu_nest_status *st)
{
	family(o, "pages_flushed_ranged", "counter",
	       "Modelled pages flushed by range invalidations");
	fprintf(o->f, PREFIX "pages_flushed_ranged_total %" PRIu64 "\n", st->pages_flushed_ranged);
	family(o, "flush_alls", "counter", "Domain-wide flushes submitted");
	fprintf(o->f, PREFIX "flush_alls_total %" PRIu64 "\n", st->flush_alls);
}

/* clang-format off */
#define QUEUE_COUNTERS(X)									\
	X(submissions, "Shared-queue submissions taken")					\
	X(completions, "Shared-queue completions written")					\
	X(kicks, "Shared-queue kicks (eventfd writes) the daemon read")				\
	X(kicks_suppressed, "Shared-queue submissions taken while polling, with no kick")	\
	X(calls, "Shared-queue calls (eventfd writes) to a sleeping client")			\
	X(calls_suppressed, "Shared-queue completions to a client not asleep, with no call")	\
	X(stalls, "Shared-queue back-pressure stalls")						\
	X(poll_passes, "Turns of the daemon's shared-queue poll loop")
/* clang-format on */

static void write_queue(const struct out *o, const struct iommu_nest_queue_stats *qs)
{
#define X(name, help)                                                                              \
	family(o, "queue_" #name, "counter", help);                                                \
	fprintf(o->f, PREFIX "queue_%s_total %" PRIu64 "\n", #name, qs->name);
	QUEUE_COUNTERS(X)
#undef X
}

static void gauge(const struct out *o, const char *name, const char *help, uint64_t v)
{
	family(o, name, "gauge", help);
	fprintf(o->f, PREFIX "%s %" PRIu64 "\n", name, v);
}

static void write_daemon(const struct out *o, const struct iommu_nest_status *st)
{
	FILE *f = o->f;

	family(o, "build", "info", "Version and backend of the daemon");
	fprintf(f, PREFIX "build_info{version=");
	label_value(f, st->daemon_version);
	fprintf(f, ",backend=");
	label_value(f, st->backend);
	fprintf(f, "} 1\n");
	family(o, "uptime_seconds", "gauge", "Seconds since the daemon started");
	fprintf(f, PREFIX "uptime_seconds %.3f\n", st->uptime_ms / 1000.0);
	gauge(o, "clients", "Connected clients", st->clients);
	gauge(o, "hwpts", "Nested HWPTs held, orphans included", st->hwpts);
	gauge(o, "orphans", "HWPTs of a previous instance awaiting Reclaim", st->orphans);
}

static void device_samples(FILE *f, const struct iommu_nest_status *st, const char *name, int which)
{
	for (size_t i = 0; i < st->n_devices; i++) {
		const struct iommu_nest_device_status *d = &st->devices[i];

		fprintf(f, PREFIX "%s{device=", name);
		label_value(f, d->name);
		fprintf(f, "} %" PRIu64 "\n",
			which ? d->mapped_bytes : (uint64_t)(d->hwpt_id != 0));
	}
}

static void write_devices(const struct out *o, const struct iommu_nest_status *st)
{
	family(o, "device_nested", "gauge", "1 if a nested HWPT is attached to the device");
	device_samples(o->f, st, "device_nested", 0);
	family(o, "device_mapped_bytes", "gauge", "Guest memory mapped on the device's stage 2");
	device_samples(o->f, st, "device_mapped_bytes", 1);
}

static void write_histogram(const struct out *o, const struct iommu_nest_histogram *h)
{
	char name[IOMMU_NEST_NAME_MAX + 16];
	uint64_t cum = 0;
	FILE *f = o->f;

	snprintf(name, sizeof(name), "%s_seconds", h->name);
	family(o, name, "histogram", h->help);
	if (o->fmt == METRICS_OPENMETRICS)
		fprintf(f, "# UNIT " PREFIX "%s seconds\n", name);
	for (uint32_t i = 0; i < h->n_bounds; i++) {
		cum += h->count[i];
		fprintf(f, PREFIX "%s_bucket{le=\"%.9g\"} %" PRIu64 "\n", name,
			h->bound_ns[i] / 1e9, cum);
	}
	cum += h->count[h->n_bounds];
	fprintf(f, PREFIX "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, cum);
	fprintf(f, PREFIX "%s_count %" PRIu64 "\n", name, cum);
	fprintf(f, PREFIX "%s_sum %.9f\n", name, h->sum_ns / 1e9);
}

static void hwpt_labels(FILE *f, const struct iommu_nest_hwpt_info *t)
{
	fprintf(f, "{hwpt=\"%u\",device=", t->id);
	label_value(f, t->device);
	fputc('}', f);
}

static void write_hwpts(const struct out *o, const struct iommu_nest_hwpt_info *v, size_t n)
{
	FILE *f = o->f;

	if (!n)
		return;
#define X(name, help)                                                                              \
	family(o, "hwpt_" #name, "counter", help);                                                 \
	for (size_t i = 0; i < n; i++) {                                                           \
		fprintf(f, PREFIX "hwpt_%s_total", #name);                                         \
		hwpt_labels(f, &v[i]);                                                             \
		fprintf(f, " %" PRIu64 "\n", v[i].name);                                           \
	}
	HWPT_COUNTERS(X)
#undef X
}

void metrics_write(FILE *f, enum metrics_format fmt, const struct iommu_nest_status *st,
		   const struct iommu_nest_queue_stats *qs,
		   const struct iommu_nest_hwpt_info *hwpts, size_t n_hwpts)
{
	const struct out o = {.f = f, .fmt = fmt};

	write_daemon(&o, st);
	write_totals(&o, &st->totals);
	write_flushed(&o, st);
	write_queue(&o, qs);
	write_devices(&o, st);
	for (size_t i = 0; i < st->n_histograms; i++)
		write_histogram(&o, &st->histograms[i]);
	write_hwpts(&o, hwpts, n_hwpts);
	if (fmt == METRICS_OPENMETRICS)
		fputs("# EOF\n", f);
}
