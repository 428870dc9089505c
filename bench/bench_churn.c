/* SPDX-License-Identifier: MIT */
/*
 * Tenant churn against a bystander (issue 13): one client holds N nested
 * HWPTs on a daemon that persists its state (state_file), then churns
 * Alloc/Destroy as fast as it can; a bystander's one-entry Invalidate
 * round trip is measured with the N held and idle, then during the churn,
 * on the same daemon in the same run.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "iommu_nest.h"

#define SAMPLES 4000

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* p99 of SAMPLES one-entry round trips on the bystander's HWPT (ns); 0 on error. */
static uint64_t bystander_p99(struct iommu_nest *h, uint32_t hwpt, uint64_t *p50)
{
	static uint64_t ns[SAMPLES];
	struct iommu_nest_vtd_inv e = {.addr = 0x100000, .npages = 1};
	struct iommu_nest_entry_result res;
	struct iommu_nest_inv_summary sum;

	for (int i = 0; i < SAMPLES; i++) {
		uint64_t t0 = bench_now_ns();

		if (iommu_nest_invalidate(h, hwpt, IOMMU_NEST_INV_DATA_VTD_S1, &e, 1, 0, &res,
					  &sum))
			return 0;
		ns[i] = bench_now_ns() - t0;
	}
	qsort(ns, SAMPLES, sizeof(ns[0]), cmp_u64);
	*p50 = ns[SAMPLES / 2];
	return ns[SAMPLES * 99 / 100];
}

/* The churning tenant: holds n, says so on ready, churns until killed. */
static void churner(const char *sock, uint32_t n, int ready, volatile uint64_t *pairs)
{
	struct iommu_nest *h;
	uint32_t id;
	char c = 1;

	if (iommu_nest_connect(sock, "churner", &h))
		_exit(1);
	for (uint32_t i = 0; i < n; i++)
		if (iommu_nest_alloc_vtd_s1(h, "vf0", 0, 0x10000000, 48, &id))
			_exit(2);
	if (write(ready, &c, 1) != 1)
		_exit(3);
	/* Told to go by a second byte: the bystander's idle figure comes first. */
	if (read(ready, &c, 1) != 1)
		_exit(4);
	for (;;) {
		if (iommu_nest_alloc_vtd_s1(h, "vf0", 0, 0x10000000, 48, &id) ||
		    iommu_nest_destroy(h, id))
			_exit(5);
		(*pairs)++;
	}
}

int bench_churn(const char *daemon_bin, const char *dir, uint32_t held, struct churn_result *out)
{
	char extra[512];
	struct daemon_proc d;
	struct iommu_nest *h = NULL;
	volatile uint64_t *pairs;
	uint64_t t0, t1, p0;
	int sv[2], rc = -EIO;
	uint32_t hwpt;
	pid_t pid;
	char c;

	memset(out, 0, sizeof(*out));
	snprintf(extra, sizeof(extra),
		 "[daemon]\nstate_file = %s/churn.state\n[policy]\nmax_hwpts = %u\n", dir,
		 held + 16);
	if (daemon_start_ext(&d, daemon_bin, dir, true, "churn", extra))
		return -EIO;
	pairs =
	    mmap(NULL, sizeof(*pairs), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (pairs == MAP_FAILED || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
		daemon_stop(&d);
		return -errno;
	}
	pid = fork();
	if (pid == 0) {
		close(sv[0]);
		churner(d.socket, held, sv[1], pairs);
	}
	close(sv[1]);
	t0 = bench_now_ns();
	if (pid < 0 || read(sv[0], &c, 1) != 1)
		goto out;
	out->fill_s = (bench_now_ns() - t0) / 1e9;
	if (iommu_nest_connect(d.socket, "bystander", &h) ||
	    iommu_nest_alloc_vtd_s1(h, "vf0", 0, 0x10000000, 48, &hwpt))
		goto out;
	out->idle_p99_ns = bystander_p99(h, hwpt, &out->idle_p50_ns);
	if (write(sv[0], &c, 1) != 1)
		goto out;
	/* Let the churn reach its stride before measuring against it. */
	while (*pairs < 100)
		bench_sleep_ns(1000000);
	p0 = *pairs;
	t1 = bench_now_ns();
	out->churn_p99_ns = bystander_p99(h, hwpt, &out->churn_p50_ns);
	out->pairs_per_s = (*pairs - p0) / ((bench_now_ns() - t1) / 1e9);
	out->rss_kib = proc_rss_kib(d.pid);
	rc = out->idle_p99_ns && out->churn_p99_ns ? 0 : -EIO;
out:
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	close(sv[0]);
	iommu_nest_close(h);
	daemon_stop(&d);
	munmap((void *)pairs, sizeof(*pairs));
	snprintf(extra, sizeof(extra), "%s/churn.state", dir);
	unlink(extra);
	snprintf(extra, sizeof(extra), "%s/churn.state.journal", dir);
	unlink(extra);
	snprintf(extra, sizeof(extra), "%s/churn.state.lock", dir);
	unlink(extra);
	return rc;
}
