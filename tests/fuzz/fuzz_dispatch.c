/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for the daemon's request path: server_handle_packet() ->
 * handle_*() -> validation -> batch (coalesce, submit to the sim backend,
 * map results back) -> encode, on real AF_UNIX SOCK_SEQPACKET sessions.
 *
 * Set up once: config (sim backend, test requests on, a VT-d, a second
 * VT-d, a selftest device and two ARM SMMUv3 devices), event_base, server. Per input: a fresh sim
 * backend (so object ids, caches and injected faults start the same for
 * every run of an input) and up to two client sessions, A and B, each on a
 * socketpair whose peer end the harness reads and checks after every step.
 * The input is a SEQUENCE of packets, so stateful runs (hello, alloc,
 * attach, invalidate, destroy, ...) are explored, with two tenants.
 *
 * Input layout:
 *   byte 0  bit 0: send a valid Hello first on every new session
 *           bit 1: coalescing off
 *           bit 2: end without a final flush (session_free submits the
 *                  queued invalidations itself)
 *           bit 3: the sim follows Linux 7.x rules (vIOMMU and vDEVICE
 *                  objects, SMMUv3 command invalidation); else 6.12's
 *   byte 1  vtd_max_mask   byte 2  bits 0-2 slack, bits 3-5 flush_all
 *   byte 3  batch chunk size (0: the kernel's 2^19)
 *   then packets: u16 little endian, bit 15 = session B, bits 0-14 the
 *   length; then that many bytes (fewer at the end of the input).
 *
 * The run aborts (a crash for libFuzzer) when an invariant breaks:
 *   - the harness's decode of a packet and server_handle_packet() disagree;
 *   - a decodable request does not get exactly one decodable reply of at
 *     most max_message_size bytes (Invalidate: now, or after the batch ran);
 *     a session is closed by anything but a broken frame;
 *   - an InvalidateReply's per-entry arrays do not have the request's
 *     length, entries_handled is not the leading run of DONE, the states do
 *     not have the kernel's shape (without INV_CONTINUE: DONE* then at most
 *     one FAILED then NOT_ATTEMPTED*), status 0 without every entry DONE,
 *     status not the first failure's errno;
 *   - an entry reported DONE whose pages (leaf: IOTLB; non-leaf: IOTLB and
 *     paging-structure cache) or mock IOTLB slot the sim still caches: the
 *     daemon acknowledged an invalidation that did not happen;
 *   - an SMMUv3 TLBI_NH_VA (one page, or a 4 KiB-granule range) or
 *     TLBI_NH_ASID reported DONE whose pages the sim's SMMU TLB still
 *     holds for that ASID under the vIOMMU's VMID;
 *   - a request naming a HWPT (or device binding) of another session, or
 *     none, succeeds; so does one naming a vIOMMU or vDEVICE not its own;
 *   - a vIOMMU or vDEVICE outlives the sessions.
 *
 * NESTD_FUZZ_LOG=<syslog level> turns the daemon's log on (default: off);
 * NESTD_FUZZ_TRACE=1 prints every request and reply (to replay one input).
 */
#include <endian.h>
#include <errno.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend/backend.h"
#include "util/config.h"
#include "req/dispatch.h"
#include "state/registry.h"
#include "state/viommus.h"
#include "backend/viommu_uapi.h"
#include "iommu_nest.pb-c.h"
#include "backend/iommufd_uapi.h"
#include "util/log.h"
#include "net/server.h"
#include "net/session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PACKETS 128
#define MAX_QUEUED  256
/* InjectFault latency the harness lets through: the sim really sleeps. */
#define MAX_LATENCY_US 100
#define HELLO_ID       0x4e455354ULL
/* vtd0, mock0, vtd1; under 7.x rules also sm0, sm1. */
#define N_DEVICES_6_12 3
#define N_DEVICES_7    5

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_dispatch: invariant broken: %s\n  ", #cond);         \
			fprintf(stderr, __VA_ARGS__);                                              \
			fprintf(stderr, "\n");                                                     \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* One client: the daemon's session and our end of its socket. */
struct client {
	struct session *s;
	int peer;
	bool closing_expected; /* we marked it (broken frame) */
	/* Invalidate requests queued in the batch, answered at the next flush. */
	IommuNest__Request *queued[MAX_QUEUED];
	uint32_t n_queued;
};

static struct {
	bool init;
	struct config cfg;
	struct event_base *base;
	struct server srv;
	bool srv_ok;
	struct backend *be;
	struct client cl[2];
	uint8_t *rx;
	size_t rx_cap;
	uint8_t *hello;
	size_t hello_len;
	bool auto_hello;
	bool trace;
} H;

static void trace_reply(const struct client *c, const IommuNest__Reply *rep)
{
	if (!H.trace)
		return;
	fprintf(stderr, "  %c <- id %llu status %d body %d%s%s", c == &H.cl[0] ? 'A' : 'B',
		(unsigned long long)rep->id, rep->status, rep->body_case, rep->error ? " " : "",
		rep->error ? rep->error : "");
	if (rep->body_case == IOMMU_NEST__REPLY__BODY_ALLOC)
		fprintf(stderr, " hwpt %u", rep->alloc->hwpt_id);
	if (rep->body_case == IOMMU_NEST__REPLY__BODY_INVALIDATE) {
		fprintf(stderr, " handled %u submitted %u states", rep->invalidate->entries_handled,
			rep->invalidate->entries_submitted);
		for (size_t i = 0; i < rep->invalidate->n_state && i < 32; i++)
			fprintf(stderr, " %u", rep->invalidate->state[i]);
	}
	if (rep->body_case == IOMMU_NEST__REPLY__BODY_SIM_QUERY)
		fprintf(stderr, " iotlb %llu psc %llu",
			(unsigned long long)rep->sim_query->iotlb_pages,
			(unsigned long long)rep->sim_query->psc_pages);
	fprintf(stderr, "\n");
}

static void add_device(struct config *cfg, const char *name, enum device_kind kind)
{
	struct config_device *d = &cfg->devices[cfg->n_devices++];

	snprintf(d->name, sizeof(d->name), "%s", name);
	d->kind = kind;
}

static void client_forget_queued(struct client *c)
{
	for (uint32_t i = 0; i < c->n_queued; i++)
		iommu_nest__request__free_unpacked(c->queued[i], NULL);
	c->n_queued = 0;
}

static void forget_on_viommu(const struct session *s);

/* Frees the session (which may answer queued requests) but not the peer yet. */
static void client_free_session(struct client *c)
{
	if (!c->s)
		return;
	forget_on_viommu(c->s);
	session_free(c->s);
	c->s = NULL;
}

static void client_close_peer(struct client *c)
{
	if (c->peer >= 0)
		close(c->peer);
	c->peer = -1;
	c->closing_expected = false;
	client_forget_queued(c);
}

static void cleanup(void)
{
	for (int i = 0; i < 2; i++) {
		client_free_session(&H.cl[i]);
		client_close_peer(&H.cl[i]);
	}
	if (H.srv_ok)
		server_fini(&H.srv);
	H.srv_ok = false;
	if (H.be)
		H.be->ops->close(H.be);
	H.be = NULL;
	if (H.base)
		event_base_free(H.base);
	H.base = NULL;
	libevent_global_shutdown();
	free(H.rx);
	free(H.hello);
	H.rx = H.hello = NULL;
}

static void setup(void)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__Hello hello = IOMMU_NEST__HELLO__INIT;
	const char *lvl = getenv("NESTD_FUZZ_LOG");
	int rc;

	log_set_level(lvl ? atoi(lvl) : -1);
	H.trace = getenv("NESTD_FUZZ_TRACE") != NULL;
	config_defaults(&H.cfg);
	snprintf(H.cfg.backend, sizeof(H.cfg.backend), "sim");
	H.cfg.test_requests = true;
	/*
	 * A VM context per client, the daemon's default (ids repeat across
	 * clients); NESTD_FUZZ_VM_CONTEXTS=0: the root mode.
	 */
	H.cfg.vm_contexts =
	    !getenv("NESTD_FUZZ_VM_CONTEXTS") || strcmp(getenv("NESTD_FUZZ_VM_CONTEXTS"), "0");
	H.cfg.n_devices = 0;
	add_device(&H.cfg, "vtd0", DEVICE_KIND_VTD);
	add_device(&H.cfg, "mock0", DEVICE_KIND_SELFTEST);
	add_device(&H.cfg, "vtd1", DEVICE_KIND_VTD);
	/*
	 * Configured only under 7.x rules (header bit 3), so that the 6.12
	 * inputs keep their object ids (each device's nest parent takes one).
	 */
	add_device(&H.cfg, "sm0", DEVICE_KIND_SMMUV3);
	add_device(&H.cfg, "sm1", DEVICE_KIND_SMMUV3);
	H.cfg.n_devices = N_DEVICES_6_12;

	H.base = event_base_new();
	CHECK(H.base, "event_base_new");
	rc = backend_open(&H.cfg, &H.be, &(const char *){NULL});
	CHECK(rc == 0, "backend_open: %d", rc);
	rc = server_init(&H.srv, H.base, &H.cfg, H.be);
	CHECK(rc == 0, "server_init: %d", rc);
	H.srv_ok = true;
	H.rx_cap = (size_t)H.cfg.max_message_size + 1;
	H.rx = malloc(H.rx_cap);

	hello.version = 1;
	hello.client_name = "fuzz";
	req.id = HELLO_ID;
	req.body_case = IOMMU_NEST__REQUEST__BODY_HELLO;
	req.hello = &hello;
	H.hello_len = iommu_nest__request__get_packed_size(&req);
	H.hello = malloc(H.hello_len);
	CHECK(H.rx && H.hello, "out of memory");
	iommu_nest__request__pack(&req, H.hello);
	for (int i = 0; i < 2; i++)
		H.cl[i].peer = -1;
	atexit(cleanup);
}

static void client_open(struct client *c)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int sv[2];

	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0,
	      "socketpair: %s", strerror(errno));
	CHECK(getsockopt(sv[0], SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0, "SO_PEERCRED");
	/*
	 * A is root, an admin; B a plain tenant (uid 1000, not in the empty
	 * admin_groups), so both sides of every admin rule get exercised.
	 */
	if (c != &H.cl[0])
		cred.uid = cred.gid = 1000;
	c->s = session_new(&H.srv, sv[0], &cred);
	CHECK(c->s, "session_new");
	/* What net/server.c on_accept does with a new session. */
	TAILQ_INSERT_TAIL(&H.srv.sessions, c->s, link);
	H.srv.stats.connections++;
	H.srv.stats.sessions_active++;
	c->peer = sv[1];
	c->closing_expected = false;
	c->n_queued = 0;
}

/* ---- reply checks ---- */

static bool is_done(uint32_t st)
{
	return st == IOMMU_NEST__ENTRY_STATE__ENTRY_DONE;
}

struct id_search {
	uint32_t id;
	uint64_t client_id; /* 0: any live client */
	const struct hwpt_entry *found;
	uint32_t n;
};

static void match_id(struct hwpt_entry *e, void *arg)
{
	struct id_search *is = arg;

	if (e->id != is->id || !e->owner ||
	    (is->client_id && ((const struct session *)e->owner)->id != is->client_id))
		return;
	is->found = e;
	is->n++;
}

/*
 * The one live HWPT called id (of client_id, 0: of anyone), or NULL when
 * none or several are: every client has its own VM context, ids repeat.
 */
static const struct hwpt_entry *live_hwpt(const struct hwpt_registry *reg, uint32_t id,
					  uint64_t client_id)
{
	struct id_search is = {.id = id, .client_id = client_id};

	hwpt_registry_for_each(reg, match_id, &is);
	return is.n == 1 ? is.found : NULL;
}

/*
 * The sim must no longer cache what a DONE entry invalidated. Only
 * meaningful while the HWPT exists (not after its session went away).
 */
static void check_done_in_sim(const IommuNest__Invalidate *m, uint32_t i)
{
	const struct hwpt_entry *e = live_hwpt(&H.srv.reg, m->hwpt_id, m->client_id);
	struct backend *be = e ? e->be : H.srv.be;
	uint32_t flags = m->n_entry_flags ? m->entry_flags[i] : 0;
	int rc;

	if (!e || e->inv_type != m->data_type)
		return;
	/* A DONE entry always comes from arrays of its own type. */
	CHECK(m->data_type != IOMMU_HWPT_INVALIDATE_DATA_VTD_S1 ||
		  (m->n_addr > i && !m->n_iotlb_id),
	      "hwpt %u entry %u DONE without VT-d arrays describing it", m->hwpt_id, i);
	CHECK(m->data_type != IOMMU_HWPT_INVALIDATE_DATA_SELFTEST ||
		  (m->n_iotlb_id > i && !m->n_addr),
	      "hwpt %u entry %u DONE without selftest arrays describing it", m->hwpt_id, i);
	if (m->data_type == IOMMU_HWPT_INVALIDATE_DATA_VTD_S1 && m->n_addr) {
		uint64_t iotlb = 0, psc = 0;

		rc = be->ops->sim_query(be, m->hwpt_id, m->addr[i], m->npages[i], &iotlb, &psc);
		CHECK(rc == 0, "sim_query hwpt %u entry %u: %d", m->hwpt_id, i, rc);
		CHECK(iotlb == 0 && ((flags & IOMMU_VTD_INV_FLAGS_LEAF) || psc == 0),
		      "hwpt %u entry %u (addr %#llx npages %#llx flags %#x) DONE but the sim "
		      "still caches %llu IOTLB / %llu PSC pages of it",
		      m->hwpt_id, i, (unsigned long long)m->addr[i],
		      (unsigned long long)m->npages[i], flags, (unsigned long long)iotlb,
		      (unsigned long long)psc);
	} else if (m->data_type == IOMMU_HWPT_INVALIDATE_DATA_SELFTEST && m->n_iotlb_id) {
		bool all = flags & IOMMU_TEST_INVALIDATE_FLAG_ALL;

		for (uint32_t k = 0; k < MOCK_NESTED_DOMAIN_IOTLB_NUM; k++) {
			if (!all && k != m->iotlb_id[i])
				continue;
			rc = be->ops->check_iotlb(be, m->hwpt_id, k, 0);
			CHECK(rc == 0,
			      "hwpt %u entry %u (slot %u%s) DONE but mock slot %u not clear",
			      m->hwpt_id, i, m->iotlb_id[i], all ? ", ALL" : "", k);
		}
	}
}

/* How many entries a vIOMMU Invalidate carries: raw bytes, entry_len each (0: native). */
static size_t viommu_entries(const IommuNest__Invalidate *m)
{
	uint32_t len = m->entry_len;

	if (!len)
		len = m->data_type == NESTD_VIOMMU_INV_DATA_ARM_SMMUV3 ? 16
		      : m->data_type == NESTD_VIOMMU_INV_DATA_SELFTEST ? 12
								       : 0;
	return len && m->raw_entries.len % len == 0 ? m->raw_entries.len / len : 0;
}

static bool on_viommu(const IommuNest__Invalidate *m)
{
	return m->object_kind == IOMMU_NEST__OBJECT_KIND__OBJECT_VIOMMU;
}

/*
 * Which nested HWPT sits on which vIOMMU (the registry keeps the nest
 * parent): noted from every successful Alloc with a viommu_id.
 */
#define MAX_ON_VIOMMU 64
struct on_viommu {
	const struct session *owner;
	uint32_t hwpt, viommu;
};
static struct on_viommu on_v[MAX_ON_VIOMMU];
static uint32_t n_on_v;

/* hwpt of s was just allocated (viommu 0: on its nest parent): an id reused drops its old note. */
static void note_on_viommu(const struct session *s, uint32_t hwpt, uint32_t viommu)
{
	uint32_t k = 0;

	for (uint32_t i = 0; i < n_on_v; i++)
		if (on_v[i].owner != s || on_v[i].hwpt != hwpt)
			on_v[k++] = on_v[i];
	n_on_v = k;
	if (viommu && n_on_v < MAX_ON_VIOMMU)
		on_v[n_on_v++] = (struct on_viommu){s, hwpt, viommu};
}

/* A live HWPT of s on viommu: the SMMU TLB of the vIOMMU's VMID through it. */
static const struct hwpt_entry *hwpt_on_viommu(const struct session *s, uint32_t viommu)
{
	for (uint32_t i = 0; i < n_on_v; i++) {
		const struct hwpt_entry *e;

		if (on_v[i].owner != s || on_v[i].viommu != viommu)
			continue;
		e = hwpt_registry_lookup_owned(&H.srv.reg, on_v[i].hwpt, s);
		if (e)
			return e;
	}
	return NULL;
}

/* A session's notes go with it (a new session may get the same address). */
static void forget_on_viommu(const struct session *s)
{
	uint32_t k = 0;

	for (uint32_t i = 0; i < n_on_v; i++)
		if (on_v[i].owner != s)
			on_v[k++] = on_v[i];
	n_on_v = k;
}

/*
 * An SMMUv3 command reported DONE: what it names is gone from the sim's
 * SMMU TLB (VMID of the vIOMMU, so any nested HWPT on it answers). Checked
 * for TLBI_NH_VA with one address or a 4 KiB-granule range without TTL,
 * and for TLBI_NH_ASID over the low 2^48 bytes (SimPopulate makes no
 * global leaves, which NH_ASID spares); other commands are not leaf TLB
 * entries of one ASID the model can be asked about.
 */
static void check_done_smmu(const struct client *c, const IommuNest__Invalidate *m, uint32_t i)
{
	uint32_t len = m->entry_len ? m->entry_len : 16;
	uint64_t w[2] = {0, 0}, iotlb = 0, psc = 0, va, npages;
	const struct hwpt_entry *e = hwpt_on_viommu(c->s, m->hwpt_id);
	unsigned op, tg, num, scale;
	uint32_t asid;
	bool leaf;
	int rc;

	memcpy(w, m->raw_entries.data + (size_t)i * len, len < 16 ? len : 16);
	w[0] = le64toh(w[0]);
	w[1] = le64toh(w[1]);
	op = w[0] & 0xff;
	asid = (uint32_t)(w[0] >> 48);
	if (!e)
		return;
	if (op == 0x11) { /* TLBI_NH_ASID */
		va = 0;
		npages = 1ULL << 36;
		leaf = false;
	} else if (op == 0x12) { /* TLBI_NH_VA */
		tg = (w[1] >> 10) & 3;
		num = (w[0] >> 12) & 0x1f;
		scale = (w[0] >> 20) & 0x1f;
		leaf = w[1] & 1;
		va = w[1] & ~0xfffULL; /* bits 63:12, all of them (the sim's reading) */
		/* A range's TTL lets leaves of other levels stay: only TTL 0 is checked. */
		if (tg == 0)
			npages = 1;
		else if (tg == 1 && !((w[1] >> 8) & 3))
			npages = (uint64_t)(num + 1) << scale;
		else
			return;
		if (va + npages * 4096 - 1 < va)
			return; /* past the top: the model clips it */
	} else {
		return;
	}
	rc = H.be->ops->sim_smmu_query(e->be ? e->be : H.be, e->id, asid, va, npages, &iotlb, &psc);
	if (H.trace)
		fprintf(stderr,
			"    entry %u: op %#x asid %u va %#llx %llu pages: %llu/%llu cached\n", i,
			op, asid, (unsigned long long)va, (unsigned long long)npages,
			(unsigned long long)iotlb, (unsigned long long)psc);
	CHECK(rc == 0, "sim_smmu_query viommu %u entry %u: %d", m->hwpt_id, i, rc);
	CHECK(iotlb == 0 && (leaf || psc == 0),
	      "viommu %u entry %u (op %#x asid %u va %#llx, %llu pages%s) DONE but the SMMU TLB "
	      "still holds %llu leaf / %llu walk entries of it",
	      m->hwpt_id, i, op, asid, (unsigned long long)va, (unsigned long long)npages,
	      leaf ? ", leaf" : "", (unsigned long long)iotlb, (unsigned long long)psc);
}

/*
 * submitted: the request went through the batch (else it was answered
 * before anything was submitted: nothing may be DONE). sim: its HWPT still
 * exists, so the sim's caches can be checked.
 */
static void check_invalidate_reply(const struct client *c, const IommuNest__Request *req,
				   const IommuNest__Reply *rep, bool submitted, bool sim)
{
	const IommuNest__Invalidate *m = req->invalidate;
	const IommuNest__InvalidateReply *ir = rep->invalidate;
	size_t n = on_viommu(m)		       ? viommu_entries(m)
		   : m->n_addr > m->n_iotlb_id ? m->n_addr
					       : m->n_iotlb_id;
	const struct vobj *v =
	    on_viommu(m) && c->s
		? vobj_lookup_owned(&H.srv.reg.vobjs, VOBJ_VIOMMU, m->hwpt_id, c->s)
		: NULL;
	/*
	 * An SMMUv3 vIOMMU's request that the kernel failed goes again one
	 * command at a time, and each one is reported for what it did
	 * (README: "only those that pass are reported done"): several FAILED,
	 * and DONE after them, are its shape even without INV_CONTINUE.
	 */
	bool cont = m->flags & IOMMU_NEST__INVALIDATE_FLAG__INV_CONTINUE;
	bool one_by_one;
	uint32_t handled = 0, nfailed = 0;
	int32_t first_err = 0;
	bool seen_not_done = false;

	one_by_one = v && v->type == NESTD_VIOMMU_TYPE_ARM_SMMUV3;

	if (rep->body_case != IOMMU_NEST__REPLY__BODY_INVALIDATE) {
		CHECK(rep->status < 0, "invalidate %llu: no InvalidateReply and status %d",
		      (unsigned long long)rep->id, rep->status);
		return;
	}
	CHECK(ir->n_state == n && ir->n_error == n && ir->n_hw_error == n,
	      "invalidate %llu of %zu entries: reply arrays of %zu/%zu/%zu",
	      (unsigned long long)rep->id, n, ir->n_state, ir->n_error, ir->n_hw_error);
	while (handled < n && is_done(ir->state[handled]))
		handled++;
	CHECK(ir->entries_handled == handled,
	      "invalidate %llu: entries_handled %u, leading DONE %u", (unsigned long long)rep->id,
	      ir->entries_handled, handled);
	for (size_t i = 0; i < n; i++) {
		uint32_t st = ir->state[i];

		CHECK(st <= IOMMU_NEST__ENTRY_STATE__ENTRY_FAILED, "entry %zu: state %u", i, st);
		if (st == IOMMU_NEST__ENTRY_STATE__ENTRY_FAILED) {
			CHECK(ir->error[i] < 0 && ir->error[i] >= -4095,
			      "entry %zu FAILED, error %d", i, ir->error[i]);
			if (!nfailed++)
				first_err = ir->error[i];
		} else {
			CHECK(ir->error[i] == 0, "entry %zu state %u with error %d", i, st,
			      ir->error[i]);
		}
		if (st == IOMMU_NEST__ENTRY_STATE__ENTRY_NOT_ATTEMPTED)
			CHECK(ir->hw_error[i] == 0, "entry %zu not attempted with hw_error %#x", i,
			      ir->hw_error[i]);
		if (!cont && !one_by_one)
			CHECK(!is_done(st) || !seen_not_done,
			      "invalidate %llu without INV_CONTINUE: entry %zu DONE after a "
			      "non-DONE entry",
			      (unsigned long long)rep->id, i);
		seen_not_done |= !is_done(st);
		if (is_done(st)) {
			CHECK(submitted,
			      "invalidate %llu answered before submission, entry %zu DONE",
			      (unsigned long long)rep->id, i);
			/*
			 * A vIOMMU's entries are its driver's (the same type
			 * value as a HWPT's selftest entries): never the HWPT
			 * checks. The mock vIOMMU's device caches have no
			 * backend op to read them; SMMUv3 commands are checked.
			 */
			if (sim && !on_viommu(m))
				check_done_in_sim(m, (uint32_t)i);
			else if (sim && v && v->type == NESTD_VIOMMU_TYPE_ARM_SMMUV3)
				check_done_smmu(c, m, (uint32_t)i);
		}
	}
	if (!cont && !one_by_one)
		CHECK(nfailed <= 1, "invalidate %llu without INV_CONTINUE: %u entries FAILED",
		      (unsigned long long)rep->id, nfailed);
	if (!rep->status)
		CHECK(handled == n, "invalidate %llu: status 0 but %u of %zu entries DONE",
		      (unsigned long long)rep->id, handled, n);
	if (nfailed)
		CHECK(rep->status == first_err, "invalidate %llu: status %d, first failure %d",
		      (unsigned long long)rep->id, rep->status, first_err);
}

/* Whether req names a HWPT or device this session may not use. */
static bool names_foreign(const struct client *c, const IommuNest__Request *req)
{
	const struct hwpt_registry *reg = &H.srv.reg;
	uint32_t id;

	switch (req->body_case) {
	case IOMMU_NEST__REQUEST__BODY_PROBE:
		id = req->probe->hwpt_id;
		break;
	case IOMMU_NEST__REQUEST__BODY_DESTROY:
		id = req->destroy->hwpt_id;
		break;
	case IOMMU_NEST__REQUEST__BODY_ATTACH: {
		struct device_binding *b = hwpt_registry_binding(&H.srv.reg, req->attach->device);

		if (b && b->owner && b->owner != c->s)
			return true;
		id = req->attach->hwpt_id;
		/*
		 * The nest parent of one of its own HWPTs on that device: the
		 * client knows the id (AllocReply) and the kernel answers 0.
		 */
		for (const struct hwpt_entry *e = c->s->owned; e; e = e->next_owned)
			if (e->parent_id == id && !strcmp(e->device, req->attach->device))
				return false;
		break;
	}
	case IOMMU_NEST__REQUEST__BODY_INVALIDATE:
		id = req->invalidate->hwpt_id;
		/* A vIOMMU: its owner's alone, admin or not. */
		if (on_viommu(req->invalidate))
			return !vobj_lookup_owned(&reg->vobjs, VOBJ_VIOMMU, id, c->s);
		break;
	case IOMMU_NEST__REQUEST__BODY_ALLOC:
		/* On a vIOMMU: one of its own; on the nest parent: any device it may use. */
		return req->alloc->viommu_id &&
		       !vobj_lookup_owned(&reg->vobjs, VOBJ_VIOMMU, req->alloc->viommu_id, c->s);
	case IOMMU_NEST__REQUEST__BODY_ALLOC_VDEVICE:
		return !vobj_lookup_owned(&reg->vobjs, VOBJ_VIOMMU, req->alloc_vdevice->viommu_id,
					  c->s);
	case IOMMU_NEST__REQUEST__BODY_DESTROY_OBJECT: {
		uint32_t k = req->destroy_object->kind;

		if (k != VOBJ_VIOMMU && k != VOBJ_VDEVICE)
			return true;
		return !vobj_lookup_owned(&reg->vobjs, (enum vobj_kind)k, req->destroy_object->id,
					  c->s);
	}
	case IOMMU_NEST__REQUEST__BODY_CHECK_IOTLB:
		id = req->check_iotlb->hwpt_id;
		break;
	case IOMMU_NEST__REQUEST__BODY_SIM_POPULATE:
		id = req->sim_populate->hwpt_id;
		break;
	case IOMMU_NEST__REQUEST__BODY_SIM_QUERY:
		id = req->sim_query->hwpt_id;
		break;
	case IOMMU_NEST__REQUEST__BODY_INJECT_FAULT:
		id = req->inject_fault->hwpt_id;
		if (!id)
			return false;
		break;
	case IOMMU_NEST__REQUEST__BODY_PAGE_RESPONSE:
		id = req->page_response->hwpt_id;
		if (!id)
			return false;
		break;
	default:
		return false;
	}
	if (req->body_case == IOMMU_NEST__REQUEST__BODY_INVALIDATE && req_is_admin(c->s)) {
		/*
		 * An admin may invalidate any live client's HWPT, named by
		 * client id or alone with its id; never an orphan or nothing.
		 */
		uint64_t cid = req->invalidate->client_id;

		if ((!cid || cid == c->s->id) && hwpt_registry_lookup_owned(reg, id, c->s))
			return false;
		if (cid == c->s->id)
			return true;
		return !live_hwpt(reg, id, cid);
	}
	return !hwpt_registry_lookup_owned(reg, id, c->s);
}

static bool is_admin_request(const IommuNest__Request *req)
{
	switch (req->body_case) {
	case IOMMU_NEST__REQUEST__BODY_STATS:
	case IOMMU_NEST__REQUEST__BODY_STATUS:
	case IOMMU_NEST__REQUEST__BODY_LIST_CLIENTS:
	case IOMMU_NEST__REQUEST__BODY_LIST_HWPTS:
		return true;
	default:
		return false;
	}
}

/* Checks one reply to a request dispatched just now (not a queued one). */
static void check_immediate_reply(struct client *c, const IommuNest__Request *req,
				  const IommuNest__Reply *rep, bool foreign)
{
	CHECK(rep->id == req->id, "reply id %llu to request %llu", (unsigned long long)rep->id,
	      (unsigned long long)req->id);
	/* Id 0 is the event channel's: any request with it is refused, whatever it asks. */
	if (!req->id) {
		CHECK(rep->status == -EINVAL && rep->body_case == IOMMU_NEST__REPLY__BODY__NOT_SET,
		      "request id 0 (kind %d) answered %d", req->body_case, rep->status);
		return;
	}
	if (foreign)
		CHECK(rep->status != 0,
		      "request kind %d naming another tenant's (or no) HWPT/device succeeded",
		      req->body_case);
	if (is_admin_request(req) && c->s->hello_done && !req_is_admin(c->s))
		CHECK(rep->status == -EPERM || rep->status == -EAGAIN,
		      "admin request kind %d by a non-admin answered %d", req->body_case,
		      rep->status);
	switch (req->body_case) {
	case IOMMU_NEST__REQUEST__BODY_INVALIDATE:
		/* A vIOMMU's request is submitted at once (one guest sync batch), not queued. */
		check_invalidate_reply(c, req, rep, on_viommu(req->invalidate),
				       on_viommu(req->invalidate));
		break;
	case IOMMU_NEST__REQUEST__BODY_HELLO:
		CHECK(rep->body_case == IOMMU_NEST__REPLY__BODY_HELLO, "Hello without HelloReply");
		break;
	case IOMMU_NEST__REQUEST__BODY_ALLOC:
		if (!rep->status) {
			CHECK(rep->body_case == IOMMU_NEST__REPLY__BODY_ALLOC &&
				  rep->alloc->hwpt_id,
			      "Alloc succeeded without a HWPT id");
			CHECK(hwpt_registry_lookup_owned(&H.srv.reg, rep->alloc->hwpt_id, c->s),
			      "allocated hwpt %u is not registered to its session",
			      rep->alloc->hwpt_id);
			note_on_viommu(c->s, rep->alloc->hwpt_id, req->alloc->viommu_id);
		}
		break;
	case IOMMU_NEST__REQUEST__BODY_STATS:
		CHECK(rep->status || rep->body_case == IOMMU_NEST__REPLY__BODY_STATS,
		      "Stats without StatsReply");
		break;
	case IOMMU_NEST__REQUEST__BODY_SIM_QUERY:
		CHECK(rep->status || rep->body_case == IOMMU_NEST__REPLY__BODY_SIM_QUERY,
		      "SimQuery without SimQueryReply");
		break;
	case IOMMU_NEST__REQUEST__BODY_STATUS:
		CHECK(rep->status || rep->body_case == IOMMU_NEST__REPLY__BODY_DAEMON_STATUS,
		      "Status without StatusReply");
		break;
	case IOMMU_NEST__REQUEST__BODY_LIST_CLIENTS:
		CHECK(rep->status || rep->body_case == IOMMU_NEST__REPLY__BODY_CLIENTS,
		      "ListClients without ClientsReply");
		break;
	case IOMMU_NEST__REQUEST__BODY_LIST_HWPTS:
		CHECK(rep->status || rep->body_case == IOMMU_NEST__REPLY__BODY_HWPTS,
		      "ListHwpts without HwptsReply");
		break;
	case IOMMU_NEST__REQUEST__BODY_GET_HW_INFO:
		CHECK(rep->status || (rep->body_case == IOMMU_NEST__REPLY__BODY_HW_INFO &&
				      rep->hw_info->data.len <= rep->hw_info->data_len),
		      "GetHwInfo without HwInfoReply, or more data than the kernel has");
		break;
	case IOMMU_NEST__REQUEST__BODY_SET_DIRTY_TRACKING:
	case IOMMU_NEST__REQUEST__BODY_GET_DIRTY_BITMAP:
	case IOMMU_NEST__REQUEST__BODY_SET_DIRTY:
		/* The bits go into the client's memfd: no reply body, ever. */
		CHECK(rep->body_case == IOMMU_NEST__REPLY__BODY__NOT_SET,
		      "a dirty-tracking request answered with a body");
		break;
	default:
		break;
	}
}

/*
 * Reads one reply from the client's socket; NULL when there is none. A
 * reply with every field at its default packs to zero bytes, and so does
 * EOF on SOCK_SEQPACKET: while the session lives, 0 is an empty reply;
 * once it is gone, the caller says whether to take it as one (*eof).
 */
static IommuNest__Reply *recv_reply(struct client *c, bool zero_is_reply)
{
	IommuNest__Reply *rep;
	ssize_t n;

	n = recv(c->peer, H.rx, H.rx_cap, MSG_DONTWAIT | MSG_TRUNC);
	if (n < 0) {
		CHECK(errno == EAGAIN || errno == EWOULDBLOCK, "recv: %s", strerror(errno));
		return NULL;
	}
	if (n == 0 && !zero_is_reply)
		return NULL;
	CHECK((size_t)n <= H.cfg.max_message_size, "reply of %zd bytes over the limit", n);
	rep = iommu_nest__reply__unpack(NULL, (size_t)n, H.rx);
	CHECK(rep, "the daemon sent an undecodable reply of %zd bytes", n);
	/* An event (id 0, body Event) answers nothing: only a session with a fault queue gets one.
	 */
	if (rep->id == 0 && rep->body_case == IOMMU_NEST__REPLY__BODY_EVENT) {
		CHECK(c->s && c->s->faults, "an event to a session without a fault queue");
		CHECK(rep->event->kind == IOMMU_NEST__EVENT_KIND__EVENT_FAULT && rep->event->seq,
		      "event kind %u seq %llu", rep->event->kind,
		      (unsigned long long)rep->event->seq);
		iommu_nest__reply__free_unpacked(rep, NULL);
		return recv_reply(c, zero_is_reply);
	}
	CHECK(rep->status <= 0 && rep->status >= -4095, "reply status %d", rep->status);
	CHECK(!rep->status || (rep->error && rep->error[0]), "error status %d without a reason",
	      rep->status);
	trace_reply(c, rep);
	return rep;
}

/* Lets libevent send replies a full socket made the session queue. */
static bool pump_output(struct client *c)
{
	if (!c->s || c->s->closing || STAILQ_EMPTY(&c->s->outq))
		return false;
	/*
	 * Only the session's write event may run: a batch armed to run in
	 * this pass stays queued until the harness flushes it, so that every
	 * reply stays attributable.
	 */
	if (H.srv.flush_armed) {
		event_del(H.srv.ev_flush);
		H.srv.flush_armed = false;
	}
	event_base_loop(H.base, EVLOOP_NONBLOCK);
	return true;
}

/*
 * Lets the loop read c's fault queue, so that its events (skipped and
 * checked by recv_reply()) reach the peer; the batch stays queued as in
 * pump_output(). Nothing else may arrive: every request was answered.
 */
static void deliver_events(struct client *c)
{
	IommuNest__Reply *rep;

	if (!c->s || c->s->closing || !c->s->faults)
		return;
	if (H.srv.flush_armed) {
		event_del(H.srv.ev_flush);
		H.srv.flush_armed = false;
	}
	event_base_loop(H.base, EVLOOP_NONBLOCK);
	while ((rep = recv_reply(c, false))) {
		CHECK(false, "reply %llu to no request", (unsigned long long)rep->id);
		iommu_nest__reply__free_unpacked(rep, NULL);
	}
}

/* Matches a reply against the queued Invalidate requests of c. */
static void match_queued(struct client *c, IommuNest__Reply *rep, bool sim)
{
	for (uint32_t i = 0; i < c->n_queued; i++) {
		IommuNest__Request *q = c->queued[i];

		if (q->id != rep->id)
			continue;
		check_invalidate_reply(c, q, rep, true, sim);
		iommu_nest__request__free_unpacked(q, NULL);
		memmove(&c->queued[i], &c->queued[i + 1],
			(c->n_queued - i - 1) * sizeof(c->queued[0]));
		c->n_queued--;
		return;
	}
	CHECK(0, "reply %llu (status %d) answers no request of this session",
	      (unsigned long long)rep->id, rep->status);
}

/* Reads every reply of a live client after a flush: all for queued requests. */
static void drain_queued(struct client *c)
{
	IommuNest__Reply *rep;

	if (!c->s)
		return;
	for (int rounds = 0; rounds < 100000; rounds++) {
		while ((rep = recv_reply(c, true))) {
			if (!c->s->closing)
				match_queued(c, rep, true);
			iommu_nest__reply__free_unpacked(rep, NULL);
		}
		if (!pump_output(c))
			return;
	}
	CHECK(0, "replies stuck in the session's output queue");
}

static bool has_queued_id(const struct client *c, uint64_t id)
{
	for (uint32_t i = 0; i < c->n_queued; i++)
		if (c->queued[i]->id == id)
			return true;
	return false;
}

/*
 * After session_free: what the session answered on its way out (its HWPTs
 * are gone, so no sim check). Replies still in its output queue were
 * dropped with it, so not every queued request needs an answer here.
 */
static void drain_dead(struct client *c)
{
	IommuNest__Reply *rep;

	while (c->n_queued && (rep = recv_reply(c, has_queued_id(c, 0)))) {
		match_queued(c, rep, false);
		iommu_nest__reply__free_unpacked(rep, NULL);
	}
}

/* Runs the batch now and checks every answer. */
static void flush_and_check(void)
{
	server_flush(&H.srv);
	for (int i = 0; i < 2; i++) {
		struct client *c = &H.cl[i];

		drain_queued(c);
		if (c->s && !c->s->closing) {
			CHECK(c->n_queued == 0, "%u invalidate requests never answered",
			      c->n_queued);
			CHECK(c->s->n_pending == 0, "n_pending %u after a flush", c->s->n_pending);
		}
	}
}

/* Tears a client down; its queued requests are answered by session_free. */
static void client_end(struct client *c)
{
	bool answered;

	if (!c->s)
		return;
	answered = !c->s->closing;
	client_free_session(c);
	/* session_free flushed the batch: the other client got its answers too. */
	for (int i = 0; i < 2; i++)
		if (&H.cl[i] != c)
			drain_queued(&H.cl[i]);
	if (answered)
		drain_dead(c);
	client_close_peer(c);
}

/* Sends one packet on client c as the event loop would, and checks the outcome. */
static void step(struct client *c, const uint8_t *pkt, size_t len)
{
	IommuNest__Request *req;
	IommuNest__Reply *rep;
	uint32_t pending_before;
	bool foreign = false;
	int rc, nrep = 0;

	if (!c->s) {
		client_open(c);
		if (H.auto_hello)
			step(c, H.hello, H.hello_len);
	}
	req = iommu_nest__request__unpack(NULL, len, pkt);
	if (req && req->body_case == IOMMU_NEST__REQUEST__BODY_INJECT_FAULT &&
	    req->inject_fault->latency_us > MAX_LATENCY_US) {
		/* The sim sleeps that long per submission by design: not a finding. */
		iommu_nest__request__free_unpacked(req, NULL);
		return;
	}
	if (req) {
		/*
		 * Requests other than Invalidate see the batch run first (the
		 * daemon flushes a session's own batch; we flush everything so
		 * that each reply is attributable). An Invalidate whose id is
		 * already queued would make the replies ambiguous: flush too.
		 */
		if (req->body_case != IOMMU_NEST__REQUEST__BODY_INVALIDATE ||
		    has_queued_id(c, req->id) || c->n_queued == MAX_QUEUED)
			flush_and_check();
		foreign = names_foreign(c, req);
	}
	if (H.trace)
		fprintf(stderr, "%c -> %zu bytes: id %llu kind %d%s\n", c == &H.cl[0] ? 'A' : 'B',
			len, req ? (unsigned long long)req->id : 0ULL,
			req ? (int)req->body_case : -1, foreign ? " (foreign)" : "");
	pending_before = c->s->n_pending;
	rc = server_handle_packet(c->s, pkt, len, NULL, 0);
	CHECK((rc == 0) == (req != NULL),
	      "server_handle_packet returned %d on a packet the harness %s decode", rc,
	      req ? "could" : "could not");
	if (rc < 0) {
		/* net/server.c reject_frame: an error reply, then the session closes. */
		c->s->closing = true;
		c->closing_expected = true;
	}
	CHECK(!c->s->closing || c->closing_expected,
	      "session closed by a well-formed request (kind %d)", req ? req->body_case : -1);

	if (req && req->body_case == IOMMU_NEST__REQUEST__BODY_INVALIDATE &&
	    c->s->n_pending == pending_before + 1) {
		/* Queued: answered at the next flush. */
		CHECK(!foreign, "invalidate %llu of another tenant's (or no) HWPT queued",
		      (unsigned long long)req->id);
		c->queued[c->n_queued++] = req;
		req = NULL;
	}
	for (int rounds = 0;; rounds++) {
		while ((rep = recv_reply(c, true))) {
			CHECK(req, "reply %llu to a request that should not have one",
			      (unsigned long long)rep->id);
			nrep++;
			CHECK(nrep == 1, "%d replies to request %llu", nrep,
			      (unsigned long long)req->id);
			check_immediate_reply(c, req, rep, foreign);
			iommu_nest__reply__free_unpacked(rep, NULL);
		}
		if (!pump_output(c))
			break;
		CHECK(rounds < 100000, "replies stuck in the session's output queue");
	}
	if (req)
		CHECK(nrep == 1, "request %llu (kind %d) got no reply", (unsigned long long)req->id,
		      req->body_case);
	if (req)
		iommu_nest__request__free_unpacked(req, NULL);
	deliver_events(c);

	/* A closed session's next packet opens a new one. */
	if (c->s->closing)
		client_end(c);
}

static uint64_t slack_of(unsigned b)
{
	static const uint64_t t[8] = {0, 1, 2, 16, 64, 4096, 1ULL << 40, UINT64_MAX};

	return t[b & 7];
}

static uint64_t flush_all_of(unsigned b)
{
	static const uint64_t t[8] = {
	    0, 1, 64, 1u << 18, 1ULL << 30, 1ULL << 51, UINT64_MAX - 1, UINT64_MAX};

	return t[b & 7];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *why = NULL;
	uint32_t n_devices;
	uint8_t flags;
	size_t off = 4;
	int rc;

	if (!H.init) {
		setup();
		H.init = true;
	}
	if (size < 4)
		return -1;
	flags = data[0];
	H.auto_hello = flags & 1;
	H.cfg.sim_kernel = flags & 8 ? KERNEL_RULES_7 : KERNEL_RULES_6_12;
	n_devices = flags & 8 ? N_DEVICES_7 : N_DEVICES_6_12;
	H.cfg.coalesce = !(flags & 2);
	H.cfg.vtd_max_mask = data[1];
	H.cfg.coalesce_slack_pages = slack_of(data[2]);
	H.cfg.flush_all_pages = flush_all_of(data[2] >> 3);

	/* A fresh backend: same object ids, empty caches, no fault, every run. */
	H.be->ops->close(H.be);
	H.be = NULL;
	if (n_devices != H.cfg.n_devices) {
		/* Another device set: the server's device table is built at init. */
		server_fini(&H.srv);
		H.srv_ok = false;
		H.cfg.n_devices = n_devices;
	}
	rc = backend_open(&H.cfg, &H.be, &why);
	CHECK(rc == 0, "backend_open: %d %s", rc, why ? why : "");
	if (!H.srv_ok) {
		rc = server_init(&H.srv, H.base, &H.cfg, H.be);
		CHECK(rc == 0, "server_init: %d", rc);
		H.srv_ok = true;
	}
	H.srv.be = H.be;
	/* Whose rules the daemon answers by (e.g. a wrong-kind id's errno) follow the sim's. */
	H.be->ops->get_caps(H.be, &H.srv.caps);
	server_apply_config(&H.srv);
	H.srv.batch.max_chunk = data[3];

	for (int npkt = 0; npkt < MAX_PACKETS && off + 2 <= size; npkt++) {
		unsigned hdr = data[off] | (unsigned)data[off + 1] << 8;
		size_t len = hdr & 0x7fff;

		off += 2;
		if (len > size - off)
			len = size - off;
		step(&H.cl[hdr >> 15], data + off, len);
		off += len;
	}

	if (!(flags & 4))
		flush_and_check();
	client_end(&H.cl[0]);
	client_end(&H.cl[1]);
	CHECK(TAILQ_EMPTY(&H.srv.sessions) && H.srv.reg.count == 0 && H.srv.reg.vobjs.count == 0 &&
		  inv_queue_empty(&H.srv.queue),
	      "server state left behind: %u HWPTs, %u vIOMMUs/vDEVICEs registered", H.srv.reg.count,
	      H.srv.reg.vobjs.count);
	return 0;
}
