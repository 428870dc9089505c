/* SPDX-License-Identifier: MIT */
/* The shared-memory queue, the library's side (see queue.h). */
#include "queue.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
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
	err = make_area(q);
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
	memset(q, 0, sizeof(*q));
	q->memfd = q->kick_fd = q->call_fd = -1;
}

int nestq_client_fits(const struct nestq_client *q, const struct iommu_nest_inv_raw *r,
		      size_t daemon_max_entries)
{
	/* Over the daemon's limit: the socket answers -E2BIG with the limit. */
	if (r->n > q->max_entries || r->n > daemon_max_entries)
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

/* Publishes one submission; kicks when the daemon is not polling. */
static void submit(struct nestq_client *q, const struct nestq_sqe *sqe)
{
	struct nestq_sqe *slot =
	    (struct nestq_sqe *)(q->base + q->l.sq_off) + (q->sq_tail & (q->l.sq_entries - 1));

	memcpy(slot, sqe, sizeof(*sqe));
	atomic_store_explicit(&hdr(q)->sq_tail, ++q->sq_tail, memory_order_release);
	/* Pairs with the daemon's flag update: either it sees the tail or we see the flag. */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&hdr(q)->sq_flags, memory_order_relaxed) & NESTQ_SQ_NEED_KICK)
		kick(q);
}

static int completed(const struct nestq_client *q)
{
	return atomic_load_explicit(&hdr(q)->cq_tail, memory_order_acquire) != q->cq_head;
}

static int broken(const struct nestq_client *q)
{
	return atomic_load_explicit(&hdr(q)->sq_flags, memory_order_acquire) & NESTQ_SQ_BROKEN;
}

/* Sleeps until a completion is there: NEED_CALL, then look again, then poll. */
static int sleep_for_completion(struct nestq_client *q, int sock)
{
	struct pollfd p[2] = {{.fd = q->call_fd, .events = POLLIN},
			      {.fd = sock, .events = POLLRDHUP}};
	uint64_t n;
	int err = 0;

	atomic_fetch_or_explicit(&hdr(q)->cq_flags, NESTQ_CQ_NEED_CALL, memory_order_seq_cst);
	/* The flag before the look at cq_tail: the daemon fences between its publish and its look.
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
		if (p[0].revents & POLLIN && read(q->call_fd, &n, sizeof(n)) < 0 &&
		    errno != EAGAIN) {
			err = -errno;
			break;
		}
	}
	atomic_fetch_and_explicit(&hdr(q)->cq_flags, ~NESTQ_CQ_NEED_CALL, memory_order_relaxed);
	return err;
}

static int wait_completion(struct nestq_client *q, int sock)
{
	uint64_t until = now_ns() + (uint64_t)q->spin_us * 1000u;

	while (!completed(q)) {
		if (broken(q))
			return -EPROTO;
		if (now_ns() >= until) {
			int err = sleep_for_completion(q, sock);

			if (err)
				return err;
		}
	}
	return 0;
}

/* The completion is the daemon's word, but checked: n and the leading run of DONE. */
static int read_results(const struct nestq_client *q, const struct nestq_cqe *c, size_t n,
			const struct nestq_sqe *sqe, struct iommu_nest_entry_result *res)
{
	const uint8_t *src = q->base + q->l.data_off + sqe->result_off;
	uint32_t run = 0;

	if (c->n && c->n != n)
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
	return c->entries_handled == run ? 0 : -EPROTO;
}

int nestq_client_invalidate(struct nestq_client *q, int sock, const struct iommu_nest_inv_raw *r,
			    struct iommu_nest_entry_result *results,
			    struct iommu_nest_inv_summary *sum)
{
	size_t esz = r->layout == IOMMU_NEST_LAYOUT_VTD ? sizeof(struct iommu_nest_vtd_inv)
							: sizeof(struct iommu_nest_selftest_inv);
	struct nestq_sqe sqe = {.user_data = ++q->next_user_data,
				.hwpt_id = r->hwpt_id,
				.data_type = r->data_type,
				/* The same bits; unknown ones get the socket's EOPNOTSUPP. */
				.flags = r->flags,
				.reserved = r->reserved,
				.entry_len = r->entry_len,
				.n = (uint32_t)r->n,
				.entry_off = 0,
				.result_off = (uint32_t)(q->max_entries * ENTRY_BYTES)};
	const struct nestq_cqe *slot;
	struct nestq_cqe c;
	int err;

	if (r->n)
		memcpy(q->base + q->l.data_off, r->entries, r->n * esz);
	for (size_t i = 0; results && i < r->n; i++)
		results[i] =
		    (struct iommu_nest_entry_result){.state = IOMMU_NEST_ENTRY_NOT_ATTEMPTED};
	submit(q, &sqe);
	err = wait_completion(q, sock);
	if (err)
		return err;
	slot = (const struct nestq_cqe *)(q->base + q->l.cq_off) +
	       (q->cq_head & (q->l.cq_entries - 1));
	memcpy(&c, slot, sizeof(c));
	atomic_store_explicit(&hdr(q)->cq_head, ++q->cq_head, memory_order_release);
	if (c.user_data != sqe.user_data || c.status > 0 || c.status < -4095)
		return -EPROTO;
	err = read_results(q, &c, r->n, &sqe, results);
	if (err)
		return err;
	*sum = (struct iommu_nest_inv_summary){.status = c.status,
					       .entries_handled = c.entries_handled,
					       .entries_submitted = c.entries_submitted,
					       .pages_flushed = c.pages_flushed};
	/* A stalled daemon waits for this freed slot to be announced. */
	if (atomic_load_explicit(&hdr(q)->sq_flags, memory_order_acquire) & NESTQ_SQ_STALLED)
		kick(q);
	return 0;
}
