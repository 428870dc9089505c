/* SPDX-License-Identifier: MIT */
/* The state file's journal (see state_journal.h). */
#include "util/journal.h"

#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/json_util.h"

/* ---- dirty ids ------------------------------------------------------------- */

void dirty_ids_add(struct dirty_ids *d, uint32_t id)
{
	if (d->n == d->cap) {
		uint32_t cap = d->cap ? 2 * d->cap : 64;
		uint32_t *n = realloc(d->id, cap * sizeof(*n));

		if (!n) {
			d->lost = true;
			return;
		}
		d->id = n;
		d->cap = cap;
	}
	d->id[d->n++] = id;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

void dirty_ids_unique(struct dirty_ids *d)
{
	uint32_t k = 0;

	if (d->n < 2)
		return;
	qsort(d->id, d->n, sizeof(*d->id), cmp_u32);
	for (uint32_t i = 0; i < d->n; i++)
		if (!k || d->id[k - 1] != d->id[i])
			d->id[k++] = d->id[i];
	d->n = k;
}

void dirty_ids_clear(struct dirty_ids *d)
{
	d->n = 0;
	d->lost = false;
	/* A burst (a session with 10,000 HWPTs going) must not pin its peak. */
	if (d->cap > 4096) {
		free(d->id);
		d->id = NULL;
		d->cap = 0;
	}
}

void dirty_ids_free(struct dirty_ids *d)
{
	free(d->id);
	memset(d, 0, sizeof(*d));
}

/* ---- records ----------------------------------------------------------------- */

int journal_rec_replace(struct json_object *records, const char *section, const char *field,
			struct json_object *key, struct json_object *elems)
{
	struct json_object *r = json_object_new_object();

	if (!r || !key || !elems || js_add_str(r, "s", section) || js_add_str(r, "f", field) ||
	    json_object_object_add(r, "k", key)) {
		json_object_put(key);
		json_object_put(elems);
		json_object_put(r);
		return -ENOMEM;
	}
	if (json_object_object_add(r, "v", elems)) {
		json_object_put(elems);
		json_object_put(r);
		return -ENOMEM;
	}
	return js_push(records, r);
}

int journal_rec_merge(struct json_object *records, const char *section, struct json_object *fields)
{
	struct json_object *r = json_object_new_object();

	if (!r || !fields || js_add_str(r, "s", section)) {
		json_object_put(fields);
		json_object_put(r);
		return -ENOMEM;
	}
	if (json_object_object_add(r, "m", fields)) {
		json_object_put(fields);
		json_object_put(r);
		return -ENOMEM;
	}
	return js_push(records, r);
}

size_t journal_header(char *buf, size_t cap, uint64_t epoch)
{
	int n = snprintf(buf, cap, "{\"" JOURNAL_EPOCH_KEY "\":%" PRIu64 "}\n", epoch);

	return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

/* ---- replay ------------------------------------------------------------------ */

#define MAX_SECTIONS 16

/*
 * One array of the snapshot being replayed onto, indexed by its key field
 * while records apply (key text -> array of the elements with that key),
 * written back as an array when the replay is done.
 */
struct section {
	char name[64];
	char field[32];
	struct json_object *parent; /* the object that holds the array */
	const char *arr_key;	    /* its key in parent (points into name) */
	struct json_object *index;
	bool int_keys;
};

struct replay {
	struct json_object *root;
	struct section sec[MAX_SECTIONS];
	uint32_t n_sec;
	const char **why;
};

static int bad(struct replay *r, const char *why)
{
	*r->why = why;
	return -EINVAL;
}

/* The key of an element or record as text: ints in decimal, strings as they are. */
static bool key_text(struct json_object *k, char *buf, size_t len, bool *is_int)
{
	if (json_object_is_type(k, json_type_int)) {
		snprintf(buf, len, "%" PRId64, json_object_get_int64(k));
		*is_int = true;
		return true;
	}
	if (json_object_is_type(k, json_type_string)) {
		snprintf(buf, len, "%s", json_object_get_string(k));
		*is_int = false;
		return true;
	}
	return false;
}

/* The object a section name denotes ("a" or "a.b"); created if missing. */
static struct json_object *section_parent(struct replay *r, const char *name, const char **leaf)
{
	const char *dot = strchr(name, '.');
	struct json_object *o;
	char outer[64];

	if (!dot) {
		*leaf = name;
		return r->root;
	}
	if ((size_t)(dot - name) >= sizeof(outer) || strchr(dot + 1, '.'))
		return NULL;
	memcpy(outer, name, (size_t)(dot - name));
	outer[dot - name] = '\0';
	o = js_get(r->root, outer, json_type_object);
	if (!o) {
		o = js_add_new(r->root, outer, false);
		if (!o)
			return NULL;
	}
	*leaf = dot + 1;
	return o;
}

static struct section *section_of(struct replay *r, const char *name, const char *field)
{
	struct section *s;
	struct json_object *arr;
	char key[64];
	bool is_int;

	for (uint32_t i = 0; i < r->n_sec; i++)
		if (!strcmp(r->sec[i].name, name))
			return strcmp(r->sec[i].field, field) ? NULL : &r->sec[i];
	if (r->n_sec == MAX_SECTIONS || strlen(name) >= sizeof(s->name) ||
	    strlen(field) >= sizeof(s->field))
		return NULL;
	s = &r->sec[r->n_sec];
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", name);
	snprintf(s->field, sizeof(s->field), "%s", field);
	s->parent = section_parent(r, s->name, &s->arr_key);
	s->index = json_object_new_object();
	s->int_keys = true;
	if (!s->parent || !s->index) {
		json_object_put(s->index);
		return NULL;
	}
	r->n_sec++;
	arr = js_get(s->parent, s->arr_key, json_type_array);
	for (size_t i = 0, n = arr ? json_object_array_length(arr) : 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(arr, i), *k, *group;

		if (!json_object_object_get_ex(e, field, &k) ||
		    !key_text(k, key, sizeof(key), &is_int))
			continue; /* the loader would skip it as malformed too */
		s->int_keys &= is_int;
		if (!json_object_object_get_ex(s->index, key, &group)) {
			group = json_object_new_array();
			if (!group || json_object_object_add(s->index, key, group)) {
				json_object_put(group);
				return NULL;
			}
		}
		if (js_push(group, json_object_get(e)))
			return NULL;
	}
	return s;
}

static int apply_replace(struct replay *r, struct json_object *rec, const char *name)
{
	struct json_object *field, *k, *v;
	struct section *s;
	char key[64];
	bool is_int;

	if (!json_object_object_get_ex(rec, "f", &field) ||
	    !json_object_is_type(field, json_type_string) ||
	    !json_object_object_get_ex(rec, "k", &k) || !key_text(k, key, sizeof(key), &is_int) ||
	    !(v = js_get(rec, "v", json_type_array)))
		return bad(r, "journal: malformed record");
	s = section_of(r, name, json_object_get_string(field));
	if (!s)
		return bad(r, "journal: unknown or inconsistent section");
	if (!json_object_array_length(v)) {
		json_object_object_del(s->index, key);
		return 0;
	}
	s->int_keys &= is_int;
	return json_object_object_add(s->index, key, json_object_get(v)) ? -ENOMEM : 0;
}

static int apply_merge(struct replay *r, struct json_object *m, const char *name)
{
	const char *leaf;
	struct json_object *parent = section_parent(r, name, &leaf), *o;

	if (!parent)
		return bad(r, "journal: unknown section");
	o = js_get(parent, leaf, json_type_object);
	if (!o && !(o = js_add_new(parent, leaf, false)))
		return -ENOMEM;
	json_object_object_foreach(m, key, val)
	{
		if (json_object_object_add(o, key, json_object_get(val)))
			return -ENOMEM;
	}
	return 0;
}

static int apply(struct replay *r, struct json_object *rec)
{
	struct json_object *s, *m;

	if (!json_object_object_get_ex(rec, "s", &s) || !json_object_is_type(s, json_type_string))
		return bad(r, "journal: record without a section");
	m = js_get(rec, "m", json_type_object);
	return m ? apply_merge(r, m, json_object_get_string(s))
		 : apply_replace(r, rec, json_object_get_string(s));
}

struct group {
	int64_t key;
	struct json_object *elems;
};

static int cmp_group(const void *a, const void *b)
{
	int64_t x = ((const struct group *)a)->key, y = ((const struct group *)b)->key;

	return x < y ? -1 : x > y;
}

/*
 * Writes a section back as an array: numeric keys in ascending order (the
 * sim's loader wants its objects by id), others in the order they came
 * (devices stay in configuration order).
 */
static int write_back(struct section *s)
{
	struct json_object *arr = json_object_new_array();
	struct group *g = NULL;
	size_t n = 0, cap = 0;
	int rc = arr ? 0 : -ENOMEM;

	json_object_object_foreach(s->index, key, elems)
	{
		if (rc)
			break;
		if (n == cap) {
			struct group *ng = realloc(g, (cap = cap ? 2 * cap : 64) * sizeof(*g));

			if (!ng) {
				rc = -ENOMEM;
				break;
			}
			g = ng;
		}
		g[n++] =
		    (struct group){.key = s->int_keys ? strtoll(key, NULL, 10) : 0, .elems = elems};
	}
	if (!rc && s->int_keys)
		qsort(g, n, sizeof(*g), cmp_group);
	for (size_t i = 0; !rc && i < n; i++)
		for (size_t k = 0; !rc && k < json_object_array_length(g[i].elems); k++)
			rc =
			    js_push(arr, json_object_get(json_object_array_get_idx(g[i].elems, k)));
	free(g);
	if (!rc && json_object_object_add(s->parent, s->arr_key, arr))
		rc = -ENOMEM;
	else if (!rc)
		arr = NULL;
	json_object_put(arr);
	return rc;
}

/* Parses one line (without its newline); NULL if it is not one JSON object. */
static struct json_object *parse_line(struct json_tokener *tok, const char *line, size_t len)
{
	struct json_object *o;

	json_tokener_reset(tok);
	o = json_tokener_parse_ex(tok, line, (int)len);
	if (!o || json_tokener_get_error(tok) != json_tokener_success ||
	    json_tokener_get_parse_end(tok) != len || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

long journal_replay(struct json_object *root, const char *text, size_t len, uint64_t epoch,
		    const char **why)
{
	struct replay r = {.root = root, .why = why};
	struct json_tokener *tok = json_tokener_new();
	struct json_object *hdr = NULL;
	const char *p = text, *end = text + len, *nl;
	uint64_t got;
	long applied = 0;
	int rc = 0;

	*why = NULL;
	if (!tok)
		return -ENOMEM;
	nl = memchr(p, '\n', len);
	if (nl && len <= INT32_MAX)
		hdr = parse_line(tok, p, (size_t)(nl - p));
	if (!hdr || js_u64(hdr, JOURNAL_EPOCH_KEY, UINT64_MAX, &got)) {
		*why = "journal: no header";
		rc = -EINVAL;
	} else if (got != epoch) {
		*why = "journal: it continues another snapshot (ignored)";
		nl = NULL;
	}
	json_object_put(hdr);
	for (p = nl ? nl + 1 : end; !rc && p < end; p = nl + 1) {
		struct json_object *rec;

		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl || !(rec = parse_line(tok, p, (size_t)(nl - p)))) {
			*why = "journal: torn last record dropped";
			break;
		}
		rc = apply(&r, rec);
		json_object_put(rec);
		if (rc == -EINVAL) {
			/* Not ours or corrupt: what came before it stands (*why says so). */
			rc = 0;
			break;
		}
		applied += !rc;
	}
	for (uint32_t i = 0; i < r.n_sec; i++) {
		if (!rc)
			rc = write_back(&r.sec[i]);
		json_object_put(r.sec[i].index);
	}
	json_tokener_free(tok);
	if (rc == -ENOMEM)
		*why = "journal: out of memory";
	return rc ? rc : applied;
}
