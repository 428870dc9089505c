/* SPDX-License-Identifier: MIT */
/*
 * Connection limits and configuration reload, through the real daemon:
 *  - a reload (SIGHUP or the Reload request) parses the whole file and
 *    swaps it in: every policy key and quota takes effect; a bad file or a
 *    key that changes only on restart is refused and the old config kept;
 *  - per-uid and per-pid connection limits, slots kept for administrators,
 *    the Hello deadline: one tenant cannot lock the others out, and a
 *    bystander of another uid is served exactly *during* the attack;
 *  - 0 means unlimited for max_clients, max_hwpts, max_inflight;
 *  - at the descriptor limit the watchdog keeps being petted, clients past
 *    the limit are refused and existing ones served;
 *  - STATUS= follows the counters without waiting for the watchdog.
 * Tenants are other uids: the cases that need them need root.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define TENANT_UID    65534 /* nobody / nogroup: the attacker */
#define BYSTANDER_UID 4242
#define OPEN_SOCKET   "socket_mode = 0666\n"

/* ---- Helpers --------------------------------------------------------------------------- */

/* The socket's directory is the harness's 0700 mkdtemp: let other uids through. */
static void open_up(struct nestd *d)
{
	CU_ASSERT_EQUAL_FATAL(chmod(d->dir, 0711), 0);
	CU_ASSERT_EQUAL_FATAL(chmod(d->sock, 0666), 0);
}

/* A non-blocking connect that waits (bounded) while the listen backlog is full. */
static int backlog_connect(const char *sock)
{
	uint64_t deadline = it_now_ns() + (uint64_t)it_timeout_ms() * 1000000;
	int fd;

	while ((fd = it_plain_connect(sock, true)) == -EAGAIN && it_now_ns() < deadline)
		poll(NULL, 0, 1);
	return fd;
}

/* Connects with the effective ids of uid/gid (SO_PEERCRED takes them at connect). */
static int raw_connect_as(struct nestd *d, uid_t uid, gid_t gid)
{
	int fd;

	CU_ASSERT_EQUAL_FATAL(setegid(gid), 0);
	CU_ASSERT_EQUAL_FATAL(seteuid(uid), 0);
	fd = it_plain_connect(d->sock, false);
	CU_ASSERT_EQUAL_FATAL(seteuid(0), 0);
	CU_ASSERT_EQUAL_FATAL(setegid(0), 0);
	CU_ASSERT_FATAL(fd >= 0);
	return fd;
}

/* The refusal a connection gets before it has a session: status and limit, then EOF. */
static void expect_refused(int fd, int status, uint64_t limit, const char *why)
{
	int err = 0;
	IommuNest__Reply *rep = it_raw_recv(fd, &err);

	CU_ASSERT_PTR_NOT_NULL_FATAL(rep);
	CU_ASSERT_EQUAL(rep->id, 0);
	CU_ASSERT_EQUAL(rep->status, status);
	CU_ASSERT_EQUAL(rep->limit, limit);
	if (why && !strstr(rep->error, why))
		fprintf(stderr, "refusal \"%s\" does not say \"%s\"\n", rep->error, why);
	CU_ASSERT(!why || strstr(rep->error, why));
	iommu_nest__reply__free_unpacked(rep, NULL);
	CU_ASSERT(it_raw_eof(fd));
}

/* Connects as uid/gid and expects a refusal. */
static void expect_connect_refused(struct nestd *d, uid_t uid, gid_t gid, int status,
				   uint64_t limit, const char *why)
{
	int fd = raw_connect_as(d, uid, gid);

	expect_refused(fd, status, limit, why);
	close(fd);
}

/* Connects as uid/gid, says Hello and expects to be served. */
static int connect_served(struct nestd *d, uid_t uid, gid_t gid)
{
	int fd = raw_connect_as(d, uid, gid), err = 0;
	IommuNest__Reply *rep;

	CU_ASSERT_EQUAL_FATAL(it_send_hello(fd, 1, "limits"), 0);
	rep = it_raw_recv(fd, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(rep);
	if (rep->status)
		fprintf(stderr, "uid %u refused: %d %s\n", (unsigned)uid, rep->status, rep->error);
	CU_ASSERT_EQUAL(rep->status, 0);
	iommu_nest__reply__free_unpacked(rep, NULL);
	return fd;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* n exact bystander rounds, each timed; returns the p99 round trip in us. */
static double bystander_rounds(struct it_bystander *b, int n)
{
	uint64_t *ns = calloc((size_t)n, sizeof(*ns));
	double p99;

	CU_ASSERT_PTR_NOT_NULL_FATAL(ns);
	for (int i = 0; i < n; i++) {
		uint64_t t0 = it_now_ns();

		it_bystander_check(b);
		ns[i] = it_now_ns() - t0;
	}
	qsort(ns, (size_t)n, sizeof(*ns), cmp_u64);
	p99 = (double)ns[(size_t)n * 99 / 100] / 1000.0;
	free(ns);
	return p99;
}

/* ---- Attackers: forked children under the tenant uid ---------------------------------- */

struct attack_report {
	int held;	    /* connections that got Hello answered (or were accepted, no_hello) */
	int refused_status; /* the refusal that ended the grab phase */
	uint64_t refused_limit;
	char refused_why[128];
	int hammered;	     /* connects tried while holding */
	int hammer_odd;	     /* of them, not refused with -EUSERS */
	int odd_what;	     /* the last such: the status, or the receive error */
	int deadline_closes; /* no_hello: connections the daemon closed with -ETIMEDOUT */
};

struct attacker {
	pid_t pid;
	int report_fd; /* reads struct attack_report, then once more at the end */
	int stop_fd;   /* a byte written to it stops the child */
	int tick_fd;   /* no_hello: one byte per deadline close */
};

/*
 * Reads one reply without CUnit (attackers use it in their children): 0
 * with its status (and id, limit, reason when asked for), or -errno.
 */
static int recv_reply(int fd, int timeout_ms, int *status, uint64_t *limit, char *why, size_t len,
		      uint64_t *id)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	static uint8_t buf[65536];
	IommuNest__Reply *rep;
	ssize_t n;

	if (poll(&p, 1, timeout_ms) != 1)
		return -ETIMEDOUT;
	n = recv(fd, buf, sizeof(buf), 0);
	/*
	 * A peer that closes with our Hello unread leaves ECONNRESET pending;
	 * recv reports (and clears) it before the packets still queued.
	 */
	if (n < 0 && errno == ECONNRESET)
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n <= 0)
		return n == 0 ? -ECONNRESET : -errno;
	rep = iommu_nest__reply__unpack(NULL, (size_t)n, buf);
	if (!rep)
		return -EPROTO;
	*status = rep->status;
	if (id)
		*id = rep->id;
	if (limit)
		*limit = rep->limit;
	if (why)
		snprintf(why, len, "%s", rep->error ? rep->error : "");
	iommu_nest__reply__free_unpacked(rep, NULL);
	return 0;
}

static bool stop_requested(int stop_fd)
{
	struct pollfd p = {.fd = stop_fd, .events = POLLIN};

	return poll(&p, 1, 0) == 1;
}

/*
 * Grabs connections with Hello until one is refused (at most max_hold),
 * reports, then hammers connect until told to stop. no_hello: opens
 * max_hold silent connections, reports, and keeps them topped up as the
 * deadline closes them.
 */
static void attacker_main(const char *sock, bool no_hello, int max_hold, int report_fd, int stop_fd,
			  int tick_fd)
{
	static int fds[1024];
	struct attack_report r = {0};
	int tmo = it_timeout_ms(), status = 0;

	if (setgroups(0, NULL) || setgid(TENANT_UID) || setuid(TENANT_UID))
		_exit(3);
	while (r.held < max_hold) {
		int fd = it_plain_connect(sock, false);

		if (fd < 0)
			_exit(4);
		if (!no_hello) {
			/* A refused peer may be closed before Hello goes out: its reply still
			 * reads. */
			(void)it_send_hello(fd, 1, "limits");
			if (recv_reply(fd, tmo, &status, &r.refused_limit, r.refused_why,
				       sizeof(r.refused_why), NULL))
				_exit(5);
			if (!status) {
				fds[r.held++] = fd;
				continue;
			}
			r.refused_status = status;
			close(fd);
			break;
		}
		/* Silent: exactly max_hold connections, replaced as the deadline closes them. */
		fds[r.held++] = fd;
	}
	if (write(report_fd, &r, sizeof(r)) != sizeof(r))
		_exit(6);
	while (!stop_requested(stop_fd)) {
		int fd, rc;

		if (no_hello) {
			/* Replace every connection the deadline closed: the attack goes on. */
			for (int i = 0; i < r.held; i++) {
				struct pollfd p = {.fd = fds[i], .events = POLLIN};

				if (poll(&p, 1, 0) != 1)
					continue;
				if (!recv_reply(fds[i], tmo, &status, NULL, NULL, 0, NULL) &&
				    status == -ETIMEDOUT) {
					r.deadline_closes++;
					(void)!write(tick_fd, "t", 1);
				}
				close(fds[i]);
				fds[i] = it_plain_connect(sock, false);
				if (fds[i] < 0)
					_exit(7);
			}
			poll(NULL, 0, 5);
			continue;
		}
		fd = it_plain_connect(sock, false);
		if (fd < 0)
			_exit(8);
		r.hammered++;
		rc = recv_reply(fd, tmo, &status, NULL, NULL, 0, NULL);
		if (rc || status != -EUSERS) {
			r.hammer_odd++;
			r.odd_what = rc ? rc : status;
		}
		close(fd);
	}
	if (write(report_fd, &r, sizeof(r)) != sizeof(r))
		_exit(9);
	/*
	 * Hold the connections until released: exiting now would free slots
	 * that another attacker's in-flight hammer connect could take, as a
	 * session that sends no Hello (the deadline would then answer it).
	 */
	for (int got = 0; got < 2;) {
		struct pollfd p = {.fd = stop_fd, .events = POLLIN};
		char c;

		if (poll(&p, 1, tmo) != 1 || read(stop_fd, &c, 1) != 1)
			_exit(10);
		got++;
	}
	_exit(0);
}

static struct attacker attacker_start(struct nestd *d, bool no_hello, int max_hold)
{
	int rep[2], stop[2], tick[2];
	struct attacker a;

	CU_ASSERT_EQUAL_FATAL(pipe2(rep, O_CLOEXEC), 0);
	CU_ASSERT_EQUAL_FATAL(pipe2(stop, O_CLOEXEC), 0);
	CU_ASSERT_EQUAL_FATAL(pipe2(tick, O_CLOEXEC), 0);
	fflush(NULL);
	a.pid = fork();
	CU_ASSERT_FATAL(a.pid >= 0);
	if (a.pid == 0) {
		close(rep[0]);
		close(stop[1]);
		close(tick[0]);
		attacker_main(d->sock, no_hello, max_hold, rep[1], stop[0], tick[1]);
	}
	close(rep[1]);
	close(stop[0]);
	close(tick[1]);
	a.report_fd = rep[0];
	a.stop_fd = stop[1];
	a.tick_fd = tick[0];
	return a;
}

/* Blocks (bounded) for the next report of a. */
static bool attacker_report(struct attacker *a, struct attack_report *r)
{
	struct pollfd p = {.fd = a->report_fd, .events = POLLIN};
	int status = 0;

	if (poll(&p, 1, it_timeout_ms()) == 1 && read(a->report_fd, r, sizeof(*r)) == sizeof(*r))
		return true;
	if (waitpid(a->pid, &status, WNOHANG) == a->pid)
		fprintf(stderr, "attacker %d died: status %#x\n", (int)a->pid, status);
	return false;
}

/* Waits (bounded) for n deadline-close ticks of a no_hello attacker. */
static bool attacker_ticks(struct attacker *a, int n)
{
	char c;

	for (int i = 0; i < n; i++) {
		struct pollfd p = {.fd = a->tick_fd, .events = POLLIN};

		if (poll(&p, 1, it_timeout_ms()) != 1 || read(a->tick_fd, &c, 1) != 1)
			return false;
	}
	return true;
}

/*
 * Tells a to stop hammering and reads its final report; it keeps holding
 * its connections until attacker_release(). A byte, not just EOF, as later
 * attackers inherited this pipe's write end. Halt every attacker before
 * releasing any: one that exits frees slots that the others' hammering
 * would then take.
 */
static void attacker_halt(struct attacker *a, struct attack_report *final)
{
	CU_ASSERT_EQUAL(write(a->stop_fd, "s", 1), 1);
	CU_ASSERT(attacker_report(a, final));
}

/* Lets a halted attacker exit and reaps it; its exit code must be 0. */
static void attacker_release(struct attacker *a)
{
	int status = 0;

	CU_ASSERT_EQUAL(write(a->stop_fd, "r", 1), 1);
	close(a->stop_fd);
	CU_ASSERT_EQUAL(waitpid(a->pid, &status, 0), a->pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		fprintf(stderr, "attacker %d exited with status %#x\n", (int)a->pid, status);
	CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(a->report_fd);
	close(a->tick_fd);
}

/* ---- Reload: every reloadable key takes effect ------------------------------------------ */

static void test_reload_admin_groups(void)
{
	struct nestd *d;
	struct iommu_nest *h;
	struct iommu_nest_stats st;

	IT_REQUIRE_ROOT();
	d = it_start("[policy]\nmax_hwpts = 64\n");
	h = it_connect_as(d, "tenant", TENANT_UID, TENANT_UID);
	CU_ASSERT_EQUAL(iommu_nest_stats(h, &st), -EPERM);
	it_edit_config(d, "[policy]\n", "[policy]\nadmin_groups = 65534\n");
	CU_ASSERT(it_sighup_reload(d));
	CU_ASSERT_EQUAL(iommu_nest_stats(h, &st), 0);
	/* And back: the group is looked up against the current config on every request. */
	it_edit_config(d, "admin_groups = 65534\n", "");
	CU_ASSERT(it_sighup_reload(d));
	CU_ASSERT_EQUAL(iommu_nest_stats(h, &st), -EPERM);
	it_stop_ok(d);
}

static void test_reload_allow(void)
{
	struct nestd *d;
	int fd;

	IT_REQUIRE_ROOT();
	d = it_start(OPEN_SOCKET "[policy]\nmax_hwpts = 64\n");
	open_up(d);
	fd = connect_served(d, TENANT_UID, TENANT_UID);
	it_edit_config(d, "[policy]\n", "[policy]\nallow_users = 0\n");
	CU_ASSERT(it_sighup_reload(d));
	expect_connect_refused(d, TENANT_UID, TENANT_UID, -EACCES, 0, "not allowed to connect");
	/* allow_groups: the tenant's group lets it in again. */
	it_edit_config(d, "allow_users = 0\n", "allow_users = 0\nallow_groups = 65534\n");
	CU_ASSERT(it_sighup_reload(d));
	close(connect_served(d, TENANT_UID, TENANT_UID));
	close(fd);
	it_stop_ok(d);
}

static void test_reload_max_hwpts(void)
{
	struct nestd *d = it_start("[policy]\nmax_hwpts = 1\n");
	struct iommu_nest *h = it_connect(d, "hwpts");
	uint32_t id = 0;

	it_alloc_st(h, IT_ST0, 1);
	CU_ASSERT_EQUAL(iommu_nest_alloc_selftest(h, IT_ST0, 1, &id), -EDQUOT);
	CU_ASSERT_EQUAL(iommu_nest_last_limit(h), 1);
	it_edit_config(d, "max_hwpts = 1\n", "max_hwpts = 3\n");
	CU_ASSERT(it_sighup_reload(d));
	it_alloc_st(h, IT_ST0, 1);
	it_alloc_st(h, IT_ST0, 1);
	CU_ASSERT_EQUAL(iommu_nest_alloc_selftest(h, IT_ST0, 1, &id), -EDQUOT);
	CU_ASSERT_EQUAL(iommu_nest_last_limit(h), 3);
	it_stop_ok(d);
}

static void count_eagain(struct iommu_nest *h, uint64_t token,
			 const struct iommu_nest_inv_summary *sum,
			 struct iommu_nest_entry_result *res, size_t n, void *opaque)
{
	*(int *)opaque += sum->status == -EAGAIN;
}

/* n invalidations queued in one pass (daemon frozen): how many got -EAGAIN. */
static int inflight_burst(struct nestd *d, struct iommu_nest *h, uint32_t st, int n)
{
	static struct iommu_nest_entry_result res[512];
	struct iommu_nest_selftest_inv e = {0, 1};
	uint64_t token;
	int eagain = 0;

	CU_ASSERT_FATAL(n <= 512);
	it_freeze(d);
	for (int i = 0; i < n; i++)
		CU_ASSERT_EQUAL(iommu_nest_invalidate_submit(h, st, IOMMU_NEST_INV_DATA_SELFTEST,
							     &e, 1, 0, &res[i], count_eagain,
							     &eagain, &token),
				0);
	it_thaw(d);
	while (iommu_nest_in_flight(h) || iommu_nest_pending(h))
		CU_ASSERT_FATAL(iommu_nest_process(h) >= 0);
	return eagain;
}

static void test_reload_max_inflight(void)
{
	struct nestd *d = it_start("[policy]\nmax_inflight = 8\n");
	struct iommu_nest *h = it_connect(d, "inflight");
	uint32_t st = it_alloc_st(h, IT_ST0, 1);

	CU_ASSERT_EQUAL(inflight_burst(d, h, st, 10), 2);
	it_edit_config(d, "max_inflight = 8\n", "max_inflight = 3\n");
	CU_ASSERT(it_sighup_reload(d));
	CU_ASSERT_EQUAL(inflight_burst(d, h, st, 10), 7);
	it_stop_ok(d);
}

/* Unlimited first (every request served), then 1/s: only what the measured time allows. */
static void test_reload_rate(void)
{
	struct nestd *d = it_start("[policy]\nmax_requests_per_sec = 0\n");
	struct iommu_nest *h = it_connect(d, "rate");
	struct iommu_nest_stats st;
	uint64_t t0;
	int accepted = 0;

	for (int i = 0; i < 30; i++)
		CU_ASSERT_EQUAL(iommu_nest_stats(h, &st), 0);
	it_edit_config(d, "max_requests_per_sec = 0\n", "max_requests_per_sec = 1\n");
	CU_ASSERT(it_sighup_reload(d));
	t0 = it_now_ns();
	for (int i = 0; i < 30; i++) {
		int rc = iommu_nest_stats(h, &st);

		accepted += rc == 0;
		if (rc) {
			CU_ASSERT_EQUAL(rc, -EAGAIN);
			CU_ASSERT_EQUAL(iommu_nest_last_limit(h), 1);
		}
	}
	/* The bucket starts at the first request after the reload, after t0. */
	CU_ASSERT((uint64_t)accepted <= it_bucket_max_granted(1, it_now_ns() - t0));
	it_stop_ok(d);
}

/* Sends Stats without reading until the daemon drops us; how many went out. */
static int sends_until_dropped(struct nestd *d)
{
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__Stats stats = IOMMU_NEST__STATS__INIT;
	int fd = it_plain_connect(d->sock, false), sent = 0;
	uint8_t buf[64];

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(it_send_hello(fd, 1, "limits"), 0);
	req.body_case = IOMMU_NEST__REQUEST__BODY_STATS;
	req.stats = &stats;
	for (int i = 0; i < 200000; i++) {
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		size_t len;

		req.id = (uint64_t)i + 2;
		len = iommu_nest__request__pack(&req, buf);
		if (poll(&p, 1, it_timeout_ms()) != 1 || (p.revents & (POLLERR | POLLHUP)))
			break;
		if (send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
			if (errno != EAGAIN)
				break;
		} else {
			sent++;
		}
	}
	close(fd);
	return sent;
}

/*
 * max_buffered_bytes 64 KiB after the reload: a client that never reads is
 * dropped after about 64 KiB of replies (plus what the socket buffers hold,
 * a few hundred packets), far below what the 4 MiB it started with allows.
 */
static void test_reload_buffered(void)
{
	struct nestd *d = it_start("[policy]\nmax_buffered_bytes = 4194304\n");
	struct iommu_nest *h = it_connect(d, "watcher");
	int sent;

	it_edit_config(d, "max_buffered_bytes = 4194304\n", "max_buffered_bytes = 65536\n");
	CU_ASSERT(it_sighup_reload(d));
	sent = sends_until_dropped(d);
	fprintf(stderr, "    never-reading client dropped after %d requests\n", sent);
	CU_ASSERT(sent > 0 && sent < 10000);
	CU_ASSERT(it_wait_sessions(h, 1));
	it_stop_ok(d);
}

static void test_reload_max_clients(void)
{
	struct nestd *d = it_start("[policy]\nmax_clients = 100\n");
	struct iommu_nest *h = it_connect(d, "first");
	int fd;

	CU_ASSERT(it_wait_sessions(h, 1));
	it_edit_config(d, "max_clients = 100\n", "max_clients = 2\n");
	CU_ASSERT(it_sighup_reload(d));
	fd = it_raw_connect(d);
	it_raw_hello(fd);
	/* Root may take every slot; past max_clients even root is refused. */
	expect_connect_refused(d, 0, 0, -EUSERS, 2, "too many clients");
	it_stop_ok(d);
}

static void test_reload_mapped_bytes(void)
{
	struct nestd *d = it_start("[policy]\nmax_mapped_bytes = 1048576\n");
	struct iommu_nest *h = it_connect(d, "mapper");
	int fd = memfd_create("it-limits", MFD_CLOEXEC);
	const uint32_t rw = IOMMU_NEST_MAP_READABLE | IOMMU_NEST_MAP_WRITEABLE;
	/* 16 MiB: the first byte of the mock device's aperture. */

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL_FATAL(ftruncate(fd, 1 << 20), 0);
	CU_ASSERT_EQUAL(iommu_nest_map_memory(h, IT_ST0, 16 << 20, 1 << 20, fd, 0, rw), 0);
	CU_ASSERT_EQUAL(iommu_nest_unmap_memory(h, IT_ST0, 16 << 20, 1 << 20), 0);
	it_edit_config(d, "max_mapped_bytes = 1048576\n", "max_mapped_bytes = 65536\n");
	CU_ASSERT(it_sighup_reload(d));
	CU_ASSERT_EQUAL(iommu_nest_map_memory(h, IT_ST0, 16 << 20, 1 << 20, fd, 0, rw), -EDQUOT);
	CU_ASSERT_EQUAL(iommu_nest_last_limit(h), 65536);
	close(fd);
	it_stop_ok(d);
}

/* The new connection limits are reloadable too: per uid, and the Hello deadline. */
static void test_reload_conn_limits(void)
{
	struct nestd *d;
	int fds[3], fd;

	IT_REQUIRE_ROOT();
	d = it_start(OPEN_SOCKET "[policy]\nmax_clients_per_uid = 10\nhello_timeout_ms = 0\n");
	open_up(d);
	for (int i = 0; i < 3; i++)
		fds[i] = connect_served(d, TENANT_UID, TENANT_UID);
	it_edit_config(d, "max_clients_per_uid = 10\nhello_timeout_ms = 0\n",
		       "max_clients_per_uid = 3\nhello_timeout_ms = 200\n");
	CU_ASSERT(it_sighup_reload(d));
	expect_connect_refused(d, TENANT_UID, TENANT_UID, -EUSERS, 3, "max_clients_per_uid");
	fd = it_raw_connect(d);
	expect_refused(fd, -ETIMEDOUT, 200, "no Hello within hello_timeout_ms");
	it_raw_close(fd);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	it_stop_ok(d);
}

/* ---- Reload: what is refused, and that nothing of it applies ----------------------------- */

static void test_reload_bad_file_kept(void)
{
	struct nestd *d = it_start("[policy]\nmax_hwpts = 1\n");
	struct iommu_nest *h = it_connect(d, "kept");
	uint32_t id = 0;
	char *log;

	it_alloc_st(h, IT_ST0, 1);
	/* A valid new quota next to a typo: the file is refused as a whole. */
	it_edit_config(d, "max_hwpts = 1\n", "max_hwpts = 5\nmax_hwtps = 5\n");
	CU_ASSERT(!it_sighup_reload(d));
	CU_ASSERT_EQUAL(iommu_nest_alloc_selftest(h, IT_ST0, 1, &id), -EDQUOT);
	CU_ASSERT_EQUAL(iommu_nest_last_limit(h), 1);
	log = it_read_file(d->log_path);
	CU_ASSERT_PTR_NOT_NULL_FATAL(log);
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "[policy] max_hwtps = 5: unknown key"));
	free(log);
	/* The Reload request answers with the same reason, synchronously. */
	CU_ASSERT_EQUAL(iommu_nest_reload(h), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(iommu_nest_last_error(h), "max_hwtps = 5: unknown key"));
	/* Fixed: applied at once, as the reply says. */
	it_edit_config(d, "max_hwtps = 5\n", "");
	CU_ASSERT_EQUAL(iommu_nest_reload(h), 0);
	CU_ASSERT_EQUAL(iommu_nest_alloc_selftest(h, IT_ST0, 1, &id), 0);
	it_stop_ok(d);
}

static void test_reload_runtime_only(void)
{
	static const struct {
		const char *from, *to, *why;
	} cases[] = {
	    {"[policy]\n", "[limits]\nmax_message_size = 8192\n[policy]\n",
	     "[limits] max_message_size changes only on restart"},
	    {"[policy]\n", "[device extra]\nkind = selftest\n[policy]\n",
	     "[device] sections changes only on restart"},
	    {"[policy]\n", "[daemon]\nreclaim_grace_ms = 1\n[policy]\n",
	     "[daemon] reclaim_grace_ms changes only on restart"},
	    {"[policy]\n", "[daemon]\nsim_kernel = 7.0\n[policy]\n",
	     "[daemon] sim_kernel changes only on restart"},
	};
	struct nestd *d = it_start("[policy]\nmax_hwpts = 1\n");
	struct iommu_nest *h = it_connect(d, "runtime");
	char *orig = it_read_file(d->cfg_path), *log;
	uint32_t id = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(orig);
	it_alloc_st(h, IT_ST0, 1);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CU_ASSERT_EQUAL_FATAL(it_write_file(d->cfg_path, orig), 0);
		it_edit_config(d, "max_hwpts = 1\n", "max_hwpts = 5\n");
		it_edit_config(d, cases[i].from, cases[i].to);
		CU_ASSERT(!it_sighup_reload(d));
		CU_ASSERT_EQUAL(iommu_nest_reload(h), -EINVAL);
		if (!strstr(iommu_nest_last_error(h), cases[i].why))
			fprintf(stderr, "reason \"%s\" lacks \"%s\"\n", iommu_nest_last_error(h),
				cases[i].why);
		CU_ASSERT_PTR_NOT_NULL(strstr(iommu_nest_last_error(h), cases[i].why));
		/* max_hwpts = 5 came in the same file: not applied either. */
		CU_ASSERT_EQUAL(iommu_nest_alloc_selftest(h, IT_ST0, 1, &id), -EDQUOT);
	}
	log = it_read_file(d->log_path);
	CU_ASSERT_PTR_NOT_NULL_FATAL(log);
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "reload refused, keeping the running configuration: "
					   "[limits] max_message_size changes only on restart"));
	free(log);
	free(orig);
	it_stop_ok(d);
}

/* ---- 0 is unlimited ------------------------------------------------------------------------ */

static void test_zero_unlimited(void)
{
	struct nestd *d = it_start("[policy]\nmax_clients = 0\nmax_hwpts = 0\nmax_inflight = 0\n");
	struct iommu_nest *h[4];
	uint32_t st = 0;

	for (int i = 0; i < 4; i++)
		h[i] = it_connect(d, "unlimited");
	/* More than the defaults (64 HWPTs, 256 in flight) would allow. */
	for (int i = 0; i < 70; i++)
		st = it_alloc_st(h[0], IT_ST0, 1);
	CU_ASSERT_EQUAL(inflight_burst(d, h[0], st, 300), 0);
	it_stop_ok(d);
}

/* ---- Lock-out ----------------------------------------------------------------------------------
 */

/*
 * One uid grabs connections from three processes until refused: the
 * per-pid limit stops each process, the per-uid limit the uid. While it
 * holds them and keeps hammering connect, a tenant of another uid connects
 * and gets its invalidations answered exactly, and root still gets in.
 * Afterwards the daemon holds exactly the descriptors it held before.
 */
static void test_lockout_per_uid(void)
{
	struct attack_report r[3], fin;
	struct attacker a[3];
	struct it_bystander b;
	struct iommu_nest *h0;
	long fd0, fd1, rss0, rss1;
	struct nestd *d;
	double p99;
	int held = 0;

	IT_REQUIRE_ROOT();
	d = it_start(OPEN_SOCKET "[policy]\nmax_clients = 64\nmax_clients_per_uid = 12\n"
				 "max_clients_per_pid = 8\n");
	open_up(d);
	h0 = it_connect(d, "operator");
	CU_ASSERT_FATAL(it_wait_sessions(h0, 1));
	fd0 = it_daemon_fds(d);
	rss0 = it_daemon_rss_kib(d);
	for (int i = 0; i < 3; i++) {
		a[i] = attacker_start(d, false, 1000);
		CU_ASSERT_FATAL(attacker_report(&a[i], &r[i]));
		held += r[i].held;
		CU_ASSERT_EQUAL(r[i].refused_status, -EUSERS);
	}
	/* 8 + 4 + 0: the first process hits its per-pid limit, then the uid is full. */
	CU_ASSERT_EQUAL(r[0].held, 8);
	CU_ASSERT_EQUAL(r[0].refused_limit, 8);
	CU_ASSERT_PTR_NOT_NULL(strstr(r[0].refused_why, "max_clients_per_pid"));
	CU_ASSERT_EQUAL(r[1].held, 4);
	CU_ASSERT_EQUAL(r[1].refused_limit, 12);
	CU_ASSERT_PTR_NOT_NULL(strstr(r[1].refused_why, "max_clients_per_uid"));
	CU_ASSERT_EQUAL(r[2].held, 0);
	CU_ASSERT_EQUAL(r[2].refused_limit, 12);
	CU_ASSERT_EQUAL(held, 12);

	/* During the attack: a tenant of another uid connects and is served exactly. */
	b.h = it_connect_as(d, "bystander", BYSTANDER_UID, BYSTANDER_UID);
	b.st = it_alloc_st(b.h, IT_ST1, 0x5eed);
	b.round = 0;
	p99 = bystander_rounds(&b, 300);
	it_close(it_connect(d, "root-during-attack"));
	CU_ASSERT_EQUAL(it_stats(h0).sessions_active, 1 + 12 + 1);
	for (int i = 0; i < 3; i++) {
		attacker_halt(&a[i], &fin);
		CU_ASSERT_EQUAL(fin.hammer_odd, 0);
		fprintf(stderr, "    attacker %d: held %d, %d connects refused while holding\n", i,
			fin.held, fin.hammered);
		if (fin.hammer_odd)
			fprintf(stderr, "    ... %d of them answered otherwise (last: %d)\n",
				fin.hammer_odd, fin.odd_what);
	}
	for (int i = 0; i < 3; i++)
		attacker_release(&a[i]);
	it_close(b.h);
	CU_ASSERT(it_wait_sessions(h0, 1));
	fd1 = it_daemon_fds(d);
	rss1 = it_daemon_rss_kib(d);
	fprintf(stderr,
		"    bystander p99 %.1f us during the attack; daemon fds %ld -> %ld, "
		"RSS %ld -> %ld KiB\n",
		p99, fd0, fd1, rss0, rss1);
	CU_ASSERT_EQUAL(fd1, fd0);
	it_stop_ok(d);
}

/*
 * max_clients 17 keeps 1 slot for administrators: a tenant gets 16 (one of
 * them taken by the operator's own first connection), root the last one.
 */
static void test_admin_reserve(void)
{
	struct attack_report r, fin;
	struct attacker a;
	struct iommu_nest *h0;
	struct nestd *d;

	IT_REQUIRE_ROOT();
	d = it_start(OPEN_SOCKET "[policy]\nmax_clients = 17\nmax_clients_per_uid = 0\n"
				 "max_clients_per_pid = 0\n");
	open_up(d);
	h0 = it_connect(d, "operator");
	CU_ASSERT_FATAL(it_wait_sessions(h0, 1));
	a = attacker_start(d, false, 1000);
	CU_ASSERT_FATAL(attacker_report(&a, &r));
	CU_ASSERT_EQUAL(r.held, 15);
	CU_ASSERT_EQUAL(r.refused_status, -EUSERS);
	CU_ASSERT_EQUAL(r.refused_limit, 16);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.refused_why, "kept for administrators"));
	/* Another tenant uid is refused the same way... */
	expect_connect_refused(d, BYSTANDER_UID, BYSTANDER_UID, -EUSERS, 16,
			       "kept for administrators");
	/* ...root takes the reserved slot, and past max_clients nobody gets in. */
	it_connect(d, "operator-2");
	expect_connect_refused(d, 0, 0, -EUSERS, 17, "too many clients");
	attacker_halt(&a, &fin);
	attacker_release(&a);
	CU_ASSERT_EQUAL(fin.hammer_odd, 0);
	it_stop_ok(d);
}

/* A connection that says nothing is closed at the deadline; one that said Hello stays. */
static void test_hello_deadline(void)
{
	struct nestd *d = it_start("[policy]\nhello_timeout_ms = 300\n");
	IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
	IommuNest__Stats stats = IOMMU_NEST__STATS__INIT;
	IommuNest__Reply *rep;
	int good = it_raw_connect(d), silent;

	it_raw_hello(good);
	/* Accepted after good: its deadline falls after good's. */
	silent = it_raw_connect(d);
	expect_refused(silent, -ETIMEDOUT, 300, "no Hello within hello_timeout_ms");
	req.body_case = IOMMU_NEST__REQUEST__BODY_STATS;
	req.stats = &stats;
	rep = it_raw_call(good, &req, 7);
	CU_ASSERT_EQUAL(rep->status, 0);
	iommu_nest__reply__free_unpacked(rep, NULL);
	it_stop_ok(d);
}

/*
 * Silent connections as an attack: a tenant holds as many as its limit
 * allows (8) without ever saying Hello and replaces each one the deadline
 * closes (-ETIMEDOUT, then EOF). Another tenant is served exactly while
 * that goes on.
 */
static void test_hello_deadline_attack(void)
{
	struct attack_report r, fin;
	struct attacker a;
	struct it_bystander b;
	struct nestd *d;
	double p99;

	IT_REQUIRE_ROOT();
	d = it_start(OPEN_SOCKET "[policy]\nhello_timeout_ms = 200\nmax_clients = 16\n"
				 "max_clients_per_uid = 8\nmax_clients_per_pid = 8\n");
	open_up(d);
	a = attacker_start(d, true, 8);
	CU_ASSERT_FATAL(attacker_report(&a, &r));
	CU_ASSERT_EQUAL(r.held, 8);
	/* The deadline is closing the silent ones: the attack is under way. */
	CU_ASSERT_FATAL(attacker_ticks(&a, 3));
	b.h = it_connect_as(d, "bystander", BYSTANDER_UID, BYSTANDER_UID);
	b.st = it_alloc_st(b.h, IT_ST1, 0x5eed);
	b.round = 0;
	p99 = bystander_rounds(&b, 200);
	/* ...and still going after the bystander's rounds. */
	CU_ASSERT(attacker_ticks(&a, 3));
	attacker_halt(&a, &fin);
	attacker_release(&a);
	fprintf(stderr, "    bystander p99 %.1f us; %d silent connections closed at the deadline\n",
		p99, fin.deadline_closes);
	CU_ASSERT(fin.deadline_closes >= 6);
	it_stop_ok(d);
}

/* ---- The descriptor limit and the notify socket ---------------------------------------------- */

/* A fake $NOTIFY_SOCKET: an abstract datagram socket this process reads. */
static int notify_listen(char *name, size_t len)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	static int serial;
	socklen_t sl;

	CU_ASSERT_FATAL(fd >= 0);
	/* Unique per call: a case that failed fatally leaves its socket bound. */
	snprintf(name, len, "@nestd-it-notify-%d-%d", (int)getpid(), ++serial);
	snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1, "%s", name + 1);
	sl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name));
	CU_ASSERT_EQUAL_FATAL(bind(fd, (struct sockaddr *)&sa, sl), 0);
	return fd;
}

/* Waits (bounded) for a notification containing want; the text in buf. */
static bool notify_wait(int fd, const char *want, char *buf, size_t len)
{
	uint64_t deadline = it_now_ns() + (uint64_t)it_timeout_ms() * 1000000;

	while (it_now_ns() < deadline) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;

		if (poll(&p, 1, 100) != 1)
			continue;
		n = recv(fd, buf, len - 1, 0);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		if (strstr(buf, want))
			return true;
	}
	return false;
}

static void notify_drain(int fd)
{
	char buf[512];

	while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		;
}

/* Starts a daemon that notifies fd's socket, with the given watchdog period and wrapper. */
static struct nestd *start_notified(const char *name, const char *wdog_usec, const char *prefix,
				    const char *body)
{
	const char *w = getenv("NESTD_DAEMON_WRAPPER");
	char *saved = w ? strdup(w) : NULL, wrapper[512];
	struct nestd *d;

	setenv("NOTIFY_SOCKET", name, 1);
	if (wdog_usec)
		setenv("WATCHDOG_USEC", wdog_usec, 1);
	if (prefix) {
		snprintf(wrapper, sizeof(wrapper), "%s %s", prefix, saved ? saved : "");
		setenv("NESTD_DAEMON_WRAPPER", wrapper, 1);
	}
	d = it_start(body);
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	if (saved)
		setenv("NESTD_DAEMON_WRAPPER", saved, 1);
	else
		unsetenv("NESTD_DAEMON_WRAPPER");
	free(saved);
	return d;
}

/* The lowest descriptor number free in the daemon: lowering its limit there makes it EMFILE. */
static int daemon_lowest_free_fd(const struct nestd *d)
{
	char path[64];

	for (int fd = 0;; fd++) {
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)d->pid, fd);
		if (access(path, F_OK))
			return fd;
	}
}

#define FD_CROWD 1100

/*
 * The clamp a daemon under LimitNOFILE=1024 logs for max_clients = 2000,
 * with the [daemon] keys daemon and body's [policy].
 */
static int clamped_cap(const char *daemon, const char *policy, int *per_client)
{
	char name[64], body[256], *log, *at;
	int nfd = notify_listen(name, sizeof(name)), cap = -1;
	struct nestd *d;

	snprintf(body, sizeof(body), "%s[policy]\nmax_clients = 2000\n%s", daemon, policy);
	d = start_notified(name, NULL, "prlimit --nofile=1024:1024", body);
	log = it_read_file(d->log_path);
	CU_ASSERT_PTR_NOT_NULL_FATAL(log);
	at = strstr(log, "max_clients 2000 is more than RLIMIT_NOFILE ");
	CU_ASSERT_PTR_NOT_NULL_FATAL(at);
	at = strstr(at, "kept back, ");
	CU_ASSERT_FATAL(at && sscanf(at, "kept back, %d per client): serving at most %d clients",
				     per_client, &cap) == 2);
	free(log);
	it_stop_ok(d);
	close(nfd);
	return cap;
}

/*
 * A shared queue holds two descriptors of the daemon's (kick and call):
 * while queues are allowed, a client counts three against RLIMIT_NOFILE
 * in the root mode.
 */
static void test_fd_limit_queues(void)
{
	int per_q = 0, per_noq = 0;
	int with_q = clamped_cap(IT_ROOT_MODE, "", &per_q);
	int without = clamped_cap(IT_ROOT_MODE, "max_queue_bytes = 0\n", &per_noq);

	CU_ASSERT_EQUAL(per_q, 3);
	CU_ASSERT_EQUAL(per_noq, 1);
	CU_ASSERT(without > 300);
	CU_ASSERT(with_q >= without / 3 - 1 && with_q <= without / 3 + 1);
}

/*
 * With a VM context per client (the default) each client holds one more:
 * its context's own iommufd. The clamp counts it, and the clamped number
 * of clients, each with its context open (a device claimed), really fits
 * under LimitNOFILE=1024: every one is served and the next is refused with
 * -EUSERS. Counted as one per client, the clamp would let through about
 * twice as many, whose contexts' opens would run out of descriptors.
 */
static void test_fd_limit_contexts(void)
{
	static int fds[FD_CROWD];
	int per_ctx = 0, per_root = 0, per_ctx_q = 0, cap = 0, status = -1, n = 0;
	int root = clamped_cap(IT_ROOT_MODE, "max_queue_bytes = 0\n", &per_root);
	int ctx_q = clamped_cap("vm_contexts = true\n", "", &per_ctx_q);
	char name[64], *log, *at;
	struct rlimit rl = {0};
	uint64_t limit = 0;
	struct nestd *d;
	int nfd;

	CU_ASSERT_EQUAL(per_root, 1);
	CU_ASSERT_EQUAL(per_ctx_q, 4);
	CU_ASSERT(ctx_q >= root / 4 - 1 && ctx_q <= root / 4 + 1);
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur < FD_CROWD + 64)
		IT_SKIP("this process may not open 1,100 connections");
	nfd = notify_listen(name, sizeof(name));
	d = start_notified(
	    name, NULL, "prlimit --nofile=1024:1024",
	    "vm_contexts = true\n[policy]\nmax_clients = 2000\n"
	    "max_clients_per_uid = 0\nmax_clients_per_pid = 0\nmax_queue_bytes = 0\n");
	log = it_read_file(d->log_path);
	CU_ASSERT_PTR_NOT_NULL_FATAL(log);
	at = strstr(log, "max_clients 2000 is more than RLIMIT_NOFILE ");
	CU_ASSERT_PTR_NOT_NULL_FATAL(at);
	at = strstr(at, "kept back, ");
	CU_ASSERT_FATAL(at && sscanf(at, "kept back, %d per client): serving at most %d clients",
				     &per_ctx, &cap) == 2);
	free(log);
	CU_ASSERT_EQUAL(per_ctx, 2);
	CU_ASSERT_FATAL(cap > 100 && cap < FD_CROWD);
	CU_ASSERT(cap >= root / 2 - 1 && cap <= root / 2 + 1);
	/* cap clients, each with a context: all fit. */
	for (n = 0; n < cap; n++) {
		fds[n] = backlog_connect(d->sock);
		CU_ASSERT_FATAL(fds[n] >= 0);
		CU_ASSERT_EQUAL_FATAL(it_send_hello(fds[n], 1, "ctx"), 0);
		CU_ASSERT_EQUAL_FATAL(
		    recv_reply(fds[n], it_timeout_ms(), &status, NULL, NULL, 0, NULL), 0);
		CU_ASSERT_EQUAL_FATAL(status, 0);
		CU_ASSERT_FATAL(it_raw_alloc_st(fds[n], IT_ST0, 2) != 0);
	}
	/* One more: refused with the limit, not left to EMFILE. */
	fds[n] = backlog_connect(d->sock);
	CU_ASSERT_FATAL(fds[n] >= 0);
	(void)it_send_hello(fds[n], 1, "ctx");
	CU_ASSERT_EQUAL(recv_reply(fds[n], it_timeout_ms(), &status, &limit, NULL, 0, NULL), 0);
	CU_ASSERT_EQUAL(status, -EUSERS);
	CU_ASSERT_EQUAL(limit, (uint64_t)cap);
	for (int i = 0; i <= n; i++)
		close(fds[i]);
	it_stop_ok(d);
	close(nfd);
}

/*
 * LimitNOFILE=1024 with max_clients = 2000: the daemon clamps max_clients
 * to what fits and refuses the rest with -EUSERS; then, with its limit
 * pushed down to the descriptors it holds (EMFILE on every new one), it
 * still refuses newcomers with a reason, keeps petting the watchdog and
 * serves the clients it has.
 */
static void test_fd_limit_watchdog(void)
{
	static int fds[FD_CROWD];
	char name[64], buf[512], *log, *at;
	int nfd = notify_listen(name, sizeof(name)), ok = 0, refused = 0, cap = 0;
	struct rlimit rl = {0}, low;
	struct it_bystander b;
	struct nestd *d;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur < FD_CROWD + 64)
		IT_SKIP("this process may not open 1,100 connections");
	d = start_notified(name, "200000", "prlimit --nofile=1024:1024",
			   "[policy]\nmax_clients = 2000\nmax_clients_per_uid = 0\n"
			   "max_clients_per_pid = 0\n");
	log = it_read_file(d->log_path);
	CU_ASSERT_PTR_NOT_NULL_FATAL(log);
	at = strstr(log, "max_clients 2000 is more than RLIMIT_NOFILE ");
	CU_ASSERT_PTR_NOT_NULL_FATAL(at);
	at = strstr(at, "serving at most ");
	CU_ASSERT_FATAL(at && sscanf(at, "serving at most %d clients", &cap) == 1);
	free(log);
	CU_ASSERT_FATAL(cap > 100 && cap < 1024);
	b = it_bystander_open(d);
	CU_ASSERT_FATAL(it_wait_sessions(b.h, 1));

	for (int i = 0; i < FD_CROWD; i++) {
		fds[i] = backlog_connect(d->sock);
		CU_ASSERT_FATAL(fds[i] >= 0);
		/* Fails (EPIPE) only for one already refused and closed: its reply reads below. */
		(void)it_send_hello(fds[i], (uint64_t)i + 1, "limits");
	}
	for (int i = 0; i < FD_CROWD; i++) {
		uint64_t id = 0, limit = 0;
		int status = 0;

		/* A refused one may have been closed before its Hello was read. */
		CU_ASSERT_EQUAL_FATAL(
		    recv_reply(fds[i], it_timeout_ms(), &status, &limit, NULL, 0, &id), 0);
		if (status == 0 && id == (uint64_t)i + 1) {
			ok++;
		} else {
			refused++;
			CU_ASSERT_EQUAL(status, -EUSERS);
			CU_ASSERT_EQUAL(limit, (uint64_t)cap);
		}
	}
	fprintf(stderr, "    max_clients clamped to %d: %d served, %d refused\n", cap, ok, refused);
	CU_ASSERT_EQUAL(ok, cap - 1);
	CU_ASSERT_EQUAL(ok + refused, FD_CROWD);
	notify_drain(nfd);
	for (int i = 0; i < 3; i++)
		CU_ASSERT(notify_wait(nfd, "WATCHDOG=1", buf, sizeof(buf)));

	/* Now out of descriptors altogether. */
	low.rlim_cur = (rlim_t)daemon_lowest_free_fd(d);
	low.rlim_max = 1024;
	CU_ASSERT_EQUAL_FATAL(prlimit(d->pid, RLIMIT_NOFILE, &low, NULL), 0);
	for (int i = 0; i < 5; i++) {
		int fd = backlog_connect(d->sock);

		CU_ASSERT_FATAL(fd >= 0);
		expect_refused(fd, -EUSERS, (uint64_t)cap, "out of file descriptors");
		close(fd);
	}
	notify_drain(nfd);
	for (int i = 0; i < 3; i++)
		CU_ASSERT(notify_wait(nfd, "WATCHDOG=1", buf, sizeof(buf)));
	it_bystander_check(&b);
	for (int i = 0; i < 10; i++) {
		IommuNest__Request req = IOMMU_NEST__REQUEST__INIT;
		IommuNest__Stats stats = IOMMU_NEST__STATS__INIT;
		IommuNest__Reply *rep;

		req.body_case = IOMMU_NEST__REQUEST__BODY_STATS;
		req.stats = &stats;
		/* The served ones are the first ok (a client counts its queue's descriptors). */
		rep = it_raw_call(fds[i * (ok / 10)], &req, 9);
		CU_ASSERT_EQUAL(rep->status, 0);
		iommu_nest__reply__free_unpacked(rep, NULL);
	}

	/* Descriptors back: newcomers are served again. */
	low.rlim_cur = 1024;
	CU_ASSERT_EQUAL(prlimit(d->pid, RLIMIT_NOFILE, &low, NULL), 0);
	for (int i = 0; i < FD_CROWD; i++)
		close(fds[i]);
	CU_ASSERT(it_wait_sessions(b.h, 1));
	it_close(it_connect(d, "after"));
	it_bystander_check(&b);
	it_stop_ok(d);
	close(nfd);
}

/*
 * STATUS= follows a change within the status tick, with a watchdog that
 * would not fire for half an hour; and it is rate-limited, not sent per
 * request: over a burst of requests, at most one a second (measured).
 */
static void test_status_on_change(void)
{
	char name[64], buf[512];
	int nfd = notify_listen(name, sizeof(name)), n_status = 0;
	struct nestd *d = start_notified(name, "3600000000", NULL, NULL);
	struct iommu_nest *h;
	struct iommu_nest_stats st;
	uint64_t t0, el;

	CU_ASSERT_FATAL(notify_wait(nfd, "READY=1", buf, sizeof(buf)));
	h = it_connect(d, "status");
	it_alloc_st(h, IT_ST0, 1);
	CU_ASSERT(notify_wait(nfd, "STATUS=1 clients, 1 HWPTs", buf, sizeof(buf)));
	notify_drain(nfd);
	t0 = it_now_ns();
	for (int i = 0; i < 3000; i++)
		CU_ASSERT_EQUAL(iommu_nest_stats(h, &st), 0);
	el = it_now_ns() - t0;
	for (;;) {
		ssize_t r = recv(nfd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

		if (r <= 0)
			break;
		buf[r] = '\0';
		n_status += strstr(buf, "STATUS=") != NULL;
	}
	fprintf(stderr, "    %d STATUS= over 3000 requests in %.2f s\n", n_status,
		(double)el / 1e9);
	CU_ASSERT((uint64_t)n_status <= el / 1000000000u + 2);
	it_stop_ok(d);
	close(nfd);
}

int main(int argc, char **argv)
{
	static const struct it_case cases[] = {
	    {"reload_admin_groups", test_reload_admin_groups},
	    {"reload_allow", test_reload_allow},
	    {"reload_max_hwpts", test_reload_max_hwpts},
	    {"reload_max_inflight", test_reload_max_inflight},
	    {"reload_rate", test_reload_rate},
	    {"reload_buffered", test_reload_buffered},
	    {"reload_max_clients", test_reload_max_clients},
	    {"reload_mapped_bytes", test_reload_mapped_bytes},
	    {"reload_conn_limits", test_reload_conn_limits},
	    {"reload_bad_file_kept", test_reload_bad_file_kept},
	    {"reload_runtime_only", test_reload_runtime_only},
	    {"zero_unlimited", test_zero_unlimited},
	    {"lockout_per_uid", test_lockout_per_uid},
	    {"admin_reserve", test_admin_reserve},
	    {"hello_deadline", test_hello_deadline},
	    {"hello_deadline_attack", test_hello_deadline_attack},
	    {"fd_limit_watchdog", test_fd_limit_watchdog},
	    {"fd_limit_queues", test_fd_limit_queues},
	    {"fd_limit_contexts", test_fd_limit_contexts},
	    {"status_on_change", test_status_on_change},
	    {NULL, NULL},
	};

	return it_main(argc, argv, "limits", cases);
}
