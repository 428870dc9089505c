/* SPDX-License-Identifier: MIT */
/*
 * Abuse at scale, against the real daemon: many connections at once, a
 * client that never reads its replies, clients that vanish mid-flight.
 * Every case runs a well-behaved bystander alongside and checks both that
 * the daemon survives and that the bystander's results stay exactly right;
 * memory must come back to its level after the abuse (RSS, steady state).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "harness.h"

#define N_CONNS 1000

static void raise_nofile(void)
{
	struct rlimit rl;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* Opens n connections that each completed the handshake. */
static int open_crowd(struct nestd *d, int *fds, int n)
{
	int ok = 0;

	for (int i = 0; i < n; i++) {
		fds[i] = it_plain_connect(d->sock, false);
		CU_ASSERT_FATAL(fds[i] >= 0);
		CU_ASSERT_EQUAL(it_send_hello(fds[i], (uint64_t)i + 1, "crowd"), 0);
	}
	for (int i = 0; i < n; i++) {
		int err = 0;
		IommuNest__Reply *rep = it_raw_recv(fds[i], &err);

		if (rep && rep->id == (uint64_t)i + 1 && rep->status == 0)
			ok++;
		if (rep)
			iommu_nest__reply__free_unpacked(rep, NULL);
	}
	return ok;
}

static void close_crowd(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

/*
 * 1,000 concurrent connections: all are served, the bystander keeps
 * getting exact results while they are open, and after they close the
 * daemon's memory does not grow from one round of this to the next.
 */
static void test_thousand_connections(void)
{
	struct nestd *d = it_start("[policy]\nmax_clients = 1100\n");
	struct it_bystander b = it_bystander_open(d);
	static int fds[N_CONNS];
	long rss[3];

	raise_nofile();
	for (int round = 0; round < 3; round++) {
		CU_ASSERT_EQUAL(open_crowd(d, fds, N_CONNS), N_CONNS);
		it_bystander_check(&b);
		CU_ASSERT_EQUAL(it_stats(b.h).sessions_active, N_CONNS + 1);
		close_crowd(fds, N_CONNS);
		CU_ASSERT(it_wait_sessions(b.h, 1));
		it_bystander_check(&b);
		rss[round] = it_daemon_rss_kib(d);
	}
	fprintf(stderr, "    daemon RSS after rounds: %ld, %ld, %ld KiB\n", rss[0], rss[1],
		rss[2]);
	/* Round one warms the allocator; later rounds must not add to it. */
	if (it_rss_meaningful())
		CU_ASSERT(rss[2] <= rss[1] + 512);
	it_stop_ok(d);
}

/* Past max_clients the daemon refuses with -EUSERS and the limit, others unharmed. */
static void test_client_limit(void)
{
	struct nestd *d = it_start("[policy]\nmax_clients = 4\n");
	struct it_bystander b = it_bystander_open(d);
	int fds[3], extra, err = 0;
	IommuNest__Reply *rep;

	CU_ASSERT_EQUAL(open_crowd(d, fds, 3), 3);
	extra = it_plain_connect(d->sock, false);
	CU_ASSERT_FATAL(extra >= 0);
	rep = it_raw_recv(extra, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(rep);
	CU_ASSERT_EQUAL(rep->status, -EUSERS);
	CU_ASSERT_EQUAL(rep->limit, 4);
	iommu_nest__reply__free_unpacked(rep, NULL);
	CU_ASSERT(it_raw_eof(extra));
	close(extra);
	it_bystander_check(&b);
	CU_ASSERT(it_stats(b.h).denials >= 1);
	close_crowd(fds, 3);
	it_stop_ok(d);
}

/*
 * A client that sends and never reads: its replies pile up until the
 * configured buffer bound, then the daemon drops it. Meanwhile the
 * bystander is served as usual.
 */
static void test_client_never_reads(void)
{
	struct nestd *d = it_start("[policy]\nmax_buffered_bytes = 65536\n");
	struct it_bystander b = it_bystander_open(d);
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__Stats stats = IOMMU_NEST__STATS__INIT;
	uint8_t buf[64];
	size_t len;
	int fd = it_plain_connect(d->sock, false), sent = 0;
	bool dropped = false;

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(it_send_hello(fd, 1, "crowd"), 0);
	req.body_case = IOMMU_NEST__REQUEST__BODY_STATS;
	req.stats = &stats;
	for (int i = 0; i < 200000 && !dropped; i++) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };

		req.id = (uint64_t)i + 2;
		len = iommu_nest__request__pack(&req, buf);
		if (poll(&p, 1, it_timeout_ms()) != 1 || (p.revents & (POLLERR | POLLHUP))) {
			dropped = true;
			break;
		}
		if (send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
			dropped = errno != EAGAIN;
		else
			sent++;
		if (i % 5000 == 0)
			it_bystander_check(&b);
	}
	fprintf(stderr, "    stuck client dropped after %d requests\n", sent);
	CU_ASSERT(dropped);
	CU_ASSERT(it_wait_sessions(b.h, 1));
	it_bystander_check(&b);
	close(fd);
	it_stop_ok(d);
}

static void ignore_completion(struct iommu_nest *h, uint64_t token,
			      const struct iommu_nest_inv_summary *sum,
			      struct iommu_nest_entry_result *results, size_t n, void *opaque)
{
}

/* Clients that disconnect with invalidations in flight, many times over. */
static void test_vanishing_clients(void)
{
	struct nestd *d = it_start(NULL);
	struct it_bystander b = it_bystander_open(d);

	for (int round = 0; round < 50; round++) {
		struct iommu_nest *h = it_connect(d, "vanishing");
		uint32_t st = it_alloc_st(h, IT_ST0, 7);
		struct iommu_nest_selftest_inv e[4] = { { 0, 0 }, { 0, 1 }, { 0, 2 }, { 0, 3 } };
		static struct iommu_nest_entry_result res[16][4];
		uint64_t token;

		for (int i = 0; i < 16; i++)
			CU_ASSERT_EQUAL(iommu_nest_invalidate_submit(h, st,
								     IOMMU_NEST_INV_DATA_SELFTEST, e,
								     4, 0, res[i], ignore_completion,
								     NULL, &token),
					0);
		it_close(h);
		if (round % 10 == 0)
			it_bystander_check(&b);
	}
	CU_ASSERT(it_wait_sessions(b.h, 1));
	CU_ASSERT_EQUAL(it_stats(b.h).hwpts_active, 1);
	it_bystander_check(&b);
	it_stop_ok(d);
}

int main(int argc, char **argv)
{
	static const struct it_case cases[] = {
		{ "thousand_connections", test_thousand_connections },
		{ "client_limit", test_client_limit },
		{ "client_never_reads", test_client_never_reads },
		{ "vanishing_clients", test_vanishing_clients },
		{ NULL, NULL },
	};

	return it_main(argc, argv, "abuse", cases);
}
