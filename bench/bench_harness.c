/* SPDX-License-Identifier: MIT */
/*
 * Client processes: fork n, let them set up, start them together, open
 * and close a measured window, collect what they counted.
 *
 * Timeline (parent):  fork -> all ready -> go -> warmup -> mark 0, window
 * opens -> seconds -> window closes, mark 1 -> clients drain -> mark 2 ->
 * release -> reap. A client counts a completion only while the window is
 * open, so setup, warmup and drain never show in the figures.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

static bool g_ready_called;

/* For the watchdog: the clients of the run in progress. */
pid_t *volatile bench_children;
volatile uint32_t bench_n_children;

void harness_ready(struct shared *sh)
{
	char c;

	g_ready_called = true;
	__atomic_add_fetch(&sh->ready, 1, __ATOMIC_SEQ_CST);
	/* The parent closes the write end: EOF is the starting gun. */
	while (read(sh->go_fd, &c, 1) < 0 && errno == EINTR)
		;
}

static bool wait_count(const uint32_t *cnt, uint32_t n, int timeout_ms)
{
	for (int i = 0; i < timeout_ms * 10; i++) {
		if (__atomic_load_n(cnt, __ATOMIC_SEQ_CST) >= n)
			return true;
		bench_sleep_ns(100000);
	}
	return false;
}

int harness_run(uint32_t n, client_fn fn, void *arg, double warmup, double seconds,
		mark_fn mark, void *ctx, struct run_result *out)
{
	size_t size = sizeof(struct shared) + n * sizeof(struct client_slot);
	int go[2], rel[2], rc = 0;
	struct shared *sh;
	pid_t *pids;
	uint64_t t0, t1;
	uint32_t started = 0;

	memset(out, 0, sizeof(*out));
	sh = mmap(NULL, size + n * sizeof(pid_t), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return -errno;
	pids = (pid_t *)((char *)sh + size);
	if (pipe2(go, O_CLOEXEC) || pipe2(rel, O_CLOEXEC)) {
		munmap(sh, size);
		return -errno;
	}
	sh->go_fd = go[0];
	fflush(NULL);
	for (uint32_t i = 0; i < n; i++) {
		pid_t pid = fork();

		if (pid < 0) {
			rc = -errno;
			break;
		}
		if (pid == 0) {
			char c;

			close(go[1]);
			close(rel[1]);
			pin_client(i);
			signal(SIGALRM, SIG_DFL);
			alarm(0);
			sh->c[i].status = fn(i, sh, arg);
			if (!g_ready_called)
				__atomic_add_fetch(&sh->ready, 1, __ATOMIC_SEQ_CST);
			__atomic_add_fetch(&sh->done, 1, __ATOMIC_SEQ_CST);
			while (read(rel[0], &c, 1) < 0 && errno == EINTR)
				;
			_exit(0);
		}
		pids[i] = pid;
		started++;
		bench_children = pids;
		bench_n_children = started;
	}
	close(go[0]);
	close(rel[0]);
	if (!rc && !wait_count(&sh->ready, started, 30000))
		rc = -ETIMEDOUT;
	close(go[1]); /* go */
	if (!rc) {
		bench_sleep_ns((uint64_t)(warmup * 1e9));
		if (mark)
			mark(ctx, 0);
		t0 = bench_now_ns();
		__atomic_store_n(&sh->measuring, 1, __ATOMIC_SEQ_CST);
		bench_sleep_ns((uint64_t)(seconds * 1e9));
		__atomic_store_n(&sh->stop, 1, __ATOMIC_SEQ_CST);
		t1 = bench_now_ns();
		if (mark)
			mark(ctx, 1);
		out->seconds = (double)(t1 - t0) / 1e9;
	}
	__atomic_store_n(&sh->stop, 1, __ATOMIC_SEQ_CST);
	if (!wait_count(&sh->done, started, 20000)) {
		fprintf(stderr, "bench: clients did not drain within 20 s, killing them\n");
		rc = rc ? rc : -ETIMEDOUT;
	} else if (mark && !rc) {
		mark(ctx, 2);
	}
	close(rel[1]); /* release */
	for (uint32_t i = 0; i < started; i++)
		wait_child(pids[i], 5000);
	bench_n_children = 0;
	for (uint32_t i = 0; i < started; i++) {
		struct client_slot *cs = &sh->c[i];

		out->requests += cs->requests;
		out->entries += cs->entries;
		out->errors += cs->errors;
		hist_merge(&out->lat, &cs->lat);
		if (cs->status && !rc) {
			rc = cs->status;
			fprintf(stderr, "bench: client %u: %s%s%s\n", i, strerror(-cs->status),
				cs->why[0] ? ": " : "", cs->why);
		}
	}
	munmap(sh, size + n * sizeof(pid_t));
	return rc;
}
