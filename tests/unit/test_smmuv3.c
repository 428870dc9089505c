/* SPDX-License-Identifier: MIT */
/*
 * SMMUv3 commands: the 7.x driver's validation rules, the sim's model of
 * what each command invalidates, and the coalescer - hand-written cases,
 * then a property test: random command streams applied, through the
 * driver's conversion, to copies of a populated model (TLB, CD cache,
 * ATC), once as the guest wrote them and once as coalesced. Everything
 * the input invalidates must be invalidated by the output, and by the
 * outputs that serve each input alone (what partial-failure handling
 * relies on).
 *
 * NESTD_SEED=<n> replays a run; NESTD_BATCHES=<n> changes its length.
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/sim/smmuv3.h"
#include "backend/smmuv3_cmd.h"
#include "inv/smmuv3.h"
#include "inv/validate.h"
#include "test_rng.h"
#include "unit_run.h"

typedef struct smmuv3_cmd cmd_t;

#define VMID 9
#define PG   4096ULL

static struct coalesce_plan plan;
static const struct smmuv3_vsid vsids[] = {{1, 101}, {2, 102}, {3, 103}};
static const struct smmuv3_vsid_map vmap = {vsids, 3};
static const struct smmuv3_sim_vdev vdevs[] = {{1, 101}, {2, 102}, {3, 103}};

static const cmd_t *sub(uint32_t k)
{
	return (const cmd_t *)plan.sub + k;
}

static cmd_t op_cmd(uint32_t op)
{
	cmd_t c = {{0, 0}};

	SMMUV3_SET0(&c, SMMUV3_OP, op);
	return c;
}

/* NH_VA (asid) or NH_VAA (asid < 0); tg 0: one address. */
static cmd_t va(int asid, uint64_t addr, bool leaf, uint32_t tg, uint32_t num, uint32_t scale,
		uint32_t ttl)
{
	cmd_t c = op_cmd(asid < 0 ? SMMUV3_OP_TLBI_NH_VAA : SMMUV3_OP_TLBI_NH_VA);

	if (asid >= 0)
		SMMUV3_SET0(&c, SMMUV3_TLBI_ASID, (uint64_t)asid);
	SMMUV3_SET0(&c, SMMUV3_TLBI_NUM, num);
	SMMUV3_SET0(&c, SMMUV3_TLBI_SCALE, scale);
	SMMUV3_SET1(&c, SMMUV3_LEAF, leaf);
	SMMUV3_SET1(&c, SMMUV3_TLBI_TG, tg);
	SMMUV3_SET1(&c, SMMUV3_TLBI_TTL, ttl);
	smmuv3_set_addr(&c, addr);
	return c;
}

static cmd_t page(int asid, uint64_t pg, bool leaf)
{
	return va(asid, pg * PG, leaf, 0, 0, 0, 0);
}

static cmd_t asid_cmd(uint32_t asid)
{
	cmd_t c = op_cmd(SMMUV3_OP_TLBI_NH_ASID);

	SMMUV3_SET0(&c, SMMUV3_TLBI_ASID, asid);
	return c;
}

static cmd_t cfgi_cd(uint32_t sid, uint32_t ssid, bool leaf)
{
	cmd_t c = op_cmd(SMMUV3_OP_CFGI_CD);

	SMMUV3_SET0(&c, SMMUV3_SID, sid);
	SMMUV3_SET0(&c, SMMUV3_SSID, ssid);
	SMMUV3_SET1(&c, SMMUV3_LEAF, leaf);
	return c;
}

static cmd_t cfgi_all(uint32_t sid)
{
	cmd_t c = op_cmd(SMMUV3_OP_CFGI_CD_ALL);

	SMMUV3_SET0(&c, SMMUV3_SID, sid);
	return c;
}

static cmd_t atc(uint32_t sid, bool ssv, uint32_t ssid, bool global, uint64_t pg, uint32_t size)
{
	cmd_t c = op_cmd(SMMUV3_OP_ATC_INV);

	SMMUV3_SET0(&c, SMMUV3_SID, sid);
	SMMUV3_SET0(&c, SMMUV3_SSV, ssv);
	SMMUV3_SET0(&c, SMMUV3_SSID, ssid);
	SMMUV3_SET0(&c, SMMUV3_ATC_GLOBAL, global);
	SMMUV3_SET1(&c, SMMUV3_ATC_SIZE, size);
	smmuv3_set_addr(&c, pg * PG);
	return c;
}

static struct smmuv3_coalesce_params prm(bool range, uint32_t va_tg, uint64_t slack)
{
	return (struct smmuv3_coalesce_params){
	    .enabled = true, .range = range, .va_tg = va_tg, .slack_granules = slack};
}

/* ---- validation ---- */

static struct inv_request req_of(cmd_t *c, uint32_t n, struct inv_entry_result *res)
{
	return (struct inv_request){.data_type = IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3,
				    .entry_len = SMMUV3_CMD_SIZE,
				    .n = n,
				    .entries = c,
				    .res = res};
}

static void test_validate_request(void)
{
	cmd_t c[1] = {asid_cmd(1)};
	struct inv_entry_result res[1];
	struct inv_request r = req_of(c, 1, res);

	CU_ASSERT_EQUAL(smmuv3_validate_request(&r), 0);
	r.entry_len = 0; /* native */
	CU_ASSERT_EQUAL(smmuv3_validate_request(&r), 0);
	r.entry_len = 1; /* zero-extended by copy_struct_from_user */
	CU_ASSERT_EQUAL(smmuv3_validate_request(&r), 0);
	r.entry_len = 4096;
	CU_ASSERT_EQUAL(smmuv3_validate_request(&r), 0);
	r.entry_len = 4097;
	CU_ASSERT_EQUAL(smmuv3_validate_request(&r), -EINVAL);
	r.entry_len = 16;
	r.reserved = 1;
	CU_ASSERT_EQUAL(smmuv3_validate_request(&r), -EOPNOTSUPP);
	r.reserved = 0;
	r.data_type = 0; /* VT-d */
	CU_ASSERT_EQUAL(smmuv3_validate_request(&r), -EINVAL);
	r.data_type = IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3;
	r.n = 0; /* no empty-array probe on a vIOMMU */
	CU_ASSERT_EQUAL(smmuv3_validate_request(&r), -EINVAL);
	r.n = (1u << 19) + 1;
	CU_ASSERT_EQUAL(smmuv3_validate_request(&r), -EINVAL);
}

static void test_validate_cmd(void)
{
	static const uint32_t bad[] = {0x00, 0x01, 0x03, 0x04, 0x20, 0x28,
				       0x2a, 0x41, 0x44, 0x46, 0xff};
	cmd_t c;

	c = page(3, 7, true);
	SMMUV3_SET0(&c, SMMUV3_TLBI_VMID, 0xffff); /* rewritten by the kernel */
	CU_ASSERT_EQUAL(smmuv3_validate_cmd(&c, &vmap), 0);
	c = op_cmd(SMMUV3_OP_TLBI_NSNH_ALL);
	c.cmd[1] = htole64(0x1234);
	CU_ASSERT_EQUAL(smmuv3_validate_cmd(&c, NULL), 0);
	c = op_cmd(SMMUV3_OP_TLBI_NH_ALL);
	CU_ASSERT_EQUAL(smmuv3_validate_cmd(&c, NULL), 0);
	c = va(-1, 0x5000, false, 1, 3, 2, 3);
	CU_ASSERT_EQUAL(smmuv3_validate_cmd(&c, NULL), 0);
	c = asid_cmd(0xffff);
	CU_ASSERT_EQUAL(smmuv3_validate_cmd(&c, NULL), 0);
	c = cfgi_cd(2, 5, true);
	CU_ASSERT_EQUAL(smmuv3_validate_cmd(&c, &vmap), 0);
	c = cfgi_cd(4, 5, true); /* no vDEVICE with virt_id 4 */
	CU_ASSERT_EQUAL(smmuv3_validate_cmd(&c, &vmap), -EIO);
	CU_ASSERT_EQUAL(smmuv3_validate_cmd(&c, NULL), -EIO);
	c = cfgi_all(3);
	CU_ASSERT_EQUAL(smmuv3_validate_cmd(&c, &vmap), 0);
	c = cfgi_all(0);
	CU_ASSERT_EQUAL(smmuv3_validate_cmd(&c, &vmap), -EIO);
	c = atc(1, true, 3, false, 0, 52);
	CU_ASSERT_EQUAL(smmuv3_validate_cmd(&c, &vmap), 0);
	c = atc(101, false, 0, false, 0, 0); /* a pSID is not a vSID */
	CU_ASSERT_EQUAL(smmuv3_validate_cmd(&c, &vmap), -EIO);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		c = op_cmd(bad[i]);
		SMMUV3_SET0(&c, SMMUV3_SID, 1);
		CU_ASSERT_EQUAL(smmuv3_validate_cmd(&c, &vmap), -EIO);
		CU_ASSERT_EQUAL(smmuv3_cmd_class(&c), SMMUV3_CLASS_NONE);
	}
}

static void test_vsid_table(void)
{
	static struct smmuv3_vsid t[1000];
	struct smmuv3_vsid_map m = {t, 1000};
	uint32_t psid;

	/* vDEVICEs arrive in any order; virt_ids are sparse. */
	for (uint32_t i = 0; i < 1000; i++)
		t[i] = (struct smmuv3_vsid){.vsid = (i * 7919u) % 1000 * 3 + 1, .psid = i};
	smmuv3_vsid_sort(t, 1000);
	for (uint32_t i = 0; i < 1000; i++) {
		uint32_t v = (i * 7919u) % 1000 * 3 + 1;

		CU_ASSERT_TRUE(smmuv3_vsid_lookup(&m, v, &psid));
		CU_ASSERT_EQUAL(psid, i);
		CU_ASSERT_FALSE(smmuv3_vsid_lookup(&m, v + 1, NULL));
	}
	CU_ASSERT_FALSE(smmuv3_vsid_lookup(&m, 0, NULL));
	CU_ASSERT_FALSE(smmuv3_vsid_lookup(&m, UINT32_MAX, NULL));
	m.n = 0;
	CU_ASSERT_FALSE(smmuv3_vsid_lookup(&m, 1, NULL));
}

static void test_validate_entries(void)
{
	cmd_t c[4] = {asid_cmd(1), cfgi_cd(9, 0, true), op_cmd(0x46), page(1, 1, true)};
	struct inv_entry_result res[4];
	struct inv_request r = req_of(c, 4, res);

	CU_ASSERT_EQUAL(smmuv3_validate_entries(&r, &vmap), 1);
	CU_ASSERT_EQUAL(res[0].state, INV_PENDING);
	CU_ASSERT_EQUAL(res[1].state, INV_FAILED);
	CU_ASSERT_EQUAL(res[1].error, -EIO);
	CU_ASSERT_EQUAL(res[2].state, INV_NOT_ATTEMPTED);
	CU_ASSERT_EQUAL(res[3].state, INV_NOT_ATTEMPTED);
	r.cont = true;
	CU_ASSERT_EQUAL(smmuv3_validate_entries(&r, &vmap), 2);
	CU_ASSERT_EQUAL(res[1].state, INV_FAILED);
	CU_ASSERT_EQUAL(res[2].state, INV_FAILED);
	CU_ASSERT_EQUAL(res[2].error, -EIO);
	CU_ASSERT_EQUAL(res[3].state, INV_PENDING);
}

static void test_truncate(void)
{
	cmd_t c[2] = {page(1, 5, true), cfgi_cd(1, 0xfffff, true)};
	struct inv_entry_result res[2];
	struct inv_request r = req_of(c, 2, res);

	r.entry_len = 8; /* the kernel sees word 0 and zeros */
	smmuv3_truncate_entries(&r);
	CU_ASSERT_EQUAL(c[0].cmd[1], 0);
	CU_ASSERT_EQUAL(c[1].cmd[1], 0);
	CU_ASSERT_EQUAL(smmuv3_op(&c[1]), SMMUV3_OP_CFGI_CD);
	r.entry_len = 1; /* only the opcode survives */
	smmuv3_truncate_entries(&r);
	CU_ASSERT_EQUAL(le64toh(c[1].cmd[0]), SMMUV3_OP_CFGI_CD);
	CU_ASSERT_EQUAL(smmuv3_validate_cmd(&c[1], &vmap), -EIO); /* vSID 0 */
}

/* ---- the sim's model and the driver's conversion ---- */

static void test_sim_convert(void)
{
	cmd_t c = op_cmd(SMMUV3_OP_TLBI_NSNH_ALL), o;

	c.cmd[1] = htole64(77);
	CU_ASSERT_EQUAL(smmuv3_sim_convert(&c, VMID, vdevs, 3, &o), 0);
	CU_ASSERT_EQUAL(smmuv3_op(&o), SMMUV3_OP_TLBI_NH_ALL);
	CU_ASSERT_EQUAL(SMMUV3_W0(&o, SMMUV3_TLBI_VMID), VMID);
	CU_ASSERT_EQUAL(o.cmd[1], 0);
	c = page(4, 1, true);
	SMMUV3_SET0(&c, SMMUV3_TLBI_VMID, 3);
	CU_ASSERT_EQUAL(smmuv3_sim_convert(&c, VMID, vdevs, 3, &o), 0);
	CU_ASSERT_EQUAL(SMMUV3_W0(&o, SMMUV3_TLBI_VMID), VMID);
	CU_ASSERT_EQUAL(SMMUV3_W0(&o, SMMUV3_TLBI_ASID), 4);
	c = atc(2, true, 5, false, 16, 2);
	CU_ASSERT_EQUAL(smmuv3_sim_convert(&c, VMID, vdevs, 3, &o), 0);
	CU_ASSERT_EQUAL(SMMUV3_W0(&o, SMMUV3_SID), 102);
	CU_ASSERT_EQUAL(SMMUV3_W0(&o, SMMUV3_SSID), 5);
	c = cfgi_all(7);
	CU_ASSERT_EQUAL(smmuv3_sim_convert(&c, VMID, vdevs, 3, &o), -EIO);
	c = op_cmd(0x28);
	CU_ASSERT_EQUAL(smmuv3_sim_convert(&c, VMID, vdevs, 3, &o), -EIO);
}

static uint32_t apply_hits(struct smmuv3_model *m, cmd_t c)
{
	cmd_t o;
	uint32_t h = 0;

	CU_ASSERT_EQUAL_FATAL(smmuv3_sim_convert(&c, VMID, vdevs, 3, &o), 0);
	CU_ASSERT_EQUAL(smmuv3_model_apply(m, &o, &h), 0);
	return h;
}

static void test_model_tlb(void)
{
	struct smmuv3_model m;
	struct smmuv3_tlb_ent e[] = {
	    {VMID, 1, 0x1000, 12, 3, true, false, true},     /* 0: ASID 1 page */
	    {VMID, 1, 0x1000, 12, 3, true, true, true},	     /* 1: global page */
	    {VMID, 1, 0x0, 21, 2, false, false, true},	     /* 2: walk entry, 2M */
	    {VMID, 2, 0x200000, 21, 2, true, false, true},   /* 3: ASID 2 block */
	    {VMID + 1, 1, 0x1000, 12, 3, true, false, true}, /* 4: another VM */
	};

	smmuv3_model_init(&m);
	for (size_t i = 0; i < sizeof(e) / sizeof(e[0]); i++)
		CU_ASSERT_EQUAL(smmuv3_model_add_tlb(&m, &e[i]), 0);
	/* NH_ASID spares the global leaf; NH_VA of the address does not. */
	CU_ASSERT_EQUAL(apply_hits(&m, asid_cmd(1)), 2);
	CU_ASSERT_TRUE(m.tlb[1].valid);
	CU_ASSERT_EQUAL(apply_hits(&m, page(5, 1, true)), 1);
	CU_ASSERT_FALSE(m.tlb[1].valid);
	for (uint32_t i = 0; i < m.n_tlb; i++)
		m.tlb[i].valid = true;
	/* Leaf = 1 spares the walk entry; TTL 3 spares the level-2 block. */
	CU_ASSERT_EQUAL(apply_hits(&m, va(-1, 0, true, 1, 31, 10, 3)), 2);
	CU_ASSERT_TRUE(m.tlb[2].valid);
	CU_ASSERT_TRUE(m.tlb[3].valid);
	CU_ASSERT_EQUAL(apply_hits(&m, va(2, 0x3ff000, false, 1, 0, 0, 0)), 1);
	CU_ASSERT_FALSE(m.tlb[3].valid);
	CU_ASSERT_EQUAL(apply_hits(&m, page(1, 0x10, false)), 1); /* walk entry covers it */
	CU_ASSERT_EQUAL(apply_hits(&m, op_cmd(SMMUV3_OP_TLBI_NSNH_ALL)), 0);
	CU_ASSERT_TRUE(m.tlb[4].valid); /* the kernel made it NH_ALL of VMID */
	smmuv3_model_free(&m);
}

static void test_model_cd_atc(void)
{
	struct smmuv3_model m;
	struct smmuv3_cd_ent cd[] = {{101, 5, true, true},
				     {101, 6, true, true},
				     {101, 1000, false, true},
				     {102, 5, true, true}};
	struct smmuv3_atc_ent at[] = {{101, SMMUV3_NO_SSID, 8, 0, true},
				      {101, 3, 8, 0, true},
				      {101, 4, 12, 2, true},
				      {102, 3, 8, 0, true}};

	smmuv3_model_init(&m);
	for (size_t i = 0; i < 4; i++) {
		CU_ASSERT_EQUAL(smmuv3_model_add_cd(&m, &cd[i]), 0);
		CU_ASSERT_EQUAL(smmuv3_model_add_atc(&m, &at[i]), 0);
	}
	CU_ASSERT_EQUAL(apply_hits(&m, cfgi_cd(1, 5, true)), 1);
	CU_ASSERT_EQUAL(apply_hits(&m, cfgi_cd(1, 7, false)), 1); /* the L1 descriptor */
	CU_ASSERT_EQUAL(apply_hits(&m, cfgi_all(1)), 1);
	CU_ASSERT_TRUE(m.cd[3].valid);
	CU_ASSERT_EQUAL(apply_hits(&m, atc(1, true, 3, false, 8, 0)), 1);
	CU_ASSERT_TRUE(m.atc[0].valid);
	CU_ASSERT_EQUAL(apply_hits(&m, atc(1, false, 0, false, 9, 2)),
			1);		/* span 8..11, any PASID */
	CU_ASSERT_TRUE(m.atc[2].valid); /* pages 12..15 */
	CU_ASSERT_EQUAL(apply_hits(&m, atc(1, true, 9, true, 0, 52)), 1);
	CU_ASSERT_TRUE(m.atc[3].valid);
	smmuv3_model_free(&m);
}

/* ---- coalescing: hand-written cases ---- */

static void run_plan(const cmd_t *in, uint32_t n, struct smmuv3_coalesce_params p)
{
	CU_ASSERT_EQUAL_FATAL(coalesce_smmuv3(in, n, &p, &plan), 0);
	CU_ASSERT_TRUE(plan.n_sub <= n);
	for (uint32_t i = 0; i < n; i++) {
		CU_ASSERT_EQUAL(plan.first[i], plan.last[i]);
		CU_ASSERT_TRUE(plan.first[i] < plan.n_sub);
	}
	for (uint32_t k = 0; k < plan.n_sub; k++)
		CU_ASSERT_EQUAL(smmuv3_validate_cmd(sub(k), &vmap), 0);
}

static void test_storm(void)
{
	static cmd_t in[1024];

	/* A guest unmapping 2 MiB page by page, one ASID. */
	for (uint32_t i = 0; i < 512; i++)
		in[i] = page(5, 0x1000 + i, true);
	run_plan(in, 512, prm(true, 1, 0));
	CU_ASSERT_EQUAL_FATAL(plan.n_sub, 1);
	CU_ASSERT_EQUAL(smmuv3_op(sub(0)), SMMUV3_OP_TLBI_NH_VA);
	CU_ASSERT_EQUAL(SMMUV3_W0(sub(0), SMMUV3_TLBI_ASID), 5);
	CU_ASSERT_EQUAL(SMMUV3_W1(sub(0), SMMUV3_TLBI_TG), 1);
	CU_ASSERT_EQUAL(SMMUV3_W0(sub(0), SMMUV3_TLBI_SCALE), 4);
	CU_ASSERT_EQUAL(SMMUV3_W0(sub(0), SMMUV3_TLBI_NUM), 31); /* 32 * 2^4 = 512 pages */
	CU_ASSERT_EQUAL(SMMUV3_W1(sub(0), SMMUV3_LEAF), 1);
	CU_ASSERT_EQUAL(smmuv3_addr(sub(0)), 0x1000 * PG);

	/* Backwards, with one non-leaf page: same range, non-leaf. */
	for (uint32_t i = 0; i < 512; i++)
		in[i] = page(5, 0x1000 + 511 - i, i != 100);
	run_plan(in, 512, prm(true, 1, 0));
	CU_ASSERT_EQUAL_FATAL(plan.n_sub, 1);
	CU_ASSERT_EQUAL(SMMUV3_W1(sub(0), SMMUV3_LEAF), 0);

	/* 100 pages: 25 * 2^2 granules, exact. */
	for (uint32_t i = 0; i < 100; i++)
		in[i] = page(5, i, true);
	run_plan(in, 100, prm(true, 1, 0));
	CU_ASSERT_EQUAL_FATAL(plan.n_sub, 1);
	CU_ASSERT_EQUAL(SMMUV3_W0(sub(0), SMMUV3_TLBI_SCALE), 2);
	CU_ASSERT_EQUAL(SMMUV3_W0(sub(0), SMMUV3_TLBI_NUM), 24);

	/* No range invalidation on the host: only duplicates go. */
	for (uint32_t i = 0; i < 1024; i++)
		in[i] = page(5, i % 512, true);
	run_plan(in, 1024, prm(false, 1, 0));
	CU_ASSERT_EQUAL(plan.n_sub, 512);
	CU_ASSERT_EQUAL(SMMUV3_W1(sub(0), SMMUV3_TLBI_TG), 0);

	/* Every other page: no merge without slack, one range with slack 1. */
	for (uint32_t i = 0; i < 64; i++)
		in[i] = page(5, 2 * i, true);
	run_plan(in, 64, prm(true, 1, 0));
	CU_ASSERT_EQUAL(plan.n_sub, 64);
	run_plan(in, 64, prm(true, 1, 1));
	CU_ASSERT_EQUAL(plan.n_sub, 1);

	/* A range that runs past 2^64 goes out as sent, merged with nothing. */
	in[0] = va(5, UINT64_MAX & ~0xfffULL, true, 1, 31, 0, 0);
	in[1] = page(5, (UINT64_MAX >> 12), true);
	in[2] = in[0];
	run_plan(in, 3, prm(true, 1, 0));
	CU_ASSERT_EQUAL_FATAL(plan.n_sub, 3);
	CU_ASSERT_EQUAL(memcmp(sub(plan.first[0]), &in[0], sizeof(cmd_t)), 0);
	CU_ASSERT_EQUAL(memcmp(sub(plan.first[2]), &in[0], sizeof(cmd_t)), 0);
	CU_ASSERT_NOT_EQUAL(plan.first[0], plan.first[2]);

	/* Disabled: identity. */
	run_plan(in, 64, (struct smmuv3_coalesce_params){0});
	CU_ASSERT_EQUAL(plan.n_sub, 64);
	CU_ASSERT_EQUAL(memcmp(plan.sub, in, 64 * sizeof(cmd_t)), 0);
}

static void test_asid_switch(void)
{
	static cmd_t in[193]; /* three runs of 64, then one NH_VAA */
	uint32_t n = 0;

	/* ASID 1 pages 0..63, ASID 2 pages 0..63, ASID 1 pages 64..127. */
	for (uint32_t i = 0; i < 64; i++)
		in[n++] = page(1, i, true);
	for (uint32_t i = 0; i < 64; i++)
		in[n++] = page(2, i, true);
	for (uint32_t i = 64; i < 128; i++)
		in[n++] = page(1, i, true);
	run_plan(in, n, prm(true, 1, 0));
	CU_ASSERT_EQUAL_FATAL(plan.n_sub, 2);
	CU_ASSERT_EQUAL(SMMUV3_W0(sub(plan.first[0]), SMMUV3_TLBI_ASID), 1);
	CU_ASSERT_EQUAL(plan.first[0], plan.first[191]);
	CU_ASSERT_NOT_EQUAL(plan.first[0], plan.first[64]);
	CU_ASSERT_EQUAL(SMMUV3_W0(sub(plan.first[64]), SMMUV3_TLBI_ASID), 2);
	/* NH_VAA of the same pages merges apart from the NH_VAs. */
	in[n++] = page(-1, 3, true);
	run_plan(in, n, prm(true, 1, 0));
	CU_ASSERT_EQUAL(plan.n_sub, 3);
}

static void test_asid_all_subsume(void)
{
	cmd_t in[8] = {asid_cmd(7), page(7, 1, true), asid_cmd(7),
		       asid_cmd(8), page(7, 2, true), asid_cmd(7)};

	run_plan(in, 6, prm(true, 1, 0));
	/* NH_ASID 7 once, NH_ASID 8, one range for the VAs (global leaves). */
	CU_ASSERT_EQUAL_FATAL(plan.n_sub, 3);
	CU_ASSERT_EQUAL(plan.first[0], plan.first[2]);
	CU_ASSERT_EQUAL(plan.first[0], plan.first[5]);
	CU_ASSERT_EQUAL(smmuv3_op(sub(plan.first[0])), SMMUV3_OP_TLBI_NH_ASID);
	CU_ASSERT_EQUAL(plan.first[1], plan.first[4]);
	CU_ASSERT_EQUAL(smmuv3_op(sub(plan.first[1])), SMMUV3_OP_TLBI_NH_VA);
	/* NH_ALL or NSNH_ALL anywhere in the run: one NH_ALL. */
	in[6] = op_cmd(SMMUV3_OP_TLBI_NSNH_ALL);
	run_plan(in, 7, prm(true, 1, 0));
	CU_ASSERT_EQUAL_FATAL(plan.n_sub, 1);
	CU_ASSERT_EQUAL(smmuv3_op(sub(0)), SMMUV3_OP_TLBI_NH_ALL);
	CU_ASSERT_EQUAL(sub(0)->cmd[1], 0);
}

static void test_cfgi_burst(void)
{
	static cmd_t in[256];
	uint32_t n = 0;

	/* A guest rewriting 10 CDs of vSID 1, each invalidated 20 times. */
	for (uint32_t r = 0; r < 20; r++)
		for (uint32_t s = 0; s < 10; s++)
			in[n++] = cfgi_cd(1, s, s != 3 || r != 7);
	in[n++] = cfgi_cd(2, 0, true);
	run_plan(in, n, prm(true, 1, 0));
	CU_ASSERT_EQUAL_FATAL(plan.n_sub, 11);
	CU_ASSERT_EQUAL(SMMUV3_W1(sub(plan.first[3]), SMMUV3_LEAF), 0);
	CU_ASSERT_EQUAL(SMMUV3_W1(sub(plan.first[4]), SMMUV3_LEAF), 1);
	CU_ASSERT_EQUAL(SMMUV3_W0(sub(plan.first[200]), SMMUV3_SID), 2);
	/* CFGI_CD_ALL of vSID 1 subsumes its CDs. */
	in[n++] = cfgi_all(1);
	run_plan(in, n, prm(true, 1, 0));
	CU_ASSERT_EQUAL_FATAL(plan.n_sub, 2);
	CU_ASSERT_EQUAL(smmuv3_op(sub(plan.first[0])), SMMUV3_OP_CFGI_CD_ALL);
	CU_ASSERT_EQUAL(plan.first[0], plan.first[n - 1]);
}

static void test_atc_and_runs(void)
{
	cmd_t in[16];
	uint32_t n = 0;

	for (uint32_t i = 0; i < 8; i++)
		in[n++] = atc(1, true, 2, false, 16 + i, 0);
	in[n++] = atc(1, false, 0, false, 16, 0); /* no PASID: apart */
	run_plan(in, n, prm(true, 1, 0));
	CU_ASSERT_EQUAL_FATAL(plan.n_sub, 2);
	CU_ASSERT_EQUAL(SMMUV3_W1(sub(plan.first[0]), SMMUV3_ATC_SIZE), 3);
	CU_ASSERT_EQUAL(smmuv3_addr(sub(plan.first[0])), 16 * PG);
	CU_ASSERT_EQUAL(SMMUV3_W0(sub(plan.first[0]), SMMUV3_SSID), 2);
	/* Pages 0 and 100 are too far apart for one span. */
	in[0] = atc(1, true, 2, false, 0, 0);
	in[1] = atc(1, true, 2, false, 100, 0);
	run_plan(in, 2, prm(true, 1, 0));
	CU_ASSERT_EQUAL(plan.n_sub, 2);

	/* Class runs keep their order: CD, TLB, CD, ATC, TLB. */
	n = 0;
	in[n++] = cfgi_cd(1, 0, true);
	in[n++] = asid_cmd(3);
	in[n++] = cfgi_cd(1, 0, true);
	in[n++] = atc(1, false, 0, false, 0, 52);
	in[n++] = asid_cmd(3);
	run_plan(in, n, prm(true, 1, 0));
	CU_ASSERT_EQUAL_FATAL(plan.n_sub, 5);
	for (uint32_t i = 0; i < n; i++) {
		CU_ASSERT_EQUAL(plan.first[i], i);
		CU_ASSERT_EQUAL(smmuv3_op(sub(i)), smmuv3_op(&in[i]));
	}
	/* An invalid opcode is refused, never guessed at. */
	in[2] = op_cmd(0x46);
	{
		struct smmuv3_coalesce_params p = prm(true, 1, 0);

		CU_ASSERT_EQUAL(coalesce_smmuv3(in, n, &p, &plan), -EINVAL);
	}
}

/* ---- property test ---- */

static void populate(struct smmuv3_model *m)
{
	static const uint8_t shifts[] = {12, 12, 12, 14, 16, 21, 30};

	for (uint32_t i = 0; i < 400; i++) {
		struct smmuv3_tlb_ent e = {0};
		uint8_t sh = shifts[rnd_below(sizeof(shifts))];

		e.vmid = rnd_below(8) ? VMID : VMID + 1;
		e.asid = (uint16_t)rnd_below(4);
		e.size_shift = sh;
		e.va = (rnd_below(2048) * PG) & ~((1ULL << sh) - 1);
		if (!rnd_below(50))
			e.va = UINT64_MAX & ~((1ULL << sh) - 1); /* the top of the space */
		e.leaf = rnd_below(4) != 0;
		e.level = sh >= 30 ? 1 : sh >= 21 ? 2 : 3;
		e.global = e.leaf && !rnd_below(6);
		e.valid = true;
		smmuv3_model_add_tlb(m, &e);
	}
	for (uint32_t i = 0; i < 200; i++) {
		struct smmuv3_cd_ent e = {.sid = 101 + (uint32_t)rnd_below(3),
					  .ssid = (uint32_t)rnd_below(3000),
					  .leaf = rnd_below(5) != 0,
					  .valid = true};

		smmuv3_model_add_cd(m, &e);
	}
	for (uint32_t i = 0; i < 200; i++) {
		struct smmuv3_atc_ent e = {.sid = 101 + (uint32_t)rnd_below(3),
					   .ssid = rnd_below(3) ? (uint32_t)rnd_below(4)
								: SMMUV3_NO_SSID,
					   .lg = (uint8_t)rnd_below(3),
					   .valid = true};

		e.page = rnd_below(512) & ~((1ULL << e.lg) - 1);
		smmuv3_model_add_atc(m, &e);
	}
}

static cmd_t gen_cmd(uint32_t cls)
{
	uint32_t sid = 1 + (uint32_t)rnd_below(3);

	if (cls == 0) {
		uint32_t k = (uint32_t)rnd_below(40);
		uint32_t tg = rnd_below(3) ? 0 : 1 + (uint32_t)rnd_below(3);
		uint64_t addr = rnd_below(2048) * PG;

		if (k == 0)
			return op_cmd(rnd_below(2) ? SMMUV3_OP_TLBI_NH_ALL
						   : SMMUV3_OP_TLBI_NSNH_ALL);
		if (k < 4)
			return asid_cmd((uint32_t)rnd_below(4));
		if (!rnd_below(40))
			addr = UINT64_MAX & ~0xfffULL;
		return va(k < 10 ? -1 : (int)rnd_below(4), addr, rnd_below(3) != 0, tg,
			  (uint32_t)rnd_below(32), (uint32_t)rnd_below(rnd_below(4) ? 3 : 32),
			  (uint32_t)rnd_below(4));
	}
	if (cls == 1)
		return rnd_below(15) ? cfgi_cd(sid, (uint32_t)rnd_below(rnd_below(2) ? 16 : 3000),
					       rnd_below(4) != 0)
				     : cfgi_all(sid);
	return atc(sid, rnd_below(3) != 0, (uint32_t)rnd_below(4), !rnd_below(10), rnd_below(512),
		   rnd_below(20) ? (uint32_t)rnd_below(4) : 52 + (uint32_t)rnd_below(12));
}

static void apply_all(struct smmuv3_model *m, const cmd_t *c, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		cmd_t o;

		if (smmuv3_sim_convert(&c[i], VMID, vdevs, 3, &o) ||
		    smmuv3_model_apply(m, &o, NULL))
			CU_FAIL("a command the kernel would refuse");
	}
}

/* Entries gone in a but present in b: the output under-invalidated. */
static uint32_t missed(const struct smmuv3_model *a, const struct smmuv3_model *b)
{
	uint32_t bad = 0;

	for (uint32_t i = 0; i < a->n_tlb; i++)
		bad += !a->tlb[i].valid && b->tlb[i].valid;
	for (uint32_t i = 0; i < a->n_cd; i++)
		bad += !a->cd[i].valid && b->cd[i].valid;
	for (uint32_t i = 0; i < a->n_atc; i++)
		bad += !a->atc[i].valid && b->atc[i].valid;
	return bad;
}

/*
 * Class runs keep their order and class: every output serving run j lies
 * before every output serving run j + 1, and has the run's class.
 */
static bool runs_in_order(const cmd_t *in, uint32_t n)
{
	uint32_t prev_max = 0;
	bool have_prev = false;

	for (uint32_t a = 0, b; a < n; a = b) {
		enum smmuv3_class cl = smmuv3_cmd_class(&in[a]);
		uint32_t lo = UINT32_MAX, hi = 0;

		for (b = a; b < n && smmuv3_cmd_class(&in[b]) == cl; b++) {
			uint32_t k = plan.first[b];

			if (smmuv3_cmd_class(sub(k)) != cl)
				return false;
			lo = k < lo ? k : lo;
			hi = k > hi ? k : hi;
		}
		if (have_prev && lo <= prev_max)
			return false;
		prev_max = hi;
		have_prev = true;
	}
	return true;
}

static uint64_t env_u64(const char *name, uint64_t def)
{
	const char *s = getenv(name);

	return s && *s ? strtoull(s, NULL, 0) : def;
}

static void test_property(void)
{
	uint64_t seed = env_u64("NESTD_SEED", (uint64_t)time(NULL));
	uint64_t batches = env_u64("NESTD_BATCHES", 2000);
	uint64_t in_total = 0, out_total = 0;
	static cmd_t in[300];

	rng_seed(seed);
	for (uint64_t b = 0; b < batches; b++) {
		struct smmuv3_model base, a, o;
		struct smmuv3_coalesce_params p =
		    prm(rnd_below(4) != 0, (uint32_t)rnd_below(4), rnd_below(3) ? 0 : rnd_below(8));
		uint32_t n = 1 + (uint32_t)rnd_below(rnd_below(4) ? 40 : 300), bad;
		uint32_t cls = (uint32_t)rnd_below(3);

		for (uint32_t i = 0; i < n; i++) {
			/* Bursts of one class, as guests send them. */
			if (!rnd_below(8))
				cls = (uint32_t)rnd_below(3);
			in[i] = gen_cmd(cls);
		}
		p.enabled = rnd_below(10) != 0;
		smmuv3_model_init(&base);
		populate(&base);
		CU_ASSERT_EQUAL_FATAL(coalesce_smmuv3(in, n, &p, &plan), 0);
		CU_ASSERT_TRUE(plan.n_sub <= n);
		in_total += n;
		out_total += plan.n_sub;
		for (uint32_t k = 0; k < plan.n_sub; k++)
			CU_ASSERT_EQUAL(smmuv3_validate_cmd(sub(k), &vmap), 0);
		CU_ASSERT_TRUE(runs_in_order(in, n));

		CU_ASSERT_EQUAL_FATAL(smmuv3_model_copy(&a, &base), 0);
		CU_ASSERT_EQUAL_FATAL(smmuv3_model_copy(&o, &base), 0);
		apply_all(&a, in, n);
		apply_all(&o, plan.sub, plan.n_sub);
		bad = missed(&a, &o);
		smmuv3_model_free(&a);
		smmuv3_model_free(&o);
		/* Each input alone against the output command that serves it. */
		for (uint32_t i = 0; !bad && i < n; i += 1 + (uint32_t)rnd_below(4)) {
			CU_ASSERT_TRUE_FATAL(plan.first[i] == plan.last[i] &&
					     plan.first[i] < plan.n_sub);
			CU_ASSERT_EQUAL_FATAL(smmuv3_model_copy(&a, &base), 0);
			CU_ASSERT_EQUAL_FATAL(smmuv3_model_copy(&o, &base), 0);
			apply_all(&a, &in[i], 1);
			apply_all(&o, sub(plan.first[i]), 1);
			bad += missed(&a, &o);
			smmuv3_model_free(&a);
			smmuv3_model_free(&o);
		}
		smmuv3_model_free(&base);
		if (bad) {
			printf("\nunder-invalidation in batch %" PRIu64 " (NESTD_SEED=%" PRIu64
			       ")\n",
			       b, seed);
			CU_FAIL_FATAL("never under-invalidate");
		}
	}
	printf("\n  seed %" PRIu64 ": %" PRIu64 " commands in, %" PRIu64 " out ", seed, in_total,
	       out_total);
	CU_ASSERT_TRUE(out_total < in_total);
}

int main(void)
{
	static const struct unit_case tests[] = {
	    {"validate request", test_validate_request},
	    {"validate command", test_validate_cmd},
	    {"vSID table", test_vsid_table},
	    {"validate entries", test_validate_entries},
	    {"truncated entries", test_truncate},
	    {"sim conversion", test_sim_convert},
	    {"model TLB", test_model_tlb},
	    {"model CD and ATC", test_model_cd_atc},
	    {"unmap storm", test_storm},
	    {"ASID switch", test_asid_switch},
	    {"NH_ASID and NH_ALL", test_asid_all_subsume},
	    {"CFGI_CD burst", test_cfgi_burst},
	    {"ATC and class runs", test_atc_and_runs},
	    {"property", test_property},
	};
	int rc;

	coalesce_plan_init(&plan);
	rc = unit_run("smmuv3", UNIT_CASES(tests));
	coalesce_plan_free(&plan);
	return rc;
}
