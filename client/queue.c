/* SPDX-License-Identifier: MIT */
/* The shared-memory queue, the library's side (see queue.h). */
#include "queue.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

_Static_assert(NESTQ_SQE_CONTINUE == IOMMU_NEST_INV_CONTINUE, "one flag, two names");

/* Bytes per entry in the area: the largest native entry (VT-d) and its result. */
#define ENTRY_BYTES  sizeof(struct iommu_nest_vtd_inv)
#define RESULT_BYTES sizeof(struct nestq_result)

static struct nestq_header *hdr(const struct nestq_client *q)
{
	return (struct nestq_header *)q->base;
}

static int make_area(struct nestq_client *q)
{
	q->memfd = memfd_create("iommu-nest-queue", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (q->memfd < 0)
		return -errno;
	/* The daemon maps it too: it must never shrink under either of us. */
	if (ftruncate(q->memfd, (off_t)q->l.total) ||
	    fcntl(q->memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_SEAL))
		return -errno;
	q->base = mmap(NULL, q->l.total, PROT_READ | PROT_WRITE, MAP_SHARED, q->memfd, 0);
	if (q->base == MAP_FAILED) {
		q->base = NULL;
		return -errno;
	}
	hdr(q)->magic = NESTQ_MAGIC;
	hdr(q)->version = NESTQ_VERSION;
	return 0;
}

int nestq_client_create(struct nestq_client *q, uint32_t entries, size_t max_entries,
			uint32_t spin_us)
{
	uint64_t data;
	int err;

	memset(q, 0, sizeof(*q));
	q->memfd = q->kick_fd = q->call_fd = -1;
	q->spin_us = spin_us;
	q->max_entries = max_entries;
	data = (uint64_t)max_entries * (ENTRY_BYTES + RESULT_BYTES);
	if (!nestq_layout(&q->l, entries, entries, data))
		return -EINVAL;
	q->rec = calloc(entries, sizeof(*q->rec));
	err = q->rec ? make_area(q) : -ENOMEM;
	if (!err) {
		q->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		q->call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (q->kick_fd < 0 || q->call_fd < 0)
			err = -errno;
	}
	if (err)
		nestq_client_destroy(q);
	return err;
}

void nestq_client_destroy(struct nestq_client *q)
{
	if (q->base)
		munmap(q->base, q->l.total);
	if (q->memfd >= 0)
		close(q->memfd);
	if (q->kick_fd >= 0)
		close(q->kick_fd);
	if (q->call_fd >= 0)
		close(q->call_fd);
	free(q->rec);
	memset(q, 0, sizeof(*q));
	q->memfd = q->kick_fd = q->call_fd = -1;
}

int nestq_client_fits(const struct nestq_client *q, const struct iommu_nest_inv_raw *r,
		      size_t daemon_max_entries)
{
	/* Over the daemon's limit: the socket answers -E2BIG with the limit. */
	if (r->n > q->max_entries || r->n > daemon_max_entries)
		return 0;
	/*
	 * Flags the queue does not know take the socket, which answers them
	 * -EOPNOTSUPP: in the slot they could be read as the queue's own
	 * (NESTQ_SQE_INLINE).
	 */
	if (r->flags & ~(uint32_t)IOMMU_NEST_INV_CONTINUE)
		return 0;
	if (!r->n)
		return 1;
	return r->entries &&
	       (r->layout == IOMMU_NEST_LAYOUT_VTD || r->layout == IOMMU_NEST_LAYOUT_SELFTEST);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void kick(const struct nestq_client *q)
{
	static const uint64_t one = 1;

	if (write(q->kick_fd, &one, sizeof(one)) < 0) {
		/* Full counter: the daemon has a kick pending anyway. */
	}
}

static size_t entry_size(const struct iommu_nest_inv_raw *r)
{
	return r->layout == IOMMU_NEST_LAYOUT_VTD ? sizeof(struct iommu_nest_vtd_inv)
						  : sizeof(struct iommu_nest_selftest_inv);
}

/*
 * len bytes of the entry-area ring, 8-aligned, never wrapping inside a
 * request (the tail skips to the start instead). false when full.
 */
static bool data_alloc(struct nestq_client *q, uint64_t len, uint32_t *off)
{
	uint64_t size = q->l.data_bytes, at, tail = q->data_tail;

	len = (len + 7) & ~(uint64_t)7;
	if (!size) {
		*off = 0;
		return !len;
	}
	at = q->data_tail % size;
	if (at + len > size) {
		tail += size - at;
		at = 0;
	}
	if (tail + len - q->data_head > size)
		return false;
	*off = (uint32_t)at;
	q->data_tail = tail + len;
	return true;
}

/* The client's flag: a call is wanted while async requests wait or a caller sleeps. */
static void want_call(struct nestq_client *q, bool on)
{
	_Atomic uint32_t *f = &hdr(q)->cq_flags;

	if (on)
		atomic_fetch_or_explicit(f, NESTQ_CQ_NEED_CALL, memory_order_seq_cst);
	else
		atomic_fetch_and_explicit(f, ~NESTQ_CQ_NEED_CALL, memory_order_relaxed);
}

int nestq_client_submit(struct nestq_client *q, const struct iommu_nest_inv_raw *r,
			uint64_t user_data, bool async)
{
	size_t esz = entry_size(r);
	/* One entry travels in the slot, its result in the completion: no entry-area lines. */
	bool inl = r->n == 1 && esz <= NESTQ_INLINE_BYTES;
	uint64_t mark = q->data_tail;
	struct nestq_rec *rec;
	struct nestq_sqe sqe, *slot;
	uint32_t off = 0;

	if (nestq_client_in_flight(q) >= q->l.sq_entries ||
	    (!inl && !data_alloc(q, (uint64_t)r->n * (esz + RESULT_BYTES), &off))) {
		q->data_tail = mark;
		return -EAGAIN;
	}
	rec = &q->rec[q->sq_tail & (q->l.sq_entries - 1)];
	*rec = (struct nestq_rec){.user_data = user_data,
				  .end = q->data_tail,
				  .result_off =
				      inl ? 0 : off + (uint32_t)(((r->n * esz) + 7) & ~(size_t)7),
				  .n = (uint32_t)r->n,
				  .async = async,
				  .inl = inl};
	sqe = (struct nestq_sqe){
	    .user_data = user_data,
	    .hwpt_id = r->hwpt_id,
	    .data_type = r->data_type,
	    /* nestq_client_fits() let only INV_CONTINUE through, the same bit. */
	    .flags = r->flags | (inl ? NESTQ_SQE_INLINE : 0),
	    .reserved = r->reserved,
	    .entry_len = r->entry_len,
	    .n = (uint32_t)r->n,
	    .entry_off = off,
	    .result_off = rec->result_off};
	if (inl)
		memcpy(sqe.inline_entry, r->entries, esz);
	else if (r->n)
		memcpy(q->base + q->l.data_off + off, r->entries, r->n * esz);
	/* Before the publish: the daemon's completion follows its read of our tail. */
	if (async && !q->n_async++)
		want_call(q, true);
	slot = (struct nestq_sqe *)(q->base + q->l.sq_off) + (q->sq_tail & (q->l.sq_entries - 1));
	/* Built aside and stored whole: the slot's line is written once. */
	*slot = sqe;
	atomic_store_explicit(&hdr(q)->sq_tail, ++q->sq_tail, memory_order_release);
	/* Pairs with the daemon's flag update: either it sees the tail or we see the flag. */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&hdr(q)->sq_flags, memory_order_relaxed) & NESTQ_SQ_NEED_KICK)
		kick(q);
	return 0;
}

static const struct nestq_cqe *cqe_at(const struct nestq_client *q, uint32_t i)
{
	return (const struct nestq_cqe *)(q->base + q->l.cq_off) + (i & (q->l.cq_entries - 1));
}

/* The next completion is there: its own seq says so (see nestq_cqe.seq), one line to look at. */
static int completed(const struct nestq_client *q)
{
	return atomic_load_explicit(&cqe_at(q, q->cq_head)->seq, memory_order_acquire) ==
	       q->cq_head + 1;
}

static int broken(const struct nestq_client *q)
{
	return atomic_load_explicit(&hdr(q)->sq_flags, memory_order_acquire) & NESTQ_SQ_BROKEN;
}

void nestq_client_drain_call(const struct nestq_client *q)
{
	uint64_t n;

	if (read(q->call_fd, &n, sizeof(n)) < 0) {
		/* EAGAIN: nothing signalled since the last look. */
	}
}

/* Sleeps until a completion is there: NEED_CALL, then look again, then poll. */
static int sleep_for_completion(struct nestq_client *q, int sock)
{
	struct pollfd p[2] = {{.fd = q->call_fd, .events = POLLIN},
			      {.fd = sock, .events = POLLRDHUP}};
	int err = 0;

	want_call(q, true);
	/*
	 * The flag before the look at the completion: the daemon fences
	 * between its publish (seq, then cq_tail) and its look at the flag.
	 */
	atomic_thread_fence(memory_order_seq_cst);
	while (!completed(q) && !broken(q)) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			break;
		}
		if (p[1].revents & (POLLRDHUP | POLLHUP | POLLERR)) {
			err = -ECONNRESET;
			break;
		}
		if (p[0].revents & POLLIN)
			nestq_client_drain_call(q);
	}
	if (!q->n_async)
		want_call(q, false);
	return err;
}

/*
 * A pause between looks at the ring: the core's other hardware thread may
 * be the daemon's CPU, and a bare spin would take its issue slots.
 */
static inline void cpu_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/*
 * How often a long spin offers its CPU to a neighbour. Clients often share
 * a CPU (more VMM threads than CPUs); one spinning until its time runs out
 * would keep another client from reading the completion that is already
 * there, and that neighbour's p99 would be our whole spin. sched_yield()
 * returns at once when nothing else wants the CPU.
 */
#define SPIN_YIELD_NS 20000u

/*
 * Looks at the ring for up to spin_us: true once a completion (or a
 * closing) is there. With 0, one look: no spin at all.
 */
static bool spin_for(const struct nestq_client *q, uint32_t spin_us)
{
	uint64_t until = 0, next_yield = 0, now;

	for (unsigned spins = 0;; spins++) {
		if (completed(q) || broken(q))
			return true;
		if (!spin_us)
			return false;
		cpu_pause();
		/*
		 * The clock only every few spins: a look at the line is what a
		 * spin costs. Not on the first either: a polled completion comes
		 * within a few, and a clock read meanwhile would only delay
		 * seeing it (the spin runs 64 pauses past spin_us instead).
		 */
		if (spins % 64 || !spins)
			continue;
		now = now_ns();
		if (!until) {
			until = now + (uint64_t)spin_us * 1000u;
			next_yield = now + SPIN_YIELD_NS;
		} else if (now >= until) {
			return false;
		} else if (now >= next_yield) {
			sched_yield();
			next_yield = now + SPIN_YIELD_NS;
		}
	}
}

/*
 * spin_for(), without asking for calls meanwhile. With async requests in
 * flight NEED_CALL is set, for a VMM loop that may sleep on the call
 * eventfd; a client that is looking at the ring needs no signal, and each
 * one would cost the daemon a write(2) (with a wake-up IPI) per batch it
 * answers. The flag is back before we return, and then the ring is looked
 * at once more: a completion published while it was clear was not
 * signalled, so it must be seen here (the daemon fences between its
 * publish and its look at the flag, we between the flag and this look).
 */
bool nestq_client_spin(struct nestq_client *q, uint32_t spin_us)
{
	bool seen;

	if (!q->n_async)
		return spin_for(q, spin_us); /* the flag is clear already */
	want_call(q, false);
	seen = spin_for(q, spin_us);
	want_call(q, true);
	atomic_thread_fence(memory_order_seq_cst);
	return seen || completed(q) || broken(q);
}

int nestq_client_wait(struct nestq_client *q, int sock)
{
	while (!completed(q)) {
		if (broken(q))
			return -EPROTO;
		if (!nestq_client_spin(q, q->spin_us)) {
			int err = sleep_for_completion(q, sock);

			if (err)
				return err;
		}
	}
	return 0;
}

/* The completion is the daemon's word, but checked: n and the leading run of DONE. */
static int read_results(const struct nestq_client *q, const struct nestq_cqe *c,
			const struct nestq_rec *rec, struct iommu_nest_entry_result *res)
{
	const uint8_t *src =
	    rec->inl ? (const uint8_t *)&c->result : q->base + q->l.data_off + rec->result_off;
	uint32_t run = 0;

	if (c->n && c->n != rec->n)
		return -EPROTO;
	for (size_t i = 0; i < c->n; i++) {
		struct nestq_result one;

		memcpy(&one, src + i * sizeof(one), sizeof(one));
		if (one.state > IOMMU_NEST_ENTRY_FAILED || one.error > 0 || one.error < -4095)
			return -EPROTO;
		if (run == i && one.state == IOMMU_NEST_ENTRY_DONE)
			run++;
		if (res)
			res[i] = (struct iommu_nest_entry_result){
			    .state = one.state, .error = one.error, .hw_error = one.hw_error};
	}
	if (res && !c->n)
		memset(res, 0, rec->n * sizeof(*res));
	return c->entries_handled == run ? 0 : -EPROTO;
}

/* The submission a completion answers: one in flight, not answered yet. */
static struct nestq_rec *find_rec(struct nestq_client *q, uint64_t user_data)
{
	for (uint32_t i = q->rec_head; i != q->sq_tail; i++) {
		struct nestq_rec *rec = &q->rec[i & (q->l.sq_entries - 1)];

		if (!rec->done && rec->user_data == user_data)
			return rec;
	}
	return NULL;
}

/* Frees the leading run of answered submissions: their slots and entry ranges. */
static void free_done(struct nestq_client *q)
{
	while (q->rec_head != q->sq_tail) {
		struct nestq_rec *rec = &q->rec[q->rec_head & (q->l.sq_entries - 1)];

		if (!rec->done)
			break;
		q->data_head = rec->end;
		q->rec_head++;
	}
}

int nestq_client_reap(struct nestq_client *q, nestq_results_fn results_of, void *opaque,
		      uint64_t *user_data, struct iommu_nest_inv_summary *sum)
{
	const struct nestq_cqe *slot;
	struct nestq_rec *rec;
	struct nestq_cqe c;
	/* Whether the daemon can be stalled for completion slots at all (see below). */
	bool ring_full = nestq_client_in_flight(q) >= q->l.cq_entries;

	if (!completed(q))
		return broken(q) ? -EPROTO : 0;
	/* A completion with no submission in flight: a daemon that lost count. */
	if (!nestq_client_in_flight(q))
		return -EPROTO;
	slot = cqe_at(q, q->cq_head);
	memcpy(&c, slot, sizeof(c));
	atomic_store_explicit(&hdr(q)->cq_head, ++q->cq_head, memory_order_release);
	rec = find_rec(q, c.user_data);
	if (!rec || c.status > 0 || c.status < -4095 ||
	    read_results(q, &c, rec, results_of(opaque, c.user_data)))
		return -EPROTO;
	*user_data = c.user_data;
	*sum = (struct iommu_nest_inv_summary){.status = c.status,
					       .entries_handled = c.entries_handled,
					       .entries_submitted = c.entries_submitted,
					       .pages_flushed = c.pages_flushed};
	rec->done = true;
	if (rec->async && !--q->n_async)
		want_call(q, false);
	free_done(q);
	/*
	 * A daemon stalled for completion slots waits for this freed one to be
	 * announced; the fence pairs with its own between setting STALLED and
	 * its last look. It can only be so stalled when every completion slot
	 * is spoken for by a submission of ours: the completions not read yet,
	 * those in flight and the one it wants to take, all counted in our
	 * in-flight records, which never exceed the ring (sq_entries ==
	 * cq_entries). Below that, the fence is not paid on every round trip.
	 * (A stall for max_inflight resumes on the daemon's side.)
	 */
	if (!ring_full)
		return 1;
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&hdr(q)->sq_flags, memory_order_relaxed) & NESTQ_SQ_STALLED)
		kick(q);
	return 1;
}
