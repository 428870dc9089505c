/* SPDX-License-Identifier: MIT */
/*
 * vEVENTQs through the socket, with the 7.x kernel's rules (eventq.c
 * iommufd_veventq_alloc(), driver.c iommufd_viommu_report_event(), the
 * mock's IOMMU_TEST_OP_TRIGGER_VEVENT): allocation and destroy rules,
 * records in order with consecutive sequence numbers, an overflow of the
 * depth giving the LOST_EVENTS header and then the rest, a client that
 * does not read (bounded by [policy] max_events, lost counted, others
 * served), ownership, teardown at disconnect. One check per rule, with the
 * exact errno; tests/kernel/ktest_veventq.c makes the same checks on the
 * kernel directly. Runs on the sim (sim_kernel = 7.0) and, in the kernel
 * tiers, on the kernel's mock devices; 6.12 (and the sim under its rules)
 * has no vEVENTQ: -ENOTTY.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>

#include "harness.h"

#define K7_CONFIG "[daemon]\nsim_kernel = 7.0\n"
#define ST_Q	  IOMMU_NEST_VEVENTQ_TYPE_SELFTEST
#define MAXD	  IOMMU_NEST_VEVENTQ_MAX_DEPTH
#define OBJ_Q	  IOMMU_NEST_OBJECT_VEVENTQ
#define FLOOD	  2000u /* far more than a socket buffer holds */

struct seen {
	uint32_t n;    /* vEVENTs handed to the handler */
	uint64_t lost; /* the sum of their (daemon-side) lost counters */
	uint64_t last_seq;
	bool seq_ok;			 /* every seq is the previous + its lost + 1 */
	bool kseq_ok;			 /* every kernel sequence is the previous + its lost + 1 */
	bool other;			 /* an event of another kind came */
	struct iommu_nest_vevent ev[16]; /* the first ones */
};

static void on_event(struct iommu_nest *h, const struct iommu_nest_event *ev, void *arg)
{
	struct seen *s = arg;

	(void)h;
	if (ev->kind != IOMMU_NEST_EVENT_VEVENT) {
		s->other = true;
		return;
	}
	if (ev->seq != s->last_seq + ev->lost + 1)
		s->seq_ok = false;
	/* The kernel drops nothing in the flood (depth holds it): its gaps are the daemon's. */
	if (s->n && ev->vevent.sequence != s->ev[0].sequence + s->last_seq + ev->lost)
		s->kseq_ok = false;
	if (s->n < 16)
		s->ev[s->n] = ev->vevent;
	s->n++;
	s->lost += ev->lost;
	s->last_seq = ev->seq;
}

static void seen_init(struct seen *s)
{
	memset(s, 0, sizeof(*s));
	s->seq_ok = s->kseq_ok = true;
}

/* Waits (bounded) until the handler has seen want vEVENTs in all. */
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

/* A daemon whose kernel (or sim) follows 7.x rules, with one client; false: skipped. */
struct fx {
	struct nestd *d;
	struct iommu_nest *h;
	uint32_t viommu;
};

static bool fx_open(struct fx *f, const char *config, const char *name)
{
	f->d = it_start(config);
	f->h = it_connect(f->d, name);
	if (!it_kernel7_rules("7.0") || !it_has_device(f->h, IT_ST0) ||
	    !it_has_device(f->h, IT_ST1)) {
		it_stop_ok(f->d);
		return false;
	}
	f->viommu = 0;
	CU_ASSERT_EQUAL_FATAL(
	    iommu_nest_alloc_viommu(f->h, IT_ST0, IOMMU_NEST_VIOMMU_TYPE_SELFTEST, 0, &f->viommu),
	    0);
	return true;
}

static uint32_t veventq_on(struct iommu_nest *h, uint32_t viommu, uint32_t depth)
{
	uint32_t id = 0;

	CU_ASSERT_EQUAL_FATAL(iommu_nest_alloc_veventq(h, viommu, ST_Q, depth, &id), 0);
	CU_ASSERT(id != 0);
	return id;
}

/*
 * What IOMMU_TEST_OP_TRIGGER_VEVENT needs: the device's vDEVICE (virt_id)
 * on the vIOMMU and the device attached to a nested HWPT there.
 */
static void attach_through(struct iommu_nest *h, uint32_t viommu, const char *dev, uint64_t virt_id,
			   uint32_t *vdev, uint32_t *hwpt)
{
	uint32_t iotlb = 0;

	CU_ASSERT_EQUAL_FATAL(iommu_nest_alloc_vdevice(h, viommu, dev, virt_id, vdev), 0);
	CU_ASSERT_EQUAL_FATAL(
	    iommu_nest_alloc_on_viommu(h, dev, viommu, IOMMU_NEST_HWPT_DATA_SELFTEST, 0,
				       IOMMU_NEST_HWPT_DATA_SELFTEST, &iotlb, sizeof(iotlb), hwpt),
	    0);
	CU_ASSERT_EQUAL_FATAL(iommu_nest_attach(h, dev, *hwpt), 0);
}

static uint32_t virt_id_of(const struct iommu_nest_vevent *v)
{
	uint32_t id;

	memcpy(&id, v->data, sizeof(id));
	return id;
}

/* 6.12 has no IOMMU_VEVENTQ_ALLOC: -ENOTTY with the reason, on the kernel and the sim alike. */
static void test_no_veventq_on_6_12(void)
{
	struct nestd *d = it_start(NULL);
	struct iommu_nest *h = it_connect(d, "veventq-6.12");
	uint32_t id = 0;

	if (it_kernel7_rules(NULL)) {
		it_stop_ok(d);
		IT_SKIP("the running kernel has vEVENTQ objects");
	}
	CU_ASSERT_EQUAL(iommu_nest_alloc_veventq(h, 1, ST_Q, 2, &id), -ENOTTY);
	CU_ASSERT(strstr(iommu_nest_last_error(h), "6.14") != NULL);
	it_stop_ok(d);
}

/* iommufd_veventq_alloc(): type DEFAULT, the depth's bounds, one per type, the vIOMMU. */
static void test_alloc_rules(void)
{
	struct fx f;
	uint32_t q, id = 0;

	if (!fx_open(&f, K7_CONFIG, "veventq-alloc"))
		IT_SKIP("needs 7.x rules and the mock devices st0, st1");
	CU_ASSERT_EQUAL(iommu_nest_alloc_veventq(f.h, f.viommu, 0, 2, &id), -EOPNOTSUPP);
	CU_ASSERT_EQUAL(iommu_nest_alloc_veventq(f.h, f.viommu, ST_Q, 0, &id), -EINVAL);
	CU_ASSERT_EQUAL(iommu_nest_alloc_veventq(f.h, f.viommu, ST_Q, MAXD + 1, &id), -EINVAL);
	q = veventq_on(f.h, f.viommu, MAXD);
	CU_ASSERT_EQUAL(iommu_nest_destroy_object(f.h, OBJ_Q, q), 0);
	q = veventq_on(f.h, f.viommu, 2);
	CU_ASSERT_EQUAL(iommu_nest_alloc_veventq(f.h, f.viommu, ST_Q, 2, &id), -EEXIST);
	/* One per type: the core does not ask the driver, an SMMUv3 queue on the mock is taken. */
	CU_ASSERT_EQUAL(
	    iommu_nest_alloc_veventq(f.h, f.viommu, IOMMU_NEST_VEVENTQ_TYPE_ARM_SMMUV3, 2, &id), 0);
	/* No such vIOMMU (a vEVENTQ's id, an unknown one). */
	CU_ASSERT_EQUAL(iommu_nest_alloc_veventq(f.h, q, ST_Q, 2, &id), -ENOENT);
	CU_ASSERT_EQUAL(iommu_nest_alloc_veventq(f.h, f.viommu + 1000, ST_Q, 2, &id), -ENOENT);
	/* The daemon's own rule: a type whose records it cannot parse (the kernel takes it). */
	CU_ASSERT_EQUAL(iommu_nest_alloc_veventq(f.h, f.viommu, 7, 2, &id), -EOPNOTSUPP);
	it_stop_ok(f.d);
}

/* The mock's trigger: its vDEVICE and attachment first, then the vIOMMU's selftest queue. */
static void test_trigger_rules(void)
{
	struct fx f;
	uint32_t vdev, hwpt;

	if (!fx_open(&f, K7_CONFIG, "veventq-trigger"))
		IT_SKIP("needs 7.x rules and the mock devices st0, st1");
	/* Not attached through a vIOMMU: mdev->viommu is NULL. */
	CU_ASSERT_EQUAL(iommu_nest_trigger_vevent(f.h, IT_ST0, 1), -ENOENT);
	attach_through(f.h, f.viommu, IT_ST0, 0x99, &vdev, &hwpt);
	/* No selftest vEVENTQ on the vIOMMU (iommufd_viommu_report_event()). */
	CU_ASSERT_EQUAL(iommu_nest_trigger_vevent(f.h, IT_ST0, 1), -EOPNOTSUPP);
	veventq_on(f.h, f.viommu, 2);
	CU_ASSERT_EQUAL(iommu_nest_trigger_vevent(f.h, IT_ST0, 1), 0);
	/* Back on the nest parent: no vIOMMU behind the device any more. */
	CU_ASSERT_EQUAL(iommu_nest_detach(f.h, IT_ST0), 0);
	CU_ASSERT_EQUAL(iommu_nest_trigger_vevent(f.h, IT_ST0, 1), -ENOENT);
	it_stop_ok(f.d);
}

/* Records in order, each with the next sequence number, the vDEVICE's virt_id as data. */
static void test_in_order(void)
{
	struct fx f;
	struct seen s;
	uint32_t q, vdev, hwpt;

	if (!fx_open(&f, K7_CONFIG, "veventq-order"))
		IT_SKIP("needs 7.x rules and the mock devices st0, st1");
	seen_init(&s);
	iommu_nest_set_event_handler(f.h, on_event, &s);
	q = veventq_on(f.h, f.viommu, 8);
	attach_through(f.h, f.viommu, IT_ST0, 0x99, &vdev, &hwpt);
	CU_ASSERT_EQUAL_FATAL(iommu_nest_trigger_vevent(f.h, IT_ST0, 3), 0);
	CU_ASSERT_FATAL(wait_events(f.h, &s, 3));
	for (uint32_t i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(s.ev[i].sequence, i);
		CU_ASSERT_EQUAL(s.ev[i].flags, 0);
		CU_ASSERT_EQUAL(s.ev[i].data_len, 4);
		CU_ASSERT_EQUAL(virt_id_of(&s.ev[i]), 0x99);
		CU_ASSERT_EQUAL(s.ev[i].viommu_id, f.viommu);
		CU_ASSERT_EQUAL(s.ev[i].veventq_id, q);
		CU_ASSERT_EQUAL(s.ev[i].type, ST_Q);
	}
	CU_ASSERT(s.seq_ok);
	CU_ASSERT_EQUAL(s.lost, 0);
	/* Another vDEVICE: its virt_id, and the queue's sequence goes on. */
	CU_ASSERT_EQUAL(iommu_nest_detach(f.h, IT_ST0), 0);
	CU_ASSERT_EQUAL(iommu_nest_destroy_object(f.h, IOMMU_NEST_OBJECT_VDEVICE, vdev), 0);
	CU_ASSERT_EQUAL_FATAL(iommu_nest_alloc_vdevice(f.h, f.viommu, IT_ST0, 0x88, &vdev), 0);
	CU_ASSERT_EQUAL_FATAL(iommu_nest_attach(f.h, IT_ST0, hwpt), 0);
	CU_ASSERT_EQUAL_FATAL(iommu_nest_trigger_vevent(f.h, IT_ST0, 1), 0);
	CU_ASSERT_FATAL(wait_events(f.h, &s, 4));
	CU_ASSERT_EQUAL(s.ev[3].sequence, 3);
	CU_ASSERT_EQUAL(virt_id_of(&s.ev[3]), 0x88);
	CU_ASSERT(!s.other);
	it_stop_ok(f.d);
}

/*
 * Past depth the kernel keeps the LOST_EVENTS header at the tail, with the
 * latest sequence number; the next record replaces it. depth 2, five
 * triggers in one request (the daemon reads in its loop, not meanwhile):
 * records 0 and 1, the header with 4; then record 5.
 */
static void test_overflow(void)
{
	struct fx f;
	struct seen s;
	uint32_t vdev, hwpt;

	if (!fx_open(&f, K7_CONFIG, "veventq-overflow"))
		IT_SKIP("needs 7.x rules and the mock devices st0, st1");
	seen_init(&s);
	iommu_nest_set_event_handler(f.h, on_event, &s);
	veventq_on(f.h, f.viommu, 2);
	attach_through(f.h, f.viommu, IT_ST0, 0x77, &vdev, &hwpt);
	CU_ASSERT_EQUAL_FATAL(iommu_nest_trigger_vevent(f.h, IT_ST0, 5), 0);
	CU_ASSERT_FATAL(wait_events(f.h, &s, 3));
	CU_ASSERT_EQUAL(s.ev[0].sequence, 0);
	CU_ASSERT_EQUAL(s.ev[1].sequence, 1);
	CU_ASSERT_EQUAL(s.ev[0].flags | s.ev[1].flags, 0);
	CU_ASSERT_EQUAL(virt_id_of(&s.ev[1]), 0x77);
	CU_ASSERT_EQUAL(s.ev[2].flags, IOMMU_NEST_VEVENT_FLAG_LOST_EVENTS);
	CU_ASSERT_EQUAL(s.ev[2].sequence, 4);
	CU_ASSERT_EQUAL(s.ev[2].data_len, 0);
	/* The overflow is gone once read: the next record is a normal one. */
	CU_ASSERT_EQUAL_FATAL(iommu_nest_trigger_vevent(f.h, IT_ST0, 1), 0);
	CU_ASSERT_FATAL(wait_events(f.h, &s, 4));
	CU_ASSERT_EQUAL(s.ev[3].flags, 0);
	CU_ASSERT_EQUAL(s.ev[3].sequence, 5);
	CU_ASSERT_EQUAL(virt_id_of(&s.ev[3]), 0x77);
	/* The daemon dropped nothing: the kernel's losses are in the records, not in `lost`. */
	CU_ASSERT_EQUAL(s.lost, 0);
	CU_ASSERT(s.seq_ok);
	it_stop_ok(f.d);
}

/*
 * A client that does not read: the daemon queues at most max_events for
 * it and counts the rest lost, while another client is served at once;
 * every event it does get accounts for all before it (seq = previous +
 * lost + 1), and so does the kernel's sequence (the kernel's depth held
 * the flood: its gaps are the daemon's drops).
 */
static void test_sleeper(void)
{
	struct fx f;
	struct iommu_nest *b;
	struct iommu_nest_hw_info info;
	struct seen s;
	uint64_t total = FLOOD;
	uint32_t vdev, hwpt;

	if (!fx_open(&f, "[daemon]\nsim_kernel = 7.0\n[policy]\nmax_events = 8\n",
		     "veventq-sleeper"))
		IT_SKIP("needs 7.x rules and the mock devices st0, st1");
	b = it_connect(f.d, "veventq-other");
	seen_init(&s);
	iommu_nest_set_event_handler(f.h, on_event, &s);
	veventq_on(f.h, f.viommu, 4096);
	attach_through(f.h, f.viommu, IT_ST0, 0x66, &vdev, &hwpt);
	CU_ASSERT_EQUAL_FATAL(iommu_nest_trigger_vevent(f.h, IT_ST0, FLOOD), 0);
	/* A reads nothing now; B is answered meanwhile. */
	for (int i = 0; i < 20; i++)
		CU_ASSERT_EQUAL_FATAL(iommu_nest_get_hw_info(b, IT_ST1, &info), 0);
	/* Now A reads, until the last record's seq; a dropped tail needs one more record. */
	for (int round = 0; round < 10000 && s.last_seq != total; round++) {
		uint64_t before = s.last_seq;

		CU_ASSERT_EQUAL_FATAL(iommu_nest_get_hw_info(f.h, IT_ST0, &info), 0);
		iommu_nest_process(f.h);
		if (s.last_seq == before && s.last_seq != total) {
			CU_ASSERT_EQUAL_FATAL(iommu_nest_trigger_vevent(f.h, IT_ST0, 1), 0);
			total++;
		}
	}
	CU_ASSERT_EQUAL(s.last_seq, total);
	CU_ASSERT(s.seq_ok);
	CU_ASSERT(s.kseq_ok);
	CU_ASSERT_EQUAL(s.n + s.lost, total);
	CU_ASSERT(s.lost > 0);
	CU_ASSERT(s.n >= 8);
	it_stop_ok(f.d);
}

/* Another client's vIOMMU and vEVENTQ are out of reach: -ENOENT, as if they did not exist. */
static void test_ownership(void)
{
	struct fx f;
	struct iommu_nest *other;
	uint32_t q, id = 0;

	if (!fx_open(&f, K7_CONFIG, "veventq-owner"))
		IT_SKIP("needs 7.x rules and the mock devices st0, st1");
	q = veventq_on(f.h, f.viommu, 2);
	other = it_connect(f.d, "veventq-other");
	CU_ASSERT_EQUAL(
	    iommu_nest_alloc_veventq(other, f.viommu, IOMMU_NEST_VEVENTQ_TYPE_ARM_SMMUV3, 2, &id),
	    -ENOENT);
	CU_ASSERT_EQUAL(iommu_nest_destroy_object(other, OBJ_Q, q), -ENOENT);
	it_close(other);
	CU_ASSERT_EQUAL(iommu_nest_destroy_object(f.h, OBJ_Q, q), 0);
	it_stop_ok(f.d);
}

/* IOMMU_DESTROY: the vEVENTQ holds its vIOMMU (-EBUSY); kinds are not interchangeable. */
static void test_destroy_rules(void)
{
	struct fx f;
	uint32_t q, vdev, hwpt;

	if (!fx_open(&f, K7_CONFIG, "veventq-destroy"))
		IT_SKIP("needs 7.x rules and the mock devices st0, st1");
	q = veventq_on(f.h, f.viommu, 2);
	CU_ASSERT_EQUAL(iommu_nest_destroy_object(f.h, IOMMU_NEST_OBJECT_VIOMMU, f.viommu), -EBUSY);
	CU_ASSERT_EQUAL(iommu_nest_destroy_object(f.h, OBJ_Q, f.viommu), -ENOENT);
	CU_ASSERT_EQUAL(iommu_nest_destroy_object(f.h, IOMMU_NEST_OBJECT_VIOMMU, q), -ENOENT);
	CU_ASSERT_EQUAL(iommu_nest_destroy(f.h, q), -ENOENT);
	CU_ASSERT_EQUAL(iommu_nest_destroy_object(f.h, OBJ_Q, q), 0);
	CU_ASSERT_EQUAL(iommu_nest_destroy_object(f.h, OBJ_Q, q), -ENOENT);
	/* Gone from the vIOMMU: the trigger finds no queue; a new one of the type may come. */
	attach_through(f.h, f.viommu, IT_ST0, 0x55, &vdev, &hwpt);
	CU_ASSERT_EQUAL(iommu_nest_trigger_vevent(f.h, IT_ST0, 1), -EOPNOTSUPP);
	q = veventq_on(f.h, f.viommu, 2);
	CU_ASSERT_EQUAL(iommu_nest_trigger_vevent(f.h, IT_ST0, 1), 0);
	CU_ASSERT_EQUAL(iommu_nest_destroy_object(f.h, OBJ_Q, q), 0);
	CU_ASSERT_EQUAL(iommu_nest_detach(f.h, IT_ST0), 0);
	CU_ASSERT_EQUAL(iommu_nest_destroy(f.h, hwpt), 0);
	CU_ASSERT_EQUAL(iommu_nest_destroy_object(f.h, IOMMU_NEST_OBJECT_VDEVICE, vdev), 0);
	CU_ASSERT_EQUAL(iommu_nest_destroy_object(f.h, IOMMU_NEST_OBJECT_VIOMMU, f.viommu), 0);
	it_stop_ok(f.d);
}

/*
 * A disconnect with records waiting takes the HWPTs, then the vEVENTQs,
 * then the vDEVICEs and vIOMMUs: the next client gets st0 free.
 */
static void test_teardown(void)
{
	struct fx f;
	struct iommu_nest *next;
	uint32_t v, vdev, hwpt;

	if (!fx_open(&f, K7_CONFIG, "veventq-gone"))
		IT_SKIP("needs 7.x rules and the mock devices st0, st1");
	veventq_on(f.h, f.viommu, 4);
	attach_through(f.h, f.viommu, IT_ST0, 0x44, &vdev, &hwpt);
	CU_ASSERT_EQUAL(iommu_nest_trigger_vevent(f.h, IT_ST0, 6), 0);
	it_close(f.h);
	next = it_connect(f.d, "veventq-next");
	CU_ASSERT(it_wait_sessions(next, 1));
	CU_ASSERT_EQUAL(it_stats(next).hwpts_active, 0);
	/* Had st0's vDEVICE stayed, the kernel would answer -EEXIST. */
	CU_ASSERT_EQUAL_FATAL(
	    iommu_nest_alloc_viommu(next, IT_ST0, IOMMU_NEST_VIOMMU_TYPE_SELFTEST, 0, &v), 0);
	veventq_on(next, v, 2);
	attach_through(next, v, IT_ST0, 0x44, &vdev, &hwpt);
	CU_ASSERT_EQUAL(iommu_nest_trigger_vevent(next, IT_ST0, 1), 0);
	it_close(next);
	it_stop_ok(f.d);
}

static const struct it_case cases[] = {
    {"no_veventq_on_6_12", test_no_veventq_on_6_12},
    {"alloc_rules", test_alloc_rules},
    {"trigger_rules", test_trigger_rules},
    {"in_order", test_in_order},
    {"overflow", test_overflow},
    {"sleeper", test_sleeper},
    {"ownership", test_ownership},
    {"destroy_rules", test_destroy_rules},
    {"teardown", test_teardown},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
	return it_main(argc, argv, "veventq", cases);
}
