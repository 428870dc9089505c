/* SPDX-License-Identifier: MIT */
/*
 * The library's side of the shared queue (client/queue.c) with the test
 * playing the daemon on the same mapping: the call flag around a spin. A
 * client that spins on the ring is awake, so the daemon must see
 * NEED_CALL clear for what it publishes meanwhile (no write(2), no
 * wake-up); once the spin returns, a VMM loop may sleep on the call
 * eventfd again, so the flag must be back while async requests wait.
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "iommu_nest_queue.h"
#include "queue.h"
#include "unit_run.h"

/* The daemon's part: publish one completion once the spin has begun. */
struct fake_daemon {
	struct nestq_client *q;
	uint64_t user_data;
	/* NEED_CALL as the daemon saw it after its publish (-1: not published). */
	int need_call;
	/* The spin returned without it (a spin that never clears the flag): give up. */
	_Atomic bool spin_over;
};

static struct nestq_header *hdr(const struct nestq_client *q)
{
	return (struct nestq_header *)q->base;
}

static bool need_call(const struct nestq_client *q)
{
	return atomic_load(&hdr(q)->cq_flags) & NESTQ_CQ_NEED_CALL;
}

/* Writes completion i (one DONE entry, inline) and publishes it as the daemon does. */
static int publish(struct nestq_client *q, uint32_t i, uint64_t user_data)
{
	struct nestq_cqe *c =
	    (struct nestq_cqe *)(q->base + q->l.cq_off) + (i & (q->l.cq_entries - 1));

	*c = (struct nestq_cqe){.user_data = user_data,
				.entries_handled = 1,
				.entries_submitted = 1,
				.n = 1,
				.result = {.state = IOMMU_NEST_ENTRY_DONE}};
	atomic_store_explicit(&c->seq, i + 1, memory_order_release);
	atomic_store_explicit(&hdr(q)->cq_tail, i + 1, memory_order_release);
	/* The daemon's fence between its publish and its look at the flag. */
	atomic_thread_fence(memory_order_seq_cst);
	return need_call(q);
}

static void *daemon_side(void *arg)
{
	struct fake_daemon *d = arg;

	/* The spin clears the flag before its first look: wait for that, not for time. */
	while (need_call(d->q)) {
		if (atomic_load(&d->spin_over))
			return NULL;
		sched_yield();
	}
	d->need_call = publish(d->q, 0, d->user_data);
	return NULL;
}

static struct iommu_nest_entry_result res_slot[1];

static struct iommu_nest_entry_result *results_of(void *opaque, uint64_t user_data)
{
	(void)opaque;
	(void)user_data;
	return res_slot;
}

static int submit(struct nestq_client *q, uint64_t user_data, bool async)
{
	static struct iommu_nest_selftest_inv e = {.iotlb_id = 1};
	struct iommu_nest_inv_raw r = {.hwpt_id = 1,
				       .data_type = IOMMU_NEST_INV_DATA_SELFTEST,
				       .layout = IOMMU_NEST_LAYOUT_SELFTEST,
				       .entries = &e,
				       .n = 1};

	return nestq_client_submit(q, &r, user_data, async);
}

/* The completion of user_data is read back, DONE. */
static void reap_one(struct nestq_client *q, uint64_t user_data)
{
	struct iommu_nest_inv_summary sum;
	uint64_t ud = 0;

	CU_ASSERT_EQUAL(nestq_client_reap(q, results_of, NULL, &ud, &sum), 1);
	CU_ASSERT_EQUAL(ud, user_data);
	CU_ASSERT_EQUAL(sum.status, 0);
	CU_ASSERT_EQUAL(res_slot[0].state, IOMMU_NEST_ENTRY_DONE);
}

/*
 * An async request waits (NEED_CALL set); the client spins; the daemon,
 * which publishes only once the flag is clear, is not asked to signal;
 * the spin sees the completion and puts the flag back for the VMM's
 * loop; reading the last async completion clears it.
 */
static void test_spin_unsignalled(void)
{
	struct nestq_client q;
	struct fake_daemon d = {.q = &q, .user_data = 7, .need_call = -1};
	pthread_t t;

	CU_ASSERT_EQUAL_FATAL(nestq_client_create(&q, 4, 64, 0), 0);
	CU_ASSERT_EQUAL_FATAL(submit(&q, 7, true), 0);
	CU_ASSERT(need_call(&q));
	CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, daemon_side, &d), 0);
	/* Bounded only so that a broken spin fails instead of hanging: a minute. */
	CU_ASSERT_TRUE(nestq_client_spin(&q, 60u * 1000u * 1000u));
	atomic_store(&d.spin_over, true);
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(d.need_call, 0);
	CU_ASSERT(need_call(&q));
	reap_one(&q, 7);
	CU_ASSERT_FALSE(need_call(&q));
	nestq_client_destroy(&q);
}

/*
 * A spin that runs out leaves the flag set (the VMM sleeps next), and one
 * published after it is signalled; with only sync requests in flight a
 * spin leaves the flag clear (the sync wait sets it when it sleeps).
 */
static void test_spin_runs_out(void)
{
	struct nestq_client q;

	CU_ASSERT_EQUAL_FATAL(nestq_client_create(&q, 4, 64, 0), 0);
	CU_ASSERT_EQUAL_FATAL(submit(&q, 8, true), 0);
	CU_ASSERT_FALSE(nestq_client_spin(&q, 100));
	CU_ASSERT(need_call(&q));
	CU_ASSERT_EQUAL(publish(&q, 0, 8), 1);
	CU_ASSERT_TRUE(nestq_client_spin(&q, 100));
	reap_one(&q, 8);

	CU_ASSERT_EQUAL_FATAL(submit(&q, 9, false), 0);
	CU_ASSERT_FALSE(need_call(&q));
	CU_ASSERT_FALSE(nestq_client_spin(&q, 100));
	CU_ASSERT_FALSE(need_call(&q));
	CU_ASSERT_EQUAL(publish(&q, 1, 9), 0);
	reap_one(&q, 9);
	nestq_client_destroy(&q);
}

/* The daemon's closing (BROKEN) ends a spin as a completion does, flag restored. */
static void test_spin_broken(void)
{
	struct nestq_client q;

	CU_ASSERT_EQUAL_FATAL(nestq_client_create(&q, 4, 64, 0), 0);
	CU_ASSERT_EQUAL_FATAL(submit(&q, 10, true), 0);
	atomic_fetch_or(&hdr(&q)->sq_flags, NESTQ_SQ_BROKEN);
	CU_ASSERT_TRUE(nestq_client_spin(&q, 60u * 1000u * 1000u));
	CU_ASSERT(need_call(&q));
	nestq_client_destroy(&q);
}

int main(void)
{
	static const struct unit_case tests[] = {
	    {"spin: unsignalled", test_spin_unsignalled},
	    {"spin: runs out", test_spin_runs_out},
	    {"spin: broken", test_spin_broken},
	};

	return unit_run("client_queue", UNIT_CASES(tests));
}
