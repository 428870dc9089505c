/* SPDX-License-Identifier: MIT */
/*
 * Writes the fuzz seed corpus: make-corpus OUT_DIR creates
 * OUT_DIR/dispatch/NAME, OUT_DIR/coalesce/NAME, OUT_DIR/queue_slot/NAME and
 * OUT_DIR/smmuv3/NAME
 * (directories must exist).
 *
 * Dispatch seeds are valid request sequences in the fuzz_dispatch.c input
 * layout (4 header bytes, then packets of u16 length + one Request each),
 * encoded with the generated protobuf-c code. HWPT ids are what a fresh sim
 * backend with fuzz_dispatch's devices (vtd0, mock0, vtd1: nest parents
 * 1-3) hands out: 4, 5, ... Under 7.x rules (header bit 3) sm0 and sm1
 * come too (parents 4-5): objects start at 6. Coalesce, queue_slot and smmuv3 seeds follow
 * fuzz_coalesce.c's, fuzz_queue_slot.c's and fuzz_smmuv3.c's layouts.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iommu_nest.pb-c.h"
#include "iommu_nest_queue.h"

#define VTD_DATA 1           /* IOMMU_HWPT_DATA_VTD_S1 */
#define ST_DATA 0xdead       /* IOMMU_HWPT_DATA_SELFTEST */
#define VTD_INV 0            /* IOMMU_HWPT_INVALIDATE_DATA_VTD_S1 */
#define ST_INV 0xdeadbeefu   /* IOMMU_HWPT_INVALIDATE_DATA_SELFTEST */
#define LEAF 1
#define PG 4096ULL
#define K7 8                   /* fuzz_dispatch header bit 3: Linux 7.x rules */
#define SMMU_DATA 2            /* IOMMU_HWPT_DATA_ARM_SMMUV3 */
#define ST_VIOMMU 0xdeadbeefu  /* IOMMU_VIOMMU_TYPE_SELFTEST, its invalidation type too */
#define SMMU_VIOMMU 1u         /* IOMMU_VIOMMU_TYPE_ARM_SMMUV3, and its commands' type */
#define OBJ_VIOMMU 1
#define OBJ_VDEVICE 2

struct buf {
	uint8_t d[32768];
	size_t n;
};

static const char *out_dir;
static struct buf b;
static uint64_t next_id;

static void put(const void *p, size_t n)
{
	if (b.n + n > sizeof(b.d)) {
		fprintf(stderr, "make-corpus: seed too large\n");
		exit(1);
	}
	memcpy(b.d + b.n, p, n);
	b.n += n;
}

/* Starts a seed: header bytes of the harness. */
static void begin(uint8_t flags, uint8_t max_mask, uint8_t slack_flush, uint8_t chunk)
{
	uint8_t h[4] = { flags, max_mask, slack_flush, chunk };

	b.n = 0;
	next_id = 1;
	put(h, sizeof(h));
}

static void emit(const char *sub, const char *name)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s/%s", out_dir, sub, name);
	f = fopen(path, "wb");
	if (!f || fwrite(b.d, 1, b.n, f) != b.n || fclose(f)) {
		fprintf(stderr, "make-corpus: %s: %s\n", path, strerror(errno));
		exit(1);
	}
}

/* Appends one packet for session A (0) or B (1). */
static void packet(int session, IommuNest__Request *r)
{
	size_t len;
	uint8_t hdr[2];
	static uint8_t tmp[32768];

	r->id = next_id++;
	len = iommu_nest__request__get_packed_size(r);
	if (len > sizeof(tmp) || len > 0x7fff) {
		fprintf(stderr, "make-corpus: packet too large\n");
		exit(1);
	}
	iommu_nest__request__pack(r, tmp);
	hdr[0] = len & 0xff;
	hdr[1] = (uint8_t)(len >> 8) | (session ? 0x80 : 0);
	put(hdr, 2);
	put(tmp, len);
}

static void hello(int s)
{
	IommuNest__Request r = IOMMU_NEST__REQUEST__INIT;
	IommuNest__Hello h = IOMMU_NEST__HELLO__INIT;

	h.version = 1;
	h.client_name = "seed";
	r.body_case = IOMMU_NEST__REQUEST__BODY_HELLO;
	r.hello = &h;
	packet(s, &r);
}

static void alloc_vtd(int s, const char *dev, uint32_t addr_width)
{
	IommuNest__Request r = IOMMU_NEST__REQUEST__INIT;
	IommuNest__Alloc a = IOMMU_NEST__ALLOC__INIT;
	IommuNest__VtdS1Data v = IOMMU_NEST__VTD_S1_DATA__INIT;

	v.pgtbl_addr = 0x100000;
	v.addr_width = addr_width;
	a.device = (char *)dev;
	a.data_type = VTD_DATA;
	a.data_case = IOMMU_NEST__ALLOC__DATA_VTD_S1;
	a.vtd_s1 = &v;
	r.body_case = IOMMU_NEST__REQUEST__BODY_ALLOC;
	r.alloc = &a;
	packet(s, &r);
}

static void alloc_mock(int s)
{
	IommuNest__Request r = IOMMU_NEST__REQUEST__INIT;
	IommuNest__Alloc a = IOMMU_NEST__ALLOC__INIT;
	IommuNest__SelftestData d = IOMMU_NEST__SELFTEST_DATA__INIT;

	d.iotlb = 0xbadbeef;
	a.device = "mock0";
	a.data_type = ST_DATA;
	a.data_case = IOMMU_NEST__ALLOC__DATA_SELFTEST;
	a.selftest = &d;
	r.body_case = IOMMU_NEST__REQUEST__BODY_ALLOC;
	r.alloc = &a;
	packet(s, &r);
}

static void alloc_mock_fault(int s)
{
	IommuNest__Request r = IOMMU_NEST__REQUEST__INIT;
	IommuNest__Alloc a = IOMMU_NEST__ALLOC__INIT;
	IommuNest__SelftestData d = IOMMU_NEST__SELFTEST_DATA__INIT;

	d.iotlb = 0xbadbeef;
	a.device = "mock0";
	a.data_type = ST_DATA;
	a.flags = 4; /* IOMMU_HWPT_FAULT_ID_VALID: the daemon names the fault object */
	a.data_case = IOMMU_NEST__ALLOC__DATA_SELFTEST;
	a.selftest = &d;
	r.body_case = IOMMU_NEST__REQUEST__BODY_ALLOC;
	r.alloc = &a;
	packet(s, &r);
}

static void trigger_iopf(int s, const char *dev, uint32_t grpid, uint32_t count)
{
	IommuNest__Request r = IOMMU_NEST__REQUEST__INIT;
	IommuNest__TriggerIopf t = IOMMU_NEST__TRIGGER_IOPF__INIT;

	t.device = (char *)dev;
	t.pasid = 1;
	t.grpid = grpid;
	t.perm = 3;
	t.addr = 0xdeadb000;
	t.count = count;
	r.body_case = IOMMU_NEST__REQUEST__BODY_TRIGGER_IOPF;
	r.trigger_iopf = &t;
	packet(s, &r);
}

static void page_response(int s, uint32_t hwpt, const char *dev, uint32_t grpid, uint32_t cookie,
			  uint32_t code)
{
	IommuNest__Request r = IOMMU_NEST__REQUEST__INIT;
	IommuNest__PageResponse m = IOMMU_NEST__PAGE_RESPONSE__INIT;

	m.hwpt_id = hwpt;
	m.device = (char *)dev;
	m.grpid = grpid;
	m.cookie = cookie;
	m.code = code;
	r.body_case = IOMMU_NEST__REQUEST__BODY_PAGE_RESPONSE;
	r.page_response = &m;
	packet(s, &r);
}

static void attach(int s, const char *dev, uint32_t hwpt)
{
	IommuNest__Request r = IOMMU_NEST__REQUEST__INIT;
	IommuNest__Attach a = IOMMU_NEST__ATTACH__INIT;

	a.device = (char *)dev;
	a.hwpt_id = hwpt;
	r.body_case = IOMMU_NEST__REQUEST__BODY_ATTACH;
	r.attach = &a;
	packet(s, &r);
}

static void get_hw_info(int s, const char *dev)
{
	IommuNest__Request r = IOMMU_NEST__REQUEST__INIT;
	IommuNest__GetHwInfo g = IOMMU_NEST__GET_HW_INFO__INIT;

	g.device = (char *)dev;
	r.body_case = IOMMU_NEST__REQUEST__BODY_GET_HW_INFO;
	r.get_hw_info = &g;
	packet(s, &r);
}

static void set_dirty_tracking(int s, const char *dev, bool on)
{
	IommuNest__Request r = IOMMU_NEST__REQUEST__INIT;
	IommuNest__SetDirtyTracking t = IOMMU_NEST__SET_DIRTY_TRACKING__INIT;

	t.device = (char *)dev;
	t.enable = on;
	r.body_case = IOMMU_NEST__REQUEST__BODY_SET_DIRTY_TRACKING;
	r.set_dirty_tracking = &t;
	packet(s, &r);
}

/* No descriptor can come with a corpus packet: the daemon's refusal is the path. */
static void get_dirty_bitmap(int s, const char *dev, uint64_t iova, uint64_t len, uint64_t pgsz,
			     uint32_t flags)
{
	IommuNest__Request r = IOMMU_NEST__REQUEST__INIT;
	IommuNest__GetDirtyBitmap g = IOMMU_NEST__GET_DIRTY_BITMAP__INIT;

	g.device = (char *)dev;
	g.iova = iova;
	g.length = len;
	g.page_size = pgsz;
	g.flags = flags;
	r.body_case = IOMMU_NEST__REQUEST__BODY_GET_DIRTY_BITMAP;
	r.get_dirty_bitmap = &g;
	packet(s, &r);
}

static void set_dirty(int s, const char *dev, uint64_t iova, uint64_t len, uint64_t pgsz,
		      uint8_t *bits, size_t nbits)
{
	IommuNest__Request r = IOMMU_NEST__REQUEST__INIT;
	IommuNest__SetDirty d = IOMMU_NEST__SET_DIRTY__INIT;

	d.device = (char *)dev;
	d.iova = iova;
	d.length = len;
	d.page_size = pgsz;
	d.bitmap.data = bits;
	d.bitmap.len = nbits;
	r.body_case = IOMMU_NEST__REQUEST__BODY_SET_DIRTY;
	r.set_dirty = &d;
	packet(s, &r);
}

static void detach(int s, const char *dev)
{
	IommuNest__Request r = IOMMU_NEST__REQUEST__INIT;
	IommuNest__Detach d = IOMMU_NEST__DETACH__INIT;

	d.device = (char *)dev;
	r.body_case = IOMMU_NEST__REQUEST__BODY_DETACH;
	r.detach = &d;
	packet(s, &r);
}

static void destroy(int s, uint32_t hwpt)
{
	IommuNest__Request r = IOMMU_NEST__REQUEST__INIT;
	IommuNest__Destroy d = IOMMU_NEST__DESTROY__INIT;

	d.hwpt_id = hwpt;
	r.body_case = IOMMU_NEST__REQUEST__BODY_DESTROY;
	r.destroy = &d;
	packet(s, &r);
}

static void probe(int s, uint32_t hwpt, uint32_t type)
{
	IommuNest__Request r = IOMMU_NEST__REQUEST__INIT;
	IommuNest__Probe p = IOMMU_NEST__PROBE__INIT;

	p.hwpt_id = hwpt;
	p.data_type = type;
	r.body_case = IOMMU_NEST__REQUEST__BODY_PROBE;
	r.probe = &p;
	packet(s, &r);
}

static void stats(int s)
{
	IommuNest__Request r = IOMMU_NEST__REQUEST__INIT;
	IommuNest__Stats st = IOMMU_NEST__STATS__INIT;

	r.body_case = IOMMU_NEST__REQUEST__BODY_STATS;
	r.stats = &st;
	packet(s, &r);
}

/* The admin views: Status, then a page of clients and of HWPTs from start. */
static void admin_views(int s, uint64_t start)
{
	IommuNest__Request r = IOMMU_NEST__REQUEST__INIT;
	IommuNest__Status st = IOMMU_NEST__STATUS__INIT;
	IommuNest__ListClients lc = IOMMU_NEST__LIST_CLIENTS__INIT;
	IommuNest__ListHwpts lh = IOMMU_NEST__LIST_HWPTS__INIT;

	r.body_case = IOMMU_NEST__REQUEST__BODY_STATUS;
	r.status = &st;
	packet(s, &r);
	lc.start = start;
	r.body_case = IOMMU_NEST__REQUEST__BODY_LIST_CLIENTS;
	r.list_clients = &lc;
	packet(s, &r);
	lh.start = (uint32_t)start;
	r.body_case = IOMMU_NEST__REQUEST__BODY_LIST_HWPTS;
	r.list_hwpts = &lh;
	packet(s, &r);
}

static void populate(int s, uint32_t hwpt, uint64_t page, uint64_t npages, uint32_t kind)
{
	IommuNest__Request r = IOMMU_NEST__REQUEST__INIT;
	IommuNest__SimPopulate p = IOMMU_NEST__SIM_POPULATE__INIT;

	p.hwpt_id = hwpt;
	p.addr = page * PG;
	p.npages = npages;
	p.kind = kind;
	r.body_case = IOMMU_NEST__REQUEST__BODY_SIM_POPULATE;
	r.sim_populate = &p;
	packet(s, &r);
}

static void query(int s, uint32_t hwpt, uint64_t page, uint64_t npages)
{
	IommuNest__Request r = IOMMU_NEST__REQUEST__INIT;
	IommuNest__SimQuery q = IOMMU_NEST__SIM_QUERY__INIT;

	q.hwpt_id = hwpt;
	q.addr = page * PG;
	q.npages = npages;
	r.body_case = IOMMU_NEST__REQUEST__BODY_SIM_QUERY;
	r.sim_query = &q;
	packet(s, &r);
}

static void check_iotlb(int s, uint32_t hwpt, uint32_t slot, uint32_t expected)
{
	IommuNest__Request r = IOMMU_NEST__REQUEST__INIT;
	IommuNest__CheckIotlb c = IOMMU_NEST__CHECK_IOTLB__INIT;

	c.hwpt_id = hwpt;
	c.iotlb_id = slot;
	c.expected = expected;
	r.body_case = IOMMU_NEST__REQUEST__BODY_CHECK_IOTLB;
	r.check_iotlb = &c;
	packet(s, &r);
}

static void fault(int s, uint32_t hwpt, uint32_t mode, uint32_t index, uint64_t addr,
		  int32_t error, uint32_t hw_error, uint32_t count)
{
	IommuNest__Request r = IOMMU_NEST__REQUEST__INIT;
	IommuNest__InjectFault f = IOMMU_NEST__INJECT_FAULT__INIT;

	f.hwpt_id = hwpt;
	f.mode = mode;
	f.index = index;
	f.addr = addr;
	f.error = error;
	f.hw_error = hw_error;
	f.count = count;
	r.body_case = IOMMU_NEST__REQUEST__BODY_INJECT_FAULT;
	r.inject_fault = &f;
	packet(s, &r);
}

/* VT-d invalidate: n entries of (page, npages, flags). */
static void inv_vtd(int s, uint32_t hwpt, uint32_t flags, uint32_t n, const uint64_t *page,
		    const uint64_t *npages, const uint32_t *eflags)
{
	IommuNest__Request r = IOMMU_NEST__REQUEST__INIT;
	IommuNest__Invalidate m = IOMMU_NEST__INVALIDATE__INIT;
	static uint64_t addr[2048];

	for (uint32_t i = 0; i < n; i++)
		addr[i] = page[i] == UINT64_MAX ? 0 : page[i] * PG;
	m.hwpt_id = hwpt;
	m.data_type = VTD_INV;
	m.flags = flags;
	m.n_addr = m.n_npages = n;
	m.addr = addr;
	m.npages = (uint64_t *)npages;
	if (eflags) {
		m.n_entry_flags = n;
		m.entry_flags = (uint32_t *)eflags;
	}
	r.body_case = IOMMU_NEST__REQUEST__BODY_INVALIDATE;
	r.invalidate = &m;
	packet(s, &r);
}

static void inv_mock(int s, uint32_t hwpt, uint32_t flags, uint32_t n, const uint32_t *slot,
		     const uint32_t *eflags)
{
	IommuNest__Request r = IOMMU_NEST__REQUEST__INIT;
	IommuNest__Invalidate m = IOMMU_NEST__INVALIDATE__INIT;

	m.hwpt_id = hwpt;
	m.data_type = ST_INV;
	m.flags = flags;
	m.n_iotlb_id = n;
	m.iotlb_id = (uint32_t *)slot;
	if (eflags) {
		m.n_entry_flags = n;
		m.entry_flags = (uint32_t *)eflags;
	}
	r.body_case = IOMMU_NEST__REQUEST__BODY_INVALIDATE;
	r.invalidate = &m;
	packet(s, &r);
}

#define N(a) (uint32_t)(sizeof(a) / sizeof((a)[0]))

static void alloc_viommu(int s, const char *dev, uint32_t type)
{
	IommuNest__Request r = IOMMU_NEST__REQUEST__INIT;
	IommuNest__AllocViommu a = IOMMU_NEST__ALLOC_VIOMMU__INIT;

	a.device = (char *)dev;
	a.type = type;
	r.body_case = IOMMU_NEST__REQUEST__BODY_ALLOC_VIOMMU;
	r.alloc_viommu = &a;
	packet(s, &r);
}

static void alloc_vdevice(int s, uint32_t viommu, const char *dev, uint64_t virt_id)
{
	IommuNest__Request r = IOMMU_NEST__REQUEST__INIT;
	IommuNest__AllocVdevice a = IOMMU_NEST__ALLOC_VDEVICE__INIT;

	a.viommu_id = viommu;
	a.device = (char *)dev;
	a.virt_id = virt_id;
	r.body_case = IOMMU_NEST__REQUEST__BODY_ALLOC_VDEVICE;
	r.alloc_vdevice = &a;
	packet(s, &r);
}

static void destroy_object(int s, uint32_t kind, uint32_t id)
{
	IommuNest__Request r = IOMMU_NEST__REQUEST__INIT;
	IommuNest__DestroyObject d = IOMMU_NEST__DESTROY_OBJECT__INIT;

	d.kind = kind;
	d.id = id;
	r.body_case = IOMMU_NEST__REQUEST__BODY_DESTROY_OBJECT;
	r.destroy_object = &d;
	packet(s, &r);
}

/* A nested HWPT on a vIOMMU: the mock's data, or an SMMUv3 STE (ste0 != 0). */
static void alloc_on_viommu(int s, const char *dev, uint32_t viommu, uint64_t ste0)
{
	IommuNest__Request r = IOMMU_NEST__REQUEST__INIT;
	IommuNest__Alloc a = IOMMU_NEST__ALLOC__INIT;
	IommuNest__SelftestData d = IOMMU_NEST__SELFTEST_DATA__INIT;
	IommuNest__SmmuV3Data sd = IOMMU_NEST__SMMU_V3_DATA__INIT;
	uint64_t ste[2] = { ste0, 0 };

	a.device = (char *)dev;
	a.viommu_id = viommu;
	if (ste0) {
		sd.n_ste = 2;
		sd.ste = ste;
		a.data_type = SMMU_DATA;
		a.data_case = IOMMU_NEST__ALLOC__DATA_SMMUV3;
		a.smmuv3 = &sd;
	} else {
		d.iotlb = 0xbadbeef;
		a.data_type = ST_DATA;
		a.data_case = IOMMU_NEST__ALLOC__DATA_SELFTEST;
		a.selftest = &d;
	}
	r.body_case = IOMMU_NEST__REQUEST__BODY_ALLOC;
	r.alloc = &a;
	packet(s, &r);
}

/* Invalidate on a vIOMMU: len bytes of raw entries, entry_len each (0: native). */
static void inv_viommu(int s, uint32_t viommu, uint32_t type, uint32_t flags,
		       uint32_t entry_len, const void *raw, size_t len)
{
	IommuNest__Request r = IOMMU_NEST__REQUEST__INIT;
	IommuNest__Invalidate m = IOMMU_NEST__INVALIDATE__INIT;

	m.hwpt_id = viommu;
	m.data_type = type;
	m.flags = flags;
	m.entry_len = entry_len;
	m.object_kind = IOMMU_NEST__OBJECT_KIND__OBJECT_VIOMMU;
	m.raw_entries.data = (uint8_t *)raw;
	m.raw_entries.len = len;
	r.body_case = IOMMU_NEST__REQUEST__BODY_INVALIDATE;
	r.invalidate = &m;
	packet(s, &r);
}

static void smmu_cache(int s, bool query_only, uint32_t hwpt, uint32_t asid, uint64_t page,
		       uint64_t npages, uint32_t kind)
{
	IommuNest__Request r = IOMMU_NEST__REQUEST__INIT;
	IommuNest__SimPopulate p = IOMMU_NEST__SIM_POPULATE__INIT;
	IommuNest__SimQuery q = IOMMU_NEST__SIM_QUERY__INIT;

	if (query_only) {
		q.hwpt_id = hwpt;
		q.asid = asid;
		q.addr = page * PG;
		q.npages = npages;
		r.body_case = IOMMU_NEST__REQUEST__BODY_SIM_QUERY;
		r.sim_query = &q;
	} else {
		p.hwpt_id = hwpt;
		p.asid = asid;
		p.addr = page * PG;
		p.npages = npages;
		p.kind = kind;
		r.body_case = IOMMU_NEST__REQUEST__BODY_SIM_POPULATE;
		r.sim_populate = &p;
	}
	packet(s, &r);
}

/* 16-byte SMMUv3 commands, little-endian, collected for one inv_viommu(). */
static uint8_t cmds[4096];
static size_t n_cmds;

static void cmd(uint64_t w0, uint64_t w1)
{
	for (int i = 0; i < 8; i++) {
		cmds[n_cmds * 16 + i] = (uint8_t)(w0 >> (8 * i));
		cmds[n_cmds * 16 + 8 + i] = (uint8_t)(w1 >> (8 * i));
	}
	n_cmds++;
}

static void inv_cmds(int s, uint32_t viommu, uint32_t flags)
{
	inv_viommu(s, viommu, SMMU_VIOMMU, flags, 0, cmds, n_cmds * 16);
	n_cmds = 0;
}

/* vIOMMU seeds (7.x rules): the mock vIOMMU and vDEVICE rules, two tenants, 6.12's ENOTTY. */
static void viommu_seeds(void)
{
	const uint8_t sf = 3 | (3 << 3);

	{
		/* {flags, vdev_id, cache_id} entries, as the mock lays them out. */
		const uint32_t ok[] = { 0, 0x10, 1, 1, 0x10, 0 };
		const uint32_t bad_flag[] = { 0, 0x10, 0, 2, 0x10, 1, 0, 0x10, 2 };
		const uint32_t bad_cache[] = { 0, 0x10, 4 };
		const uint32_t bad_vdev[] = { 0, 0x10, 3, 0, 0x30, 0 };
		const uint32_t wide[] = { 0, 0x10, 1, 0, 0, 0x10, 2, 9 };

		begin(K7, 18, sf, 0);
		hello(0);
		alloc_viommu(0, "mock0", ST_VIOMMU);
		alloc_viommu(0, "mock0", 0);
		alloc_viommu(0, "mock0", SMMU_VIOMMU);
		alloc_vdevice(0, 6, "mock0", 0x10);
		alloc_vdevice(0, 6, "mock0", 0x11);
		alloc_on_viommu(0, "mock0", 6, 0);
		attach(0, "mock0", 8);
		inv_viommu(0, 6, ST_VIOMMU, 0, 0, ok, sizeof(ok));
		inv_viommu(0, 6, ST_VIOMMU, 0, 0, bad_flag, sizeof(bad_flag));
		inv_viommu(0, 6, ST_VIOMMU, IOMMU_NEST__INVALIDATE_FLAG__INV_CONTINUE, 0, bad_flag,
			   sizeof(bad_flag));
		inv_viommu(0, 6, ST_VIOMMU, 0, 0, bad_cache, sizeof(bad_cache));
		inv_viommu(0, 6, ST_VIOMMU, 0, 0, bad_vdev, sizeof(bad_vdev));
		inv_viommu(0, 6, ST_VIOMMU, 0, 16, wide, sizeof(wide));
		inv_viommu(0, 6, ST_VIOMMU, 0, 8, ok, 16);
		inv_viommu(0, 6, ST_VIOMMU, 0, 0, NULL, 0);
		inv_viommu(0, 6, ST_VIOMMU + 1, 0, 12, NULL, 0);
		inv_viommu(0, 7, ST_VIOMMU, 0, 0, ok, sizeof(ok));
		inv_mock(0, 8, 0, 1, (const uint32_t[]){ 1 }, NULL);
		destroy_object(0, OBJ_VIOMMU, 6);
		destroy_object(0, OBJ_VDEVICE, 6);
		detach(0, "mock0");
		destroy(0, 8);
		destroy_object(0, OBJ_VDEVICE, 7);
		destroy_object(0, OBJ_VIOMMU, 6);
		/* Left for the disconnect (the sim reuses the freed ids): all three, attached. */
		alloc_viommu(0, "mock0", ST_VIOMMU);
		alloc_vdevice(0, 6, "mock0", 0x10);
		alloc_on_viommu(0, "mock0", 6, 0);
		attach(0, "mock0", 8);
		emit("dispatch", "viommu-mock");
	}
	{
		const uint32_t ok[] = { 0, 0x10, 1 };

		/* B names A's objects: -ENOENT each, and A's device is busy for B. */
		begin(K7 | 1, 18, sf, 0);
		alloc_viommu(0, "mock0", ST_VIOMMU);
		alloc_vdevice(0, 6, "mock0", 0x10);
		alloc_vdevice(1, 6, "mock0", 0x11);
		alloc_viommu(1, "mock0", ST_VIOMMU);
		alloc_on_viommu(1, "mock0", 6, 0);
		inv_viommu(1, 6, ST_VIOMMU, 0, 0, ok, sizeof(ok));
		destroy_object(1, OBJ_VDEVICE, 7);
		destroy_object(1, OBJ_VIOMMU, 6);
		inv_viommu(0, 6, ST_VIOMMU, 0, 0, ok, sizeof(ok));
		emit("dispatch", "viommu-two-tenants");
	}
	{
		const uint32_t ok[] = { 0, 0x10, 1 };

		/* 6.12: no vIOMMU; ids 1-3 are nest parents, no vIOMMUs. */
		begin(1, 18, sf, 0);
		alloc_viommu(0, "mock0", ST_VIOMMU);
		alloc_vdevice(0, 1, "mock0", 0x10);
		inv_viommu(0, 1, ST_VIOMMU, 0, 0, ok, sizeof(ok));
		destroy_object(0, OBJ_VIOMMU, 1);
		emit("dispatch", "viommu-6.12");
	}
	{
		/* An S1 STE: V, Config 5 (S1 translate), a CD table pointer. */
		const uint64_t ste0 = 1 | 5u << 1 | 0x80000000ULL;
		const uint64_t asid = 5ULL << 48, va = 0x40000000ULL;

		begin(K7 | 1, 18, sf, 0);
		alloc_viommu(0, "sm0", SMMU_VIOMMU);
		alloc_vdevice(0, 6, "sm0", 8);
		alloc_on_viommu(0, "sm0", 6, ste0);
		attach(0, "sm0", 8);
		smmu_cache(0, false, 8, 5, va / PG, 256, 1);
		smmu_cache(0, false, 8, 5, va / PG, 256, 2);
		/* An unmap storm with the guest's CMD_SYNC implied: NH_VA leaf per page. */
		for (uint64_t i = 0; i < 64; i++)
			cmd(0x12 | asid, (va + i * PG) | 1);
		inv_cmds(0, 6, 0);
		/* A 4 KiB-granule range (TG 1, NUM 7: 8 pages), non-leaf; NH_ASID; config. */
		cmd(0x12 | asid | 7u << 12, (va + 64 * PG) | 1u << 10);
		cmd(0x11 | asid, 0);
		cmd(0x05 | 8ULL << 32, 1);
		cmd(0x06 | 8ULL << 32, 0);
		cmd(0x40 | 8ULL << 32, 0);
		cmd(0x13, (va + 80 * PG) | 1);
		cmd(0x10, 0);
		cmd(0x30, 0);
		inv_cmds(0, 6, 0);
		smmu_cache(0, true, 8, 5, va / PG, 256, 0);
		/* Not a guest command, an unknown vSID, each after good ones. */
		cmd(0x12 | asid, va | 1);
		cmd(0x2a, 0);
		cmd(0x12 | asid, (va + PG) | 1);
		inv_cmds(0, 6, IOMMU_NEST__INVALIDATE_FLAG__INV_CONTINUE);
		cmd(0x12 | asid, va | 1);
		cmd(0x05 | 9ULL << 32, 1);
		inv_cmds(0, 6, 0);
		inv_viommu(0, 6, SMMU_VIOMMU, 0, 0, NULL, 0);
		/* A kernel-reported failure: resubmitted one by one. */
		smmu_cache(0, false, 8, 5, va / PG, 64, 1);
		fault(0, 8, 1, 0, 0, -ETIMEDOUT, 0, 1);
		for (uint64_t i = 0; i < 16; i++)
			cmd(0x12 | asid, (va + i * PG) | 1);
		inv_cmds(0, 6, 0);
		/* Shorter and longer entries. */
		cmd(0x11 | asid, 0);
		inv_viommu(0, 6, SMMU_VIOMMU, 0, 8, cmds, 8);
		/* 24-byte entries: NH_ASID 0 with a zero tail, then one with a non-zero tail. */
		{
			static const uint8_t wide[48] = { 0x11, [24] = 0x11, [40] = 1 };

			inv_viommu(0, 6, SMMU_VIOMMU, 0, 24, wide, sizeof(wide));
		}
		n_cmds = 0;
		alloc_viommu(0, "sm1", SMMU_VIOMMU);
		alloc_vdevice(0, 9, "sm1", 8);
		destroy_object(0, OBJ_VIOMMU, 6);
		emit("dispatch", "smmuv3-commands");
	}
}

static void dispatch_seeds(void)
{
	/* Default header: explicit Hello, coalescing on, mask 18, slack 16, 1 GiB. */
	const uint8_t sf = 3 | (3 << 3);

	begin(0, 18, sf, 0);
	hello(0);
	stats(0);
	emit("dispatch", "hello-stats");

	begin(0, 18, sf, 0);
	stats(0); /* before Hello: -EPROTO */
	hello(0);
	emit("dispatch", "no-hello");

	begin(0, 18, sf, 0);
	hello(0);
	alloc_vtd(0, "vtd0", 48);
	attach(0, "vtd0", 4);
	admin_views(0, 0);
	admin_views(0, 4);
	emit("dispatch", "admin-views");

	{
		uint64_t pg[] = { 0, 16, 8, 0x1000, 0x2000 };
		uint64_t np[] = { 8, 8, 16, 1, 512 };
		uint32_t fl[] = { LEAF, LEAF, 0, LEAF, 0 };

		begin(0, 18, sf, 0);
		hello(0);
		alloc_vtd(0, "vtd0", 48);
		attach(0, "vtd0", 4);
		populate(0, 4, 0, 0x4000, 1);
		populate(0, 4, 0, 0x4000, 2);
		inv_vtd(0, 4, 0, N(pg), pg, np, fl);
		query(0, 4, 0, 0x4000);
		destroy(0, 4); /* attached: -EBUSY */
		detach(0, "vtd0");
		destroy(0, 4);
		emit("dispatch", "vtd-lifecycle");
	}
	{
		uint64_t pg[] = { UINT64_MAX, 3 };
		uint64_t np[] = { UINT64_MAX, 0 };

		begin(1, 18, sf, 0);
		alloc_vtd(0, "vtd0", 57);
		populate(0, 4, 0, 100, 2);
		inv_vtd(0, 4, 0, N(pg), pg, np, NULL);
		query(0, 4, 0, 100);
		emit("dispatch", "vtd-flush-all");
	}
	{
		/* Invalid entries: unaligned is impossible here, so bad flags / reserved. */
		uint64_t pg[] = { 1, 2, 3, 4 };
		uint64_t np[] = { 1, 1, 1, 1 };
		uint32_t fl[] = { 0, 2, LEAF, 0 };

		begin(1, 18, sf, 0);
		alloc_vtd(0, "vtd0", 48);
		populate(0, 4, 0, 16, 1);
		inv_vtd(0, 4, 0, N(pg), pg, np, fl);
		inv_vtd(0, 4, IOMMU_NEST__INVALIDATE_FLAG__INV_CONTINUE, N(pg), pg, np, fl);
		emit("dispatch", "vtd-bad-entries");
	}
	{
		/* Ranges that reach the end of the 64-bit space. */
		uint64_t pg[] = { (1ULL << 52) - 16, (1ULL << 52) - 1, 1ULL << 40 };
		uint64_t np[] = { 1ULL << 60, 32, (1ULL << 52) };
		uint32_t fl[] = { LEAF, 0, LEAF };

		begin(1, 52, sf, 0);
		alloc_vtd(0, "vtd0", 48);
		populate(0, 4, (1ULL << 52) - 64, 64, 1);
		populate(0, 4, (1ULL << 52) - 64, 64, 2);
		inv_vtd(0, 4, 0, N(pg), pg, np, fl);
		query(0, 4, (1ULL << 52) - 64, 64);
		emit("dispatch", "vtd-top-of-space");
	}
	{
		uint32_t slot[] = { 0, 2, 2, 3 };
		uint32_t slot_all[] = { 1 };
		uint32_t fl_all[] = { 1 };

		begin(1, 18, sf, 0);
		alloc_mock(0);
		attach(0, "mock0", 4);
		check_iotlb(0, 4, 0, 0xbadbeef);
		inv_mock(0, 4, 0, N(slot), slot, NULL);
		check_iotlb(0, 4, 0, 0);
		check_iotlb(0, 4, 1, 0xbadbeef);
		inv_mock(0, 4, 0, N(slot_all), slot_all, fl_all);
		check_iotlb(0, 4, 1, 0);
		probe(0, 4, ST_INV);
		probe(0, 4, VTD_INV);
		emit("dispatch", "mock-lifecycle");
	}
	{
		/* Two tenants: B may not touch A's HWPT or its device. */
		uint64_t pg[] = { 0 };
		uint64_t np[] = { 4 };

		begin(1, 18, sf, 0);
		alloc_vtd(0, "vtd0", 48);
		attach(0, "vtd0", 4);
		inv_vtd(1, 4, 0, N(pg), pg, np, NULL);
		destroy(1, 4);
		attach(1, "vtd0", 4);
		alloc_vtd(1, "vtd0", 48);
		attach(1, "vtd0", 5);
		populate(1, 4, 0, 4, 1);
		query(1, 4, 0, 4);
		inv_vtd(0, 4, 0, N(pg), pg, np, NULL);
		emit("dispatch", "two-tenants");
	}
	/* GetHwInfo: both device kinds, an unknown one, and a device the other tenant holds. */
	begin(1, 18, sf, 0);
	get_hw_info(0, "vtd0");
	get_hw_info(0, "mock0");
	get_hw_info(0, "nodev");
	alloc_vtd(0, "vtd0", 48);
	attach(0, "vtd0", 4);
	get_hw_info(1, "vtd0");
	emit("dispatch", "hw-info");
	{
		/* Dirty tracking: on, marks, reads (no memfd), bad ranges, the other tenant. */
		uint8_t bits[] = { 0x09, 0x00, 0x80 };

		begin(1, 18, sf, 0);
		set_dirty_tracking(0, "mock0", true);
		set_dirty(0, "mock0", 16 << 20, 24 * 4096, 4096, bits, sizeof(bits));
		set_dirty(0, "mock0", 16 << 20, 4096, 0, bits, sizeof(bits));
		get_dirty_bitmap(0, "mock0", 16 << 20, 1 << 20, 4096, 1);
		get_dirty_bitmap(0, "mock0", 16 << 20, 1 << 20, 3 * 4096, 0);
		get_dirty_bitmap(0, "mock0", UINT64_MAX - 4095, 8192, 4096, 2);
		alloc_vtd(0, "vtd0", 48);
		attach(0, "vtd0", 4);
		set_dirty_tracking(1, "vtd0", false);
		get_dirty_bitmap(1, "vtd0", 0, 4096, 4096, 0);
		set_dirty_tracking(0, "nodev", true);
		emit("dispatch", "dirty");
	}
	{
		/* Batching: several requests on two HWPTs in one pass. */
		uint64_t pg1[] = { 0, 64 }, np1[] = { 32, 32 };
		uint64_t pg2[] = { 32, 1000 }, np2[] = { 32, 24 };
		uint32_t fl2[] = { LEAF, LEAF };
		uint32_t slot[] = { 1 };

		begin(1, 18, sf, 0);
		alloc_vtd(0, "vtd0", 48);
		alloc_vtd(0, "vtd1", 48);
		alloc_mock(1);
		populate(0, 4, 0, 2048, 1);
		populate(0, 5, 0, 2048, 2);
		inv_vtd(0, 4, 0, N(pg1), pg1, np1, NULL);
		inv_vtd(0, 5, 0, N(pg2), pg2, np2, fl2);
		inv_mock(1, 6, 0, N(slot), slot, NULL);
		inv_vtd(0, 4, 0, N(pg2), pg2, np2, NULL);
		inv_vtd(0, 5, 0, N(pg1), pg1, np1, NULL);
		stats(0);
		emit("dispatch", "batch-two-hwpts");
	}
	{
		/*
		 * Fault delivery: A's fault queue (id 4) and HWPT (5) on mock0,
		 * three faults, answered by A (good, bad code, by device), and B
		 * trying A's HWPT and cookie.
		 */
		begin(1, 18, sf, 0);
		alloc_mock_fault(0);
		attach(0, "mock0", 5);
		trigger_iopf(0, "mock0", 2, 3);
		page_response(0, 5, "", 2, 1, 0);
		page_response(0, 0, "mock0", 2, 2, 7);
		page_response(1, 5, "", 2, 2, 0);
		page_response(1, 0, "mock0", 2, 3, 0);
		page_response(0, 0, "mock0", 2, 3, 1);
		page_response(0, 0, "", 2, 2, 0);
		trigger_iopf(1, "mock0", 2, 1);
		emit("dispatch", "iopf");
	}
	{
		/* Fault injection: errno at an index, hw_error at an address. */
		uint64_t pg[] = { 0, 100, 200, 300 }, np[] = { 10, 10, 10, 10 };

		begin(1, 18, sf, 0);
		alloc_vtd(0, "vtd0", 48);
		populate(0, 4, 0, 400, 1);
		fault(0, 4, 1, 1, 0, -5, 0, 1);
		inv_vtd(0, 4, 0, N(pg), pg, np, NULL);
		fault(0, 0, 2, 0, 205 * PG, 0, 0x10, 0);
		inv_vtd(0, 4, IOMMU_NEST__INVALIDATE_FLAG__INV_CONTINUE, N(pg), pg, np, NULL);
		fault(0, 0, 0, 0, 0, 0, 0, 0);
		inv_vtd(0, 4, 0, N(pg), pg, np, NULL);
		emit("dispatch", "faults");
	}
	{
		/* Coalescing off, one entry per backend call, session ends with a batch queued. */
		uint64_t pg[] = { 0, 1, 2, 3, 4, 5 }, np[] = { 1, 1, 1, 1, 1, 1 };

		begin(1 | 2 | 4, 18, sf, 1);
		alloc_vtd(0, "vtd0", 48);
		populate(0, 4, 0, 8, 1);
		fault(0, 4, 1, 0, 0, -22, 0, 3);
		inv_vtd(0, 4, 0, N(pg), pg, np, NULL);
		inv_vtd(0, 4, IOMMU_NEST__INVALIDATE_FLAG__INV_CONTINUE, N(pg), pg, np, NULL);
		emit("dispatch", "no-coalesce-chunk1");
	}
	{
		/* A large request: many entries, a reply of several KiB, a batch of them. */
		static uint64_t pg[1500], np[1500];
		static uint32_t fl[1500];

		for (uint32_t i = 0; i < N(pg); i++) {
			pg[i] = (uint64_t)i * 37 % 5000;
			np[i] = 1 + i % 9;
			fl[i] = i % 3 ? LEAF : 0;
		}
		begin(1, 18, sf, 64);
		alloc_vtd(0, "vtd0", 48);
		populate(0, 4, 0, 6000, 1);
		populate(0, 4, 0, 6000, 2);
		inv_vtd(0, 4, 0, N(pg), pg, np, fl);
		inv_vtd(0, 4, IOMMU_NEST__INVALIDATE_FLAG__INV_CONTINUE, 700, pg + 800, np, fl);
		query(0, 4, 0, 6000);
		emit("dispatch", "vtd-many-entries");
	}
	{
		/* A broken frame closes the session; the next packet opens another. */
		uint8_t junk[] = { 0xff, 0xff, 0xff };
		uint8_t hdr[2] = { sizeof(junk), 0 };
		uint64_t pg[] = { 0 }, np[] = { 1 };

		begin(1, 18, sf, 0);
		alloc_vtd(0, "vtd0", 48);
		inv_vtd(0, 4, 0, N(pg), pg, np, NULL);
		put(hdr, 2);
		put(junk, sizeof(junk));
		alloc_vtd(0, "vtd0", 48);
		emit("dispatch", "broken-frame");
	}
	{
		/* Arrays of different lengths, wrong data types, a probe, unknown ids. */
		IommuNest__Request r = IOMMU_NEST__REQUEST__INIT;
		IommuNest__Invalidate m = IOMMU_NEST__INVALIDATE__INIT;
		uint64_t a[] = { 0, 4096 }, n1[] = { 1 };

		begin(1, 18, sf, 0);
		alloc_vtd(0, "vtd0", 48);
		m.hwpt_id = 4;
		m.n_addr = 2;
		m.addr = a;
		m.n_npages = 1;
		m.npages = n1;
		r.body_case = IOMMU_NEST__REQUEST__BODY_INVALIDATE;
		r.invalidate = &m;
		packet(0, &r);
		m.n_npages = 2;
		m.npages = a;
		m.data_type = ST_INV;
		packet(0, &r);
		m.data_type = VTD_INV;
		m.reserved = 1;
		packet(0, &r);
		m.reserved = 0;
		m.entry_len = 16;
		packet(0, &r);
		m.entry_len = 0;
		m.hwpt_id = 1;
		packet(0, &r);
		probe(0, 4, VTD_INV);
		destroy(0, 99);
		emit("dispatch", "malformed-invalidates");
	}
}

/* Coalesce seeds (fuzz_coalesce.c layout). */
static void coalesce_seeds(void)
{
	static const uint8_t vtd_small[] = { 0, 3, 3, 18,
		0x00, 0, 0x00, 8,  /* page 0, 8 pages, non-leaf */
		0x40, 16, 0x00, 8, /* leaf page 16 */
		0x41, 0, 0x00, 4,  /* leaf next to the previous end */
		0x44, 10, 0, 0x08, 0x45 };
	static const uint8_t vtd_top[] = { 0, 2, 0, 0,
		0x03, 5, 0x28, 0,    /* top of space, up to the end */
		0x13, 0, 0x08, 0x3f, /* top of space, 2^63 pages */
		0x20, 0x30, 0x06 };
	static const uint8_t vtd_flush_all[] = { 0, 3, 2, 18, 0x06, 0x18, 0x00, 5, 10, 0x60, 0x46 };
	static const uint8_t vtd_norm[] = { 4, 1, 1, 52, 0x02, 0, 0, 0, 0, 0, 0xf0, 0xff, 0x0f,
		0x12, 0, 0, 0, 0, 0, 0, 0, 0x10, 0x00, 7, 9, 0x27, 52, 0x51, 3 };
	static const uint8_t vtd_identity[] = { 2, 18, 3, 3, 0x00, 1, 0x00, 2, 0x20, 0x00, 3, 0x00,
		0x06, 0x18 };
	static const uint8_t vtd_pow2[] = { 0, 5, 0, 12, 0x04, 20, 0, 0x08, 20, 0x04, 20, 0xff,
		0x08, 21, 0x07, 3, 0x38, 4, 0x44, 30, 1, 0x30 };
	static const uint8_t st_mix[] = { 1, 0, 0, 0, 0, 1, 1, 3, 2, 2 };
	static const uint8_t st_all[] = { 1, 0, 0, 0, 0, 4, 3 };
	static const uint8_t st_identity[] = { 3, 0, 0, 0, 3, 2, 1, 0, 4 };
	static const struct {
		const char *name;
		const uint8_t *d;
		size_t n;
	} seeds[] = {
		{ "vtd-small", vtd_small, sizeof(vtd_small) },
		{ "vtd-top", vtd_top, sizeof(vtd_top) },
		{ "vtd-flush-all", vtd_flush_all, sizeof(vtd_flush_all) },
		{ "vtd-normalised", vtd_norm, sizeof(vtd_norm) },
		{ "vtd-identity", vtd_identity, sizeof(vtd_identity) },
		{ "vtd-pow2", vtd_pow2, sizeof(vtd_pow2) },
		{ "selftest-mix", st_mix, sizeof(st_mix) },
		{ "selftest-all", st_all, sizeof(st_all) },
		{ "selftest-identity", st_identity, sizeof(st_identity) },
	};

	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		b.n = 0;
		put(seeds[i].d, seeds[i].n);
		emit("coalesce", seeds[i].name);
	}
}

/* SMMUv3 seeds (fuzz_smmuv3.c layout): a params byte, then 16-byte commands. */
static void smmuv3_cmd(uint8_t sel, uint64_t w0, uint64_t w1)
{
	uint8_t c[16];

	w0 = (w0 & ~0xffULL) | sel;
	for (int i = 0; i < 8; i++) {
		c[i] = (uint8_t)(w0 >> (8 * i));
		c[8 + i] = (uint8_t)(w1 >> (8 * i));
	}
	put(c, sizeof(c));
}

static void smmuv3_seeds(void)
{
	const uint8_t range_4k = 0x03, no_range = 0x00, slack2 = 0x23, off = 0x0b;

	/* Unmap storm: NH_VA leaf per page, ASID 1 (selector 1). */
	b.n = 0;
	put(&range_4k, 1);
	for (uint64_t i = 0; i < 64; i++)
		smmuv3_cmd(1, 1ULL << 48, ((0x100 + i) << 12) | 1);
	emit("smmuv3", "storm");
	/* ASID switches, with and without range support, and gaps. */
	for (int v = 0; v < 2; v++) {
		b.n = 0;
		put(v ? &no_range : &slack2, 1);
		for (uint64_t i = 0; i < 48; i++)
			smmuv3_cmd(1, (i / 8 % 3) << 48, ((i * 2) << 12) | (i & 1));
		smmuv3_cmd(4, 2ULL << 48, 0);
		smmuv3_cmd(2, 0, (5ULL << 12) | (1 << 10) | (3 << 8));
		emit("smmuv3", v ? "asid-switch-no-range" : "asid-switch-slack");
	}
	/* CFGI_CD burst, a CD_ALL, an unknown vSID, then ATC_INVs and a NH_ALL. */
	b.n = 0;
	put(&range_4k, 1);
	for (uint64_t i = 0; i < 24; i++)
		smmuv3_cmd(6, (1ULL << 32) | ((i % 6) << 12), i != 5);
	smmuv3_cmd(7, 2ULL << 32, 0);
	smmuv3_cmd(6, 4ULL << 32, 1);
	for (uint64_t i = 0; i < 8; i++)
		smmuv3_cmd(5, (3ULL << 32) | (1 << 11) | (2 << 12), (0x40 + i) << 12);
	smmuv3_cmd(5, 1ULL << 32, 52);
	smmuv3_cmd(3, 0, 0);
	emit("smmuv3", "cfgi-atc");
	/* Ranges near the top of the space, coalescing off, a raw CMD_SYNC. */
	b.n = 0;
	put(&off, 1);
	smmuv3_cmd(1, (31ULL << 12) | (31ULL << 20), ~0ULL << 12 | (3 << 10));
	smmuv3_cmd(2, 0, 0xfffffffffffff000ULL);
	smmuv3_cmd(8, 0x4600, 0);
	emit("smmuv3", "top-raw");
}

/* Queue slot seeds (fuzz_queue_slot.c layout): a 4/4-slot area, 64 data bytes. */
static void qs_write(uint32_t off, const void *p, uint8_t len)
{
	const uint8_t op[] = {0, (uint8_t)off, (uint8_t)(off >> 8), len};

	put(op, sizeof(op));
	put(p, len);
}

static void qs_op(uint8_t op, uint16_t v)
{
	const uint8_t o[] = {op, (uint8_t)v, (uint8_t)(v >> 8)};

	put(o, op == 1 ? 1 : sizeof(o));
}

static void queue_slot_seed_f(const char *name, uint32_t n, uint32_t entry_off, uint32_t tail,
			      uint8_t mode, uint32_t flags)
{
	const uint8_t geometry[] = {(uint8_t)(2 | mode), 2, 8};
	/* Two selftest entries: iotlb_id 1 and 2, no flags. */
	static const uint32_t entries[] = {1, 0, 2, 0};
	struct nestq_layout l;
	struct nestq_sqe sqe = {.user_data = 7,
				.hwpt_id = 4,
				.data_type = 0xdeadbeef, /* IOMMU_HWPT_INVALIDATE_DATA_SELFTEST */
				.n = n,
				.flags = flags,
				.entry_off = entry_off,
				.result_off = flags & NESTQ_SQE_INLINE ? 0 : 16};

	if (flags & NESTQ_SQE_INLINE)
		memcpy(sqe.inline_entry, entries, 8);
	nestq_layout(&l, 4, 4, 64);
	b.n = 0;
	put(geometry, sizeof(geometry));
	qs_write((uint32_t)l.data_off, entries, sizeof(entries));
	qs_write((uint32_t)l.sq_off, &sqe, sizeof(sqe));
	qs_op(2, (uint16_t)tail);
	qs_op(1, 0);
	qs_op(3, 1);
	qs_op(1, 0);
	emit("queue_slot", name);
}

static void queue_slot_seed(const char *name, uint32_t n, uint32_t entry_off, uint32_t tail,
			    uint8_t mode)
{
	queue_slot_seed_f(name, n, entry_off, tail, mode, 0);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: make-corpus OUT_DIR (with OUT_DIR/{dispatch,coalesce,queue_slot,smmuv3})\n");
		return 2;
	}
	out_dir = argv[1];
	dispatch_seeds();
	viommu_seeds();
	coalesce_seeds();
	smmuv3_seeds();
	queue_slot_seed("selftest-two", 2, 0, 1, 0);
	queue_slot_seed("entry-past-end", 2, 56, 1, 0);
	queue_slot_seed("tail-past-ring", 2, 0, 9, 0);
	/* 0x80: with the racing writer thread. */
	queue_slot_seed("selftest-two-racing", 2, 0, 1, 0x80);
	queue_slot_seed_f("selftest-inline", 1, 0, 1, 0, NESTQ_SQE_INLINE);
	queue_slot_seed_f("selftest-inline-racing", 1, 0, 1, 0x80, NESTQ_SQE_INLINE);
	return 0;
}
