/* SPDX-License-Identifier: MIT */
/*
 * Per-request latency on the real kernel, inside the test VM: a 1-entry
 * selftest invalidation (a) straight through the iommufd backend in this
 * process (one IOMMU_HWPT_INVALIDATE ioctl: what a VMM does today) and
 * (b) through the daemon (NESTD_DAEMON with NESTD_CONFIG, started here on
 * the iommufd backend), synchronously.
 * Prints p50/p99 of each; asserts only that every call succeeded. The VM
 * runs under TCG emulation, so absolute figures are far above hardware.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backend/backend.h"
#include "util/config.h"
#include "iommu_nest.h"
#include "backend/iommufd_uapi.h"

#define ROUNDS 2000

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void print_lat(const char *what, uint64_t *ns, int n)
{
	qsort(ns, (size_t)n, sizeof(*ns), cmp_u64);
	printf("latency %-34s p50 %8.1f us  p99 %8.1f us  (%d calls)\n", what,
	       ns[n / 2] / 1000.0, ns[n * 99 / 100] / 1000.0, n);
}

static int direct(uint64_t *ns)
{
	struct iommu_hwpt_selftest data = { .iotlb = IOMMU_TEST_IOTLB_DEFAULT };
	struct backend_alloc req = { .data_type = IOMMU_HWPT_DATA_SELFTEST,
				     .data = &data, .data_len = sizeof(data) };
	struct iommu_hwpt_invalidate_selftest e = { .iotlb_id = 0 };
	struct backend *be = NULL;
	const char *why = "";
	struct config cfg;
	uint32_t hwpt, parent;
	int rc;

	config_defaults(&cfg);
	snprintf(cfg.backend, sizeof(cfg.backend), "iommufd");
	snprintf(cfg.devices[0].name, sizeof(cfg.devices[0].name), "lat0");
	cfg.devices[0].kind = DEVICE_KIND_SELFTEST;
	cfg.n_devices = 1;
	rc = backend_open(&cfg, &be, &why);
	if (rc) {
		fprintf(stderr, "backend_open: %s\n", why);
		return rc;
	}
	rc = be->ops->alloc_nested(be, "lat0", &req, &hwpt, &parent);
	for (int i = 0; !rc && i < ROUNDS; i++) {
		struct backend_inv inv = { .hwpt_id = hwpt,
					   .data_type = IOMMU_HWPT_INVALIDATE_DATA_SELFTEST,
					   .entry_len = sizeof(e), .entry_num = 1, .entries = &e };
		uint64_t t = now_ns();

		rc = be->ops->invalidate(be, &inv);
		ns[i] = now_ns() - t;
		if (!rc && inv.entry_num != 1)
			rc = -EIO;
	}
	if (!rc)
		rc = be->ops->destroy(be, hwpt);
	be->ops->close(be);
	return rc;
}

static int via_daemon(const char *sock, uint64_t *ns)
{
	struct iommu_nest_selftest_inv e = { .flags = 0, .iotlb_id = 0 };
	struct iommu_nest_entry_result res;
	struct iommu_nest_inv_summary sum;
	struct iommu_nest *h;
	uint32_t hwpt;
	int rc;

	rc = iommu_nest_connect(sock, "ktest-latency", &h);
	if (rc)
		return rc;
	rc = iommu_nest_alloc_selftest(h, iommu_nest_device(h, 0), IOMMU_NEST_TEST_IOTLB_DEFAULT,
				       &hwpt);
	for (int i = 0; !rc && i < ROUNDS; i++) {
		uint64_t t = now_ns();

		rc = iommu_nest_invalidate(h, hwpt, IOMMU_NEST_INV_DATA_SELFTEST, &e, 1, 0, &res,
					   &sum);
		ns[i] = now_ns() - t;
		if (!rc && res.state != IOMMU_NEST_ENTRY_DONE)
			rc = -EIO;
	}
	iommu_nest_close(h);
	return rc;
}

/* Starts the daemon on sock; returns its pid once the socket exists. */
static pid_t start_daemon(const char *sock)
{
	const char *daemon = getenv("NESTD_DAEMON"), *config = getenv("NESTD_CONFIG");
	struct stat st;
	pid_t pid;

	if (!daemon || !config)
		return -1;
	pid = fork();
	if (pid == 0) {
		execl(daemon, daemon, "--socket", sock, "--config", config, "--log-level", "err",
		      (char *)NULL);
		_exit(127);
	}
	for (int i = 0; pid > 0 && i < 200; i++) {
		if (!stat(sock, &st))
			return pid;
		usleep(20000);
	}
	if (pid > 0)
		kill(pid, SIGKILL);
	return -1;
}

static int stop_daemon(pid_t pid)
{
	int status = 0;

	kill(pid, SIGTERM);
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int main(void)
{
	static uint64_t ns[ROUNDS];
	const char *sock = "/tmp/ktest-latency.sock";
	pid_t pid;
	int rc;

	rc = direct(ns);
	if (rc) {
		fprintf(stderr, "direct ioctl: %s\n", strerror(-rc));
		return 1;
	}
	print_lat("direct IOMMU_HWPT_INVALIDATE", ns, ROUNDS);
	pid = start_daemon(sock);
	if (pid < 0) {
		fprintf(stderr, "cannot start the daemon (NESTD_DAEMON, NESTD_CONFIG)\n");
		return 1;
	}
	rc = via_daemon(sock, ns);
	if (stop_daemon(pid) != 0 && !rc)
		rc = -EIO;
	if (rc) {
		fprintf(stderr, "through the daemon: %s\n", strerror(-rc));
		return 1;
	}
	print_lat("through iommu-nestd (sync, 1 entry)", ns, ROUNDS);
	return 0;
}
