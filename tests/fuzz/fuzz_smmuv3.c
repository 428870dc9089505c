/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for the SMMUv3 validator and coalescer
 * (inv/validate_smmuv3.c, inv/coalesce_smmuv3.c) against the sim's model
 * of what each command invalidates (backend/sim/smmuv3.c).
 *
 * The input becomes one request of commands. Each goes through the
 * driver's rules (smmuv3_validate_cmd, three vDEVICEs); the validator and
 * the coalescer must agree (an opcode the validator refuses makes the
 * coalescer refuse the batch; a batch of accepted commands always
 * coalesces), and the accepted ones are coalesced. Then:
 *   - n_sub <= n, first[i] == last[i] < n_sub, the identity when off;
 *   - class runs (TLB / CD / ATC) keep their order and class;
 *   - every output command passes the validator and the sim's conversion
 *     (no command the kernel would refuse is ever submitted);
 *   - never under-invalidate: a model populated with entries around every
 *     command's addresses, IDs and neighbours loses, under the output,
 *     everything it loses under the input - and under each input's serving
 *     command (about 16 inputs per case), everything that input alone removes.
 *
 * Input layout:
 *   byte 0  bit 0: range (RIL); bits 1-2: va_tg; bit 3: coalescing off;
 *           bits 4-7: slack granules
 *   then 16 bytes per command: byte 0 picks the opcode (mod 9: the eight
 *   allowed ones, or 8: keep the raw byte 1), the rest fills the fields;
 *   SID fields are taken mod 5 (vSIDs 1-3 exist).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/sim/smmuv3.h"
#include "backend/smmuv3_cmd.h"
#include "inv/smmuv3.h"

#define MAX_CMDS 128
#define VMID	 5

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct smmuv3_vsid vsids[] = {{1, 201}, {2, 202}, {3, 203}};
static const struct smmuv3_vsid_map vmap = {vsids, 3};
static const struct smmuv3_sim_vdev vdevs[] = {{1, 201}, {2, 202}, {3, 203}};

static struct smmuv3_cmd in[MAX_CMDS], acc[MAX_CMDS];
static uint32_t n_in, n_acc;
static struct smmuv3_coalesce_params prm;
static struct coalesce_plan plan;

static void dump_case(void)
{
	fprintf(stderr, "params: enabled %d range %d va_tg %u slack %" PRIu64 "\n", prm.enabled,
		prm.range, prm.va_tg, prm.slack_granules);
	for (uint32_t i = 0; i < n_acc; i++)
		fprintf(stderr, "  in[%u] %016" PRIx64 " %016" PRIx64 "\n", i,
			le64toh(acc[i].cmd[0]), le64toh(acc[i].cmd[1]));
	for (uint32_t k = 0; k < plan.n_sub; k++) {
		const struct smmuv3_cmd *c = (const struct smmuv3_cmd *)plan.sub + k;

		fprintf(stderr, "  sub[%u] %016" PRIx64 " %016" PRIx64 "\n", k, le64toh(c->cmd[0]),
			le64toh(c->cmd[1]));
	}
}

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_smmuv3: invariant broken: %s\n  ", #cond);           \
			fprintf(stderr, __VA_ARGS__);                                              \
			fprintf(stderr, "\n");                                                     \
			dump_case();                                                               \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static void decode(const uint8_t *p, struct smmuv3_cmd *c)
{
	static const uint8_t ops[] = {SMMUV3_OP_TLBI_NSNH_ALL, SMMUV3_OP_TLBI_NH_VA,
				      SMMUV3_OP_TLBI_NH_VAA,   SMMUV3_OP_TLBI_NH_ALL,
				      SMMUV3_OP_TLBI_NH_ASID,  SMMUV3_OP_ATC_INV,
				      SMMUV3_OP_CFGI_CD,       SMMUV3_OP_CFGI_CD_ALL};
	uint64_t w0, w1;
	uint32_t op;

	memcpy(&w0, p, 8);
	memcpy(&w1, p + 8, 8);
	op = p[0] % 9 < 8 ? ops[p[0] % 9] : p[1];
	c->cmd[0] = htole64(w0);
	c->cmd[1] = htole64(w1);
	SMMUV3_SET0(c, SMMUV3_OP, op);
	/* Small ASIDs and SIDs so that commands meet; any VMID (rewritten). */
	SMMUV3_SET0(c, SMMUV3_TLBI_ASID, SMMUV3_W0(c, SMMUV3_TLBI_ASID) % 4);
	if (op == SMMUV3_OP_ATC_INV || op == SMMUV3_OP_CFGI_CD || op == SMMUV3_OP_CFGI_CD_ALL) {
		SMMUV3_SET0(c, SMMUV3_SID, SMMUV3_W0(c, SMMUV3_SID) % 5);
		SMMUV3_SET0(c, SMMUV3_SSID, SMMUV3_W0(c, SMMUV3_SSID) % 2100);
	}
}

/* Entries around what command c names: the same and neighbouring IDs and pages. */
static void populate(struct smmuv3_model *m, const struct smmuv3_cmd *c, uint32_t salt)
{
	uint32_t op = smmuv3_op(c);

	if (smmuv3_cmd_class(c) == SMMUV3_CLASS_TLB) {
		static const uint8_t shifts[] = {12, 14, 16, 21, 30};
		uint64_t a[3] = {smmuv3_addr(c), 0, 0};
		uint32_t tg = (uint32_t)SMMUV3_W1(c, SMMUV3_TLBI_TG);
		unsigned gs = tg ? smmuv3_tg_shift(tg) : 12;
		uint64_t span =
		    ((SMMUV3_W0(c, SMMUV3_TLBI_NUM) + 1) << SMMUV3_W0(c, SMMUV3_TLBI_SCALE)) << gs;

		a[1] = a[0] + span;	   /* just past a range (or a neighbour) */
		a[2] = a[0] + span - 4096; /* its last page */
		for (uint32_t k = 0; k < 3; k++) {
			for (uint32_t j = 0; j < 4; j++) {
				uint8_t sh = shifts[(salt + j + k) % 5];
				struct smmuv3_tlb_ent e = {
				    .vmid = j == 3 ? VMID + 1 : VMID,
				    .asid =
					(uint16_t)((SMMUV3_W0(c, SMMUV3_TLBI_ASID) + j / 2) % 4),
				    .va = a[k] & ~((1ULL << sh) - 1),
				    .size_shift = sh,
				    .level = sh >= 30	? 1
					     : sh >= 21 ? 2
							: 3,
				    .leaf = (j + salt) % 3 != 0,
				    .valid = true};

				e.global = e.leaf && (j + k + salt) % 4 == 0;
				smmuv3_model_add_tlb(m, &e);
			}
		}
		return;
	}
	uint32_t psid = 200 + (uint32_t)SMMUV3_W0(c, SMMUV3_SID);
	uint32_t ssid = (uint32_t)SMMUV3_W0(c, SMMUV3_SSID);

	if (op == SMMUV3_OP_ATC_INV) {
		uint64_t pg = smmuv3_addr(c) >> 12;

		for (uint32_t j = 0; j < 4; j++) {
			struct smmuv3_atc_ent e = {.sid = psid,
						   .ssid = j == 0 ? SMMUV3_NO_SSID : ssid + j - 1,
						   .lg = (uint8_t)(j % 3),
						   .valid = true};

			e.page = (pg + j * 3) & ~((1ULL << e.lg) - 1);
			smmuv3_model_add_atc(m, &e);
		}
		return;
	}
	for (uint32_t j = 0; j < 4; j++) {
		struct smmuv3_cd_ent e = {
		    .sid = psid, .ssid = (ssid + j * 700) % 2100, .leaf = j != 2, .valid = true};

		smmuv3_model_add_cd(m, &e);
	}
}

static void apply(struct smmuv3_model *m, const struct smmuv3_cmd *c, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		struct smmuv3_cmd o;

		CHECK(!smmuv3_sim_convert(&c[i], VMID, vdevs, 3, &o), "kernel refuses cmd %u", i);
		CHECK(!smmuv3_model_apply(m, &o, NULL), "model refuses cmd %u", i);
	}
}

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

static void check_cover(const struct smmuv3_model *base, const struct smmuv3_cmd *a_cmds,
			uint32_t na, const struct smmuv3_cmd *b_cmds, uint32_t nb, const char *what,
			uint32_t i)
{
	struct smmuv3_model a, b;

	CHECK(!smmuv3_model_copy(&a, base) && !smmuv3_model_copy(&b, base), "out of memory");
	apply(&a, a_cmds, na);
	apply(&b, b_cmds, nb);
	CHECK(!missed(&a, &b), "%s %u under-invalidates", what, i);
	smmuv3_model_free(&a);
	smmuv3_model_free(&b);
}

/* Class runs keep their order and class in the output. */
static void check_runs(void)
{
	const struct smmuv3_cmd *sub = plan.sub;
	uint32_t prev_max = 0;
	bool have_prev = false;

	for (uint32_t a = 0, b; a < n_acc; a = b) {
		enum smmuv3_class cl = smmuv3_cmd_class(&acc[a]);
		uint32_t lo = UINT32_MAX, hi = 0;

		for (b = a; b < n_acc && smmuv3_cmd_class(&acc[b]) == cl; b++) {
			uint32_t k = plan.first[b];

			CHECK(smmuv3_cmd_class(&sub[k]) == cl, "input %u served by another class",
			      b);
			lo = k < lo ? k : lo;
			hi = k > hi ? k : hi;
		}
		CHECK(!have_prev || lo > prev_max, "run at %u moved before its predecessor", a);
		prev_max = hi;
		have_prev = true;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smmuv3_model base;
	bool refused = false;
	int rc;

	if (size < 1)
		return 0;
	prm = (struct smmuv3_coalesce_params){.enabled = !(data[0] & 8),
					      .range = data[0] & 1,
					      .va_tg = (data[0] >> 1) & 3,
					      .slack_granules = data[0] >> 4};
	n_in = n_acc = 0;
	for (size_t off = 1; off + 16 <= size && n_in < MAX_CMDS; off += 16)
		decode(data + off, &in[n_in++]);
	for (uint32_t i = 0; i < n_in; i++) {
		if (smmuv3_cmd_class(&in[i]) == SMMUV3_CLASS_NONE)
			refused = true;
		if (!smmuv3_validate_cmd(&in[i], &vmap))
			acc[n_acc++] = in[i];
		else
			CHECK(smmuv3_cmd_class(&in[i]) == SMMUV3_CLASS_NONE ||
				  !smmuv3_vsid_lookup(
				      &vmap, (uint32_t)SMMUV3_W0(&in[i], SMMUV3_SID), NULL),
			      "validator refused a good command %u", i);
	}
	/* Agreement: the coalescer never plans around an opcode the kernel refuses. */
	rc = coalesce_smmuv3(in, n_in, &prm, &plan);
	CHECK(refused ? rc == -EINVAL : rc == 0, "coalescer rc %d on raw input", rc);

	rc = coalesce_smmuv3(acc, n_acc, &prm, &plan);
	CHECK(rc == 0, "coalescer rc %d", rc);
	CHECK(plan.n_sub <= n_acc, "%u out for %u in", plan.n_sub, n_acc);
	for (uint32_t i = 0; i < n_acc; i++)
		CHECK(plan.first[i] == plan.last[i] && plan.first[i] < plan.n_sub,
		      "served-by of %u", i);
	for (uint32_t k = 0; k < plan.n_sub; k++)
		CHECK(!smmuv3_validate_cmd((const struct smmuv3_cmd *)plan.sub + k, &vmap),
		      "output %u invalid", k);
	check_runs();
	if (!prm.enabled)
		CHECK(plan.n_sub == n_acc && !memcmp(plan.sub, acc, n_acc * sizeof(acc[0])),
		      "not the identity");

	smmuv3_model_init(&base);
	for (uint32_t i = 0; i < n_acc; i++)
		populate(&base, &acc[i], i);
	check_cover(&base, acc, n_acc, plan.sub, plan.n_sub, "batch", 0);
	/* About 16 of them per input: each check copies the whole model. */
	for (uint32_t i = data[size - 1] % (n_acc / 16 + 1); i < n_acc; i += n_acc / 16 + 1)
		check_cover(&base, &acc[i], 1, (const struct smmuv3_cmd *)plan.sub + plan.first[i],
			    1, "input", i);
	smmuv3_model_free(&base);
	return 0;
}
