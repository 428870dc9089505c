/* SPDX-License-Identifier: MIT */
/*
 * Batch execution tests against a fake backend that applies the kernel's
 * IOMMU_HWPT_INVALIDATE rules and fails chosen entries (by address, by
 * mock slot or by position), logging every entry it acknowledged.
 *
 * The oracle is a naive one-by-one submission of each request's entries:
 * the daemon's coalesced, cross-request, chunked execution must give every
 * entry exactly that result, and every entry it calls done must be covered
 * by acknowledged entries of at least its strength.
 *
 * NESTD_SEED=<n> replays the property run.
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/backend.h"
#include "inv/coalesce.h"
#include "inv/batch.h"
#include "inv/request.h"
#include "inv/validate.h"
#include "backend/iommufd_uapi.h"
#include "iv_model.h"
#include "test_rng.h"
#include "unit_run.h"

typedef struct iommu_hwpt_vtd_s1_invalidate vtd_t;
typedef struct iommu_hwpt_invalidate_selftest st_t;

#define VTD	  IOMMU_HWPT_INVALIDATE_DATA_VTD_S1
#define ST	  IOMMU_HWPT_INVALIDATE_DATA_SELFTEST
#define LEAF	  IOMMU_VTD_INV_FLAGS_LEAF
#define ALL_SLOTS 0xfu
#define HW_ICE	  0x10u
#define HW_ITE	  0x40u
#define HWPT	  7

/* ---- the fake backend ---- */

struct fault {
	uint64_t page; /* VT-d: an entry covering it; selftest: slot */
	int err;       /* 0: report hw only and keep walking */
	uint32_t hw;
};

struct fake {
	struct backend be;
	uint32_t hwpt_id;
	uint32_t data_type;
	struct fault faults[4];
	uint32_t nf;
	bool idx_mode; /* fail the entry at idx_at of every call */
	uint32_t idx_at;
	int idx_err;

	uint32_t calls;
	uint64_t entries;
	uint32_t max_seen;
	struct iv *acked;
	size_t nacked, cap;
	uint32_t acked_slots;
};

static struct fake fk;

/* The kernel's per-entry checks (written again here, not shared). */
static int fake_valid(uint32_t type, const void *p)
{
	if (type == VTD) {
		const vtd_t *e = p;

		if ((e->flags & ~LEAF) || e->__reserved)
			return -EOPNOTSUPP;
		if ((e->addr & 0xfff) || (e->npages == UINT64_MAX && e->addr))
			return -EINVAL;
		return 0;
	}
	const st_t *e = p;

	if (e->flags & ~1u)
		return -EOPNOTSUPP;
	return e->iotlb_id > 3 ? -EINVAL : 0;
}

/* Pages an entry covers, clipped at 2^52; [0, 2^52) for a flush-all. */
static void fake_range(const vtd_t *e, uint64_t *s, uint64_t *end)
{
	uint64_t lim = 1ULL << 52;

	if (!e->addr && e->npages == UINT64_MAX) {
		*s = 0;
		*end = lim;
		return;
	}
	*s = e->addr >> 12;
	*end = e->npages > lim - *s ? lim : *s + e->npages;
}

static bool fake_touches(uint32_t type, const void *p, uint64_t page)
{
	if (type == VTD) {
		uint64_t s, e;

		fake_range(p, &s, &e);
		return page >= s && page < e;
	}
	const st_t *e = p;

	return (e->flags & 1) || e->iotlb_id == page;
}

/* First matching fault decides; returns its errno and sets *hw. */
static int fake_fault(const struct fake *f, const void *p, uint32_t *hw)
{
	*hw = 0;
	for (uint32_t i = 0; i < f->nf; i++) {
		if (fake_touches(f->data_type, p, f->faults[i].page)) {
			*hw = f->faults[i].hw;
			return f->faults[i].err;
		}
	}
	return 0;
}

static void fake_ack(struct fake *f, const void *p)
{
	if (f->data_type == ST) {
		const st_t *e = p;

		f->acked_slots |= (e->flags & 1) ? ALL_SLOTS : 1u << e->iotlb_id;
		return;
	}
	if (f->nacked == f->cap) {
		f->cap = f->cap ? 2 * f->cap : 1024;
		f->acked = realloc(f->acked, f->cap * sizeof(*f->acked));
		CU_ASSERT_FATAL(f->acked != NULL);
	}
	struct iv *v = &f->acked[f->nacked++];
	const vtd_t *e = p;
	uint64_t last = e->addr + (e->npages << 12) - 1;

	/*
	 * What the kernel really flushes: it computes addr + npages * 4 KiB
	 * - 1 in 64 bits, so a wrapping entry flushes far less than asked
	 * (we record nothing for it). Only the daemon's clipping saves it.
	 */
	if (!e->addr && e->npages == UINT64_MAX)
		fake_range(p, &v->s, &v->e);
	else if (e->npages && last >= e->addr)
		v->s = e->addr >> 12, v->e = (last >> 12) + 1;
	else
		v->s = v->e = 0;
	v->strong = !(e->flags & LEAF);
}

static int fake_invalidate(struct backend *be, struct backend_inv *inv)
{
	struct fake *f = (struct fake *)be;
	uint32_t n = inv->entry_num, k;
	uint32_t esz = f->data_type == VTD ? sizeof(vtd_t) : sizeof(st_t);
	int rc = 0;

	f->calls++;
	/* Charged like inv_batch charges a call: what the backend walks. */
	f->entries += n ? 1 : 0;
	inv->entry_num = 0;
	if (n > f->max_seen)
		f->max_seen = n;
	if (inv->reserved)
		return -EOPNOTSUPP;
	if (n && (!inv->entries || !inv->entry_len || inv->entry_len > 4096 ||
		  n > IOMMU_HWPT_INVALIDATE_ENTRY_NUM_MAX))
		return -EINVAL;
	if (inv->hwpt_id != f->hwpt_id)
		return -ENOENT;
	if (inv->data_type != f->data_type)
		return -EINVAL;
	for (k = 0; k < n; k++) {
		const uint8_t *p = (const uint8_t *)inv->entries + (size_t)k * inv->entry_len;
		uint32_t hw = 0;

		if (inv->entry_len != esz) {
			rc = -EINVAL;
			break;
		}
		if (f->idx_mode && k == f->idx_at) {
			rc = f->idx_err;
			break;
		}
		rc = fake_valid(f->data_type, p);
		if (!rc)
			rc = fake_fault(f, p, &hw);
		if (hw && inv->hw_error)
			inv->hw_error[k] = hw;
		if (rc)
			break;
		if (!hw)
			fake_ack(f, p);
	}
	inv->entry_num = k;
	/* The stopping entry was charged above; the ones walked past here. */
	f->entries += rc ? k : (n ? n - 1 : 0);
	return rc;
}

static const struct backend_ops fake_ops = {
    .name = "fake",
    .invalidate = fake_invalidate,
};

static void fake_reset(uint32_t type)
{
	free(fk.acked);
	memset(&fk, 0, sizeof(fk));
	fk.be.ops = &fake_ops;
	fk.hwpt_id = HWPT;
	fk.data_type = type;
}

static void fake_add_fault(uint64_t page, int err, uint32_t hw)
{
	fk.faults[fk.nf++] = (struct fault){.page = page, .err = err, .hw = hw};
}

/* ---- requests ---- */

#define MAXQ 8

struct treq {
	struct inv_request r;
	void *raw; /* entries as the client sent them */
};

static struct treq tq[MAXQ];
static uint32_t ntq;

static void reqs_reset(void)
{
	for (uint32_t i = 0; i < ntq; i++) {
		free(tq[i].r.entries);
		free(tq[i].r.res);
		free(tq[i].raw);
	}
	ntq = 0;
}

static struct inv_request *add_req(uint32_t type, const void *entries, uint32_t n, bool cont)
{
	uint32_t esz = inv_entry_size(type);
	struct treq *t = &tq[ntq++];

	memset(&t->r, 0, sizeof(t->r));
	t->r.hwpt_id = HWPT;
	t->r.data_type = type;
	t->r.cont = cont;
	t->r.n = n;
	t->r.entries = malloc((size_t)n * esz + 1);
	t->raw = malloc((size_t)n * esz + 1);
	t->r.res = calloc(n + 1, sizeof(*t->r.res));
	CU_ASSERT_FATAL(t->r.entries && t->raw && t->r.res);
	memcpy(t->r.entries, entries, (size_t)n * esz);
	memcpy(t->raw, entries, (size_t)n * esz);
	inv_validate_entries(&t->r);
	if (ntq > 1)
		tq[ntq - 2].r.next = &t->r;
	return &t->r;
}

static struct inv_batch_ctx ctx;
static struct inv_batch_stats stats;

static int run_batch(const struct coalesce_params *p, uint32_t max_chunk)
{
	inv_batch_ctx_free(&ctx);
	inv_batch_ctx_init(&ctx, p);
	ctx.max_chunk = max_chunk;
	memset(&stats, 0, sizeof(stats));
	return inv_batch_run(&ctx, &fk.be, ntq ? &tq[0].r : NULL, &stats);
}

static struct coalesce_params on(uint64_t slack)
{
	return (struct coalesce_params){.enabled = true, .slack_pages = slack};
}

/* ---- the oracle and the checks ---- */

struct expect {
	uint8_t state;
	int32_t error;
	uint32_t hw;
};

/* What submitting this request's entries one by one would have said. */
static void oracle(const struct treq *t, bool hwpt_gone, struct expect *x, int *status,
		   uint32_t *handled)
{
	uint32_t esz = inv_entry_size(t->r.data_type);
	bool stopped = false, failed = false;

	*status = 0;
	*handled = 0;
	for (uint32_t i = 0; i < t->r.n; i++) {
		const uint8_t *raw = (const uint8_t *)t->raw + (size_t)i * esz;
		uint8_t e[32];
		uint32_t hw = 0;
		int err;

		x[i] = (struct expect){INV_NOT_ATTEMPTED, 0, 0};
		if (stopped)
			continue;
		memcpy(e, raw, esz);
		err = fake_valid(t->r.data_type, e);
		if (!err && hwpt_gone)
			err = -ENOENT;
		if (!err) {
			/* the daemon clips wrapping ranges before anyone sees them */
			if (t->r.data_type == VTD)
				vtd_entry_normalize(e);
			err = fake_fault(&fk, e, &hw);
			if (!err && hw)
				err = -EIO;
		}
		if (!err) {
			x[i].state = INV_DONE;
			if (!failed)
				*handled = i + 1;
			continue;
		}
		x[i] = (struct expect){INV_FAILED, err, hw};
		if (!failed)
			*status = err;
		failed = true;
		stopped = !t->r.cont;
	}
}

/*
 * Every DONE entry must be covered by what the backend acknowledged.
 * Returns the number of violations.
 */
static int check_done_covered(void)
{
	struct iv *all = NULL, *strong = NULL;
	size_t na = 0, ns = 0;
	int bad = 0;

	if (fk.data_type == VTD && fk.nacked) {
		all = malloc(fk.nacked * sizeof(*all));
		strong = malloc(fk.nacked * sizeof(*strong));
		CU_ASSERT_FATAL(all && strong);
		for (size_t i = 0; i < fk.nacked; i++) {
			all[na++] = fk.acked[i];
			if (fk.acked[i].strong)
				strong[ns++] = fk.acked[i];
		}
		na = iv_merge(all, na);
		ns = iv_merge(strong, ns);
	}
	for (uint32_t q = 0; q < ntq; q++) {
		const struct inv_request *r = &tq[q].r;
		uint32_t esz = inv_entry_size(r->data_type);

		for (uint32_t i = 0; i < r->n; i++) {
			uint8_t e[32];

			if (r->res[i].state != INV_DONE)
				continue;
			memcpy(e, (const uint8_t *)tq[q].raw + (size_t)i * esz, esz);
			if (r->data_type == ST) {
				const st_t *x = (const st_t *)e;
				uint32_t need = (x->flags & 1) ? ALL_SLOTS : 1u << x->iotlb_id;

				bad += (fk.acked_slots & need) != need;
				continue;
			}
			uint64_t s, end;

			vtd_entry_normalize(e);
			fake_range((const vtd_t *)e, &s, &end);
			if (((const vtd_t *)e)->flags & LEAF)
				bad += !iv_covered(all, na, s, end);
			else
				bad += !iv_covered(strong, ns, s, end);
		}
	}
	free(all);
	free(strong);
	return bad;
}

/* Compares every request with the oracle; returns the number of mismatches. */
static int check_against_oracle(bool hwpt_gone, bool verbose)
{
	int bad = 0;

	for (uint32_t q = 0; q < ntq; q++) {
		const struct inv_request *r = &tq[q].r;
		struct expect *x = calloc(r->n + 1, sizeof(*x));
		uint32_t handled;
		int status;

		CU_ASSERT_FATAL(x != NULL);
		oracle(&tq[q], hwpt_gone, x, &status, &handled);
		for (uint32_t i = 0; i < r->n; i++) {
			const struct inv_entry_result *g = &r->res[i];

			if (g->state == x[i].state && g->error == x[i].error &&
			    g->hw_error == x[i].hw)
				continue;
			if (verbose)
				printf("\n  req %u entry %u: got %u/%d/%#x want %u/%d/%#x", q, i,
				       g->state, g->error, g->hw_error, x[i].state, x[i].error,
				       x[i].hw);
			bad++;
		}
		if (r->status != status || r->entries_handled != handled) {
			if (verbose)
				printf("\n  req %u: status %d handled %u, want %d %u", q, r->status,
				       r->entries_handled, status, handled);
			bad++;
		}
		free(x);
	}
	return bad;
}

/* The kernel shape without cont, and nothing left pending. */
static int check_shape(void)
{
	int bad = 0;

	for (uint32_t q = 0; q < ntq; q++) {
		const struct inv_request *r = &tq[q].r;
		bool failed = false;
		uint32_t lead = 0;

		for (uint32_t i = 0; i < r->n; i++) {
			uint8_t s = r->res[i].state;

			bad += s == INV_PENDING;
			if (failed && !r->cont)
				bad += s != INV_NOT_ATTEMPTED;
			if (s == INV_FAILED && !failed) {
				failed = true;
				bad += r->status != r->res[i].error || !r->res[i].error;
			}
			if (s == INV_DONE && lead == i)
				lead++;
		}
		bad += r->entries_handled != lead;
		bad += !failed && r->status;
	}
	bad += stats.submissions != fk.calls || stats.entries_submitted != fk.entries;
	return bad;
}

static void check_all(bool hwpt_gone)
{
	CU_ASSERT_EQUAL(check_against_oracle(hwpt_gone, true), 0);
	CU_ASSERT_EQUAL(check_done_covered(), 0);
	CU_ASSERT_EQUAL(check_shape(), 0);
}

static vtd_t V(uint64_t page, uint64_t npages, uint32_t flags)
{
	return (vtd_t){.addr = page << 12, .npages = npages, .flags = flags};
}

#define STATE(q, i) (tq[q].r.res[i].state)

/* ---- cases ---- */

static void test_all_done_one_submission(void)
{
	vtd_t e[4] = {V(0, 2, LEAF), V(2, 2, LEAF), V(4, 2, LEAF), V(6, 2, LEAF)};
	struct coalesce_params p = on(0);

	fake_reset(VTD);
	reqs_reset();
	add_req(VTD, e, 4, false);
	CU_ASSERT_EQUAL(run_batch(&p, 0), 0);
	check_all(false);
	CU_ASSERT_EQUAL(fk.calls, 1);
	CU_ASSERT_EQUAL(fk.entries, 1);
	CU_ASSERT_EQUAL(tq[0].r.entries_handled, 4);
	CU_ASSERT_EQUAL(tq[0].r.status, 0);
	CU_ASSERT_EQUAL(tq[0].r.entries_submitted, 1);
	CU_ASSERT_EQUAL(tq[0].r.pages_flushed, 8);
	CU_ASSERT_EQUAL(stats.pages_flushed, 8);
}

/* Pages beyond flush_all_pages: the plan becomes one flush-all, counted. */
static void test_escalation_counted(void)
{
	vtd_t e[2] = {V(0, 64, 0), V(0x10000, 64, 0)};
	struct coalesce_params p = on(0);

	p.flush_all_pages = 100;
	fake_reset(VTD);
	reqs_reset();
	add_req(VTD, e, 2, false);
	CU_ASSERT_EQUAL(run_batch(&p, 0), 0);
	check_all(false);
	CU_ASSERT_EQUAL(fk.entries, 1);
	CU_ASSERT_EQUAL(stats.pages_flushed, UINT64_MAX);
	CU_ASSERT_EQUAL(stats.escalations, 1);
}

/* A flush-all the client asked for is not an escalation. */
static void test_requested_flush_all_not_escalation(void)
{
	vtd_t e[2] = {V(0, 4, 0), {.addr = 0, .npages = UINT64_MAX}};
	struct coalesce_params p = on(0);

	fake_reset(VTD);
	reqs_reset();
	add_req(VTD, e, 2, false);
	CU_ASSERT_EQUAL(run_batch(&p, 0), 0);
	check_all(false);
	CU_ASSERT_EQUAL(stats.pages_flushed, UINT64_MAX);
	CU_ASSERT_EQUAL(stats.escalations, 0);
}

static void test_fault_without_cont(void)
{
	vtd_t e[4] = {V(0, 2, 0), V(2, 2, 0), V(4, 2, 0), V(6, 2, 0)};
	struct coalesce_params p = on(0);

	fake_reset(VTD);
	fake_add_fault(5, -EFAULT, 0);
	reqs_reset();
	add_req(VTD, e, 4, false);
	CU_ASSERT_EQUAL(run_batch(&p, 0), 0);
	check_all(false);
	CU_ASSERT(STATE(0, 0) == INV_DONE && STATE(0, 1) == INV_DONE);
	CU_ASSERT(STATE(0, 2) == INV_FAILED && tq[0].r.res[2].error == -EFAULT);
	CU_ASSERT(STATE(0, 3) == INV_NOT_ATTEMPTED);
	CU_ASSERT_EQUAL(tq[0].r.status, -EFAULT);
	CU_ASSERT_EQUAL(tq[0].r.entries_handled, 2);
	/* the coalesced entry, then one resubmission walk */
	CU_ASSERT_EQUAL(fk.calls, 2);
}

static void test_fault_with_cont(void)
{
	vtd_t e[4] = {V(0, 2, 0), V(2, 2, 0), V(4, 2, 0), V(6, 2, 0)};
	struct coalesce_params p = on(0);

	fake_reset(VTD);
	fake_add_fault(5, -EFAULT, 0);
	reqs_reset();
	add_req(VTD, e, 4, true);
	CU_ASSERT_EQUAL(run_batch(&p, 0), 0);
	check_all(false);
	CU_ASSERT(STATE(0, 2) == INV_FAILED && STATE(0, 3) == INV_DONE);
	CU_ASSERT_EQUAL(tq[0].r.entries_handled, 2);
}

static void test_cross_request(void)
{
	vtd_t a[2] = {V(0, 2, LEAF), V(4, 2, LEAF)}, b[2] = {V(2, 2, 0), V(6, 2, 0)};
	struct coalesce_params p = on(0);

	fake_reset(VTD);
	fake_add_fault(4, -EIO, 0);
	reqs_reset();
	add_req(VTD, a, 2, false);
	add_req(VTD, b, 2, false);
	CU_ASSERT_EQUAL(run_batch(&p, 0), 0);
	check_all(false);
	CU_ASSERT(STATE(0, 0) == INV_DONE && STATE(0, 1) == INV_FAILED);
	CU_ASSERT(STATE(1, 0) == INV_DONE && STATE(1, 1) == INV_DONE);
	CU_ASSERT_EQUAL(tq[1].r.status, 0);
	CU_ASSERT_EQUAL(tq[1].r.entries_handled, 2);
	/* both were served by the first, merged submission */
	CU_ASSERT(tq[0].r.entries_submitted >= 1 && tq[1].r.entries_submitted >= 1);
}

static void test_chunking(void)
{
	vtd_t e[10];
	struct coalesce_params p = on(0);

	for (int i = 0; i < 10; i++)
		e[i] = V(2 * (uint64_t)i, 1, 0); /* [0,3) costs 4 > 1 + 1: apart */
	fake_reset(VTD);
	reqs_reset();
	add_req(VTD, e, 10, false);
	CU_ASSERT_EQUAL(run_batch(&p, 3), 0);
	check_all(false);
	CU_ASSERT_EQUAL(fk.calls, 4);
	CU_ASSERT_EQUAL(fk.max_seen, 3);
	CU_ASSERT_EQUAL(tq[0].r.entries_handled, 10);
	CU_ASSERT_EQUAL(tq[0].r.entries_submitted, 10);

	/* a failure in the third chunk: the fourth never goes out as planned */
	fake_reset(VTD);
	fake_add_fault(14, -EINVAL, 0);
	reqs_reset();
	add_req(VTD, e, 10, false);
	CU_ASSERT_EQUAL(run_batch(&p, 3), 0);
	check_all(false);
	CU_ASSERT_EQUAL(tq[0].r.entries_handled, 7);
	CU_ASSERT(STATE(0, 7) == INV_FAILED && STATE(0, 8) == INV_NOT_ATTEMPTED);
	CU_ASSERT(fk.max_seen <= 3);
}

static void test_chunking_default_limit(void)
{
	uint32_t n1 = IOMMU_HWPT_INVALIDATE_ENTRY_NUM_MAX, n2 = 5;
	vtd_t *e = malloc((size_t)(n1 + n2) * sizeof(*e));
	struct coalesce_params p = on(0);

	CU_ASSERT_FATAL(e != NULL);
	for (uint32_t i = 0; i < n1 + n2; i++)
		e[i] = V(2 * (uint64_t)i, 1, LEAF);
	fake_reset(VTD);
	reqs_reset();
	add_req(VTD, e, n1, false);
	add_req(VTD, e + n1, n2, true);
	CU_ASSERT_EQUAL(run_batch(&p, 0), 0);
	CU_ASSERT_EQUAL(fk.calls, 2);
	CU_ASSERT_EQUAL(fk.max_seen, IOMMU_HWPT_INVALIDATE_ENTRY_NUM_MAX);
	CU_ASSERT_EQUAL(tq[0].r.entries_handled, n1);
	CU_ASSERT_EQUAL(tq[1].r.entries_handled, n2);
	CU_ASSERT_EQUAL(check_shape(), 0);
	free(e);
}

static void test_hw_error_walk_past(void)
{
	vtd_t e[4] = {V(0, 2, 0), V(2, 2, 0), V(4, 2, 0), V(6, 2, 0)};
	struct coalesce_params p = on(0);

	for (int cont = 0; cont < 2; cont++) {
		fake_reset(VTD);
		fake_add_fault(4, 0, HW_ICE);
		reqs_reset();
		add_req(VTD, e, 4, cont);
		CU_ASSERT_EQUAL(run_batch(&p, 0), 0);
		check_all(false);
		CU_ASSERT(STATE(0, 2) == INV_FAILED);
		CU_ASSERT_EQUAL(tq[0].r.res[2].error, -EIO);
		CU_ASSERT_EQUAL(tq[0].r.res[2].hw_error, HW_ICE);
		CU_ASSERT_EQUAL(STATE(0, 3), cont ? INV_DONE : INV_NOT_ATTEMPTED);
	}
	/* a hard failure that also carries a hardware error */
	fake_reset(VTD);
	fake_add_fault(1, -EIO, HW_ITE);
	reqs_reset();
	add_req(VTD, e, 4, false);
	CU_ASSERT_EQUAL(run_batch(&p, 0), 0);
	check_all(false);
	CU_ASSERT_EQUAL(tq[0].r.res[0].hw_error, HW_ITE);
}

static void test_validation_failure_prefix_submitted(void)
{
	vtd_t e[5] = {V(0, 1, 0), V(1, 1, 0), V(2, 1, 0), V(3, 1, 0), V(4, 1, 0)};
	struct coalesce_params p = on(0);

	e[2].addr |= 0x10;
	fake_reset(VTD);
	reqs_reset();
	add_req(VTD, e, 5, false);
	CU_ASSERT_EQUAL(run_batch(&p, 0), 0);
	check_all(false);
	CU_ASSERT(STATE(0, 0) == INV_DONE && STATE(0, 1) == INV_DONE);
	CU_ASSERT(STATE(0, 2) == INV_FAILED && tq[0].r.res[2].error == -EINVAL);
	CU_ASSERT_EQUAL(tq[0].r.status, -EINVAL);
	CU_ASSERT_EQUAL(fk.calls, 1);

	/* a backend failure before the invalid entry wins */
	fake_reset(VTD);
	fake_add_fault(1, -ENOMEM, 0);
	reqs_reset();
	add_req(VTD, e, 5, false);
	CU_ASSERT_EQUAL(run_batch(&p, 0), 0);
	check_all(false);
	CU_ASSERT(STATE(0, 1) == INV_FAILED && STATE(0, 2) == INV_NOT_ATTEMPTED);
	CU_ASSERT_EQUAL(tq[0].r.status, -ENOMEM);

	/* nothing valid: nothing submitted */
	e[0].flags = 8;
	fake_reset(VTD);
	reqs_reset();
	add_req(VTD, e, 5, false);
	CU_ASSERT_EQUAL(run_batch(&p, 0), 0);
	CU_ASSERT_EQUAL(fk.calls, 0);
	CU_ASSERT_EQUAL(tq[0].r.status, -EOPNOTSUPP);
	CU_ASSERT_EQUAL(tq[0].r.entries_submitted, 0);
}

static void test_npages_zero_done(void)
{
	vtd_t e[2] = {V(5, 0, 0), V(9, 0, LEAF)};
	struct coalesce_params p = on(0);

	fake_reset(VTD);
	reqs_reset();
	add_req(VTD, e, 2, false);
	CU_ASSERT_EQUAL(run_batch(&p, 0), 0);
	check_all(false);
	CU_ASSERT_EQUAL(tq[0].r.entries_handled, 2);
	CU_ASSERT_EQUAL(fk.calls, 1);
	CU_ASSERT_EQUAL(fk.nacked, 1);
}

static void test_wrap_submitted_clipped(void)
{
	vtd_t e[1] = {{.addr = 1ULL << 63, .npages = 1ULL << 62}};
	struct coalesce_params p = on(0);

	for (int enabled = 0; enabled < 2; enabled++) {
		p.enabled = enabled;
		fake_reset(VTD);
		reqs_reset();
		add_req(VTD, e, 1, false);
		CU_ASSERT_EQUAL(run_batch(&p, 0), 0);
		check_all(false);
		CU_ASSERT_EQUAL_FATAL(fk.nacked, 1);
		CU_ASSERT_EQUAL(fk.acked[0].s, 1ULL << 51);
		CU_ASSERT_EQUAL(fk.acked[0].e, 1ULL << 52);
	}
}

static void test_disabled_one_for_one(void)
{
	vtd_t e[4] = {V(0, 2, 0), V(2, 2, 0), V(4, 2, 0), V(6, 2, 0)};
	struct coalesce_params p = on(0);

	p.enabled = false;
	fake_reset(VTD);
	fake_add_fault(2, -EIO, 0);
	reqs_reset();
	add_req(VTD, e, 4, true);
	CU_ASSERT_EQUAL(run_batch(&p, 0), 0);
	check_all(false);
	/* all four, stopped at entry 1 (two walked); then the two after it */
	CU_ASSERT_EQUAL(fk.calls, 2);
	CU_ASSERT_EQUAL(fk.entries, 4);
	CU_ASSERT_EQUAL(tq[0].r.entries_submitted, 4);
}

static void test_hwpt_gone(void)
{
	vtd_t e[3] = {V(0, 1, 0), V(8, 1, 0), V(16, 1, 0)};
	struct coalesce_params p = on(0);

	for (int cont = 0; cont < 2; cont++) {
		fake_reset(VTD);
		fk.hwpt_id = HWPT + 1;
		reqs_reset();
		add_req(VTD, e, 3, cont);
		CU_ASSERT_EQUAL(run_batch(&p, 0), 0);
		check_all(true);
		CU_ASSERT_EQUAL(tq[0].r.status, -ENOENT);
	}
}

static void test_index_fault_never_done(void)
{
	vtd_t e[6];
	struct coalesce_params p = on(0);

	for (int i = 0; i < 6; i++)
		e[i] = V(4 * (uint64_t)i, 1, 0);
	for (int cont = 0; cont < 2; cont++) {
		fake_reset(VTD);
		fk.idx_mode = true;
		fk.idx_at = 0;
		fk.idx_err = -EIO;
		reqs_reset();
		add_req(VTD, e, 6, cont);
		CU_ASSERT_EQUAL(run_batch(&p, 2), 0);
		CU_ASSERT_EQUAL(check_shape(), 0);
		CU_ASSERT_EQUAL(check_done_covered(), 0);
		CU_ASSERT_EQUAL(fk.nacked, 0);
		CU_ASSERT_EQUAL(tq[0].r.entries_handled, 0);
		CU_ASSERT_EQUAL(tq[0].r.res[5].state, cont ? INV_FAILED : INV_NOT_ATTEMPTED);
	}
}

static void test_selftest_batch(void)
{
	st_t a[3] = {{0, 1}, {0, 2}, {0, 1}}, b[2] = {{0, 2}, {0, 3}};
	struct coalesce_params p = on(0);

	fake_reset(ST);
	reqs_reset();
	add_req(ST, a, 3, false);
	add_req(ST, b, 2, false);
	CU_ASSERT_EQUAL(run_batch(&p, 0), 0);
	check_all(false);
	CU_ASSERT_EQUAL(fk.calls, 1);
	CU_ASSERT_EQUAL(fk.entries, 3);

	fake_reset(ST);
	fake_add_fault(2, -EIO, 0);
	reqs_reset();
	add_req(ST, a, 3, true);
	add_req(ST, b, 2, false);
	CU_ASSERT_EQUAL(run_batch(&p, 0), 0);
	check_all(false);
	CU_ASSERT(STATE(0, 1) == INV_FAILED && STATE(0, 2) == INV_DONE);
	CU_ASSERT(STATE(1, 0) == INV_FAILED && STATE(1, 1) == INV_NOT_ATTEMPTED);
}

static void test_empty_inputs(void)
{
	struct coalesce_params p = on(0);
	vtd_t e = V(0, 1, 0);

	fake_reset(VTD);
	reqs_reset();
	CU_ASSERT_EQUAL(run_batch(&p, 0), 0);
	add_req(VTD, &e, 0, false);
	CU_ASSERT_EQUAL(run_batch(&p, 0), 0);
	CU_ASSERT_EQUAL(fk.calls, 0);
	CU_ASSERT_EQUAL(tq[0].r.status, 0);
}

static void test_mixed_batch_rejected(void)
{
	struct coalesce_params p = on(0);
	vtd_t e = V(0, 1, 0);
	st_t s = {0, 1};

	fake_reset(VTD);
	reqs_reset();
	add_req(VTD, &e, 1, false);
	add_req(ST, &s, 1, false);
	CU_ASSERT_EQUAL(run_batch(&p, 0), -EINVAL);
	CU_ASSERT_EQUAL(fk.calls, 0);
	CU_ASSERT(STATE(0, 0) == INV_NOT_ATTEMPTED && tq[0].r.status == -EINVAL);
}

/* ---- property: random batches against the oracle ---- */

static vtd_t gen_vtd(uint64_t base)
{
	uint64_t r = rnd_below(1000);
	vtd_t e = V(base + rnd_below(256), 1 + rnd_below(r < 800 ? 8 : 64), rnd() & 1 ? LEAF : 0);

	if (r < 20)
		e.npages = 0;
	else if (r < 30)
		e = V(0, UINT64_MAX, e.flags);
	else if (r < 50)
		e.npages = rnd() >> rnd_below(20); /* huge, may wrap */
	else if (r < 60)
		e.flags |= 2;
	else if (r < 70)
		e.addr |= 0x100;
	else if (r < 75)
		e.__reserved = 1;
	else if (r < 80)
		e.npages = UINT64_MAX;
	return e;
}

static st_t gen_st(void)
{
	uint64_t r = rnd_below(100);
	st_t e = {.iotlb_id = (uint32_t)rnd_below(4)};

	if (r < 5)
		e.flags = 1;
	else if (r < 8)
		e.iotlb_id = 4 + (uint32_t)rnd_below(10);
	else if (r < 10)
		e.flags = 2;
	return e;
}

static void test_property(void)
{
	const char *env = getenv("NESTD_SEED");
	uint64_t seed = env && *env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL);
	static const uint32_t chunks[] = {0, 0, 1, 2, 3, 5, 16};
	static const uint64_t slacks[] = {0, 1, 8, 64};
	static const int errs[] = {-EIO, -EFAULT, -ENOMEM, -EINVAL, 0};
	uint64_t runs = 20000, done = 0, entries = 0, failed = 0, calls = 0, sent = 0;
	uint8_t buf[200 * sizeof(vtd_t)];

	rng_seed(seed);
	for (uint64_t b = 0; b < runs; b++) {
		uint32_t type = rnd_below(7) ? VTD : ST;
		uint64_t base = rnd_below(1ULL << 40) << 8;
		bool gone = rnd_below(40) == 0;
		struct coalesce_params p = {
		    .enabled = rnd_below(8) != 0,
		    .slack_pages = slacks[rnd_below(4)],
		    .flush_all_pages = rnd_below(3) ? 0 : 32 + rnd_below(1024),
		    .vtd_max_mask = rnd_below(3) ? 0 : 3 + rnd_below(8),
		};
		uint32_t nq = 1 + rnd_below(4);
		int bad;

		fake_reset(type);
		if (gone)
			fk.hwpt_id = HWPT + 1;
		for (uint32_t f = rnd_below(4); f; f--) {
			int err = errs[rnd_below(5)];
			uint32_t hw = rnd_below(3) == 0 || !err ? (rnd() & 1 ? HW_ICE : HW_ITE) : 0;

			fake_add_fault(type == VTD ? base + rnd_below(300) : rnd_below(4), err, hw);
		}
		reqs_reset();
		for (uint32_t q = 0; q < nq; q++) {
			uint32_t n = rnd_below(10) ? 1 + rnd_below(24) : 1 + rnd_below(200);

			for (uint32_t i = 0; i < n; i++) {
				if (type == VTD)
					((vtd_t *)buf)[i] = gen_vtd(base);
				else
					((st_t *)buf)[i] = gen_st();
			}
			add_req(type, buf, n, rnd() & 1);
			entries += n;
		}
		if (run_batch(&p, chunks[rnd_below(7)])) {
			CU_FAIL("inv_batch_run failed");
			break;
		}
		bad = check_against_oracle(gone, false) + check_done_covered() + check_shape();
		calls += fk.calls;
		sent += fk.entries;
		done++;
		for (uint32_t q = 0; q < ntq; q++)
			for (uint32_t i = 0; i < tq[q].r.n; i++)
				failed += tq[q].r.res[i].state == INV_FAILED;
		if (bad) {
			check_against_oracle(gone, true);
			printf("\nbatch %" PRIu64
			       " differs from one-by-one submission: NESTD_SEED=%" PRIu64 "\n",
			       b, seed);
			CU_FAIL("batch result differs from the oracle");
			break;
		}
	}
	printf("\n  batch property: seed %" PRIu64 ", %" PRIu64 " batches, %" PRIu64
	       " client entries (%" PRIu64 " failed), %" PRIu64 " backend calls, %" PRIu64
	       " backend entries (%.3f per client entry)\n",
	       seed, done, entries, failed, calls, sent,
	       entries ? (double)sent / (double)entries : 0.0);
}

int main(void)
{
	static const struct unit_case tests[] = {
	    {"all done, one submission", test_all_done_one_submission},
	    {"escalation counted", test_escalation_counted},
	    {"requested flush-all is no escalation", test_requested_flush_all_not_escalation},
	    {"fault without cont", test_fault_without_cont},
	    {"fault with cont", test_fault_with_cont},
	    {"cross-request batch", test_cross_request},
	    {"chunking", test_chunking},
	    {"chunking at ENTRY_NUM_MAX", test_chunking_default_limit},
	    {"hw_error", test_hw_error_walk_past},
	    {"validation failure: prefix submitted", test_validation_failure_prefix_submitted},
	    {"npages 0 done", test_npages_zero_done},
	    {"wrap submitted clipped", test_wrap_submitted_clipped},
	    {"coalescing disabled", test_disabled_one_for_one},
	    {"HWPT gone", test_hwpt_gone},
	    {"index fault: never done", test_index_fault_never_done},
	    {"selftest batch", test_selftest_batch},
	    {"empty inputs", test_empty_inputs},
	    {"mixed batch rejected", test_mixed_batch_rejected},
	    {"property: one-by-one oracle", test_property},
	};
	int rc;

	inv_batch_ctx_init(&ctx, NULL);
	rc = unit_run("inv_batch", UNIT_CASES(tests));
	inv_batch_ctx_free(&ctx);
	reqs_reset();
	free(fk.acked);
	return rc;
}
