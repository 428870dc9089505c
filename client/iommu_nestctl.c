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
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <json-c/json.h>

#include "iommu_nest.h"
#include "nestctl.h"

#define PAGE_SIZE 4096ull

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

const char *errname(int err)
{
	const char *s;

	if (!err)
		return "-";
	s = strerrorname_np(err < 0 ? -err : err);
	return s ? s : "E?";
}

static const char *state_name(uint32_t state)
{
	switch (state) {
	case IOMMU_NEST_ENTRY_DONE:
		return "done";
	case IOMMU_NEST_ENTRY_FAILED:
		return "failed";
	case IOMMU_NEST_ENTRY_NOT_ATTEMPTED:
		return "not_attempted";
	default:
		return "?";
	}
}

int fail(struct ctl *c, const char *what, int err)
{
	const char *detail = c->h ? iommu_nest_last_error(c->h) : "";

	fprintf(stderr, "iommu-nestctl: %s: %s (%s)%s%s\n", what, strerror(-err), errname(err),
		detail[0] ? ": " : "", detail);
	return 1;
}

/* U64_MAX pages is the flush-everything encoding: say so. */
static void fmt_pages(char *buf, size_t len, uint64_t n)
{
	if (n == UINT64_MAX)
		snprintf(buf, len, "all");
	else
		snprintf(buf, len, "%" PRIu64, n);
}

static bool same_row(const struct iommu_nest_vtd_inv *e, const struct iommu_nest_entry_result *r,
		     size_t i)
{
	return e[i].flags == e[i - 1].flags && e[i].npages == e[i - 1].npages &&
	       e[i].addr == e[i - 1].addr + e[i - 1].npages * PAGE_SIZE &&
	       r[i].state == r[i - 1].state && r[i].error == r[i - 1].error &&
	       r[i].hw_error == r[i - 1].hw_error;
}

static void print_row(const struct iommu_nest_vtd_inv *e, const struct iommu_nest_entry_result *r,
		      size_t first, size_t last)
{
	char idx[48], addr[48], npages[24];

	if (first == last) {
		snprintf(idx, sizeof(idx), "%zu", first);
		snprintf(addr, sizeof(addr), "%#" PRIx64, e[first].addr);
	} else {
		snprintf(idx, sizeof(idx), "%zu-%zu", first, last);
		snprintf(addr, sizeof(addr), "%#" PRIx64 "..%#" PRIx64, e[first].addr,
			 e[last].addr);
	}
	fmt_pages(npages, sizeof(npages), e[first].npages);
	printf("  %-8s %-24s %8s  %-8s %-14s %-11s %#x\n", idx, addr, npages,
	       e[first].flags & IOMMU_NEST_VTD_INV_FLAGS_LEAF ? "leaf" : "non-leaf",
	       state_name(r[first].state), errname(r[first].error), r[first].hw_error);
}

/* One row per entry, runs of contiguous identical entries folded into one. */
static void print_results(const char *title, const struct iommu_nest_vtd_inv *e, size_t n,
			  const struct iommu_nest_entry_result *r,
			  const struct iommu_nest_inv_summary *s, int rc)
{
	char pages[24];
	size_t i, first = 0;

	printf("\n== %s (%zu %s) ==\n", title, n, n == 1 ? "entry" : "entries");
	printf("  %-8s %-24s %8s  %-8s %-14s %-11s %s\n", "entry", "addr", "npages", "kind",
	       "state", "errno", "hw_error");
	for (i = 1; i <= n; i++) {
		if (i < n && same_row(e, r, i))
			continue;
		print_row(e, r, first, i - 1);
		first = i;
	}
	fmt_pages(pages, sizeof(pages), s->pages_flushed);
	printf("  status %d (%s)  entries_handled %u/%zu  entries_submitted %u  pages_flushed %s\n",
	       rc, rc ? errname(rc) : "OK", s->entries_handled, n, s->entries_submitted, pages);
}

static struct json_object *entry_json(const struct iommu_nest_vtd_inv *e,
				      const struct iommu_nest_entry_result *r)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "addr", json_object_new_uint64(e->addr));
	json_object_object_add(o, "npages", json_object_new_uint64(e->npages));
	json_object_object_add(o, "leaf",
			       json_object_new_boolean(e->flags & IOMMU_NEST_VTD_INV_FLAGS_LEAF));
	json_object_object_add(o, "state", json_object_new_string(state_name(r->state)));
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
		fprintf(stderr, "usage: iommu-nestctl probe DEVICE TYPE | probe ID [INV_DATA_TYPE]\n");
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

/* ---- demo ---------------------------------------------------------------- */

struct region {
	const char *name;
	uint64_t addr;
	uint64_t npages;
	uint64_t iotlb, psc; /* before */
};

static struct region regions[] = {
    {.name = "storm", .addr = 0x100000, .npages = 64},
    {.name = "mixed", .addr = 0x400000, .npages = 512},
    {.name = "errors", .addr = 0x800000, .npages = 16},
    {.name = "pipelined", .addr = 0xc00000, .npages = 64},
};
#define N_REGIONS (sizeof(regions) / sizeof(regions[0]))

static int demo_populate(struct ctl *c, uint32_t id)
{
	size_t i;
	int err;

	for (i = 0; i < N_REGIONS; i++) {
		err = iommu_nest_sim_populate(c->h, id, regions[i].addr, regions[i].npages,
					      IOMMU_NEST_SIM_IOTLB);
		if (err)
			return fail(c, "sim_populate", err);
	}
	/* The mixed region also has its paging-structure caches warm. */
	err = iommu_nest_sim_populate(c->h, id, 0x400000, 512, IOMMU_NEST_SIM_PSC);
	if (err)
		return fail(c, "sim_populate", err);
	for (i = 0; i < N_REGIONS; i++) {
		err = iommu_nest_sim_query(c->h, id, regions[i].addr, regions[i].npages,
					   &regions[i].iotlb, &regions[i].psc);
		if (err)
			return fail(c, "sim_query", err);
	}
	printf("model IOTLB populated: leaf translations in 4 regions, paging-structure "
	       "entries over %#x +512 pages\n",
	       0x400000);
	return 0;
}

static int demo_batch(struct ctl *c, uint32_t id, const char *title,
		      const struct iommu_nest_vtd_inv *e, size_t n, uint32_t flags)
{
	struct iommu_nest_entry_result *r = calloc(n, sizeof(*r));
	struct iommu_nest_inv_summary s;
	int rc;

	if (!r)
		return fail(c, title, -ENOMEM);
	rc = iommu_nest_invalidate(c->h, id, IOMMU_NEST_INV_DATA_VTD_S1, e, n, flags, r, &s);
	if (rc == -EPROTO || rc == -ECONNRESET || rc == -EPIPE || rc == -EMSGSIZE) {
		free(r);
		return fail(c, title, rc);
	}
	print_results(title, e, n, r, &s, rc);
	free(r);
	return 0;
}

static int demo_storm(struct ctl *c, uint32_t id)
{
	struct iommu_nest_vtd_inv e[64];
	size_t i;

	for (i = 0; i < 64; i++)
		e[i] = (struct iommu_nest_vtd_inv){.addr = 0x100000 + i * PAGE_SIZE,
						   .npages = 1,
						   .flags = IOMMU_NEST_VTD_INV_FLAGS_LEAF};
	return demo_batch(c, id, "sequential 4 KiB unmap storm", e, 64, 0);
}

static int demo_mixed(struct ctl *c, uint32_t id)
{
	static const struct iommu_nest_vtd_inv e[] = {
	    {0x400000, 8, IOMMU_NEST_VTD_INV_FLAGS_LEAF, 0},
	    {0x402000, 8, 0, 0}, /* overlaps the first, non-leaf */
	    {0x40a000, 4, IOMMU_NEST_VTD_INV_FLAGS_LEAF, 0},
	    {0x420000, 32, 0, 0},
	    {0x500000, 2, IOMMU_NEST_VTD_INV_FLAGS_LEAF, 0},
	};

	return demo_batch(c, id, "mixed leaf / non-leaf batch", e, 5, 0);
}

static int demo_errors(struct ctl *c, uint32_t id)
{
	static const struct iommu_nest_vtd_inv e[] = {
	    {0x800000, 1, IOMMU_NEST_VTD_INV_FLAGS_LEAF, 0},
	    {0x801800, 1, IOMMU_NEST_VTD_INV_FLAGS_LEAF, 0}, /* unaligned: EINVAL */
	    {0x802000, 2, IOMMU_NEST_VTD_INV_FLAGS_LEAF, 0},
	    {0x804000, 1, 0x80, 0}, /* unknown flag: EOPNOTSUPP */
	    {0x805000, 3, 0, 0},
	};
	int rc;

	rc = demo_batch(c, id, "batch with invalid entries, stop at first error", e, 5, 0);
	if (rc)
		return rc;
	if (!(iommu_nest_capabilities(c->h) & IOMMU_NEST_CAP_CONTINUE)) {
		printf("\n(daemon does not offer CAP_CONTINUE: skipping the continue batch)\n");
		return 0;
	}
	return demo_batch(c, id, "same batch with IOMMU_NEST_INV_CONTINUE", e, 5,
			  IOMMU_NEST_INV_CONTINUE);
}

static int demo_completions;

static void demo_done(struct iommu_nest *h, uint64_t token, const struct iommu_nest_inv_summary *s,
		      struct iommu_nest_entry_result *r, size_t n, void *opaque)
{
	demo_completions++;
	printf("  token %-4" PRIu64
	       " status %-6s handled %u/%zu  submitted %u  pages_flushed %" PRIu64 "\n",
	       token, s->status ? errname(s->status) : "OK", s->entries_handled, n,
	       s->entries_submitted, s->pages_flushed);
}

/* Four requests in flight at once, completed from a poll() loop. */
static int demo_pipelined(struct ctl *c, uint32_t id)
{
	static struct iommu_nest_entry_result r[4][16];
	struct iommu_nest_vtd_inv e[16];
	struct pollfd pfd = {.fd = iommu_nest_fd(c->h), .events = POLLIN};
	int b, i, rc;

	printf("\n== pipelined: 4 async requests of 16 pages each ==\n");
	demo_completions = 0;
	for (b = 0; b < 4; b++) {
		for (i = 0; i < 16; i++)
			e[i] = (struct iommu_nest_vtd_inv){
			    .addr = 0xc00000 + (uint64_t)(b * 16 + i) * PAGE_SIZE,
			    .npages = 1,
			    .flags = IOMMU_NEST_VTD_INV_FLAGS_LEAF};
		rc = iommu_nest_invalidate_submit(c->h, id, IOMMU_NEST_INV_DATA_VTD_S1, e, 16, 0,
						  r[b], demo_done, NULL, NULL);
		if (rc)
			return fail(c, "invalidate_submit", rc);
	}
	printf("  %zu requests in flight\n", iommu_nest_in_flight(c->h));
	while (iommu_nest_in_flight(c->h)) {
		if (!iommu_nest_pending(c->h) && poll(&pfd, 1, 5000) <= 0)
			return fail(c, "pipelined", -ETIMEDOUT);
		rc = iommu_nest_process(c->h);
		if (rc < 0)
			return fail(c, "process", rc);
	}
	return 0;
}

static int demo_flush_all(struct ctl *c, uint32_t id)
{
	static const struct iommu_nest_vtd_inv e[] = {{0, UINT64_MAX, 0, 0}};

	return demo_batch(c, id, "invalidate everything (addr 0, npages U64_MAX)", e, 1, 0);
}

static int demo_report_model(struct ctl *c, uint32_t id, const char *when)
{
	uint64_t iotlb, psc;
	size_t i;
	int err;

	printf("\n== model IOTLB %s ==\n", when);
	printf("  %-10s %-20s %-18s %s\n", "region", "range", "leaf pages", "paging-structure");
	for (i = 0; i < N_REGIONS; i++) {
		struct region *g = &regions[i];

		err = iommu_nest_sim_query(c->h, id, g->addr, g->npages, &iotlb, &psc);
		if (err)
			return fail(c, "sim_query", err);
		printf("  %-10s %#-9" PRIx64 "+%-8" PRIu64 " %4" PRIu64 " -> %-8" PRIu64
		       " %4" PRIu64 " -> %" PRIu64 "\n",
		       g->name, g->addr, g->npages, g->iotlb, iotlb, g->psc, psc);
	}
	return 0;
}

static int demo_steps(struct ctl *c, uint32_t id, bool sim)
{
	int rc;

	if (sim && (rc = demo_populate(c, id)))
		return rc;
	if ((rc = demo_storm(c, id)) || (rc = demo_mixed(c, id)) || (rc = demo_errors(c, id)) ||
	    (rc = demo_pipelined(c, id)))
		return rc;
	if (sim && (rc = demo_report_model(c, id, "after the batches (before -> after)")))
		return rc;
	if ((rc = demo_flush_all(c, id)))
		return rc;
	if (sim && (rc = demo_report_model(c, id, "after invalidate-everything")))
		return rc;
	return 0;
}

/* The demo guest's RAM: 64 MiB at guest-physical (= IOVA) 0. */
#define DEMO_RAM_SIZE (64ull << 20)
#define DEMO_RAM_IOVA 0ull

/*
 * Hands the guest RAM to the daemon for the device's stage 2, as a VMM
 * does before the guest runs: a memfd, sized, mapped at its IOVA. The
 * descriptor is closed right away: the daemon got its own, and the kernel
 * keeps the pages pinned while they are mapped.
 */
static int demo_map_ram(struct ctl *c, const char *dev)
{
	int fd = memfd_create("iommu-nestctl-guest-ram", MFD_CLOEXEC);
	int err;

	if (fd < 0)
		return fail(c, "memfd_create", -errno);
	if (ftruncate(fd, (off_t)DEMO_RAM_SIZE) < 0) {
		err = -errno;
		close(fd);
		return fail(c, "ftruncate", err);
	}
	err = iommu_nest_map_memory(c->h, dev, DEMO_RAM_IOVA, DEMO_RAM_SIZE, fd, 0,
				    IOMMU_NEST_MAP_READABLE | IOMMU_NEST_MAP_WRITEABLE);
	close(fd);
	if (err)
		return fail(c, "map guest RAM", err);
	printf("mapped %llu MiB of guest RAM (memfd) at IOVA %#llx on %s (stage 2)\n",
	       DEMO_RAM_SIZE >> 20, DEMO_RAM_IOVA, dev);
	return 0;
}

static int cmd_demo(struct ctl *c, int argc, char **argv)
{
	const char *dev;
	bool sim = iommu_nest_capabilities(c->h) & IOMMU_NEST_CAP_SIM_MODEL;
	struct iommu_nest_stats st;
	uint32_t id;
	int rc, err;

	if (need_args(argc, 2, "demo DEVICE"))
		return 2;
	dev = argv[1];
	printf("connected to iommu-nestd: backend %s, max %u entries/request\n",
	       iommu_nest_backend(c->h), iommu_nest_max_entries(c->h));
	rc = demo_map_ram(c, dev);
	if (rc)
		return rc;
	err = iommu_nest_alloc_vtd_s1(c->h, dev, 0, c->pgtbl, c->addr_width, &id);
	if (err)
		return fail(c, "alloc nested VT-d HWPT", err);
	printf("allocated nested VT-d stage-1 HWPT %u on %s (pgtbl %#" PRIx64 ", %u-bit)\n", id,
	       dev, c->pgtbl, c->addr_width);
	err = iommu_nest_attach(c->h, dev, id);
	if (err)
		return fail(c, "attach", err);
	printf("attached %s\n", dev);
	if (!sim)
		printf("(backend has no model IOTLB: skipping populate/query)\n");

	rc = demo_steps(c, id, sim);

	err = iommu_nest_detach(c->h, dev);
	if (err)
		rc = fail(c, "detach", err);
	err = iommu_nest_destroy(c->h, id);
	if (err)
		rc = fail(c, "destroy", err);
	else
		printf("\ndetached %s, destroyed HWPT %u\n", dev, id);
	err = iommu_nest_unmap_memory(c->h, dev, DEMO_RAM_IOVA, DEMO_RAM_SIZE);
	if (err)
		rc = fail(c, "unmap guest RAM", err);
	else
		printf("unmapped the guest RAM from %s\n", dev);
	err = iommu_nest_stats(c->h, &st);
	if (err == -EPERM) {
		printf("\n(daemon counters: admin only, see [policy] admin_groups)\n");
		return rc;
	}
	if (err)
		return fail(c, "stats", err);
	printf("\n== daemon counters ==\n");
	print_stats(&st, false);
	return rc;
}

static int cmd_sleep(struct ctl *c, int argc, char **argv)
{
	uint32_t ms;

	if (need_args(argc, 2, "sleep SECONDS") || parse_interval(argv[1], &ms))
		return 2;
	usleep(ms * 1000u);
	return 0;
}

/* ---- main ---------------------------------------------------------------- */

static const struct command {
	const char *name;
	int (*fn)(struct ctl *c, int argc, char **argv);
	const char *help;
} commands[] = {
    {"hello", cmd_hello, "hello                      print the daemon's capabilities"},
    {"status", cmd_status, "status                     the daemon: devices, clients, latency (admin)"},
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
    {"demo", cmd_demo, "demo DEVICE                the batched-invalidation tour"},
    {"sleep", cmd_sleep, "sleep SECONDS              keep the connection (and its HWPTs) a while"},
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
					     {}};
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
