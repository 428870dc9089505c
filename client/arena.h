/* SPDX-License-Identifier: MIT */
/*
 * A bump allocator behind protobuf-c's ProtobufCAllocator, so that decoding
 * a reply costs no malloc in the steady state: everything a reply decodes
 * into is released at once by arena_reset() after the reply was consumed.
 */
#ifndef IOMMU_NEST_ARENA_H
#define IOMMU_NEST_ARENA_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

struct arena_chunk;

struct arena {
	char *base;
	size_t size;
	size_t used;
	/* Overflow chunks from malloc, freed (and folded into base) on reset. */
	struct arena_chunk *extra;
	size_t extra_bytes;
	ProtobufCAllocator pb;
};

int arena_init(struct arena *a, size_t size);
void arena_fini(struct arena *a);
void *arena_alloc(struct arena *a, size_t size);
void arena_reset(struct arena *a);

#endif
