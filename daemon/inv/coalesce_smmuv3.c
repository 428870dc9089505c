/* SPDX-License-Identifier: MIT */
/*
 * Coalescing of SMMUv3 commands, one request (one guest CMD_SYNC batch)
 * at a time. Nothing is merged across requests: the guest's CMD_SYNC says
 * that everything before it has completed, and only the request's own
 * reply may say so, so each request's commands stay in their request.
 *
 * Inside a request the commands are cut into maximal runs of one class:
 * TLB (TLBI_*), CD (CFGI_CD*), ATC (ATC_INV). Runs keep their order, and
 * nothing moves from one run to another: a CFGI_CD that precedes a TLBI
 * (new CD, then flush the old ASID) or a TLBI that precedes an ATC_INV
 * (the ATC refills from the TLB) keeps that order. Within a run the
 * commands are invalidations of one cache; each removes entries, so their
 * order inside the run does not change what is gone at the CMD_SYNC.
 *
 * What merges, per run (the SMMUv3 architecture's matching rules, modelled
 * in backend/sim/smmuv3.c):
 *  TLB: TLBI_NH_ALL or TLBI_NSNH_ALL (which the kernel turns into NH_ALL
 *    of the vIOMMU's VMID) anywhere in the run -> one NH_ALL for the run.
 *    Duplicate NH_ASID collapse. NH_VA ranges merge per (ASID, granule),
 *    NH_VAA ranges per granule, when they overlap, touch or lie within
 *    slack granules; the merged command is leaf only if every input was,
 *    and keeps a TTL hint only if every input had the same one. A merged
 *    range goes out as one range command of (NUM + 1) * 2^SCALE granules,
 *    rounding up by less than 1/16 rather than splitting. Without range
 *    support (SMMU_IDR3.RIL) VAs only de-duplicate (same ASID and page).
 *    NH_ASID does NOT subsume NH_VA: NH_ASID leaves global (nG = 0) leaf
 *    entries alone and NH_VA of the same address removes them.
 *  CD: CFGI_CD_ALL per vSID de-duplicates and subsumes that vSID's
 *    CFGI_CD; CFGI_CD de-duplicates per (vSID, SSID), leaf only if all were.
 *  ATC: ATC_INV spans merge per (vSID, SSV, SSID, Global) into one
 *    naturally aligned span when it is at most twice the pages asked for.
 * A range that runs past 2^64 goes out unchanged and merges with nothing.
 * Output fields the kernel rewrites (VMID, SID translation) are left as
 * the guest wrote them (VMID 0 for commands made here).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "inv/smmuv3.h"

/* A range command spans at most 32 * 2^31 granules. */
#define MAX_RANGE_GRANULE_BITS 36

struct srec {
	uint64_t key;	/* what may merge: class-specific, see collect_* */
	uint64_t start; /* bytes (TLB) or 4 KiB pages (ATC); SSID (CD) */
	uint64_t last;	/* inclusive, so that the top of the space fits */
	uint64_t asked; /* ATC: pages the inputs asked for */
	uint32_t idx;	/* input index */
	uint8_t leaf;
	uint8_t ttl;
	uint8_t gshift; /* TLB: granule shift, 0 for a non-range VA */
	uint8_t raw;	/* TLB: goes out unchanged */
};

static int srec_cmp(const void *a, const void *b)
{
	const struct srec *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/*
 * Guests mostly flush in address order (an unmap walks its range), and
 * then the records arrive sorted: check before paying for a sort.
 */
static void sort_recs(struct srec *recs, uint32_t nr)
{
	for (uint32_t i = 1; i < nr; i++) {
		if (srec_cmp(&recs[i - 1], &recs[i]) > 0) {
			qsort(recs, nr, sizeof(*recs), srec_cmp);
			return;
		}
	}
}

struct out {
	const struct smmuv3_cmd *in;
	struct coalesce_plan *plan;
	struct smmuv3_cmd *sub;
	uint32_t k;
};

static uint32_t emit(struct out *o, const struct smmuv3_cmd *c)
{
	o->sub[o->k] = *c;
	return o->k++;
}

static void serve(struct out *o, uint32_t i, uint32_t k)
{
	o->plan->first[i] = o->plan->last[i] = k;
}

static uint64_t sat_add64(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* Range command of n granules (1 <= n <= 2^36) of 2^gshift from start. */
static void put_range(struct smmuv3_cmd *c, uint64_t start, uint64_t n, unsigned gshift)
{
	unsigned scale = 0;
	uint32_t tg = gshift == 12 ? 1 : gshift == 14 ? 2 : 3;

	while (((n + (1ULL << scale) - 1) >> scale) > 32)
		scale++;
	SMMUV3_SET0(c, SMMUV3_TLBI_SCALE, scale);
	SMMUV3_SET0(c, SMMUV3_TLBI_NUM, ((n + (1ULL << scale) - 1) >> scale) - 1);
	SMMUV3_SET1(c, SMMUV3_TLBI_TG, tg);
	smmuv3_set_addr(c, start);
}

/* ---- TLB runs ---- */

static void tlb_rec(const struct smmuv3_cmd *c, const struct smmuv3_coalesce_params *p,
		    struct srec *r)
{
	uint32_t op = smmuv3_op(c);
	uint64_t asid = op == SMMUV3_OP_TLBI_NH_VA ? SMMUV3_W0(c, SMMUV3_TLBI_ASID) : 0;
	uint32_t tg = (uint32_t)SMMUV3_W1(c, SMMUV3_TLBI_TG);
	uint64_t va = smmuv3_addr(c);

	r->leaf = (uint8_t)SMMUV3_W1(c, SMMUV3_LEAF);
	r->ttl = tg ? (uint8_t)SMMUV3_W1(c, SMMUV3_TLBI_TTL) : 0;
	r->raw = 0;
	if (tg && !p->range) {
		/* The host would not read the range: pass it on unchanged. */
		r->raw = 1;
		r->gshift = 0;
		r->start = r->last = va;
	} else if (tg) {
		unsigned gs = smmuv3_tg_shift(tg);
		uint64_t n = (SMMUV3_W0(c, SMMUV3_TLBI_NUM) + 1) << SMMUV3_W0(c, SMMUV3_TLBI_SCALE);

		r->gshift = (uint8_t)gs;
		r->start = va & ~((1ULL << gs) - 1);
		r->last = sat_add64(r->start, (n << gs) - 1);
		/*
		 * A range past the top of the address space: whether the
		 * hardware wraps is not ours to guess, so it goes out as sent.
		 */
		if (r->start > UINT64_MAX - ((n << gs) - 1)) {
			r->raw = 1;
			r->gshift = 0;
		}
	} else if (p->range && p->va_tg) {
		unsigned gs = smmuv3_tg_shift(p->va_tg);

		r->gshift = (uint8_t)gs;
		r->start = va & ~((1ULL << gs) - 1);
		r->last = sat_add64(r->start, (1ULL << gs) - 1);
	} else {
		r->gshift = 0;
		r->start = r->last = va;
	}
	/* op (8 bits) | ASID (16) | granule shift (8); raw ones never merge. */
	r->key = ((uint64_t)op << 40) | (asid << 24) | ((uint64_t)r->gshift << 16);
}

/* Whether b joins group g (sorted: b->start >= g->start, same key). */
static bool tlb_joins(const struct srec *g, const struct srec *b,
		      const struct smmuv3_coalesce_params *p)
{
	uint64_t reach, span_last, slack;

	if (g->key != b->key || g->raw || b->raw)
		return false;
	if (!g->gshift)
		return b->start == g->start; /* non-range: the same page only */
	slack = p->slack_granules > (UINT64_MAX >> g->gshift) ? UINT64_MAX
							      : p->slack_granules << g->gshift;
	reach = sat_add64(g->last, sat_add64(1, slack));
	if (b->start > reach)
		return false;
	span_last = b->last > g->last ? b->last : g->last;
	return ((span_last - g->start) >> g->gshift) < (1ULL << MAX_RANGE_GRANULE_BITS);
}

static void tlb_put(struct out *o, const struct srec *g)
{
	struct smmuv3_cmd c;

	if (g->raw) {
		c = o->in[g->idx];
		emit(o, &c);
		return;
	}
	memset(&c, 0, sizeof(c));
	SMMUV3_SET0(&c, SMMUV3_OP, g->key >> 40);
	SMMUV3_SET0(&c, SMMUV3_TLBI_ASID, (g->key >> 24) & 0xffff);
	SMMUV3_SET1(&c, SMMUV3_LEAF, g->leaf);
	if (g->gshift) {
		put_range(&c, g->start, ((g->last - g->start) >> g->gshift) + 1, g->gshift);
		SMMUV3_SET1(&c, SMMUV3_TLBI_TTL, g->ttl);
	} else {
		smmuv3_set_addr(&c, g->start);
	}
	emit(o, &c);
}

static void tlb_run(struct out *o, uint32_t a, uint32_t b, const struct smmuv3_coalesce_params *p,
		    struct srec *recs)
{
	uint32_t nr = 0, g0;

	for (uint32_t i = a; i < b; i++) {
		uint32_t op = smmuv3_op(&o->in[i]);

		if (op == SMMUV3_OP_TLBI_NH_ALL || op == SMMUV3_OP_TLBI_NSNH_ALL) {
			struct smmuv3_cmd all = {{0, 0}};
			uint32_t k;

			SMMUV3_SET0(&all, SMMUV3_OP, SMMUV3_OP_TLBI_NH_ALL);
			k = emit(o, &all);
			for (uint32_t j = a; j < b; j++)
				serve(o, j, k);
			return;
		}
	}
	for (uint32_t i = a; i < b; i++) {
		struct srec *r = &recs[nr++];

		r->idx = i;
		if (smmuv3_op(&o->in[i]) == SMMUV3_OP_TLBI_NH_ASID) {
			r->key = ((uint64_t)SMMUV3_OP_TLBI_NH_ASID << 40) |
				 (SMMUV3_W0(&o->in[i], SMMUV3_TLBI_ASID) << 24);
			r->start = r->last = 0;
			r->raw = 0;
			r->gshift = 0;
			r->leaf = r->ttl = 0;
			continue;
		}
		tlb_rec(&o->in[i], p, r);
	}
	sort_recs(recs, nr);
	for (uint32_t i = 0; i < nr; i = g0) {
		struct srec g = recs[i];
		uint32_t k;

		for (g0 = i + 1; g0 < nr && tlb_joins(&g, &recs[g0], p); g0++) {
			if (recs[g0].last > g.last)
				g.last = recs[g0].last;
			g.leaf &= recs[g0].leaf;
			if (g.ttl != recs[g0].ttl)
				g.ttl = 0;
		}
		k = o->k;
		if ((g.key >> 40) == SMMUV3_OP_TLBI_NH_ASID) {
			struct smmuv3_cmd c = {{0, 0}};

			SMMUV3_SET0(&c, SMMUV3_OP, SMMUV3_OP_TLBI_NH_ASID);
			SMMUV3_SET0(&c, SMMUV3_TLBI_ASID, (g.key >> 24) & 0xffff);
			emit(o, &c);
		} else {
			tlb_put(o, &g);
		}
		for (uint32_t j = i; j < g0; j++)
			serve(o, recs[j].idx, k);
	}
}

/* ---- CD runs ---- */

static void cd_run(struct out *o, uint32_t a, uint32_t b, struct srec *recs)
{
	uint32_t nr = 0, g0;

	for (uint32_t i = a; i < b; i++) {
		const struct smmuv3_cmd *c = &o->in[i];
		struct srec *r = &recs[nr++];
		bool all = smmuv3_op(c) == SMMUV3_OP_CFGI_CD_ALL;

		r->idx = i;
		/* The vSID first, then CD_ALL (start 0) before its CDs. */
		r->key = SMMUV3_W0(c, SMMUV3_SID);
		r->start = all ? 0 : 1 + SMMUV3_W0(c, SMMUV3_SSID);
		r->leaf = all ? 0 : (uint8_t)SMMUV3_W1(c, SMMUV3_LEAF);
	}
	sort_recs(recs, nr);
	for (uint32_t i = 0; i < nr; i = g0) {
		struct srec g = recs[i];
		struct smmuv3_cmd c = {{0, 0}};
		uint32_t k;

		for (g0 = i + 1;
		     g0 < nr && recs[g0].key == g.key && (!g.start || recs[g0].start == g.start);
		     g0++)
			g.leaf &= recs[g0].leaf;
		SMMUV3_SET0(&c, SMMUV3_OP, g.start ? SMMUV3_OP_CFGI_CD : SMMUV3_OP_CFGI_CD_ALL);
		SMMUV3_SET0(&c, SMMUV3_SID, g.key);
		if (g.start) {
			SMMUV3_SET0(&c, SMMUV3_SSID, g.start - 1);
			SMMUV3_SET1(&c, SMMUV3_LEAF, g.leaf);
		}
		k = emit(o, &c);
		for (uint32_t j = i; j < g0; j++)
			serve(o, recs[j].idx, k);
	}
}

/* ---- ATC runs ---- */

#define ATC_SIZE_ALL 52

/* Pages [*s, *s + 2^*lg) of an ATC_INV, 4 KiB pages; lg >= 52: all. */
static void atc_span(const struct smmuv3_cmd *c, uint64_t *s, unsigned *lg)
{
	unsigned size = (unsigned)SMMUV3_W1(c, SMMUV3_ATC_SIZE);

	*lg = size >= ATC_SIZE_ALL ? ATC_SIZE_ALL : size;
	*s = *lg >= ATC_SIZE_ALL ? 0 : (smmuv3_addr(c) >> 12) & ~((1ULL << *lg) - 1);
}

/* log2 of the smallest aligned block holding pages [s, last]. */
static unsigned block_lg(uint64_t s, uint64_t last)
{
	uint64_t x = s ^ last;

	return x ? 64 - (unsigned)__builtin_clzll(x) : 0;
}

static void atc_run(struct out *o, uint32_t a, uint32_t b, struct srec *recs)
{
	uint32_t nr = 0, g0;

	for (uint32_t i = a; i < b; i++) {
		const struct smmuv3_cmd *c = &o->in[i];
		struct srec *r = &recs[nr++];
		uint64_t ssv = SMMUV3_W0(c, SMMUV3_SSV);
		unsigned lg;

		r->idx = i;
		/* vSID | SSV | Global | SSID (only when SSV). */
		r->key = (SMMUV3_W0(c, SMMUV3_SID) << 32) | (ssv << 31) |
			 (SMMUV3_W0(c, SMMUV3_ATC_GLOBAL) << 30) |
			 (ssv ? SMMUV3_W0(c, SMMUV3_SSID) : 0);
		atc_span(c, &r->start, &lg);
		r->last = lg >= ATC_SIZE_ALL ? UINT64_MAX : r->start + (1ULL << lg) - 1;
		r->asked = lg >= ATC_SIZE_ALL ? UINT64_MAX : 1ULL << lg;
	}
	sort_recs(recs, nr);
	for (uint32_t i = 0; i < nr; i = g0) {
		struct srec g = recs[i];
		struct smmuv3_cmd c;
		unsigned lg;
		uint32_t k;

		for (g0 = i + 1; g0 < nr && recs[g0].key == g.key; g0++) {
			const struct srec *r = &recs[g0];
			uint64_t last = r->last > g.last ? r->last : g.last;
			uint64_t asked = sat_add64(g.asked, r->start > g.last ? r->asked : 0);
			unsigned nlg = block_lg(g.start, last);

			/* Merged span: at most twice the pages asked for. */
			if (g.last != UINT64_MAX && nlg < ATC_SIZE_ALL && (1ULL << nlg) / 2 > asked)
				break;
			g.last = last;
			g.asked = asked;
		}
		lg = g.last == UINT64_MAX ? ATC_SIZE_ALL : block_lg(g.start, g.last);
		if (lg >= ATC_SIZE_ALL)
			lg = ATC_SIZE_ALL;
		c = o->in[g.idx];
		SMMUV3_SET1(&c, SMMUV3_ATC_SIZE, lg);
		smmuv3_set_addr(&c, lg >= ATC_SIZE_ALL ? 0 : (g.start & ~((1ULL << lg) - 1)) << 12);
		k = emit(o, &c);
		for (uint32_t j = i; j < g0; j++)
			serve(o, recs[j].idx, k);
	}
}

int coalesce_smmuv3(const void *in, uint32_t n, const struct smmuv3_coalesce_params *p,
		    struct coalesce_plan *plan)
{
	struct out o;
	struct srec *recs;
	uint32_t a = 0;
	int rc;

	for (uint32_t i = 0; i < n; i++)
		if (smmuv3_cmd_class((const uint8_t *)in + (size_t)i * SMMUV3_CMD_SIZE) ==
		    SMMUV3_CLASS_NONE)
			return -EINVAL;
	if (!p->enabled)
		return coalesce_identity(in, n, SMMUV3_CMD_SIZE, plan);
	plan->n_sub = 0;
	plan->pages_flushed = 0;
	if (!n)
		return 0;
	rc = coalesce_plan_reserve(plan, n, n, SMMUV3_CMD_SIZE);
	if (!rc)
		rc = coalesce_plan_scratch(plan, (size_t)n * sizeof(struct srec));
	if (rc)
		return rc;
	recs = plan->scratch;
	o = (struct out){.in = in, .plan = plan, .sub = plan->sub, .k = 0};
	while (a < n) {
		enum smmuv3_class cl = smmuv3_cmd_class(&o.in[a]);
		uint32_t b = a + 1;

		while (b < n && smmuv3_cmd_class(&o.in[b]) == cl)
			b++;
		if (cl == SMMUV3_CLASS_TLB)
			tlb_run(&o, a, b, p, recs);
		else if (cl == SMMUV3_CLASS_CD)
			cd_run(&o, a, b, recs);
		else
			atc_run(&o, a, b, recs);
		a = b;
	}
	plan->n_sub = o.k;
	return 0;
}
