/* SPDX-License-Identifier: MIT */
#include "arena.h"

#include <errno.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>

#define ARENA_ALIGN alignof(max_align_t)

struct arena_chunk {
	struct arena_chunk *next;
	alignas(max_align_t) char data[];
};

static size_t align_up(size_t n)
{
	return (n + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
}

static void *pb_alloc(void *data, size_t size)
{
	return arena_alloc(data, size);
}

/* Individual frees are no-ops: arena_reset() releases everything. */
static void pb_free(void *data, void *ptr)
{
}

int arena_init(struct arena *a, size_t size)
{
	a->size = align_up(size ? size : ARENA_ALIGN);
	a->base = aligned_alloc(ARENA_ALIGN, a->size);
	if (!a->base)
		return -ENOMEM;
	a->used = 0;
	a->extra = NULL;
	a->extra_bytes = 0;
	a->pb.alloc = pb_alloc;
	a->pb.free = pb_free;
	a->pb.allocator_data = a;
	return 0;
}

/*
 * Falls back to malloc when the block is full: a decoded reply can be
 * several times larger than its wire form (a one-byte varint becomes a
 * uint64_t), and the exact factor depends on the daemon's payload.
 */
void *arena_alloc(struct arena *a, size_t size)
{
	struct arena_chunk *c;
	size_t need = align_up(size ? size : 1);
	void *p;

	if (need < size)
		return NULL;
	if (need <= a->size - a->used) {
		p = a->base + a->used;
		a->used += need;
		return p;
	}
	if (need > SIZE_MAX - sizeof(*c))
		return NULL;
	c = malloc(sizeof(*c) + need);
	if (!c)
		return NULL;
	c->next = a->extra;
	a->extra = c;
	a->extra_bytes += need;
	return c->data;
}

static void free_chunks(struct arena *a)
{
	struct arena_chunk *c, *next;

	for (c = a->extra; c; c = next) {
		next = c->next;
		free(c);
	}
	a->extra = NULL;
}

/*
 * If the last reply overflowed, grow the block to what it needed, so the
 * next reply of that size decodes without touching malloc.
 */
void arena_reset(struct arena *a)
{
	size_t want;
	char *nb;

	if (a->extra) {
		want = align_up(a->size + a->extra_bytes);
		free_chunks(a);
		a->extra_bytes = 0;
		nb = aligned_alloc(ARENA_ALIGN, want);
		if (nb) {
			free(a->base);
			a->base = nb;
			a->size = want;
		}
	}
	a->used = 0;
}

void arena_fini(struct arena *a)
{
	free_chunks(a);
	free(a->base);
	a->base = NULL;
	a->size = a->used = 0;
}
