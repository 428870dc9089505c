/* SPDX-License-Identifier: MIT */
/*
 * The shared-memory queue (issue 17) against the sim: the same results
 * over the queue as over the socket for the same requests (VT-d and
 * selftest), ring and socket requests of one HWPT in one batch, the
 * setup's refusals, a client that scribbles on its ring (errors, its
 * queue closed, never a crash; a bystander unaffected), and teardown on
 * disconnect without a leaked descriptor.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>

#include "harness.h"
#include "iommu_nest_queue.h"

#define NA   IOMMU_NEST_ENTRY_NOT_ATTEMPTED
#define DONE IOMMU_NEST_ENTRY_DONE
#define VTD  IOMMU_NEST_INV_DATA_VTD_S1
#define ST   IOMMU_NEST_INV_DATA_SELFTEST
#define LEAF IOMMU_NEST_VTD_INV_FLAGS_LEAF
#define SPIN 50
#define NMAX 8

struct outcome {
	int rc;
	struct iommu_nest_inv_summary sum;
	struct iommu_nest_entry_result res[NMAX];
};

static struct outcome run(struct iommu_nest *h, const struct iommu_nest_inv_raw *r)
{
	struct outcome o;

	memset(&o, 0xa5, sizeof(o));
	o.rc = iommu_nest_invalidate_raw(h, r, o.res, &o.sum);
	return o;
}

static void same(const struct outcome *a, const struct outcome *b, size_t n, int line)
{
	CU_ASSERT_EQUAL(a->rc, b->rc);
	CU_ASSERT_EQUAL(a->sum.status, b->sum.status);
	CU_ASSERT_EQUAL(a->sum.entries_handled, b->sum.entries_handled);
	CU_ASSERT_EQUAL(a->sum.entries_submitted, b->sum.entries_submitted);
	CU_ASSERT_EQUAL(a->sum.pages_flushed, b->sum.pages_flushed);
	for (size_t i = 0; i < n; i++) {
		CU_ASSERT_EQUAL(a->res[i].state, b->res[i].state);
		CU_ASSERT_EQUAL(a->res[i].error, b->res[i].error);
		CU_ASSERT_EQUAL(a->res[i].hw_error, b->res[i].hw_error);
	}
	if (a->rc != b->rc || a->sum.status != b->sum.status ||
	    a->sum.entries_handled != b->sum.entries_handled)
		fprintf(stderr, "line %d: queue rc %d status %d handled %u, socket %d %d %u\n",
			line, a->rc, a->sum.status, a->sum.entries_handled, b->rc, b->sum.status,
			b->sum.entries_handled);
}

/*
 * Two clients with the same history on twin devices: one through its
 * queue, one through the socket; every request goes to both.
 */
struct twins {
	struct nestd *d;
	struct iommu_nest *q, *s;
	uint32_t hq, hs;
};

static void compare(struct twins *t, struct iommu_nest_inv_raw r, uint32_t hwpt_q, uint32_t hwpt_s,
		    int line)
{
	struct outcome a, b;

	r.hwpt_id = hwpt_q;
	a = run(t->q, &r);
	r.hwpt_id = hwpt_s;
	b = run(t->s, &r);
	same(&a, &b, r.n, line);
}

#define COMPARE(t, r) compare((t), (r), (t)->hq, (t)->hs, __LINE__)

static void test_same_results_vtd(void)
{
	struct twins t = {.d = it_start(NULL)};
	struct iommu_nest_vtd_inv e[NMAX] = {
	    {.addr = 0x200000, .npages = 1, .flags = LEAF},
	    {.addr = 0x400000, .npages = 512},
	    {.addr = 0x201000, .npages = 3}, /* misaligned for its size: fails */
	    {.addr = 0x600000, .npages = 2},
	    {.addr = 0x10000, .npages = 1, .reserved = 1}, /* reserved bits: fails */
	    {.addr = 0, .npages = UINT64_MAX},		   /* flush all */
	};
	struct iommu_nest_inv_raw r = {
	    .data_type = VTD, .layout = IOMMU_NEST_LAYOUT_VTD, .entries = e};

	t.q = it_connect(t.d, "queue");
	t.s = it_connect(t.d, "socket");
	if (!it_has_device(t.q, IT_VTD0) || !it_has_device(t.q, IT_VTD1))
		IT_SKIP("needs vtd0 and vtd1");
	t.hq = it_alloc_vtd(t.q, IT_VTD0);
	t.hs = it_alloc_vtd(t.s, IT_VTD1);
	CU_ASSERT_EQUAL_FATAL(iommu_nest_queue_open(t.q, 16, SPIN), 0);
	CU_ASSERT(iommu_nest_queue_fd(t.q) >= 0);

	r.n = 2;
	COMPARE(&t, r);
	r.n = 6;
	COMPARE(&t, r);
	r.flags = IOMMU_NEST_INV_CONTINUE;
	COMPARE(&t, r);
	r.flags = 1u << 7; /* unknown: EOPNOTSUPP */
	COMPARE(&t, r);
	r.flags = 0;
	r.reserved = 1;
	COMPARE(&t, r);
	r.reserved = 0;
	r.entry_len = 8; /* below the first version's size */
	COMPARE(&t, r);
	r.entry_len = 0;
	r.n = 0;
	COMPARE(&t, r);
	r.n = 1;
	compare(&t, r, 999, 999, __LINE__); /* no such HWPT */
	r.data_type = ST;		    /* wrong type for the HWPT */
	r.layout = IOMMU_NEST_LAYOUT_SELFTEST;
	COMPARE(&t, r);
	CU_ASSERT_EQUAL(iommu_nest_queue_close(t.q), 0);
	CU_ASSERT_EQUAL(iommu_nest_queue_fd(t.q), -1);
	CU_ASSERT_EQUAL(iommu_nest_queue_close(t.q), -ENOENT);
}

static void test_same_results_selftest(void)
{
	struct twins t = {.d = it_start(NULL)};
	struct iommu_nest_selftest_inv e[NMAX] = {
	    {.iotlb_id = 0}, {.iotlb_id = 1}, {.iotlb_id = 99}, {.iotlb_id = 2, .flags = 4},
	    {.iotlb_id = 3},
	};
	struct iommu_nest_inv_raw r = {
	    .data_type = ST, .layout = IOMMU_NEST_LAYOUT_SELFTEST, .entries = e, .n = 2};

	t.q = it_connect(t.d, "queue");
	t.s = it_connect(t.d, "socket");
	if (!it_has_device(t.q, IT_ST0) || !it_has_device(t.q, IT_ST1))
		IT_SKIP("needs st0 and st1");
	t.hq = it_alloc_st(t.q, IT_ST0, 5);
	t.hs = it_alloc_st(t.s, IT_ST1, 5);
	CU_ASSERT_EQUAL_FATAL(iommu_nest_queue_open(t.q, 1, 0), 0);
	for (unsigned round = 0; round < 3; round++) {
		r.n = 2;
		COMPARE(&t, r);
		r.n = 5;
		COMPARE(&t, r);
		r.flags = IOMMU_NEST_INV_CONTINUE;
		COMPARE(&t, r);
		r.flags = 0;
	}
	/* Over the queue's entry area: the socket takes it, with the same answer. */
	CU_ASSERT(iommu_nest_max_entries(t.q) > 0);
}

static int async_done;

static void on_done(struct iommu_nest *h, uint64_t token, const struct iommu_nest_inv_summary *s,
		    struct iommu_nest_entry_result *res, size_t n, void *opaque)
{
	(void)h, (void)token, (void)res, (void)n, (void)opaque;
	CU_ASSERT_EQUAL(s->status, 0);
	async_done++;
}

/* A socket request and a ring request on one HWPT in one pass: one batch. */
static void test_cross_batch(void)
{
	struct nestd *d = it_start("[coalesce]\nbatch_delay_us = 200000\n");
	struct iommu_nest *h = it_connect(d, "cross");
	struct iommu_nest_vtd_inv a = {.addr = 0x200000, .npages = 1};
	struct iommu_nest_vtd_inv b = {.addr = 0x201000, .npages = 1};
	struct iommu_nest_entry_result ra, rb;
	struct iommu_nest_inv_summary sum;
	struct iommu_nest_stats before, after;
	uint32_t hwpt;

	IT_REQUIRE_DEVICE(h, IT_VTD0);
	hwpt = it_alloc_vtd(h, IT_VTD0);
	CU_ASSERT_EQUAL_FATAL(iommu_nest_queue_open(h, 1, 0), 0);
	before = it_stats(h);
	async_done = 0;
	/* A ring of one: the first takes it, the second (the ring full) the socket. */
	CU_ASSERT_EQUAL_FATAL(
	    iommu_nest_invalidate_submit(h, hwpt, VTD, &a, 1, 0, &ra, on_done, NULL, NULL), 0);
	CU_ASSERT_EQUAL_FATAL(
	    iommu_nest_invalidate_submit(h, hwpt, VTD, &b, 1, 0, &rb, on_done, NULL, NULL), 0);
	while (async_done < 2)
		CU_ASSERT_FATAL(iommu_nest_process(h) >= 0);
	CU_ASSERT_EQUAL(ra.state, DONE);
	CU_ASSERT_EQUAL(rb.state, DONE);
	after = it_stats(h);
	/* Two adjacent pages of two requests: one batch, coalesced into one submission. */
	CU_ASSERT_EQUAL(after.batches - before.batches, 1);
	CU_ASSERT_EQUAL(after.entries_submitted - before.entries_submitted, 1);
	/* And a sync call over the ring after them. */
	CU_ASSERT_EQUAL(iommu_nest_invalidate(h, hwpt, VTD, &b, 1, 0, &rb, &sum), 0);
	CU_ASSERT_EQUAL(rb.state, DONE);
	CU_ASSERT_EQUAL(sum.entries_submitted, 1);
}

/* ---- The async API over the queue ---------------------------------------- */

/* One async request and what its callback brought. */
struct areq {
	struct iommu_nest_inv_raw r;
	struct iommu_nest_entry_result res[NMAX];
	struct iommu_nest_inv_summary sum;
	uint64_t token;
	int calls, order;
	bool args_ok;
};

static int cb_seq;

static void on_areq(struct iommu_nest *h, uint64_t token, const struct iommu_nest_inv_summary *s,
		    struct iommu_nest_entry_result *res, size_t n, void *opaque)
{
	struct areq *a = opaque;

	(void)h;
	a->calls++;
	a->order = cb_seq++;
	a->sum = *s;
	a->args_ok = token == a->token && res == a->res && n == a->r.n;
}

static void asubmit(struct iommu_nest *h, struct areq *a)
{
	memset(a->res, 0xa5, sizeof(a->res));
	a->calls = 0;
	CU_ASSERT_EQUAL_FATAL(
	    iommu_nest_invalidate_submit_raw(h, &a->r, a->res, on_areq, a, &a->token), 0);
}

/* Runs completions until nothing is in flight, waiting on both descriptors the VMM would. */
static void adrain(struct iommu_nest *h)
{
	while (iommu_nest_in_flight(h)) {
		struct pollfd p[2] = {{.fd = iommu_nest_fd(h), .events = POLLIN},
				      {.fd = iommu_nest_queue_fd(h), .events = POLLIN}};

		if (!iommu_nest_pending(h) && poll(p, 2, it_timeout_ms()) < 1)
			CU_FAIL_FATAL("no completion within the timeout");
		CU_ASSERT_FATAL(iommu_nest_process(h) >= 0);
	}
}

/*
 * Per-entry results, status and entries_handled are the request's own;
 * entries_submitted and pages_flushed are its batch's, and which pipelined
 * requests share a batch depends on timing: those are not compared.
 */
static void asame(const struct areq *a, const struct areq *b, int line)
{
	CU_ASSERT_EQUAL(a->calls, 1);
	CU_ASSERT_EQUAL(b->calls, 1);
	CU_ASSERT(a->args_ok && b->args_ok);
	CU_ASSERT_EQUAL(a->sum.status, b->sum.status);
	CU_ASSERT_EQUAL(a->sum.entries_handled, b->sum.entries_handled);
	for (size_t i = 0; i < a->r.n; i++) {
		CU_ASSERT_EQUAL(a->res[i].state, b->res[i].state);
		CU_ASSERT_EQUAL(a->res[i].error, b->res[i].error);
		CU_ASSERT_EQUAL(a->res[i].hw_error, b->res[i].hw_error);
	}
	if (a->sum.status != b->sum.status || a->sum.entries_handled != b->sum.entries_handled)
		fprintf(stderr, "line %d: queue status %d handled %u, socket %d %u\n", line,
			a->sum.status, a->sum.entries_handled, b->sum.status,
			b->sum.entries_handled);
}

/*
 * The same pipelined requests (all in flight at once) through the queue
 * of one twin and the socket of the other: the same per-entry results;
 * tokens unique; each callback once, with its own results array.
 */
static void test_async_same_results(void)
{
	struct twins t = {.d = it_start(NULL)};
	static const struct iommu_nest_vtd_inv e[NMAX] = {
	    {.addr = 0x200000, .npages = 1, .flags = LEAF},
	    {.addr = 0x400000, .npages = 512},
	    {.addr = 0x201000, .npages = 3},
	    {.addr = 0x600000, .npages = 2},
	    {.addr = 0x10000, .npages = 1, .reserved = 1},
	    {.addr = 0, .npages = UINT64_MAX},
	};
	const struct iommu_nest_inv_raw base = {
	    .data_type = VTD, .layout = IOMMU_NEST_LAYOUT_VTD, .entries = e};
	enum { K = 9 };
	struct areq qa[K], sa[K];

	t.q = it_connect(t.d, "queue");
	t.s = it_connect(t.d, "socket");
	if (!it_has_device(t.q, IT_VTD0) || !it_has_device(t.q, IT_VTD1))
		IT_SKIP("needs vtd0 and vtd1");
	t.hq = it_alloc_vtd(t.q, IT_VTD0);
	t.hs = it_alloc_vtd(t.s, IT_VTD1);
	CU_ASSERT_EQUAL_FATAL(iommu_nest_queue_open(t.q, 16, SPIN), 0);
	for (int k = 0; k < K; k++) {
		struct iommu_nest_inv_raw r = base;

		r.n = (size_t[]){2, 6, 6, 1, 1, 3, 0, 1, 1}[k];
		r.flags = k == 2 ? IOMMU_NEST_INV_CONTINUE : k == 3 ? 1u << 7 : 0;
		r.reserved = k == 4;
		r.entry_len = k == 5 ? 8 : 0;
		if (k == 8) {
			r.data_type = ST;
			r.layout = IOMMU_NEST_LAYOUT_SELFTEST;
		}
		qa[k].r = sa[k].r = r;
		qa[k].r.hwpt_id = k == 7 ? 999 : t.hq;
		sa[k].r.hwpt_id = k == 7 ? 999 : t.hs;
		asubmit(t.q, &qa[k]);
		asubmit(t.s, &sa[k]);
	}
	CU_ASSERT_EQUAL(iommu_nest_in_flight(t.q), K);
	adrain(t.q);
	adrain(t.s);
	for (int k = 0; k < K; k++) {
		asame(&qa[k], &sa[k], __LINE__ + 1000 * k);
		for (int j = 0; j < k; j++)
			CU_ASSERT_NOT_EQUAL(qa[k].token, qa[j].token);
	}
	/* A sync call between them still gets its own answer. */
	CU_ASSERT_EQUAL(qa[0].sum.status, 0);
	CU_ASSERT_EQUAL(qa[0].res[0].state, DONE);
	CU_ASSERT_EQUAL(iommu_nest_queue_close(t.q), 0);
}

/* The same on selftest HWPTs (the kernel tier's mock devices): per-entry errnos included. */
static void test_async_same_results_selftest(void)
{
	struct twins t = {.d = it_start(NULL)};
	static const struct iommu_nest_selftest_inv e[NMAX] = {
	    {.iotlb_id = 0}, {.iotlb_id = 1}, {.iotlb_id = 99}, {.iotlb_id = 2, .flags = 4},
	    {.iotlb_id = 3},
	};
	enum { K = 8 };
	struct areq qa[K], sa[K];

	t.q = it_connect(t.d, "queue");
	t.s = it_connect(t.d, "socket");
	if (!it_has_device(t.q, IT_ST0) || !it_has_device(t.q, IT_ST1))
		IT_SKIP("needs st0 and st1");
	t.hq = it_alloc_st(t.q, IT_ST0, 5);
	t.hs = it_alloc_st(t.s, IT_ST1, 5);
	CU_ASSERT_EQUAL_FATAL(iommu_nest_queue_open(t.q, 4, SPIN), 0);
	/* Eight in flight on a ring of four: the rest take the socket, with the same answers. */
	for (int k = 0; k < K; k++) {
		struct iommu_nest_inv_raw r = {.data_type = ST,
					       .layout = IOMMU_NEST_LAYOUT_SELFTEST,
					       .entries = e,
					       .n = (size_t[]){2, 5, 5, 0, 1, 3, 2, 1}[k],
					       .flags = k == 2 ? IOMMU_NEST_INV_CONTINUE : 0};

		qa[k].r = sa[k].r = r;
		qa[k].r.hwpt_id = k == 7 ? 999 : t.hq;
		sa[k].r.hwpt_id = k == 7 ? 999 : t.hs;
		asubmit(t.q, &qa[k]);
		asubmit(t.s, &sa[k]);
	}
	adrain(t.q);
	adrain(t.s);
	for (int k = 0; k < K; k++)
		asame(&qa[k], &sa[k], __LINE__ + 1000 * k);
	CU_ASSERT_EQUAL(qa[1].res[2].state, IOMMU_NEST_ENTRY_FAILED);
	CU_ASSERT_EQUAL(qa[7].sum.status, -ENOENT);
}

/*
 * The done queue's order: async submissions queued up while the daemon is
 * stopped, then a sync call. The sync call returns its own answer and
 * parks the async completions it read on the way (no callback runs
 * inside it); iommu_nest_process() then runs them in completion order,
 * which for one HWPT's batch is submission order.
 */
static void test_async_order(void)
{
	struct nestd *d = it_start(NULL);
	struct iommu_nest *h = it_connect(d, "order");
	struct iommu_nest_selftest_inv e = {.iotlb_id = 1};
	struct iommu_nest_entry_result res;
	enum { K = 8 };
	struct areq a[K];
	uint32_t st;

	IT_REQUIRE_DEVICE(h, IT_ST0);
	st = it_alloc_st(h, IT_ST0, 3);
	CU_ASSERT_EQUAL_FATAL(iommu_nest_queue_open(h, 16, SPIN), 0);
	it_freeze(d);
	cb_seq = 0;
	for (int k = 0; k < K; k++) {
		a[k].r = (struct iommu_nest_inv_raw){.hwpt_id = st,
						     .data_type = ST,
						     .layout = IOMMU_NEST_LAYOUT_SELFTEST,
						     .entries = &e,
						     .n = 1};
		asubmit(h, &a[k]);
	}
	it_thaw(d);
	CU_ASSERT_EQUAL(iommu_nest_invalidate(h, st, ST, &e, 1, 0, &res, NULL), 0);
	CU_ASSERT_EQUAL(res.state, DONE);
	CU_ASSERT_EQUAL(iommu_nest_pending(h), K);
	CU_ASSERT_EQUAL(iommu_nest_in_flight(h), K);
	for (int k = 0; k < K; k++)
		CU_ASSERT_EQUAL(a[k].calls, 0);
	CU_ASSERT_EQUAL(iommu_nest_process(h), K);
	for (int k = 0; k < K; k++) {
		CU_ASSERT_EQUAL(a[k].calls, 1);
		CU_ASSERT_EQUAL(a[k].order, k);
		CU_ASSERT(a[k].args_ok);
		CU_ASSERT_EQUAL(a[k].sum.status, 0);
		CU_ASSERT_EQUAL(a[k].res[0].state, DONE);
	}
	CU_ASSERT_EQUAL(iommu_nest_in_flight(h), 0);
}

/*
 * The completion eventfd for the VMM's loop: readable once an async
 * request completed; a ring smaller than the pipeline sends the excess
 * over the socket, with the same answers; a sync call on a full ring
 * makes room by parking completions; closing the queue completes what
 * is in flight first.
 */
static void test_async_fd_and_overflow(void)
{
	struct nestd *d = it_start(NULL);
	struct iommu_nest *h = it_connect(d, "overflow");
	struct iommu_nest_selftest_inv e[2] = {{.iotlb_id = 1}, {.iotlb_id = 99}};
	struct iommu_nest_entry_result res[2];
	struct pollfd p;
	enum { K = 6 };
	struct areq a[K];
	uint32_t st;

	IT_REQUIRE_DEVICE(h, IT_ST0);
	st = it_alloc_st(h, IT_ST0, 3);
	CU_ASSERT_EQUAL_FATAL(iommu_nest_queue_open(h, 2, 0), 0);
	a[0].r = (struct iommu_nest_inv_raw){.hwpt_id = st,
					     .data_type = ST,
					     .layout = IOMMU_NEST_LAYOUT_SELFTEST,
					     .entries = e,
					     .n = 2};
	asubmit(h, &a[0]);
	p = (struct pollfd){.fd = iommu_nest_queue_fd(h), .events = POLLIN};
	CU_ASSERT_EQUAL_FATAL(poll(&p, 1, it_timeout_ms()), 1);
	CU_ASSERT_EQUAL(iommu_nest_process(h), 1);
	CU_ASSERT_EQUAL(a[0].calls, 1);
	CU_ASSERT_EQUAL(a[0].res[0].state, DONE);
	CU_ASSERT_EQUAL(a[0].res[1].state, IOMMU_NEST_ENTRY_FAILED);
	CU_ASSERT_EQUAL(a[0].res[1].error, -EINVAL);
	CU_ASSERT_EQUAL(a[0].sum.entries_handled, 1);

	for (int k = 0; k < K; k++) {
		a[k].r = a[0].r;
		asubmit(h, &a[k]);
	}
	/* Two on the ring, the ring full: this one waits for room. */
	CU_ASSERT_EQUAL(iommu_nest_invalidate(h, st, ST, e, 1, 0, res, NULL), 0);
	CU_ASSERT_EQUAL(res[0].state, DONE);
	CU_ASSERT_EQUAL(iommu_nest_queue_close(h), 0);
	CU_ASSERT(iommu_nest_pending(h) >= 2);
	adrain(h);
	for (int k = 0; k < K; k++) {
		CU_ASSERT_EQUAL(a[k].calls, 1);
		CU_ASSERT_EQUAL(a[k].sum.status, -EINVAL);
		CU_ASSERT_EQUAL(a[k].sum.entries_handled, 1);
		CU_ASSERT_EQUAL(a[k].res[0].state, DONE);
		CU_ASSERT_EQUAL(a[k].res[1].error, -EINVAL);
	}
}

/* ---- A client of its own making: raw setup, then scribbling ------------- */

struct rawq {
	int sock, memfd, kick, call;
	struct nestq_layout l;
	uint8_t *base;
};

static struct nestq_header *rq_hdr(const struct rawq *q)
{
	return (struct nestq_header *)q->base;
}

static int rawq_make(struct rawq *q, uint32_t sq, uint32_t cq, uint64_t data, bool seal)
{
	CU_ASSERT_FATAL(nestq_layout(&q->l, sq, cq, data));
	q->memfd = memfd_create("scribbler", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	CU_ASSERT_FATAL(q->memfd >= 0);
	CU_ASSERT_FATAL(ftruncate(q->memfd, (off_t)q->l.total) == 0);
	if (seal)
		CU_ASSERT_FATAL(fcntl(q->memfd, F_ADD_SEALS, F_SEAL_SHRINK) == 0);
	q->base = mmap(NULL, q->l.total, PROT_READ | PROT_WRITE, MAP_SHARED, q->memfd, 0);
	CU_ASSERT_FATAL(q->base != MAP_FAILED);
	q->kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	q->call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	CU_ASSERT_FATAL(q->kick >= 0 && q->call >= 0);
	return 0;
}

static void rawq_free(struct rawq *q)
{
	munmap(q->base, q->l.total);
	close(q->memfd);
	close(q->kick);
	close(q->call);
}

/* QueueSetup of layout version ver with the given sizes and descriptors; the reply's status. */
static int raw_setup_v(int sock, uint32_t ver, uint32_t sq, uint32_t cq, uint64_t data,
		       const int *fds, int nfds, uint64_t id)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__QueueSetup qs = IOMMU_NEST__QUEUE_SETUP__INIT;
	IommuNest__Reply *rep;
	uint8_t buf[128];
	size_t len;
	int err, status;

	qs.sq_entries = sq;
	qs.cq_entries = cq;
	qs.data_bytes = data;
	qs.layout_version = ver;
	req.id = id;
	req.body_case = IOMMU_NEST__REQUEST__BODY_QUEUE_SETUP;
	req.queue_setup = &qs;
	len = iommu_nest__request__pack(&req, buf);
	CU_ASSERT_EQUAL_FATAL(it_raw_send_fds(sock, buf, len, fds, nfds), 0);
	rep = it_raw_recv(sock, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(rep);
	CU_ASSERT_EQUAL(rep->id, id);
	status = rep->status;
	iommu_nest__reply__free_unpacked(rep, NULL);
	return status;
}

static int raw_setup(int sock, uint32_t sq, uint32_t cq, uint64_t data, const int *fds, int nfds,
		     uint64_t id)
{
	return raw_setup_v(sock, NESTQ_VERSION, sq, cq, data, fds, nfds, id);
}

static void kick(const struct rawq *q)
{
	uint64_t one = 1;

	CU_ASSERT_EQUAL(write(q->kick, &one, sizeof(one)), (ssize_t)sizeof(one));
}

/* Waits (bounded) until the daemon's cq_tail reaches want or the queue broke. */
static bool wait_cq(const struct rawq *q, uint32_t want)
{
	for (int i = 0; i < it_timeout_ms(); i++) {
		if (atomic_load(&rq_hdr(q)->cq_tail) == want ||
		    atomic_load(&rq_hdr(q)->sq_flags) & NESTQ_SQ_BROKEN)
			return true;
		usleep(1000);
	}
	return false;
}

static void test_setup_refusals(void)
{
	struct nestd *d = it_start("[policy]\nmax_queue_bytes = 65536\n");
	struct rawq q, unsealed;
	int sock = it_raw_connect(d);
	int fds[3], bad[3];

	it_raw_hello(sock);
	rawq_make(&q, 4, 4, 64, true);
	rawq_make(&unsealed, 4, 4, 64, false);
	fds[0] = q.memfd, fds[1] = q.kick, fds[2] = q.call;
	CU_ASSERT_EQUAL(raw_setup(sock, 0, 0, 0, NULL, 0, 2), -ENOENT);
	CU_ASSERT_EQUAL(raw_setup(sock, 4, 4, 64, NULL, 0, 3), -EINVAL);
	CU_ASSERT_EQUAL(raw_setup(sock, 3, 4, 64, fds, 3, 4), -EINVAL);
	CU_ASSERT_EQUAL(raw_setup(sock, 4, 4, 1 << 20, fds, 3, 5), -EDQUOT);
	/* The memfd is smaller than these sizes say. */
	CU_ASSERT_EQUAL(raw_setup(sock, 64, 64, 4096, fds, 3, 6), -EINVAL);
	bad[0] = unsealed.memfd, bad[1] = q.kick, bad[2] = q.call;
	CU_ASSERT_EQUAL(raw_setup(sock, 4, 4, 64, bad, 3, 7), -EINVAL);
	bad[0] = q.memfd, bad[1] = q.memfd, bad[2] = q.call;
	CU_ASSERT_EQUAL(raw_setup(sock, 4, 4, 64, bad, 3, 8), -EINVAL);
	/* A library of another layout (0: one from before the field) is refused, clearly. */
	CU_ASSERT_EQUAL(raw_setup_v(sock, 0, 4, 4, 64, fds, 3, 13), -EPROTONOSUPPORT);
	CU_ASSERT_EQUAL(raw_setup_v(sock, NESTQ_VERSION + 1, 4, 4, 64, fds, 3, 14),
			-EPROTONOSUPPORT);
	CU_ASSERT_EQUAL(raw_setup(sock, 4, 4, 64, fds, 3, 9), 0);
	CU_ASSERT_EQUAL(raw_setup(sock, 4, 4, 64, fds, 3, 10), -EBUSY);
	CU_ASSERT_EQUAL(raw_setup(sock, 0, 0, 0, NULL, 0, 11), 0);
	CU_ASSERT_EQUAL(raw_setup(sock, 4, 4, 64, fds, 3, 12), 0);
	rawq_free(&q);
	rawq_free(&unsealed);
}

static struct nestq_sqe *sq_slot(const struct rawq *q, uint32_t i)
{
	return (struct nestq_sqe *)(q->base + q->l.sq_off) + (i & (q->l.sq_entries - 1));
}

static const struct nestq_cqe *cq_slot(const struct rawq *q, uint32_t i)
{
	return (const struct nestq_cqe *)(q->base + q->l.cq_off) + (i & (q->l.cq_entries - 1));
}

/*
 * Submissions with ranges outside the area, pad set, too many entries:
 * each answered with its errno; then an index beyond the ring: the queue
 * closes. The daemon lives, the bystander never notices, and once the
 * scribbler is gone the daemon holds the descriptors it held before.
 */
static void test_scribbler(void)
{
	struct nestd *d = it_start(NULL);
	struct it_bystander *by = it_bystander_new(d);
	/* Before the scribbler connects: its socket is accepted asynchronously. */
	int base_fds = it_daemon_fds(d);
	int sock = it_raw_connect(d);
	struct rawq q;
	int fds[3];
	uint32_t st, tail = 0;
	const struct {
		struct nestq_sqe sqe;
		int want;
	} bad[] = {
	    {{.data_type = ST, .n = 1, .entry_off = 4096}, -EINVAL},
	    {{.data_type = ST, .n = 1, .result_off = 60}, -EINVAL},
	    {{.data_type = ST, .n = 1, .entry_off = 4}, -EINVAL},
	    {{.data_type = ST, .n = 1, .inline_entry = {[3] = 1}}, -EINVAL},
	    {{.data_type = ST, .n = 0x10000000}, -E2BIG},
	    {{.data_type = ST, .n = 1, .result_off = 8, .flags = 4}, -EOPNOTSUPP},
	    /* The inline form: one entry, no ranges, zeros past the entry's 8 bytes. */
	    {{.data_type = ST, .n = 2, .flags = NESTQ_SQE_INLINE}, -EINVAL},
	    {{.data_type = ST, .n = 0, .flags = NESTQ_SQE_INLINE}, -EINVAL},
	    {{.data_type = ST, .n = 1, .flags = NESTQ_SQE_INLINE, .result_off = 8}, -EINVAL},
	    {{.data_type = ST, .n = 1, .flags = NESTQ_SQE_INLINE, .inline_entry = {[8] = 1}},
	     -EINVAL},
	    {{.data_type = ST, .n = 1, .result_off = 8, .hwpt_id = 12345}, -ENOENT},
	};

	it_raw_hello(sock);
	st = it_raw_alloc_st(sock, IT_ST0, 2);
	rawq_make(&q, 4, 4, 64, true);
	fds[0] = q.memfd, fds[1] = q.kick, fds[2] = q.call;
	CU_ASSERT_EQUAL_FATAL(raw_setup(sock, 4, 4, 64, fds, 3, 3), 0);
	/*
	 * Its socket, the kick and the call (the memfd is closed once mapped),
	 * and its VM context, opened by the alloc's device claim.
	 */
	CU_ASSERT_EQUAL(it_daemon_fds(d), base_fds + 3 + it_context_fds());
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct nestq_sqe s = bad[i].sqe;

		if (!s.hwpt_id)
			s.hwpt_id = st;
		s.user_data = 100 + i;
		*sq_slot(&q, tail) = s;
		atomic_store(&rq_hdr(&q)->sq_tail, ++tail);
		kick(&q);
		CU_ASSERT_FATAL(wait_cq(&q, tail));
		CU_ASSERT_EQUAL(cq_slot(&q, tail - 1)->user_data, 100 + i);
		CU_ASSERT_EQUAL(cq_slot(&q, tail - 1)->status, bad[i].want);
		atomic_store(&rq_hdr(&q)->cq_head, tail);
		it_bystander_check(by);
	}
	/* A good one still works after all that. */
	*sq_slot(&q, tail) = (struct nestq_sqe){
	    .user_data = 7, .hwpt_id = st, .data_type = ST, .n = 1, .result_off = 8};
	atomic_store(&rq_hdr(&q)->sq_tail, ++tail);
	kick(&q);
	CU_ASSERT_FATAL(wait_cq(&q, tail));
	CU_ASSERT_EQUAL(cq_slot(&q, tail - 1)->status, 0);
	CU_ASSERT_EQUAL(cq_slot(&q, tail - 1)->entries_handled, 1);
	atomic_store(&rq_hdr(&q)->cq_head, tail);
	/* And an inline one: its result comes back in the completion. */
	*sq_slot(&q, tail) = (struct nestq_sqe){.user_data = 8,
						.hwpt_id = st,
						.data_type = ST,
						.n = 1,
						.flags = NESTQ_SQE_INLINE,
						.inline_entry = {[4] = 1}};
	atomic_store(&rq_hdr(&q)->sq_tail, ++tail);
	kick(&q);
	CU_ASSERT_FATAL(wait_cq(&q, tail));
	CU_ASSERT_EQUAL(cq_slot(&q, tail - 1)->user_data, 8);
	CU_ASSERT_EQUAL(cq_slot(&q, tail - 1)->status, 0);
	CU_ASSERT_EQUAL(cq_slot(&q, tail - 1)->n, 1);
	CU_ASSERT_EQUAL(cq_slot(&q, tail - 1)->result.state, IOMMU_NEST__ENTRY_STATE__ENTRY_DONE);
	CU_ASSERT_EQUAL(cq_slot(&q, tail - 1)->result.error, 0);

	/* Garbage everywhere, then an index past the ring: closed, not crashed. */
	for (unsigned round = 0; round < 200; round++) {
		for (size_t i = NESTQ_HDR_BYTES; i < q.l.total; i++)
			q.base[i] = (uint8_t)(rand() & 0xff);
		atomic_store(&rq_hdr(&q)->cq_head, tail + (rand() & 3));
		atomic_store(&rq_hdr(&q)->sq_tail, tail + (rand() & 3));
		kick(&q);
		if (round % 50 == 0)
			it_bystander_check(by);
	}
	atomic_store(&rq_hdr(&q)->sq_tail, atomic_load(&rq_hdr(&q)->sq_head) + 1000);
	kick(&q);
	for (int i = 0;
	     i < it_timeout_ms() && !(atomic_load(&rq_hdr(&q)->sq_flags) & NESTQ_SQ_BROKEN); i++)
		usleep(1000);
	CU_ASSERT(atomic_load(&rq_hdr(&q)->sq_flags) & NESTQ_SQ_BROKEN);
	it_bystander_check(by);
	/* The session stays (only its queue went), and may set up a new one. */
	CU_ASSERT_EQUAL(raw_setup(sock, 4, 4, 64, fds, 3, 20), 0);
	it_raw_close(sock);
	rawq_free(&q);
	for (int i = 0; i < it_timeout_ms() && it_daemon_fds(d) != base_fds; i++)
		usleep(1000);
	/* Its socket, kick and call gone: what the daemon held before it connected. */
	CU_ASSERT_EQUAL(it_daemon_fds(d), base_fds);
	it_bystander_check(by);
}

static uint32_t sq_flags(const struct rawq *q)
{
	return atomic_load(&rq_hdr(q)->sq_flags);
}

/* One good selftest submission at tail; kicked if asked. Returns the new tail. */
static uint32_t submit_good(struct rawq *q, uint32_t st, uint32_t tail, bool do_kick)
{
	*sq_slot(q, tail) = (struct nestq_sqe){
	    .user_data = tail, .hwpt_id = st, .data_type = ST, .n = 1, .result_off = 8};
	atomic_store(&rq_hdr(q)->sq_tail, ++tail);
	if (do_kick)
		kick(q);
	CU_ASSERT_FATAL(wait_cq(q, tail));
	CU_ASSERT_EQUAL(cq_slot(q, tail - 1)->status, 0);
	atomic_store(&rq_hdr(q)->cq_head, tail);
	return tail;
}

/*
 * queue_poll_us: within the window after a submission the daemon polls
 * (NEED_KICK clear, an unkicked submission is taken), after it it asks for
 * kicks again; a reload to 0 turns polling off.
 */
/*
 * A raw client's 4-slot queue on a daemon that polls a second after each
 * submission: its socket; *st is its selftest HWPT.
 */
static int polling_queue(struct nestd **d, struct rawq *q, uint32_t *st)
{
	int sock, fds[3];

	*d = it_start("[coalesce]\nqueue_poll_us = 1000000\n");
	sock = it_raw_connect(*d);
	it_raw_hello(sock);
	*st = it_raw_alloc_st(sock, IT_ST0, 2);
	rawq_make(q, 4, 4, 64, true);
	fds[0] = q->memfd, fds[1] = q->kick, fds[2] = q->call;
	CU_ASSERT_EQUAL_FATAL(raw_setup(sock, 4, 4, 64, fds, 3, 3), 0);
	return sock;
}

static void test_poll_window(void)
{
	struct nestd *d;
	struct rawq q;
	uint32_t st, tail = 0;

	polling_queue(&d, &q, &st);
	CU_ASSERT(sq_flags(&q) & NESTQ_SQ_NEED_KICK);
	tail = submit_good(&q, st, tail, true);
	CU_ASSERT_FALSE(sq_flags(&q) & NESTQ_SQ_NEED_KICK);
	tail = submit_good(&q, st, tail, false);
	usleep(1500000);
	CU_ASSERT(sq_flags(&q) & NESTQ_SQ_NEED_KICK);

	it_edit_config(d, "queue_poll_us = 1000000\n", "queue_poll_us = 0\n");
	CU_ASSERT_FATAL(it_sighup_reload(d));
	tail = submit_good(&q, st, tail, true);
	CU_ASSERT(sq_flags(&q) & NESTQ_SQ_NEED_KICK);
	rawq_free(&q);
}

/*
 * The window runs from the answer as well as from the take: a batch that
 * outlasts queue_poll_us (the sim slowed to 1.5 s a call) leaves the queue
 * polling after its completion, so the client's next submission, not
 * kicked, is taken. (Counted from the take alone, the window ended while
 * the batch ran: the unkicked submission would wait for a kick forever.)
 */
/* Every submission of the connection's backend takes us longer (the sim's latency). */
static void raw_latency(int sock, uint32_t hwpt, uint32_t us, uint64_t id)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__InjectFault f = IOMMU_NEST__INJECT_FAULT__INIT;
	IommuNest__Reply *rep;

	f.hwpt_id = hwpt;
	f.latency_us = us;
	req.body_case = IOMMU_NEST__REQUEST__BODY_INJECT_FAULT;
	req.inject_fault = &f;
	rep = it_raw_call(sock, &req, id);
	CU_ASSERT_PTR_NOT_NULL_FATAL(rep);
	CU_ASSERT_EQUAL(rep->status, 0);
	iommu_nest__reply__free_unpacked(rep, NULL);
}

static void test_poll_window_from_answer(void)
{
	struct nestd *d;
	struct rawq q;
	uint32_t st, tail = 0;
	int sock = polling_queue(&d, &q, &st);

	/* Only the sim can be made slow (a kernel has no fault injection). */
	if (!it_has_cap(it_connect(d, "caps"), IOMMU_NEST_CAP_FAULT_INJECT)) {
		rawq_free(&q);
		IT_SKIP("daemon lacks IOMMU_NEST_CAP_FAULT_INJECT");
	}
	tail = submit_good(&q, st, tail, true);
	raw_latency(sock, st, 1500000, 4);
	tail = submit_good(&q, st, tail, false); /* taken while polling, answered 1.5 s later */
	raw_latency(sock, st, 0, 5);
	CU_ASSERT_FALSE(sq_flags(&q) & NESTQ_SQ_NEED_KICK);
	tail = submit_good(&q, st, tail, false);
	rawq_free(&q);
}

/*
 * iommu_nest_queue_spin(): -ENOENT without a queue; 0 when nothing
 * completes within spin_us (nothing is in flight); 1 once an async
 * request's completion is on the ring, which iommu_nest_process() then
 * delivers.
 */
static void test_queue_spin(void)
{
	struct nestd *d = it_start(NULL);
	struct iommu_nest *h = it_connect(d, "spinner");
	struct iommu_nest_selftest_inv e = {.iotlb_id = 1};
	struct areq a;
	uint32_t st;

	IT_REQUIRE_DEVICE(h, IT_ST0);
	st = it_alloc_st(h, IT_ST0, 3);
	CU_ASSERT_EQUAL(iommu_nest_queue_spin(h, 10), -ENOENT);
	CU_ASSERT_EQUAL_FATAL(iommu_nest_queue_open(h, 4, 0), 0);
	CU_ASSERT_EQUAL(iommu_nest_queue_spin(h, 1000), 0);
	a.r = (struct iommu_nest_inv_raw){.hwpt_id = st,
					  .data_type = ST,
					  .layout = IOMMU_NEST_LAYOUT_SELFTEST,
					  .entries = &e,
					  .n = 1};
	asubmit(h, &a);
	CU_ASSERT_EQUAL(iommu_nest_queue_spin(h, (uint32_t)it_timeout_ms() * 1000u), 1);
	CU_ASSERT_EQUAL(a.calls, 0); /* spinning delivers nothing */
	CU_ASSERT_EQUAL(iommu_nest_process(h), 1);
	CU_ASSERT_EQUAL(a.calls, 1);
	CU_ASSERT_EQUAL(a.res[0].state, DONE);
	CU_ASSERT_EQUAL(iommu_nest_queue_close(h), 0);
}

/*
 * While a queue polls (a long window, NEED_KICK clear), the poll loop
 * yields between turns: socket clients are served all along, and the
 * queue is still taken unkicked after them.
 */
static void test_poll_serves_socket(void)
{
	struct nestd *d = it_start("[coalesce]\nqueue_poll_us = 1000000\n");
	struct iommu_nest *other = it_connect(d, "socket");
	struct iommu_nest_selftest_inv e = {.iotlb_id = 1};
	struct iommu_nest_entry_result res;
	int sock = it_raw_connect(d);
	struct rawq q;
	int fds[3];
	uint32_t st, st2, tail = 0;

	IT_REQUIRE_DEVICE(other, IT_ST1);
	it_raw_hello(sock);
	st = it_raw_alloc_st(sock, IT_ST0, 2);
	st2 = it_alloc_st(other, IT_ST1, 3);
	rawq_make(&q, 4, 4, 64, true);
	fds[0] = q.memfd, fds[1] = q.kick, fds[2] = q.call;
	CU_ASSERT_EQUAL_FATAL(raw_setup(sock, 4, 4, 64, fds, 3, 3), 0);
	tail = submit_good(&q, st, tail, true);
	CU_ASSERT_FALSE(sq_flags(&q) & NESTQ_SQ_NEED_KICK);
	for (int i = 0; i < 20; i++) {
		CU_ASSERT_EQUAL(iommu_nest_invalidate(other, st2, ST, &e, 1, 0, &res, NULL), 0);
		CU_ASSERT_EQUAL(res.state, DONE);
	}
	CU_ASSERT_FALSE(sq_flags(&q) & NESTQ_SQ_NEED_KICK);
	tail = submit_good(&q, st, tail, false);
	rawq_free(&q);
}

/*
 * The scribbler again, but while the daemon polls (a long window, no
 * kicks): garbage in every slot and index as the poll loop reads them,
 * then an index past the ring. The queue closes, the daemon and a
 * bystander live on; then the scribbler disconnects while the daemon
 * still polls another of its queues, and every descriptor comes back.
 */
static void test_scribbler_polling(void)
{
	struct nestd *d = it_start("[coalesce]\nqueue_poll_us = 1000000\n");
	struct it_bystander *by = it_bystander_new(d);
	int base_fds = it_daemon_fds(d);
	int sock = it_raw_connect(d);
	struct rawq q, q2;
	int fds[3];
	uint32_t st, tail = 0;

	it_raw_hello(sock);
	st = it_raw_alloc_st(sock, IT_ST0, 2);
	rawq_make(&q, 8, 8, 256, true);
	fds[0] = q.memfd, fds[1] = q.kick, fds[2] = q.call;
	CU_ASSERT_EQUAL_FATAL(raw_setup(sock, 8, 8, 256, fds, 3, 3), 0);
	tail = submit_good(&q, st, tail, true);
	CU_ASSERT_FALSE_FATAL(sq_flags(&q) & NESTQ_SQ_NEED_KICK);
	for (unsigned round = 0; round < 2000 && !(sq_flags(&q) & NESTQ_SQ_BROKEN); round++) {
		for (size_t i = NESTQ_HDR_BYTES; i < q.l.total; i++)
			q.base[i] = (uint8_t)(rand() & 0xff);
		atomic_store(&rq_hdr(&q)->cq_head,
			     atomic_load(&rq_hdr(&q)->cq_tail) + (rand() & 1));
		/* Within the ring (at most 7 ahead of what the daemon took): not broken by that. */
		atomic_store(&rq_hdr(&q)->sq_tail,
			     atomic_load(&rq_hdr(&q)->sq_head) + (rand() & 7));
		if (round % 500 == 0)
			it_bystander_check(by);
	}
	atomic_store(&rq_hdr(&q)->sq_tail, atomic_load(&rq_hdr(&q)->sq_head) + 1000);
	/* The garbage may have stalled it (a completion ring it thinks full): kicked, it looks. */
	kick(&q);
	for (int i = 0; i < it_timeout_ms() && !(sq_flags(&q) & NESTQ_SQ_BROKEN); i++)
		usleep(1000);
	CU_ASSERT(sq_flags(&q) & NESTQ_SQ_BROKEN);
	it_bystander_check(by);

	/* A new queue, polled; the client goes away in the middle of it. */
	rawq_make(&q2, 4, 4, 64, true);
	fds[0] = q2.memfd, fds[1] = q2.kick, fds[2] = q2.call;
	CU_ASSERT_EQUAL_FATAL(raw_setup(sock, 4, 4, 64, fds, 3, 4), 0);
	tail = submit_good(&q2, st, 0, true);
	CU_ASSERT_FALSE(sq_flags(&q2) & NESTQ_SQ_NEED_KICK);
	*sq_slot(&q2, tail) = (struct nestq_sqe){
	    .user_data = 9, .hwpt_id = st, .data_type = ST, .n = 1, .result_off = 8};
	atomic_store(&rq_hdr(&q2)->sq_tail, tail + 1);
	it_raw_close(sock);
	rawq_free(&q);
	rawq_free(&q2);
	for (int i = 0; i < it_timeout_ms() && it_daemon_fds(d) != base_fds; i++)
		usleep(1000);
	CU_ASSERT_EQUAL(it_daemon_fds(d), base_fds);
	it_bystander_check(by);
}

static struct iommu_nest_queue_stats qstats(struct iommu_nest *h)
{
	struct iommu_nest_queue_stats qs;

	CU_ASSERT_EQUAL_FATAL(iommu_nest_queue_stats(h, &qs), 0);
	return qs;
}

/*
 * The ring counters: kicks read and suppressed while polling, a
 * back-pressure stall (a completion ring of one slot the client does not
 * empty) that ends when it does, calls only to a client that sleeps.
 */
static void test_counters(void)
{
	struct nestd *d = it_start("[coalesce]\nqueue_poll_us = 1000000\n");
	struct iommu_nest *admin = it_connect(d, "admin");
	struct iommu_nest_queue_stats a, b;
	int sock = it_raw_connect(d);
	struct rawq q;
	int fds[3];
	uint32_t st, tail = 0;

	it_raw_hello(sock);
	st = it_raw_alloc_st(sock, IT_ST0, 2);
	rawq_make(&q, 4, 1, 64, true);
	fds[0] = q.memfd, fds[1] = q.kick, fds[2] = q.call;
	CU_ASSERT_EQUAL_FATAL(raw_setup(sock, 4, 1, 64, fds, 3, 3), 0);
	a = qstats(admin);
	tail = submit_good(&q, st, tail, true);
	tail = submit_good(&q, st, tail, false);
	b = qstats(admin);
	CU_ASSERT_EQUAL(b.submissions - a.submissions, 2);
	CU_ASSERT_EQUAL(b.completions - a.completions, 2);
	CU_ASSERT_EQUAL(b.kicks - a.kicks, 1);
	CU_ASSERT_EQUAL(b.kicks_suppressed - a.kicks_suppressed, 1);
	/* Nobody slept on the call eventfd. */
	CU_ASSERT_EQUAL(b.calls - a.calls, 0);
	CU_ASSERT_EQUAL(b.calls_suppressed - a.calls_suppressed, 2);
	CU_ASSERT(b.poll_passes > a.poll_passes);

	/* Two published, one completion slot not read back: the second waits. */
	for (int i = 0; i < 2; i++) {
		*sq_slot(&q, tail) = (struct nestq_sqe){
		    .user_data = tail, .hwpt_id = st, .data_type = ST, .n = 1, .result_off = 8};
		atomic_store(&rq_hdr(&q)->sq_tail, ++tail);
	}
	CU_ASSERT_FATAL(wait_cq(&q, tail - 1));
	for (int i = 0; i < it_timeout_ms() && !(sq_flags(&q) & NESTQ_SQ_STALLED); i++)
		usleep(1000);
	CU_ASSERT(sq_flags(&q) & NESTQ_SQ_STALLED);
	CU_ASSERT_EQUAL(qstats(admin).stalls - b.stalls, 1);
	CU_ASSERT_EQUAL(atomic_load(&rq_hdr(&q)->cq_tail), tail - 1);
	/* The client frees the slot and, seeing STALLED, kicks: the second completes. */
	atomic_store(&rq_hdr(&q)->cq_head, tail - 1);
	kick(&q);
	CU_ASSERT_FATAL(wait_cq(&q, tail));
	CU_ASSERT_EQUAL(cq_slot(&q, tail - 1)->status, 0);
	CU_ASSERT_FALSE(sq_flags(&q) & NESTQ_SQ_STALLED);
	atomic_store(&rq_hdr(&q)->cq_head, tail);

	/* A client asleep (NEED_CALL) gets a call. */
	a = qstats(admin);
	atomic_fetch_or(&rq_hdr(&q)->cq_flags, NESTQ_CQ_NEED_CALL);
	tail = submit_good(&q, st, tail, false);
	CU_ASSERT_EQUAL(qstats(admin).calls - a.calls, 1);
	{
		uint64_t n = 0;

		CU_ASSERT_EQUAL(read(q.call, &n, sizeof(n)), (ssize_t)sizeof(n));
		CU_ASSERT(n >= 1);
	}
	rawq_free(&q);
}

/* max_requests_per_sec holds for the queue as for the socket: the excess is EAGAIN. */
static void test_rate_limit(void)
{
	struct nestd *d = it_start("[policy]\nmax_requests_per_sec = 5\n");
	int sock = it_raw_connect(d);
	struct rawq q;
	int fds[3], again = 0;
	uint32_t st, tail = 0;

	it_raw_hello(sock);
	st = it_raw_alloc_st(sock, IT_ST0, 2);
	rawq_make(&q, 4, 4, 64, true);
	fds[0] = q.memfd, fds[1] = q.kick, fds[2] = q.call;
	CU_ASSERT_EQUAL_FATAL(raw_setup(sock, 4, 4, 64, fds, 3, 3), 0);
	for (int i = 0; i < 40; i++) {
		*sq_slot(&q, tail) = (struct nestq_sqe){
		    .user_data = tail, .hwpt_id = st, .data_type = ST, .n = 1, .result_off = 8};
		atomic_store(&rq_hdr(&q)->sq_tail, ++tail);
		kick(&q);
		CU_ASSERT_FATAL(wait_cq(&q, tail));
		CU_ASSERT(cq_slot(&q, tail - 1)->status == 0 ||
			  cq_slot(&q, tail - 1)->status == -EAGAIN);
		again += cq_slot(&q, tail - 1)->status == -EAGAIN;
		atomic_store(&rq_hdr(&q)->cq_head, tail);
	}
	/* A burst of 5 and 5 a second: most of 40 quick ones are refused. */
	CU_ASSERT(again >= 20);
	rawq_free(&q);
}

/* A library client with a queue that goes away: nothing of it stays in the daemon. */
static void test_teardown_on_disconnect(void)
{
	struct nestd *d = it_start(NULL);
	struct iommu_nest *admin = it_connect(d, "admin");
	int before = it_daemon_fds(d);

	for (int i = 0; i < 3; i++) {
		struct iommu_nest *h;
		struct iommu_nest_selftest_inv e = {.iotlb_id = 1};
		struct iommu_nest_entry_result res;
		uint32_t st;

		CU_ASSERT_EQUAL_FATAL(iommu_nest_connect(d->sock, "gone", &h), 0);
		st = it_alloc_st(h, IT_ST0, 3);
		CU_ASSERT_EQUAL_FATAL(iommu_nest_queue_open(h, 8, SPIN), 0);
		CU_ASSERT_EQUAL(iommu_nest_invalidate(h, st, ST, &e, 1, 0, &res, NULL), 0);
		CU_ASSERT_EQUAL(res.state, DONE);
		/* Socket, kick, call, and the VM context the alloc opened. */
		CU_ASSERT_EQUAL(it_daemon_fds(d), before + 3 + it_context_fds());
		iommu_nest_close(h);
		CU_ASSERT(it_wait_sessions(admin, 1));
		CU_ASSERT_EQUAL(it_daemon_fds(d), before);
	}
}

int main(int argc, char **argv)
{
	static const struct it_case cases[] = {
	    {"same_results_vtd", test_same_results_vtd},
	    {"same_results_selftest", test_same_results_selftest},
	    {"cross_batch", test_cross_batch},
	    {"async_same_results", test_async_same_results},
	    {"async_same_results_selftest", test_async_same_results_selftest},
	    {"async_order", test_async_order},
	    {"async_fd_and_overflow", test_async_fd_and_overflow},
	    {"setup_refusals", test_setup_refusals},
	    {"scribbler", test_scribbler},
	    {"teardown_on_disconnect", test_teardown_on_disconnect},
	    {"poll_window", test_poll_window},
	    {"poll_window_from_answer", test_poll_window_from_answer},
	    {"queue_spin", test_queue_spin},
	    {"poll_serves_socket", test_poll_serves_socket},
	    {"counters", test_counters},
	    {"scribbler_polling", test_scribbler_polling},
	    {"rate_limit", test_rate_limit},
	    {NULL, NULL},
	};

	return it_main(argc, argv, "queue", cases);
}
