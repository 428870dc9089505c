/* SPDX-License-Identifier: MIT */
/*
 * The asynchronous API end to end: many requests in flight, completions
 * through poll() + iommu_nest_process(), sync calls interleaved, callbacks
 * that resubmit, back-pressure (-EAGAIN), cross-request batching made
 * deterministic by freezing the daemon while requests queue up, and
 * concurrent clients on threads.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define NA IOMMU_NEST_ENTRY_NOT_ATTEMPTED
#define DONE IOMMU_NEST_ENTRY_DONE
#define FAILED IOMMU_NEST_ENTRY_FAILED
#define LEAF IOMMU_NEST_VTD_INV_FLAGS_LEAF
#define BASE 0x40000000ULL
#define MAXE 8

/* One asynchronous request and what its completion brought. */
struct req {
	uint64_t token;
	uint32_t hwpt;
	size_t n;
	struct iommu_nest_vtd_inv e[MAXE];
	struct iommu_nest_entry_result res[MAXE];
	struct it_expect want[MAXE];
	int want_status;
	/* filled by the callback */
	int calls;
	uint64_t token_seen;
	struct iommu_nest_inv_summary sum;
	bool results_ptr_ok;
	uint64_t left_iotlb; /* model pages of DONE entries still cached at completion */
	bool check_model;
};

static void on_done(struct iommu_nest *h, uint64_t token,
		    const struct iommu_nest_inv_summary *summary,
		    struct iommu_nest_entry_result *results, size_t n, void *opaque)
{
	struct req *r = opaque;

	r->calls++;
	r->token_seen = token;
	r->sum = *summary;
	r->results_ptr_ok = results == r->res && n == r->n;
	if (!r->check_model)
		return;
	/* Synchronous calls from a callback are allowed: the model at reply time. */
	for (size_t i = 0; i < n; i++) {
		uint64_t iotlb = 0, psc = 0;

		if (results[i].state != DONE)
			continue;
		if (iommu_nest_sim_query(h, r->hwpt, r->e[i].addr, r->e[i].npages, &iotlb, &psc))
			iotlb = UINT64_MAX;
		r->left_iotlb += iotlb;
	}
}

/* Runs completions until h has nothing in flight; bounded by the reply timeout. */
static int drain(struct iommu_nest *h)
{
	int total = 0;

	while (iommu_nest_in_flight(h)) {
		/* With a shared queue open, its completions are signalled on its own fd. */
		struct pollfd p[2] = { { .fd = iommu_nest_fd(h), .events = POLLIN },
				       { .fd = iommu_nest_queue_fd(h), .events = POLLIN } };
		int rc;

		if (!iommu_nest_pending(h) && poll(p, 2, it_timeout_ms()) < 1) {
			CU_FAIL_FATAL("no completion within the timeout");
		}
		rc = iommu_nest_process(h);
		CU_ASSERT_FATAL(rc >= 0);
		total += rc;
	}
	return total;
}

static void submit(struct iommu_nest *h, struct req *r, uint32_t flags)
{
	int rc = iommu_nest_invalidate_submit(h, r->hwpt, IOMMU_NEST_INV_DATA_VTD_S1, r->e, r->n,
					      flags, r->res, on_done, r, &r->token);

	CU_ASSERT_EQUAL_FATAL(rc, 0);
}

/*
 * Submits n requests while the daemon is frozen, so that one pass finds
 * them all queued (deterministic batching), and collects every completion.
 */
static void submit_frozen(struct nestd *d, struct iommu_nest *h, struct req *r, uint32_t n)
{
	it_freeze(d);
	for (uint32_t i = 0; i < n; i++)
		submit(h, &r[i], 0);
	it_thaw(d);
	CU_ASSERT_EQUAL(drain(h), n);
}

static void check_req(struct req *r)
{
	uint32_t lead = 0;

	CU_ASSERT_EQUAL(r->calls, 1);
	CU_ASSERT_EQUAL(r->token_seen, r->token);
	CU_ASSERT(r->results_ptr_ok);
	CU_ASSERT_EQUAL(r->sum.status, r->want_status);
	it_check_results(r->res, r->want, r->n);
	while (lead < r->n && r->want[lead].state == DONE)
		lead++;
	CU_ASSERT_EQUAL(r->sum.entries_handled, lead);
	if (r->check_model)
		CU_ASSERT_EQUAL(r->left_iotlb, 0);
}

/* Request i: n pages at its own 64-page slot, all expected DONE. */
static void req_pages(struct req *r, uint32_t hwpt, uint32_t i, size_t n, uint32_t flags)
{
	memset(r, 0, sizeof(*r));
	r->hwpt = hwpt;
	r->n = n;
	for (size_t j = 0; j < n; j++) {
		r->e[j] = (struct iommu_nest_vtd_inv){
			.addr = BASE + ((uint64_t)i * 64 + j) * IT_PAGE, .npages = 1, .flags = flags,
		};
		r->want[j] = (struct it_expect){ .state = DONE };
	}
}

static bool vtd_fixture(struct nestd **d, struct iommu_nest **h, uint32_t *hwpt)
{
	*d = it_start(NULL);
	*h = it_connect(*d, "async");
	if (!it_has_device(*h, IT_VTD0) || !it_has_cap(*h, IOMMU_NEST_CAP_SIM_MODEL))
		return false;
	*hwpt = it_alloc_vtd(*h, IT_VTD0);
	return true;
}

/* ---- many in flight ---------------------------------------------------------------- */

static void test_many_in_flight(void)
{
	enum { NR = 8 };
	static struct req r[NR];
	struct iommu_nest *h;
	struct nestd *d;
	uint32_t hwpt;

	if (!vtd_fixture(&d, &h, &hwpt))
		IT_SKIP("needs " IT_VTD0 " and the sim model");
	it_populate(h, hwpt, BASE, NR * 64, IOMMU_NEST_SIM_IOTLB);
	for (uint32_t i = 0; i < NR; i++) {
		req_pages(&r[i], hwpt, i, 4, i % 2 ? LEAF : 0);
		r[i].check_model = true;
	}
	/* r3: the third entry is misaligned: stop there. */
	r[3].e[2].addr += 0x200;
	r[3].want[2] = (struct it_expect){ FAILED, -EINVAL, 0 };
	r[3].want[3] = (struct it_expect){ .state = NA };
	r[3].want_status = -EINVAL;
	/* r5: someone else's (no) HWPT: request-level failure. */
	r[5].hwpt = hwpt + 1000;
	r[5].check_model = false;
	for (size_t j = 0; j < 4; j++)
		r[5].want[j] = (struct it_expect){ .state = NA };
	r[5].want_status = -ENOENT;
	/* r6: continue past a bad reserved word. */
	r[6].e[1].reserved = 1;
	r[6].want[1] = (struct it_expect){ FAILED, -EOPNOTSUPP, 0 };
	r[6].want_status = -EOPNOTSUPP;

	for (uint32_t i = 0; i < NR; i++)
		submit(h, &r[i], i == 6 ? IOMMU_NEST_INV_CONTINUE : 0);
	CU_ASSERT_EQUAL(iommu_nest_in_flight(h), NR);
	for (uint32_t i = 0; i < NR; i++)
		for (uint32_t j = 0; j < i; j++)
			CU_ASSERT_NOT_EQUAL(r[i].token, r[j].token);
	CU_ASSERT_EQUAL(drain(h), NR);
	CU_ASSERT_EQUAL(iommu_nest_in_flight(h), 0);
	CU_ASSERT_EQUAL(iommu_nest_pending(h), 0);
	for (uint32_t i = 0; i < NR; i++)
		check_req(&r[i]);
	/* Pages of entries that were never attempted are still cached. */
	CU_ASSERT_EQUAL(it_iotlb_pages(h, hwpt, r[3].e[3].addr, 1), 1);
	it_stop_ok(d);
}

/* Portable variant on the selftest mock (runs on a real kernel too). */
struct st_req {
	uint64_t token;
	int calls;
	struct iommu_nest_inv_summary sum;
	struct iommu_nest_entry_result res[2];
};

static void on_st_done(struct iommu_nest *h, uint64_t token,
		       const struct iommu_nest_inv_summary *summary,
		       struct iommu_nest_entry_result *results, size_t n, void *opaque)
{
	struct st_req *r = opaque;

	r->calls++;
	r->sum = *summary;
	if (token != r->token)
		r->calls += 100;
}

static void test_selftest_in_flight(void)
{
	enum { NR = 6 };
	struct st_req r[NR];
	struct nestd *d = it_start(NULL);
	struct iommu_nest *h = it_connect(d, "async-st");
	uint32_t st = it_alloc_st(h, IT_ST0, 0xabcd);
	struct iommu_nest_selftest_inv e[NR][2];

	memset(r, 0, sizeof(r));
	for (uint32_t i = 0; i < NR; i++) {
		e[i][0] = (struct iommu_nest_selftest_inv){ 0, i % 3 };
		e[i][1] = (struct iommu_nest_selftest_inv){ i == 4 ? 8u : 0u, i % 3 };
		CU_ASSERT_EQUAL_FATAL(iommu_nest_invalidate_submit(h, st,
								   IOMMU_NEST_INV_DATA_SELFTEST,
								   e[i], 2, 0, r[i].res,
								   on_st_done, &r[i], &r[i].token),
				      0);
	}
	CU_ASSERT_EQUAL(drain(h), NR);
	for (uint32_t i = 0; i < NR; i++) {
		CU_ASSERT_EQUAL(r[i].calls, 1);
		CU_ASSERT_EQUAL(r[i].res[0].state, DONE);
		CU_ASSERT_EQUAL(r[i].res[1].state, i == 4 ? FAILED : DONE);
		CU_ASSERT_EQUAL(r[i].res[1].error, i == 4 ? -EOPNOTSUPP : 0);
		CU_ASSERT_EQUAL(r[i].sum.status, i == 4 ? -EOPNOTSUPP : 0);
		CU_ASSERT_EQUAL(r[i].sum.entries_handled, i == 4 ? 1 : 2);
	}
	if (it_has_cap(h, IOMMU_NEST_CAP_CHECK_IOTLB)) {
		for (uint32_t s = 0; s < 3; s++)
			CU_ASSERT_EQUAL(iommu_nest_check_iotlb(h, st, s, 0), 0);
		CU_ASSERT_EQUAL(iommu_nest_check_iotlb(h, st, 3, 0xabcd), 0);
	}
	it_stop_ok(d);
}

/* ---- sync calls with requests in flight ----------------------------------------------- */

static void test_sync_interleaved(void)
{
	enum { NR = 6 };
	static struct req r[NR];
	struct iommu_nest_stats st;
	struct iommu_nest *h;
	struct nestd *d;
	uint32_t hwpt;
	int delivered;

	if (!vtd_fixture(&d, &h, &hwpt))
		IT_SKIP("needs " IT_VTD0 " and the sim model");
	it_populate(h, hwpt, BASE, NR * 64, IOMMU_NEST_SIM_IOTLB);
	for (uint32_t i = 0; i < NR; i++) {
		req_pages(&r[i], hwpt, i, 3, 0);
		submit(h, &r[i], 0);
	}
	/*
	 * The daemon answers one session's requests in order, so the sync
	 * reply comes after every completion: they are all pending now.
	 */
	st = it_stats(h);
	CU_ASSERT(st.requests >= NR);
	CU_ASSERT_EQUAL(iommu_nest_in_flight(h), NR);
	CU_ASSERT_EQUAL(iommu_nest_pending(h), NR);
	for (uint32_t i = 0; i < NR; i++)
		CU_ASSERT_EQUAL(r[i].calls, 0);
	/* Delivered without the fd being readable. */
	delivered = iommu_nest_process(h);
	CU_ASSERT_EQUAL(delivered, NR);
	CU_ASSERT_EQUAL(iommu_nest_in_flight(h), 0);
	for (uint32_t i = 0; i < NR; i++) {
		check_req(&r[i]);
		CU_ASSERT_EQUAL(it_iotlb_pages(h, hwpt, r[i].e[0].addr, r[i].n), 0);
	}
	it_stop_ok(d);
}

/* ---- callbacks that resubmit ---------------------------------------------------------- */

struct chain {
	uint32_t hwpt;
	uint32_t next;
	uint32_t limit;
	uint32_t ok;
	struct iommu_nest_vtd_inv e;
	struct iommu_nest_entry_result res;
};

static void on_chain(struct iommu_nest *h, uint64_t token,
		     const struct iommu_nest_inv_summary *summary,
		     struct iommu_nest_entry_result *results, size_t n, void *opaque)
{
	struct chain *c = opaque;

	if (!summary->status && n == 1 && results[0].state == DONE)
		c->ok++;
	if (++c->next >= c->limit)
		return;
	c->e = (struct iommu_nest_vtd_inv){ .addr = BASE + c->next * IT_PAGE, .npages = 1 };
	if (iommu_nest_invalidate_submit(h, c->hwpt, IOMMU_NEST_INV_DATA_VTD_S1, &c->e, 1, 0,
					 &c->res, on_chain, c, NULL))
		c->limit = 0;
}

static void test_callback_resubmits(void)
{
	struct chain c = { .limit = 20 };
	struct iommu_nest *h;
	struct nestd *d;

	if (!vtd_fixture(&d, &h, &c.hwpt))
		IT_SKIP("needs " IT_VTD0 " and the sim model");
	it_populate(h, c.hwpt, BASE, 20, IOMMU_NEST_SIM_IOTLB);
	c.e = (struct iommu_nest_vtd_inv){ .addr = BASE, .npages = 1 };
	CU_ASSERT_EQUAL_FATAL(iommu_nest_invalidate_submit(h, c.hwpt, IOMMU_NEST_INV_DATA_VTD_S1,
							   &c.e, 1, 0, &c.res, on_chain, &c,
							   NULL), 0);
	CU_ASSERT_EQUAL(drain(h), 20);
	CU_ASSERT_EQUAL(c.next, 20);
	CU_ASSERT_EQUAL(c.ok, 20);
	CU_ASSERT_EQUAL(it_iotlb_pages(h, c.hwpt, BASE, 20), 0);
	it_stop_ok(d);
}

/* ---- cross-request batching ------------------------------------------------------------ */

/*
 * Two clients pipeline requests for their own HWPTs while the daemon is
 * frozen, so every packet is queued when it wakes: they are read in one
 * event-loop pass, hence batched per HWPT. Every reply must still be exact
 * and nothing a DONE entry covered may be cached when its reply arrives.
 */
static void test_pipelined_batching(void)
{
	enum { NA_REQ = 32, NB_REQ = 16 };
	static struct req ra[NA_REQ], rb[NB_REQ];
	struct iommu_nest_stats before, after;
	struct iommu_nest *a, *b;
	uint32_t ha, hb;
	struct nestd *d;

	if (!vtd_fixture(&d, &a, &ha))
		IT_SKIP("needs " IT_VTD0 " and the sim model");
	b = it_connect(d, "async-b");
	hb = it_alloc_vtd(b, it_has_device(b, IT_VTD1) ? IT_VTD1 : IT_VTD0);
	it_populate(a, ha, BASE, NA_REQ * 64, IOMMU_NEST_SIM_IOTLB);
	it_populate(b, hb, BASE, NB_REQ * 64, IOMMU_NEST_SIM_IOTLB);
	for (uint32_t i = 0; i < NA_REQ; i++) {
		req_pages(&ra[i], ha, i, 1 + i % 4, i % 3 ? LEAF : 0);
		ra[i].check_model = true;
	}
	for (uint32_t i = 0; i < NB_REQ; i++) {
		req_pages(&rb[i], hb, i, 2, 0);
		rb[i].check_model = true;
	}
	/* One bad request in the middle of A's stream fails alone. */
	ra[10].e[0].flags = 0x40;
	ra[10].want[0] = (struct it_expect){ FAILED, -EOPNOTSUPP, 0 };
	for (size_t j = 1; j < ra[10].n; j++)
		ra[10].want[j] = (struct it_expect){ .state = NA };
	ra[10].want_status = -EOPNOTSUPP;

	before = it_stats(a);
	it_freeze(d);
	for (uint32_t i = 0; i < NA_REQ; i++)
		submit(a, &ra[i], 0);
	for (uint32_t i = 0; i < NB_REQ; i++)
		submit(b, &rb[i], 0);
	it_thaw(d);
	CU_ASSERT_EQUAL(drain(a), NA_REQ);
	CU_ASSERT_EQUAL(drain(b), NB_REQ);
	after = it_stats(a);

	for (uint32_t i = 0; i < NA_REQ; i++)
		check_req(&ra[i]);
	for (uint32_t i = 0; i < NB_REQ; i++)
		check_req(&rb[i]);
	fprintf(stderr, " [%llu batches, %llu submissions for %u requests] ",
		(unsigned long long)(after.batches - before.batches),
		(unsigned long long)(after.submissions - before.submissions), NA_REQ + NB_REQ);
	/* Deterministic here: everything was queued before the daemon woke. */
	CU_ASSERT(after.batches - before.batches < NA_REQ + NB_REQ);
	CU_ASSERT_EQUAL(after.batches - before.batches, 2);
	CU_ASSERT(after.submissions - before.submissions < NA_REQ + NB_REQ);
	/* The failed request's entries are still cached. */
	CU_ASSERT_EQUAL(it_iotlb_pages(a, ha, ra[10].e[0].addr, ra[10].n), ra[10].n);
	it_stop_ok(d);
}

/*
 * [coalesce] batch_max_entries: one pass's requests on one HWPT, queued
 * while the daemon is frozen, go out in batches of at most that many
 * entries, in order, never splitting a request. Sizes 3, 3, 1, 8, 2, 4
 * under a cap of 7: {3, 3, 1} fills one exactly, the 8 is over the cap
 * and goes alone, {2, 4} is the rest; with no cap (0) the pass is one
 * batch. Each request is a range of its own slot, so each batch is one
 * submission of one entry per request, and every reply is exact. Through
 * a shared queue, each batch's completions are published as it is
 * answered, before the next batch runs (a pipelined client refills its
 * window meanwhile): one publish a batch, not one a pass.
 */
static void run_capped(const char *conf, uint64_t want_batches, bool queue)
{
	static const size_t sizes[] = { 3, 3, 1, 8, 2, 4 };
	enum { NR = sizeof(sizes) / sizeof(sizes[0]) };
	static struct req r[NR];
	struct iommu_nest_stats before, after;
	struct iommu_nest_queue_stats qa = { 0 }, qb = { 0 };
	struct nestd *d = it_start(conf);
	struct iommu_nest *h = it_connect(d, "capped");
	uint32_t hwpt;

	if (!it_has_device(h, IT_VTD0) || !it_has_cap(h, IOMMU_NEST_CAP_SIM_MODEL))
		IT_SKIP("needs " IT_VTD0 " and the sim model");
	if (queue)
		CU_ASSERT_EQUAL_FATAL(iommu_nest_queue_open(h, 16, 0), 0);
	hwpt = it_alloc_vtd(h, IT_VTD0);
	it_populate(h, hwpt, BASE, NR * 64, IOMMU_NEST_SIM_IOTLB);
	for (uint32_t i = 0; i < NR; i++) {
		req_pages(&r[i], hwpt, i, sizes[i], LEAF);
		r[i].check_model = true;
	}
	before = it_stats(h);
	if (queue)
		CU_ASSERT_EQUAL_FATAL(iommu_nest_queue_stats(h, &qb), 0);
	submit_frozen(d, h, r, NR);
	after = it_stats(h);
	if (queue) {
		CU_ASSERT_EQUAL_FATAL(iommu_nest_queue_stats(h, &qa), 0);
		CU_ASSERT_EQUAL(qa.submissions - qb.submissions, NR);
		/* A publish is a call to a sleeping client or one suppressed. */
		CU_ASSERT_EQUAL(qa.calls + qa.calls_suppressed - qb.calls - qb.calls_suppressed,
				want_batches);
	}
	for (uint32_t i = 0; i < NR; i++)
		check_req(&r[i]);
	CU_ASSERT_EQUAL(after.batches - before.batches, want_batches);
	CU_ASSERT_EQUAL(after.submissions - before.submissions, want_batches);
	CU_ASSERT_EQUAL(after.entries_submitted - before.entries_submitted, NR);
	/* What was asked went, and nothing else (21 pages of 384). */
	CU_ASSERT_EQUAL(it_iotlb_pages(h, hwpt, BASE, NR * 64), NR * 64 - 21);
	it_stop_ok(d);
}

static void test_batch_max_entries(void)
{
	for (int queue = 0; queue < 2; queue++) {
		run_capped("[coalesce]\nbatch_max_entries = 7\n", 3, queue);
		run_capped("[coalesce]\nbatch_max_entries = 0\n", 1, queue);
	}
}

/*
 * A backend fault inside a batch that coalesced many requests into one
 * submission: only the request (and entry) holding the faulting address
 * fails; every other request of the batch is DONE and its pages are gone.
 */
static void test_batched_fault_isolated(void)
{
	enum { NR = 8 };
	static struct req r[NR];
	struct iommu_nest_fault flt = { 0 };
	struct iommu_nest *h;
	struct nestd *d;
	uint32_t hwpt;

	if (!vtd_fixture(&d, &h, &hwpt) || !it_has_cap(h, IOMMU_NEST_CAP_FAULT_INJECT))
		IT_SKIP("needs " IT_VTD0 ", the sim model and fault injection");
	it_populate(h, hwpt, BASE, NR * 2, IOMMU_NEST_SIM_IOTLB);
	for (uint32_t i = 0; i < NR; i++) {
		/* Request i: pages 2i and 2i+1, so all requests form one range. */
		memset(&r[i], 0, sizeof(r[i]));
		r[i].hwpt = hwpt;
		r[i].n = 2;
		r[i].check_model = true;
		for (uint32_t j = 0; j < 2; j++) {
			r[i].e[j] = (struct iommu_nest_vtd_inv){
				.addr = BASE + (2 * i + j) * IT_PAGE, .npages = 1 };
			r[i].want[j] = (struct it_expect){ .state = DONE };
		}
	}
	r[5].want[1] = (struct it_expect){ FAILED, -EIO, 0 };
	r[5].want_status = -EIO;
	flt = (struct iommu_nest_fault){ .hwpt_id = hwpt, .mode = IOMMU_NEST_FAULT_AT_ADDR,
					 .addr = r[5].e[1].addr, .error = -EIO };
	CU_ASSERT_EQUAL_FATAL(iommu_nest_inject_fault(h, &flt), 0);
	submit_frozen(d, h, r, NR);
	for (uint32_t i = 0; i < NR; i++)
		check_req(&r[i]);
	CU_ASSERT_EQUAL(it_iotlb_pages(h, hwpt, r[5].e[1].addr, 1), 1);
	it_stop_ok(d);
}

/* ---- back-pressure ------------------------------------------------------------------- */

struct bp {
	uint32_t done;
	uint32_t bad;
};

static void on_bp(struct iommu_nest *h, uint64_t token,
		  const struct iommu_nest_inv_summary *summary,
		  struct iommu_nest_entry_result *results, size_t n, void *opaque)
{
	struct bp *bp = opaque;

	bp->done++;
	if (summary->status || summary->entries_handled != 2)
		bp->bad++;
}

/* Waits until h can make progress, runs completions. */
static void pump(struct iommu_nest *h)
{
	struct pollfd p = { .fd = iommu_nest_fd(h), .events = POLLIN | POLLOUT };

	CU_ASSERT_FATAL(poll(&p, 1, it_timeout_ms()) == 1);
	CU_ASSERT_FATAL(iommu_nest_process(h) >= 0);
}

static void test_backpressure(void)
{
	enum { TOTAL = 3000 };
	const struct iommu_nest_selftest_inv e[2] = { { 0, 1 }, { 0, 2 } };
	struct nestd *d = it_start(NULL);
	struct iommu_nest *h = it_connect(d, "async-bp");
	uint32_t st = it_alloc_st(h, IT_ST0, 1), sent = 0, eagain = 0;
	struct bp bp = { 0 };
	bool frozen = true;

	it_freeze(d);
	while (sent < TOTAL) {
		int rc = iommu_nest_invalidate_submit(h, st, IOMMU_NEST_INV_DATA_SELFTEST, e, 2, 0,
						      NULL, on_bp, &bp, NULL);

		if (rc == -EAGAIN) {
			eagain++;
			if (frozen) {
				it_thaw(d);
				frozen = false;
			}
			pump(h);
			continue;
		}
		CU_ASSERT_EQUAL_FATAL(rc, 0);
		sent++;
	}
	if (frozen)
		it_thaw(d);
	drain(h);
	CU_ASSERT(eagain > 0); /* the frozen daemon must have filled the socket */
	CU_ASSERT_EQUAL(bp.done, TOTAL);
	CU_ASSERT_EQUAL(bp.bad, 0);
	CU_ASSERT_EQUAL(it_stats(h).requests >= TOTAL, true);
	it_stop_ok(d);
}

/* ---- concurrent clients ------------------------------------------------------------------ */

enum { THREADS = 4, ITERS = 60 };

struct worker {
	struct iommu_nest *h;
	uint32_t hwpt;
	uint32_t failures;
	char what[160];
};

static void worker_fail(struct worker *w, uint32_t it, const char *what)
{
	if (!w->failures++)
		snprintf(w->what, sizeof(w->what), "iteration %u: %s", it, what);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct iommu_nest_vtd_inv e[MAXE];
	struct iommu_nest_entry_result res[MAXE];
	struct iommu_nest_inv_summary sum;

	for (uint32_t it = 0; it < ITERS; it++) {
		uint64_t base = BASE + (uint64_t)(it % 16) * 0x100000, iotlb = 1, psc = 1;
		uint32_t bad = it % 5 == 4 ? it % MAXE : MAXE;

		if (iommu_nest_sim_populate(w->h, w->hwpt, base, MAXE * 2, IOMMU_NEST_SIM_IOTLB))
			worker_fail(w, it, "populate");
		for (uint32_t j = 0; j < MAXE; j++)
			e[j] = (struct iommu_nest_vtd_inv){ .addr = base + 2 * j * IT_PAGE,
							    .npages = 2,
							    .flags = (it + j) % 2 ? LEAF : 0 };
		if (bad < MAXE)
			e[bad].addr |= 0x8;
		if (iommu_nest_invalidate(w->h, w->hwpt, IOMMU_NEST_INV_DATA_VTD_S1, e, MAXE, 0,
					  res, &sum) != (bad < MAXE ? -EINVAL : 0))
			worker_fail(w, it, "invalidate status");
		if (sum.entries_handled != (bad < MAXE ? bad : MAXE))
			worker_fail(w, it, "entries_handled");
		for (uint32_t j = 0; j < MAXE; j++) {
			uint32_t want = j < bad ? DONE : j == bad ? FAILED : NA;

			if (res[j].state != want)
				worker_fail(w, it, "entry state");
		}
		if (iommu_nest_sim_query(w->h, w->hwpt, base, 2 * (bad < MAXE ? bad : MAXE),
					 &iotlb, &psc) || iotlb)
			worker_fail(w, it, "pages left");
	}
	return NULL;
}

static void test_concurrent_clients(void)
{
	struct worker w[THREADS];
	pthread_t tid[THREADS];
	/* One VM, one device: a device is in one client's VM context at a time. */
	static const char *const devs[THREADS] = {IT_VTD0, IT_VTD1, "vtd2", "vtd3"};
	struct nestd *d;
	struct iommu_nest *probe;

	/* Sim VT-d devices need no path; a kernel backend's would. */
	if (getenv("NESTD_BACKEND") && strcmp(getenv("NESTD_BACKEND"), "sim"))
		IT_SKIP("needs four VT-d devices and the sim model");
	d = it_start("[device vtd2]\nkind = vtd\n[device vtd3]\nkind = vtd");
	probe = it_connect(d, "probe");
	if (!it_has_device(probe, "vtd3") || !it_has_cap(probe, IOMMU_NEST_CAP_SIM_MODEL))
		IT_SKIP("needs four VT-d devices and the sim model");
	memset(w, 0, sizeof(w));
	for (int i = 0; i < THREADS; i++) {
		w[i].h = it_connect(d, "worker");
		w[i].hwpt = it_alloc_vtd(w[i].h, devs[i]);
	}
	for (int i = 0; i < THREADS; i++)
		CU_ASSERT_EQUAL_FATAL(pthread_create(&tid[i], NULL, worker_main, &w[i]), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(tid[i], NULL);
	for (int i = 0; i < THREADS; i++) {
		if (w[i].failures)
			fprintf(stderr, "worker %d: %u failures, first: %s\n", i, w[i].failures,
				w[i].what);
		CU_ASSERT_EQUAL(w[i].failures, 0);
	}
	CU_ASSERT_EQUAL(it_stats(probe).hwpts_active, THREADS);
	it_stop_ok(d);
}

int main(int argc, char **argv)
{
	static const struct it_case cases[] = {
		{ "many_in_flight", test_many_in_flight },
		{ "selftest_in_flight", test_selftest_in_flight },
		{ "sync_interleaved", test_sync_interleaved },
		{ "callback_resubmits", test_callback_resubmits },
		{ "pipelined_batching", test_pipelined_batching },
		{ "batch_max_entries", test_batch_max_entries },
		{ "batched_fault_isolated", test_batched_fault_isolated },
		{ "backpressure", test_backpressure },
		{ "concurrent_clients", test_concurrent_clients },
		{ NULL, NULL },
	};

	return it_main(argc, argv, "async", cases);
}
