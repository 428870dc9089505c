/* SPDX-License-Identifier: MIT */
/*
 * libiommu-nest against a scripted fake daemon: no daemon, no thread. The
 * test holds the other end of a socketpair and queues canned replies before
 * each call; request ids are predictable (Hello is 1, then +1 per request
 * sent), so a reply can be queued before the request it answers exists.
 * After each call the test reads the request back and checks its encoding.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "iommu_nest.h"
#include "iommu_nest.pb-c.h"
#include "backend/iommufd_uapi.h"
#include "unit_run.h"

/* The public header mirrors the kernel's values without including it. */
_Static_assert(IOMMU_NEST_HWPT_DATA_VTD_S1 == IOMMU_HWPT_DATA_VTD_S1, "mirror");
_Static_assert(IOMMU_NEST_HWPT_DATA_SELFTEST == IOMMU_HWPT_DATA_SELFTEST, "mirror");
_Static_assert(IOMMU_NEST_INV_DATA_VTD_S1 == IOMMU_HWPT_INVALIDATE_DATA_VTD_S1, "mirror");
_Static_assert(IOMMU_NEST_INV_DATA_SELFTEST == IOMMU_HWPT_INVALIDATE_DATA_SELFTEST, "mirror");
_Static_assert(IOMMU_NEST_INV_DATA_SELFTEST_INVALID == IOMMU_HWPT_INVALIDATE_DATA_SELFTEST_INVALID,
	       "mirror");
_Static_assert(IOMMU_NEST_VTD_INV_FLAGS_LEAF == IOMMU_VTD_INV_FLAGS_LEAF, "mirror");
_Static_assert(IOMMU_NEST_VTD_S1_SRE == IOMMU_VTD_S1_SRE, "mirror");
_Static_assert(IOMMU_NEST_VTD_S1_EAFE == IOMMU_VTD_S1_EAFE, "mirror");
_Static_assert(IOMMU_NEST_VTD_S1_WPE == IOMMU_VTD_S1_WPE, "mirror");
_Static_assert(IOMMU_NEST_TEST_INVALIDATE_FLAG_ALL == IOMMU_TEST_INVALIDATE_FLAG_ALL, "mirror");
_Static_assert(IOMMU_NEST_TEST_IOTLB_DEFAULT == IOMMU_TEST_IOTLB_DEFAULT, "mirror");
_Static_assert(IOMMU_NEST_TEST_IOTLB_NUM == MOCK_NESTED_DOMAIN_IOTLB_NUM, "mirror");
_Static_assert(sizeof(struct iommu_nest_vtd_inv) == sizeof(struct iommu_hwpt_vtd_s1_invalidate),
	       "mirror");
_Static_assert(sizeof(struct iommu_nest_selftest_inv) ==
		   sizeof(struct iommu_hwpt_invalidate_selftest),
	       "mirror");

#define MAX_MSG 4096u

static int srv = -1;
static struct iommu_nest *h;

/* ---- Fake daemon --------------------------------------------------------- */

static void send_raw(const void *buf, size_t len)
{
	CU_ASSERT_EQUAL_FATAL(send(srv, buf, len, MSG_NOSIGNAL), (ssize_t)len);
}

static void send_reply(IommuNest__Reply *r)
{
	size_t len = iommu_nest__reply__get_packed_size(r);
	uint8_t *buf = malloc(len ? len : 1);

	iommu_nest__reply__pack(r, buf);
	send_raw(buf, len);
	free(buf);
}

static void send_status(uint64_t id, int32_t status, const char *text)
{
	IommuNest__Reply r = IOMMU_NEST__REPLY__INIT;

	r.id = id;
	r.status = status;
	r.error = (char *)(text ? text : "");
	send_reply(&r);
}

/* The next request the client sent; NULL if none is queued. */
static IommuNest__Request *recv_req(void)
{
	static uint8_t buf[1 << 20];
	ssize_t n = recv(srv, buf, sizeof(buf), MSG_DONTWAIT);

	if (n < 0)
		return NULL;
	return iommu_nest__request__unpack(NULL, (size_t)n, buf);
}

static bool no_request_queued(void)
{
	uint8_t b;

	return recv(srv, &b, 1, MSG_DONTWAIT | MSG_PEEK) < 0 && errno == EAGAIN;
}

static void send_hello(uint32_t version, uint32_t max_msg)
{
	static uint32_t hwpt_types[] = {1, 0xdead};
	static uint32_t inv_types[] = {0, 0xdeadbeef};
	static char *devices[] = {"dev0", "dev1"};
	IommuNest__Reply r = IOMMU_NEST__REPLY__INIT;
	IommuNest__HelloReply hr = IOMMU_NEST__HELLO_REPLY__INIT;

	hr.version = version;
	hr.backend = "fake";
	hr.n_hwpt_data_types = 2;
	hr.hwpt_data_types = hwpt_types;
	hr.n_inv_data_types = 2;
	hr.inv_data_types = inv_types;
	hr.max_entries = 1024;
	hr.max_message_size = max_msg;
	hr.capabilities = IOMMU_NEST_CAP_SIM_MODEL | IOMMU_NEST_CAP_CONTINUE;
	hr.n_devices = 2;
	hr.devices = devices;
	r.id = 1;
	r.body_case = IOMMU_NEST__REPLY__BODY_HELLO;
	r.hello = &hr;
	send_reply(&r);
}

static void send_inv_reply(uint64_t id, int32_t status, size_t n, const uint32_t *state,
			   const int32_t *error, uint32_t handled, uint32_t submitted)
{
	IommuNest__Reply r = IOMMU_NEST__REPLY__INIT;
	IommuNest__InvalidateReply ir = IOMMU_NEST__INVALIDATE_REPLY__INIT;
	uint32_t *hw = calloc(n ? n : 1, sizeof(*hw));

	if (n)
		hw[n - 1] = 0x20; /* a VT-d ITE on the last entry */
	ir.n_state = ir.n_error = ir.n_hw_error = n;
	ir.state = (uint32_t *)state;
	ir.error = (int32_t *)error;
	ir.hw_error = hw;
	ir.entries_handled = handled;
	ir.entries_submitted = submitted;
	ir.pages_flushed = 4 * n;
	r.id = id;
	r.status = status;
	r.body_case = IOMMU_NEST__REPLY__BODY_INVALIDATE;
	r.invalidate = &ir;
	send_reply(&r);
	free(hw);
}

/* A connected handle whose Hello (id 1) was answered with max_msg. */
static int open_handle(uint32_t version, uint32_t max_msg)
{
	int sv[2], err;

	CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	srv = sv[0];
	send_hello(version, max_msg);
	err = iommu_nest_connect_fd(sv[1], "unit", &h);
	return err;
}

static void setup(void)
{
	IommuNest__Request *rq;

	CU_ASSERT_EQUAL_FATAL(open_handle(1, MAX_MSG), 0);
	rq = recv_req();
	CU_ASSERT_PTR_NOT_NULL_FATAL(rq);
	CU_ASSERT_EQUAL(rq->id, 1);
	CU_ASSERT_EQUAL(rq->body_case, IOMMU_NEST__REQUEST__BODY_HELLO);
	CU_ASSERT_EQUAL(rq->hello->version, 1);
	CU_ASSERT_STRING_EQUAL(rq->hello->client_name, "unit");
	iommu_nest__request__free_unpacked(rq, NULL);
}

static void teardown(void)
{
	iommu_nest_close(h);
	h = NULL;
	if (srv >= 0)
		close(srv);
	srv = -1;
}

/* ---- Handshake ----------------------------------------------------------- */

static void test_hello_caps(void)
{
	const uint32_t *t;
	size_t n;

	setup();
	CU_ASSERT_EQUAL(iommu_nest_server_version(h), 1);
	CU_ASSERT_STRING_EQUAL(iommu_nest_backend(h), "fake");
	CU_ASSERT_EQUAL(iommu_nest_max_entries(h), 1024);
	CU_ASSERT_EQUAL(iommu_nest_max_message_size(h), MAX_MSG);
	CU_ASSERT_EQUAL(iommu_nest_capabilities(h),
			IOMMU_NEST_CAP_SIM_MODEL | IOMMU_NEST_CAP_CONTINUE);
	t = iommu_nest_hwpt_data_types(h, &n);
	CU_ASSERT_EQUAL(n, 2);
	CU_ASSERT_EQUAL(t[1], IOMMU_NEST_HWPT_DATA_SELFTEST);
	t = iommu_nest_inv_data_types(h, &n);
	CU_ASSERT_EQUAL(n, 2);
	CU_ASSERT_EQUAL(t[1], IOMMU_NEST_INV_DATA_SELFTEST);
	CU_ASSERT_EQUAL(iommu_nest_device_count(h), 2);
	CU_ASSERT_STRING_EQUAL(iommu_nest_device(h, 1), "dev1");
	CU_ASSERT_PTR_NULL(iommu_nest_device(h, 2));
	teardown();
}

static void test_hello_bad_version(void)
{
	CU_ASSERT_EQUAL(open_handle(2, MAX_MSG), -EPROTONOSUPPORT);
	CU_ASSERT_PTR_NULL(h);
	teardown();
}

static void test_hello_refused(void)
{
	int sv[2];

	CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	srv = sv[0];
	send_status(1, -EACCES, "not allowed");
	CU_ASSERT_EQUAL(iommu_nest_connect_fd(sv[1], NULL, &h), -EACCES);
	CU_ASSERT_PTR_NULL(h);
	teardown();
}

static void test_not_seqpacket(void)
{
	int sv[2];

	CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	CU_ASSERT_EQUAL(iommu_nest_connect_fd(sv[1], NULL, &h), -EPROTOTYPE);
	close(sv[0]);
}

/* ---- Simple requests ----------------------------------------------------- */

static void test_alloc_status_and_encoding(void)
{
	IommuNest__Reply r = IOMMU_NEST__REPLY__INIT;
	IommuNest__AllocReply ar = IOMMU_NEST__ALLOC_REPLY__INIT;
	IommuNest__Request *rq;
	uint32_t id = 0;

	setup();
	send_status(2, -ENODEV, "no such device: devX");
	CU_ASSERT_EQUAL(
	    iommu_nest_alloc_vtd_s1(h, "devX", IOMMU_NEST_VTD_S1_SRE, 0x123000, 48, &id), -ENODEV);
	CU_ASSERT_STRING_EQUAL(iommu_nest_last_error(h), "no such device: devX");
	rq = recv_req();
	CU_ASSERT_PTR_NOT_NULL_FATAL(rq);
	CU_ASSERT_EQUAL(rq->id, 2);
	CU_ASSERT_EQUAL_FATAL(rq->body_case, IOMMU_NEST__REQUEST__BODY_ALLOC);
	CU_ASSERT_STRING_EQUAL(rq->alloc->device, "devX");
	CU_ASSERT_EQUAL(rq->alloc->data_type, IOMMU_NEST_HWPT_DATA_VTD_S1);
	CU_ASSERT_EQUAL_FATAL(rq->alloc->data_case, IOMMU_NEST__ALLOC__DATA_VTD_S1);
	CU_ASSERT_EQUAL(rq->alloc->vtd_s1->flags, IOMMU_NEST_VTD_S1_SRE);
	CU_ASSERT_EQUAL(rq->alloc->vtd_s1->pgtbl_addr, 0x123000);
	CU_ASSERT_EQUAL(rq->alloc->vtd_s1->addr_width, 48);
	iommu_nest__request__free_unpacked(rq, NULL);

	ar.hwpt_id = 7;
	r.id = 3;
	r.body_case = IOMMU_NEST__REPLY__BODY_ALLOC;
	r.alloc = &ar;
	send_reply(&r);
	CU_ASSERT_EQUAL(iommu_nest_alloc_selftest(h, "dev0", 0x55, &id), 0);
	CU_ASSERT_EQUAL(id, 7);
	rq = recv_req();
	CU_ASSERT_PTR_NOT_NULL_FATAL(rq);
	CU_ASSERT_EQUAL(rq->alloc->data_type, IOMMU_NEST_HWPT_DATA_SELFTEST);
	CU_ASSERT_EQUAL_FATAL(rq->alloc->data_case, IOMMU_NEST__ALLOC__DATA_SELFTEST);
	CU_ASSERT_EQUAL(rq->alloc->selftest->iotlb, 0x55);
	iommu_nest__request__free_unpacked(rq, NULL);
	teardown();
}

/* A successful reply without the body the request implies. */
static void test_wrong_body(void)
{
	uint32_t id;

	setup();
	send_status(2, 0, NULL);
	CU_ASSERT_EQUAL(iommu_nest_alloc_selftest(h, "dev0", 1, &id), -EPROTO);
	/* The stream is still in step: the handle stays usable. */
	send_status(3, 0, NULL);
	CU_ASSERT_EQUAL(iommu_nest_destroy(h, 5), 0);
	send_status(4, 1234, NULL); /* not a negative errno */
	CU_ASSERT_EQUAL(iommu_nest_attach(h, "dev0", 5), -EPROTO);
	teardown();
}

static void test_stats_and_query(void)
{
	IommuNest__Reply r = IOMMU_NEST__REPLY__INIT;
	IommuNest__StatsReply sr = IOMMU_NEST__STATS_REPLY__INIT;
	IommuNest__SimQueryReply qr = IOMMU_NEST__SIM_QUERY_REPLY__INIT;
	struct iommu_nest_stats st;
	uint64_t iotlb = 0, psc = 0;

	setup();
	sr.requests = 11;
	sr.batches = 3;
	r.id = 2;
	r.body_case = IOMMU_NEST__REPLY__BODY_STATS;
	r.stats = &sr;
	send_reply(&r);
	CU_ASSERT_EQUAL(iommu_nest_stats(h, &st), 0);
	CU_ASSERT_EQUAL(st.requests, 11);
	CU_ASSERT_EQUAL(st.batches, 3);

	qr.iotlb_pages = 5;
	qr.psc_pages = 6;
	r.id = 3;
	r.body_case = IOMMU_NEST__REPLY__BODY_SIM_QUERY;
	r.sim_query = &qr;
	send_reply(&r);
	CU_ASSERT_EQUAL(iommu_nest_sim_query(h, 9, 0x1000, 8, &iotlb, &psc), 0);
	CU_ASSERT_EQUAL(iotlb, 5);
	CU_ASSERT_EQUAL(psc, 6);
	teardown();
}

/* ---- Invalidation -------------------------------------------------------- */

static const struct iommu_nest_vtd_inv three[] = {
    {.addr = 0x1000, .npages = 1, .flags = IOMMU_NEST_VTD_INV_FLAGS_LEAF},
    {.addr = 0x2001, .npages = 1},
    {.addr = 0x3000, .npages = 2},
};
static const uint32_t three_state[] = {IOMMU_NEST_ENTRY_DONE, IOMMU_NEST_ENTRY_FAILED,
				       IOMMU_NEST_ENTRY_NOT_ATTEMPTED};
static const int32_t three_err[] = {0, -EINVAL, 0};

static void test_invalidate_roundtrip(void)
{
	struct iommu_nest_entry_result res[3];
	struct iommu_nest_inv_summary sum;
	IommuNest__Request *rq;

	setup();
	send_inv_reply(2, -EINVAL, 3, three_state, three_err, 1, 1);
	CU_ASSERT_EQUAL(
	    iommu_nest_invalidate(h, 9, IOMMU_NEST_INV_DATA_VTD_S1, three, 3, 0, res, &sum),
	    -EINVAL);
	CU_ASSERT_EQUAL(sum.status, -EINVAL);
	CU_ASSERT_EQUAL(sum.entries_handled, 1);
	CU_ASSERT_EQUAL(sum.entries_submitted, 1);
	CU_ASSERT_EQUAL(sum.pages_flushed, 12);
	CU_ASSERT_EQUAL(res[0].state, IOMMU_NEST_ENTRY_DONE);
	CU_ASSERT_EQUAL(res[1].state, IOMMU_NEST_ENTRY_FAILED);
	CU_ASSERT_EQUAL(res[1].error, -EINVAL);
	CU_ASSERT_EQUAL(res[2].state, IOMMU_NEST_ENTRY_NOT_ATTEMPTED);
	CU_ASSERT_EQUAL(res[2].hw_error, 0x20);

	rq = recv_req();
	CU_ASSERT_PTR_NOT_NULL_FATAL(rq);
	CU_ASSERT_EQUAL_FATAL(rq->body_case, IOMMU_NEST__REQUEST__BODY_INVALIDATE);
	CU_ASSERT_EQUAL(rq->invalidate->hwpt_id, 9);
	CU_ASSERT_EQUAL_FATAL(rq->invalidate->n_addr, 3);
	CU_ASSERT_EQUAL_FATAL(rq->invalidate->n_npages, 3);
	CU_ASSERT_EQUAL(rq->invalidate->addr[1], 0x2001);
	CU_ASSERT_EQUAL(rq->invalidate->npages[2], 2);
	CU_ASSERT_EQUAL_FATAL(rq->invalidate->n_entry_flags, 3);
	CU_ASSERT_EQUAL(rq->invalidate->entry_flags[0], IOMMU_NEST_VTD_INV_FLAGS_LEAF);
	CU_ASSERT_EQUAL(rq->invalidate->entry_flags[1], 0);
	/* All-zero optional arrays are left out. */
	CU_ASSERT_EQUAL(rq->invalidate->n_entry_reserved, 0);
	CU_ASSERT_EQUAL(rq->invalidate->n_iotlb_id, 0);
	iommu_nest__request__free_unpacked(rq, NULL);
	teardown();
}

static void test_invalidate_selftest_and_raw(void)
{
	struct iommu_nest_selftest_inv st[2] = {{.iotlb_id = 3}, {.flags = 1}};
	struct iommu_nest_inv_raw raw = {
	    .hwpt_id = 4,
	    .data_type = 0x1234,
	    .flags = IOMMU_NEST_INV_CONTINUE,
	    .reserved = 5,
	    .entry_len = 16,
	    .layout = IOMMU_NEST_LAYOUT_VTD,
	    .entries = three,
	    .n = 3,
	};
	IommuNest__Request *rq;

	setup();
	send_inv_reply(2, 0, 0, NULL, NULL, 0, 0);
	CU_ASSERT_EQUAL(
	    iommu_nest_invalidate(h, 4, IOMMU_NEST_INV_DATA_SELFTEST, st, 2, 0, NULL, NULL),
	    0); /* empty per-entry arrays read as zero */
	rq = recv_req();
	CU_ASSERT_PTR_NOT_NULL_FATAL(rq);
	CU_ASSERT_EQUAL_FATAL(rq->invalidate->n_iotlb_id, 2);
	CU_ASSERT_EQUAL(rq->invalidate->iotlb_id[0], 3);
	CU_ASSERT_EQUAL_FATAL(rq->invalidate->n_entry_flags, 2);
	CU_ASSERT_EQUAL(rq->invalidate->entry_flags[1], 1);
	CU_ASSERT_EQUAL(rq->invalidate->n_addr, 0);
	iommu_nest__request__free_unpacked(rq, NULL);

	/* Unknown data types have no implied layout. */
	CU_ASSERT_EQUAL(iommu_nest_invalidate(h, 4, 0x1234, three, 3, 0, NULL, NULL), -EINVAL);
	CU_ASSERT(no_request_queued());

	send_status(3, -EOPNOTSUPP, "reserved");
	CU_ASSERT_EQUAL(iommu_nest_invalidate_raw(h, &raw, NULL, NULL), -EOPNOTSUPP);
	rq = recv_req();
	CU_ASSERT_PTR_NOT_NULL_FATAL(rq);
	CU_ASSERT_EQUAL(rq->invalidate->data_type, 0x1234);
	CU_ASSERT_EQUAL(rq->invalidate->flags, IOMMU_NEST_INV_CONTINUE);
	CU_ASSERT_EQUAL(rq->invalidate->reserved, 5);
	CU_ASSERT_EQUAL(rq->invalidate->entry_len, 16);
	CU_ASSERT_EQUAL(rq->invalidate->n_addr, 3);
	iommu_nest__request__free_unpacked(rq, NULL);
	teardown();
}

/* A request-level failure without a body: every entry NOT_ATTEMPTED. */
static void test_invalidate_request_error(void)
{
	struct iommu_nest_entry_result res[3];
	struct iommu_nest_inv_summary sum;

	setup();
	memset(res, 0xff, sizeof(res));
	send_status(2, -ENOENT, "no such hwpt");
	CU_ASSERT_EQUAL(iommu_nest_invalidate(h, 4, 0, three, 3, 0, res, &sum), -ENOENT);
	CU_ASSERT_EQUAL(sum.status, -ENOENT);
	CU_ASSERT_EQUAL(sum.entries_handled, 0);
	CU_ASSERT_EQUAL(res[2].state, IOMMU_NEST_ENTRY_NOT_ATTEMPTED);
	CU_ASSERT_EQUAL(res[2].error, 0);
	teardown();
}

static void test_invalidate_malformed_reply(void)
{
	static const uint32_t bad_run[] = {IOMMU_NEST_ENTRY_DONE, IOMMU_NEST_ENTRY_DONE,
					   IOMMU_NEST_ENTRY_FAILED};
	static const uint32_t bad_state[] = {7, 0, 0};
	struct iommu_nest_entry_result res[3];

	setup();
	/* Wrong array length. */
	send_inv_reply(2, 0, 2, three_state, three_err, 1, 1);
	CU_ASSERT_EQUAL(iommu_nest_invalidate(h, 4, 0, three, 3, 0, res, NULL), -EPROTO);
	/* entries_handled disagrees with the leading run of DONE. */
	send_inv_reply(3, -EINVAL, 3, bad_run, three_err, 1, 1);
	CU_ASSERT_EQUAL(iommu_nest_invalidate(h, 4, 0, three, 3, 0, res, NULL), -EPROTO);
	/* Unknown state. */
	send_inv_reply(4, 0, 3, bad_state, three_err, 0, 1);
	CU_ASSERT_EQUAL(iommu_nest_invalidate(h, 4, 0, three, 3, 0, res, NULL), -EPROTO);
	/* The stream is in step: the handle still works. */
	send_inv_reply(5, -EINVAL, 3, three_state, three_err, 1, 1);
	CU_ASSERT_EQUAL(iommu_nest_invalidate(h, 4, 0, three, 3, 0, res, NULL), -EINVAL);
	teardown();
}

static void test_emsgsize(void)
{
	struct iommu_nest_vtd_inv *e = calloc(400, sizeof(*e));
	struct iommu_nest_stats st;
	size_t i;

	setup();
	for (i = 0; i < 400; i++)
		e[i].addr = ~0ull << 12; /* ten-byte varints */
	CU_ASSERT_EQUAL(iommu_nest_invalidate(h, 4, 0, e, 400, 0, NULL, NULL), -EMSGSIZE);
	CU_ASSERT_EQUAL(iommu_nest_invalidate(h, 4, 0, e, MAX_MSG + 1, 0, NULL, NULL), -EMSGSIZE);
	CU_ASSERT(no_request_queued());
	/* Nothing was sent and the id was not used: the handle goes on. */
	send_status(2, -EIO, NULL);
	CU_ASSERT_EQUAL(iommu_nest_stats(h, &st), -EIO);
	free(e);
	teardown();
}

/* Decoded replies larger than the arena's block spill and then grow it. */
static void test_large_reply(void)
{
	enum { N = 600 };
	struct iommu_nest_vtd_inv *e = calloc(N, sizeof(*e));
	struct iommu_nest_entry_result *res = calloc(N, sizeof(*res));
	uint32_t *state = calloc(N, sizeof(*state));
	int32_t *err = calloc(N, sizeof(*err));
	struct iommu_nest_inv_summary sum;
	int round;
	size_t i;

	setup();
	for (i = 0; i < N; i++)
		state[i] = IOMMU_NEST_ENTRY_DONE;
	for (round = 0; round < 2; round++) {
		send_inv_reply(2 + round, 0, N, state, err, N, 1);
		CU_ASSERT_EQUAL(iommu_nest_invalidate(h, 4, 0, e, N, 0, res, &sum), 0);
		CU_ASSERT_EQUAL(sum.entries_handled, N);
		CU_ASSERT_EQUAL(res[N - 1].state, IOMMU_NEST_ENTRY_DONE);
		CU_ASSERT_EQUAL(res[N - 1].hw_error, 0x20);
	}
	free(e);
	free(res);
	free(state);
	free(err);
	teardown();
}

/* ---- Framing failures (fatal for the handle) ----------------------------- */

static void expect_dead(int err)
{
	CU_ASSERT_EQUAL(iommu_nest_destroy(h, 1), err);
	CU_ASSERT_EQUAL(iommu_nest_process(h), err);
}

static void test_truncated_reply(void)
{
	char *text = malloc(2 * MAX_MSG);

	setup();
	memset(text, 'x', 2 * MAX_MSG - 1);
	text[2 * MAX_MSG - 1] = 0;
	send_status(2, -EINVAL, text);
	CU_ASSERT_EQUAL(iommu_nest_destroy(h, 1), -EPROTO);
	expect_dead(-EPROTO);
	free(text);
	teardown();
}

static void test_garbage_reply(void)
{
	static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};

	setup();
	send_raw(junk, sizeof(junk));
	CU_ASSERT_EQUAL(iommu_nest_destroy(h, 1), -EPROTO);
	expect_dead(-EPROTO);
	teardown();
}

static void test_unknown_id(void)
{
	setup();
	send_status(99, 0, NULL);
	CU_ASSERT_EQUAL(iommu_nest_destroy(h, 1), -EPROTO);
	expect_dead(-EPROTO);
	teardown();
}

/* The daemon's last word before it drops us: an error reply with id 0. */
static void test_connection_error_reply(void)
{
	setup();
	send_status(0, -EMSGSIZE, "message too large");
	CU_ASSERT_EQUAL(iommu_nest_destroy(h, 1), -EMSGSIZE);
	CU_ASSERT_STRING_EQUAL(iommu_nest_last_error(h), "daemon: message too large");
	expect_dead(-EMSGSIZE);
	teardown();
}

static void test_daemon_gone(void)
{
	int err;

	setup();
	close(srv);
	srv = -1;
	err = iommu_nest_destroy(h, 1);
	CU_ASSERT(err == -EPIPE || err == -ECONNRESET);
	expect_dead(err);
	teardown();
}

static void test_eof_while_waiting(void)
{
	setup();
	/* Shut the daemon's side for writing: our send works, recv sees EOF. */
	CU_ASSERT_EQUAL(shutdown(srv, SHUT_WR), 0);
	CU_ASSERT_EQUAL(iommu_nest_destroy(h, 1), -ECONNRESET);
	teardown();
}

/* ---- Async --------------------------------------------------------------- */

struct completion {
	uint64_t token;
	int32_t status;
	uint32_t handled;
	uint32_t state1;
	size_t n;
};

static struct completion done[8];
static int n_done;

static void on_done(struct iommu_nest *hh, uint64_t token, const struct iommu_nest_inv_summary *sum,
		    struct iommu_nest_entry_result *res, size_t n, void *opaque)
{
	struct completion *c = &done[n_done++];

	CU_ASSERT_PTR_EQUAL(hh, h);
	CU_ASSERT_PTR_EQUAL(opaque, &done);
	c->token = token;
	c->status = sum->status;
	c->handled = sum->entries_handled;
	c->state1 = res ? res[1].state : 99;
	c->n = n;
}

static void test_async_out_of_order(void)
{
	struct iommu_nest_entry_result res[3][3];
	uint64_t tok[3];
	int i;

	setup();
	n_done = 0;
	for (i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(iommu_nest_invalidate_submit(h, 4, 0, three, 3, 0, res[i], on_done,
							     &done, &tok[i]),
				0);
	CU_ASSERT_EQUAL(tok[0], 2);
	CU_ASSERT_EQUAL(tok[2], 4);
	CU_ASSERT_EQUAL(iommu_nest_in_flight(h), 3);
	/* Nothing to read yet. */
	CU_ASSERT_EQUAL(iommu_nest_process(h), 0);

	send_inv_reply(4, -EINVAL, 3, three_state, three_err, 1, 1);
	send_inv_reply(2, -EINVAL, 3, three_state, three_err, 1, 1);
	CU_ASSERT_EQUAL(iommu_nest_process(h), 2);
	CU_ASSERT_EQUAL(iommu_nest_in_flight(h), 1);
	send_inv_reply(3, -EINVAL, 3, three_state, three_err, 1, 1);
	CU_ASSERT_EQUAL(iommu_nest_process(h), 1);
	CU_ASSERT_EQUAL_FATAL(n_done, 3);
	CU_ASSERT_EQUAL(done[0].token, 4);
	CU_ASSERT_EQUAL(done[1].token, 2);
	CU_ASSERT_EQUAL(done[2].token, 3);
	CU_ASSERT_EQUAL(done[0].status, -EINVAL);
	CU_ASSERT_EQUAL(done[0].handled, 1);
	CU_ASSERT_EQUAL(done[0].state1, IOMMU_NEST_ENTRY_FAILED);
	CU_ASSERT_EQUAL(res[2][1].error, -EINVAL);
	CU_ASSERT_EQUAL(iommu_nest_in_flight(h), 0);
	/* A second reply for a delivered token is a protocol violation. */
	send_inv_reply(3, 0, 3, three_state, three_err, 1, 1);
	CU_ASSERT_EQUAL(iommu_nest_process(h), -EPROTO);
	teardown();
}

/* A sync call reads an async completion first; process() delivers it. */
static void test_async_interleaved_sync(void)
{
	struct iommu_nest_entry_result res[3];
	uint64_t tok;

	setup();
	n_done = 0;
	CU_ASSERT_EQUAL(
	    iommu_nest_invalidate_submit(h, 4, 0, three, 3, 0, res, on_done, &done, &tok), 0);
	send_inv_reply(tok, -EINVAL, 3, three_state, three_err, 1, 1);
	send_status(tok + 1, 0, NULL);
	CU_ASSERT_EQUAL(iommu_nest_destroy(h, 4), 0);
	CU_ASSERT_EQUAL(n_done, 0); /* callbacks only run from process() */
	CU_ASSERT_EQUAL(iommu_nest_pending(h), 1);
	CU_ASSERT_EQUAL(iommu_nest_process(h), 1);
	CU_ASSERT_EQUAL(n_done, 1);
	CU_ASSERT_EQUAL(done[0].token, tok);
	CU_ASSERT_EQUAL(iommu_nest_pending(h), 0);
	teardown();
}

static void test_async_connection_drop(void)
{
	struct iommu_nest_entry_result res[2][3];
	uint64_t tok;

	setup();
	n_done = 0;
	CU_ASSERT_EQUAL(
	    iommu_nest_invalidate_submit(h, 4, 0, three, 3, 0, res[0], on_done, &done, &tok), 0);
	CU_ASSERT_EQUAL(
	    iommu_nest_invalidate_submit(h, 4, 0, three, 3, 0, res[1], on_done, &done, NULL), 0);
	/*
	 * Read the requests first: a peer closing with unread data makes the
	 * kernel report ECONNRESET ahead of the replies already queued.
	 */
	iommu_nest__request__free_unpacked(recv_req(), NULL);
	iommu_nest__request__free_unpacked(recv_req(), NULL);
	send_inv_reply(tok, 0, 3, three_state, three_err, 1, 1);
	close(srv);
	srv = -1;
	CU_ASSERT_EQUAL(iommu_nest_process(h), -ECONNRESET);
	CU_ASSERT_EQUAL_FATAL(n_done, 2);
	CU_ASSERT_EQUAL(done[0].status, 0);
	CU_ASSERT_EQUAL(done[1].status, -ECONNRESET);
	CU_ASSERT_EQUAL(done[1].state1, IOMMU_NEST_ENTRY_NOT_ATTEMPTED);
	CU_ASSERT_EQUAL(iommu_nest_in_flight(h), 0);
	CU_ASSERT_EQUAL(
	    iommu_nest_invalidate_submit(h, 4, 0, three, 3, 0, res[0], on_done, &done, NULL),
	    -ECONNRESET);
	teardown();
}

/* Callbacks may submit more work (an event loop's usual pattern). */
static int resubmits;

static void on_done_resubmit(struct iommu_nest *hh, uint64_t token,
			     const struct iommu_nest_inv_summary *sum,
			     struct iommu_nest_entry_result *res, size_t n, void *opaque)
{
	if (resubmits++ < 1)
		CU_ASSERT_EQUAL(iommu_nest_invalidate_submit(hh, 4, 0, three, 3, 0, res,
							     on_done_resubmit, opaque, NULL),
				0);
}

static void test_async_resubmit_from_callback(void)
{
	struct iommu_nest_entry_result res[3];

	setup();
	resubmits = 0;
	CU_ASSERT_EQUAL(
	    iommu_nest_invalidate_submit(h, 4, 0, three, 3, 0, res, on_done_resubmit, NULL, NULL),
	    0);
	send_inv_reply(2, 0, 3, three_state, three_err, 1, 1);
	CU_ASSERT_EQUAL(iommu_nest_process(h), 1);
	CU_ASSERT_EQUAL(iommu_nest_in_flight(h), 1);
	send_inv_reply(3, 0, 3, three_state, three_err, 1, 1);
	CU_ASSERT_EQUAL(iommu_nest_process(h), 1);
	CU_ASSERT_EQUAL(resubmits, 2);
	teardown();
}

int main(void)
{
	static const struct unit_case tests[] = {
	    {"hello caps", test_hello_caps},
	    {"hello bad version", test_hello_bad_version},
	    {"hello refused", test_hello_refused},
	    {"not seqpacket", test_not_seqpacket},
	    {"alloc status and encoding", test_alloc_status_and_encoding},
	    {"wrong body", test_wrong_body},
	    {"stats and query", test_stats_and_query},
	    {"invalidate roundtrip", test_invalidate_roundtrip},
	    {"invalidate selftest and raw", test_invalidate_selftest_and_raw},
	    {"invalidate request error", test_invalidate_request_error},
	    {"invalidate malformed reply", test_invalidate_malformed_reply},
	    {"emsgsize", test_emsgsize},
	    {"large reply", test_large_reply},
	    {"truncated reply", test_truncated_reply},
	    {"garbage reply", test_garbage_reply},
	    {"unknown id", test_unknown_id},
	    {"connection error reply", test_connection_error_reply},
	    {"daemon gone", test_daemon_gone},
	    {"eof while waiting", test_eof_while_waiting},
	    {"async out of order", test_async_out_of_order},
	    {"async interleaved sync", test_async_interleaved_sync},
	    {"async connection drop", test_async_connection_drop},
	    {"async resubmit from callback", test_async_resubmit_from_callback},
	};
	int rc;

	rc = unit_run("client", UNIT_CASES(tests));
	return rc;
}
