/* SPDX-License-Identifier: MIT */
/*
 * Hostile and malformed traffic over raw packets: oversized and garbage
 * frames, requests before Hello, empty or unknown bodies, inconsistent
 * entry arrays, too many entries, passed file descriptors, and a pipelined
 * flood. A well-behaved client connected at the same time must keep getting
 * correct answers throughout.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define LIMITS "[limits]\nmax_message_size = 4096\nmax_entries = 16"
#define ST_VAL 0x600dcafeu

/* A raw connection that said Hello. */
static int raw_session(struct nestd *d)
{
	int fd = it_raw_connect(d);

	it_raw_hello(fd);
	return fd;
}

/*
 * The daemon refuses the connection: at most one error reply (id 0, status
 * err), then EOF. Returns true if the reply came.
 */
static bool expect_rejected(int fd, int err)
{
	IommuNest__Reply *rep;
	bool replied = false;
	int rc;

	rep = it_raw_recv(fd, &rc);
	if (rep) {
		replied = true;
		CU_ASSERT_EQUAL(rep->id, 0);
		CU_ASSERT_EQUAL(rep->status, err);
		iommu_nest__reply__free_unpacked(rep, NULL);
		CU_ASSERT(it_raw_eof(fd));
	} else {
		CU_ASSERT_EQUAL(rc, 0); /* EOF, not a timeout */
	}
	return replied;
}

static IommuNest__Reply *raw_stats(int fd, uint64_t id)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__Stats st = IOMMU_NEST__STATS__INIT;

	req.body_case = IOMMU_NEST__REQUEST__BODY_STATS;
	req.stats = &st;
	return it_raw_call(fd, &req, id);
}

static void raw_stats_ok(int fd, uint64_t id)
{
	IommuNest__Reply *rep = raw_stats(fd, id);

	CU_ASSERT_EQUAL(rep->status, 0);
	CU_ASSERT_EQUAL(rep->body_case, IOMMU_NEST__REPLY__BODY_STATS);
	iommu_nest__reply__free_unpacked(rep, NULL);
}

/* ---- framing ---------------------------------------------------------------------- */

static void test_oversized_packet(void)
{
	struct nestd *d = it_start(LIMITS);
	struct it_bystander b = it_bystander_open(d);
	uint64_t errors_before = it_stats(b.h).protocol_errors;
	int x = raw_session(d);
	char *big = malloc(8192);

	it_bystander_check(&b);
	CU_ASSERT_PTR_NOT_NULL_FATAL(big);
	memset(big, 0x08, 8192); /* would even decode: it must not get that far */
	CU_ASSERT_EQUAL(it_raw_send(x, big, 4097), 0);
	expect_rejected(x, -EMSGSIZE);
	it_bystander_check(&b);
	/* Far over the limit, on a fresh connection. */
	x = raw_session(d);
	CU_ASSERT_EQUAL(it_raw_send(x, big, 8192), 0);
	expect_rejected(x, -EMSGSIZE);
	free(big);
	it_bystander_check(&b);
	CU_ASSERT_EQUAL(it_stats(b.h).protocol_errors - errors_before, 2);
	it_stop_ok(d);
}

/* A valid request of exactly max_message_size bytes is served. */
static void test_packet_at_limit(void)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__Hello hello = IOMMU_NEST__HELLO__INIT;
	struct nestd *d = it_start(LIMITS);
	int x = it_raw_connect(d);
	IommuNest__Reply *rep;
	char *name = calloc(1, 4096);
	size_t len = 4000;

	CU_ASSERT_PTR_NOT_NULL_FATAL(name);
	hello.version = IOMMU_NEST_PROTOCOL_VERSION;
	hello.client_name = name;
	req.body_case = IOMMU_NEST__REQUEST__BODY_HELLO;
	req.hello = &hello;
	req.id = 77;
	memset(name, 'n', len);
	while (iommu_nest__request__get_packed_size(&req) < 4096)
		name[len++] = 'n';
	CU_ASSERT_EQUAL_FATAL(iommu_nest__request__get_packed_size(&req), 4096);
	rep = it_raw_call(x, &req, 77);
	CU_ASSERT_EQUAL(rep->status, 0);
	CU_ASSERT_EQUAL(rep->body_case, IOMMU_NEST__REPLY__BODY_HELLO);
	iommu_nest__reply__free_unpacked(rep, NULL);
	free(name);
	raw_stats_ok(x, 78);
	it_stop_ok(d);
}

static void test_garbage_packet(void)
{
	static const uint8_t garbage[][12] = {
		{ 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff },
		{ 0x0f, 0x01, 0x02 },           /* wire type 7 */
		{ 0x82, 0x01, 0x7f, 0x00 },     /* hello: length past the end */
		{ 0x08 },                       /* truncated varint */
	};
	static const size_t len[] = { 12, 3, 4, 1 };
	struct nestd *d = it_start(LIMITS);
	struct it_bystander b = it_bystander_open(d);
	uint64_t errors_before = it_stats(b.h).protocol_errors;
	const size_t n = sizeof(len) / sizeof(len[0]);

	for (size_t i = 0; i < n; i++) {
		int x = raw_session(d);

		CU_ASSERT_EQUAL(it_raw_send(x, garbage[i], len[i]), 0);
		expect_rejected(x, -EPROTO);
		it_bystander_check(&b);
	}
	/* Garbage before Hello gets the same treatment. */
	{
		int x = it_raw_connect(d);

		CU_ASSERT_EQUAL(it_raw_send(x, garbage[0], len[0]), 0);
		expect_rejected(x, -EPROTO);
	}
	it_bystander_check(&b);
	CU_ASSERT_EQUAL(it_stats(b.h).protocol_errors - errors_before, n + 1);
	it_stop_ok(d);
}

/*
 * A zero-length packet reads like the peer's EOF on SOCK_SEQPACKET
 * (recvmsg() returns 0 either way), so the daemon closes the session,
 * without a reply; the bystander is not disturbed.
 */
static void test_empty_packet(void)
{
	struct nestd *d = it_start(LIMITS);
	struct it_bystander b = it_bystander_open(d);
	int x = raw_session(d);
	IommuNest__Reply *rep;
	int rc = 1;

	CU_ASSERT_EQUAL(it_raw_send(x, "", 0), 0);
	rep = it_raw_recv(x, &rc);
	CU_ASSERT_PTR_NULL(rep);
	CU_ASSERT_EQUAL(rc, 0);
	if (rep)
		iommu_nest__reply__free_unpacked(rep, NULL);
	it_bystander_check(&b);
	it_stop_ok(d);
}

/* A Request with an id and no body: -EOPNOTSUPP for that id, and the session goes on. */
static void test_id_only_request(void)
{
	static const uint8_t id_only[] = {0x08, 0x07}; /* id = 7 */
	struct nestd *d = it_start(LIMITS);
	struct it_bystander b = it_bystander_open(d);
	int x = raw_session(d);
	IommuNest__Reply *rep;
	int rc;

	CU_ASSERT_EQUAL(it_raw_send(x, id_only, sizeof(id_only)), 0);
	rep = it_raw_recv(x, &rc);
	CU_ASSERT_PTR_NOT_NULL_FATAL(rep);
	CU_ASSERT_EQUAL(rep->id, 7);
	CU_ASSERT_EQUAL(rep->status, -EOPNOTSUPP);
	CU_ASSERT_EQUAL(rep->body_case, IOMMU_NEST__REPLY__BODY__NOT_SET);
	iommu_nest__reply__free_unpacked(rep, NULL);
	raw_stats_ok(x, 8);
	it_bystander_check(&b);
	it_stop_ok(d);
}

/* ---- request level ---------------------------------------------------------------- */

static void test_request_before_hello(void)
{
	struct nestd *d = it_start(NULL);
	int x = it_raw_connect(d);
	IommuNest__Reply *rep = raw_stats(x, 7);

	CU_ASSERT_EQUAL(rep->status, -EPROTO);
	CU_ASSERT_NOT_EQUAL(rep->body_case, IOMMU_NEST__REPLY__BODY_STATS);
	iommu_nest__reply__free_unpacked(rep, NULL);
	/* Not fatal: the session may still say Hello and carry on. */
	it_raw_hello(x);
	raw_stats_ok(x, 8);
	it_stop_ok(d);
}

static void test_bad_hello_version(void)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__Hello hello = IOMMU_NEST__HELLO__INIT;
	struct nestd *d = it_start(NULL);
	int x = it_raw_connect(d);
	IommuNest__Reply *rep;

	hello.version = 99;
	req.body_case = IOMMU_NEST__REQUEST__BODY_HELLO;
	req.hello = &hello;
	rep = it_raw_call(x, &req, 3);
	CU_ASSERT_EQUAL(rep->status, -EPROTONOSUPPORT);
	/* The reply still tells which version the daemon speaks. */
	CU_ASSERT_EQUAL_FATAL(rep->body_case, IOMMU_NEST__REPLY__BODY_HELLO);
	CU_ASSERT_EQUAL(rep->hello->version, IOMMU_NEST_PROTOCOL_VERSION);
	iommu_nest__reply__free_unpacked(rep, NULL);
	/* Still no session. */
	rep = raw_stats(x, 4);
	CU_ASSERT_EQUAL(rep->status, -EPROTO);
	iommu_nest__reply__free_unpacked(rep, NULL);
	it_stop_ok(d);
}

static void test_empty_and_unknown_body(void)
{
	/* id = 5, then field 99 (varint 1): an unknown oneof member. */
	static const uint8_t unknown[] = { 0x08, 0x05, 0x98, 0x06, 0x01 };
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	struct nestd *d = it_start(NULL);
	int x = raw_session(d);
	IommuNest__Reply *rep;
	int rc;

	rep = it_raw_call(x, &req, 9);
	CU_ASSERT_EQUAL(rep->status, -EOPNOTSUPP);
	iommu_nest__reply__free_unpacked(rep, NULL);

	CU_ASSERT_EQUAL(it_raw_send(x, unknown, sizeof(unknown)), 0);
	rep = it_raw_recv(x, &rc);
	CU_ASSERT_PTR_NOT_NULL_FATAL(rep);
	CU_ASSERT_EQUAL(rep->id, 5);
	CU_ASSERT_EQUAL(rep->status, -EOPNOTSUPP);
	iommu_nest__reply__free_unpacked(rep, NULL);
	raw_stats_ok(x, 10);
	it_stop_ok(d);
}

/* Sends inv (id 20) and expects a request-level status. */
static void raw_inv_status(int x, IommuNest__Invalidate *inv, int err)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__Reply *rep;

	req.body_case = IOMMU_NEST__REQUEST__BODY_INVALIDATE;
	req.invalidate = inv;
	rep = it_raw_call(x, &req, 20);
	CU_ASSERT_EQUAL(rep->status, err);
	if (!err) {
		CU_ASSERT_EQUAL_FATAL(rep->body_case, IOMMU_NEST__REPLY__BODY_INVALIDATE);
		CU_ASSERT_EQUAL(rep->invalidate->n_state, inv->n_iotlb_id + inv->n_addr);
		CU_ASSERT_EQUAL(rep->invalidate->entries_handled, inv->n_iotlb_id + inv->n_addr);
	}
	iommu_nest__reply__free_unpacked(rep, NULL);
}

static void test_mismatched_arrays(void)
{
	uint64_t addr[3] = { 0, 0x1000, 0x2000 }, npages[3] = { 1, 1, 1 };
	uint32_t ids[3] = { 0, 1, 2 }, flags[3] = { 0, 0, 0 };
	struct nestd *d = it_start(NULL);
	struct it_bystander b = it_bystander_open(d);
	int x = raw_session(d);
	IommuNest__Invalidate inv = IOMMU_NEST__INVALIDATE__INIT;
	uint32_t st = it_raw_alloc_st(x, IT_ST0, 2);

	inv.hwpt_id = st;
	inv.data_type = IOMMU_NEST_INV_DATA_VTD_S1;
	/* addr/npages of different lengths */
	inv.n_addr = 3, inv.addr = addr, inv.n_npages = 2, inv.npages = npages;
	raw_inv_status(x, &inv, -EINVAL);
	/* npages without addr */
	inv.n_addr = 0, inv.n_npages = 3;
	raw_inv_status(x, &inv, -EINVAL);
	/* both layouts at once */
	inv.n_addr = 3, inv.n_npages = 3, inv.n_iotlb_id = 3, inv.iotlb_id = ids;
	raw_inv_status(x, &inv, -EINVAL);

	inv = (IommuNest__Invalidate)IOMMU_NEST__INVALIDATE__INIT;
	inv.hwpt_id = st;
	inv.data_type = IOMMU_NEST_INV_DATA_SELFTEST;
	inv.n_iotlb_id = 3, inv.iotlb_id = ids;
	/* optional array of the wrong length */
	inv.n_entry_flags = 2, inv.entry_flags = flags;
	raw_inv_status(x, &inv, -EINVAL);
	inv.n_entry_flags = 4;
	raw_inv_status(x, &inv, -EINVAL);
	/* the selftest layout has no reserved word */
	inv.n_entry_flags = 3, inv.n_entry_reserved = 3, inv.entry_reserved = flags;
	raw_inv_status(x, &inv, -EINVAL);
	/* and the consistent request is fine */
	inv.n_entry_reserved = 0;
	raw_inv_status(x, &inv, 0);
	it_bystander_check(&b);
	it_stop_ok(d);
}

static void test_too_many_entries(void)
{
	uint32_t ids[17];
	struct nestd *d = it_start(LIMITS);
	struct it_bystander b = it_bystander_open(d);
	int x = raw_session(d);
	IommuNest__Invalidate inv = IOMMU_NEST__INVALIDATE__INIT;
	struct iommu_nest_selftest_inv e[17];
	int rc;

	for (uint32_t i = 0; i < 17; i++) {
		ids[i] = i % 4;
		e[i] = (struct iommu_nest_selftest_inv){ 0, i % 4 };
	}
	inv.hwpt_id = it_raw_alloc_st(x, IT_ST0, 2);
	inv.data_type = IOMMU_NEST_INV_DATA_SELFTEST;
	inv.n_iotlb_id = 17, inv.iotlb_id = ids;
	raw_inv_status(x, &inv, -E2BIG);
	inv.n_iotlb_id = 16;
	raw_inv_status(x, &inv, 0);
	/* Through the library as well (whether it or the daemon says so). */
	CU_ASSERT_EQUAL(iommu_nest_max_entries(b.h), 16);
	rc = iommu_nest_invalidate(b.h, b.st, IOMMU_NEST_INV_DATA_SELFTEST, e, 17, 0, NULL, NULL);
	CU_ASSERT_EQUAL(rc, -E2BIG);
	it_bystander_check(&b);
	it_stop_ok(d);
}

/*
 * A request inside both limits whose reply (three per-entry arrays) would be
 * bigger than max_message_size must still be answered, not dropped.
 */
static void test_reply_larger_than_request(void)
{
	enum { NE = 1500 };
	static uint32_t ids[NE];
	struct nestd *d = it_start("[limits]\nmax_message_size = 4096\nmax_entries = 4096");
	int x = raw_session(d);
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__Invalidate inv = IOMMU_NEST__INVALIDATE__INIT;
	IommuNest__Reply *rep;
	int rc;

	inv.hwpt_id = it_raw_alloc_st(x, IT_ST0, 2);
	inv.data_type = IOMMU_NEST_INV_DATA_SELFTEST;
	inv.n_iotlb_id = NE, inv.iotlb_id = ids;
	req.id = 50;
	req.body_case = IOMMU_NEST__REQUEST__BODY_INVALIDATE;
	req.invalidate = &inv;
	CU_ASSERT_FATAL(iommu_nest__request__get_packed_size(&req) <= 4096);
	CU_ASSERT_EQUAL_FATAL(it_raw_send_req(x, &req), 0);
	rep = it_raw_recv(x, &rc);
	if (!rep)
		fprintf(stderr, "no reply to a %zu-byte request of %u entries (rc %d)\n",
			iommu_nest__request__get_packed_size(&req), NE, rc);
	CU_ASSERT_PTR_NOT_NULL_FATAL(rep);
	CU_ASSERT_EQUAL(rep->id, 50);
	if (!rep->status && rep->body_case == IOMMU_NEST__REPLY__BODY_INVALIDATE)
		CU_ASSERT_EQUAL(rep->invalidate->entries_handled, NE);
	iommu_nest__reply__free_unpacked(rep, NULL);
	raw_stats_ok(x, 51);
	it_stop_ok(d);
}

static void never_called(struct iommu_nest *h, uint64_t token,
			 const struct iommu_nest_inv_summary *summary,
			 struct iommu_nest_entry_result *results, size_t n, void *opaque)
{
	CU_FAIL("completion for a request that was never sent");
}

/* The library refuses to send what exceeds max_message_size; the handle survives. */
static void test_client_request_too_big(void)
{
	enum { NE = 1000 };
	static struct iommu_nest_vtd_inv e[NE];
	struct nestd *d = it_start("[limits]\nmax_message_size = 4096\nmax_entries = 4096");
	struct it_bystander b = it_bystander_open(d);
	struct iommu_nest_entry_result res;
	uint32_t st = it_alloc_st(b.h, IT_ST0, 1);

	for (uint32_t i = 0; i < NE; i++)
		e[i] = (struct iommu_nest_vtd_inv){ .addr = (0xfff00000ULL + i) << 12, .npages = 7 };
	CU_ASSERT_EQUAL(iommu_nest_invalidate(b.h, st, IOMMU_NEST_INV_DATA_VTD_S1, e, NE, 0, NULL,
					      NULL), -EMSGSIZE);
	CU_ASSERT_EQUAL(iommu_nest_invalidate_submit(b.h, st, IOMMU_NEST_INV_DATA_VTD_S1, e, NE, 0,
						     NULL, never_called, NULL, NULL), -EMSGSIZE);
	CU_ASSERT_EQUAL(iommu_nest_in_flight(b.h), 0);
	CU_ASSERT_EQUAL(iommu_nest_invalidate(b.h, st, IOMMU_NEST_INV_DATA_VTD_S1, e, 1, 0, &res,
					      NULL), -EINVAL); /* wrong type: a daemon answer */
	it_bystander_check(&b);
	it_stop_ok(d);
}

/* ---- passed descriptors ------------------------------------------------------------- */

/* True iff every write end of the pipe is gone (read returns EOF). */
static bool pipe_orphaned(int rfd)
{
	struct pollfd p = { .fd = rfd, .events = POLLIN };
	char c;

	if (poll(&p, 1, 0) != 1)
		return false;
	return read(rfd, &c, 1) == 0;
}

static void test_scm_rights(void)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__Stats st = IOMMU_NEST__STATS__INIT;
	struct nestd *d = it_start(NULL);
	struct it_bystander b = it_bystander_open(d);
	int x = raw_session(d);
	IommuNest__Reply *rep;
	uint8_t buf[64];
	size_t len;
	int p[2], rc;

	CU_ASSERT_EQUAL_FATAL(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	req.id = 30;
	req.body_case = IOMMU_NEST__REQUEST__BODY_STATS;
	req.stats = &st;
	len = iommu_nest__request__pack(&req, buf);
	CU_ASSERT_EQUAL(it_raw_send_fds(x, buf, len, &p[1], 1), 0);
	close(p[1]);
	rep = it_raw_recv(x, &rc);
	CU_ASSERT_PTR_NOT_NULL_FATAL(rep);
	CU_ASSERT_EQUAL(rep->id, 30);
	CU_ASSERT_EQUAL(rep->status, 0);
	iommu_nest__reply__free_unpacked(rep, NULL);
	/* By the time it answered, the daemon had closed our fd. */
	CU_ASSERT(pipe_orphaned(p[0]));
	close(p[0]);
	/* The session goes on. */
	raw_stats_ok(x, 31);
	it_bystander_check(&b);
	it_stop_ok(d);
}

/* More descriptors than the daemon takes: refused, every one closed anyway. */
static void test_scm_rights_flood(void)
{
	enum { NFD = 40 };
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__Stats st = IOMMU_NEST__STATS__INIT;
	struct nestd *d = it_start(NULL);
	struct it_bystander b = it_bystander_open(d);
	int x = raw_session(d);
	int rd[NFD], wr[NFD];
	uint8_t buf[64];
	size_t len;

	for (int i = 0; i < NFD; i++) {
		int p[2];

		CU_ASSERT_EQUAL_FATAL(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
		rd[i] = p[0];
		wr[i] = p[1];
	}
	req.id = 40;
	req.body_case = IOMMU_NEST__REQUEST__BODY_STATS;
	req.stats = &st;
	len = iommu_nest__request__pack(&req, buf);
	CU_ASSERT_EQUAL(it_raw_send_fds(x, buf, len, wr, NFD), 0);
	for (int i = 0; i < NFD; i++)
		close(wr[i]);
	/* Either served (all fds taken and closed) or refused and closed. */
	{
		int rc;
		IommuNest__Reply *rep = it_raw_recv(x, &rc);

		if (rep && rep->id == 40) {
			CU_ASSERT_EQUAL(rep->status, 0);
		} else if (rep) {
			CU_ASSERT_EQUAL(rep->id, 0);
			CU_ASSERT(rep->status < 0);
			CU_ASSERT(it_raw_eof(x));
		} else {
			CU_ASSERT_EQUAL(rc, 0);
		}
		if (rep)
			iommu_nest__reply__free_unpacked(rep, NULL);
	}
	it_bystander_check(&b); /* a round trip: the daemon is past that packet */
	for (int i = 0; i < NFD; i++) {
		CU_ASSERT(pipe_orphaned(rd[i]));
		close(rd[i]);
	}
	it_stop_ok(d);
}

/* ---- pipelining ---------------------------------------------------------------------- */

static void test_pipelined_flood(void)
{
	enum { FLOOD = 500 };
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__Stats st = IOMMU_NEST__STATS__INIT;
	IommuNest__Invalidate inv = IOMMU_NEST__INVALIDATE__INIT;
	struct nestd *d = it_start(NULL);
	struct it_bystander b = it_bystander_open(d);
	int x = raw_session(d);
	uint32_t ids[2] = { 1, 2 };
	uint32_t bad = 0;

	inv.hwpt_id = it_raw_alloc_st(x, IT_ST0, 2);
	inv.data_type = IOMMU_NEST_INV_DATA_SELFTEST;
	inv.n_iotlb_id = 2, inv.iotlb_id = ids;
	for (uint64_t i = 0; i < FLOOD; i++) {
		req.id = 1000 + i;
		if (i % 2) {
			req.body_case = IOMMU_NEST__REQUEST__BODY_STATS;
			req.stats = &st;
		} else {
			req.body_case = IOMMU_NEST__REQUEST__BODY_INVALIDATE;
			req.invalidate = &inv;
		}
		CU_ASSERT_EQUAL_FATAL(it_raw_send_req(x, &req), 0);
	}
	/* One reply per request, in order (one session's requests take effect in order). */
	for (uint64_t i = 0; i < FLOOD; i++) {
		int rc;
		IommuNest__Reply *rep = it_raw_recv(x, &rc);

		CU_ASSERT_PTR_NOT_NULL_FATAL(rep);
		if (rep->id != 1000 + i || rep->status ||
		    rep->body_case != (i % 2 ? IOMMU_NEST__REPLY__BODY_STATS :
					       IOMMU_NEST__REPLY__BODY_INVALIDATE))
			bad++;
		iommu_nest__reply__free_unpacked(rep, NULL);
	}
	CU_ASSERT_EQUAL(bad, 0);
	it_bystander_check(&b);
	it_stop_ok(d);
}

int main(int argc, char **argv)
{
	static const struct it_case cases[] = {
		{ "oversized_packet", test_oversized_packet },
		{ "packet_at_limit", test_packet_at_limit },
		{ "garbage_packet", test_garbage_packet },
		{ "empty_packet", test_empty_packet },
		{ "id_only_request", test_id_only_request },
		{ "request_before_hello", test_request_before_hello },
		{ "bad_hello_version", test_bad_hello_version },
		{ "empty_and_unknown_body", test_empty_and_unknown_body },
		{ "mismatched_arrays", test_mismatched_arrays },
		{ "too_many_entries", test_too_many_entries },
		{ "reply_larger_than_request", test_reply_larger_than_request },
		{ "client_request_too_big", test_client_request_too_big },
		{ "scm_rights", test_scm_rights },
		{ "scm_rights_flood", test_scm_rights_flood },
		{ "pipelined_flood", test_pipelined_flood },
		{ NULL, NULL },
	};

	return it_main(argc, argv, "hostile", cases);
}
