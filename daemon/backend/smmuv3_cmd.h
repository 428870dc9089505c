/* SPDX-License-Identifier: MIT */
/*
 * ARM SMMUv3 command queue entries as the 7.x kernel takes them through
 * IOMMU_HWPT_INVALIDATE on a vIOMMU (struct
 * iommu_viommu_arm_smmuv3_invalidate: two little-endian u64, 16 bytes) and
 * their fields (drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.h, the SMMUv3
 * architecture's command formats). Header only: the daemon's validator and
 * coalescer (inv/) and the sim's model (backend/sim/smmuv3.c) read the same
 * fields, each applying its own rules.
 */
#ifndef IOMMU_NESTD_BACKEND_SMMUV3_CMD_H
#define IOMMU_NESTD_BACKEND_SMMUV3_CMD_H

#include <endian.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#ifndef IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3
#define IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3 1
#endif

struct smmuv3_cmd {
	uint64_t cmd[2]; /* little-endian, as in the uAPI */
};

#define SMMUV3_CMD_SIZE 16u

/* Opcodes (bits 7:0 of the first word). */
enum {
	SMMUV3_OP_CFGI_CD = 0x05,
	SMMUV3_OP_CFGI_CD_ALL = 0x06,
	SMMUV3_OP_TLBI_NH_ALL = 0x10,
	SMMUV3_OP_TLBI_NH_ASID = 0x11,
	SMMUV3_OP_TLBI_NH_VA = 0x12,
	SMMUV3_OP_TLBI_NH_VAA = 0x13,
	SMMUV3_OP_TLBI_NSNH_ALL = 0x30,
	SMMUV3_OP_ATC_INV = 0x40,
};

/* A field of bits [lo, lo + width) of a host-order word. */
static inline uint64_t smmuv3_get(uint64_t w, unsigned lo, unsigned width)
{
	return (w >> lo) & (width == 64 ? ~0ULL : ((1ULL << width) - 1));
}

static inline uint64_t smmuv3_put(uint64_t w, unsigned lo, unsigned width, uint64_t v)
{
	uint64_t m = (width == 64 ? ~0ULL : ((1ULL << width) - 1)) << lo;

	return (w & ~m) | ((v << lo) & m);
}

/* Word 0 fields. */
#define SMMUV3_OP	  0, 8
#define SMMUV3_ATC_GLOBAL 9, 1	 /* ATC_INV: all SubstreamIDs */
#define SMMUV3_SSV	  11, 1	 /* ATC_INV: SSID valid */
#define SMMUV3_SSID	  12, 20 /* CFGI_CD, ATC_INV */
#define SMMUV3_SID	  32, 32 /* CFGI_CD, CFGI_CD_ALL, ATC_INV */
#define SMMUV3_TLBI_NUM	  12, 5	 /* range: NUM + 1 ... */
#define SMMUV3_TLBI_SCALE 20, 5	 /* ... times 2^SCALE granules */
#define SMMUV3_TLBI_VMID  32, 16
#define SMMUV3_TLBI_ASID  48, 16
/* Word 1 fields. */
#define SMMUV3_LEAF	  0, 1	/* TLBI_NH_VA(A), CFGI_CD */
#define SMMUV3_TLBI_TTL	  8, 2	/* level hint of the leaf entries (0: none) */
#define SMMUV3_TLBI_TG	  10, 2 /* range granule: 0 none, 1 4K, 2 16K, 3 64K */
#define SMMUV3_ADDR_SHIFT 12	/* VA (TLBI) or address (ATC) in bits 63:12 */
#define SMMUV3_ATC_SIZE	  0, 6	/* ATC_INV: span of 2^SIZE 4 KiB pages */

#define SMMUV3_W0(c, f) smmuv3_get(le64toh((c)->cmd[0]), f)
#define SMMUV3_W1(c, f) smmuv3_get(le64toh((c)->cmd[1]), f)

static inline void smmuv3_set0(struct smmuv3_cmd *c, unsigned lo, unsigned width, uint64_t v)
{
	c->cmd[0] = htole64(smmuv3_put(le64toh(c->cmd[0]), lo, width, v));
}

static inline void smmuv3_set1(struct smmuv3_cmd *c, unsigned lo, unsigned width, uint64_t v)
{
	c->cmd[1] = htole64(smmuv3_put(le64toh(c->cmd[1]), lo, width, v));
}

#define SMMUV3_SET0(c, f, v) smmuv3_set0((c), f, (v))
#define SMMUV3_SET1(c, f, v) smmuv3_set1((c), f, (v))

static inline uint32_t smmuv3_op(const struct smmuv3_cmd *c)
{
	return (uint32_t)SMMUV3_W0(c, SMMUV3_OP);
}

/* Bits 63:12 of word 1: the VA of a TLBI or the address of an ATC_INV. */
static inline uint64_t smmuv3_addr(const struct smmuv3_cmd *c)
{
	return le64toh(c->cmd[1]) & ~((1ULL << SMMUV3_ADDR_SHIFT) - 1);
}

static inline void smmuv3_set_addr(struct smmuv3_cmd *c, uint64_t addr)
{
	uint64_t low = (1ULL << SMMUV3_ADDR_SHIFT) - 1;

	c->cmd[1] = htole64((le64toh(c->cmd[1]) & low) | (addr & ~low));
}

/* log2 of the translation granule a TLBI range's TG selects; 0 for none. */
static inline unsigned smmuv3_tg_shift(uint32_t tg)
{
	static const unsigned shift[4] = {0, 12, 14, 16};

	return shift[tg & 3];
}

static inline void smmuv3_cmd_load(struct smmuv3_cmd *c, const void *p)
{
	memcpy(c, p, sizeof(*c));
}

#endif
