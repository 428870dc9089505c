/* SPDX-License-Identifier: MIT */
/*
 * Batch execution: every pending entry of a list of requests on one HWPT
 * is gathered (client order, request by request), coalesced, submitted in
 * chunks with the kernel's entry_num semantics, and every backend outcome
 * is mapped back to the client entries it served.
 *
 * Exactness. When the backend stops at submitted entry j (or flags j with
 * a hardware error), the client entries served only by entries before j
 * are done. The ones served by j are resubmitted one for one, in client
 * order, which tells exactly which of them fail and how - the same answer
 * a one-by-one submission of the request would have given, because
 * invalidations are idempotent and commute. If none of them fails again,
 * the failure was transient: the first of them is reported with j's errno
 * and hw_error all the same (never masked as done), though the retry did
 * flush every page. The ones served only after j
 * are coalesced again and submitted. After INV_BATCH_MAX_REPLANS failing
 * rounds the rest goes out one for one, so a backend that fails every
 * entry costs O(n) planning and O(n) entries submitted (a call is charged
 * for the entries the backend walked, up to the one it stopped at).
 *
 * A backend hardware error on an entry that the backend otherwise walked
 * past (rc 0, hw_error[k] != 0: the v8 design) means the hardware did not
 * confirm it: the client entry is FAILED with -EIO and that hw_error.
 *
 * Requests without cont get the kernel's shape at the end: the leading
 * done run, the first failure, everything after it not attempted - even
 * entries that a coalesced submission did flush (over-reporting is safe;
 * DONE is only ever reported for something acknowledged).
 */
#include "inv/batch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backend/iommufd_uapi.h"
#include "util/common.h"

#define INV_BATCH_MAX_REPLANS 4

/* A gathered client entry. */
struct bitem {
	uint32_t req; /* ordinal in the request list */
	uint32_t idx; /* entry index in that request */
};

/* Per-request working state. */
struct breq {
	struct inv_request *req;
	uint32_t fail_idx; /* first entry the backend failed; UINT32_MAX: none */
	uint32_t subs;	   /* backend entries that served it */
	uint64_t pages;
	uint32_t nitems; /* its pending entries */
};

struct batch {
	struct inv_batch_ctx *ctx;
	struct backend *be;
	struct inv_batch_stats *stats;
	uint32_t hwpt_id;
	uint32_t data_type;
	uint32_t esz;
	uint32_t chunk;

	struct breq *reqs;
	struct bitem *items; /* m gathered entries, client order */
	uint8_t *ent;	     /* their (normalised) entries */
	uint8_t *tmp;	     /* m entries: coalescer input, one-for-one chunks */
	/*
	 * All the batch's pending entries were served by one clean coalesced
	 * round: they are DONE, which finish_request() writes in its pass
	 * over the results instead of a pass of its own through the items.
	 */
	bool all_done;
	bool failed;	/* some item failed: only then can items be dead */
	uint32_t *sel;	/* m: the items still to submit */
	uint32_t *aux;	/* m: the items served by a failing entry */
	uint32_t *hw;	/* hw_error of one backend call */
	uint32_t *mark; /* per plan entry: request last counted */
};

void inv_batch_ctx_init(struct inv_batch_ctx *ctx, const struct coalesce_params *p)
{
	memset(ctx, 0, sizeof(*ctx));
	if (p)
		ctx->params = *p;
	coalesce_plan_init(&ctx->plan);
}

void inv_batch_ctx_free(struct inv_batch_ctx *ctx)
{
	coalesce_plan_free(&ctx->plan);
	free(ctx->scratch);
	ctx->scratch = NULL;
	ctx->cap_scratch = 0;
	free(ctx->hw);
	ctx->hw = NULL;
	ctx->cap_hw = 0;
}

/*
 * Grows *buf to at least need bytes, doubling from 4 KiB; with zero, the
 * bytes added are zero (the hw_error array stays all zero between calls).
 */
static int grow(void **buf, size_t *cap, size_t need, bool zero)
{
	size_t ncap = *cap ? *cap : 4096;
	uint8_t *p;

	if (need <= *cap)
		return 0;
	while (ncap < need)
		ncap *= 2;
	p = realloc(*buf, ncap);
	if (!p)
		return -ENOMEM;
	if (zero)
		memset(p + *cap, 0, ncap - *cap);
	*buf = p;
	*cap = ncap;
	return 0;
}

/* Carves the working arrays for nr requests and m entries out of scratch. */
static int batch_layout(struct batch *b, uint32_t nr, uint32_t m)
{
	size_t n_plan = 2 * (size_t)m + 1;
	size_t n_hw = n_plan < b->chunk ? n_plan : b->chunk;
	size_t sz_reqs = nr * sizeof(struct breq);
	size_t sz_items = m * sizeof(struct bitem);
	size_t sz_ent = (size_t)m * b->esz;
	uint8_t *p;
	int rc;

	/* Each piece is a multiple of 8 bytes; the uint32 arrays go last. */
	rc = grow(&b->ctx->scratch, &b->ctx->cap_scratch,
		  sz_reqs + sz_items + 2 * sz_ent + (2 * (size_t)m + n_plan) * sizeof(uint32_t),
		  false);
	if (!rc)
		rc = grow((void **)&b->ctx->hw, &b->ctx->cap_hw, n_hw * sizeof(uint32_t), true);
	if (rc)
		return rc;
	p = b->ctx->scratch;
	b->reqs = (struct breq *)p;
	p += sz_reqs;
	b->items = (struct bitem *)p;
	p += sz_items;
	b->ent = p;
	p += sz_ent;
	b->tmp = p;
	p += sz_ent;
	b->sel = (uint32_t *)p;
	b->aux = b->sel + m;
	b->mark = b->aux + m;
	/* All zero between backend calls (submit, hw_clear). */
	b->hw = b->ctx->hw;
	return 0;
}

/* One entry's bytes; the VT-d size spelled out so the copy is a few moves, not a call. */
static inline void ent_copy(void *dst, const void *src, uint32_t esz)
{
	if (esz == sizeof(struct iommu_hwpt_vtd_s1_invalidate))
		memcpy(dst, src, sizeof(struct iommu_hwpt_vtd_s1_invalidate));
	else
		memcpy(dst, src, esz);
}

static struct inv_entry_result *item_res(struct batch *b, uint32_t it)
{
	const struct bitem *x = &b->items[it];

	return &b->reqs[x->req].req->res[x->idx];
}

/* An entry after a request's first failure, which the kernel never sees. */
static bool item_dead(struct batch *b, uint32_t it)
{
	const struct bitem *x = &b->items[it];
	const struct breq *r = &b->reqs[x->req];

	return !r->req->cont && r->fail_idx < x->idx;
}

static void item_done(struct batch *b, uint32_t it)
{
	item_res(b, it)->state = INV_DONE;
}

static void item_fail(struct batch *b, uint32_t it, int err, uint32_t hw)
{
	struct inv_entry_result *res = item_res(b, it);
	struct breq *r = &b->reqs[b->items[it].req];

	b->failed = true;
	res->state = INV_FAILED;
	res->error = err;
	res->hw_error = hw;
	if (b->items[it].idx < r->fail_idx)
		r->fail_idx = b->items[it].idx;
}

static uint64_t entry_pages(const struct batch *b, const uint8_t *e)
{
	struct iommu_hwpt_vtd_s1_invalidate v;

	if (b->data_type != IOMMU_HWPT_INVALIDATE_DATA_VTD_S1)
		return 0; /* no page model for the mock */
	memcpy(&v, e, sizeof(v));
	return vtd_block_pages(v.addr, v.npages, b->ctx->params.vtd_max_mask);
}

/*
 * Adds the modelled pages of cnt submitted entries to the counters, summed
 * in registers first (saturating sums of non-negative numbers may be taken
 * in any grouping).
 */
static void count_flushed(const struct batch *b, const uint8_t *entries, const uint64_t *pages,
			  uint32_t cnt)
{
	struct inv_batch_stats *st = b->stats;
	uint64_t all = 0, ranged = 0;
	uint32_t alls = 0;

	for (uint32_t k = 0; k < cnt; k++) {
		uint64_t pg = pages ? pages[k] : entry_pages(b, entries + (size_t)k * b->esz);

		all = sat_add(all, pg);
		if (pg == VTD_PAGES_ALL)
			alls++;
		else
			ranged = sat_add(ranged, pg);
	}
	st->pages_flushed = sat_add(st->pages_flushed, all);
	st->flush_alls += alls;
	st->ranged_pages = sat_add(st->ranged_pages, ranged);
}

/*
 * One backend call over cnt entries. Returns h, the number of entries the
 * backend walked past (some may carry a hardware error in b->hw), with
 * *err its errno for entry h (0 when it walked past all cnt); *seen gets
 * the number of entries the call accounts for: the h walked past and the
 * one it stopped at. Work and counters are O(*seen), not O(cnt): after a
 * failure the caller resubmits the rest, so charging cnt would make a
 * backend that fails every entry cost O(n^2).
 *
 * b->hw is all zero before the call; the backend writes only entries it
 * walked (up to the one it stopped at), and this clears what it may have
 * written once the caller has read it (hw_clear), so no call pays for the
 * whole array.
 */
static uint32_t submit(struct batch *b, const uint8_t *entries, const uint64_t *pages, uint32_t cnt,
		       int *err, uint32_t *seen)
{
	struct backend_inv inv = {
	    .hwpt_id = b->hwpt_id,
	    .data_type = b->data_type,
	    .entry_len = b->esz,
	    .entry_num = cnt,
	    .entries = entries,
	    .hw_error = b->hw,
	};
	uint32_t h;
	int rc;

	rc = b->be->ops->invalidate(b->be, &inv);

	/* Hold the backend to the ioctl's contract; doubt means failure. */
	h = inv.entry_num < cnt ? inv.entry_num : cnt;
	if (rc > 0)
		rc = -EIO;
	if (!rc && h < cnt)
		rc = -EIO;
	if (rc && h == cnt)
		h = cnt - 1;

	*err = rc;
	*seen = rc ? h + 1 : cnt;
	b->stats->submissions++;
	b->stats->entries_submitted += *seen;
	count_flushed(b, entries, pages, *seen);
	return h;
}

/* Clears what a call that accounted for seen entries may have left in b->hw. */
static void hw_clear(struct batch *b, uint32_t seen)
{
	memset(b->hw, 0, (size_t)seen * sizeof(*b->hw));
}

/*
 * The first entry of a call that did not succeed cleanly (cnt when all
 * did), with the errno and hw_error it gets: a hardware error on an entry
 * the backend walked past is -EIO with that hw_error.
 */
static uint32_t first_bad(const struct batch *b, uint32_t h, uint32_t cnt, int rc, int *err,
			  uint32_t *hw)
{
	for (uint32_t k = 0; k < h; k++) {
		if (b->hw[k]) {
			*err = -EIO;
			*hw = b->hw[k];
			return k;
		}
	}
	*err = rc;
	*hw = rc ? b->hw[h] : 0;
	return rc ? h : cnt;
}

/*
 * Submits the items of list one for one, in order, skipping entries that
 * a failure made dead. Chunks are copied once; after a failure the walk
 * resumes inside the same chunk, after the entry the backend stopped at,
 * so the cost stays linear. Entries the backend walked past with a
 * hardware error fail (-EIO, that hw_error) without a resubmission: the
 * one-by-one answer, as the backend walked them one by one.
 */
static void walk(struct batch *b, uint32_t *list, uint32_t nl)
{
	uint32_t c = 0, w = 0;

	while (c < nl) {
		uint32_t cs = w, cnt = 0, off = 0;

		while (c < nl && cnt < b->chunk) {
			uint32_t it = list[c++];

			if (item_dead(b, it))
				continue;
			list[w++] = it;
			ent_copy(b->tmp + (size_t)cnt * b->esz, b->ent + (size_t)it * b->esz,
				 b->esz);
			cnt++;
		}
		while (off < cnt) {
			uint32_t h, seen, k;
			int err;

			h = submit(b, b->tmp + (size_t)off * b->esz, NULL, cnt - off, &err, &seen);
			for (k = 0; k < seen; k++) {
				uint32_t it = list[cs + off + k];
				struct breq *r = &b->reqs[b->items[it].req];

				r->subs++;
				r->pages =
				    sat_add(r->pages, entry_pages(b, b->ent + (size_t)it * b->esz));
				if (k == h)
					item_fail(b, it, err, b->hw[k]);
				else if (b->hw[k])
					item_fail(b, it, -EIO, b->hw[k]);
				else
					item_done(b, it);
			}
			hw_clear(b, seen);
			if (!err)
				break;
			off += seen;
			/* A request without cont stops here: skip its tail. */
			while (off < cnt && item_dead(b, list[cs + off]))
				off++;
		}
	}
}

/* Counts, per request, the processed plan entries that served it. */
static void account_plan(struct batch *b, const uint32_t *sel, uint32_t ns, uint32_t proc_end)
{
	const struct coalesce_plan *plan = &b->ctx->plan;
	const uint32_t *first = plan->first, *last = plan->last;
	const uint64_t *pages = plan->pages;
	uint32_t *restrict mark = b->mark;
	uint32_t p = 0;

	/*
	 * One request (sel is in request order: its ends tell): the plan was
	 * built from its entries alone, so every processed plan entry served
	 * it, and no marks are needed to tell which.
	 */
	if (ns && b->items[sel[0]].req == b->items[sel[ns - 1]].req) {
		struct breq *r = &b->reqs[b->items[sel[0]].req];
		uint64_t sum = 0;

		for (uint32_t k = 0; k < proc_end; k++)
			sum = sat_add(sum, pages[k]);
		r->subs += proc_end;
		r->pages = sat_add(r->pages, sum);
		return;
	}
	for (uint32_t k = 0; k < proc_end; k++)
		mark[k] = UINT32_MAX;
	/*
	 * sel is grouped by request, so one marker per entry suffices; each
	 * request's run is summed in registers and stored once.
	 */
	while (p < ns) {
		uint32_t rq = b->items[sel[p]].req, subs = 0;
		uint64_t sum = 0;

		for (; p < ns && b->items[sel[p]].req == rq; p++) {
			/* proc_end > 0: a round submits before it accounts. */
			uint32_t l = last[p] < proc_end ? last[p] : proc_end - 1;

			for (uint32_t k = first[p]; k <= l; k++) {
				if (mark[k] == rq)
					continue;
				mark[k] = rq;
				subs++;
				sum = sat_add(sum, pages[k]);
			}
		}
		b->reqs[rq].subs += subs;
		b->reqs[rq].pages = sat_add(b->reqs[rq].pages, sum);
	}
}

/*
 * Plans the ns entries at in. Every plan gets its per-entry modelled pages
 * (plan->pages), which only the VT-d coalescer models; the others get 0.
 */
static int coalesce(struct batch *b, const uint8_t *in, uint32_t ns)
{
	struct inv_batch_ctx *ctx = b->ctx;
	int rc;

	if (b->data_type == IOMMU_HWPT_INVALIDATE_DATA_VTD_S1)
		return coalesce_vtd(in, ns, &ctx->params, &ctx->plan);
	rc = coalesce_selftest(in, ns, &ctx->params, &ctx->plan);
	if (!rc)
		memset(ctx->plan.pages, 0, (size_t)ctx->plan.n_sub * sizeof(*ctx->plan.pages));
	return rc;
}

/*
 * Whether the plan is one domain-wide flush although none of the ns
 * coalescer inputs at in asked for one: the coalescer escalated (too many
 * pages or an unbounded range). Only scanned when the plan is a flush-all.
 */
static bool plan_escalated(const struct batch *b, const uint8_t *in, uint32_t ns)
{
	const struct coalesce_plan *plan = &b->ctx->plan;

	if (b->data_type != IOMMU_HWPT_INVALIDATE_DATA_VTD_S1 || plan->n_sub != 1 ||
	    plan->pages[0] != VTD_PAGES_ALL)
		return false;
	for (uint32_t p = 0; p < ns; p++)
		if (entry_pages(b, in + (size_t)p * b->esz) == VTD_PAGES_ALL)
			return false;
	return true;
}

/*
 * One coalesced round over sel. Returns the number of items left for the
 * next round (compacted at the front of sel), or a negative errno if the
 * plan could not be built (nothing was submitted then). With all, sel is
 * every item in order (the first round, before any failure): the
 * coalescer reads the gathered entries as they are, without a copy.
 */
static int planned_round(struct batch *b, uint32_t ns, bool all)
{
	const struct coalesce_plan *plan = &b->ctx->plan;
	uint32_t j, base, cnt, hw = 0, proc_end = 0, na = 0, nn = 0;
	uint32_t *sel = b->sel;
	const uint8_t *in = b->ent;
	int rc, err = 0;

	if (!all) {
		for (uint32_t p = 0; p < ns; p++)
			ent_copy(b->tmp + (size_t)p * b->esz, b->ent + (size_t)sel[p] * b->esz,
				 b->esz);
		in = b->tmp;
	}
	rc = coalesce(b, in, ns);
	if (rc)
		return rc;
	/* An empty plan would make everything "done" unsubmitted. */
	if (!plan->n_sub)
		return -EINVAL;
	b->stats->escalations += plan_escalated(b, in, ns);

	j = plan->n_sub;
	for (base = 0; base < plan->n_sub; base += cnt) {
		uint32_t f, h, seen;

		cnt = plan->n_sub - base < b->chunk ? plan->n_sub - base : b->chunk;
		h = submit(b, (uint8_t *)plan->sub + (size_t)base * b->esz, plan->pages + base, cnt,
			   &err, &seen);
		f = first_bad(b, h, cnt, err, &err, &hw);
		hw_clear(b, seen);
		proc_end = base + seen;
		if (f < cnt) {
			j = base + f;
			break;
		}
	}
	account_plan(b, sel, ns, proc_end);

	if (all && j == plan->n_sub) {
		b->all_done = true;
		return 0;
	}
	for (uint32_t p = 0; p < ns; p++) {
		if (plan->last[p] < j)
			item_done(b, sel[p]);
		else if (plan->first[p] <= j)
			b->aux[na++] = sel[p];
		else
			sel[nn++] = sel[p];
	}
	if (!na)
		return (int)nn;
	walk(b, b->aux, na);
	/*
	 * Submitted entry j failed but its client entries, resubmitted one
	 * by one, all went through. Either j failed on a page that only the
	 * coalescer added (none of theirs: one by one, none would fail), or
	 * the failure was transient (or a hardware error did not recur).
	 * Submitting j once more tells which. If it passes now, the failure
	 * was transient and the answer must not hide it: a one-by-one
	 * submission would have met it on the first of them, in client
	 * order, so that entry gets j's errno and hw_error. The retry has
	 * flushed every page all the same.
	 */
	for (uint32_t p = 0; p < na; p++)
		if (item_res(b, b->aux[p])->state == INV_FAILED)
			return (int)nn;
	if (j < plan->n_sub) {
		uint32_t again, h, seen, hw2;
		int err2;

		h = submit(b, (uint8_t *)plan->sub + (size_t)j * b->esz, plan->pages + j, 1, &err2,
			   &seen);
		again = first_bad(b, h, 1, err2, &err2, &hw2);
		hw_clear(b, seen);
		if (again == 1)
			item_fail(b, b->aux[0], err, hw);
	}
	return (int)nn;
}

static uint32_t drop_dead(struct batch *b, uint32_t ns)
{
	uint32_t w = 0;

	for (uint32_t p = 0; p < ns; p++)
		if (!item_dead(b, b->sel[p]))
			b->sel[w++] = b->sel[p];
	return w;
}

static void run(struct batch *b, uint32_t m)
{
	uint32_t ns = m;
	int round = 0;

	for (uint32_t p = 0; p < m; p++)
		b->sel[p] = p;
	/* Nothing is dead before the first failure: the pass is skipped until then. */
	while ((ns = b->failed ? drop_dead(b, ns) : ns)) {
		if (b->ctx->params.enabled && round < INV_BATCH_MAX_REPLANS) {
			int left = planned_round(b, ns, !round && ns == m);

			/* No memory for a plan: one for one needs none. */
			if (left >= 0) {
				ns = (uint32_t)left;
				round++;
				continue;
			}
		}
		walk(b, b->sel, ns);
		break;
	}
}

/*
 * Kernel-shaped outcome of one request from its per-entry states; with
 * all_done, what is still pending was served by a clean round (DONE).
 */
static void finish_request(struct inv_request *req, const struct breq *r, bool all_done)
{
	bool failed = false;

	req->status = 0;
	req->entries_handled = 0;
	/*
	 * Every entry was pending and a clean round served them all. Their
	 * error and hw_error are 0 already: validation zeroed them when it
	 * marked them pending, and only a failure (item_fail) writes them.
	 */
	if (all_done && r && r->nitems == req->n) {
		for (uint32_t i = 0; i < req->n; i++)
			req->res[i].state = INV_DONE;
		req->entries_handled = req->n;
		req->entries_submitted = r->subs;
		req->pages_flushed = r->pages;
		return;
	}
	for (uint32_t i = 0; i < req->n; i++) {
		struct inv_entry_result *res = &req->res[i];

		if (all_done && res->state == INV_PENDING)
			res->state = INV_DONE;
		if (res->state == INV_PENDING || (failed && !req->cont)) {
			res->state = INV_NOT_ATTEMPTED;
			res->error = 0;
			res->hw_error = 0;
		}
		if (res->state == INV_FAILED && !failed) {
			failed = true;
			req->status = res->error;
		}
		if (!failed && res->state == INV_DONE && req->entries_handled == i)
			req->entries_handled = i + 1;
	}
	req->entries_submitted = r ? r->subs : 0;
	req->pages_flushed = r ? r->pages : 0;
}

/* The batch cannot run: nothing pending is attempted, status says why. */
static int fail_batch(struct inv_request *reqs, int err)
{
	for (struct inv_request *q = reqs; q; q = q->next) {
		bool pending = false;

		for (uint32_t i = 0; i < q->n; i++)
			pending |= q->res[i].state == INV_PENDING;
		finish_request(q, NULL, false);
		if (pending)
			q->status = err;
	}
	return err;
}

static uint32_t count_pending(const struct inv_request *q)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < q->n; i++)
		n += q->res[i].state == INV_PENDING;
	return n;
}

/* Copies every pending entry into the batch arrays, in client order; returns how many. */
static uint32_t gather(struct batch *b, struct inv_request *reqs)
{
	bool vtd = b->data_type == IOMMU_HWPT_INVALIDATE_DATA_VTD_S1;
	uint32_t r = 0, m = 0;

	for (struct inv_request *q = reqs; q; q = q->next, r++) {
		const uint8_t *src = q->entries;
		uint32_t m0 = m;

		b->reqs[r] = (struct breq){.req = q, .fail_idx = UINT32_MAX};
		for (uint32_t i = 0; i < q->n; i++) {
			uint8_t *dst = b->ent + (size_t)m * b->esz;

			if (q->res[i].state != INV_PENDING)
				continue;
			b->items[m] = (struct bitem){.req = r, .idx = i};
			if (vtd) {
				const uint8_t *e = src + (size_t)i * b->esz;
				uint64_t addr = vtd_word(e, 0), npages = vtd_word(e, 1);

				/*
				 * Never let addr + npages wrap into a smaller
				 * flush; normalised on the way, in registers.
				 */
				vtd_normalize_range(&addr, &npages);
				vtd_put_word(dst, 0, addr);
				vtd_put_word(dst, 1, npages);
				vtd_put_word(dst, 2, vtd_word(e, 2));
			} else {
				ent_copy(dst, src + (size_t)i * b->esz, b->esz);
			}
			m++;
		}
		b->reqs[r].nitems = m - m0;
	}
	return m;
}

int inv_batch_run(struct inv_batch_ctx *ctx, struct backend *be, struct inv_request *reqs,
		  struct inv_batch_stats *stats)
{
	struct inv_batch_stats dummy = {0};
	struct batch b = {
	    .ctx = ctx,
	    .be = be,
	    .stats = stats ? stats : &dummy,
	};
	uint32_t nr = 0, r = 0;
	uint64_t room = 0;
	uint32_t m;
	int rc;

	if (!reqs)
		return 0;
	b.hwpt_id = reqs->hwpt_id;
	b.data_type = reqs->data_type;
	b.esz = inv_entry_size(b.data_type);
	b.chunk = ctx->max_chunk && ctx->max_chunk < IOMMU_HWPT_INVALIDATE_ENTRY_NUM_MAX
		      ? ctx->max_chunk
		      : IOMMU_HWPT_INVALIDATE_ENTRY_NUM_MAX;
	/*
	 * Room for every entry, pending or not: sizing by the pending ones
	 * would cost a pass of its own, and gather() counts them anyway.
	 */
	for (struct inv_request *q = reqs; q; q = q->next) {
		/* One HWPT, one type per batch: anything else is a caller bug. */
		if (q->hwpt_id != b.hwpt_id || q->data_type != b.data_type ||
		    (!b.esz && count_pending(q)))
			return fail_batch(reqs, -EINVAL);
		room += q->n;
		if (room > UINT32_MAX / 4)
			return fail_batch(reqs, -E2BIG);
		nr++;
	}
	rc = batch_layout(&b, nr, (uint32_t)room);
	if (rc)
		return fail_batch(reqs, rc);
	m = gather(&b, reqs);
	if (m)
		run(&b, m);
	for (struct inv_request *q = reqs; q; q = q->next, r++)
		finish_request(q, &b.reqs[r], b.all_done);
	return 0;
}
