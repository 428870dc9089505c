/* SPDX-License-Identifier: MIT */
/*
 * Restart without loss, end to end, on the sim backend:
 *
 *   crash   two clients allocate HWPTs, attach, fill and partly invalidate
 *           the model IOTLB; the daemon (under fake_systemd, which keeps
 *           its fd store and restarts it like Restart=on-failure) is
 *           SIGKILLed; the new instance gets the stored "sim" anchor back
 *           from LISTEN_FDS, and the clients reclaim their HWPTs with
 *           their tokens: pages invalidated before the crash stay gone,
 *           the others stay cached until invalidated now, attachments and
 *           mock IOTLB slots are as they were; wrong tokens, wrong ids and
 *           stealing a live session's HWPT answer -ENOENT; a clean SIGTERM
 *           removes the fd store entry and the state file.
 *   grace   an orphan nobody reclaims is destroyed when the grace period
 *           ends (Stats, Reclaim, device freed).
 *   store-lost  (both backends) SIGKILL, then the fd store is lost while
 *           the state file stays: the next start drops the state, Reclaim
 *           answers -ENOENT and the device is free.
 *   contexts  (both backends) two clients in their own VM contexts, each
 *           with a HWPT of the same id, guest memory and an attachment;
 *           SIGKILL; each reclaims its own context with its token and
 *           finds HWPT, model (sim IOTLB / mock IOTLB slots) and memory as
 *           before and none of the other's; a session cannot take a
 *           second context (-EBUSY); contexts' fd store entries go with
 *           them.
 *   contexts-grace  (both) a context nobody reclaims is torn down and
 *           closed at the grace period's end; its device is free again.
 *   contexts-lost  (sim) a saved context the restart cannot reopen: the
 *           VT-d device the root lent it comes back to the root.
 *   contexts-orphan-errors  (sim) orphan-errors for a VM context, its
 *           snapshot rewritten: the same two backend_error events.
 *   veventq  (both) a vEVENTQ comes back with its vIOMMU's Reclaim; what
 *           the kernel queued meanwhile arrives in order, sequence numbers
 *           continuing (the overflow as LOST_EVENTS); veventq-grace: an
 *           unclaimed one is destroyed before its vIOMMU, nothing -EBUSY.
 *   pasid    (both) a HWPT on a PASID comes back with its Reclaim, the
 *           backend's table rebuilt (replace, attach, detach answer as
 *           before); pasid-grace: detached before the HWPT is destroyed.
 *   viommu-token  (both) an owner without HWPTs reclaims its vIOMMU (with
 *           its vDEVICE and vEVENTQ) by the vIOMMU's own token.
 *   orphan-errors  (sim) the restart is held while the state file's
 *           journal gets records that make registry and model disagree;
 *           the reaper's failed destroy (-EBUSY) and unmap (-ENOENT) must
 *           be logged as backend_error events.
 *
 * With NESTD_BACKEND=iommufd (the kernel test tier: a VM with
 * CONFIG_IOMMUFD_TEST) both cases run against the real kernel instead,
 * on two selftest mock devices, and both under fake_systemd: only the fd
 * store keeps the kernel objects alive across the crash.
 *
 *   crash   guest memory (a memfd in the mock aperture) mapped on mock0, a
 *           nested HWPT attached to it with two of its four mock IOTLB
 *           slots invalidated, two HWPTs on mock1 (one invalidated with
 *           FLAG_ALL); after the SIGKILL and Reclaim every slot is exactly
 *           as before, new invalidations act on exactly the slots they
 *           name, the memory is still mapped (it unmaps), mock0 stays busy
 *           for the other client until detached; a clean SIGTERM empties
 *           the fd store and removes the state file.
 *   grace   an orphan nobody reclaims is destroyed (and its device
 *           detached) when the grace period ends.
 *
 * $NESTD_DAEMON_WRAPPER (e.g. valgrind) runs the daemon under a wrapper,
 * as in the integration suites.
 *
 * Modes: the daemon's default is a VM context per client. crash, orphan-
 * errors and the kernel's grace are about the root mode (one iommufd for
 * all: they share a device between clients, or edit the root's objects or
 * journal behind the daemon's back) and run with vm_contexts = false;
 * contexts and contexts-grace are their context versions (the whole
 * context back by the first Reclaim; the grace period closes it) and run
 * with vm_contexts = true. The others follow the default, or the root mode
 * with $NESTD_VM_CONTEXTS=0 (systemd/restart-root, kernel/restart-root).
 *
 * Usage: test_restart DAEMON FAKE_SYSTEMD [CASE[,CASE...]]
 *        test_restart   (kernel tier: the daemon from $NESTD_DAEMON,
 *                        fake_systemd from $NESTD_FAKE_SYSTEMD or next to
 *                        this binary, the case from $NESTD_RESTART_CASE)
 */
#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "iommu_nest.h"
/* The daemon's own journal records and replay, to rewrite its state as it would. */
#include "util/journal.h"
/* The raw kernel uAPI, for the crash-window cases on the daemon's iommufd. */
#include "backend/iommufd_test_uapi.h"
#include "backend/viommu_uapi.h"
#include "backend/veventq_uapi.h"
#include "backend/pasid_uapi.h"

#define PAGE 4096ULL
#define AW 48

static const char *daemon_path, *fake_path;
static int failures;
static char dir[64];
static bool kernel; /* NESTD_BACKEND=iommufd: the real kernel's mock devices */
static const char *skipped; /* why the case that ran did not apply */
/* What write_config says of vm_contexts: the case's mode (reset before each). */
static enum {
	MODE_DEFAULT, /* the daemon's default, or the root mode with $NESTD_VM_CONTEXTS=0 */
	MODE_ROOT,    /* vm_contexts = false: one iommufd shared by all clients */
	MODE_CONTEXTS /* vm_contexts = true */
} ctx_mode;
static bool sim7; /* the sim under 7.x rules with a second selftest device (vIOMMU cases) */
static bool pasid_dev; /* a PASID-capable selftest device sp0 (the PASID cases) */

/* Whether the case's daemon runs with VM contexts (the default unless the mode or env says root). */
static bool contexts_on(void)
{
	const char *e = getenv("NESTD_VM_CONTEXTS");

	if (ctx_mode != MODE_DEFAULT)
		return ctx_mode == MODE_CONTEXTS;
	return !e || strcmp(e, "0");
}

#define CHECK(cond, ...)                                                   \
	do {                                                               \
		if (!(cond)) {                                             \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                      \
			fputc('\n', stderr);                               \
			failures++;                                        \
		}                                                          \
	} while (0)

#define CHECK_EQ(got, want)                                                          \
	CHECK((long long)(got) == (long long)(want), "got %lld, want %lld",         \
	      (long long)(got), (long long)(want))

static void path_of(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", dir, name);
}

/* 50 ms polls in a bounded wait: 10 s, or 2 min for a daemon under valgrind. */
static int polls(void)
{
	const char *w = getenv("NESTD_DAEMON_WRAPPER");

	return w && *w ? 2400 : 200;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

static void write_config(unsigned grace_ms)
{
	char path[128], sock[128], state[128];
	FILE *f;

	path_of(path, sizeof(path), "nestd.conf");
	path_of(sock, sizeof(sock), "nestd.sock");
	path_of(state, sizeof(state), "state");
	f = fopen(path, "w");
	if (!f) {
		perror(path);
		exit(1);
	}
	if (ctx_mode == MODE_CONTEXTS)
		fprintf(f, "[daemon]\nvm_contexts = true\n\n");
	else if (ctx_mode == MODE_ROOT ||
		 (getenv("NESTD_VM_CONTEXTS") && !strcmp(getenv("NESTD_VM_CONTEXTS"), "0")))
		fprintf(f, "[daemon]\nvm_contexts = false\n\n");
	if (kernel)
		fprintf(f,
			"[daemon]\nsocket = %s\nbackend = iommufd\nlog_level = debug\n"
			"test_requests = true\nstate_file = %s\nreclaim_grace_ms = %u\n\n"
			"[device mock0]\nkind = selftest\n\n[device mock1]\nkind = selftest\n\n"
			"[device mock2]\nkind = selftest\n",
			sock, state, grace_ms);
	else
		fprintf(f,
			"[daemon]\nsocket = %s\nbackend = sim\nlog_level = debug\n"
			"test_requests = true\nstate_file = %s\nreclaim_grace_ms = %u\n\n"
			"[device vtd0]\nkind = vtd\n\n[device vtd1]\nkind = vtd\n\n"
			"[device st0]\nkind = selftest\n",
			sock, state, grace_ms);
	if (sim7 && !kernel)
		fprintf(f, "\n[device st1]\nkind = selftest\n\n[device sm0]\nkind = smmuv3\n\n"
			   "[daemon]\nsim_kernel = 7.0\n");
	if (pasid_dev)
		fprintf(f, "\n[device sp0]\nkind = selftest\npasid = true\n");
	fclose(f);
}

/* Runs argv with stdout/stderr appended to DIR/log; returns its pid. */
static pid_t spawn(char **argv)
{
	char log[128];
	pid_t pid;

	path_of(log, sizeof(log), "log");
	pid = fork();
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		dup2(fd, 1);
		dup2(fd, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

/*
 * fake_systemd running the daemon (under $NESTD_DAEMON_WRAPPER, e.g.
 * valgrind, if set), at most max_starts times; with hold, every restart
 * waits for that file (fake_systemd --hold-restart).
 */
static pid_t start_fake_systemd_hold(const char *max_starts, const char *hold)
{
	char cfg[128], sock[128], notify[128], log[128], pidfile[128], *argv[64];
	char *wrapper =
	    strdup(getenv("NESTD_DAEMON_WRAPPER") ? getenv("NESTD_DAEMON_WRAPPER") : "");
	char *save = NULL;
	int n = 0;
	pid_t pid;

	path_of(cfg, sizeof(cfg), "nestd.conf");
	path_of(sock, sizeof(sock), "nestd.sock");
	path_of(notify, sizeof(notify), "notify");
	path_of(log, sizeof(log), "fake.log");
	path_of(pidfile, sizeof(pidfile), "daemon.pid");
	argv[n++] = (char *)fake_path;
	argv[n++] = "--socket";
	argv[n++] = sock;
	argv[n++] = "--notify";
	argv[n++] = notify;
	argv[n++] = "--log";
	argv[n++] = log;
	argv[n++] = "--pidfile";
	argv[n++] = pidfile;
	argv[n++] = "--max-starts";
	argv[n++] = (char *)max_starts;
	if (hold) {
		argv[n++] = "--hold-restart";
		argv[n++] = (char *)hold;
	}
	argv[n++] = "--";
	for (char *w = wrapper ? strtok_r(wrapper, " ", &save) : NULL; w && n < 60;
	     w = strtok_r(NULL, " ", &save))
		argv[n++] = w;
	argv[n++] = (char *)daemon_path;
	argv[n++] = "--config";
	argv[n++] = cfg;
	argv[n] = NULL;
	pid = spawn(argv);
	free(wrapper);
	return pid;
}

static pid_t start_fake_systemd_n(const char *max_starts)
{
	return start_fake_systemd_hold(max_starts, NULL);
}

static pid_t start_fake_systemd(void)
{
	return start_fake_systemd_n("2");
}

/* Connects, retrying while the daemon comes up (bounded). */
static struct iommu_nest *connect_retry(const char *name)
{
	char sock[128];
	struct iommu_nest *h = NULL;

	path_of(sock, sizeof(sock), "nestd.sock");
	for (int i = 0; i < polls(); i++) {
		if (!iommu_nest_connect(sock, name, &h))
			return h;
		sleep_ms(50);
	}
	fprintf(stderr, "cannot connect to %s\n", sock);
	return NULL;
}

static bool file_has(const char *name, const char *needle)
{
	char path[128], buf[65536];
	size_t n;
	FILE *f;

	path_of(path, sizeof(path), name);
	f = fopen(path, "r");
	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strstr(buf, needle) != NULL;
}

static bool wait_for(const char *name, const char *needle)
{
	for (int i = 0; i < polls(); i++) {
		if (file_has(name, needle))
			return true;
		sleep_ms(50);
	}
	return false;
}

static pid_t read_pidfile(void)
{
	char path[128];
	int pid = 0;
	FILE *f;

	path_of(path, sizeof(path), "daemon.pid");
	f = fopen(path, "r");
	if (f) {
		if (fscanf(f, "%d", &pid) != 1)
			pid = 0;
		fclose(f);
	}
	return pid;
}

static bool state_exists(void)
{
	char path[128];
	struct stat st;

	path_of(path, sizeof(path), "state");
	return stat(path, &st) == 0;
}

static int wait_exit(pid_t pid)
{
	int status;

	for (int i = 0; i < polls(); i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		sleep_ms(50);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

static uint64_t iotlb(struct iommu_nest *h, uint32_t id, uint64_t first, uint64_t n)
{
	uint64_t io = ~0ULL, psc = ~0ULL;
	int rc = iommu_nest_sim_query(h, id, first * PAGE, n, &io, &psc);

	CHECK_EQ(rc, 0);
	return io;
}

static uint64_t psc(struct iommu_nest *h, uint32_t id, uint64_t first, uint64_t n)
{
	uint64_t io = ~0ULL, ps = ~0ULL;
	int rc = iommu_nest_sim_query(h, id, first * PAGE, n, &io, &ps);

	CHECK_EQ(rc, 0);
	return ps;
}

/* Invalidates pages [first, first + n) and checks every entry is done. */
static void inv_vtd(struct iommu_nest *h, uint32_t id, uint64_t first, uint64_t n, bool leaf)
{
	struct iommu_nest_vtd_inv e = {
	    .addr = first * PAGE, .npages = n, .flags = leaf ? IOMMU_NEST_VTD_INV_FLAGS_LEAF : 0};
	struct iommu_nest_entry_result r = {0};
	struct iommu_nest_inv_summary sum = {0};
	int rc = iommu_nest_invalidate(h, id, IOMMU_NEST_INV_DATA_VTD_S1, &e, 1, 0, &r, &sum);

	CHECK_EQ(rc, 0);
	CHECK_EQ(r.state, IOMMU_NEST_ENTRY_DONE);
	CHECK_EQ(sum.entries_handled, 1);
}

static uint32_t alloc_vtd(struct iommu_nest *h, const char *dev, uint8_t *token)
{
	uint32_t id = 0;
	int rc = iommu_nest_alloc_vtd_s1(h, dev, 0, 0x100000, AW, &id);

	CHECK_EQ(rc, 0);
	if (token)
		CHECK_EQ(iommu_nest_last_resume_token(h, token), 0);
	return id;
}

static uint64_t hwpts_active(struct iommu_nest *h)
{
	struct iommu_nest_stats st = {0};

	CHECK_EQ(iommu_nest_stats(h, &st), 0);
	return st.hwpts_active;
}

/* ---- crash and recover under a fake systemd --------------------------------- */

struct before {
	uint32_t a, s, b;
	uint8_t tok_a[16], tok_s[16], tok_b[16];
};

/* Client A: vtd0 HWPT attached, IOTLB and PSC [0, 1024), two invalidations. */
static void crash_setup_a(struct iommu_nest *a, struct before *w)
{
	struct iommu_nest_selftest_inv se = {.flags = 0, .iotlb_id = 1};
	struct iommu_nest_entry_result r;

	w->a = alloc_vtd(a, "vtd0", w->tok_a);
	CHECK_EQ(iommu_nest_attach(a, "vtd0", w->a), 0);
	CHECK_EQ(iommu_nest_sim_populate(a, w->a, 0, 1024, IOMMU_NEST_SIM_IOTLB), 0);
	CHECK_EQ(iommu_nest_sim_populate(a, w->a, 0, 1024, IOMMU_NEST_SIM_PSC), 0);
	inv_vtd(a, w->a, 0, 256, true);	  /* leaf: IOTLB only */
	inv_vtd(a, w->a, 512, 64, false); /* non-leaf: both */
	CHECK_EQ(iotlb(a, w->a, 0, 1024), 1024 - 256 - 64);
	CHECK_EQ(psc(a, w->a, 0, 1024), 1024 - 64);

	CHECK_EQ(iommu_nest_alloc_selftest(a, "st0", 0x1234, &w->s), 0);
	CHECK_EQ(iommu_nest_last_resume_token(a, w->tok_s), 0);
	CHECK_EQ(iommu_nest_invalidate(a, w->s, IOMMU_NEST_INV_DATA_SELFTEST, &se, 1, 0, &r, NULL),
		 0);
	CHECK_EQ(iommu_nest_check_iotlb(a, w->s, 1, 0), 0);
	CHECK(memcmp(w->tok_a, w->tok_s, 16), "two allocations got the same token");
}

/* Client B: vtd1 HWPT, IOTLB [0, 100), [0, 10) invalidated. */
static void crash_setup_b(struct iommu_nest *b, struct before *w)
{
	w->b = alloc_vtd(b, "vtd1", w->tok_b);
	CHECK_EQ(iommu_nest_sim_populate(b, w->b, 0, 100, IOMMU_NEST_SIM_IOTLB), 0);
	inv_vtd(b, w->b, 0, 10, true);
}

static void crash_check_reclaim_rules(struct iommu_nest *a2, struct iommu_nest *b2,
				      const struct before *w)
{
	uint8_t wrong[16];

	memcpy(wrong, w->tok_a, 16);
	wrong[15] ^= 1;
	CHECK_EQ(iommu_nest_reclaim(a2, w->a, wrong), -ENOENT);
	CHECK_EQ(iommu_nest_reclaim(a2, 0x7fff0000, w->tok_a), -ENOENT);
	CHECK_EQ(iommu_nest_reclaim(a2, w->a, w->tok_b), -ENOENT);
	/* Orphans are nobody's: not even their token holder's before Reclaim. */
	CHECK_EQ(iommu_nest_sim_query(a2, w->a, 0, 1, NULL, NULL), -ENOENT);
	CHECK_EQ(iommu_nest_reclaim(a2, w->a, w->tok_a), 0);
	/* Now a live session owns it: the token no longer works for anyone. */
	CHECK_EQ(iommu_nest_reclaim(b2, w->a, w->tok_a), -ENOENT);
	CHECK_EQ(iommu_nest_reclaim(a2, w->a, w->tok_a), -ENOENT);
}

static void crash_check_model(struct iommu_nest *a2, struct iommu_nest *b2, const struct before *w)
{
	uint32_t x = 0;

	/* Exactly as before the crash. */
	CHECK_EQ(iotlb(a2, w->a, 0, 256), 0);
	CHECK_EQ(iotlb(a2, w->a, 256, 256), 256);
	CHECK_EQ(iotlb(a2, w->a, 512, 64), 0);
	CHECK_EQ(iotlb(a2, w->a, 576, 448), 448);
	CHECK_EQ(psc(a2, w->a, 0, 512), 512);
	CHECK_EQ(psc(a2, w->a, 512, 64), 0);
	/* A new invalidation takes effect on the restored model. */
	inv_vtd(a2, w->a, 256, 128, true);
	CHECK_EQ(iotlb(a2, w->a, 256, 128), 0);
	CHECK_EQ(iotlb(a2, w->a, 384, 128), 128);
	CHECK_EQ(iotlb(a2, w->a, 0, 1024), 1024 - 256 - 64 - 128);

	/* vtd0 is still attached to A's HWPT: busy for B (even to Alloc), detachable by A. */
	CHECK_EQ(iommu_nest_alloc_vtd_s1(b2, "vtd0", 0, 0x100000, AW, &x), -EBUSY);
	CHECK_EQ(iommu_nest_detach(a2, "vtd0"), 0);
	x = alloc_vtd(b2, "vtd0", NULL);
	CHECK_EQ(iommu_nest_attach(b2, "vtd0", x), 0);

	/* The mock IOTLB: slot 1 invalidated before the crash, the rest kept. */
	CHECK_EQ(iommu_nest_reclaim(a2, w->s, w->tok_s), 0);
	CHECK_EQ(iommu_nest_check_iotlb(a2, w->s, 1, 0), 0);
	CHECK_EQ(iommu_nest_check_iotlb(a2, w->s, 0, 0x1234), 0);
	CHECK_EQ(iommu_nest_check_iotlb(a2, w->s, 3, 0x1234), 0);

	CHECK_EQ(iommu_nest_reclaim(b2, w->b, w->tok_b), 0);
	CHECK_EQ(iotlb(b2, w->b, 0, 10), 0);
	CHECK_EQ(iotlb(b2, w->b, 10, 90), 90);
	inv_vtd(b2, w->b, 10, 90, false);
	CHECK_EQ(iotlb(b2, w->b, 0, 100), 0);
}

static void test_crash(void)
{
	struct iommu_nest *a, *b, *a2, *b2;
	struct before w = {0};
	pid_t fake, old, pid = 0;

	write_config(30000);
	fake = start_fake_systemd();
	a = connect_retry("A");
	b = connect_retry("B");
	if (!a || !b)
		goto out_fail;
	crash_setup_a(a, &w);
	crash_setup_b(b, &w);
	CHECK(wait_for("fake.log", "STORE sim"), "the sim anchor never reached the fd store");
	CHECK(state_exists(), "no state file");

	old = read_pidfile();
	CHECK(old > 0, "no daemon pid");
	kill(old, SIGKILL);
	iommu_nest_close(a);
	iommu_nest_close(b);
	for (int i = 0; i < polls() && ((pid = read_pidfile()) == old || !pid); i++)
		sleep_ms(50);
	CHECK(pid && pid != old, "the daemon was not restarted");
	CHECK(wait_for("fake.log", "START 2 "), "no second start");
	CHECK(file_has("fake.log", "iommu-nestd.socket,sim"),
	      "the second start did not get the stored fd");

	a2 = connect_retry("A2");
	b2 = connect_retry("B2");
	if (!a2 || !b2)
		goto out_fail;
	CHECK(file_has("log", "took \"sim\""), "the daemon did not take the stored anchor");
	CHECK_EQ(hwpts_active(a2), 3);
	crash_check_reclaim_rules(a2, b2, &w);
	crash_check_model(a2, b2, &w);
	iommu_nest_close(a2);
	iommu_nest_close(b2);

	kill(fake, SIGTERM);
	CHECK_EQ(wait_exit(fake), 0);
	CHECK(file_has("fake.log", "REMOVE sim"), "a clean stop left the fd store entry");
	CHECK(file_has("fake.log", "LEFT 0"), "the fd store is not empty after a clean stop");
	CHECK(!state_exists(), "a clean stop left the state file");
	return;
out_fail:
	failures++;
	kill(fake, SIGTERM);
	wait_exit(fake);
}

/* ---- grace period ------------------------------------------------------------ */

static uint32_t alloc_st(struct iommu_nest *h, const char *dev, uint32_t val, uint8_t *token);
static bool crash_and_restart(int nth);
static void clean_stop(pid_t fake);

/* A case that cannot go on: counted, and fake_systemd (and the daemon) stopped. */
static void give_up(pid_t fake)
{
	failures++;
	kill(fake, SIGTERM);
	wait_exit(fake);
}

/* Under fake_systemd: the sim's objects survive only with their anchor. */
static void test_grace(void)
{
	struct iommu_nest *a, *a2;
	uint8_t tok1[16], tok2[16];
	uint32_t id1, id2, id3;
	pid_t fake;

	write_config(1500);
	fake = start_fake_systemd();
	a = connect_retry("A");
	if (!a)
		goto out_fail;
	id1 = alloc_vtd(a, "vtd1", tok1);
	id2 = alloc_vtd(a, "vtd0", tok2);
	CHECK_EQ(iommu_nest_attach(a, "vtd0", id2), 0);
	CHECK(wait_for("fake.log", "STORE sim"), "the sim anchor never reached the fd store");
	if (!crash_and_restart(2))
		goto out_fail;
	iommu_nest_close(a);

	a2 = connect_retry("A2");
	if (!a2)
		goto out_fail;
	CHECK_EQ(hwpts_active(a2), 2);
	CHECK_EQ(iommu_nest_reclaim(a2, id1, tok1), 0);
	/* vtd0 stays on the unclaimed orphan until the grace period ends. */
	CHECK_EQ(iommu_nest_alloc_vtd_s1(a2, "vtd0", 0, 0x100000, AW, &id3), -EBUSY);
	CHECK(file_has("state", "\"resume_token\""), "state file without tokens");

	sleep_ms(2500);
	CHECK_EQ(hwpts_active(a2), 1); /* id1 (reclaimed) */
	CHECK_EQ(iommu_nest_reclaim(a2, id2, tok2), -ENOENT);
	id3 = alloc_vtd(a2, "vtd0", NULL);
	CHECK_EQ(iommu_nest_attach(a2, "vtd0", id3), 0);
	CHECK(file_has("log", "destroying 1 unclaimed HWPTs"), "no grace expiry logged");
	iommu_nest_close(a2);
	clean_stop(fake);
	return;
out_fail:
	give_up(fake);
}

/*
 * kill -9, then the fd store is lost before the next start (systemctl
 * stop within RestartSec: systemd drops the store, RuntimeDirectoryPreserve
 * keeps the state file). iommufd's objects died with the store's fd, so
 * the next start must drop the state file: Reclaim answers -ENOENT and the
 * device is free. The sim must do the same as the kernel.
 */
static void test_store_lost(void)
{
	const char *dev = kernel ? "mock0" : "st0";
	struct iommu_nest *a, *a2;
	uint8_t tok[16];
	uint32_t id, x;
	pid_t fake, old;

	write_config(60000);
	fake = start_fake_systemd_n("1"); /* no restart: the store goes with it */
	a = connect_retry("A");
	if (!a)
		goto out_fail;
	id = alloc_st(a, dev, 0x42, tok);
	CHECK_EQ(iommu_nest_attach(a, dev, id), 0);
	CHECK(wait_for("fake.log", kernel ? "STORE iommufd" : "STORE sim"),
	      "the backend's fd never reached the fd store");
	old = read_pidfile();
	CHECK(old > 0, "no daemon pid");
	if (old <= 0)
		goto out_fail;
	kill(old, SIGKILL);
	CHECK_EQ(wait_exit(fake), 128 + SIGKILL);
	CHECK(!file_has("fake.log", "LEFT 0"), "the store was empty before it was lost");
	CHECK(state_exists(), "the state file went away with the store");
	iommu_nest_close(a);

	fake = start_fake_systemd();
	a2 = connect_retry("A2");
	if (!a2)
		goto out_fail;
	CHECK_EQ(hwpts_active(a2), 0);
	CHECK_EQ(iommu_nest_reclaim(a2, id, tok), -ENOENT);
	CHECK(file_has("log", "cannot recover the previous instance's objects"),
	      "the dropped state was not logged");
	x = alloc_st(a2, dev, 0x43, NULL);
	CHECK_EQ(iommu_nest_attach(a2, dev, x), 0); /* nothing holds the device */
	CHECK_EQ(iommu_nest_detach(a2, dev), 0);
	CHECK_EQ(iommu_nest_destroy(a2, x), 0);
	iommu_nest_close(a2);
	clean_stop(fake);
	return;
out_fail:
	give_up(fake);
}

/* ---- the real kernel: iommufd backend, selftest mock devices ------------------ */

#define MOCK_IOVA (16ULL << 20) /* the mock domain aperture's first byte */
#define MEM_LEN	  (2ULL << 20)
#define MAP_RW	  (IOMMU_NEST_MAP_READABLE | IOMMU_NEST_MAP_WRITEABLE)
#define SLOTS	  4 /* mock IOTLB slots of a selftest nested HWPT */

/* Invalidates the mock IOTLB slots in mask (FLAG_ALL if mask is 0). */
static void inv_slots(struct iommu_nest *h, uint32_t id, unsigned mask)
{
	struct iommu_nest_selftest_inv e[SLOTS];
	struct iommu_nest_entry_result r[SLOTS];
	struct iommu_nest_inv_summary sum = {0};
	uint32_t n = 0;
	int rc;

	if (!mask)
		e[n++] =
		    (struct iommu_nest_selftest_inv){.flags = IOMMU_NEST_TEST_INVALIDATE_FLAG_ALL};
	for (uint32_t i = 0; i < SLOTS; i++)
		if (mask & (1u << i))
			e[n++] = (struct iommu_nest_selftest_inv){.iotlb_id = i};
	memset(r, 0, sizeof(r));
	rc = iommu_nest_invalidate(h, id, IOMMU_NEST_INV_DATA_SELFTEST, e, n, 0, r, &sum);
	CHECK_EQ(rc, 0);
	CHECK_EQ(sum.entries_handled, n);
	for (uint32_t i = 0; i < n; i++)
		CHECK_EQ(r[i].state, IOMMU_NEST_ENTRY_DONE);
}

/* Every slot: 0 where zero_mask has its bit, val elsewhere. */
static void check_slots(struct iommu_nest *h, uint32_t id, uint32_t val, unsigned zero_mask,
			const char *what)
{
	for (uint32_t i = 0; i < SLOTS; i++) {
		uint32_t want = zero_mask & (1u << i) ? 0 : val;
		int rc = iommu_nest_check_iotlb(h, id, i, want);

		CHECK(rc == 0, "%s: hwpt %u slot %u is not %#x (%d)", what, id, i, want, rc);
	}
}

static uint32_t alloc_st(struct iommu_nest *h, const char *dev, uint32_t val, uint8_t *token)
{
	uint32_t id = 0;

	CHECK_EQ(iommu_nest_alloc_selftest(h, dev, val, &id), 0);
	if (token)
		CHECK_EQ(iommu_nest_last_resume_token(h, token), 0);
	return id;
}

/* SIGKILLs the daemon under fake_systemd and waits for its nth start. */
static bool crash_and_restart(int nth)
{
	char start[32];
	pid_t old = read_pidfile(), pid = 0;

	CHECK(old > 0, "no daemon pid");
	if (old <= 0)
		return false;
	kill(old, SIGKILL);
	for (int i = 0; i < polls() && ((pid = read_pidfile()) == old || !pid); i++)
		sleep_ms(50);
	CHECK(pid && pid != old, "the daemon was not restarted");
	snprintf(start, sizeof(start), "START %d ", nth);
	CHECK(wait_for("fake.log", start), "no start %d", nth);
	/* The adopted iommufd stays in the store once: no second entry. */
	CHECK(!file_has("fake.log", "iommufd,iommufd"), "the iommufd was stored twice");
	return pid && pid != old;
}

/* The clean stop: fake_systemd's SIGTERM, store emptied, state file gone. */
static void clean_stop(pid_t fake)
{
	kill(fake, SIGTERM);
	CHECK_EQ(wait_exit(fake), 0);
	CHECK(file_has("fake.log", kernel ? "REMOVE iommufd" : "REMOVE sim"),
	      "a clean stop left the fd store entry");
	CHECK(file_has("fake.log", "LEFT 0"), "the fd store is not empty after a clean stop");
	CHECK(!state_exists(), "a clean stop left the state file");
}

struct kbefore {
	uint32_t a0, a1, b1;
	uint8_t tok_a0[16], tok_a1[16], tok_b1[16];
};

/*
 * A: guest memory on mock0, a0 (0x1234) attached to mock0 with slots 1 and
 * 3 invalidated; a1 (0x5678) on mock1, all slots invalidated (FLAG_ALL).
 * B: b1 (0xbeef) on mock1, nothing invalidated.
 */
static void kcrash_setup(struct iommu_nest *a, struct iommu_nest *b, int memfd, struct kbefore *w)
{
	CHECK_EQ(iommu_nest_map_memory(a, "mock0", MOCK_IOVA, MEM_LEN, memfd, 0, MAP_RW), 0);
	w->a0 = alloc_st(a, "mock0", 0x1234, w->tok_a0);
	CHECK_EQ(iommu_nest_attach(a, "mock0", w->a0), 0);
	inv_slots(a, w->a0, 1u << 1 | 1u << 3);
	check_slots(a, w->a0, 0x1234, 1u << 1 | 1u << 3, "a0 before the crash");

	w->a1 = alloc_st(a, "mock1", 0x5678, w->tok_a1);
	inv_slots(a, w->a1, 0);
	check_slots(a, w->a1, 0x5678, 0xf, "a1 before the crash");

	w->b1 = alloc_st(b, "mock1", 0xbeef, w->tok_b1);
	check_slots(b, w->b1, 0xbeef, 0, "b1 before the crash");
	CHECK(memcmp(w->tok_a0, w->tok_a1, 16) && memcmp(w->tok_a0, w->tok_b1, 16),
	      "two allocations got the same token");
}

static void kcrash_check_reclaim_rules(struct iommu_nest *a2, struct iommu_nest *b2,
				       const struct kbefore *w)
{
	uint8_t wrong[16];
	uint32_t x;

	memcpy(wrong, w->tok_a0, 16);
	wrong[15] ^= 1;
	CHECK_EQ(iommu_nest_reclaim(a2, w->a0, wrong), -ENOENT);
	CHECK_EQ(iommu_nest_reclaim(a2, 0x7fff0000, w->tok_a0), -ENOENT);
	CHECK_EQ(iommu_nest_reclaim(a2, w->a0, w->tok_b1), -ENOENT);
	/* Orphans are nobody's: not even their token holder's before Reclaim. */
	CHECK_EQ(iommu_nest_check_iotlb(a2, w->a0, 0, 0x1234), -ENOENT);
	/* The orphan holds mock0 (attached, and A's memory on it): busy even to Alloc. */
	x = 0;
	CHECK_EQ(iommu_nest_alloc_selftest(b2, "mock0", 1, &x), -EBUSY);
	CHECK_EQ(x, 0);
	CHECK_EQ(iommu_nest_reclaim(a2, w->a0, w->tok_a0), 0);
	/* Now a live session owns it: the token no longer works for anyone. */
	CHECK_EQ(iommu_nest_reclaim(b2, w->a0, w->tok_a0), -ENOENT);
	CHECK_EQ(iommu_nest_reclaim(a2, w->a0, w->tok_a0), -ENOENT);
}

static void kcrash_check_state(struct iommu_nest *a2, struct iommu_nest *b2, int memfd,
			       const struct kbefore *w)
{
	uint32_t x;

	/* The kernel's mock IOTLBs, exactly as before the crash. */
	check_slots(a2, w->a0, 0x1234, 1u << 1 | 1u << 3, "a0 after the restart");
	CHECK_EQ(iommu_nest_reclaim(a2, w->a1, w->tok_a1), 0);
	check_slots(a2, w->a1, 0x5678, 0xf, "a1 after the restart");
	CHECK_EQ(iommu_nest_reclaim(b2, w->b1, w->tok_b1), 0);
	check_slots(b2, w->b1, 0xbeef, 0, "b1 after the restart");

	/* New invalidations act on the adopted objects, on exactly their slots. */
	inv_slots(a2, w->a0, 1u << 0);
	check_slots(a2, w->a0, 0x1234, 1u << 0 | 1u << 1 | 1u << 3, "a0 after slot 0");
	inv_slots(b2, w->b1, 1u << 2);
	check_slots(b2, w->b1, 0xbeef, 1u << 2, "b1 after slot 2");
	inv_slots(b2, w->b1, 0);
	check_slots(b2, w->b1, 0xbeef, 0xf, "b1 after FLAG_ALL");
	check_slots(a2, w->a0, 0x1234, 1u << 0 | 1u << 1 | 1u << 3, "a0 after b1's");

	/* mock0 is still A's: attached to a0 and holding A's memory. */
	CHECK_EQ(iommu_nest_alloc_selftest(b2, "mock0", 2, &x), -EBUSY);
	CHECK_EQ(iommu_nest_map_memory(b2, "mock0", MOCK_IOVA + MEM_LEN, MEM_LEN, memfd, 0, MAP_RW),
		 -EBUSY);
	/* The kernel kept the mapping: unmapping it succeeds once, then ENOENT. */
	CHECK_EQ(iommu_nest_unmap_memory(a2, "mock0", MOCK_IOVA, MEM_LEN), 0);
	CHECK_EQ(iommu_nest_unmap_memory(a2, "mock0", MOCK_IOVA, MEM_LEN), -ENOENT);
	CHECK_EQ(iommu_nest_alloc_selftest(b2, "mock0", 2, &x), -EBUSY);
	CHECK_EQ(iommu_nest_detach(a2, "mock0"), 0);
	x = alloc_st(b2, "mock0", 2, NULL);
	CHECK_EQ(iommu_nest_attach(b2, "mock0", x), 0);
	CHECK_EQ(iommu_nest_destroy(a2, w->a0), 0);
	CHECK_EQ(hwpts_active(a2), 3); /* a1, b1, x */
}

static void test_crash_kernel(void)
{
	struct iommu_nest *a, *b, *a2, *b2;
	struct kbefore w = {0};
	int memfd = memfd_create("restart-guest-ram", MFD_CLOEXEC);
	int before = failures;
	pid_t fake;

	CHECK(memfd >= 0 && !ftruncate(memfd, (off_t)MEM_LEN), "memfd");
	write_config(30000);
	fake = start_fake_systemd_n("3");
	a = connect_retry("A");
	b = connect_retry("B");
	if (!a || !b)
		goto out_fail;
	kcrash_setup(a, b, memfd, &w);
	CHECK(wait_for("fake.log", "STORE iommufd"), "the iommufd never reached the fd store");
	CHECK(state_exists(), "no state file");
	if (failures != before)
		goto out_fail; /* no point crashing a daemon that was wrong before */

	if (!crash_and_restart(2))
		goto out_fail;
	CHECK(file_has("fake.log", "iommu-nestd.socket,iommufd"),
	      "the second start did not get the stored iommufd");
	iommu_nest_close(a);
	iommu_nest_close(b);
	a2 = connect_retry("A2");
	b2 = connect_retry("B2");
	if (!a2 || !b2)
		goto out_fail;
	CHECK(file_has("log", "took \"iommufd\""), "the daemon did not take the stored iommufd");
	CHECK(!file_has("log", "cannot recover"), "the daemon did not re-adopt the objects");
	CHECK(!file_has("log", "kernel was ahead"), "a clean crash needed repairs");
	CHECK_EQ(hwpts_active(a2), 3);
	kcrash_check_reclaim_rules(a2, b2, &w);
	check_slots(a2, w.a0, 0x1234, 1u << 1 | 1u << 3, "a0 after the first restart");

	/*
	 * The restored instance crashes too: its own state file (a0 reclaimed,
	 * a1 and b1 still orphans) and the adopted iommufd carry everything
	 * again, and the tokens stay good for the HWPTs' lifetime.
	 */
	if (!crash_and_restart(3))
		goto out_fail;
	iommu_nest_close(a2);
	iommu_nest_close(b2);
	a2 = connect_retry("A3");
	b2 = connect_retry("B3");
	if (!a2 || !b2)
		goto out_fail;
	CHECK(!file_has("log", "cannot recover"), "the third start did not re-adopt the objects");
	CHECK_EQ(hwpts_active(a2), 3);
	CHECK_EQ(iommu_nest_reclaim(a2, w.a0, w.tok_a0), 0);
	kcrash_check_state(a2, b2, memfd, &w);
	iommu_nest_close(a2);
	iommu_nest_close(b2);
	close(memfd);
	clean_stop(fake);
	return;
out_fail:
	failures++;
	close(memfd);
	kill(fake, SIGTERM);
	wait_exit(fake);
}

/* ---- the kernel one step ahead of the state file ------------------------------- */

/*
 * A copy of the daemon's own iommufd (pidfd_getfd: the same open file, not
 * a new context), to act behind the daemon's back as if it had crashed
 * between an ioctl and the state-file write that records it, and to see
 * what the kernel really holds. It must be closed before the daemon dies:
 * while it is open, it and not the fd store keeps the objects alive.
 */
static int grab_daemon_iommufd(void)
{
	pid_t pid = read_pidfile();
	char path[32], link[96], target[64];
	struct dirent *e;
	int pidfd, fd = -1;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	if (!d)
		return -1;
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	while (pidfd >= 0 && fd < 0 && (e = readdir(d))) {
		ssize_t n;

		snprintf(link, sizeof(link), "%s/%.20s", path, e->d_name);
		n = readlink(link, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		if (!strcmp(target, "/dev/iommu"))
			fd = (int)syscall(SYS_pidfd_getfd, pidfd, atoi(e->d_name), 0);
	}
	closedir(d);
	if (pidfd >= 0)
		close(pidfd);
	return fd;
}

/* The value of key in the saved object of device dev (JSON, plain). */
static uint32_t saved_id(const char *dev, const char *key)
{
	char path[128], buf[65536], name[64], k[64];
	const char *p;
	size_t n;
	FILE *f;

	path_of(path, sizeof(path), "state");
	f = fopen(path, "r");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	snprintf(name, sizeof(name), "\"name\":\"%s\"", dev);
	snprintf(k, sizeof(k), "\"%s\":", key);
	p = strstr(buf, name);
	p = p ? strstr(p, k) : NULL;
	return p ? (uint32_t)strtoul(p + strlen(k), NULL, 10) : 0;
}

/* The kernel's empty invalidation: 0 iff id is a live selftest nested HWPT. */
static int k_nested_alive(int fd, uint32_t id)
{
	struct iommu_hwpt_invalidate cmd = {
	    .size = sizeof(cmd), .hwpt_id = id, .data_type = IOMMU_HWPT_INVALIDATE_DATA_SELFTEST};

	return ioctl(fd, IOMMU_HWPT_INVALIDATE, &cmd) ? -errno : 0;
}

static int k_alloc_nested(int fd, uint32_t dev_id, uint32_t parent, uint32_t *id)
{
	struct iommu_hwpt_selftest data = {.iotlb = 0x77};
	struct iommu_hwpt_alloc cmd = {.size = sizeof(cmd),
				       .dev_id = dev_id,
				       .pt_id = parent,
				       .data_type = IOMMU_HWPT_DATA_SELFTEST,
				       .data_len = sizeof(data),
				       .data_uptr = (uintptr_t)&data};

	if (ioctl(fd, IOMMU_HWPT_ALLOC, &cmd))
		return -errno;
	*id = cmd.out_hwpt_id;
	return 0;
}

static int k_replace(int fd, uint32_t stdev_id, uint32_t pt_id)
{
	struct iommu_test_cmd cmd = {.size = sizeof(cmd),
				     .op = IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE,
				     .id = stdev_id,
				     .mock_domain_replace.pt_id = pt_id};

	return ioctl(fd, IOMMU_TEST_CMD, &cmd) ? -errno : 0;
}

static int k_destroy(int fd, uint32_t id)
{
	struct iommu_destroy cmd = {.size = sizeof(cmd), .id = id};

	return ioctl(fd, IOMMU_DESTROY, &cmd) ? -errno : 0;
}

/*
 * The grace period, with the crash windows of the real kernel:
 *   id1  mock1, reclaimed;
 *   id2  mock0, attached, with guest memory on mock0: never reclaimed, so
 *        detached, unmapped and destroyed when the grace period ends;
 *   id4  mock1, not attached as far as the state file knows, but the
 *        kernel attached mock1 to it (the daemon "crashed" after the
 *        ioctl, before the write): the restart must put mock1 back where
 *        the file says, else destroying the orphan id4 is EBUSY and mock1
 *        keeps translating through it;
 *   leak a nested HWPT on mock1 only the kernel knows (allocated, then the
 *        crash before the write): the restart destroys it;
 *   id5  mock2, attached, then detached and destroyed in the kernel only
 *        (a crash in the middle of a session's teardown): the restart
 *        leaves it out and mock2, free again, on its parent.
 */
static void test_grace_kernel(void)
{
	struct iommu_nest *a, *a2;
	uint8_t tok1[16], tok2[16], tok4[16];
	uint32_t id1, id2, id3, id4, id5, x, leak = 0, stdev1, dev1, parent1, stdev2, parent2;
	int memfd = memfd_create("restart-guest-ram", MFD_CLOEXEC);
	int before = failures, kfd = -1;
	pid_t fake;

	CHECK(memfd >= 0 && !ftruncate(memfd, (off_t)MEM_LEN), "memfd");
	write_config(1500);
	fake = start_fake_systemd();
	a = connect_retry("A");
	if (!a)
		goto out_fail;
	id1 = alloc_st(a, "mock1", 0x11, tok1);
	CHECK_EQ(iommu_nest_map_memory(a, "mock0", MOCK_IOVA, MEM_LEN, memfd, 0, MAP_RW), 0);
	id2 = alloc_st(a, "mock0", 0x22, tok2);
	CHECK_EQ(iommu_nest_attach(a, "mock0", id2), 0);
	id4 = alloc_st(a, "mock1", 0x44, tok4);
	id5 = alloc_st(a, "mock2", 0x55, NULL);
	CHECK_EQ(iommu_nest_attach(a, "mock2", id5), 0);
	inv_slots(a, id1, 1u << 2);
	CHECK(wait_for("fake.log", "STORE iommufd"), "the iommufd never reached the fd store");

	/* Behind the daemon's back: what a crash mid-request leaves. */
	stdev1 = saved_id("mock1", "stdev_id");
	dev1 = saved_id("mock1", "dev_id");
	parent1 = saved_id("mock1", "parent_id");
	stdev2 = saved_id("mock2", "stdev_id");
	parent2 = saved_id("mock2", "parent_id");
	kfd = grab_daemon_iommufd();
	CHECK(kfd >= 0, "cannot take the daemon's iommufd: %s", strerror(errno));
	CHECK(stdev1 && dev1 && parent1 && stdev2 && parent2, "ids missing in the state file");
	if (failures != before)
		goto out_fail;
	CHECK_EQ(k_replace(kfd, stdev1, id4), 0);
	CHECK_EQ(k_alloc_nested(kfd, dev1, parent1, &leak), 0);
	CHECK_EQ(k_replace(kfd, stdev2, parent2), 0);
	CHECK_EQ(k_destroy(kfd, id5), 0);
	close(kfd);
	kfd = -1;

	if (!crash_and_restart(2))
		goto out_fail;
	CHECK(file_has("fake.log", "iommu-nestd.socket,iommufd"),
	      "the second start did not get the stored iommufd");
	iommu_nest_close(a);

	a2 = connect_retry("A2");
	if (!a2)
		goto out_fail;
	CHECK_EQ(hwpts_active(a2), 3); /* id1, id2, id4: id5 is gone */
	CHECK(file_has("log", "1 devices moved to their nest parent, 1 unrecorded nested"),
	      "the restart did not report what it put right");
	CHECK_EQ(iommu_nest_reclaim(a2, id1, tok1), 0);
	check_slots(a2, id1, 0x11, 1u << 2, "id1 after the restart");
	kfd = grab_daemon_iommufd();
	CHECK(kfd >= 0, "cannot take the restarted daemon's iommufd: %s", strerror(errno));
	/* Swept at the restart (checked before anything reuses its id). */
	CHECK_EQ(k_nested_alive(kfd, leak), -ENOENT);
	/* mock0 stays on the unclaimed orphan until the grace period ends. */
	CHECK_EQ(iommu_nest_alloc_selftest(a2, "mock0", 0x33, &id3), -EBUSY);
	CHECK_EQ(k_nested_alive(kfd, id2), 0);
	CHECK_EQ(k_nested_alive(kfd, id4), 0);
	/* mock2 is free: its HWPT is gone, and the file's attachment with it. */
	x = alloc_st(a2, "mock2", 0x66, NULL);
	CHECK_EQ(iommu_nest_attach(a2, "mock2", x), 0);
	check_slots(a2, x, 0x66, 0, "x on mock2");
	CHECK_EQ(iommu_nest_detach(a2, "mock2"), 0);
	CHECK_EQ(iommu_nest_destroy(a2, x), 0);

	sleep_ms(2500);
	CHECK_EQ(hwpts_active(a2), 1); /* id1 (reclaimed) */
	CHECK_EQ(iommu_nest_reclaim(a2, id2, tok2), -ENOENT);
	CHECK_EQ(iommu_nest_reclaim(a2, id4, tok4), -ENOENT);
	CHECK(file_has("log", "destroying 2 unclaimed HWPTs"), "no grace expiry logged");
	CHECK(!file_has("log", "destroy orphan hwpt"), "the kernel refused to destroy an orphan");
	/*
	 * Gone from the kernel too (id4 could go: mock1 was put back on its
	 * parent), and so is the orphaned memory on mock0.
	 */
	CHECK_EQ(k_nested_alive(kfd, id2), -ENOENT);
	CHECK_EQ(k_nested_alive(kfd, id4), -ENOENT);
	CHECK_EQ(iommu_nest_map_memory(a2, "mock0", MOCK_IOVA, MEM_LEN, memfd, 0, MAP_RW), 0);
	id3 = alloc_st(a2, "mock0", 0x33, NULL);
	CHECK_EQ(iommu_nest_attach(a2, "mock0", id3), 0);
	check_slots(a2, id3, 0x33, 0, "id3");
	close(kfd);
	kfd = -1;
	iommu_nest_close(a2);
	close(memfd);
	clean_stop(fake);
	return;
out_fail:
	failures++;
	if (kfd >= 0)
		close(kfd);
	close(memfd);
	kill(fake, SIGTERM);
	wait_exit(fake);
}

/* ---- orphans the reaper cannot release ------------------------------------------ */

/* Lines of DIR/name that contain every needle (NULL-terminated). */
static int lines_with(const char *name, const char *const *needles)
{
	char path[128], line[4096];
	int n = 0;
	FILE *f;

	path_of(path, sizeof(path), name);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		size_t i = 0;

		while (needles[i] && strstr(line, needles[i]))
			i++;
		n += !needles[i];
	}
	fclose(f);
	return n;
}

#define LINES(name, ...) lines_with((name), (const char *const[]){__VA_ARGS__, NULL})

static bool wait_lines(const char *name, const char *const *needles)
{
	for (int i = 0; i < polls(); i++) {
		if (lines_with(name, needles))
			return true;
		sleep_ms(50);
	}
	return false;
}

#define WAIT_LINES(name, ...) wait_lines((name), (const char *const[]){__VA_ARGS__, NULL})

static char *read_all(const char *path, size_t *len)
{
	char *buf = NULL;
	long n;
	FILE *f = fopen(path, "r");

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) ||
	    !(buf = malloc((size_t)n + 1)) || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		fclose(f);
		return NULL;
	}
	fclose(f);
	buf[n] = '\0';
	*len = (size_t)n;
	return buf;
}

/* The element of the array section (of root) whose field is the string key. */
static struct json_object *element(struct json_object *root, const char *outer, const char *section,
				   const char *field, const char *key)
{
	struct json_object *o = root, *arr, *k;

	if (outer && !json_object_object_get_ex(root, outer, &o))
		return NULL;
	if (!json_object_object_get_ex(o, section, &arr) ||
	    !json_object_is_type(arr, json_type_array))
		return NULL;
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		struct json_object *e = json_object_array_get_idx(arr, i);

		if (json_object_object_get_ex(e, field, &k) &&
		    !strcmp(json_object_get_string(k), key))
			return e;
	}
	return NULL;
}

/*
 * While the daemon is down (its restart held), makes the next instance's
 * registry and the sim's model disagree on device dev, the way a daemon
 * would have recorded it: two records appended to the journal that
 * continues the snapshot. The registry forgets the attachment (so the
 * reaper's destroy meets a device still on the HWPT: -EBUSY) and the
 * model forgets the guest memory (so the reaper's unmap finds none:
 * -ENOENT). The device's current model comes from the snapshot with the
 * journal replayed by the daemon's own replay. Returns the number of
 * records in the journal now, or -1.
 */
static long break_state(const char *dev, uint32_t hwpt)
{
	char state[128], journal[160];
	struct json_object *root, *recs, *elems, *d, *cur;
	const char *why = NULL;
	uint64_t epoch = 0;
	long n, rc = -1;
	size_t len = 0;
	char *text;
	FILE *f;

	path_of(state, sizeof(state), "state");
	snprintf(journal, sizeof(journal), "%s.journal", state);
	root = json_object_from_file(state);
	text = read_all(journal, &len);
	CHECK(root && text, "no snapshot or no journal");
	if (!root || !text)
		goto out;
	CHECK(json_object_object_get_ex(root, JOURNAL_EPOCH_KEY, &cur), "snapshot without epoch");
	epoch = json_object_get_uint64(cur);
	n = journal_replay(root, text, len, epoch, &why);
	CHECK(n >= 0 && !why, "journal replay: %ld %s", n, why ? why : "");
	/* What there is to break: dev attached, its memory in the model. */
	d = element(root, "backend_state", "devices", "name", dev);
	/* One IOAS area: iova, last, flags. */
	CHECK(d && json_object_object_get_ex(d, "maps", &cur) && json_object_array_length(cur) == 3,
	      "no guest memory on %s in the model", dev);
	CHECK(d && json_object_object_get_ex(d, "attached_id", &cur) &&
		  json_object_get_uint64(cur) == hwpt,
	      "%s is not on hwpt %u in the model", dev, hwpt);
	CHECK(element(root, NULL, "attachments", "device", dev), "%s not attached", dev);
	CHECK(element(root, NULL, "mappings", "device", dev), "no mapping of %s", dev);
	if (n < 0 || why || !d)
		goto out;
	/* The model's device as it is now, without its memory. */
	d = json_object_get(d);
	json_object_object_add(d, "maps", json_object_new_array());
	elems = json_object_new_array();
	json_object_array_add(elems, d);
	recs = json_object_new_array();
	CHECK_EQ(journal_rec_replace(recs, "backend_state.devices", "name",
				     json_object_new_string(dev), elems),
		 0);
	CHECK_EQ(journal_rec_replace(recs, "attachments", "device", json_object_new_string(dev),
				     json_object_new_array()),
		 0);
	f = fopen(journal, "a");
	CHECK(f, "%s: %s", journal, strerror(errno));
	for (size_t i = 0; f && i < json_object_array_length(recs); i++)
		fprintf(f, "%s\n",
			json_object_to_json_string_ext(json_object_array_get_idx(recs, i),
						       JSON_C_TO_STRING_PLAIN));
	if (f && !fclose(f))
		rc = n + (long)json_object_array_length(recs);
	json_object_put(recs);
out:
	free(text);
	json_object_put(root);
	return rc;
}

/*
 * An orphan the reaper cannot release, on the sim: guest memory on st0 and
 * a HWPT attached to it; SIGKILL under fake_systemd, whose restart waits
 * while break_state() makes the registry and the model disagree; the new
 * instance takes the anchor from the fd store, replays the journal, and
 * the grace period (1 ms) ends at once: the reaper's detach is skipped
 * (no attachment in the registry), its destroy is -EBUSY (st0 is still on
 * the HWPT in the model) and its unmap is -ENOENT (no memory in the model).
 * Each failure must be a backend_error event, with its operation, object
 * and error, and the daemon must go on and stop cleanly.
 */
static void test_orphan_errors(void)
{
	char hold[128], replayed[96], hwpt[32];
	struct iommu_nest *a, *a2;
	int memfd;
	FILE *g;
	uint32_t id;
	long recs;
	pid_t fake, old;

	if (kernel) {
		skipped = "the sim's model is rewritten in its state file";
		return;
	}
	path_of(hold, sizeof(hold), "go");
	/* The journal it edits is the root mode's (contexts: snapshots only). */
	ctx_mode = MODE_ROOT;
	write_config(1);
	fake = start_fake_systemd_hold("2", hold);
	a = connect_retry("A");
	if (!a)
		goto out_fail;
	memfd = memfd_create("restart-orphan", MFD_CLOEXEC);
	CHECK(memfd >= 0 && !ftruncate(memfd, 1 << 20), "memfd");
	CHECK_EQ(iommu_nest_map_memory(a, "st0", 16 << 20, 1 << 20, memfd, 0,
				       IOMMU_NEST_MAP_READABLE | IOMMU_NEST_MAP_WRITEABLE),
		 0);
	close(memfd);
	id = alloc_st(a, "st0", 1, NULL);
	CHECK_EQ(iommu_nest_attach(a, "st0", id), 0);
	CHECK(wait_for("fake.log", "STORE sim"), "the sim anchor never reached the fd store");
	old = read_pidfile();
	CHECK(old > 0, "no daemon pid");
	if (old <= 0)
		goto out_fail;
	kill(old, SIGKILL);
	iommu_nest_close(a);
	CHECK(wait_for("fake.log", "HOLD "), "fake_systemd did not hold the restart");
	CHECK(!file_has("fake.log", "START 2 "), "restarted before the state was rewritten");
	recs = break_state("st0", id);
	if (recs < 0)
		goto out_fail;
	g = fopen(hold, "w"); /* lets the restart go */
	CHECK(g && !fclose(g), "%s: %s", hold, strerror(errno));
	CHECK(wait_for("fake.log", "START 2 "), "no second start");
	CHECK(file_has("fake.log", "iommu-nestd.socket,sim"),
	      "the second start did not get the stored anchor");
	a2 = connect_retry("A2");
	if (!a2)
		goto out_fail;
	CHECK(file_has("log", "took \"sim\""), "the daemon did not take the stored anchor");
	snprintf(replayed, sizeof(replayed), "replayed %ld journal records", recs);
	CHECK(file_has("log", replayed), "not all %ld journal records were replayed", recs);
	snprintf(hwpt, sizeof(hwpt), " hwpt=%u ", id);
	CHECK(WAIT_LINES("log", "<3>event=backend_error ", "op=destroy "),
	      "no backend_error event for the destroy");
	CHECK_EQ(LINES("log", "<3>event=backend_error ", "op=destroy ", hwpt, "error=-16 "), 1);
	CHECK(WAIT_LINES("log", "<3>event=backend_error ", "op=unmap "),
	      "no backend_error event for the unmap");
	CHECK_EQ(LINES("log", "<3>event=backend_error ", "op=unmap ", "device=st0 ",
		       "iova=0x1000000 ", "length=0x100000 ", "error=-2 "),
		 1);
	/* The registry let go of both; nothing else went wrong. */
	CHECK_EQ(LINES("log", "event=backend_error "), 2);
	CHECK_EQ(hwpts_active(a2), 0);
	iommu_nest_close(a2);
	clean_stop(fake);
	return;
out_fail:
	give_up(fake);
}

static void run_crash(void)
{
	/* Two clients on one device, and the root's model: the root mode's. */
	ctx_mode = MODE_ROOT;
	if (kernel)
		test_crash_kernel();
	else
		test_crash();
}

static void run_grace(void)
{
	if (kernel) {
		/* It edits the root iommufd's objects behind the daemon's back. */
		ctx_mode = MODE_ROOT;
		test_grace_kernel();
	} else {
		/* Holds in either mode: the default's, or the root's with $NESTD_VM_CONTEXTS=0. */
		test_grace();
	}
}

static void dump_logs(void)
{
	const char *names[] = {"log", "fake.log"};

	for (size_t i = 0; i < 2; i++) {
		char path[128], line[1024];
		FILE *f;

		path_of(path, sizeof(path), names[i]);
		f = fopen(path, "r");
		if (!f)
			continue;
		fprintf(stderr, "--- %s\n", path);
		while (fgets(line, sizeof(line), f))
			fputs(line, stderr);
		fclose(f);
	}
}

static void cleanup_dir(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	(void)!system(cmd);
}

/* fake_systemd next to this binary (the kernel tier packs them together). */
static const char *fake_next_to_self(void)
{
	static char path[4096];
	ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - sizeof("fake_systemd"));
	char *slash;

	if (n <= 0)
		return "fake_systemd";
	path[n] = '\0';
	slash = strrchr(path, '/');
	if (!slash)
		return "fake_systemd";
	strcpy(slash + 1, "fake_systemd");
	return path;
}

/* ---- VM contexts: each client's own instance survives the restart ------------ */

/*
 * The per-context model a client's HWPT id shows: the sim's model IOTLB
 * (pages [0, 1024) populated, [0, cut) invalidated), the kernel's mock
 * IOTLB (val in every slot but those of mask).
 */
struct ctx_client {
	const char *dev;
	uint32_t id, val;
	unsigned cut; /* sim: pages invalidated; kernel: slots invalidated (mask) */
	uint8_t tok[16];
};

static void ctx_setup(struct iommu_nest *h, struct ctx_client *c, int memfd)
{
	CHECK_EQ(iommu_nest_map_memory(h, c->dev, MOCK_IOVA, MEM_LEN, memfd, 0, MAP_RW), 0);
	if (kernel) {
		c->id = alloc_st(h, c->dev, c->val, c->tok);
		CHECK_EQ(iommu_nest_attach(h, c->dev, c->id), 0);
		inv_slots(h, c->id, c->cut);
		return;
	}
	c->id = alloc_vtd(h, c->dev, c->tok);
	CHECK_EQ(iommu_nest_attach(h, c->dev, c->id), 0);
	CHECK_EQ(iommu_nest_sim_populate(h, c->id, 0, 1024, IOMMU_NEST_SIM_IOTLB), 0);
	inv_vtd(h, c->id, 0, c->cut, true);
}

/* Exactly the client's own model, not the other context's of the same id. */
static void ctx_check(struct iommu_nest *h, const struct ctx_client *c, const char *what)
{
	if (kernel) {
		check_slots(h, c->id, c->val, c->cut, what);
		return;
	}
	CHECK(iotlb(h, c->id, 0, c->cut) == 0, "%s: [0, %u) cached again", what, c->cut);
	CHECK(iotlb(h, c->id, c->cut, 1024 - c->cut) == 1024 - c->cut, "%s: cached pages lost",
	      what);
}

static pid_t ctx_start(struct iommu_nest **a, struct iommu_nest **b, struct ctx_client *ca,
		       struct ctx_client *cb, int memfd, unsigned grace_ms)
{
	pid_t fake;

	ctx_mode = MODE_CONTEXTS;
	write_config(grace_ms);
	fake = start_fake_systemd();
	*a = connect_retry("A");
	*b = connect_retry("B");
	if (!*a || !*b)
		return fake;
	ctx_setup(*a, ca, memfd);
	ctx_setup(*b, cb, memfd);
	/* Two VM contexts, two id spaces: the same number names two HWPTs. */
	CHECK_EQ(ca->id, cb->id);
	ctx_check(*a, ca, "A before the crash");
	ctx_check(*b, cb, "B before the crash");
	CHECK(wait_for("fake.log", kernel ? "STORE ctx.2.iommufd" : "STORE ctx.2.sim"),
	      "the second context never reached the fd store");
	CHECK(file_has("state", "\"contexts\""), "the state file has no contexts");
	return fake;
}

/*
 * Two clients, each in its own VM context with a HWPT of the same id,
 * guest memory and an attachment; SIGKILL; each reclaims its own context
 * with its token and finds its HWPT, model and memory exactly as before,
 * none of the other's.
 */
static void test_contexts(void)
{
	struct ctx_client ca = {.dev = kernel ? "mock0" : "vtd0",
				.val = 0x1234,
				.cut = kernel ? 1u << 1 | 1u << 3 : 256};
	struct ctx_client cb = {
	    .dev = kernel ? "mock1" : "vtd1", .val = 0xbeef, .cut = kernel ? 1u << 2 : 10};
	int memfd = memfd_create("restart-ctx-ram", MFD_CLOEXEC);
	struct iommu_nest *a = NULL, *b = NULL, *a2, *b2;
	uint8_t wrong[16];
	uint32_t x = 0;
	pid_t fake;

	CHECK(memfd >= 0 && !ftruncate(memfd, (off_t)MEM_LEN), "memfd");
	fake = ctx_start(&a, &b, &ca, &cb, memfd, 30000);
	if (!a || !b)
		goto out_fail;
	/* A second HWPT in A's context that A2 will not reclaim. */
	x = kernel ? alloc_st(a, ca.dev, 0x77, NULL) : alloc_vtd(a, ca.dev, NULL);
	if (!crash_and_restart(2))
		goto out_fail;
	iommu_nest_close(a);
	iommu_nest_close(b);
	a2 = connect_retry("A2");
	b2 = connect_retry("B2");
	if (!a2 || !b2)
		goto out_fail;
	CHECK(file_has("log", kernel ? "took \"ctx.1.iommufd\"" : "took \"ctx.1.sim\""),
	      "the daemon did not take the first context back");
	CHECK(file_has("log", kernel ? "took \"ctx.2.iommufd\"" : "took \"ctx.2.sim\""),
	      "the daemon did not take the second context back");
	CHECK_EQ(hwpts_active(a2), 3);

	memcpy(wrong, ca.tok, 16);
	wrong[0] ^= 0x80;
	CHECK_EQ(iommu_nest_reclaim(a2, ca.id, wrong), -ENOENT);
	/* Orphans (and their contexts' memory) are nobody's before Reclaim. */
	CHECK_EQ(iommu_nest_unmap_memory(a2, ca.dev, MOCK_IOVA, MEM_LEN), -ENOENT);
	CHECK_EQ(iommu_nest_reclaim(a2, ca.id, ca.tok), 0);
	ctx_check(a2, &ca, "A after the restart");
	/* B's context is not A's to take: a session is one VM (one context). */
	CHECK_EQ(iommu_nest_reclaim(a2, cb.id, cb.tok), -EBUSY);
	/* A's is live now: its token serves nobody, B's context waits for B. */
	CHECK_EQ(iommu_nest_reclaim(b2, ca.id, ca.tok), -ENOENT);
	CHECK_EQ(iommu_nest_reclaim(b2, cb.id, cb.tok), 0);
	ctx_check(b2, &cb, "B after the restart");
	ctx_check(a2, &ca, "A after B's reclaim");

	/* The devices stay each one's: attached, the memory there, busy for the other. */
	CHECK_EQ(iommu_nest_alloc_selftest(b2, ca.dev, 2, &x), -EBUSY);
	CHECK_EQ(iommu_nest_unmap_memory(b2, ca.dev, MOCK_IOVA, MEM_LEN), -ENOENT);
	/* A new invalidation acts on A's HWPT only, not on B's of the same id. */
	if (kernel) {
		inv_slots(a2, ca.id, 1u << 0);
		ca.cut |= 1u << 0;
	} else {
		inv_vtd(a2, ca.id, 256, 128, true);
		ca.cut = 384;
	}
	ctx_check(a2, &ca, "A after a new invalidation");
	ctx_check(b2, &cb, "B after A's new invalidation");
	/* The memory was kept in each context's IOAS: it unmaps once, then ENOENT. */
	CHECK_EQ(iommu_nest_unmap_memory(a2, ca.dev, MOCK_IOVA, MEM_LEN), 0);
	CHECK_EQ(iommu_nest_unmap_memory(a2, ca.dev, MOCK_IOVA, MEM_LEN), -ENOENT);
	CHECK_EQ(iommu_nest_unmap_memory(b2, cb.dev, MOCK_IOVA, MEM_LEN), 0);
	CHECK_EQ(iommu_nest_detach(a2, ca.dev), 0);
	CHECK_EQ(iommu_nest_destroy(a2, ca.id), 0);
	ctx_check(b2, &cb, "B after A destroyed its HWPT");
	CHECK_EQ(hwpts_active(b2), 2); /* B's, and A's unreclaimed second one */

	/*
	 * A goes: the HWPT of its context it never reclaimed goes before the
	 * context closes, and its fd store entries go with it.
	 */
	iommu_nest_close(a2);
	CHECK(wait_for("fake.log", kernel ? "REMOVE ctx.1.iommufd" : "REMOVE ctx.1.sim"),
	      "A's context stayed in the fd store");
	CHECK(file_has("log", "destroyed unclaimed hwpt"),
	      "A's unreclaimed HWPT was not destroyed");
	CHECK_EQ(hwpts_active(b2), 1);
	iommu_nest_close(b2);
	clean_stop(fake);
	close(memfd);
	return;
out_fail:
	close(memfd);
	give_up(fake);
}

/* A context nobody reclaims: torn down at the grace period's end, its device free again. */
static void test_contexts_grace(void)
{
	struct ctx_client ca = {
	    .dev = kernel ? "mock0" : "vtd0", .val = 0x1234, .cut = kernel ? 1u << 1 : 16};
	struct ctx_client cb = {
	    .dev = kernel ? "mock1" : "vtd1", .val = 0xbeef, .cut = kernel ? 1u << 2 : 10};
	int memfd = memfd_create("restart-ctx-ram", MFD_CLOEXEC);
	struct iommu_nest *a = NULL, *b = NULL, *a2;
	uint32_t x;
	pid_t fake;

	CHECK(memfd >= 0 && !ftruncate(memfd, (off_t)MEM_LEN), "memfd");
	fake = ctx_start(&a, &b, &ca, &cb, memfd, 1500);
	if (!a || !b || !crash_and_restart(2))
		goto out_fail;
	iommu_nest_close(a);
	iommu_nest_close(b);
	a2 = connect_retry("A2");
	if (!a2)
		goto out_fail;
	CHECK_EQ(iommu_nest_reclaim(a2, ca.id, ca.tok), 0);
	/* B's device is in B's orphaned context until the grace period ends. */
	if (!kernel)
		CHECK_EQ(iommu_nest_alloc_vtd_s1(a2, cb.dev, 0, 0x100000, AW, &x), -EBUSY);
	for (int i = 0; i < polls() && !file_has("log", "closing unclaimed VM context"); i++)
		sleep_ms(50);
	CHECK(file_has("log", "closing unclaimed VM context 2"), "B's context was not closed");
	CHECK(wait_for("fake.log", kernel ? "REMOVE ctx.2.iommufd" : "REMOVE ctx.2.sim"),
	      "B's context stayed in the fd store");
	CHECK_EQ(hwpts_active(a2), 1);
	CHECK_EQ(iommu_nest_reclaim(a2, cb.id, cb.tok), -ENOENT);
	ctx_check(a2, &ca, "A after B's context went");
	/* B's device joins A's context now, with nothing of B's left on it. */
	x = kernel ? alloc_st(a2, cb.dev, 7, NULL) : alloc_vtd(a2, cb.dev, NULL);
	CHECK_EQ(iommu_nest_attach(a2, cb.dev, x), 0);
	CHECK_EQ(iommu_nest_map_memory(a2, cb.dev, MOCK_IOVA + MEM_LEN, MEM_LEN, memfd, 0, MAP_RW),
		 0);
	iommu_nest_close(a2);
	clean_stop(fake);
	close(memfd);
	return;
out_fail:
	close(memfd);
	give_up(fake);
}

/*
 * A saved context the restarted daemon cannot reopen (its entry in the
 * state file no longer says what its IOAS was): its HWPTs and memory are
 * lost, and the VT-d device the root had lent it must come back to the
 * root rather than stay lent to nothing: a new client gets it, attaches
 * and maps, and the context's fd store entry goes. Sim only (the kernel's
 * mock devices are not lent, each context makes its own).
 */
static void test_contexts_lost(void)
{
	struct ctx_client ca = {.dev = "vtd0", .cut = 16};
	struct json_object *root = NULL, *arr, *bs;
	int memfd = memfd_create("restart-ctx-lost", MFD_CLOEXEC);
	struct iommu_nest *a, *a2;
	char hold[128], state[128];
	int before = failures;
	pid_t fake, old;
	uint32_t x;
	FILE *g;

	if (kernel) {
		close(memfd);
		skipped = "the kernel's mock devices are not lent to contexts";
		return;
	}
	CHECK(memfd >= 0 && !ftruncate(memfd, (off_t)MEM_LEN), "memfd");
	path_of(hold, sizeof(hold), "go");
	path_of(state, sizeof(state), "state");
	ctx_mode = MODE_CONTEXTS;
	write_config(1500);
	fake = start_fake_systemd_hold("2", hold);
	a = connect_retry("A");
	if (!a)
		goto out_fail;
	ctx_setup(a, &ca, memfd);
	CHECK(wait_for("fake.log", "STORE ctx.1.sim"), "the context never reached the fd store");
	old = read_pidfile();
	CHECK(old > 0, "no daemon pid");
	if (old <= 0)
		goto out_fail;
	kill(old, SIGKILL);
	iommu_nest_close(a);
	CHECK(wait_for("fake.log", "HOLD "), "fake_systemd did not hold the restart");
	/* What makes the sim's reopen_context refuse it: no IOAS of its own saved. */
	root = json_object_from_file(state);
	CHECK(root && json_object_object_get_ex(root, "contexts", &arr) &&
		  json_object_array_length(arr) == 1 &&
		  json_object_object_get_ex(json_object_array_get_idx(arr, 0), "backend_state",
					    &bs) &&
		  json_object_object_get_ex(bs, "ctx_ioas", NULL),
	      "the state file has no context with its IOAS");
	if (failures != before)
		goto out_fail;
	json_object_object_del(bs, "ctx_ioas");
	CHECK_EQ(json_object_to_file(state, root), 0);
	json_object_put(root);
	root = NULL;
	g = fopen(hold, "w"); /* lets the restart go */
	CHECK(g && !fclose(g), "%s: %s", hold, strerror(errno));
	CHECK(wait_for("fake.log", "START 2 "), "no second start");
	a2 = connect_retry("A2");
	if (!a2)
		goto out_fail;
	CHECK(file_has("log", "VM context 1 (uid "), "the lost context was not reported");
	CHECK(file_has("log", "cannot be recovered"), "the lost context was not reported");
	CHECK(file_has("log", "device vtd0: its VM context is gone; back in the daemon's own"),
	      "vtd0 was not given back to the root");
	CHECK(wait_for("fake.log", "REMOVE ctx.1.sim"), "the lost context stayed in the fd store");
	CHECK_EQ(iommu_nest_reclaim(a2, ca.id, ca.tok), -ENOENT);
	CHECK_EQ(hwpts_active(a2), 0);
	/* The device serves again: a new context takes it from the root. */
	x = alloc_vtd(a2, ca.dev, NULL);
	CHECK_EQ(iommu_nest_attach(a2, ca.dev, x), 0);
	CHECK_EQ(iommu_nest_map_memory(a2, ca.dev, MOCK_IOVA, MEM_LEN, memfd, 0, MAP_RW), 0);
	iommu_nest_close(a2);
	clean_stop(fake);
	close(memfd);
	return;
out_fail:
	if (root)
		json_object_put(root);
	close(memfd);
	give_up(fake);
}

/*
 * orphan-errors for a VM context: while the restart is held, the snapshot
 * (with contexts there is no journal) is rewritten so that the registry
 * forgets st0's attachment (the reaper's destroy meets a device still on
 * the HWPT in the context's model: -EBUSY) and the context's model forgets
 * the memory in its IOAS (st0's unmap: -ENOENT). At the grace period's end both must
 * be backend_error events, and the context is closed all the same.
 */
static void test_contexts_orphan_errors(void)
{
	struct json_object *root = NULL, *arr, *ctx, *bs = NULL, *ioas = NULL;
	struct iommu_nest *a, *a2;
	char hold[128], state[128], hwpt[32];
	int before = failures, memfd;
	pid_t fake, old;
	uint32_t id;
	FILE *g;

	if (kernel) {
		skipped = "the sim's model is rewritten in its state file";
		return;
	}
	path_of(hold, sizeof(hold), "go");
	path_of(state, sizeof(state), "state");
	ctx_mode = MODE_CONTEXTS;
	write_config(1);
	fake = start_fake_systemd_hold("2", hold);
	a = connect_retry("A");
	if (!a)
		goto out_fail;
	memfd = memfd_create("restart-ctx-orphan", MFD_CLOEXEC);
	CHECK(memfd >= 0 && !ftruncate(memfd, 1 << 20), "memfd");
	CHECK_EQ(iommu_nest_map_memory(a, "st0", 16 << 20, 1 << 20, memfd, 0, MAP_RW), 0);
	close(memfd);
	id = alloc_st(a, "st0", 1, NULL);
	CHECK_EQ(iommu_nest_attach(a, "st0", id), 0);
	CHECK(wait_for("fake.log", "STORE ctx.1.sim"), "the context never reached the fd store");
	old = read_pidfile();
	CHECK(old > 0, "no daemon pid");
	if (old <= 0)
		goto out_fail;
	kill(old, SIGKILL);
	iommu_nest_close(a);
	CHECK(wait_for("fake.log", "HOLD "), "fake_systemd did not hold the restart");
	root = json_object_from_file(state);
	ctx = root && json_object_object_get_ex(root, "contexts", &arr) &&
		      json_object_array_length(arr) == 1
		  ? json_object_array_get_idx(arr, 0)
		  : NULL;
	/* The context's one IOAS holds its memory, whichever device mapped it. */
	CHECK(ctx && json_object_object_get_ex(ctx, "backend_state", &bs) &&
		  json_object_object_get_ex(bs, "ctx_ioas", &ioas) &&
		  json_object_object_get_ex(ioas, "maps", NULL),
	      "no IOAS in the context's model");
	CHECK(element(root, NULL, "attachments", "device", "st0"), "st0 not attached");
	CHECK(element(root, NULL, "mappings", "device", "st0"), "no mapping of st0");
	if (failures != before)
		goto out_fail;
	json_object_object_add(ioas, "maps", json_object_new_array());
	json_object_object_add(root, "attachments", json_object_new_array());
	CHECK_EQ(json_object_to_file(state, root), 0);
	json_object_put(root);
	root = NULL;
	g = fopen(hold, "w"); /* lets the restart go */
	CHECK(g && !fclose(g), "%s: %s", hold, strerror(errno));
	CHECK(wait_for("fake.log", "START 2 "), "no second start");
	a2 = connect_retry("A2");
	if (!a2)
		goto out_fail;
	snprintf(hwpt, sizeof(hwpt), " hwpt=%u ", id);
	CHECK(WAIT_LINES("log", "<3>event=backend_error ", "op=destroy "),
	      "no backend_error event for the destroy");
	CHECK_EQ(LINES("log", "<3>event=backend_error ", "op=destroy ", hwpt, "error=-16 "), 1);
	CHECK(WAIT_LINES("log", "<3>event=backend_error ", "op=unmap "),
	      "no backend_error event for the unmap");
	CHECK_EQ(LINES("log", "<3>event=backend_error ", "op=unmap ", "device=st0 ",
		       "iova=0x1000000 ", "length=0x100000 ", "error=-2 "),
		 1);
	CHECK_EQ(LINES("log", "event=backend_error "), 2);
	for (int i = 0; i < polls() && !file_has("log", "closing unclaimed VM context 1"); i++)
		sleep_ms(50);
	CHECK(file_has("log", "closing unclaimed VM context 1"), "the context was not closed");
	CHECK_EQ(hwpts_active(a2), 0);
	iommu_nest_close(a2);
	clean_stop(fake);
	return;
out_fail:
	if (root)
		json_object_put(root);
	give_up(fake);
}

/* ---- fault queues across a restart --------------------------------------- */

/* The fault events a client was sent, by cookie (the replayed ones count again). */
struct faults_seen {
	uint32_t n;
	struct iommu_nest_page_fault f[8];
};

static void on_fault(struct iommu_nest *h, const struct iommu_nest_event *ev, void *arg)
{
	struct faults_seen *s = arg;

	(void)h;
	if (ev->kind == IOMMU_NEST_EVENT_FAULT && s->n < 8)
		s->f[s->n++] = ev->fault;
}

/* Waits for n events in all (bounded by polls, never by a clock). */
static bool wait_faults(struct iommu_nest *h, struct faults_seen *s, uint32_t n)
{
	struct pollfd p = {.fd = iommu_nest_fd(h), .events = POLLIN};

	for (int i = 0; i < polls() && s->n < n; i++) {
		if (poll(&p, 1, 50) == 1 && iommu_nest_process(h) < 0)
			return false;
	}
	return s->n >= n;
}

static int trigger_grp(struct iommu_nest *h, const char *dev, uint32_t grpid)
{
	struct iommu_nest_iopf t = {.pasid = 1, .grpid = grpid, .perm = 1, .addr = 0x10000};

	return iommu_nest_trigger_iopf(h, dev, &t, 1);
}

static int answer(struct iommu_nest *h, uint32_t hwpt, const struct iommu_nest_page_fault *f,
		  uint32_t code)
{
	struct iommu_nest_page_response r = {.grpid = f->grpid, .cookie = f->cookie, .code = code};

	return iommu_nest_page_response(h, hwpt, NULL, &r);
}

/* The one of s's faults with grpid, or NULL. */
static const struct iommu_nest_page_fault *fault_of(const struct faults_seen *s, uint32_t grpid)
{
	for (uint32_t i = 0; i < s->n; i++)
		if (s->f[i].grpid == grpid)
			return &s->f[i];
	return NULL;
}

/*
 * A fault-capable HWPT with two groups delivered and not answered; SIGKILL;
 * the owner reclaims the HWPT, is sent both groups again (same cookies),
 * answers them, and the kernel (the sim) has them answered: the next group
 * takes the lowest cookie again. The fault fd went through the fd store.
 */
static void test_faults(void)
{
	const char *dev = kernel ? "mock0" : "st0";
	struct faults_seen sa = {0}, sb = {0};
	const struct iommu_nest_page_fault *g5, *g6;
	struct iommu_nest *a, *a2;
	uint32_t id = 0, low;
	uint8_t tok[16];
	pid_t fake;

	write_config(30000);
	fake = start_fake_systemd();
	a = connect_retry("A");
	if (!a)
		goto out_fail;
	CHECK_EQ(iommu_nest_set_event_handler(a, on_fault, &sa), 0);
	CHECK_EQ(iommu_nest_alloc(a, dev, IOMMU_NEST_HWPT_DATA_SELFTEST, IOMMU_NEST_ALLOC_FAULT,
				  IOMMU_NEST_HWPT_DATA_SELFTEST, &(uint32_t){0}, sizeof(uint32_t),
				  &id),
		 0);
	CHECK_EQ(iommu_nest_last_resume_token(a, tok), 0);
	CHECK_EQ(iommu_nest_attach(a, dev, id), 0);
	CHECK_EQ(trigger_grp(a, dev, 5), 0);
	CHECK_EQ(trigger_grp(a, dev, 6), 0);
	CHECK(wait_faults(a, &sa, 2), "the two faults never arrived (%u)", sa.n);
	CHECK(file_has("state", "\"faults\""), "the state file has no fault queue");
	CHECK(wait_for("fake.log", "STORE fault.1"), "the fault fd never reached the fd store");
	if (!crash_and_restart(2))
		goto out_fail;
	iommu_nest_close(a);
	a2 = connect_retry("A2");
	if (!a2)
		goto out_fail;
	CHECK(file_has("log", "took \"fault.1\""), "the daemon did not take the fault fd back");
	CHECK_EQ(iommu_nest_set_event_handler(a2, on_fault, &sb), 0);
	CHECK_EQ(iommu_nest_reclaim(a2, id, tok), 0);
	/* The unanswered groups are sent again, with the cookies they had. */
	CHECK(wait_faults(a2, &sb, 2), "the unanswered faults were not sent again (%u)", sb.n);
	g5 = fault_of(&sb, 5);
	g6 = fault_of(&sb, 6);
	CHECK(g5 && fault_of(&sa, 5) && g5->cookie == fault_of(&sa, 5)->cookie,
	      "group 5 came back with another cookie");
	CHECK(g6 && fault_of(&sa, 6) && g6->cookie == fault_of(&sa, 6)->cookie,
	      "group 6 came back with another cookie");
	if (!g5 || !g6)
		goto out_close;
	CHECK_EQ(g5->hwpt_id, id);
	CHECK(!strcmp(g5->device, dev), "group 5 on %s, not %s", g5->device, dev);
	/* Answered through the kept fault fd: the kernel takes them, once. */
	CHECK_EQ(answer(a2, id, g5, IOMMU_NEST_PAGE_RESP_SUCCESS), 0);
	CHECK_EQ(answer(a2, id, g5, IOMMU_NEST_PAGE_RESP_SUCCESS), -ENOENT);
	CHECK_EQ(answer(a2, id, g6, IOMMU_NEST_PAGE_RESP_INVALID), 0);
	/* Both cookies free again in the kernel: a new group gets the lowest of them. */
	low = g5->cookie < g6->cookie ? g5->cookie : g6->cookie;
	CHECK_EQ(trigger_grp(a2, dev, 7), 0);
	CHECK(wait_faults(a2, &sb, 3), "a fault after the restart never arrived");
	CHECK(fault_of(&sb, 7) && fault_of(&sb, 7)->cookie == low,
	      "the kernel did not free the answered cookies");
	if (fault_of(&sb, 7))
		CHECK_EQ(answer(a2, id, fault_of(&sb, 7), IOMMU_NEST_PAGE_RESP_SUCCESS), 0);
	CHECK_EQ(iommu_nest_detach(a2, dev), 0);
	CHECK_EQ(iommu_nest_destroy(a2, id), 0);
out_close:
	iommu_nest_close(a2);
	CHECK(wait_for("fake.log", "REMOVE fault.1"), "the closed queue stayed in the fd store");
	/* Released from the store before its destroy: the store's copy would make it EBUSY. */
	CHECK(wait_for("log", "client disconnected"), "A2's disconnect was not logged");
	CHECK(!file_has("log", ": IOMMU_DESTROY: "), "the closed fault queue could not be destroyed");
	clean_stop(fake);
	return;
out_fail:
	give_up(fake);
}

/* A fault queue nobody reclaims: closed after its HWPT at the grace period's end. */
static void test_faults_grace(void)
{
	const char *dev = kernel ? "mock0" : "st0";
	struct faults_seen sa = {0};
	struct iommu_nest *a, *a2;
	uint32_t id = 0, x = 0;
	pid_t fake;

	write_config(1500);
	fake = start_fake_systemd();
	a = connect_retry("A");
	if (!a)
		goto out_fail;
	CHECK_EQ(iommu_nest_set_event_handler(a, on_fault, &sa), 0);
	CHECK_EQ(iommu_nest_alloc(a, dev, IOMMU_NEST_HWPT_DATA_SELFTEST, IOMMU_NEST_ALLOC_FAULT,
				  IOMMU_NEST_HWPT_DATA_SELFTEST, &(uint32_t){0}, sizeof(uint32_t),
				  &id),
		 0);
	CHECK_EQ(iommu_nest_attach(a, dev, id), 0);
	CHECK_EQ(trigger_grp(a, dev, 5), 0);
	CHECK(wait_faults(a, &sa, 1), "the fault never arrived");
	if (!crash_and_restart(2))
		goto out_fail;
	iommu_nest_close(a);
	a2 = connect_retry("A2");
	if (!a2)
		goto out_fail;
	CHECK(wait_for("log", "closing unclaimed fault queue 1"),
	      "the orphaned queue was not closed");
	CHECK(wait_for("fake.log", "REMOVE fault.1"), "the orphaned queue stayed in the fd store");
	/* The device is free again, for a new fault-capable HWPT and its own queue. */
	CHECK_EQ(iommu_nest_alloc(a2, dev, IOMMU_NEST_HWPT_DATA_SELFTEST, IOMMU_NEST_ALLOC_FAULT,
				  IOMMU_NEST_HWPT_DATA_SELFTEST, &(uint32_t){0}, sizeof(uint32_t),
				  &x),
		 0);
	CHECK_EQ(iommu_nest_attach(a2, dev, x), 0);
	iommu_nest_close(a2);
	clean_stop(fake);
	return;
out_fail:
	give_up(fake);
}

/* ---- vIOMMU and vDEVICE objects (7.x) ----------------------------------------- */

#define ST_INV IOMMU_NEST_VIOMMU_INV_DATA_SELFTEST

struct vclient {
	const char *dev, *dev2; /* the vIOMMU's device, a second vIOMMU's (nothing on it) */
	uint32_t vi, vd, hwpt, vi2;
	uint8_t tok[16];
};

/*
 * A's objects: vIOMMU vi on dev with vDEVICE vd (virt_id 0x10) and a
 * nested HWPT on vi, attached to dev through vd; vi2 on dev2, nothing on
 * it (so nothing but the state file keeps the restart's sweep off it).
 * 0, or -ENOTTY: no vIOMMU in this kernel.
 */
static int vsetup(struct iommu_nest *a, struct vclient *c)
{
	uint32_t iotlb = 0x1234;
	int rc = iommu_nest_alloc_viommu(a, c->dev, IOMMU_NEST_VIOMMU_TYPE_SELFTEST, 0, &c->vi);

	if (rc == -ENOTTY)
		return rc;
	CHECK_EQ(rc, 0);
	CHECK_EQ(iommu_nest_alloc_vdevice(a, c->vi, c->dev, 0x10, &c->vd), 0);
	CHECK_EQ(iommu_nest_alloc_on_viommu(a, c->dev, c->vi, IOMMU_NEST_HWPT_DATA_SELFTEST, 0,
					    IOMMU_NEST_HWPT_DATA_SELFTEST, &iotlb, sizeof(iotlb),
					    &c->hwpt),
		 0);
	CHECK_EQ(iommu_nest_last_resume_token(a, c->tok), 0);
	CHECK_EQ(iommu_nest_attach(a, c->dev, c->hwpt), 0);
	CHECK_EQ(iommu_nest_alloc_viommu(a, c->dev2, IOMMU_NEST_VIOMMU_TYPE_SELFTEST, 0, &c->vi2),
		 0);
	return 0;
}

/* The mock vIOMMU's walk: done, a vdev_id no vDEVICE has (-EINVAL, it stops), not attempted. */
static void vinv(struct iommu_nest *h, uint32_t vi, int want_rc, struct iommu_nest_entry_result *r,
		 struct iommu_nest_inv_summary *sum)
{
	struct iommu_nest_viommu_selftest_inv e[3] = {{0, 0x10, 1}, {0, 0x99, 0}, {0, 0x10, 2}};

	memset(r, 0, 3 * sizeof(*r));
	memset(sum, 0, sizeof(*sum));
	CHECK_EQ(iommu_nest_invalidate_viommu(h, vi, ST_INV, 0, e, 3, 0, r, sum), want_rc);
}

/* 0 iff id is a vIOMMU in the kernel (the daemon's probe, from outside). */
static int k_is_viommu(int fd, uint32_t id)
{
	struct nestd_hw_queue_alloc cmd = {
	    .size = sizeof(cmd), .viommu_id = id, .type = 0x7fffffffu, .length = 4096};

	return ioctl(fd, NESTD_IOMMU_HW_QUEUE_ALLOC, &cmd) ? (errno == EOPNOTSUPP ? 0 : -errno)
							   : -EEXIST;
}

static int k_viommu_alloc(int fd, uint32_t dev_id, uint32_t parent, uint32_t *id)
{
	struct nestd_viommu_alloc cmd = {.size = sizeof(cmd),
					 .type = NESTD_VIOMMU_TYPE_SELFTEST,
					 .dev_id = dev_id,
					 .hwpt_id = parent};

	if (ioctl(fd, NESTD_IOMMU_VIOMMU_ALLOC, &cmd))
		return -errno;
	*id = cmd.out_viommu_id;
	return 0;
}

/*
 * Behind the daemon's back, as if it had crashed after IOMMU_VIOMMU_ALLOC
 * and before the state file recorded it: a vIOMMU on dev's nest parent
 * that only the kernel knows. 0 without one (contexts: whose iommufd?).
 */
static uint32_t lost_viommu(const char *dev)
{
	uint32_t id = 0;
	int kfd;

	if (!kernel || contexts_on())
		return 0;
	kfd = grab_daemon_iommufd();
	CHECK(kfd >= 0, "cannot get the daemon's iommufd");
	if (kfd < 0)
		return 0;
	CHECK_EQ(k_viommu_alloc(kfd, saved_id(dev, "dev_id"), saved_id(dev, "parent_id"), &id), 0);
	close(kfd);
	return id;
}

static pid_t vstart(struct iommu_nest **a, struct iommu_nest **b, struct vclient *c,
		    const char *bdev, uint32_t *bh, uint8_t *btok, unsigned grace_ms)
{
	pid_t fake;

	sim7 = true;
	write_config(grace_ms);
	fake = start_fake_systemd();
	*a = connect_retry("A");
	*b = *a ? connect_retry("B") : NULL;
	if (!*b)
		return fake;
	if (vsetup(*a, c) == -ENOTTY) {
		skipped = "no vIOMMU before 6.13";
		return fake;
	}
	*bh = kernel ? alloc_st(*b, bdev, 0xbeef, btok) : alloc_vtd(*b, bdev, btok);
	CHECK(wait_for("fake.log", kernel ? "STORE iommufd" : "STORE sim"),
	      "the backend's fd never reached the fd store");
	return fake;
}

/*
 * SIGKILL with A's vIOMMU, vDEVICE and nested HWPT on the vIOMMU (and a
 * second, bare vIOMMU) and bystander B's HWPT: A's Reclaim of the HWPT
 * brings the vIOMMUs and the vDEVICE back, an invalidation on the vIOMMU
 * answers entry by entry as before the crash, the destroy rules hold,
 * and B's objects are B's alone.
 */
static void test_viommu(void)
{
	struct vclient c = {.dev = kernel ? "mock0" : "st0", .dev2 = kernel ? "mock2" : "st1"};
	const char *bdev = kernel ? "mock1" : "vtd1";
	struct iommu_nest_entry_result r1[3], r2[3];
	struct iommu_nest_inv_summary s1, s2;
	struct iommu_nest *a, *b, *a2, *b2;
	uint8_t btok[16], bad[16];
	uint32_t bh = 0, x;
	pid_t fake = vstart(&a, &b, &c, bdev, &bh, btok, 60000);

	if (skipped) {
		iommu_nest_close(a);
		iommu_nest_close(b);
		clean_stop(fake);
		return;
	}
	if (!a || !b)
		goto out_fail;
	vinv(a, c.vi, -EINVAL, r1, &s1);
	CHECK_EQ(s1.entries_handled, 1);
	if (!crash_and_restart(2))
		goto out_fail;
	iommu_nest_close(a);
	iommu_nest_close(b);
	a2 = connect_retry("A2");
	b2 = a2 ? connect_retry("B2") : NULL;
	if (!b2)
		goto out_fail;
	CHECK_EQ(hwpts_active(a2), 2);
	/* Orphans name nobody: not A2 before its Reclaim, never B. */
	CHECK_EQ(iommu_nest_destroy_object(a2, IOMMU_NEST_OBJECT_VIOMMU, c.vi2), -ENOENT);
	CHECK_EQ(iommu_nest_reclaim(b2, bh, btok), 0);
	memcpy(bad, c.tok, sizeof(bad));
	bad[0] ^= 1;
	CHECK_EQ(iommu_nest_reclaim(a2, c.hwpt, bad), -ENOENT);
	CHECK_EQ(iommu_nest_destroy_object(b2, IOMMU_NEST_OBJECT_VIOMMU, c.vi), -ENOENT);
	CHECK_EQ(iommu_nest_alloc_viommu(b2, c.dev, IOMMU_NEST_VIOMMU_TYPE_SELFTEST, 0, &x),
		 -EBUSY);
	CHECK_EQ(iommu_nest_reclaim(a2, c.hwpt, c.tok), 0);
	/* The same answer, entry by entry, as before the crash. */
	vinv(a2, c.vi, -EINVAL, r2, &s2);
	CHECK_EQ(s2.entries_handled, s1.entries_handled);
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(r2[i].state, r1[i].state);
		CHECK_EQ(r2[i].error, r1[i].error);
	}
	vinv(b2, c.vi, -ENOENT, r2, &s2);
	/* The destroy rules: the HWPT holds the vIOMMU, the vDEVICE too. */
	CHECK_EQ(iommu_nest_destroy_object(a2, IOMMU_NEST_OBJECT_VIOMMU, c.vi), -EBUSY);
	CHECK_EQ(iommu_nest_destroy(a2, c.hwpt), -EBUSY);
	CHECK_EQ(iommu_nest_detach(a2, c.dev), 0);
	CHECK_EQ(iommu_nest_destroy(a2, c.hwpt), 0);
	CHECK_EQ(iommu_nest_destroy_object(a2, IOMMU_NEST_OBJECT_VIOMMU, c.vi), -EBUSY);
	CHECK_EQ(iommu_nest_destroy_object(a2, IOMMU_NEST_OBJECT_VDEVICE, c.vd), 0);
	CHECK_EQ(iommu_nest_destroy_object(a2, IOMMU_NEST_OBJECT_VIOMMU, c.vi), 0);
	/* The bare one survived the restart's sweep: it takes a vDEVICE, then goes. */
	CHECK_EQ(iommu_nest_alloc_vdevice(a2, c.vi2, c.dev2, 0x20, &x), 0);
	CHECK_EQ(iommu_nest_destroy_object(a2, IOMMU_NEST_OBJECT_VIOMMU, c.vi2), -EBUSY);
	CHECK_EQ(iommu_nest_destroy_object(a2, IOMMU_NEST_OBJECT_VDEVICE, x), 0);
	CHECK_EQ(iommu_nest_destroy_object(a2, IOMMU_NEST_OBJECT_VIOMMU, c.vi2), 0);
	/* B's HWPT is untouched, and B's. */
	CHECK_EQ(iommu_nest_attach(b2, bdev, bh), 0);
	CHECK_EQ(iommu_nest_detach(b2, bdev), 0);
	CHECK_EQ(iommu_nest_destroy(b2, bh), 0);
	CHECK_EQ(hwpts_active(a2), 0);
	iommu_nest_close(a2);
	iommu_nest_close(b2);
	clean_stop(fake);
	return;
out_fail:
	give_up(fake);
}

/*
 * Nobody reclaims A's objects: the grace period destroys them in the
 * kernel's order (HWPT, vDEVICE, vIOMMUs) and the device is free again.
 * On the kernel, a vIOMMU the daemon "crashed" before recording is swept
 * at the restart while the recorded ones stay, and after the grace
 * period none of A's kernel ids is alive.
 */
static void test_viommu_grace(void)
{
	struct vclient c = {.dev = kernel ? "mock0" : "st0", .dev2 = kernel ? "mock2" : "st1"};
	const char *bdev = kernel ? "mock1" : "vtd1";
	struct iommu_nest *a, *b, *b2;
	uint32_t bh = 0, lost, x, xd;
	uint8_t btok[16];
	int kfd;
	pid_t fake = vstart(&a, &b, &c, bdev, &bh, btok, 1500);

	if (skipped) {
		iommu_nest_close(a);
		iommu_nest_close(b);
		clean_stop(fake);
		return;
	}
	if (!a || !b)
		goto out_fail;
	lost = lost_viommu(c.dev2);
	if (!crash_and_restart(2))
		goto out_fail;
	iommu_nest_close(a);
	iommu_nest_close(b);
	b2 = connect_retry("B2");
	if (!b2)
		goto out_fail;
	CHECK_EQ(iommu_nest_reclaim(b2, bh, btok), 0);
	if (lost) {
		kfd = grab_daemon_iommufd();
		CHECK(kfd >= 0, "cannot get the daemon's iommufd");
		CHECK_EQ(k_is_viommu(kfd, lost), -ENOENT);
		CHECK_EQ(k_is_viommu(kfd, c.vi), 0);
		CHECK_EQ(k_is_viommu(kfd, c.vi2), 0); /* nothing on it, and not swept */
		close(kfd);
	}
	/* A's orphans hold A's devices until the grace period ends. */
	CHECK_EQ(iommu_nest_alloc_viommu(b2, c.dev, IOMMU_NEST_VIOMMU_TYPE_SELFTEST, 0, &x),
		 -EBUSY);
	for (int i = 0; i < polls() && !file_has("log", "destroyed unclaimed viommu"); i++)
		sleep_ms(50);
	CHECK(wait_for("log", "vIOMMU/vDEVICE objects"), "no grace expiry logged");
	CHECK(wait_for("log", "destroyed unclaimed vdevice"), "the vDEVICE was not destroyed");
	CHECK(wait_for("log", "destroyed unclaimed viommu"), "the vIOMMUs were not destroyed");
	CHECK(!file_has("log", "destroy orphan"), "an orphan's destroy failed (the order?)");
	CHECK_EQ(hwpts_active(b2), 1);
	if (kernel && !contexts_on()) {
		kfd = grab_daemon_iommufd();
		CHECK(kfd >= 0, "cannot get the daemon's iommufd");
		/* Gone from the kernel: the HWPT, the vIOMMUs (destroying the vDEVICE's id fails
		 * too). */
		CHECK_EQ(k_nested_alive(kfd, c.hwpt), -ENOENT);
		CHECK_EQ(k_is_viommu(kfd, c.vi), -ENOENT);
		CHECK_EQ(k_is_viommu(kfd, c.vi2), -ENOENT);
		CHECK_EQ(k_destroy(kfd, c.vd), -ENOENT);
		close(kfd);
	}
	/* The device is free: a vDEVICE on it again (the kernel's -EEXIST had A's stayed). */
	CHECK_EQ(iommu_nest_alloc_viommu(b2, c.dev, IOMMU_NEST_VIOMMU_TYPE_SELFTEST, 0, &x), 0);
	CHECK_EQ(iommu_nest_alloc_vdevice(b2, x, c.dev, 0x10, &xd), 0);
	CHECK_EQ(iommu_nest_destroy_object(b2, IOMMU_NEST_OBJECT_VDEVICE, xd), 0);
	CHECK_EQ(iommu_nest_destroy_object(b2, IOMMU_NEST_OBJECT_VIOMMU, x), 0);
	iommu_nest_close(b2);
	clean_stop(fake);
	return;
out_fail:
	give_up(fake);
}

static int k_vdevice_alloc(int fd, uint32_t viommu, uint32_t dev_id, uint64_t virt_id, uint32_t *id)
{
	struct nestd_vdevice_alloc cmd = {
	    .size = sizeof(cmd), .viommu_id = viommu, .dev_id = dev_id, .virt_id = virt_id};

	if (ioctl(fd, NESTD_IOMMU_VDEVICE_ALLOC, &cmd))
		return -errno;
	*id = cmd.out_vdevice_id;
	return 0;
}

/*
 * While the daemon is down: the state file as a daemon writes it just
 * before IOMMU_VDEVICE_ALLOC, "vdevice_intent" naming the id the vDEVICE
 * will get. The journal is folded into one snapshot without an epoch (a
 * file read as it is).
 */
static bool set_vdevice_intent(uint32_t id)
{
	char state[128], journal[160];
	struct json_object *root, *bs, *cur;
	const char *why = NULL;
	size_t len = 0;
	char *text;
	bool ok = false;

	path_of(state, sizeof(state), "state");
	snprintf(journal, sizeof(journal), "%s.journal", state);
	root = json_object_from_file(state);
	text = read_all(journal, &len);
	CHECK(root, "no snapshot");
	if (!root)
		goto out;
	if (text && json_object_object_get_ex(root, JOURNAL_EPOCH_KEY, &cur))
		CHECK(journal_replay(root, text, len, json_object_get_uint64(cur), &why) >= 0 &&
			  !why,
		      "journal replay: %s", why ? why : "");
	json_object_object_del(root, JOURNAL_EPOCH_KEY);
	CHECK(json_object_object_get_ex(root, "backend_state", &bs), "no backend_state");
	if (!json_object_object_get_ex(root, "backend_state", &bs))
		goto out;
	json_object_object_add(bs, "vdevice_intent", json_object_new_uint64(id));
	ok = json_object_to_file_ext(state, root, JSON_C_TO_STRING_PLAIN) == 0;
	CHECK(ok, "cannot write %s", state);
	unlink(journal);
out:
	free(text);
	json_object_put(root);
	return ok;
}

/*
 * The crash window of AllocVdevice on the real kernel: the vDEVICE made,
 * the daemon dead before the state file recorded it. No ioctl looks a
 * vDEVICE up by id, so the daemon writes the id it will get before the
 * ioctl; the restart destroys the unrecorded vDEVICE of that id, and the
 * owner's AllocVdevice on the device succeeds again (the kernel's one
 * vDEVICE per device: -EEXIST had it stayed). The recorded objects stay.
 */
static void test_viommu_window(void)
{
	struct vclient c = {.dev = "mock0", .dev2 = "mock2"};
	struct iommu_nest *a, *a2;
	char hold[128];
	uint32_t lost = 0, x;
	int kfd;
	FILE *g;
	pid_t fake, old;

	if (!kernel) {
		skipped = "the sim's objects are written with the state file: no window";
		return;
	}
	/* Objects made behind the daemon's back in its own iommufd: the root's. */
	ctx_mode = MODE_ROOT;
	path_of(hold, sizeof(hold), "go");
	write_config(60000);
	fake = start_fake_systemd_hold("2", hold);
	a = connect_retry("A");
	if (!a)
		goto out_fail;
	if (vsetup(a, &c) == -ENOTTY) {
		skipped = "no vIOMMU before 6.13";
		iommu_nest_close(a);
		kill(fake, SIGTERM);
		wait_exit(fake);
		return;
	}
	CHECK(wait_for("fake.log", "STORE iommufd"), "the iommufd never reached the fd store");
	kfd = grab_daemon_iommufd();
	CHECK(kfd >= 0, "cannot get the daemon's iommufd");
	if (kfd < 0)
		goto out_fail;
	CHECK_EQ(k_vdevice_alloc(kfd, c.vi2, saved_id(c.dev2, "dev_id"), 0x30, &lost), 0);
	close(kfd);
	old = read_pidfile();
	CHECK(old > 0, "no daemon pid");
	if (old <= 0)
		goto out_fail;
	kill(old, SIGKILL);
	iommu_nest_close(a);
	CHECK(wait_for("fake.log", "HOLD "), "fake_systemd did not hold the restart");
	if (!set_vdevice_intent(lost))
		goto out_fail;
	g = fopen(hold, "w"); /* lets the restart go */
	CHECK(g && !fclose(g), "%s: %s", hold, strerror(errno));
	CHECK(wait_for("fake.log", "START 2 "), "no second start");
	a2 = connect_retry("A2");
	if (!a2)
		goto out_fail;
	CHECK(file_has("log", "nest parent, 1 unrecorded nested HWPTs, vIOMMUs or vDEVICEs"),
	      "the lost vDEVICE was not swept");
	CHECK_EQ(iommu_nest_reclaim(a2, c.hwpt, c.tok), 0);
	CHECK_EQ(iommu_nest_alloc_vdevice(a2, c.vi2, c.dev2, 0x30, &x), 0);
	CHECK_EQ(iommu_nest_destroy_object(a2, IOMMU_NEST_OBJECT_VDEVICE, x), 0);
	CHECK_EQ(iommu_nest_destroy_object(a2, IOMMU_NEST_OBJECT_VIOMMU, c.vi2), 0);
	/* The recorded vDEVICE is still there, and still holds its vIOMMU. */
	CHECK_EQ(iommu_nest_destroy_object(a2, IOMMU_NEST_OBJECT_VIOMMU, c.vi), -EBUSY);
	CHECK_EQ(iommu_nest_alloc_vdevice(a2, c.vi, c.dev, 0x11, &x), -EEXIST);
	iommu_nest_close(a2);
	clean_stop(fake);
	return;
out_fail:
	give_up(fake);
}

/*
 * Two crashes, one uid: A's vIOMMU and HWPT stay unclaimed through the
 * second instance, where X (the same uid, that instance's first session,
 * as A was in the first) makes its own. After the second crash each
 * Reclaim brings back its own session's vIOMMU only: sessions of two
 * instances never share the state file's key.
 */
static void test_viommu_sessions(void)
{
	const char *adev = kernel ? "mock0" : "st0", *xdev = kernel ? "mock2" : "st1";
	uint32_t avi = 0, xvi = 0, ah = 0, xh = 0, iotlb = 0x1234;
	struct iommu_nest *a, *x, *a3, *x3;
	uint8_t atok[16], xtok[16];
	int rc;
	pid_t fake;

	/* Sessions of one iommufd: with contexts, a context goes whole with its first Reclaim. */
	ctx_mode = MODE_ROOT;
	sim7 = true;
	write_config(60000);
	fake = start_fake_systemd_n("3");
	a = connect_retry("A");
	if (!a)
		goto out_fail;
	rc = iommu_nest_alloc_viommu(a, adev, IOMMU_NEST_VIOMMU_TYPE_SELFTEST, 0, &avi);
	if (rc == -ENOTTY) {
		skipped = "no vIOMMU before 6.13";
		iommu_nest_close(a);
		clean_stop(fake);
		return;
	}
	CHECK_EQ(rc, 0);
	CHECK_EQ(iommu_nest_alloc_on_viommu(a, adev, avi, IOMMU_NEST_HWPT_DATA_SELFTEST, 0,
					    IOMMU_NEST_HWPT_DATA_SELFTEST, &iotlb, sizeof(iotlb),
					    &ah),
		 0);
	CHECK_EQ(iommu_nest_last_resume_token(a, atok), 0);
	CHECK(wait_for("fake.log", kernel ? "STORE iommufd" : "STORE sim"),
	      "the backend's fd never reached the fd store");
	if (!crash_and_restart(2))
		goto out_fail;
	iommu_nest_close(a);
	x = connect_retry("X"); /* session 1 of the second instance, as A was of the first */
	if (!x)
		goto out_fail;
	CHECK_EQ(iommu_nest_alloc_viommu(x, xdev, IOMMU_NEST_VIOMMU_TYPE_SELFTEST, 0, &xvi), 0);
	xh = alloc_st(x, xdev, 0x99, xtok);
	if (!crash_and_restart(3))
		goto out_fail;
	iommu_nest_close(x);
	a3 = connect_retry("A3");
	x3 = a3 ? connect_retry("X3") : NULL;
	if (!x3)
		goto out_fail;
	CHECK_EQ(iommu_nest_reclaim(a3, ah, atok), 0);
	CHECK_EQ(iommu_nest_destroy_object(a3, IOMMU_NEST_OBJECT_VIOMMU, xvi), -ENOENT);
	CHECK_EQ(iommu_nest_destroy_object(a3, IOMMU_NEST_OBJECT_VIOMMU, avi), -EBUSY);
	CHECK_EQ(iommu_nest_reclaim(x3, xh, xtok), 0);
	CHECK_EQ(iommu_nest_destroy_object(x3, IOMMU_NEST_OBJECT_VIOMMU, xvi), 0);
	CHECK_EQ(iommu_nest_destroy(a3, ah), 0);
	CHECK_EQ(iommu_nest_destroy_object(a3, IOMMU_NEST_OBJECT_VIOMMU, avi), 0);
	iommu_nest_close(a3);
	iommu_nest_close(x3);
	clean_stop(fake);
	return;
out_fail:
	give_up(fake);
}

#define SM_ASID 7u
#define SM_BASE 0x40000000ULL
#define SM_VSID 0x8u

static void smmu_cmds(uint64_t *c)
{
	/* TLBI_NH_VA (leaf) of BASE, CFGI_CD of a vSID no vDEVICE has, TLBI_NH_VA of BASE + 1 page.
	 */
	c[0] = htole64(0x12u | (uint64_t)SM_ASID << 48);
	c[1] = htole64(SM_BASE | 1);
	c[2] = htole64(0x05u | (uint64_t)0x99 << 32);
	c[3] = htole64(1);
	c[4] = c[0];
	c[5] = htole64((SM_BASE + PAGE) | 1);
}

static uint64_t smmu_cached(struct iommu_nest *h, uint32_t hwpt, uint64_t page)
{
	uint64_t io = ~0ULL;

	CHECK_EQ(iommu_nest_sim_query_asid(h, hwpt, SM_ASID, SM_BASE + page * PAGE, 1, &io, NULL),
		 0);
	return io;
}

/*
 * The sim's SMMUv3 vIOMMU across a crash: the host SMMU's TLB for its
 * VMID (what the guest cached) is in the saved model, so the guest's
 * commands after the restart meet what they met before: the same
 * entry-by-entry answer (an unknown vSID is -EIO, nothing after it is
 * submitted), the same pages flushed and kept.
 */
static void test_viommu_smmuv3(void)
{
	const uint64_t ste[2] = {1 | 5u << 1 | 0x80000000ULL, 0};
	struct iommu_nest_entry_result r1[3], r2[3];
	struct iommu_nest_inv_summary s1, s2;
	uint32_t vi = 0, vd = 0, hwpt = 0;
	struct iommu_nest *a, *a2;
	uint64_t c[6];
	uint8_t tok[16];
	pid_t fake;

	if (kernel) {
		skipped = "the sim's smmuv3 device only";
		return;
	}
	sim7 = true;
	write_config(60000);
	fake = start_fake_systemd();
	a = connect_retry("A");
	if (!a)
		goto out_fail;
	CHECK_EQ(iommu_nest_alloc_viommu(a, "sm0", IOMMU_NEST_VIOMMU_TYPE_ARM_SMMUV3, 0, &vi), 0);
	CHECK_EQ(iommu_nest_alloc_vdevice(a, vi, "sm0", SM_VSID, &vd), 0);
	CHECK_EQ(iommu_nest_alloc_on_viommu(a, "sm0", vi, IOMMU_NEST_HWPT_DATA_ARM_SMMUV3, 0,
					    IOMMU_NEST_HWPT_DATA_ARM_SMMUV3, ste, sizeof(ste),
					    &hwpt),
		 0);
	CHECK_EQ(iommu_nest_last_resume_token(a, tok), 0);
	CHECK_EQ(iommu_nest_attach(a, "sm0", hwpt), 0);
	CHECK_EQ(iommu_nest_sim_populate_asid(a, hwpt, SM_ASID, SM_BASE, 4, IOMMU_NEST_SIM_IOTLB),
		 0);
	smmu_cmds(c);
	CHECK_EQ(iommu_nest_invalidate_viommu(a, vi, IOMMU_NEST_VIOMMU_INV_DATA_ARM_SMMUV3, 0, c, 3,
					      0, r1, &s1),
		 -EIO);
	CHECK_EQ(s1.entries_handled, 1);
	CHECK(wait_for("fake.log", "STORE sim"), "the sim anchor never reached the fd store");
	if (!crash_and_restart(2))
		goto out_fail;
	iommu_nest_close(a);
	a2 = connect_retry("A2");
	if (!a2)
		goto out_fail;
	CHECK_EQ(iommu_nest_reclaim(a2, hwpt, tok), 0);
	/* What the guest cached is still cached: page 0 flushed before, 1..3 not. */
	CHECK_EQ(smmu_cached(a2, hwpt, 0), 0);
	CHECK_EQ(smmu_cached(a2, hwpt, 1), 1);
	CHECK_EQ(smmu_cached(a2, hwpt, 3), 1);
	CHECK_EQ(iommu_nest_invalidate_viommu(a2, vi, IOMMU_NEST_VIOMMU_INV_DATA_ARM_SMMUV3, 0, c,
					      3, 0, r2, &s2),
		 -EIO);
	CHECK_EQ(s2.entries_handled, s1.entries_handled);
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(r2[i].state, r1[i].state);
		CHECK_EQ(r2[i].error, r1[i].error);
	}
	CHECK_EQ(smmu_cached(a2, hwpt, 1), 1);
	/* Past the bad one: the vDEVICE table came back too (a known vSID is fine). */
	CHECK_EQ(iommu_nest_invalidate_viommu(a2, vi, IOMMU_NEST_VIOMMU_INV_DATA_ARM_SMMUV3, 0, c,
					      3, IOMMU_NEST_INV_CONTINUE, r2, &s2),
		 -EIO);
	CHECK_EQ(smmu_cached(a2, hwpt, 1), 0);
	CHECK_EQ(smmu_cached(a2, hwpt, 3), 1);
	CHECK_EQ(iommu_nest_destroy_object(a2, IOMMU_NEST_OBJECT_VIOMMU, vi), -EBUSY);
	iommu_nest_close(a2);
	clean_stop(fake);
	return;
out_fail:
	give_up(fake);
}

/* Whether name is one of list's comma-separated names. */
/* ---- vEVENTQs across a restart ------------------------------------------- */

struct vevents_seen {
	uint32_t n;
	struct iommu_nest_vevent v[8];
};

static void on_vevent(struct iommu_nest *h, const struct iommu_nest_event *ev, void *arg)
{
	struct vevents_seen *s = arg;

	(void)h;
	if (ev->kind == IOMMU_NEST_EVENT_VEVENT && s->n < 8)
		s->v[s->n++] = ev->vevent;
}

/* Waits for n vEVENTs in all (bounded by polls, never by a clock). */
static bool wait_vevents(struct iommu_nest *h, struct vevents_seen *s, uint32_t n)
{
	struct pollfd p = {.fd = iommu_nest_fd(h), .events = POLLIN};

	for (int i = 0; i < polls() && s->n < n; i++) {
		if (poll(&p, 1, 50) == 1 && iommu_nest_process(h) < 0)
			return false;
	}
	return s->n >= n;
}

/* A selftest record of vEVENTQ q on vi: the vDEVICE's virt_id (0x10), sequence seq. */
static void check_vevent(const struct iommu_nest_vevent *v, uint32_t q, uint32_t vi, uint32_t seq,
			 bool lost)
{
	uint32_t virt = 0;

	CHECK_EQ(v->veventq_id, q);
	CHECK_EQ(v->viommu_id, vi);
	CHECK_EQ(v->sequence, seq);
	CHECK_EQ(v->flags, lost ? IOMMU_NEST_VEVENT_FLAG_LOST_EVENTS : 0);
	CHECK_EQ(v->data_len, lost ? 0 : 4);
	if (!lost) {
		memcpy(&virt, v->data, sizeof(virt));
		CHECK_EQ(le32toh(virt), 0x10);
	}
}

/*
 * IOMMU_TEST_OP_TRIGGER_VEVENT on the daemon's iommufd, n times: behind
 * its back, so an orphan can be reported to (the daemon's TriggerVevent
 * wants the device free, and the orphans hold it). Only on the root's
 * kernel iommufd: false when the case cannot (the sim, contexts).
 */
static bool k_trigger_vevent(const char *dev, uint32_t n)
{
	struct iommu_test_cmd cmd = {.size = sizeof(cmd),
				     .op = NESTD_TEST_OP_TRIGGER_VEVENT,
				     .trigger_vevent = {.dev_id = saved_id(dev, "dev_id")}};
	int kfd;

	if (!kernel || contexts_on())
		return false;
	kfd = grab_daemon_iommufd();
	CHECK(kfd >= 0, "cannot get the daemon's iommufd");
	for (uint32_t i = 0; kfd >= 0 && i < n; i++)
		CHECK(!ioctl(kfd, IOMMU_TEST_CMD, &cmd), "TRIGGER_VEVENT: %s", strerror(errno));
	if (kfd >= 0)
		close(kfd);
	return kfd >= 0;
}

/* vstart and a selftest vEVENTQ of depth on A's vIOMMU: 0, or skipped (6.12, 6.13). */
static pid_t vqstart(struct iommu_nest **a, struct iommu_nest **b, struct vclient *c,
		     const char *bdev, uint32_t *bh, uint8_t *btok, unsigned grace_ms,
		     uint32_t depth, uint32_t *q)
{
	pid_t fake = vstart(a, b, c, bdev, bh, btok, grace_ms);
	int rc;

	if (skipped || !*a || !*b)
		return fake;
	rc = iommu_nest_alloc_veventq(*a, c->vi, IOMMU_NEST_VEVENTQ_TYPE_SELFTEST, depth, q);
	if (rc == -ENOTTY) {
		skipped = "no vEVENTQ before 6.14";
		return fake;
	}
	CHECK_EQ(rc, 0);
	CHECK(file_has("state", "\"veventqs\""),
	      "AllocVeventq answered before the state file had it");
	CHECK(wait_for("fake.log", "STORE veventq.1"), "the vEVENTQ fd never reached the fd store");
	return fake;
}

/*
 * A's vEVENTQ (depth 2) on its vIOMMU delivered two records; SIGKILL; the
 * vEVENTQ comes back with the vIOMMU in the HWPT's Reclaim. Records the
 * kernel queued while nobody read (on the root's kernel iommufd, triggered
 * behind the daemon before the Reclaim: two, then one past the depth;
 * elsewhere triggered right after it) arrive after it, in order, the
 * kernel's sequence numbers continuing, the overflow as LOST_EVENTS;
 * reading goes on; the vEVENTQ holds the vIOMMU, is A's alone, and
 * destroying it frees it.
 */
static void test_veventq(void)
{
	struct vclient c = {.dev = kernel ? "mock0" : "st0", .dev2 = kernel ? "mock2" : "st1"};
	const char *bdev = kernel ? "mock1" : "vtd1";
	bool ctx; /* the records come after the Reclaim, none lost */
	struct vevents_seen sa = {0}, sb = {0};
	struct iommu_nest *a, *b, *a2, *b2;
	uint32_t bh = 0, q = 0, s0;
	uint8_t btok[16];
	pid_t fake = vqstart(&a, &b, &c, bdev, &bh, btok, 60000, 2, &q);

	if (skipped) {
		iommu_nest_close(a);
		iommu_nest_close(b);
		clean_stop(fake);
		return;
	}
	if (!a || !b || !q)
		goto out_fail;
	CHECK_EQ(iommu_nest_set_event_handler(a, on_vevent, &sa), 0);
	CHECK_EQ(iommu_nest_trigger_vevent(a, c.dev, 2), 0);
	CHECK(wait_vevents(a, &sa, 2), "the two vEVENTs never arrived (%u)", sa.n);
	if (sa.n < 2)
		goto out_fail;
	s0 = sa.v[0].sequence;
	check_vevent(&sa.v[0], q, c.vi, s0, false);
	check_vevent(&sa.v[1], q, c.vi, s0 + 1, false);
	if (!crash_and_restart(2))
		goto out_fail;
	iommu_nest_close(a);
	iommu_nest_close(b);
	a2 = connect_retry("A2");
	b2 = a2 ? connect_retry("B2") : NULL;
	if (!b2)
		goto out_fail;
	CHECK(file_has("log", "took \"veventq.1\""), "the daemon did not take the vEVENTQ fd back");
	CHECK_EQ(iommu_nest_set_event_handler(a2, on_vevent, &sb), 0);
	/* An orphan is nobody's: not A2's before its Reclaim, never B's. */
	CHECK_EQ(iommu_nest_destroy_object(a2, IOMMU_NEST_OBJECT_VEVENTQ, q), -ENOENT);
	CHECK_EQ(iommu_nest_destroy_object(b2, IOMMU_NEST_OBJECT_VEVENTQ, q), -ENOENT);
	/* Nobody reads an orphan: the kernel queues up to the depth, then LOST_EVENTS. */
	ctx = !k_trigger_vevent(c.dev, 3);
	CHECK_EQ(iommu_nest_reclaim(b2, bh, btok), 0);
	CHECK_EQ(iommu_nest_reclaim(a2, c.hwpt, c.tok), 0);
	if (ctx)
		CHECK_EQ(iommu_nest_trigger_vevent(a2, c.dev, 2), 0);
	CHECK(wait_vevents(a2, &sb, ctx ? 2 : 3), "the queued vEVENTs never arrived (%u)", sb.n);
	if (sb.n < (ctx ? 2u : 3u))
		goto out_close;
	check_vevent(&sb.v[0], q, c.vi, s0 + 2, false);
	check_vevent(&sb.v[1], q, c.vi, s0 + 3, false);
	if (!ctx)
		check_vevent(&sb.v[2], q, c.vi, s0 + 4, true);
	/* And it is read as before: the next record continues the sequence. */
	CHECK_EQ(iommu_nest_trigger_vevent(a2, c.dev, 1), 0);
	CHECK(wait_vevents(a2, &sb, sb.n + 1), "no vEVENT after the Reclaim");
	check_vevent(&sb.v[sb.n - 1], q, c.vi, ctx ? s0 + 4 : s0 + 5, false);
	/* The destroy rules: the vEVENTQ holds its vIOMMU; it is A's alone. */
	CHECK_EQ(iommu_nest_destroy_object(b2, IOMMU_NEST_OBJECT_VEVENTQ, q), -ENOENT);
	CHECK_EQ(iommu_nest_detach(a2, c.dev), 0);
	CHECK_EQ(iommu_nest_destroy(a2, c.hwpt), 0);
	CHECK_EQ(iommu_nest_destroy_object(a2, IOMMU_NEST_OBJECT_VDEVICE, c.vd), 0);
	CHECK_EQ(iommu_nest_destroy_object(a2, IOMMU_NEST_OBJECT_VIOMMU, c.vi), -EBUSY);
	CHECK_EQ(iommu_nest_destroy_object(a2, IOMMU_NEST_OBJECT_VEVENTQ, q), 0);
	CHECK_EQ(iommu_nest_destroy_object(a2, IOMMU_NEST_OBJECT_VIOMMU, c.vi), 0);
	CHECK_EQ(iommu_nest_destroy_object(a2, IOMMU_NEST_OBJECT_VIOMMU, c.vi2), 0);
	CHECK(!file_has("state", "\"veventqs\""), "the destroyed vEVENTQ stayed in the state file");
	CHECK_EQ(iommu_nest_destroy(b2, bh), 0);
	CHECK_EQ(hwpts_active(a2), 0);
out_close:
	iommu_nest_close(a2);
	iommu_nest_close(b2);
	clean_stop(fake);
	return;
out_fail:
	give_up(fake);
}

/*
 * Nobody reclaims A's vEVENTQ (a record queued while it is an orphan): at
 * the grace period's end it is closed and destroyed before its vIOMMU,
 * nothing is refused (-EBUSY), and on the kernel none of the ids is alive.
 */
static void test_veventq_grace(void)
{
	struct vclient c = {.dev = kernel ? "mock0" : "st0", .dev2 = kernel ? "mock2" : "st1"};
	const char *bdev = kernel ? "mock1" : "vtd1";
	bool ctx = contexts_on();
	struct iommu_nest *a, *b, *b2;
	uint32_t bh = 0, q = 0, x, xd, xq;
	uint8_t btok[16];
	int kfd;
	pid_t fake = vqstart(&a, &b, &c, bdev, &bh, btok, 1500, 4, &q);

	if (skipped) {
		iommu_nest_close(a);
		iommu_nest_close(b);
		clean_stop(fake);
		return;
	}
	if (!a || !b || !q)
		goto out_fail;
	CHECK_EQ(iommu_nest_trigger_vevent(a, c.dev, 1), 0);
	if (!crash_and_restart(2))
		goto out_fail;
	iommu_nest_close(a);
	iommu_nest_close(b);
	b2 = connect_retry("B2");
	if (!b2)
		goto out_fail;
	(void)k_trigger_vevent(c.dev, 1); /* one more record the orphan holds, where possible */
	CHECK_EQ(iommu_nest_reclaim(b2, bh, btok), 0);
	CHECK(wait_for("log", "destroyed unclaimed veventq"), "the vEVENTQ was not destroyed");
	CHECK(wait_for("log", "destroyed unclaimed viommu"), "the vIOMMUs were not destroyed");
	CHECK(!file_has("log", "destroy orphan"), "an orphan's destroy failed (the order?)");
	CHECK(!LINES("log", "destroy", "busy"), "a destroy was refused -EBUSY");
	/* The save follows the reaping in the same callback: wait for it, not for a clock. */
	for (int i = 0; i < polls() && file_has("state", "\"veventqs\""); i++)
		sleep_ms(50);
	CHECK(!file_has("state", "\"veventqs\""), "the reaped vEVENTQ stayed in the state file");
	if (kernel && !ctx) {
		kfd = grab_daemon_iommufd();
		CHECK(kfd >= 0, "cannot get the daemon's iommufd");
		CHECK_EQ(k_destroy(kfd, q), -ENOENT);
		CHECK_EQ(k_is_viommu(kfd, c.vi), -ENOENT);
		CHECK_EQ(k_nested_alive(kfd, c.hwpt), -ENOENT);
		close(kfd);
	}
	/* The device is free: a vIOMMU, vDEVICE and vEVENTQ on it again. */
	CHECK_EQ(iommu_nest_alloc_viommu(b2, c.dev, IOMMU_NEST_VIOMMU_TYPE_SELFTEST, 0, &x), 0);
	CHECK_EQ(iommu_nest_alloc_vdevice(b2, x, c.dev, 0x10, &xd), 0);
	CHECK_EQ(iommu_nest_alloc_veventq(b2, x, IOMMU_NEST_VEVENTQ_TYPE_SELFTEST, 2, &xq), 0);
	CHECK_EQ(iommu_nest_destroy_object(b2, IOMMU_NEST_OBJECT_VEVENTQ, xq), 0);
	CHECK_EQ(iommu_nest_destroy_object(b2, IOMMU_NEST_OBJECT_VDEVICE, xd), 0);
	CHECK_EQ(iommu_nest_destroy_object(b2, IOMMU_NEST_OBJECT_VIOMMU, x), 0);
	iommu_nest_close(b2);
	clean_stop(fake);
	return;
out_fail:
	give_up(fake);
}

/* ---- PASID attachments across a restart ---------------------------------- */

/* 0 iff hwpt id sits on pasid of the mock behind dev (PASID_CHECK_HWPT, the daemon's iommufd). */
static int k_pasid_check(const char *dev, uint32_t pasid, uint32_t id)
{
	struct nestd_test_pasid_cmd cmd = {.size = sizeof(cmd),
					   .op = NESTD_TEST_OP_PASID_CHECK_HWPT,
					   .id = saved_id(dev, "stdev_id"),
					   .pasid_check = {.pasid = pasid, .hwpt_id = id}};
	int kfd = grab_daemon_iommufd(), rc;

	CHECK(kfd >= 0, "cannot get the daemon's iommufd");
	if (kfd < 0)
		return -EBADF;
	rc = ioctl(kfd, IOMMU_TEST_CMD, &cmd) ? -errno : 0;
	close(kfd);
	return rc;
}

/*
 * A's PASID-capable HWPT h on sp0, on PASIDs 100 (kept) and 200 (detached
 * again before the crash). 0, or skipped: no PASID attachments here.
 */
static pid_t pstart(struct iommu_nest **a, uint32_t *h, uint8_t *tok, unsigned grace_ms)
{
	struct iommu_nest_hw_info info = {0};
	uint32_t iotlb = 0;
	pid_t fake;
	int rc;

	sim7 = true;
	pasid_dev = true;
	write_config(grace_ms);
	fake = start_fake_systemd();
	*a = connect_retry("A");
	if (!*a)
		return fake;
	/* 6.12's mock has no PASIDs (the device flag is unknown there): its width says so. */
	CHECK_EQ(iommu_nest_get_hw_info(*a, "sp0", &info), 0);
	if (!info.max_pasid_log2) {
		skipped = "no PASID attachments before 6.15";
		return fake;
	}
	CHECK_EQ(iommu_nest_alloc(*a, "sp0", IOMMU_NEST_HWPT_DATA_SELFTEST, IOMMU_NEST_ALLOC_PASID,
				  IOMMU_NEST_HWPT_DATA_SELFTEST, &iotlb, sizeof(iotlb), h),
		 0);
	CHECK_EQ(iommu_nest_last_resume_token(*a, tok), 0);
	rc = iommu_nest_attach_pasid(*a, "sp0", 100, *h);
	if (rc == -EOPNOTSUPP || rc == -EINVAL) {
		skipped = "no PASID attachments before 6.15";
		return fake;
	}
	CHECK_EQ(rc, 0);
	CHECK_EQ(iommu_nest_attach_pasid(*a, "sp0", 200, *h), 0);
	CHECK_EQ(iommu_nest_detach_pasid(*a, "sp0", 200), 0);
	CHECK(file_has("state", "\"pasids\""), "AttachPasid answered before the state file had it");
	CHECK(!file_has("state", "\"pasid\":200"),
	      "DetachPasid answered before the file forgot it");
	return fake;
}

/*
 * SIGKILL with A's HWPT on PASID 100 of sp0: the attachment is restored
 * (the backend's table too: the mock's kernel and the sim agree), holds
 * the device for A until its Reclaim, comes back with the HWPT's, keeps
 * the HWPT -EBUSY to destroy; a replace on it and a fresh attach on 200
 * (detached before the crash) answer as if nothing happened.
 */
static void test_pasid(void)
{
	struct iommu_nest *a, *a2, *b2;
	uint32_t h = 0, x;
	uint8_t tok[16];
	pid_t fake = pstart(&a, &h, tok, 60000);
	bool root_kernel = kernel && !contexts_on();

	if (skipped) {
		iommu_nest_close(a);
		clean_stop(fake);
		return;
	}
	if (!a || !h || !crash_and_restart(2))
		goto out_fail;
	iommu_nest_close(a);
	a2 = connect_retry("A2");
	b2 = a2 ? connect_retry("B2") : NULL;
	if (!b2)
		goto out_fail;
	CHECK(file_has("log", "PASID 100 of sp0 on hwpt"), "the attachment was not restored");
	if (root_kernel)
		CHECK_EQ(k_pasid_check("sp0", 100, h), 0);
	/* The orphan holds sp0: nobody else's, and not A2's before its Reclaim. */
	CHECK_EQ(iommu_nest_attach_pasid(b2, "sp0", 300, h), -EBUSY);
	CHECK_EQ(iommu_nest_alloc(b2, "sp0", IOMMU_NEST_HWPT_DATA_SELFTEST, IOMMU_NEST_ALLOC_PASID,
				  IOMMU_NEST_HWPT_DATA_SELFTEST, &(uint32_t){0}, sizeof(uint32_t),
				  &x),
		 -EBUSY);
	CHECK_EQ(iommu_nest_destroy(a2, h), -ENOENT);
	CHECK_EQ(iommu_nest_reclaim(a2, h, tok), 0);
	/* The kernel holds the HWPT on the PASID: -EBUSY, the kernel's answer. */
	CHECK_EQ(iommu_nest_destroy(a2, h), -EBUSY);
	/* The backend knows PASID 100 is taken (a replace), and 200 is free (an attach). */
	CHECK_EQ(iommu_nest_attach_pasid(a2, "sp0", 100, h), 0);
	CHECK_EQ(iommu_nest_attach_pasid(a2, "sp0", 200, h), 0);
	CHECK_EQ(iommu_nest_detach_pasid(a2, "sp0", 200), 0);
	CHECK_EQ(iommu_nest_detach_pasid(a2, "sp0", 100), 0);
	if (root_kernel)
		CHECK_EQ(k_pasid_check("sp0", 100, 0), 0); /* nothing on it any more */
	CHECK(!file_has("state", "\"pasids\""), "the detached PASIDs stayed in the state file");
	CHECK_EQ(iommu_nest_destroy(a2, h), 0);
	CHECK_EQ(hwpts_active(a2), 0);
	iommu_nest_close(a2);
	iommu_nest_close(b2);
	clean_stop(fake);
	return;
out_fail:
	give_up(fake);
}

/*
 * Nobody reclaims: at the grace period's end PASID 100 is detached before
 * the HWPT is destroyed (no -EBUSY), and sp0 is free: B attaches its own
 * HWPT on PASID 100 (the kernel's -EBUSY had the old attachment stayed).
 */
static void test_pasid_grace(void)
{
	struct iommu_nest *a, *b2;
	uint32_t h = 0, x = 0;
	uint8_t tok[16];
	pid_t fake = pstart(&a, &h, tok, 1500);
	int kfd;

	if (skipped) {
		iommu_nest_close(a);
		clean_stop(fake);
		return;
	}
	if (!a || !h || !crash_and_restart(2))
		goto out_fail;
	iommu_nest_close(a);
	b2 = connect_retry("B2");
	if (!b2)
		goto out_fail;
	CHECK(wait_for("log", "detached unclaimed PASID 100 of sp0"), "PASID 100 was not detached");
	CHECK(wait_for("log", "destroyed unclaimed hwpt"), "the HWPT was not destroyed");
	CHECK(!file_has("log", "destroy orphan"), "an orphan's destroy failed (the order?)");
	for (int i = 0; i < polls() && file_has("state", "\"pasids\""); i++)
		sleep_ms(50);
	CHECK(!file_has("state", "\"pasids\""), "the detached PASID stayed in the state file");
	if (kernel && !contexts_on()) {
		kfd = grab_daemon_iommufd();
		CHECK(kfd >= 0, "cannot get the daemon's iommufd");
		CHECK_EQ(k_nested_alive(kfd, h), -ENOENT);
		close(kfd);
	}
	CHECK_EQ(iommu_nest_alloc(b2, "sp0", IOMMU_NEST_HWPT_DATA_SELFTEST, IOMMU_NEST_ALLOC_PASID,
				  IOMMU_NEST_HWPT_DATA_SELFTEST, &(uint32_t){0}, sizeof(uint32_t),
				  &x),
		 0);
	CHECK_EQ(iommu_nest_attach_pasid(b2, "sp0", 100, x), 0);
	CHECK_EQ(iommu_nest_detach_pasid(b2, "sp0", 100), 0);
	CHECK_EQ(iommu_nest_destroy(b2, x), 0);
	iommu_nest_close(b2);
	clean_stop(fake);
	return;
out_fail:
	give_up(fake);
}

/*
 * An owner with vIOMMUs and no HWPT (LIBIOMMU_NEST_0.17): A's vIOMMU vi
 * with a vDEVICE and a vEVENTQ; SIGKILL; a wrong token, another client
 * and the HWPT path get nothing; the vIOMMU's own token brings vi, its
 * vEVENTQ and its vDEVICE back to A alone, once, with the destroy rules.
 */
static void test_viommu_token(void)
{
	const char *dev = kernel ? "mock0" : "st0";
	struct iommu_nest *a, *a2, *b2;
	uint32_t vi = 0, vd = 0, q = 0;
	uint8_t tok[16], bad[16];
	pid_t fake;
	int rc;

	sim7 = true;
	write_config(60000);
	fake = start_fake_systemd();
	a = connect_retry("A");
	if (!a)
		goto out_fail;
	rc = iommu_nest_alloc_viommu(a, dev, IOMMU_NEST_VIOMMU_TYPE_SELFTEST, 0, &vi);
	if (rc == -ENOTTY) {
		skipped = "no vIOMMU before 6.13";
		iommu_nest_close(a);
		clean_stop(fake);
		return;
	}
	CHECK_EQ(rc, 0);
	CHECK_EQ(iommu_nest_last_viommu_token(a, tok), 0);
	CHECK_EQ(iommu_nest_alloc_vdevice(a, vi, dev, 0x10, &vd), 0);
	rc = iommu_nest_alloc_veventq(a, vi, IOMMU_NEST_VEVENTQ_TYPE_SELFTEST, 4, &q);
	CHECK(rc == 0 || rc == -ENOTTY, "AllocVeventq: %d", rc);
	if (!crash_and_restart(2))
		goto out_fail;
	iommu_nest_close(a);
	a2 = connect_retry("A2");
	b2 = a2 ? connect_retry("B2") : NULL;
	if (!b2)
		goto out_fail;
	memcpy(bad, tok, sizeof(bad));
	bad[3] ^= 0x40;
	CHECK_EQ(iommu_nest_reclaim_viommu(a2, vi, bad), -ENOENT);
	CHECK_EQ(iommu_nest_reclaim_viommu(a2, vi + 1, tok), -ENOENT);
	CHECK_EQ(iommu_nest_reclaim(a2, vi, tok), -ENOENT); /* not a HWPT's token */
	CHECK_EQ(iommu_nest_destroy_object(a2, IOMMU_NEST_OBJECT_VIOMMU, vi), -ENOENT);
	CHECK_EQ(iommu_nest_reclaim_viommu(a2, vi, tok), 0);
	CHECK_EQ(iommu_nest_reclaim_viommu(a2, vi, tok), -ENOENT); /* once */
	CHECK_EQ(iommu_nest_reclaim_viommu(b2, vi, tok), -ENOENT); /* A2's now */
	CHECK_EQ(iommu_nest_destroy_object(b2, IOMMU_NEST_OBJECT_VIOMMU, vi), -ENOENT);
	/* The vIOMMU holds its vDEVICE (and vEVENTQ): they came with it, A2's. */
	CHECK_EQ(iommu_nest_destroy_object(a2, IOMMU_NEST_OBJECT_VIOMMU, vi), -EBUSY);
	if (q) {
		CHECK_EQ(iommu_nest_destroy_object(b2, IOMMU_NEST_OBJECT_VEVENTQ, q), -ENOENT);
		CHECK_EQ(iommu_nest_destroy_object(a2, IOMMU_NEST_OBJECT_VDEVICE, vd), 0);
		CHECK_EQ(iommu_nest_destroy_object(a2, IOMMU_NEST_OBJECT_VIOMMU, vi), -EBUSY);
		CHECK_EQ(iommu_nest_destroy_object(a2, IOMMU_NEST_OBJECT_VEVENTQ, q), 0);
	} else {
		CHECK_EQ(iommu_nest_destroy_object(a2, IOMMU_NEST_OBJECT_VDEVICE, vd), 0);
	}
	CHECK_EQ(iommu_nest_destroy_object(a2, IOMMU_NEST_OBJECT_VIOMMU, vi), 0);
	CHECK_EQ(hwpts_active(a2), 0);
	iommu_nest_close(a2);
	iommu_nest_close(b2);
	clean_stop(fake);
	return;
out_fail:
	give_up(fake);
}

static bool in_list(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = list; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
		if (!strncmp(p, name, n) && (p[n] == ',' || !p[n]))
			return true;
	return false;
}

int main(int argc, char **argv)
{
	const struct {
		const char *name;
		void (*fn)(void);
	} cases[] = {{"crash", run_crash},
		     {"grace", run_grace},
		     {"store-lost", test_store_lost},
		     {"orphan-errors", test_orphan_errors},
		     {"contexts", test_contexts},
		     {"contexts-grace", test_contexts_grace},
		     {"contexts-lost", test_contexts_lost},
		     {"contexts-orphan-errors", test_contexts_orphan_errors},
		     {"faults", test_faults},
		     {"faults-grace", test_faults_grace},
		     {"viommu", test_viommu},
		     {"viommu-grace", test_viommu_grace},
		     {"viommu-window", test_viommu_window},
		     {"viommu-smmuv3", test_viommu_smmuv3},
		     {"viommu-sessions", test_viommu_sessions},
		     {"veventq", test_veventq},
		     {"veventq-grace", test_veventq_grace},
		     {"pasid", test_pasid},
		     {"pasid-grace", test_pasid_grace},
		     {"viommu-token", test_viommu_token}};
	const char *backend = getenv("NESTD_BACKEND");
	const char *only = argc > 3 ? argv[3] : getenv("NESTD_RESTART_CASE");

	if (argc >= 3) {
		daemon_path = argv[1];
		fake_path = argv[2];
	} else if (argc == 1 && getenv("NESTD_DAEMON")) {
		daemon_path = getenv("NESTD_DAEMON");
		fake_path = getenv("NESTD_FAKE_SYSTEMD");
		if (!fake_path)
			fake_path = fake_next_to_self();
	} else {
		fprintf(stderr, "usage: test_restart DAEMON FAKE_SYSTEMD [CASE]\n"
				"       test_restart  (with NESTD_DAEMON set)\n");
		return 2;
	}
	if (access(fake_path, X_OK)) {
		fprintf(stderr, "test_restart: %s: %s\n", fake_path, strerror(errno));
		return 2;
	}
	kernel = backend && !strcmp(backend, "iommufd");
	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int before = failures;

		if (only && *only && !in_list(only, cases[i].name))
			continue;
		snprintf(dir, sizeof(dir), "/tmp/nestd-restart-XXXXXX");
		if (!mkdtemp(dir)) {
			perror("mkdtemp");
			return 1;
		}
		skipped = NULL;
		ctx_mode = MODE_DEFAULT;
		sim7 = false;
		pasid_dev = false;
		cases[i].fn();
		printf("%s%s: %s%s\n", cases[i].name, kernel ? " (iommufd)" : "",
		       failures != before ? "FAILED"
		       : skipped	  ? "skipped: "
					  : "ok",
		       failures == before && skipped ? skipped : "");
		fflush(stdout);
		if (failures != before || getenv("NESTD_KEEP_LOGS"))
			dump_logs();
		cleanup_dir();
	}
	return failures ? 1 : 0;
}
