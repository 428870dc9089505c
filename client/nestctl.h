/* SPDX-License-Identifier: MIT */
/*
 * iommu-nestctl internals shared by its command files: the invocation's
 * state, argument parsing and error reporting.
 */
#ifndef NESTCTL_H
#define NESTCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "iommu_nest.h"
#include "tables.h"

#define MAX_HWPTS 16

struct ctl {
	struct iommu_nest *h;
	bool json;
	bool cont;
	bool leaf;	      /* invalidate: every entry leaf-only */
	bool watch;	      /* stats: redraw until interrupted */
	uint32_t interval_ms; /* stats --watch period */
	uint32_t count;	      /* stats --watch refreshes; 0: forever */
	bool prometheus;      /* metrics: Prometheus text 0.0.4, not OpenMetrics */
	uint64_t pgtbl;
	uint32_t addr_width;
	uint32_t iotlb;
	uint32_t hwpts[MAX_HWPTS];
	int n_hwpts;
};

/* Reports a failed request on stderr (with the daemon's reason); returns 1. */
int fail(struct ctl *c, const char *what, int err);
/* Numbers: decimal, 0x hex, or "all" (UINT64_MAX); complain on stderr. */
int parse_u64(const char *s, uint64_t *v);
int parse_u32(const char *s, uint32_t *v);
/* 0 if argc == want, else prints the usage line and returns -EINVAL. */
int need_args(int argc, int want, const char *usage);

/*
 * A tenant-controlled string (client_name, comm) made safe for a table on
 * the operator's terminal: printable ASCII but backslash as it is, every
 * other byte (ESC, newline, any byte >= 0x80) as \xNN, a backslash as
 * \\. Written to buf (always terminated, cut to fit); returns buf.
 */
const char *ctl_escape(const char *s, char *buf, size_t len);

struct json_object;
/* A JSON string of s, valid UTF-8 whatever s holds (bad bytes: U+FFFD). */
struct json_object *ctl_json_string(const char *s);

/* Prints one JSON document (pretty or on one line) and frees it. */
void print_json(struct json_object *o, bool pretty);

/* The daemon counters as a table (or pretty JSON). */
void print_stats(const struct iommu_nest_stats *st, bool json);

/* probe DEVICE TYPE (nestctl_probe.c). */
int cmd_probe_device(struct ctl *c, const char *dev, const char *type);

/* Operator commands (nestctl_admin.c). */
int cmd_status(struct ctl *c, int argc, char **argv);
int cmd_clients(struct ctl *c, int argc, char **argv);
int cmd_hwpts(struct ctl *c, int argc, char **argv);
int cmd_stats(struct ctl *c, int argc, char **argv);
int cmd_metrics(struct ctl *c, int argc, char **argv);
int cmd_reload(struct ctl *c, int argc, char **argv);

#endif
