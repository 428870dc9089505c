/* SPDX-License-Identifier: MIT */
/*
 * Small strict accessors over json-c for the state file (persist/state_file.c,
 * backend/sim/persist.c, backend/iommufd/iommufd.c). The state file is written by the
 * daemon itself, but it is read back after a crash, so every field is
 * checked for presence, type and range instead of trusted: a missing or
 * malformed field is -EINVAL, never a default.
 *
 * Header only: the sim and iommufd libraries use it without a dependency
 * on the core library.
 */
#ifndef IOMMU_NESTD_JSON_UTIL_H
#define IOMMU_NESTD_JSON_UTIL_H

#include <errno.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static inline int js_add_u64(struct json_object *o, const char *key, uint64_t v)
{
	struct json_object *n = json_object_new_uint64(v);

	if (!n)
		return -ENOMEM;
	return json_object_object_add(o, key, n) ? -ENOMEM : 0;
}

static inline int js_add_i64(struct json_object *o, const char *key, int64_t v)
{
	struct json_object *n = json_object_new_int64(v);

	if (!n)
		return -ENOMEM;
	return json_object_object_add(o, key, n) ? -ENOMEM : 0;
}

static inline int js_add_str(struct json_object *o, const char *key, const char *v)
{
	struct json_object *n = json_object_new_string(v);

	if (!n)
		return -ENOMEM;
	return json_object_object_add(o, key, n) ? -ENOMEM : 0;
}

/* Adds a new array or object under key; NULL on -ENOMEM. */
static inline struct json_object *js_add_new(struct json_object *o, const char *key, bool array)
{
	struct json_object *n = array ? json_object_new_array() : json_object_new_object();

	if (!n)
		return NULL;
	if (json_object_object_add(o, key, n))
		return NULL;
	return n;
}

static inline int js_push(struct json_object *arr, struct json_object *v)
{
	if (!v)
		return -ENOMEM;
	if (json_object_array_add(arr, v)) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

static inline struct json_object *js_get(struct json_object *o, const char *key,
					 json_type type)
{
	struct json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, type))
		return NULL;
	return v;
}

/* A non-negative integer no larger than max. */
static inline int js_u64(struct json_object *o, const char *key, uint64_t max, uint64_t *out)
{
	struct json_object *v = js_get(o, key, json_type_int);

	if (!v || json_object_get_int64(v) < 0)
		return -EINVAL;
	*out = json_object_get_uint64(v);
	return *out <= max ? 0 : -EINVAL;
}

static inline int js_u32(struct json_object *o, const char *key, uint32_t *out)
{
	uint64_t v;
	int rc = js_u64(o, key, UINT32_MAX, &v);

	if (!rc)
		*out = (uint32_t)v;
	return rc;
}

/* The element of array arr (NULL: none) whose "id" is id, or NULL. */
static inline struct json_object *js_find_id(struct json_object *arr, uint32_t id)
{
	size_t n = arr ? json_object_array_length(arr) : 0;

	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(arr, i);
		uint32_t eid;

		if (!js_u32(e, "id", &eid) && eid == id)
			return e;
	}
	return NULL;
}

static inline int js_i64(struct json_object *o, const char *key, int64_t min, int64_t max,
			 int64_t *out)
{
	struct json_object *v = js_get(o, key, json_type_int);

	if (!v)
		return -EINVAL;
	*out = json_object_get_int64(v);
	return *out >= min && *out <= max ? 0 : -EINVAL;
}

/* A string that fits len bytes with its terminator. */
static inline int js_str(struct json_object *o, const char *key, char *out, size_t len)
{
	struct json_object *v = js_get(o, key, json_type_string);

	if (!v || (size_t)json_object_get_string_len(v) >= len)
		return -EINVAL;
	memcpy(out, json_object_get_string(v), (size_t)json_object_get_string_len(v) + 1);
	return 0;
}

/* Bytes as lowercase hex (tokens, anchors): out has room for 2 * n + 1. */
static inline void js_hex(char *out, const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static inline int js_nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Exactly 2 * n lowercase hex digits. */
static inline int js_unhex(const char *s, uint8_t *b, size_t n)
{
	if (strlen(s) != 2 * n)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		int hi = js_nibble(s[2 * i]), lo = js_nibble(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		b[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

#endif
