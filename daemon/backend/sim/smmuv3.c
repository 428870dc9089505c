/* SPDX-License-Identifier: MIT */
/*
 * SMMUv3 caches and what each command removes. The rules are the
 * architecture's, not the daemon's:
 *  TLBI_NH_ALL        every stage-1 entry of the VMID (global ones too)
 *  TLBI_NSNH_ALL      every stage-1 entry of every VMID (the driver never
 *                     lets one through: it becomes NH_ALL of the VMID)
 *  TLBI_NH_ASID       walk-cache entries and non-global leaves of the ASID
 *                     (like TLBI ASIDE1: global leaves stay)
 *  TLBI_NH_VA         entries of the ASID, and global leaves, that overlap
 *                     the address (TG 0) or the range (NUM + 1) * 2^SCALE
 *                     granules from VA (TG != 0); Leaf = 1 spares walk-cache
 *                     entries; a range's TTL != 0 limits the leaves it must
 *                     remove to that level
 *  TLBI_NH_VAA        the same for every ASID
 *  CFGI_CD            the CD (SID, SSID); Leaf = 0 also the L1 descriptor
 *                     of its L2 table (1024 CDs, CTXDESC_L2_ENTRIES)
 *  CFGI_CD_ALL        every CD cache entry of the SID
 *  ATC_INV            ATC entries of the SID overlapping the naturally
 *                     aligned span of 2^SIZE pages at the address (SIZE >=
 *                     52: all); SSV = 0 hits every PASID (PCIe: a request
 *                     without PASID), SSV = 1 that SSID only, Global = 1
 *                     every PASID
 * A TG 0 VA has no range: its NUM, SCALE and TTL are not read.
 */
#include "backend/sim/smmuv3.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backend/smmuv3_cmd.h"

#define CD_L2_SHIFT  10
#define ATC_SIZE_ALL 52

void smmuv3_model_init(struct smmuv3_model *m)
{
	memset(m, 0, sizeof(*m));
}

void smmuv3_model_free(struct smmuv3_model *m)
{
	free(m->tlb);
	free(m->cd);
	free(m->atc);
	smmuv3_model_init(m);
}

void smmuv3_model_destroy(struct smmuv3_model **m)
{
	if (*m) {
		smmuv3_model_free(*m);
		free(*m);
		*m = NULL;
	}
}

static int grow(void **arr, uint32_t *cap, uint32_t need, size_t esz)
{
	uint32_t ncap;
	void *p;

	if (need <= *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 64;
	while (ncap < need)
		ncap *= 2;
	p = realloc(*arr, (size_t)ncap * esz);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}

#define MODEL_ADD(m, arr, n, cap, e)                                                               \
	do {                                                                                       \
		int rc_ = grow((void **)&(m)->arr, &(m)->cap, (m)->n + 1, sizeof(*(m)->arr));      \
		if (rc_)                                                                           \
			return rc_;                                                                \
		(m)->arr[(m)->n++] = *(e);                                                         \
	} while (0)

int smmuv3_model_add_tlb(struct smmuv3_model *m, const struct smmuv3_tlb_ent *e)
{
	MODEL_ADD(m, tlb, n_tlb, cap_tlb, e);
	return 0;
}

int smmuv3_model_add_cd(struct smmuv3_model *m, const struct smmuv3_cd_ent *e)
{
	MODEL_ADD(m, cd, n_cd, cap_cd, e);
	return 0;
}

int smmuv3_model_add_atc(struct smmuv3_model *m, const struct smmuv3_atc_ent *e)
{
	MODEL_ADD(m, atc, n_atc, cap_atc, e);
	return 0;
}

int smmuv3_model_copy(struct smmuv3_model *dst, const struct smmuv3_model *src)
{
	smmuv3_model_init(dst);
	for (uint32_t i = 0; i < src->n_tlb; i++)
		if (smmuv3_model_add_tlb(dst, &src->tlb[i]))
			goto fail;
	for (uint32_t i = 0; i < src->n_cd; i++)
		if (smmuv3_model_add_cd(dst, &src->cd[i]))
			goto fail;
	for (uint32_t i = 0; i < src->n_atc; i++)
		if (smmuv3_model_add_atc(dst, &src->atc[i]))
			goto fail;
	return 0;
fail:
	smmuv3_model_free(dst);
	return -ENOMEM;
}

/* Last byte of [start, start + 2^shift * n), clipped at the top of the space. */
static uint64_t last_of(uint64_t start, uint64_t n, unsigned shift)
{
	uint64_t len_m1;

	if (n > (UINT64_MAX >> shift))
		return UINT64_MAX;
	len_m1 = (n << shift) - 1;
	return start > UINT64_MAX - len_m1 ? UINT64_MAX : start + len_m1;
}

struct tlbi {
	uint32_t op;
	uint16_t vmid, asid;
	uint64_t first, last; /* bytes */
	bool leaf_only;
	uint8_t ttl; /* 0: any level */
};

static void tlbi_decode(const struct smmuv3_cmd *c, struct tlbi *t)
{
	uint32_t tg = (uint32_t)SMMUV3_W1(c, SMMUV3_TLBI_TG);

	t->op = smmuv3_op(c);
	t->vmid = (uint16_t)SMMUV3_W0(c, SMMUV3_TLBI_VMID);
	t->asid = (uint16_t)SMMUV3_W0(c, SMMUV3_TLBI_ASID);
	t->leaf_only = SMMUV3_W1(c, SMMUV3_LEAF);
	t->ttl = 0;
	if (!tg) {
		t->first = t->last = smmuv3_addr(c);
		return;
	}
	unsigned gs = smmuv3_tg_shift(tg);
	uint64_t n = (SMMUV3_W0(c, SMMUV3_TLBI_NUM) + 1) << SMMUV3_W0(c, SMMUV3_TLBI_SCALE);

	t->first = smmuv3_addr(c) & ~((1ULL << gs) - 1);
	t->last = last_of(t->first, n, gs);
	t->ttl = (uint8_t)SMMUV3_W1(c, SMMUV3_TLBI_TTL);
}

static bool tlb_hit(const struct tlbi *t, const struct smmuv3_tlb_ent *e)
{
	uint64_t elast = last_of(e->va, 1, e->size_shift);

	if (t->op == SMMUV3_OP_TLBI_NSNH_ALL)
		return true;
	if (e->vmid != t->vmid)
		return false;
	switch (t->op) {
	case SMMUV3_OP_TLBI_NH_ALL:
		return true;
	case SMMUV3_OP_TLBI_NH_ASID:
		return e->asid == t->asid && !(e->leaf && e->global);
	case SMMUV3_OP_TLBI_NH_VA:
		if (e->asid != t->asid && !(e->leaf && e->global))
			return false;
		break;
	case SMMUV3_OP_TLBI_NH_VAA:
		break;
	default:
		return false;
	}
	if (e->va > t->last || elast < t->first)
		return false;
	if (!e->leaf)
		return !t->leaf_only;
	return !t->ttl || t->ttl == e->level;
}

static uint32_t apply_tlbi(struct smmuv3_model *m, const struct smmuv3_cmd *c)
{
	struct tlbi t;
	uint32_t hits = 0;

	tlbi_decode(c, &t);
	for (uint32_t i = 0; i < m->n_tlb; i++) {
		if (m->tlb[i].valid && tlb_hit(&t, &m->tlb[i])) {
			m->tlb[i].valid = false;
			hits++;
		}
	}
	return hits;
}

static uint32_t apply_cfgi(struct smmuv3_model *m, const struct smmuv3_cmd *c)
{
	bool all = smmuv3_op(c) == SMMUV3_OP_CFGI_CD_ALL;
	uint32_t sid = (uint32_t)SMMUV3_W0(c, SMMUV3_SID);
	uint32_t ssid = (uint32_t)SMMUV3_W0(c, SMMUV3_SSID);
	bool leaf_only = SMMUV3_W1(c, SMMUV3_LEAF);
	uint32_t hits = 0;

	for (uint32_t i = 0; i < m->n_cd; i++) {
		struct smmuv3_cd_ent *e = &m->cd[i];
		bool hit;

		if (!e->valid || e->sid != sid)
			continue;
		if (all)
			hit = true;
		else if (e->leaf)
			hit = e->ssid == ssid;
		else
			hit = !leaf_only && (e->ssid >> CD_L2_SHIFT) == (ssid >> CD_L2_SHIFT);
		if (hit) {
			e->valid = false;
			hits++;
		}
	}
	return hits;
}

static uint32_t apply_atc(struct smmuv3_model *m, const struct smmuv3_cmd *c)
{
	uint32_t sid = (uint32_t)SMMUV3_W0(c, SMMUV3_SID);
	uint32_t ssid = (uint32_t)SMMUV3_W0(c, SMMUV3_SSID);
	bool any_ssid = !SMMUV3_W0(c, SMMUV3_SSV) || SMMUV3_W0(c, SMMUV3_ATC_GLOBAL);
	unsigned lg = (unsigned)SMMUV3_W1(c, SMMUV3_ATC_SIZE);
	uint64_t first = 0, last = UINT64_MAX, hits = 0;

	if (lg < ATC_SIZE_ALL) {
		first = (smmuv3_addr(c) >> 12) & ~((1ULL << lg) - 1);
		last = first + (1ULL << lg) - 1;
	}
	for (uint32_t i = 0; i < m->n_atc; i++) {
		struct smmuv3_atc_ent *e = &m->atc[i];
		uint64_t elast = e->page + (1ULL << e->lg) - 1;

		if (!e->valid || e->sid != sid || e->page > last || elast < first)
			continue;
		if (!any_ssid && e->ssid != ssid)
			continue;
		e->valid = false;
		hits++;
	}
	return (uint32_t)hits;
}

int smmuv3_model_apply(struct smmuv3_model *m, const void *cmd, uint32_t *hits)
{
	struct smmuv3_cmd c;
	uint32_t h;

	smmuv3_cmd_load(&c, cmd);
	switch (smmuv3_op(&c)) {
	case SMMUV3_OP_TLBI_NSNH_ALL:
	case SMMUV3_OP_TLBI_NH_ALL:
	case SMMUV3_OP_TLBI_NH_ASID:
	case SMMUV3_OP_TLBI_NH_VA:
	case SMMUV3_OP_TLBI_NH_VAA:
		h = apply_tlbi(m, &c);
		break;
	case SMMUV3_OP_CFGI_CD:
	case SMMUV3_OP_CFGI_CD_ALL:
		h = apply_cfgi(m, &c);
		break;
	case SMMUV3_OP_ATC_INV:
		h = apply_atc(m, &c);
		break;
	default:
		return -EIO;
	}
	if (hits)
		*hits = h;
	return 0;
}

int smmuv3_sim_convert(const void *cmd, uint16_t vmid, const struct smmuv3_sim_vdev *vdevs,
		       uint32_t n_vdevs, void *out)
{
	struct smmuv3_cmd c;
	uint32_t vsid;

	smmuv3_cmd_load(&c, cmd);
	switch (smmuv3_op(&c)) {
	case SMMUV3_OP_TLBI_NSNH_ALL:
		c.cmd[0] = c.cmd[1] = 0;
		SMMUV3_SET0(&c, SMMUV3_OP, SMMUV3_OP_TLBI_NH_ALL);
		SMMUV3_SET0(&c, SMMUV3_TLBI_VMID, vmid);
		break;
	case SMMUV3_OP_TLBI_NH_VA:
	case SMMUV3_OP_TLBI_NH_VAA:
	case SMMUV3_OP_TLBI_NH_ALL:
	case SMMUV3_OP_TLBI_NH_ASID:
		SMMUV3_SET0(&c, SMMUV3_TLBI_VMID, vmid);
		break;
	case SMMUV3_OP_ATC_INV:
	case SMMUV3_OP_CFGI_CD:
	case SMMUV3_OP_CFGI_CD_ALL: {
		uint32_t i;

		vsid = (uint32_t)SMMUV3_W0(&c, SMMUV3_SID);
		for (i = 0; i < n_vdevs && vdevs[i].vsid != vsid; i++)
			;
		if (i == n_vdevs)
			return -EIO;
		SMMUV3_SET0(&c, SMMUV3_SID, vdevs[i].psid);
		break;
	}
	default:
		return -EIO;
	}
	memcpy(out, &c, sizeof(c));
	return 0;
}
