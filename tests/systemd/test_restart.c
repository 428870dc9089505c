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
 *   grace   without any fd store: an orphan nobody reclaims is destroyed
 *           when the grace period ends (Stats, Reclaim, device freed).
 *
 * Usage: test_restart DAEMON FAKE_SYSTEMD [CASE]
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "iommu_nest.h"

#define PAGE 4096ULL
#define AW 48

static const char *daemon_path, *fake_path;
static int failures;
static char dir[64];

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

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

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
	fprintf(f,
		"[daemon]\nsocket = %s\nbackend = sim\nlog_level = debug\ntest_requests = true\n"
		"state_file = %s\nreclaim_grace_ms = %u\n\n"
		"[device vtd0]\nkind = vtd\n\n[device vtd1]\nkind = vtd\n\n"
		"[device st0]\nkind = selftest\n",
		sock, state, grace_ms);
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

static pid_t start_daemon_plain(void)
{
	char cfg[128];
	char *argv[] = { (char *)daemon_path, "--config", cfg, NULL };

	path_of(cfg, sizeof(cfg), "nestd.conf");
	return spawn(argv);
}

static pid_t start_fake_systemd(void)
{
	char cfg[128], sock[128], notify[128], log[128], pidfile[128];
	char *argv[] = { (char *)fake_path, "--socket", sock, "--notify", notify, "--log", log,
			 "--pidfile", pidfile, "--max-starts", "2", "--", (char *)daemon_path,
			 "--config", cfg, NULL };

	path_of(cfg, sizeof(cfg), "nestd.conf");
	path_of(sock, sizeof(sock), "nestd.sock");
	path_of(notify, sizeof(notify), "notify");
	path_of(log, sizeof(log), "fake.log");
	path_of(pidfile, sizeof(pidfile), "daemon.pid");
	return spawn(argv);
}

/* Connects, retrying while the daemon comes up (bounded). */
static struct iommu_nest *connect_retry(const char *name)
{
	char sock[128];
	struct iommu_nest *h = NULL;

	path_of(sock, sizeof(sock), "nestd.sock");
	for (int i = 0; i < 200; i++) {
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
	for (int i = 0; i < 200; i++) {
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

	for (int i = 0; i < 200; i++) {
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
	struct iommu_nest_vtd_inv e = { .addr = first * PAGE, .npages = n,
					.flags = leaf ? IOMMU_NEST_VTD_INV_FLAGS_LEAF : 0 };
	struct iommu_nest_entry_result r = { 0 };
	struct iommu_nest_inv_summary sum = { 0 };
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
	struct iommu_nest_stats st = { 0 };

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
	struct iommu_nest_selftest_inv se = { .flags = 0, .iotlb_id = 1 };
	struct iommu_nest_entry_result r;

	w->a = alloc_vtd(a, "vtd0", w->tok_a);
	CHECK_EQ(iommu_nest_attach(a, "vtd0", w->a), 0);
	CHECK_EQ(iommu_nest_sim_populate(a, w->a, 0, 1024, IOMMU_NEST_SIM_IOTLB), 0);
	CHECK_EQ(iommu_nest_sim_populate(a, w->a, 0, 1024, IOMMU_NEST_SIM_PSC), 0);
	inv_vtd(a, w->a, 0, 256, true);	   /* leaf: IOTLB only */
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

static void crash_check_model(struct iommu_nest *a2, struct iommu_nest *b2,
			      const struct before *w)
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

	/* vtd0 is still attached to A's HWPT: busy for B, detachable by A. */
	x = alloc_vtd(b2, "vtd0", NULL);
	CHECK_EQ(iommu_nest_attach(b2, "vtd0", x), -EBUSY);
	CHECK_EQ(iommu_nest_detach(a2, "vtd0"), 0);
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
	struct before w = { 0 };
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
	for (int i = 0; i < 200 && ((pid = read_pidfile()) == old || !pid); i++)
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

/* ---- grace period, no fd store ------------------------------------------------ */

static void test_grace(void)
{
	struct iommu_nest *a, *a2;
	uint8_t tok1[16], tok2[16];
	uint32_t id1, id2, id3;
	pid_t pid;

	write_config(1500);
	pid = start_daemon_plain();
	a = connect_retry("A");
	if (!a)
		goto out_fail;
	id1 = alloc_vtd(a, "vtd1", tok1);
	id2 = alloc_vtd(a, "vtd0", tok2);
	CHECK_EQ(iommu_nest_attach(a, "vtd0", id2), 0);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	iommu_nest_close(a);

	pid = start_daemon_plain();
	a2 = connect_retry("A2");
	if (!a2)
		goto out_fail;
	CHECK_EQ(hwpts_active(a2), 2);
	CHECK_EQ(iommu_nest_reclaim(a2, id1, tok1), 0);
	/* vtd0 stays on the unclaimed orphan until the grace period ends. */
	id3 = alloc_vtd(a2, "vtd0", NULL);
	CHECK_EQ(iommu_nest_attach(a2, "vtd0", id3), -EBUSY);
	CHECK(file_has("state", "\"resume_token\""), "state file without tokens");

	sleep_ms(2500);
	CHECK_EQ(hwpts_active(a2), 2); /* id1 (reclaimed) and id3 */
	CHECK_EQ(iommu_nest_reclaim(a2, id2, tok2), -ENOENT);
	CHECK_EQ(iommu_nest_attach(a2, "vtd0", id3), 0);
	CHECK(file_has("log", "destroying 1 unclaimed HWPTs"), "no grace expiry logged");
	iommu_nest_close(a2);

	kill(pid, SIGTERM);
	CHECK_EQ(wait_exit(pid), 0);
	CHECK(!state_exists(), "a clean stop left the state file");
	return;
out_fail:
	failures++;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static void dump_logs(void)
{
	const char *names[] = { "log", "fake.log" };

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

int main(int argc, char **argv)
{
	const struct {
		const char *name;
		void (*fn)(void);
	} cases[] = { { "crash", test_crash }, { "grace", test_grace } };

	if (argc < 3) {
		fprintf(stderr, "usage: test_restart DAEMON FAKE_SYSTEMD [CASE]\n");
		return 2;
	}
	daemon_path = argv[1];
	fake_path = argv[2];
	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int before = failures;

		if (argc > 3 && strcmp(argv[3], cases[i].name))
			continue;
		snprintf(dir, sizeof(dir), "/tmp/nestd-restart-XXXXXX");
		if (!mkdtemp(dir)) {
			perror("mkdtemp");
			return 1;
		}
		cases[i].fn();
		printf("%s: %s\n", cases[i].name, failures == before ? "ok" : "FAILED");
		if (failures != before || getenv("NESTD_KEEP_LOGS"))
			dump_logs();
		cleanup_dir();
	}
	return failures ? 1 : 0;
}
