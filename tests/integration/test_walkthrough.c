/* SPDX-License-Identifier: MIT */
/*
 * The VMM walkthrough: what QEMU does for a passthrough device behind a
 * vIOMMU (hw/vfio/iommufd.c, backends/iommufd.c, hw/i386/intel_iommu*.c),
 * in QEMU's order, only through libiommu-nest:
 *
 *  1. Hello, the offered devices, the claim (OpenDevice: no VFIO fd here)
 *  2. GetHwInfo and the vIOMMU's compatibility check
 *  3. guest RAM mapped (a memfd, a below- and an above-"4G" region)
 *  4. the nested HWPT from the guest's table pointer, attached
 *  5. invalidation storms: sync, async, through the shared queue
 *  6. a page fault and its response
 *  7. dirty tracking around a simulated migration
 *  8. release, and nothing of the client left in the daemon
 *
 * Two walks: a VT-d device (the sim only: the kernel tier has mock devices
 * alone) and a selftest mock device (the sim and, in the kernel tier, the
 * kernel's mock on 6.12 and 7.x). Every step asserts exact answers. The
 * device half with a real VFIO device (OpenDevice's fd, BAR0, DMA) is the
 * edu tier's (tests/kernel/ktest_edu.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness.h"

#define MIB (1ULL << 20)
#define PG  4096ULL

/* VT-d register bits a first-stage vIOMMU needs of the host (intel/iommu.h). */
#define VTD_ECAP_NEST	(1ULL << 26)
#define VTD_ECAP_SRS	(1ULL << 31)
#define VTD_ECAP_SMTS	(1ULL << 43)
#define VTD_ECAP_FLTS	(1ULL << 47)
#define VTD_CAP_FL1GP	(1ULL << 56)
#define VTD_CAP_MGAW(c) ((((c) >> 16) & 0x3f) + 1)

#define STORM	   256u /* pages of one guest unmap storm */
#define ASYNC_REQS 8u	/* the async storm: requests in flight at once */
#define QUEUE_REQS 4u

/*
 * Guest RAM: a low region and a high one from one memfd, as a guest's
 * below/above-4G layout. The mock's aperture is [16 MiB, 2 GiB), so its
 * "high" region sits at 1 GiB; VT-d's really is above 4 GiB.
 */
struct region {
	uint64_t iova, len, off;
};

struct walk {
	const char *dev;
	bool vtd;
	const char *sim_kernel; /* the sim's kernel rules ("7.0"); NULL: its default */
	struct nestd *d;
	struct iommu_nest *h;	/* the VMM */
	struct iommu_nest *adm; /* the operator's view (root: an admin) */
	struct region ram[2];
	uint64_t ram_bytes;
	struct iommu_nest_hw_info info;
	uint32_t hwpt;
	uint64_t session;
};

static void walk_init(struct walk *w, const char *dev, bool vtd, const char *sim_kernel)
{
	memset(w, 0, sizeof(*w));
	w->dev = dev;
	w->vtd = vtd;
	w->sim_kernel = sim_kernel;
	w->ram[0] = (struct region){16 * MIB, 8 * MIB, 0};
	w->ram[1] = (struct region){vtd ? 4096 * MIB : 1024 * MIB, 4 * MIB, 8 * MIB};
	w->ram_bytes = 12 * MIB;
}

/* The session id the daemon gave client `name`, from ListClients (0: none). */
static uint64_t session_of(struct iommu_nest *adm, const char *name)
{
	struct iommu_nest_client_info c;

	return it_client_named(adm, name, &c) ? c.session : 0;
}

/* The daemon's status line of the device (fatal if it lists none). */
static struct iommu_nest_device_status dev_status(struct walk *w)
{
	struct iommu_nest_status *s = NULL;
	struct iommu_nest_device_status out;
	bool found = false;

	CU_ASSERT_EQUAL_FATAL(iommu_nest_status(w->adm, &s), 0);
	for (size_t i = 0; i < s->n_devices; i++)
		if (!strcmp(s->devices[i].name, w->dev)) {
			out = s->devices[i];
			found = true;
		}
	free(s);
	CU_ASSERT_FATAL(found);
	return out;
}

/* ---- 1. connect, list, claim ------------------------------------------------ */

static bool has_type(const uint32_t *t, size_t n, uint32_t want)
{
	for (size_t i = 0; i < n; i++)
		if (t[i] == want)
			return true;
	return false;
}

static void step_connect(struct walk *w)
{
	uint32_t hwpt_type = w->vtd ? IOMMU_NEST_HWPT_DATA_VTD_S1 : IOMMU_NEST_HWPT_DATA_SELFTEST;
	uint32_t inv_type = w->vtd ? IOMMU_NEST_INV_DATA_VTD_S1 : IOMMU_NEST_INV_DATA_SELFTEST;
	struct iommu_nest_device_info info;
	const uint32_t *t;
	size_t n;
	int fd = 4321;

	CU_ASSERT_EQUAL(iommu_nest_server_version(w->h), IOMMU_NEST_PROTOCOL_VERSION);
	t = iommu_nest_hwpt_data_types(w->h, &n);
	CU_ASSERT(has_type(t, n, hwpt_type));
	t = iommu_nest_inv_data_types(w->h, &n);
	CU_ASSERT(has_type(t, n, inv_type));
	CU_ASSERT(iommu_nest_max_entries(w->h) >= STORM);
	CU_ASSERT_FATAL(it_has_device(w->h, w->dev));
	w->session = session_of(w->adm, "walk-vmm");
	CU_ASSERT_FATAL(w->session != 0);

	/*
	 * QEMU opens the VFIO cdev first. Neither the sim nor a mock device
	 * has one: refused with the reason, no descriptor, nothing claimed.
	 */
	CU_ASSERT_EQUAL(iommu_nest_open_device(w->h, w->dev, &fd, &info), -EOPNOTSUPP);
	CU_ASSERT_EQUAL(fd, -1);
	CU_ASSERT(strstr(iommu_nest_last_error(w->h), "models no VFIO device") ||
		  strstr(iommu_nest_last_error(w->h), "selftest mock device"));
	CU_ASSERT_EQUAL(dev_status(w).owner_session, 0);
}

/* ---- 2. hw_info and the vIOMMU's compatibility check ------------------------ */

static void step_hw_info(struct walk *w)
{
	struct iommu_nest_hw_info *i = &w->info;
	uint64_t want_caps =
	    IOMMU_NEST_HW_CAP_DIRTY_TRACKING |
	    (it_kernel7_rules(w->sim_kernel) ? IOMMU_NEST_HW_CAP_PCI_ATS_NOT_SUPPORTED : 0);

	CU_ASSERT_EQUAL_FATAL(iommu_nest_get_hw_info(w->h, w->dev, i), 0);
	/* The nest parent has dirty tracking: the device reports it. */
	CU_ASSERT_EQUAL(i->capabilities, want_caps);
	CU_ASSERT_EQUAL(i->max_pasid_log2, 0);
	if (!w->vtd) {
		/* The mock's struct iommu_test_hw_info. */
		CU_ASSERT_EQUAL(i->data_type, IOMMU_NEST_HW_INFO_TYPE_SELFTEST);
		CU_ASSERT_EQUAL(i->data_len, 8);
		CU_ASSERT_EQUAL(i->selftest.regval, 0xdeadbeef);
		return;
	}
	/*
	 * What intel_iommu_accel.c's vtd_check_hiod_accel() asks before it
	 * offers the guest first-stage translation: a VT-d host, scalable
	 * mode with nesting and first-stage tables, the first-stage 1 GiB
	 * pages the vIOMMU advertises, an address width covering the
	 * guest's; and SRE only if the host has SRS.
	 */
	CU_ASSERT_EQUAL_FATAL(i->data_type, IOMMU_NEST_HW_INFO_TYPE_INTEL_VTD);
	CU_ASSERT_EQUAL(i->data_len, 24);
	CU_ASSERT_EQUAL(i->vtd.ecap_reg & (VTD_ECAP_NEST | VTD_ECAP_SMTS | VTD_ECAP_FLTS),
			VTD_ECAP_NEST | VTD_ECAP_SMTS | VTD_ECAP_FLTS);
	CU_ASSERT((i->vtd.cap_reg & VTD_CAP_FL1GP) != 0); /* CU_ASSERT takes an int */
	CU_ASSERT(VTD_CAP_MGAW(i->vtd.cap_reg) >= IT_VTD_AW);
	CU_ASSERT((i->vtd.ecap_reg & VTD_ECAP_SRS) != 0);
	/* The raw bytes are the kernel's struct iommu_hw_info_vtd, decoded. */
	CU_ASSERT_EQUAL(memcmp(i->data + 8, &i->vtd.cap_reg, 8), 0);
	CU_ASSERT_EQUAL(memcmp(i->data + 16, &i->vtd.ecap_reg, 8), 0);
	/* The sim models an affected part: QEMU then maps guest RAM read-write only. */
	CU_ASSERT((i->vtd.flags & IOMMU_NEST_HW_INFO_VTD_ERRATA_772415_SPR17) != 0);
}

/* ---- 3. guest RAM ---------------------------------------------------------- */

static int guest_ram(struct walk *w)
{
	int fd = memfd_create("walk-guest-ram", MFD_CLOEXEC);

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL_FATAL(ftruncate(fd, (off_t)w->ram_bytes), 0);
	return fd;
}

static void step_map(struct walk *w, int memfd)
{
	const uint32_t rw = IOMMU_NEST_MAP_READABLE | IOMMU_NEST_MAP_WRITEABLE;
	bool erratum = w->info.data_type == IOMMU_NEST_HW_INFO_TYPE_INTEL_VTD &&
		       (w->info.vtd.flags & IOMMU_NEST_HW_INFO_VTD_ERRATA_772415_SPR17);
	struct iommu_nest_device_status s;

	/*
	 * A read-only section (a ROM) first: with the erratum the driver
	 * refuses it on a nest parent, so QEMU skips read-only sections
	 * there; elsewhere it is taken (and given back: the walk's RAM is
	 * read-write).
	 */
	CU_ASSERT_EQUAL(iommu_nest_map_memory(w->h, w->dev, w->ram[0].iova, w->ram[0].len, memfd,
					      w->ram[0].off, IOMMU_NEST_MAP_READABLE),
			erratum ? -EINVAL : 0);
	if (!erratum)
		CU_ASSERT_EQUAL(
		    iommu_nest_unmap_memory(w->h, w->dev, w->ram[0].iova, w->ram[0].len), 0);
	for (int r = 0; r < 2; r++)
		CU_ASSERT_EQUAL_FATAL(iommu_nest_map_memory(w->h, w->dev, w->ram[r].iova,
							    w->ram[r].len, memfd, w->ram[r].off,
							    rw),
				      0);
	/* Overlapping guest RAM twice is the VMM's bug: refused. */
	CU_ASSERT_EQUAL(iommu_nest_map_memory(w->h, w->dev, w->ram[1].iova, PG, memfd, 0, rw),
			-EEXIST);
	/* The first device-using call claimed the device. */
	s = dev_status(w);
	CU_ASSERT_EQUAL(s.owner_session, w->session);
	CU_ASSERT_EQUAL(s.mapped_bytes, w->ram_bytes);
	CU_ASSERT_EQUAL(s.mappings, 2);
	CU_ASSERT_EQUAL(s.hwpt_id, 0);
}

/* ---- 4. the nested HWPT from the guest's table pointer ---------------------- */

static void step_alloc_attach(struct walk *w)
{
	struct iommu_nest_hwpt_info *l = NULL;
	uint32_t id = 0, iotlb = IOMMU_NEST_TEST_IOTLB_DEFAULT;
	size_t n = 0;

	if (w->vtd) {
		/*
		 * The guest's PASID entry: first-stage table root 64 KiB into
		 * low RAM, 4-level (48 bits), SRE as the host has SRS. Fault
		 * delivery needs PRI, which the modelled VT-d devices lack:
		 * the HWPT is made, the attach is the driver's -ENODEV, so a
		 * VMM asks for none (QEMU's VT-d does not either).
		 */
		uint64_t pgtbl = w->ram[0].iova + 16 * PG;
		struct {
			uint64_t flags, pgtbl_addr;
			uint32_t addr_width, reserved;
		} s1 = {IOMMU_NEST_VTD_S1_SRE, pgtbl, IT_VTD_AW, 0};

		CU_ASSERT_EQUAL_FATAL(iommu_nest_alloc(w->h, w->dev, IOMMU_NEST_HWPT_DATA_VTD_S1,
						       IOMMU_NEST_ALLOC_FAULT,
						       IOMMU_NEST_HWPT_DATA_VTD_S1, &s1, sizeof(s1),
						       &id),
				      0);
		CU_ASSERT_EQUAL(iommu_nest_attach(w->h, w->dev, id), -ENODEV);
		CU_ASSERT_EQUAL(iommu_nest_destroy(w->h, id), 0);
		CU_ASSERT_EQUAL_FATAL(iommu_nest_alloc_vtd_s1(w->h, w->dev, IOMMU_NEST_VTD_S1_SRE,
							      pgtbl, IT_VTD_AW, &w->hwpt),
				      0);
	} else {
		CU_ASSERT_EQUAL_FATAL(iommu_nest_alloc(w->h, w->dev, IOMMU_NEST_HWPT_DATA_SELFTEST,
						       IOMMU_NEST_ALLOC_FAULT,
						       IOMMU_NEST_HWPT_DATA_SELFTEST, &iotlb,
						       sizeof(iotlb), &w->hwpt),
				      0);
	}
	CU_ASSERT_FATAL(w->hwpt != 0);
	CU_ASSERT_EQUAL(
	    iommu_nest_probe(w->h, w->hwpt,
			     w->vtd ? IOMMU_NEST_INV_DATA_VTD_S1 : IOMMU_NEST_INV_DATA_SELFTEST),
	    0);
	CU_ASSERT_EQUAL_FATAL(iommu_nest_attach(w->h, w->dev, w->hwpt), 0);
	CU_ASSERT_EQUAL(dev_status(w).hwpt_id, w->hwpt);
	/* The operator sees it: this client's, on the device, on a nest parent. */
	CU_ASSERT_EQUAL_FATAL(iommu_nest_list_hwpts(w->adm, &l, &n), 0);
	CU_ASSERT_EQUAL(n, 1);
	if (n == 1) {
		CU_ASSERT_EQUAL(l[0].id, w->hwpt);
		CU_ASSERT_EQUAL(l[0].owner_session, w->session);
		CU_ASSERT_NOT_EQUAL(l[0].parent_id, 0);
		CU_ASSERT_EQUAL(l[0].n_attached, 1);
		CU_ASSERT_STRING_EQUAL(l[0].attached[0], w->dev);
	}
	free(l);
}

/* ---- 5. invalidation storms ------------------------------------------------ */

/*
 * One guest unmap storm of `n` per-page invalidations. VT-d: the pages
 * from `base` up, one entry each; the mock: each entry clears `slot`
 * (its IOTLB slots are what a mock invalidation can be checked by).
 */
static void *storm(const struct walk *w, uint64_t base, uint32_t slot, uint32_t n)
{
	if (w->vtd) {
		struct iommu_nest_vtd_inv *e = calloc(n, sizeof(*e));

		CU_ASSERT_PTR_NOT_NULL_FATAL(e);
		for (uint32_t i = 0; i < n; i++)
			e[i] = (struct iommu_nest_vtd_inv){base + i * PG, 1,
							   IOMMU_NEST_VTD_INV_FLAGS_LEAF, 0};
		return e;
	}
	struct iommu_nest_selftest_inv *e = calloc(n, sizeof(*e));

	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	for (uint32_t i = 0; i < n; i++)
		e[i] = (struct iommu_nest_selftest_inv){0, slot};
	return e;
}

static uint32_t inv_type(const struct walk *w)
{
	return w->vtd ? IOMMU_NEST_INV_DATA_VTD_S1 : IOMMU_NEST_INV_DATA_SELFTEST;
}

/* The device's translations of [base, +n pages) are cached (VT-d: the sim's model). */
static void warm(struct walk *w, uint64_t base, uint32_t n)
{
	if (w->vtd) {
		it_populate(w->h, w->hwpt, base, n, IOMMU_NEST_SIM_IOTLB);
		CU_ASSERT_EQUAL(it_iotlb_pages(w->h, w->hwpt, base, n), n);
	}
}

/* Gone after the storm: the model's pages, or the mock's slot (the others untouched). */
static void check_flushed(struct walk *w, uint64_t base, uint32_t slot, uint32_t n,
			  uint32_t cleared_slots)
{
	if (w->vtd) {
		CU_ASSERT_EQUAL(it_iotlb_pages(w->h, w->hwpt, base, n), 0);
		return;
	}
	(void)slot;
	for (uint32_t s = 0; s < IOMMU_NEST_TEST_IOTLB_NUM; s++)
		CU_ASSERT_EQUAL(iommu_nest_check_iotlb(
				    w->h, w->hwpt, s,
				    cleared_slots & (1u << s) ? 0 : IOMMU_NEST_TEST_IOTLB_DEFAULT),
				0);
}

static void all_done(const struct iommu_nest_entry_result *r, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		CU_ASSERT_EQUAL(r[i].state, IOMMU_NEST_ENTRY_DONE);
		CU_ASSERT_EQUAL(r[i].error, 0);
		CU_ASSERT_EQUAL(r[i].hw_error, 0);
	}
}

struct async_req {
	struct iommu_nest_entry_result res[STORM]; /* the most a request of a storm has */
	struct iommu_nest_inv_summary sum;
	bool done;
};

static void on_inv(struct iommu_nest *h, uint64_t token,
		   const struct iommu_nest_inv_summary *summary,
		   struct iommu_nest_entry_result *results, size_t n, void *opaque)
{
	struct async_req *r = opaque;

	(void)h;
	(void)token;
	(void)results;
	(void)n;
	r->sum = *summary;
	r->done = true;
}

/* Waits (bounded, on the fds) until every request's callback ran. */
static bool wait_async(struct iommu_nest *h, struct async_req *r, uint32_t n)
{
	for (;;) {
		struct pollfd p[2] = {{.fd = iommu_nest_fd(h), .events = POLLIN},
				      {.fd = iommu_nest_queue_fd(h), .events = POLLIN}};
		uint32_t done = 0;

		if (iommu_nest_process(h) < 0)
			return false;
		for (uint32_t i = 0; i < n; i++)
			done += r[i].done;
		if (done == n)
			return true;
		if (!iommu_nest_pending(h) && poll(p, p[1].fd >= 0 ? 2 : 1, it_timeout_ms()) < 1)
			return false;
	}
}

/* Sends the storm's STORM entries as n async requests and checks them. */
static void async_storm(struct walk *w, uint64_t base, uint32_t slot, uint32_t n)
{
	uint32_t per = STORM / n;
	struct async_req *r = calloc(n, sizeof(*r));
	uint8_t *e = storm(w, base, slot, STORM);
	size_t esz =
	    w->vtd ? sizeof(struct iommu_nest_vtd_inv) : sizeof(struct iommu_nest_selftest_inv);

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	for (uint32_t i = 0; i < n; i++)
		CU_ASSERT_EQUAL_FATAL(iommu_nest_invalidate_submit(w->h, w->hwpt, inv_type(w),
								   e + i * per * esz, per, 0,
								   r[i].res, on_inv, &r[i], NULL),
				      0);
	CU_ASSERT_FATAL(wait_async(w->h, r, n));
	for (uint32_t i = 0; i < n; i++) {
		CU_ASSERT_EQUAL(r[i].sum.status, 0);
		CU_ASSERT_EQUAL(r[i].sum.entries_handled, per);
		all_done(r[i].res, per);
	}
	CU_ASSERT_EQUAL(iommu_nest_in_flight(w->h), 0);
	free(e);
	free(r);
}

static void step_storms(struct walk *w)
{
	struct iommu_nest_entry_result res[STORM];
	struct iommu_nest_inv_summary sum;
	struct iommu_nest_stats before = it_stats(w->adm), after;
	struct iommu_nest_queue_stats qb, qa;
	uint64_t base = w->ram[0].iova;
	uint32_t sent = 0;
	void *e;

	/* Sync: one guest flush of STORM pages (mock: one slot STORM times). */
	warm(w, base, STORM);
	e = storm(w, base, 0, STORM);
	CU_ASSERT_EQUAL(iommu_nest_invalidate(w->h, w->hwpt, inv_type(w), e, STORM, 0, res, &sum),
			0);
	free(e);
	sent += STORM;
	CU_ASSERT_EQUAL(sum.status, 0);
	CU_ASSERT_EQUAL(sum.entries_handled, STORM);
	/* Coalesced: per-page entries of one range (one slot) are fewer submissions. */
	CU_ASSERT(sum.entries_submitted >= 1 && sum.entries_submitted < STORM);
	all_done(res, STORM);
	check_flushed(w, base, 0, STORM, 1u << 0);

	/* Async: the same storm as requests in flight together (the next pages, slot 1). */
	warm(w, base + STORM * PG, STORM);
	async_storm(w, base + STORM * PG, 1, ASYNC_REQS);
	sent += STORM;
	check_flushed(w, base + STORM * PG, 1, STORM, 1u << 0 | 1u << 1);

	/* Through the shared queue: sync, then async (the high region, slot 2). */
	CU_ASSERT_EQUAL(iommu_nest_queue_stats(w->adm, &qb), 0);
	CU_ASSERT_EQUAL_FATAL(iommu_nest_queue_open(w->h, 16, IOMMU_NEST_QUEUE_SPIN_US), 0);
	CU_ASSERT(iommu_nest_queue_fd(w->h) >= 0);
	base = w->ram[1].iova;
	warm(w, base, 2 * STORM);
	e = storm(w, base, 2, STORM);
	CU_ASSERT_EQUAL(iommu_nest_invalidate(w->h, w->hwpt, inv_type(w), e, STORM, 0, res, &sum),
			0);
	free(e);
	sent += STORM;
	CU_ASSERT_EQUAL(sum.entries_handled, STORM);
	CU_ASSERT(sum.entries_submitted >= 1 && sum.entries_submitted < STORM);
	all_done(res, STORM);
	async_storm(w, base + STORM * PG, 2, QUEUE_REQS);
	sent += STORM;
	check_flushed(w, base, 2, 2 * STORM, 1u << 0 | 1u << 1 | 1u << 2);
	CU_ASSERT_EQUAL(iommu_nest_queue_stats(w->adm, &qa), 0);
	/* Every one of those requests took a ring slot, none the socket. */
	CU_ASSERT_EQUAL(qa.submissions - qb.submissions, 1 + QUEUE_REQS);
	CU_ASSERT_EQUAL(qa.completions - qb.completions, 1 + QUEUE_REQS);
	CU_ASSERT_EQUAL(iommu_nest_queue_close(w->h), 0);

	/* The daemon's counters: every entry received, far fewer submitted. */
	after = it_stats(w->adm);
	CU_ASSERT_EQUAL(after.entries_received - before.entries_received, sent);
	CU_ASSERT_EQUAL(after.entries_failed - before.entries_failed, 0);
	CU_ASSERT(after.entries_submitted - before.entries_submitted < sent);
	CU_ASSERT(after.submissions - before.submissions < sent);
	CU_ASSERT(after.submissions - before.submissions >= 1);
}

/* ---- 6. a page fault and its response -------------------------------------- */

struct seen {
	uint32_t n;
	struct iommu_nest_event last;
};

static void on_event(struct iommu_nest *h, const struct iommu_nest_event *ev, void *arg)
{
	struct seen *s = arg;

	(void)h;
	s->n++;
	s->last = *ev;
}

static bool wait_event(struct iommu_nest *h, struct seen *s, uint32_t want)
{
	struct pollfd p = {.fd = iommu_nest_fd(h), .events = POLLIN};

	while (s->n < want) {
		if (poll(&p, 1, it_timeout_ms()) != 1 || iommu_nest_process(h) < 0)
			return false;
	}
	return true;
}

static void step_fault(struct walk *w)
{
	struct iommu_nest_iopf t = {.pasid = 0,
				    .grpid = 7,
				    .perm = IOMMU_NEST_PGFAULT_PERM_WRITE,
				    .addr = w->ram[0].iova + 5 * PG};
	struct iommu_nest_page_response r;
	struct iommu_nest_page_fault f;
	struct seen s = {0};

	CU_ASSERT_EQUAL(iommu_nest_set_event_handler(w->h, on_event, &s), 0);
	if (w->vtd) {
		/* The kernel's fault trigger is a mock-device op: -EINVAL for any other. */
		CU_ASSERT_EQUAL(iommu_nest_trigger_iopf(w->h, w->dev, &t, 1), -EINVAL);
		return;
	}
	/* The device's page request (TriggerIopf stands in for its DMA). */
	CU_ASSERT_EQUAL_FATAL(iommu_nest_trigger_iopf(w->h, w->dev, &t, 1), 0);
	CU_ASSERT_FATAL(wait_event(w->h, &s, 1));
	f = s.last.fault;
	CU_ASSERT_EQUAL(s.last.kind, IOMMU_NEST_EVENT_FAULT);
	CU_ASSERT_EQUAL(s.last.seq, 1);
	CU_ASSERT_EQUAL(s.last.lost, 0);
	CU_ASSERT_EQUAL(f.flags, IOMMU_NEST_PGFAULT_FLAGS_LAST_PAGE);
	CU_ASSERT_EQUAL(f.grpid, 7);
	CU_ASSERT_EQUAL(f.perm, IOMMU_NEST_PGFAULT_PERM_WRITE);
	CU_ASSERT_EQUAL(f.addr, t.addr);
	CU_ASSERT_EQUAL(f.hwpt_id, w->hwpt);
	CU_ASSERT_STRING_EQUAL(f.device, w->dev);
	CU_ASSERT_NOT_EQUAL(f.cookie, 0);
	/* The guest fixed its table: success, once. */
	r = (struct iommu_nest_page_response){f.grpid, f.cookie, IOMMU_NEST_PAGE_RESP_SUCCESS};
	CU_ASSERT_EQUAL(iommu_nest_page_response(w->h, w->hwpt, NULL, &r), 0);
	CU_ASSERT_EQUAL(iommu_nest_page_response(w->h, w->hwpt, NULL, &r), -ENOENT);
	/* The kernel freed the group: the next fault gets the same cookie. */
	t.grpid = 8;
	CU_ASSERT_EQUAL_FATAL(iommu_nest_trigger_iopf(w->h, w->dev, &t, 1), 0);
	CU_ASSERT_FATAL(wait_event(w->h, &s, 2));
	CU_ASSERT_EQUAL(s.last.seq, 2);
	CU_ASSERT_EQUAL(s.last.fault.grpid, 8);
	CU_ASSERT_EQUAL(s.last.fault.cookie, f.cookie);
	r = (struct iommu_nest_page_response){8, f.cookie, IOMMU_NEST_PAGE_RESP_SUCCESS};
	CU_ASSERT_EQUAL(iommu_nest_page_response(w->h, 0, w->dev, &r), 0);
}

/* ---- 7. dirty tracking around a migration ----------------------------------- */

#define DIRTY_PAGES (8 * MIB / PG) /* the low region */
#define DIRTY_WORDS (DIRTY_PAGES / 64)

static void set_bit(uint64_t *bm, uint64_t i)
{
	bm[i / 64] |= 1ULL << (i % 64);
}

/* One bitmap round over low RAM into a fresh sealed memfd. */
static int round_bits(struct walk *w, uint32_t flags, uint64_t *out)
{
	int fd = memfd_create("walk-dirty", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	int rc;

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL_FATAL(ftruncate(fd, DIRTY_WORDS * 8), 0);
	CU_ASSERT_EQUAL_FATAL(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK), 0);
	rc =
	    iommu_nest_get_dirty_bitmap(w->h, w->dev, w->ram[0].iova, w->ram[0].len, PG, flags, fd);
	memset(out, 0xa5, DIRTY_WORDS * 8);
	CU_ASSERT_EQUAL_FATAL(pread(fd, out, DIRTY_WORDS * 8, 0), (ssize_t)(DIRTY_WORDS * 8));
	close(fd);
	return rc;
}

/*
 * Bit-exact against what was marked; a 7.x kernel keeps the dirty bit in
 * the IOPTE it chose for the mapping (a run of contiguous pages may be
 * one larger entry), so there the read covers at least the marked pages
 * (see test_dirty.c) - with one exception, a defect of the 7.2 kernel:
 * generic_pt's record_dirty() (drivers/iommu/generic_pt/iommu_pt.h) takes
 * the end of a contiguous entry from log2_set_mod_max(), the block's last
 * index, inclusive, as if it were exclusive, so it reports all of the
 * block but its last item, and then cleans the whole block. The selftest
 * mock (AMD v1 format, 2 KiB granule) loses nothing at 4 KiB a bit from
 * level-0 blocks (half a page), but when the guest memory happens to be
 * physically contiguous over 2 MiB or more, aligned, the region is mapped
 * with contiguous level-1 entries of 1 MiB items, and the last MiB of each
 * such block reads clean. That MiB is always an odd one of the IOVA space
 * (a block of 2^n MiB is aligned to its size). So on 7.x: every marked
 * page in an even MiB is read; one in an odd MiB is read, or its whole MiB
 * reads clean (the defect's shape, which a lost bit of ours would not
 * have). It happened about once in 20 runs of the kernel7 tier;
 * integration/dirty huge_page meets it every time.
 */
#define MIB_WORDS ((size_t)(MIB / PG / 64))

static void check_bits(const struct walk *w, const uint64_t *got, const uint64_t *want)
{
	if (!it_kernel7_rules(w->sim_kernel)) {
		CU_ASSERT_EQUAL(memcmp(got, want, DIRTY_WORDS * 8), 0);
		return;
	}
	for (size_t m = 0; m < DIRTY_WORDS / MIB_WORDS; m++) {
		const uint64_t *g = got + m * MIB_WORDS, *x = want + m * MIB_WORDS;
		bool odd = ((w->ram[0].iova / MIB + m) & 1) != 0, missing = false, clean = true;

		for (size_t i = 0; i < MIB_WORDS; i++) {
			missing |= (g[i] & x[i]) != x[i];
			clean &= !g[i];
		}
		if (!missing)
			continue;
		fprintf(stderr, "dirty MiB %zu (pages %zu-%zu): marked pages read clean%s\n", m,
			m * MIB_WORDS * 64, (m + 1) * MIB_WORDS * 64 - 1,
			odd && clean ? ": the whole MiB, the 7.2 record_dirty() defect" : "");
		CU_ASSERT(odd && clean);
	}
}

/* The device writes these pages (SetDirty stands in for its DMA). */
static void device_writes(struct walk *w, const uint64_t *pages, size_t n, uint64_t *want)
{
	uint64_t bm[DIRTY_WORDS] = {0};

	for (size_t i = 0; i < n; i++)
		set_bit(bm, pages[i]);
	CU_ASSERT_EQUAL_FATAL(
	    iommu_nest_mark_dirty(w->h, w->dev, w->ram[0].iova, w->ram[0].len, PG, bm, sizeof(bm)),
	    0);
	memcpy(want, bm, sizeof(bm));
}

static void step_dirty(struct walk *w)
{
	static const uint64_t first[] = {0, 1, 63, 64, 511, 1000, DIRTY_PAGES - 1};
	static const uint64_t second[] = {2, 700, 1500};
	uint64_t want[DIRTY_WORDS], got[DIRTY_WORDS], kept[DIRTY_WORDS], zero[DIRTY_WORDS] = {0};

	CU_ASSERT_FATAL((w->info.capabilities & IOMMU_NEST_HW_CAP_DIRTY_TRACKING) != 0);
	/* Migration starts: tracking on, a clean slate. */
	CU_ASSERT_EQUAL_FATAL(iommu_nest_set_dirty_tracking(w->h, w->dev, 1), 0);
	CU_ASSERT_EQUAL(round_bits(w, 0, got), 0);
	CU_ASSERT_EQUAL(memcmp(got, zero, sizeof(got)), 0);
	/* Pre-copy round 1: what the device wrote, read and cleared. */
	device_writes(w, first, sizeof(first) / sizeof(first[0]), want);
	CU_ASSERT_EQUAL(round_bits(w, 0, got), 0);
	check_bits(w, got, want);
	/* Round 2: only what it wrote since. */
	device_writes(w, second, sizeof(second) / sizeof(second[0]), want);
	CU_ASSERT_EQUAL(round_bits(w, IOMMU_NEST_DIRTY_NO_CLEAR, kept), 0);
	check_bits(w, kept, want);
	/* A NO_CLEAR round keeps them: the same again, then a clearing read, then none. */
	CU_ASSERT_EQUAL(round_bits(w, IOMMU_NEST_DIRTY_NO_CLEAR, got), 0);
	CU_ASSERT_EQUAL(memcmp(got, kept, sizeof(got)), 0);
	CU_ASSERT_EQUAL(round_bits(w, 0, got), 0);
	CU_ASSERT_EQUAL(memcmp(got, kept, sizeof(got)), 0);
	CU_ASSERT_EQUAL(round_bits(w, 0, got), 0);
	CU_ASSERT_EQUAL(memcmp(got, zero, sizeof(got)), 0);
	/* Migration over (or cancelled): tracking off; the device can no longer dirty. */
	CU_ASSERT_EQUAL(iommu_nest_set_dirty_tracking(w->h, w->dev, 0), 0);
	CU_ASSERT_EQUAL(iommu_nest_mark_dirty(w->h, w->dev, w->ram[0].iova, w->ram[0].len, PG, want,
					      sizeof(want)),
			-EINVAL);
	/* The read's walk meets tracking off: 6.12 says so, 7.x reads nothing. */
	CU_ASSERT_EQUAL(round_bits(w, 0, got), it_dirty_walk_errno(w->sim_kernel));
	CU_ASSERT_EQUAL(memcmp(got, zero, sizeof(got)), 0);
}

/* ---- 8. release -------------------------------------------------------------- */

static void step_release(struct walk *w)
{
	struct iommu_nest_hwpt_info *l = NULL;
	struct iommu_nest_device_status s;
	size_t n = 99;

	CU_ASSERT_EQUAL(iommu_nest_detach(w->h, w->dev), 0);
	CU_ASSERT_EQUAL(dev_status(w).hwpt_id, 0);
	CU_ASSERT_EQUAL(iommu_nest_destroy(w->h, w->hwpt), 0);
	CU_ASSERT_EQUAL(iommu_nest_destroy(w->h, w->hwpt), -ENOENT);
	for (int r = 0; r < 2; r++)
		CU_ASSERT_EQUAL(
		    iommu_nest_unmap_memory(w->h, w->dev, w->ram[r].iova, w->ram[r].len), 0);
	/* Nothing was opened (step 1): nothing to close. */
	CU_ASSERT_EQUAL(iommu_nest_close_device(w->h, w->dev), -ENOENT);
	/* Everything released, the device is free before the VMM even goes. */
	s = dev_status(w);
	CU_ASSERT_EQUAL(s.owner_session, 0);
	CU_ASSERT_EQUAL(s.mapped_bytes, 0);
	CU_ASSERT_EQUAL(s.mappings, 0);
	it_close(w->h);
	w->h = NULL;
	CU_ASSERT(it_wait_sessions(w->adm, 1));
	CU_ASSERT_EQUAL(session_of(w->adm, "walk-vmm"), 0);
	CU_ASSERT_EQUAL(iommu_nest_list_hwpts(w->adm, &l, &n), 0);
	CU_ASSERT_EQUAL(n, 0);
	free(l);
	s = dev_status(w);
	CU_ASSERT_EQUAL(s.owner_session, 0);
	CU_ASSERT_EQUAL(s.hwpt_id, 0);
	CU_ASSERT_EQUAL(s.mapped_bytes, 0);
}

static void walk(const char *dev, bool vtd, const char *sim_kernel)
{
	char body[64];
	struct walk w;
	int memfd;

	walk_init(&w, dev, vtd, sim_kernel);
	if (sim_kernel)
		snprintf(body, sizeof(body), "[daemon]\nsim_kernel = %s\n", sim_kernel);
	w.d = it_start(sim_kernel ? body : NULL);
	w.adm = it_connect(w.d, "walk-operator");
	w.h = it_connect(w.d, "walk-vmm");
	step_connect(&w);
	step_hw_info(&w);
	memfd = guest_ram(&w);
	step_map(&w, memfd);
	/* The kernel pinned the pages: the VMM need not keep the fd for the daemon. */
	close(memfd);
	step_alloc_attach(&w);
	step_storms(&w);
	step_fault(&w);
	step_dirty(&w);
	step_release(&w);
	it_stop_ok(w.d);
}

/* What the daemon offers: a VT-d device with the model IOTLB, a mock device, the sim. */
struct offer {
	bool vtd, st, sim;
};

static struct offer offered(void)
{
	struct nestd *d = it_start(NULL);
	struct iommu_nest *h = it_connect(d, "walk-probe");
	struct offer o = {
	    .vtd = it_has_device(h, IT_VTD0) && it_has_cap(h, IOMMU_NEST_CAP_SIM_MODEL),
	    .st = it_has_device(h, IT_ST0) && it_has_cap(h, IOMMU_NEST_CAP_CHECK_IOTLB),
	    .sim = !strcmp(iommu_nest_backend(h), "sim"),
	};

	it_close(h);
	it_stop_ok(d);
	return o;
}

static void test_vtd(void)
{
	/* The kernel tier has no VT-d hardware: its walk is the mock's. */
	if (!offered().vtd)
		IT_SKIP(
		    "no VT-d device with the sim's model IOTLB (the kernel tier walks the mock)");
	walk(IT_VTD0, true, NULL);
}

static void test_selftest(void)
{
	if (!offered().st)
		IT_SKIP("no selftest device with CheckIotlb");
	walk(IT_ST0, false, NULL);
}

/* The same walks on the sim under Linux 7.x rules (the kernel7 tier runs the real one). */
static void test_vtd_sim_kernel7(void)
{
	struct offer o = offered();

	if (!o.sim || !o.vtd)
		IT_SKIP("sim_kernel is the sim's (the kernel7 tier walks the real 7.x mock)");
	walk(IT_VTD0, true, "7.0");
}

static void test_selftest_sim_kernel7(void)
{
	struct offer o = offered();

	if (!o.sim || !o.st)
		IT_SKIP("sim_kernel is the sim's (the kernel7 tier walks the real 7.x mock)");
	walk(IT_ST0, false, "7.0");
}

static const struct it_case cases[] = {
    {"vtd", test_vtd},
    {"selftest", test_selftest},
    {"vtd_sim_kernel7", test_vtd_sim_kernel7},
    {"selftest_sim_kernel7", test_selftest_sim_kernel7},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
	return it_main(argc, argv, "walkthrough", cases);
}
