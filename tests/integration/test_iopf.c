/* SPDX-License-Identifier: MIT */
/*
 * Fault delivery (IOPF) and the event channel: a nested HWPT allocated
 * with IOMMU_NEST_ALLOC_FAULT on a mock device gets the daemon's fault
 * queue; IOMMU_TEST_OP_TRIGGER_IOPF on the device reaches the owner's
 * event handler with the kernel's record; the owner's PageResponse
 * reaches the kernel (observable: an answered cookie is free again, so
 * the next fault gets it back; an unanswered one is not); a bystander
 * gets nothing and cannot answer (-ENOENT); a client that does not read
 * loses events, counted, while the daemon keeps serving others.
 *
 * Runs on the sim and, in the kernel tier, on the iommufd backend with
 * the selftest's mock devices: the same answers from both.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>

#include "harness.h"

#define FAULT_ADDR 0xdeadb000ULL
#define FLOOD	   2000u /* far more than a socket buffer holds */

struct seen {
	uint32_t n;    /* events handed to the handler */
	uint64_t lost; /* sum of their lost counters */
	uint64_t last_seq;
	bool seq_ok; /* every seq is the previous + its lost + 1 */
	struct iommu_nest_event last;
};

static void on_event(struct iommu_nest *h, const struct iommu_nest_event *ev, void *arg)
{
	struct seen *s = arg;

	(void)h;
	if (ev->seq != s->last_seq + ev->lost + 1)
		s->seq_ok = false;
	s->n++;
	s->lost += ev->lost;
	s->last_seq = ev->seq;
	s->last = *ev;
}

static void seen_init(struct seen *s)
{
	memset(s, 0, sizeof(*s));
	s->seq_ok = true;
}

/* Waits (bounded) until the handler has seen want events in all. */
static bool wait_events(struct iommu_nest *h, struct seen *s, uint32_t want)
{
	struct pollfd p = {.fd = iommu_nest_fd(h), .events = POLLIN};

	while (s->n < want) {
		if (poll(&p, 1, it_timeout_ms()) != 1)
			return false;
		if (iommu_nest_process(h) < 0)
			return false;
	}
	return true;
}

/* A selftest HWPT with fault delivery on dev, attached. */
static uint32_t alloc_fault_hwpt(struct iommu_nest *h, const char *dev)
{
	uint32_t iotlb = 0, id = 0;

	CU_ASSERT_EQUAL_FATAL(
	    iommu_nest_alloc(h, dev, IOMMU_NEST_HWPT_DATA_SELFTEST, IOMMU_NEST_ALLOC_FAULT,
			     IOMMU_NEST_HWPT_DATA_SELFTEST, &iotlb, sizeof(iotlb), &id),
	    0);
	CU_ASSERT_EQUAL_FATAL(iommu_nest_attach(h, dev, id), 0);
	return id;
}

static int trigger(struct iommu_nest *h, const char *dev, uint32_t grpid, uint32_t count)
{
	struct iommu_nest_iopf t = {.pasid = 1,
				    .grpid = grpid,
				    .perm = IOMMU_NEST_PGFAULT_PERM_READ |
					    IOMMU_NEST_PGFAULT_PERM_WRITE,
				    .addr = FAULT_ADDR};

	return iommu_nest_trigger_iopf(h, dev, &t, count);
}

static int respond(struct iommu_nest *h, uint32_t hwpt, const char *dev,
		   const struct iommu_nest_page_fault *f, uint32_t code)
{
	struct iommu_nest_page_response r = {.grpid = f->grpid, .cookie = f->cookie, .code = code};

	return iommu_nest_page_response(h, hwpt, dev, &r);
}

static void test_deliver_and_respond(void)
{
	struct nestd *d = it_start(NULL);
	struct iommu_nest *h = it_connect(d, "iopf-owner");
	struct iommu_nest_page_fault f1, f2, f3;
	struct seen s;
	uint32_t hwpt;

	IT_REQUIRE_DEVICE(h, IT_ST0);
	seen_init(&s);
	CU_ASSERT_EQUAL(iommu_nest_set_event_handler(h, on_event, &s), 0);
	hwpt = alloc_fault_hwpt(h, IT_ST0);
	CU_ASSERT_EQUAL_FATAL(trigger(h, IT_ST0, 2, 1), 0);
	CU_ASSERT_FATAL(wait_events(h, &s, 1));
	f1 = s.last.fault;
	CU_ASSERT_EQUAL(s.last.kind, IOMMU_NEST_EVENT_FAULT);
	CU_ASSERT_EQUAL(s.last.seq, 1);
	CU_ASSERT_EQUAL(s.last.lost, 0);
	CU_ASSERT_EQUAL(f1.flags,
			IOMMU_NEST_PGFAULT_FLAGS_LAST_PAGE | IOMMU_NEST_PGFAULT_FLAGS_PASID_VALID);
	CU_ASSERT_EQUAL(f1.pasid, 1);
	CU_ASSERT_EQUAL(f1.grpid, 2);
	CU_ASSERT_EQUAL(f1.perm, IOMMU_NEST_PGFAULT_PERM_READ | IOMMU_NEST_PGFAULT_PERM_WRITE);
	CU_ASSERT_EQUAL(f1.addr, FAULT_ADDR);
	CU_ASSERT_EQUAL(f1.length, 0);
	CU_ASSERT_EQUAL(f1.hwpt_id, hwpt);
	CU_ASSERT_STRING_EQUAL(f1.device, IT_ST0);
	CU_ASSERT_NOT_EQUAL(f1.cookie, 0);
	CU_ASSERT_NOT_EQUAL(f1.dev_id, 0);

	/* Unanswered, a cookie stays taken: the next group gets another. */
	CU_ASSERT_EQUAL_FATAL(trigger(h, IT_ST0, 3, 1), 0);
	CU_ASSERT_FATAL(wait_events(h, &s, 2));
	f2 = s.last.fault;
	CU_ASSERT_EQUAL(s.last.seq, 2);
	CU_ASSERT_EQUAL(f2.grpid, 3);
	CU_ASSERT_NOT_EQUAL(f2.cookie, f1.cookie);

	/* Answered by HWPT and by device; a second answer is refused by the daemon. */
	CU_ASSERT_EQUAL(respond(h, hwpt, NULL, &f1, IOMMU_NEST_PAGE_RESP_SUCCESS), 0);
	CU_ASSERT_EQUAL(respond(h, hwpt, NULL, &f1, IOMMU_NEST_PAGE_RESP_SUCCESS), -ENOENT);
	CU_ASSERT_EQUAL(respond(h, 0, IT_ST0, &f2, IOMMU_NEST_PAGE_RESP_INVALID), 0);

	/* The kernel freed both: its lowest free cookie is f1's again. */
	CU_ASSERT_EQUAL_FATAL(trigger(h, IT_ST0, 4, 1), 0);
	CU_ASSERT_FATAL(wait_events(h, &s, 3));
	f3 = s.last.fault;
	CU_ASSERT_EQUAL(f3.cookie, f1.cookie < f2.cookie ? f1.cookie : f2.cookie);
	CU_ASSERT_EQUAL(respond(h, hwpt, IT_ST0, &f3, IOMMU_NEST_PAGE_RESP_SUCCESS), 0);
	CU_ASSERT(s.seq_ok);
	it_stop_ok(d);
}

/* A fault on a HWPT without fault delivery goes nowhere; the op still succeeds. */
static void test_no_fault_hwpt(void)
{
	struct nestd *d = it_start(NULL);
	struct iommu_nest *h = it_connect(d, "iopf-plain");
	struct seen s;
	uint32_t plain, hwpt;

	IT_REQUIRE_DEVICE(h, IT_ST0);
	IT_REQUIRE_DEVICE(h, IT_ST1);
	seen_init(&s);
	iommu_nest_set_event_handler(h, on_event, &s);
	/* The client's fault queue exists (st1), but st0's HWPT does not use it. */
	hwpt = alloc_fault_hwpt(h, IT_ST1);
	plain = it_alloc_st(h, IT_ST0, 0);
	CU_ASSERT_EQUAL_FATAL(iommu_nest_attach(h, IT_ST0, plain), 0);
	CU_ASSERT_EQUAL(trigger(h, IT_ST0, 1, 1), 0);
	/* A fault on st1 after it: the only event to arrive, seq 1. */
	CU_ASSERT_EQUAL(trigger(h, IT_ST1, 9, 1), 0);
	CU_ASSERT_FATAL(wait_events(h, &s, 1));
	CU_ASSERT_EQUAL(s.last.seq, 1);
	CU_ASSERT_EQUAL(s.last.fault.grpid, 9);
	CU_ASSERT_STRING_EQUAL(s.last.fault.device, IT_ST1);
	CU_ASSERT_EQUAL(s.last.fault.hwpt_id, hwpt);
	CU_ASSERT_EQUAL(respond(h, hwpt, NULL, &s.last.fault, IOMMU_NEST_PAGE_RESP_SUCCESS), 0);
	it_stop_ok(d);
}

static void test_bystander(void)
{
	struct nestd *d = it_start(NULL);
	struct iommu_nest *a = it_connect(d, "iopf-a");
	struct iommu_nest *b = it_connect(d, "iopf-b");
	struct iommu_nest_page_fault f;
	struct seen sa, sb;
	uint32_t ha, hb;

	IT_REQUIRE_DEVICE(a, IT_ST0);
	IT_REQUIRE_DEVICE(a, IT_ST1);
	seen_init(&sa);
	seen_init(&sb);
	iommu_nest_set_event_handler(a, on_event, &sa);
	iommu_nest_set_event_handler(b, on_event, &sb);
	ha = alloc_fault_hwpt(a, IT_ST0);
	hb = alloc_fault_hwpt(b, IT_ST1);
	/* B may not even make A's device fault. */
	CU_ASSERT_EQUAL(trigger(b, IT_ST0, 1, 1), -EBUSY);
	CU_ASSERT_EQUAL_FATAL(trigger(a, IT_ST0, 5, 1), 0);
	CU_ASSERT_FATAL(wait_events(a, &sa, 1));
	f = sa.last.fault;
	/* B's own fault, so that B's channel demonstrably works. */
	CU_ASSERT_EQUAL_FATAL(trigger(b, IT_ST1, 6, 1), 0);
	CU_ASSERT_FATAL(wait_events(b, &sb, 1));
	CU_ASSERT_EQUAL(sb.n, 1);
	CU_ASSERT_EQUAL(sb.last.fault.grpid, 6);
	CU_ASSERT_STRING_EQUAL(sb.last.fault.device, IT_ST1);
	/* A's fault, answered by B any way it can name it: -ENOENT. */
	CU_ASSERT_EQUAL(respond(b, ha, NULL, &f, IOMMU_NEST_PAGE_RESP_SUCCESS), -ENOENT);
	CU_ASSERT_EQUAL(respond(b, 0, IT_ST0, &f, IOMMU_NEST_PAGE_RESP_SUCCESS), -ENOENT);
	/* On its own HWPT: a cookie of its own queue may be equal, the group is not. */
	CU_ASSERT_EQUAL(respond(b, hb, NULL, &f, IOMMU_NEST_PAGE_RESP_SUCCESS), -ENOENT);
	/* A's answer still goes through: B's attempts took nothing. */
	CU_ASSERT_EQUAL(respond(a, ha, NULL, &f, IOMMU_NEST_PAGE_RESP_SUCCESS), 0);
	CU_ASSERT_EQUAL(respond(b, hb, NULL, &sb.last.fault, IOMMU_NEST_PAGE_RESP_SUCCESS), 0);
	CU_ASSERT_EQUAL(sa.n, 1);
	CU_ASSERT_EQUAL(sb.n, 1);
	it_stop_ok(d);
}

static void test_malformed(void)
{
	struct nestd *d = it_start(NULL);
	struct iommu_nest *h = it_connect(d, "iopf-bad");
	struct iommu_nest_page_fault none = {.cookie = 1};
	struct seen s;
	uint32_t hwpt;
	int fd;
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__PageResponse m = IOMMU_NEST__PAGE_RESPONSE__INIT;
	IommuNest__Reply *rep;

	IT_REQUIRE_DEVICE(h, IT_ST0);
	seen_init(&s);
	iommu_nest_set_event_handler(h, on_event, &s);
	/* No fault queue yet: nothing was delivered, nothing can be answered. */
	CU_ASSERT_EQUAL(respond(h, 0, IT_ST0, &none, IOMMU_NEST_PAGE_RESP_SUCCESS), -ENOENT);
	CU_ASSERT_EQUAL(respond(h, 0, NULL, &none, IOMMU_NEST_PAGE_RESP_SUCCESS), -EINVAL);
	CU_ASSERT_EQUAL(respond(h, 77, NULL, &none, IOMMU_NEST_PAGE_RESP_SUCCESS), -ENOENT);
	CU_ASSERT_EQUAL(iommu_nest_page_response(h, 0, IT_ST0, NULL), -EINVAL);
	CU_ASSERT_EQUAL(trigger(h, "nosuch", 1, 1), -ENODEV);
	hwpt = alloc_fault_hwpt(h, IT_ST0);
	CU_ASSERT_EQUAL_FATAL(trigger(h, IT_ST0, 7, 1), 0);
	CU_ASSERT_FATAL(wait_events(h, &s, 1));
	/* The kernel's answer to a code it does not know; the fault stays answerable. */
	CU_ASSERT_EQUAL(respond(h, hwpt, NULL, &s.last.fault, 7), -EINVAL);
	/* Another group id than the one delivered is not that fault. */
	{
		struct iommu_nest_page_fault g = s.last.fault;

		g.grpid++;
		CU_ASSERT_EQUAL(respond(h, hwpt, NULL, &g, IOMMU_NEST_PAGE_RESP_SUCCESS), -ENOENT);
	}
	CU_ASSERT_EQUAL(respond(h, hwpt, NULL, &s.last.fault, IOMMU_NEST_PAGE_RESP_SUCCESS), 0);
	CU_ASSERT_EQUAL(trigger(h, IT_ST0, 1, 65537), -EINVAL);

	/* Request id 0 belongs to the event channel: refused. */
	fd = it_raw_connect(d);
	it_raw_hello(fd);
	m.device = IT_ST0;
	req.body_case = IOMMU_NEST__REQUEST__BODY_PAGE_RESPONSE;
	req.page_response = &m;
	rep = it_raw_call(fd, &req, 0);
	CU_ASSERT_EQUAL(rep->id, 0);
	CU_ASSERT_EQUAL(rep->status, -EINVAL);
	CU_ASSERT_NOT_EQUAL(rep->body_case, IOMMU_NEST__REPLY__BODY_EVENT);
	iommu_nest__reply__free_unpacked(rep, NULL);
	it_stop_ok(d);
}

/*
 * A client that does not read: its events past [policy] max_events are
 * dropped and counted, the daemon answers for it, and serves others at
 * once. Every event it does get accounts for all before it: seq is the
 * previous seq + lost + 1, and the sum ends at the number of faults.
 */
static void test_lost(void)
{
	struct nestd *d = it_start("[policy]\nmax_events = 8\n");
	struct iommu_nest *a = it_connect(d, "iopf-sleeper");
	struct iommu_nest *b = it_connect(d, "iopf-other");
	struct iommu_nest_hw_info info;
	struct seen s;
	uint64_t total = FLOOD;
	uint32_t hwpt;

	IT_REQUIRE_DEVICE(a, IT_ST0);
	IT_REQUIRE_DEVICE(a, IT_ST1);
	seen_init(&s);
	iommu_nest_set_event_handler(a, on_event, &s);
	hwpt = alloc_fault_hwpt(a, IT_ST0);
	CU_ASSERT_EQUAL_FATAL(trigger(a, IT_ST0, 1, FLOOD), 0);
	/* A reads nothing now; B is answered meanwhile. */
	for (int i = 0; i < 20; i++)
		CU_ASSERT_EQUAL_FATAL(iommu_nest_get_hw_info(b, IT_ST1, &info), 0);
	/*
	 * Now A reads. Until it has seen the last fault's seq, it asks
	 * again; when the tail itself was dropped, one more fault (its
	 * seq is the new total) will come through an empty queue.
	 */
	for (int round = 0; round < 10000 && s.last_seq != total; round++) {
		uint64_t before = s.last_seq;

		CU_ASSERT_EQUAL_FATAL(iommu_nest_get_hw_info(a, IT_ST0, &info), 0);
		iommu_nest_process(a);
		if (s.last_seq == before && s.last_seq != total) {
			CU_ASSERT_EQUAL_FATAL(trigger(a, IT_ST0, 2, 1), 0);
			total++;
		}
	}
	CU_ASSERT_EQUAL(s.last_seq, total);
	CU_ASSERT(s.seq_ok);
	CU_ASSERT_EQUAL(s.n + s.lost, total);
	CU_ASSERT(s.lost > 0);
	CU_ASSERT(s.n >= 8);
	/* The dropped ones were answered; the last one delivered still is A's to answer. */
	CU_ASSERT_EQUAL(respond(a, hwpt, NULL, &s.last.fault, IOMMU_NEST_PAGE_RESP_SUCCESS), 0);
	it_stop_ok(d);
}

/*
 * Leaving the HWPT answers the device's pending groups (the kernel's
 * auto response): the delivered cookie is unknown to the kernel from then
 * on, which the daemon passes through, once; and the device's next fault
 * on a HWPT without a fault queue reaches nobody.
 */
static void test_detach_answers(void)
{
	struct nestd *d = it_start(NULL);
	struct iommu_nest *h = it_connect(d, "iopf-detach");
	struct iommu_nest_page_fault f;
	struct seen s;
	uint32_t hwpt;

	IT_REQUIRE_DEVICE(h, IT_ST0);
	seen_init(&s);
	iommu_nest_set_event_handler(h, on_event, &s);
	hwpt = alloc_fault_hwpt(h, IT_ST0);
	CU_ASSERT_EQUAL_FATAL(trigger(h, IT_ST0, 4, 1), 0);
	CU_ASSERT_FATAL(wait_events(h, &s, 1));
	f = s.last.fault;
	CU_ASSERT_EQUAL_FATAL(iommu_nest_detach(h, IT_ST0), 0);
	CU_ASSERT_EQUAL(respond(h, hwpt, NULL, &f, IOMMU_NEST_PAGE_RESP_SUCCESS), -EINVAL);
	CU_ASSERT_EQUAL(respond(h, hwpt, NULL, &f, IOMMU_NEST_PAGE_RESP_SUCCESS), -ENOENT);
	CU_ASSERT_EQUAL(trigger(h, IT_ST0, 5, 1), 0);
	/* Back on it: delivery resumes, with the freed cookie. */
	CU_ASSERT_EQUAL_FATAL(iommu_nest_attach(h, IT_ST0, hwpt), 0);
	CU_ASSERT_EQUAL_FATAL(trigger(h, IT_ST0, 6, 1), 0);
	CU_ASSERT_FATAL(wait_events(h, &s, 2));
	CU_ASSERT_EQUAL(s.n, 2);
	CU_ASSERT_EQUAL(s.last.seq, 2);
	CU_ASSERT_EQUAL(s.last.fault.grpid, 6);
	CU_ASSERT_EQUAL(s.last.fault.cookie, f.cookie);
	CU_ASSERT_EQUAL(respond(h, 0, IT_ST0, &s.last.fault, IOMMU_NEST_PAGE_RESP_SUCCESS), 0);
	/*
	 * Destroying a fault-capable HWPT with a pending fault is fine: the
	 * kernel answers it, and the daemon forgets it.
	 */
	CU_ASSERT_EQUAL_FATAL(trigger(h, IT_ST0, 7, 1), 0);
	CU_ASSERT_FATAL(wait_events(h, &s, 3));
	CU_ASSERT_EQUAL_FATAL(iommu_nest_detach(h, IT_ST0), 0);
	CU_ASSERT_EQUAL(iommu_nest_destroy(h, hwpt), 0);
	CU_ASSERT_EQUAL(respond(h, 0, IT_ST0, &s.last.fault, IOMMU_NEST_PAGE_RESP_SUCCESS),
			-ENOENT);
	it_stop_ok(d);
}

static const struct it_case cases[] = {
    {"deliver_and_respond", test_deliver_and_respond},
    {"no_fault_hwpt", test_no_fault_hwpt},
    {"bystander", test_bystander},
    {"malformed", test_malformed},
    {"detach_answers", test_detach_answers},
    {"lost", test_lost},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
	return it_main(argc, argv, "iopf", cases);
}
