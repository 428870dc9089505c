/* SPDX-License-Identifier: MIT */
/*
 * The shared-memory queue's floors and its idle cost (issue 17):
 *
 *  (c) two processes on two CPUs passing one cache line back and forth:
 *      what a polled shared-memory round trip can cost at all here;
 *  (d) two processes passing a token through two eventfds (blocking
 *      reads): what one sleep and wake-up each way costs;
 *  and the daemon's CPU with many idle queues after their poll window.
 *
 * Every round trip is timed the same way as the daemon rows (bench_now_ns
 * around it), so the ratios compare like with like.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define CACHELINE 64

struct spin_line {
	_Alignas(CACHELINE) _Atomic uint64_t ping;
	_Alignas(CACHELINE) _Atomic uint64_t pong; /* the answer: its own line, as the rings do */
	_Alignas(CACHELINE) _Atomic uint32_t stop;
};

static inline void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/* Measures until `seconds` after `warmup`: n round trips of rt(). */
static void measure(double warmup, double seconds, void (*rt)(void *, uint64_t), void *ctx,
		    struct run_result *out)
{
	uint64_t t_start = bench_now_ns(), warm = (uint64_t)(warmup * 1e9),
		 len = (uint64_t)(seconds * 1e9), seq = 0, begin = 0;

	memset(out, 0, sizeof(*out));
	for (;;) {
		uint64_t t0 = bench_now_ns(), t1;

		rt(ctx, ++seq);
		t1 = bench_now_ns();
		if (t0 - t_start < warm)
			continue;
		if (!begin)
			begin = t0;
		if (t1 - begin >= len)
			break;
		hist_add(&out->lat, t1 - t0);
		out->requests++;
		out->entries++;
	}
	out->seconds = (double)(bench_now_ns() - begin) / 1e9;
}

static void spin_rt(void *ctx, uint64_t seq)
{
	struct spin_line *l = ctx;

	atomic_store_explicit(&l->ping, seq, memory_order_release);
	while (atomic_load_explicit(&l->pong, memory_order_acquire) != seq)
		relax();
}

int floor_shm_spin(double seconds, double warmup, struct run_result *out)
{
	struct spin_line *l =
	    mmap(NULL, sizeof(*l), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pid_t pid;
	int st;

	if (l == MAP_FAILED)
		return -errno;
	memset(l, 0, sizeof(*l));
	pid = fork();
	if (pid < 0) {
		munmap(l, sizeof(*l));
		return -errno;
	}
	if (pid == 0) {
		uint64_t seen = 0;

		pin_server();
		while (!atomic_load_explicit(&l->stop, memory_order_relaxed)) {
			uint64_t v = atomic_load_explicit(&l->ping, memory_order_acquire);

			if (v != seen) {
				seen = v;
				atomic_store_explicit(&l->pong, v, memory_order_release);
			} else {
				relax();
			}
		}
		_exit(0);
	}
	pin_client(0);
	measure(warmup, seconds, spin_rt, l, out);
	atomic_store(&l->stop, 1);
	waitpid(pid, &st, 0);
	pin_none();
	munmap(l, sizeof(*l));
	return 0;
}

struct efd_pair {
	int to_peer, to_us;
};

static void efd_rt(void *ctx, uint64_t seq)
{
	const struct efd_pair *p = ctx;
	uint64_t v = 1;

	(void)seq;
	if (write(p->to_peer, &v, sizeof(v)) != sizeof(v) || read(p->to_us, &v, sizeof(v)) < 0) {
		/* A broken pair ends in the peer's exit; the figures show it. */
	}
}

int floor_eventfd(double seconds, double warmup, struct run_result *out)
{
	struct efd_pair p = {eventfd(0, EFD_CLOEXEC), eventfd(0, EFD_CLOEXEC)};
	pid_t pid;
	int st;

	if (p.to_peer < 0 || p.to_us < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		uint64_t v;

		pin_server();
		/* Until the parent kills it: a blocking read each way, as a sleeping daemon. */
		while (read(p.to_peer, &v, sizeof(v)) == sizeof(v))
			if (write(p.to_us, &v, sizeof(v)) != sizeof(v))
				break;
		_exit(0);
	}
	pin_client(0);
	measure(warmup, seconds, efd_rt, &p, out);
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	pin_none();
	close(p.to_peer);
	close(p.to_us);
	return 0;
}

/*
 * n clients each open a queue and send one invalidation through it (the
 * daemon starts polling them), then sit idle; after the poll window the
 * daemon's CPU over `seconds` should be nothing.
 */
int queue_idle_cpu(const char *socket, pid_t pid, uint32_t n, double seconds, double *cpu_s)
{
	struct iommu_nest **h = calloc(n, sizeof(*h));
	struct iommu_nest_vtd_inv e = {
	    .addr = 0x100000000ull, .npages = 1, .flags = IOMMU_NEST_VTD_INV_FLAGS_LEAF};
	struct iommu_nest_entry_result res;
	int rc = 0;
	double c0;

	if (!h)
		return -ENOMEM;
	for (uint32_t i = 0; i < n && !rc; i++) {
		uint32_t hwpt;

		rc = iommu_nest_connect(socket, "bench-idle-queue", &h[i]);
		if (!rc)
			rc = iommu_nest_alloc_vtd_s1(
			    h[i], "vf0", 0, 0x10000000ull + ((uint64_t)i << 12), 48, &hwpt);
		if (!rc)
			rc = iommu_nest_queue_open(h[i], 16, IOMMU_NEST_QUEUE_SPIN_US);
		if (!rc)
			rc = iommu_nest_invalidate(h[i], hwpt, IOMMU_NEST_INV_DATA_VTD_S1, &e, 1, 0,
						   &res, NULL);
	}
	if (!rc) {
		/* Well past the poll window (queue_poll_us is at most a second). */
		bench_sleep_ns(200000000);
		c0 = proc_cpu_seconds(pid);
		bench_sleep_ns((uint64_t)(seconds * 1e9));
		*cpu_s = proc_cpu_seconds(pid) - c0;
	}
	for (uint32_t i = 0; i < n; i++)
		iommu_nest_close(h[i]);
	free(h);
	return rc;
}
