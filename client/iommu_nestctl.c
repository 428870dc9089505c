/* SPDX-License-Identifier: MIT */
/*
 * iommu-nestctl: talk to iommu-nestd from the shell.
 *
 * HWPTs belong to the connection that allocated them and die with it, so
 * one invocation can chain commands on a single connection with a lone "+"
 * between them; "@N" names the N-th HWPT allocated by this invocation:
 *
 *   iommu-nestctl alloc-vtd dev0 + attach dev0 @1 + invalidate @1 0x1000 4 leaf
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "iommu_nest.h"
#include "nestctl.h"

/* ---- Formatting ---------------------------------------------------------- */

const char *ctl_escape(const char *s, char *buf, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p && o + 1 < len; p++) {
		if (*p >= 0x20 && *p < 0x7f && *p != '\\') {
			buf[o++] = (char)*p;
			continue;
		}
		/* Whole escapes only: a cut one could end in a dangling backslash. */
		if (o + 4 >= len)
			break;
		buf[o++] = '\\';
		if (*p == '\\') {
			buf[o++] = '\\';
			continue;
		}
		buf[o++] = 'x';
		buf[o++] = hex[*p >> 4];
		buf[o++] = hex[*p & 15];
	}
	buf[o] = '\0';
	return buf;
}

/* Length of the valid UTF-8 sequence at p (RFC 3629: no overlongs, surrogates), 0 if none. */
static size_t utf8_seq(const unsigned char *p)
{
	size_t n;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4;
	else
		return 0;
	for (size_t i = 1; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] > 0x9f) ||
	    (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] > 0x8f))
		return 0;
	return n;
}

struct json_object *ctl_json_string(const char *s)
{
	size_t len = strlen(s), o = 0;
	char *buf = malloc(3 * len + 1);
	struct json_object *j;

	if (!buf)
		return NULL;
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		size_t n = utf8_seq(p);

		if (n) {
			memcpy(buf + o, p, n);
			o += n;
			p += n;
		} else {
			memcpy(buf + o, "\xef\xbf\xbd", 3); /* U+FFFD */
			o += 3;
			p++;
		}
	}
	buf[o] = '\0';
	/* json-c escapes the control characters itself. */
	j = json_object_new_string_len(buf, (int)o);
	free(buf);
	return j;
}

int fail(struct ctl *c, const char *what, int err)
{
	const char *detail = c->h ? iommu_nest_last_error(c->h) : "";

	fprintf(stderr, "iommu-nestctl: %s: %s (%s)%s%s\n", what, strerror(-err), errname(err),
		detail[0] ? ": " : "", detail);
	return 1;
}

static struct json_object *entry_json(const struct iommu_nest_vtd_inv *e,
				      const struct iommu_nest_entry_result *r)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "addr", json_object_new_uint64(e->addr));
	json_object_object_add(o, "npages", json_object_new_uint64(e->npages));
	json_object_object_add(o, "leaf",
			       json_object_new_boolean(e->flags & IOMMU_NEST_VTD_INV_FLAGS_LEAF));
	json_object_object_add(o, "state", json_object_new_string(entry_state_name(r->state)));
	json_object_object_add(o, "errno", json_object_new_string(errname(r->error)));
	json_object_object_add(o, "error", json_object_new_int(r->error));
	json_object_object_add(o, "hw_error", json_object_new_uint64(r->hw_error));
	return o;
}

/* The invalidate result as one JSON object: one element per entry, unfolded. */
static void print_results_json(const struct iommu_nest_vtd_inv *e, size_t n,
			       const struct iommu_nest_entry_result *r,
			       const struct iommu_nest_inv_summary *s, int rc)
{
	struct json_object *o = json_object_new_object(), *a = json_object_new_array();

	for (size_t i = 0; i < n; i++)
		json_object_array_add(a, entry_json(&e[i], &r[i]));
	json_object_object_add(o, "status", json_object_new_int(rc));
	json_object_object_add(o, "errno", json_object_new_string(errname(rc)));
	json_object_object_add(o, "entries_handled", json_object_new_uint64(s->entries_handled));
	json_object_object_add(o, "entries_submitted",
			       json_object_new_uint64(s->entries_submitted));
	json_object_object_add(o, "pages_flushed", json_object_new_uint64(s->pages_flushed));
	json_object_object_add(o, "entries", a);
	print_json(o, true);
}

/* ---- Argument parsing ---------------------------------------------------- */

int parse_u64(const char *s, uint64_t *v)
{
	char *end;

	if (!strcmp(s, "all")) {
		*v = UINT64_MAX;
		return 0;
	}
	errno = 0;
	*v = strtoull(s, &end, 0);
	if (errno || end == s || *end || s[0] == '-') {
		fprintf(stderr, "iommu-nestctl: bad number '%s'\n", s);
		return -EINVAL;
	}
	return 0;
}

int parse_u32(const char *s, uint32_t *v)
{
	uint64_t x;

	if (parse_u64(s, &x))
		return -EINVAL;
	if (x > UINT32_MAX) {
		fprintf(stderr, "iommu-nestctl: '%s' out of range\n", s);
		return -ERANGE;
	}
	*v = (uint32_t)x;
	return 0;
}

/* Seconds, fractions allowed, into milliseconds (at most an hour). */
static int parse_interval(const char *s, uint32_t *ms)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= 0.001 && v <= 3600)) {
		fprintf(stderr, "iommu-nestctl: bad interval '%s' (seconds, 0.001-3600)\n", s);
		return -EINVAL;
	}
	*ms = (uint32_t)(v * 1000 + 0.5);
	return 0;
}

/* A HWPT id, or @N for the N-th allocated by this invocation. */
static int parse_id(struct ctl *c, const char *s, uint32_t *id)
{
	uint32_t n;

	if (s[0] != '@')
		return parse_u32(s, id);
	if (parse_u32(s + 1, &n))
		return -EINVAL;
	if (n < 1 || n > (uint32_t)c->n_hwpts) {
		fprintf(stderr, "iommu-nestctl: %s: no such allocation yet\n", s);
		return -EINVAL;
	}
	*id = c->hwpts[n - 1];
	return 0;
}

static void remember(struct ctl *c, uint32_t id)
{
	struct json_object *o;
	char ref[16];

	if (c->n_hwpts < MAX_HWPTS)
		c->hwpts[c->n_hwpts++] = id;
	snprintf(ref, sizeof(ref), "@%d", c->n_hwpts);
	if (!c->json) {
		printf("hwpt %u (%s)\n", id, ref);
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "hwpt", json_object_new_uint64(id));
	json_object_object_add(o, "ref", json_object_new_string(ref));
	print_json(o, true);
}

int need_args(int argc, int want, const char *usage)
{
	if (argc == want)
		return 0;
	fprintf(stderr, "usage: iommu-nestctl %s\n", usage);
	return -EINVAL;
}

/* ---- Commands ------------------------------------------------------------ */

static struct json_object *u32_array(const uint32_t *v, size_t n)
{
	struct json_object *a = json_object_new_array();

	for (size_t i = 0; i < n; i++)
		json_object_array_add(a, json_object_new_uint64(v[i]));
	return a;
}

static void hello_json(struct iommu_nest *h)
{
	struct json_object *o = json_object_new_object(), *devs = json_object_new_array();
	const uint32_t *t;
	size_t n;

	json_object_object_add(o, "protocol", json_object_new_uint64(iommu_nest_server_version(h)));
	json_object_object_add(o, "backend", json_object_new_string(iommu_nest_backend(h)));
	json_object_object_add(o, "max_entries", json_object_new_uint64(iommu_nest_max_entries(h)));
	json_object_object_add(o, "max_message",
			       json_object_new_uint64(iommu_nest_max_message_size(h)));
	json_object_object_add(o, "capabilities",
			       json_object_new_uint64(iommu_nest_capabilities(h)));
	t = iommu_nest_hwpt_data_types(h, &n);
	json_object_object_add(o, "hwpt_types", u32_array(t, n));
	t = iommu_nest_inv_data_types(h, &n);
	json_object_object_add(o, "inv_types", u32_array(t, n));
	for (size_t i = 0; i < iommu_nest_device_count(h); i++)
		json_object_array_add(devs, json_object_new_string(iommu_nest_device(h, i)));
	json_object_object_add(o, "devices", devs);
	print_json(o, true);
}

static int cmd_hello(struct ctl *c, int argc, char **argv)
{
	struct iommu_nest *h = c->h;
	const uint32_t *t;
	size_t i, n;

	if (c->json) {
		hello_json(h);
		return 0;
	}
	printf("protocol      %u\n", iommu_nest_server_version(h));
	printf("backend       %s\n", iommu_nest_backend(h));
	printf("max_entries   %u\n", iommu_nest_max_entries(h));
	printf("max_message   %u bytes\n", iommu_nest_max_message_size(h));
	printf("capabilities  %#x%s%s%s%s\n", iommu_nest_capabilities(h),
	       iommu_nest_capabilities(h) & IOMMU_NEST_CAP_CHECK_IOTLB ? " check_iotlb" : "",
	       iommu_nest_capabilities(h) & IOMMU_NEST_CAP_SIM_MODEL ? " sim_model" : "",
	       iommu_nest_capabilities(h) & IOMMU_NEST_CAP_FAULT_INJECT ? " fault_inject" : "",
	       iommu_nest_capabilities(h) & IOMMU_NEST_CAP_CONTINUE ? " continue" : "");
	printf("hwpt types   ");
	for (t = iommu_nest_hwpt_data_types(h, &n), i = 0; i < n; i++)
		printf(" %#x", t[i]);
	printf("\ninv types    ");
	for (t = iommu_nest_inv_data_types(h, &n), i = 0; i < n; i++)
		printf(" %#x", t[i]);
	printf("\ndevices      ");
	for (i = 0; i < iommu_nest_device_count(h); i++)
		printf(" %s", iommu_nest_device(h, i));
	printf("\n");
	return 0;
}

static int cmd_alloc_vtd(struct ctl *c, int argc, char **argv)
{
	uint32_t id;
	int err;

	if (need_args(argc, 2, "alloc-vtd DEVICE [--pgtbl GPA] [--addr-width N]"))
		return 2;
	err = iommu_nest_alloc_vtd_s1(c->h, argv[1], 0, c->pgtbl, c->addr_width, &id);
	if (err)
		return fail(c, "alloc-vtd", err);
	remember(c, id);
	return 0;
}

static int cmd_alloc_selftest(struct ctl *c, int argc, char **argv)
{
	uint32_t id;
	int err;

	if (need_args(argc, 2, "alloc-selftest DEVICE [--iotlb VALUE]"))
		return 2;
	err = iommu_nest_alloc_selftest(c->h, argv[1], c->iotlb, &id);
	if (err)
		return fail(c, "alloc-selftest", err);
	remember(c, id);
	return 0;
}

static int cmd_destroy(struct ctl *c, int argc, char **argv)
{
	uint32_t id;
	int err;

	if (need_args(argc, 2, "destroy ID") || parse_id(c, argv[1], &id))
		return 2;
	err = iommu_nest_destroy(c->h, id);
	return err ? fail(c, "destroy", err) : 0;
}

static int cmd_attach(struct ctl *c, int argc, char **argv)
{
	uint32_t id;
	int err;

	if (need_args(argc, 3, "attach DEVICE ID") || parse_id(c, argv[2], &id))
		return 2;
	err = iommu_nest_attach(c->h, argv[1], id);
	return err ? fail(c, "attach", err) : 0;
}

static int cmd_detach(struct ctl *c, int argc, char **argv)
{
	int err;

	if (need_args(argc, 2, "detach DEVICE"))
		return 2;
	err = iommu_nest_detach(c->h, argv[1]);
	return err ? fail(c, "detach", err) : 0;
}

/* A HWPT id is a number or @N; anything else names a device. */
static bool looks_like_id(const char *s)
{
	return s[0] == '@' || (s[0] >= '0' && s[0] <= '9');
}

static int cmd_probe(struct ctl *c, int argc, char **argv)
{
	uint32_t id, type = IOMMU_NEST_INV_DATA_VTD_S1;
	int err;

	if (argc == 3 && !looks_like_id(argv[1]))
		return cmd_probe_device(c, argv[1], argv[2]);
	if ((argc != 2 && argc != 3) || parse_id(c, argv[1], &id) ||
	    (argc == 3 && parse_u32(argv[2], &type))) {
		fprintf(stderr,
			"usage: iommu-nestctl probe DEVICE TYPE | probe ID [INV_DATA_TYPE]\n");
		return 2;
	}
	err = iommu_nest_probe(c->h, id, type);
	if (c->json) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "hwpt", json_object_new_uint64(id));
		json_object_object_add(o, "inv_data_type", json_object_new_uint64(type));
		json_object_object_add(o, "supported", json_object_new_boolean(!err));
		json_object_object_add(o, "errno", json_object_new_string(errname(err)));
		print_json(o, true);
	} else {
		printf("hwpt %u data type %#x: %s\n", id, type, err ? errname(err) : "supported");
	}
	return err ? 1 : 0;
}

/* invalidate ID ADDR NPAGES [leaf] [ADDR NPAGES [leaf]]... */
static int cmd_invalidate(struct ctl *c, int argc, char **argv)
{
	struct iommu_nest_vtd_inv *e = calloc((size_t)argc, sizeof(*e));
	struct iommu_nest_entry_result *r = calloc((size_t)argc, sizeof(*r));
	struct iommu_nest_inv_summary s;
	size_t n = 0;
	uint32_t id;
	int i, rc;

	if (!e || !r || argc < 4 || parse_id(c, argv[1], &id)) {
		fprintf(stderr, "usage: iommu-nestctl invalidate ID ADDR NPAGES [leaf]... "
				"[--leaf] [--continue]\n");
		rc = 2;
		goto out;
	}
	for (i = 2; i < argc; n++) {
		if (i + 1 >= argc || parse_u64(argv[i], &e[n].addr) ||
		    parse_u64(argv[i + 1], &e[n].npages)) {
			fprintf(stderr, "iommu-nestctl: entries are ADDR NPAGES [leaf]\n");
			rc = 2;
			goto out;
		}
		i += 2;
		if (c->leaf)
			e[n].flags = IOMMU_NEST_VTD_INV_FLAGS_LEAF;
		if (i < argc && !strcmp(argv[i], "leaf")) {
			e[n].flags = IOMMU_NEST_VTD_INV_FLAGS_LEAF;
			i++;
		}
	}
	rc = iommu_nest_invalidate(c->h, id, IOMMU_NEST_INV_DATA_VTD_S1, e, n,
				   c->cont ? IOMMU_NEST_INV_CONTINUE : 0, r, &s);
	if (rc == -EPROTO || rc == -ECONNRESET || rc == -EPIPE || rc == -EMSGSIZE) {
		rc = fail(c, "invalidate", rc);
		goto out;
	}
	if (c->json)
		print_results_json(e, n, r, &s, rc);
	else
		print_results("invalidate", e, n, r, &s, rc);
	rc = rc ? 1 : 0;
out:
	free(e);
	free(r);
	return rc;
}

static int cmd_populate(struct ctl *c, int argc, char **argv)
{
	uint64_t addr, npages;
	uint32_t id, kind;
	int err;

	if (need_args(argc, 5, "populate ID ADDR NPAGES iotlb|psc") || parse_id(c, argv[1], &id) ||
	    parse_u64(argv[2], &addr) || parse_u64(argv[3], &npages))
		return 2;
	kind = !strcmp(argv[4], "psc") ? IOMMU_NEST_SIM_PSC : IOMMU_NEST_SIM_IOTLB;
	err = iommu_nest_sim_populate(c->h, id, addr, npages, kind);
	return err ? fail(c, "populate", err) : 0;
}

static int cmd_query(struct ctl *c, int argc, char **argv)
{
	uint64_t addr, npages, iotlb, psc;
	uint32_t id;
	int err;

	if (need_args(argc, 4, "query ID ADDR NPAGES") || parse_id(c, argv[1], &id) ||
	    parse_u64(argv[2], &addr) || parse_u64(argv[3], &npages))
		return 2;
	err = iommu_nest_sim_query(c->h, id, addr, npages, &iotlb, &psc);
	if (err)
		return fail(c, "query", err);
	if (c->json) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "iotlb_pages", json_object_new_uint64(iotlb));
		json_object_object_add(o, "psc_pages", json_object_new_uint64(psc));
		print_json(o, true);
		return 0;
	}
	printf("iotlb_pages %" PRIu64 " psc_pages %" PRIu64 "\n", iotlb, psc);
	return 0;
}

/* ---- main ---------------------------------------------------------------- */

static const struct command {
	const char *name;
	int (*fn)(struct ctl *c, int argc, char **argv);
	const char *help;
} commands[] = {
    {"hello", cmd_hello, "hello                      print the daemon's capabilities"},
    {"status", cmd_status,
     "status                     the daemon: devices, clients, latency (admin)"},
    {"clients", cmd_clients, "clients                    every connected client (admin)"},
    {"hwpts", cmd_hwpts, "hwpts                      every nested HWPT and its counters (admin)"},
    {"stats", cmd_stats,
     "stats [--watch [--interval S] [--count N]]  the daemon's counters (admin)"},
    {"metrics", cmd_metrics,
     "metrics [--format prometheus]  OpenMetrics (or Prometheus) text (admin)"},
    {"reload", cmd_reload,
     "reload                     re-read the daemon's config; fails with its reason (admin)"},
    {"alloc-vtd", cmd_alloc_vtd, "alloc-vtd DEVICE           allocate a nested VT-d HWPT"},
    {"alloc-selftest", cmd_alloc_selftest,
     "alloc-selftest DEVICE      allocate a selftest mock HWPT"},
    {"destroy", cmd_destroy, "destroy ID"},
    {"attach", cmd_attach, "attach DEVICE ID"},
    {"detach", cmd_detach, "detach DEVICE"},
    {"probe", cmd_probe,
     "probe DEVICE TYPE          can a nested HWPT of TYPE (vtd-s1|selftest) work on DEVICE\n"
     "  probe ID [INV_DATA_TYPE]   the kernel's empty-array probe on an own HWPT"},
    {"invalidate", cmd_invalidate,
     "invalidate ID ADDR NPAGES [leaf]... [--leaf] [--continue]  (NPAGES 'all' = U64_MAX;\n"
     "                             an admin may name any client's HWPT)"},
    {"populate", cmd_populate, "populate ID ADDR NPAGES iotlb|psc   (simulator)"},
    {"query", cmd_query, "query ID ADDR NPAGES       count cached pages (simulator)"},
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: iommu-nestctl [--socket PATH] COMMAND [ARGS] [+ COMMAND [ARGS]]...\n"
		   "options: --socket PATH (default " IOMMU_NEST_DEFAULT_SOCKET "), --json,\n"
		   "         --continue, --leaf, --pgtbl GPA, --addr-width N, --iotlb VALUE,\n"
		   "         --watch, --interval SECONDS, --count N,\n"
		   "         --format openmetrics|prometheus (metrics)\n"
		   "admin commands need root or a member of the daemon's [policy] admin_groups.\n"
		   "HWPTs die with the connection: chain commands with '+'; @N is the N-th\n"
		   "HWPT allocated so far in this invocation.\ncommands:\n");
	for (i = 0; i < N_COMMANDS; i++)
		fprintf(f, "  %s\n", commands[i].help);
}

static int run_one(struct ctl *c, int argc, char **argv)
{
	size_t i;

	for (i = 0; i < N_COMMANDS; i++)
		if (!strcmp(argv[0], commands[i].name))
			return commands[i].fn(c, argc, argv);
	fprintf(stderr, "iommu-nestctl: unknown command '%s'\n", argv[0]);
	usage(stderr);
	return 2;
}

/* Runs the '+'-separated commands in order, stopping at the first failure. */
static int run_chain(struct ctl *c, int argc, char **argv)
{
	int start = 0, i, rc;

	for (i = 0; i <= argc; i++) {
		if (i < argc && strcmp(argv[i], "+"))
			continue;
		if (i == start) {
			fprintf(stderr, "iommu-nestctl: empty command\n");
			return 2;
		}
		rc = run_one(c, i - start, argv + start);
		if (rc)
			return rc;
		start = i + 1;
	}
	return 0;
}

static int parse_options(struct ctl *c, int argc, char **argv, const char **path)
{
	static const struct option opts[] = {{"socket", required_argument, NULL, 's'},
					     {"json", no_argument, NULL, 'j'},
					     {"continue", no_argument, NULL, 'c'},
					     {"pgtbl", required_argument, NULL, 'p'},
					     {"addr-width", required_argument, NULL, 'w'},
					     {"iotlb", required_argument, NULL, 'i'},
					     {"leaf", no_argument, NULL, 'l'},
					     {"watch", no_argument, NULL, 'W'},
					     {"interval", required_argument, NULL, 'I'},
					     {"count", required_argument, NULL, 'n'},
					     {"format", required_argument, NULL, 'F'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	int o;

	while ((o = getopt_long(argc, argv, "s:jch", opts, NULL)) != -1) {
		switch (o) {
		case 's':
			*path = optarg;
			break;
		case 'j':
			c->json = true;
			break;
		case 'c':
			c->cont = true;
			break;
		case 'p':
			if (parse_u64(optarg, &c->pgtbl))
				return 2;
			break;
		case 'w':
			if (parse_u32(optarg, &c->addr_width))
				return 2;
			break;
		case 'i':
			if (parse_u32(optarg, &c->iotlb))
				return 2;
			break;
		case 'l':
			c->leaf = true;
			break;
		case 'W':
			c->watch = true;
			break;
		case 'I':
			if (parse_interval(optarg, &c->interval_ms))
				return 2;
			break;
		case 'n':
			if (parse_u32(optarg, &c->count))
				return 2;
			break;
		case 'F':
			if (strcmp(optarg, "openmetrics") && strcmp(optarg, "prometheus")) {
				fprintf(stderr, "iommu-nestctl: --format openmetrics|prometheus\n");
				return 2;
			}
			c->prometheus = !strcmp(optarg, "prometheus");
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct ctl c = {
	    .pgtbl = 0x10000000,
	    .addr_width = 48,
	    .iotlb = IOMMU_NEST_TEST_IOTLB_DEFAULT,
	    .interval_ms = 1000,
	};
	const char *path = IOMMU_NEST_DEFAULT_SOCKET;
	int rc, err;

	/* Lines out as they come, also into a pipe or file (scripts wait for them). */
	setvbuf(stdout, NULL, _IOLBF, 0);
	rc = parse_options(&c, argc, argv, &path);
	if (rc)
		return rc;
	err = iommu_nest_connect(path, "iommu-nestctl", &c.h);
	if (err) {
		fprintf(stderr, "iommu-nestctl: connect %s: %s\n", path, strerror(-err));
		return 1;
	}
	rc = run_chain(&c, argc - optind, argv + optind);
	iommu_nest_close(c.h);
	return rc;
}
