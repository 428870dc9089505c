/* SPDX-License-Identifier: MIT */
#include "net/decode_arena.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_ALIGN 16

static void *arena_alloc(void *data, size_t size)
{
	struct decode_arena *a = data;
	size_t start = (a->used + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);

	if (start > a->cap || size > a->cap - start) {
		a->exhausted = true;
		return NULL;
	}
	a->used = start + size;
	if (a->used > a->high_water)
		a->high_water = a->used;
	return a->buf + start;
}

static void arena_free(void *data, void *ptr)
{
	/* Freed all at once by decode_arena_reset. */
}

int decode_arena_init(struct decode_arena *a, size_t cap)
{
	memset(a, 0, sizeof(*a));
	a->buf = malloc(cap);
	if (!a->buf)
		return -ENOMEM;
	a->cap = cap;
	a->allocator.alloc = arena_alloc;
	a->allocator.free = arena_free;
	a->allocator.allocator_data = a;
	return 0;
}

void decode_arena_fini(struct decode_arena *a)
{
	free(a->buf);
	memset(a, 0, sizeof(*a));
}

void decode_arena_reset(struct decode_arena *a)
{
	a->used = 0;
	a->exhausted = false;
}
