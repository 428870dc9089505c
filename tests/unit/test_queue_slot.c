/* SPDX-License-Identifier: MIT */
/*
 * The shared queue's slot parser (net/queue_slot.c): geometry, index and
 * range checks, the copy of a submission, and the completion it writes.
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backend/iommufd_uapi.h"
#include "inv/request.h"
#include "net/queue_slot.h"
#include "unit_run.h"

typedef struct iommu_hwpt_vtd_s1_invalidate vtd_t;

static struct queue_area area(uint32_t sq, uint32_t cq, uint64_t data)
{
	struct queue_area a;

	CU_ASSERT_FATAL(nestq_layout(&a.l, sq, cq, data));
	a.base = calloc(1, a.l.total);
	CU_ASSERT_FATAL(a.base != NULL);
	return a;
}

static struct nestq_sqe *sq_slot(const struct queue_area *a, uint32_t i)
{
	return (struct nestq_sqe *)(a->base + a->l.sq_off) + (i & (a->l.sq_entries - 1));
}

static struct nestq_cqe *cq_slot(const struct queue_area *a, uint32_t i)
{
	return (struct nestq_cqe *)(a->base + a->l.cq_off) + (i & (a->l.cq_entries - 1));
}

static void test_layout(void)
{
	struct nestq_layout l;

	CU_ASSERT(nestq_layout(&l, 8, 16, 4096));
	CU_ASSERT_EQUAL(l.sq_off, NESTQ_HDR_BYTES);
	CU_ASSERT_EQUAL(l.cq_off, NESTQ_HDR_BYTES + 8 * 64);
	CU_ASSERT_EQUAL(l.data_off % NESTQ_CACHELINE, 0);
	CU_ASSERT(l.data_off >= l.cq_off + 16 * 64);
	CU_ASSERT_EQUAL(l.total, l.data_off + 4096);
	CU_ASSERT_FALSE(nestq_layout(&l, 3, 16, 4096));
	CU_ASSERT_FALSE(nestq_layout(&l, 0, 16, 4096));
	CU_ASSERT_FALSE(nestq_layout(&l, 8, NESTQ_MAX_ENTRIES * 2, 4096));
	CU_ASSERT_FALSE(nestq_layout(&l, 8, 8, 4095));
	CU_ASSERT_FALSE(nestq_layout(&l, 8, 8, (uint64_t)UINT32_MAX + 1));
	/* The indices sit on cache lines of their own. */
	CU_ASSERT_EQUAL(offsetof(struct nestq_header, sq_head) -
			    offsetof(struct nestq_header, sq_tail),
			NESTQ_CACHELINE);
}

static void test_indices(void)
{
	struct queue_area a = area(4, 2, 64);
	struct nestq_header *h = queue_hdr(&a);

	CU_ASSERT_EQUAL(queue_sq_ready(&a, 0), 0);
	atomic_store(&h->sq_tail, 4);
	CU_ASSERT_EQUAL(queue_sq_ready(&a, 0), 4);
	atomic_store(&h->sq_tail, 5);
	CU_ASSERT_EQUAL(queue_sq_ready(&a, 0), -EPROTO);
	/* Free-running: the counters wrap. */
	atomic_store(&h->sq_tail, 1);
	CU_ASSERT_EQUAL(queue_sq_ready(&a, UINT32_MAX - 1), 3);
	atomic_store(&h->sq_tail, UINT32_MAX);
	CU_ASSERT_EQUAL(queue_sq_ready(&a, 0), -EPROTO);

	CU_ASSERT_EQUAL(queue_cq_room(&a, 0), 2);
	CU_ASSERT_EQUAL(queue_cq_room(&a, 2), 0);
	atomic_store(&h->cq_head, 1);
	CU_ASSERT_EQUAL(queue_cq_room(&a, 2), 1);
	/* A cq_head ahead of the tail is nonsense: no room. */
	atomic_store(&h->cq_head, 9);
	CU_ASSERT_EQUAL(queue_cq_room(&a, 2), 0);
	free(a.base);
}

/* The room counted from the head last seen: read again only when that is not enough. */
static void test_cq_room_for(void)
{
	struct queue_area a = area(4, 4, 64);
	struct nestq_header *h = queue_hdr(&a);
	uint32_t seen = 0;

	atomic_store(&h->cq_head, 1);
	/* 1 used of 4 as last seen: enough for 3, the head is not read. */
	CU_ASSERT_EQUAL(queue_cq_room_for(&a, 1, &seen, 3), 3);
	CU_ASSERT_EQUAL(seen, 0);
	/* Not enough for 4: read, and the client had read the one completion. */
	CU_ASSERT_EQUAL(queue_cq_room_for(&a, 1, &seen, 4), 4);
	CU_ASSERT_EQUAL(seen, 1);
	/* Full as seen: read again; the client freed two meanwhile. */
	atomic_store(&h->cq_head, 3);
	CU_ASSERT_EQUAL(queue_cq_room_for(&a, 5, &seen, 1), 2);
	CU_ASSERT_EQUAL(seen, 3);
	/* Still full when read again: no room (back-pressure, not an error). */
	CU_ASSERT_EQUAL(queue_cq_room_for(&a, 7, &seen, 3), 0);
	CU_ASSERT_EQUAL(seen, 3);
	/* A head ahead of the tail is nonsense, as for queue_cq_room(). */
	atomic_store(&h->cq_head, 20);
	CU_ASSERT_EQUAL(queue_cq_room_for(&a, 7, &seen, 3), 0);
	CU_ASSERT_EQUAL(seen, 20);
	free(a.base);
}

static void test_take_and_complete(void)
{
	struct queue_area a = area(2, 2, 256);
	vtd_t *ent = (vtd_t *)(a.base + a.l.data_off);
	struct nestq_result *res = (struct nestq_result *)(a.base + a.l.data_off + 128);
	struct nestq_sqe copy, *s = sq_slot(&a, 3);
	struct inv_request *r;
	struct nestq_cqe *c;

	ent[0] = (vtd_t){.addr = 0x1000, .npages = 1};
	ent[1] = (vtd_t){.addr = 0x8000, .npages = 2};
	*s = (struct nestq_sqe){.user_data = 42,
				.hwpt_id = 9,
				.data_type = IOMMU_HWPT_INVALIDATE_DATA_VTD_S1,
				.flags = NESTQ_SQE_CONTINUE,
				.n = 2,
				.entry_off = 0,
				.result_off = 128};
	CU_ASSERT_EQUAL_FATAL(queue_slot_take(&a, 3, 16, &copy, &r), 0);
	/* The client rewrites the slot and entries after the take: the copy stands. */
	memset(s, 0xff, sizeof(*s));
	ent[0].addr = 0xdead000;
	CU_ASSERT_EQUAL(r->id, 42);
	CU_ASSERT_EQUAL(r->hwpt_id, 9);
	CU_ASSERT(r->cont);
	CU_ASSERT_EQUAL(r->n, 2);
	CU_ASSERT_EQUAL(r->result_off, 128);
	CU_ASSERT_EQUAL(((vtd_t *)r->entries)[0].addr, 0x1000);
	CU_ASSERT_EQUAL(((vtd_t *)r->entries)[1].npages, 2);

	r->res[0] = (struct inv_entry_result){.state = INV_DONE};
	r->res[1] = (struct inv_entry_result){.state = INV_FAILED, .error = -EIO, .hw_error = 4};
	r->status = -EIO;
	r->entries_handled = 1;
	r->entries_submitted = 2;
	queue_slot_complete(&a, 5, r);
	queue_cq_publish(&a, 6);
	c = cq_slot(&a, 5);
	CU_ASSERT_EQUAL(c->user_data, 42);
	CU_ASSERT_EQUAL(c->status, -EIO);
	CU_ASSERT_EQUAL(c->entries_handled, 1);
	CU_ASSERT_EQUAL(c->entries_submitted, 2);
	CU_ASSERT_EQUAL(c->n, 2);
	CU_ASSERT_EQUAL(res[0].state, INV_DONE);
	CU_ASSERT_EQUAL(res[1].state, INV_FAILED);
	CU_ASSERT_EQUAL(res[1].error, -EIO);
	CU_ASSERT_EQUAL(res[1].hw_error, 4);
	CU_ASSERT_EQUAL(atomic_load(&queue_hdr(&a)->cq_tail), 6);
	/* The completion's own word that it is there: its index + 1. */
	CU_ASSERT_EQUAL(atomic_load(&c->seq), 6);
	free(r);

	/*
	 * Refused before a request exists: status only. Index 7 is the same
	 * slot a lap on: seq moves from 6 to 8, and the pad is zero again.
	 */
	memset(c->pad, 0xff, sizeof(c->pad));
	queue_slot_refuse(&a, 7, 42, -EINVAL);
	c = cq_slot(&a, 7);
	CU_ASSERT_EQUAL(c->status, -EINVAL);
	CU_ASSERT_EQUAL(c->n, 0);
	CU_ASSERT_EQUAL(atomic_load(&c->seq), 8);
	CU_ASSERT_EQUAL(c->pad[0] | c->pad[1] | c->pad[2], 0);
	free(a.base);
}

static int take(struct queue_area *a, struct nestq_sqe sqe, uint32_t max)
{
	struct nestq_sqe copy;
	struct inv_request *r;
	int rc;

	*sq_slot(a, 0) = sqe;
	rc = queue_slot_take(a, 0, max, &copy, &r);
	CU_ASSERT(!rc == !!r);
	free(r);
	return rc;
}

static void test_take_refusals(void)
{
	struct queue_area a = area(1, 1, 96);
	const struct nestq_sqe ok = {.data_type = IOMMU_HWPT_INVALIDATE_DATA_VTD_S1,
				     .n = 2,
				     .entry_off = 0,
				     .result_off = 48};
	struct nestq_sqe s;

	CU_ASSERT_EQUAL(take(&a, ok, 2), 0);
	CU_ASSERT_EQUAL(take(&a, ok, 1), -E2BIG);
	s = ok, s.flags = 4;
	CU_ASSERT_EQUAL(take(&a, s, 2), -EOPNOTSUPP);
	s = ok, s.inline_entry[23] = 1;
	CU_ASSERT_EQUAL(take(&a, s, 2), -EINVAL);
	/* 2 * 24 entry bytes from 56 pass the end of 96. */
	s = ok, s.entry_off = 56;
	CU_ASSERT_EQUAL(take(&a, s, 2), -EINVAL);
	s = ok, s.entry_off = 4;
	CU_ASSERT_EQUAL(take(&a, s, 2), -EINVAL);
	s = ok, s.entry_off = UINT32_MAX & ~7u;
	CU_ASSERT_EQUAL(take(&a, s, 2), -EINVAL);
	/* 2 results (32 bytes) from 72 pass the end. */
	s = ok, s.result_off = 72;
	CU_ASSERT_EQUAL(take(&a, s, 2), -EINVAL);
	/* n so large that n * size wraps 32 bits must not pass. */
	s = ok, s.n = 0x80000000u;
	CU_ASSERT_EQUAL(take(&a, s, UINT32_MAX), -EINVAL);
	/* An unknown type has no entry bytes; the kernel's rules answer it later. */
	s = ok, s.data_type = 77, s.entry_off = 96;
	CU_ASSERT_EQUAL(take(&a, s, 2), 0);
	free(a.base);
}

/* The inline form: the entry from the slot's copy, the result in the completion. */
static void test_inline(void)
{
	struct queue_area a = area(2, 2, 64);
	struct nestq_sqe copy, *s = sq_slot(&a, 1);
	const vtd_t e = {.addr = 0x7000, .npages = 3, .flags = 1};
	struct inv_request *r;
	struct nestq_cqe *c;

	/* Results must not land in the entry area: poison it and check it stays. */
	memset(a.base + a.l.data_off, 0xa5, a.l.data_bytes);
	*s = (struct nestq_sqe){.user_data = 5,
				.hwpt_id = 3,
				.data_type = IOMMU_HWPT_INVALIDATE_DATA_VTD_S1,
				.flags = NESTQ_SQE_INLINE | NESTQ_SQE_CONTINUE,
				.n = 1};
	memcpy(s->inline_entry, &e, sizeof(e));
	CU_ASSERT_EQUAL_FATAL(queue_slot_take(&a, 1, 4, &copy, &r), 0);
	/* Rewritten after the take: the request keeps what was read once. */
	memset(s, 0xff, sizeof(*s));
	CU_ASSERT(r->res_inline);
	CU_ASSERT(r->cont);
	CU_ASSERT_EQUAL(r->n, 1);
	CU_ASSERT_EQUAL(memcmp(r->entries, &e, sizeof(e)), 0);
	r->res[0] = (struct inv_entry_result){.state = INV_FAILED, .error = -EIO, .hw_error = 2};
	r->status = -EIO;
	r->entries_submitted = 1;
	queue_slot_complete(&a, 0, r);
	c = cq_slot(&a, 0);
	CU_ASSERT_EQUAL(c->user_data, 5);
	CU_ASSERT_EQUAL(c->n, 1);
	CU_ASSERT_EQUAL(c->status, -EIO);
	CU_ASSERT_EQUAL(c->result.state, INV_FAILED);
	CU_ASSERT_EQUAL(c->result.error, -EIO);
	CU_ASSERT_EQUAL(c->result.hw_error, 2);
	for (uint64_t i = 0; i < a.l.data_bytes; i++)
		CU_ASSERT_EQUAL_FATAL(a.base[a.l.data_off + i], 0xa5);
	free(r);
	free(a.base);
}

static void test_inline_refusals(void)
{
	struct queue_area a = area(1, 1, 64);
	const struct nestq_sqe ok = {.data_type = IOMMU_HWPT_INVALIDATE_DATA_SELFTEST,
				     .flags = NESTQ_SQE_INLINE,
				     .n = 1,
				     .inline_entry = {1, 0, 0, 0, 7}};
	struct nestq_sqe s;

	CU_ASSERT_EQUAL(take(&a, ok, 1), 0);
	s = ok, s.n = 2;
	CU_ASSERT_EQUAL(take(&a, s, 2), -EINVAL);
	s = ok, s.n = 0;
	CU_ASSERT_EQUAL(take(&a, s, 2), -EINVAL);
	s = ok, s.n = 2;
	CU_ASSERT_EQUAL(take(&a, s, 1), -E2BIG);
	s = ok, s.entry_off = 8;
	CU_ASSERT_EQUAL(take(&a, s, 1), -EINVAL);
	s = ok, s.result_off = 8;
	CU_ASSERT_EQUAL(take(&a, s, 1), -EINVAL);
	/* A selftest entry is 8 bytes: byte 8 on must be zero. */
	s = ok, s.inline_entry[8] = 1;
	CU_ASSERT_EQUAL(take(&a, s, 1), -EINVAL);
	s = ok, s.inline_entry[7] = 1;
	CU_ASSERT_EQUAL(take(&a, s, 1), 0);
	/* A VT-d entry fills all 24 bytes. */
	s = ok, s.data_type = IOMMU_HWPT_INVALIDATE_DATA_VTD_S1, s.inline_entry[23] = 1;
	CU_ASSERT_EQUAL(take(&a, s, 1), 0);
	/* An unknown type has no entry bytes: all must be zero. */
	s = ok, s.data_type = 77;
	CU_ASSERT_EQUAL(take(&a, s, 1), -EINVAL);
	s.inline_entry[0] = s.inline_entry[4] = 0;
	CU_ASSERT_EQUAL(take(&a, s, 1), 0);
	free(a.base);
}

int main(void)
{
	static const struct unit_case tests[] = {
	    {"layout", test_layout},
	    {"indices", test_indices},
	    {"cq room from the head seen", test_cq_room_for},
	    {"take and complete", test_take_and_complete},
	    {"take: refusals", test_take_refusals},
	    {"inline", test_inline},
	    {"inline: refusals", test_inline_refusals},
	};

	return unit_run("queue_slot", UNIT_CASES(tests));
}
