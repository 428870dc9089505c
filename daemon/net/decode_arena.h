/* SPDX-License-Identifier: MIT */
/*
 * A bounded bump allocator for protobuf-c decoding. A decoded message can
 * need several times its packet size (a packed uint64 array of N bytes
 * becomes up to 8N bytes), so decoding untrusted input from the general
 * heap would let one packet make the daemon allocate far more than it
 * received. Here every decode draws from one fixed buffer; running out
 * fails the decode (a broken frame) instead of growing the heap. It also
 * keeps malloc off the hot path: a reset makes the whole message free.
 */
#ifndef IOMMU_NESTD_DECODE_ARENA_H
#define IOMMU_NESTD_DECODE_ARENA_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct decode_arena {
	ProtobufCAllocator allocator; /* hand this to protobuf-c */
	uint8_t *buf;
	size_t cap;
	size_t used;
	size_t high_water;
	bool exhausted; /* an allocation failed since the last reset */
};

int decode_arena_init(struct decode_arena *a, size_t cap);
void decode_arena_fini(struct decode_arena *a);
/* Releases everything allocated since the last reset. */
void decode_arena_reset(struct decode_arena *a);

#endif
