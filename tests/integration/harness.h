/* SPDX-License-Identifier: MIT */
/*
 * Integration test harness: runs the real iommu-nestd binary on a private
 * socket, talks to it through libiommu-nest or raw protobuf packets, and
 * wraps CUnit so that every test program looks the same.
 *
 * Environment:
 *   NESTD_DAEMON          daemon binary (default: the build tree's)
 *   NESTD_DAEMON_WRAPPER  command prefix, e.g. "valgrind --error-exitcode=99"
 *   NESTD_BACKEND         backend = ... (default sim)
 *   NESTD_CONFIG_EXTRA    appended to every config ("\n" escapes allowed)
 *   NESTD_DEVICES         device sections replacing the default ones
 *   NESTD_VM_CONTEXTS     "0": [daemon] vm_contexts = false, the root mode (integration-root/,
 *                         kernel/integration-root); else the default, a context per client
 *   NESTD_KEEP_LOGS       print the daemon log of every test, not only failures
 *   NESTD_KTEST_KERNEL    the kernel tier's kernel, "6.12" or "7.x" (run-qemu.sh)
 */
#ifndef IOMMU_NESTD_IT_HARNESS_H
#define IOMMU_NESTD_IT_HARNESS_H

#include <CUnit/CUnit.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <unistd.h>

#include "iommu_nest.h"
#include "iommu_nest.pb-c.h"

/* Device names every default config declares (sim backend). */
#define IT_VTD0 "vtd0"
#define IT_VTD1 "vtd1"
#define IT_ST0 "st0"
#define IT_ST1 "st1"

/* A VT-d address width the sim accepts at attach. */
#define IT_VTD_AW 48
#define IT_PAGE 4096ULL

struct nestd {
	pid_t pid;
	bool running;
	int exit_code; /* once it exited (running false) */
	char dir[96]; /* short: the socket path must fit sun_path */
	char sock[108];
	char cfg_path[300];
	char log_path[300];
};

/* ---- Daemon lifecycle ---------------------------------------------------- */

/* Writes text to path (0 or -errno). */
int it_write_file(const char *path, const char *text);

/*
 * Starts the daemon with the default config plus body (more [sections] or
 * keys of [daemon]; may be NULL) and waits until its socket accepts. Fails
 * the current test (fatally) if it does not come up.
 */
struct nestd *it_start(const char *body);

/* The whole file (NUL-terminated, malloc'd), or NULL. */
char *it_read_file(const char *path);

/* Replaces the first `from` in the daemon's config file by `to` (fatal if absent). */
void it_edit_config(struct nestd *d, const char *from, const char *to);

/*
 * SIGHUP, then waits (bounded) for the daemon to log the outcome: true if
 * it applied the file, false if it refused it (or never answered).
 */
bool it_sighup_reload(struct nestd *d);

/*
 * SIGTERM, waits for exit and returns the exit code (0: clean shutdown),
 * 128 + signal if killed by a signal, -1 on a wait failure. Prints the log
 * when the exit was not clean. Frees d.
 */
int it_stop(struct nestd *d);

/* it_stop() with CU_ASSERT_EQUAL(exit code, 0). */
void it_stop_ok(struct nestd *d);

/*
 * A crash: SIGKILL, waited for (the socket, config and log stay). Then
 * it_restart() starts the daemon again in the same place with the same
 * config, as systemd would, and waits until its socket accepts.
 */
void it_crash(struct nestd *d);
void it_restart(struct nestd *d);

/* Freezes / resumes the daemon process (deterministic batching tests). */
void it_freeze(struct nestd *d);
void it_thaw(struct nestd *d);

/* Bounded reply timeout in ms, longer under a wrapper. */
int it_timeout_ms(void);

/*
 * The errno an invalidation naming a live object that is not a nested HWPT
 * (a nest parent) must get: the kernel's rule, -ENOENT on 6.12, -EINVAL on
 * 7.x. On the kernel tier the booted kernel's (NESTD_KTEST_KERNEL); on the
 * sim the sim_kernel the test configured ("6.12", "7.0"; NULL: default).
 */
int it_wrong_object_errno(const char *sim_kernel);

/*
 * What IOMMU_HWPT_GET_DIRTY_BITMAP answers when its walk of the mapped
 * areas fails: a range not mapped from end to end, or tracking off. 6.12
 * says -EINVAL (since 6.12.118, which returns the walk's result); 7.x
 * drops it: 0. Only what the walk reached is reported either way.
 */
int it_dirty_walk_errno(const char *sim_kernel);
/*
 * Whether the default config gives each client its own VM context (the
 * daemon's default) rather than the root mode (NESTD_VM_CONTEXTS=0). A
 * case whose body sets vm_contexts itself knows its mode.
 */
bool it_vm_contexts(void);
/*
 * Descriptors the daemon holds for one client's VM context once it claimed
 * a device: its own /dev/iommu open (the sim: its anchor memfd); mock
 * devices add none (a VFIO device would add its cdev). 0 in root mode.
 */
int it_context_fds(void);
/* A body's line for the cases about the root mode (one iommufd shared by all clients). */
#define IT_ROOT_MODE "vm_contexts = false\n"
/* Whether the answers follow Linux 7.x (same choice of kernel as above). */
bool it_kernel7_rules(const char *sim_kernel);
/* CLOCK_MONOTONIC in ns, the clock the daemon's timers and rate limits use. */
uint64_t it_now_ns(void);

/*
 * The most requests a token bucket of rate per second (and a burst of one
 * second's worth) can grant over elapsed_ns: the burst plus what can have
 * refilled in the time a test actually measured, so that a rate-limit test
 * holds however slow the machine is.
 */
uint64_t it_bucket_max_granted(uint32_t rate, uint64_t elapsed_ns);

/* ---- Client-library connections (closed by the per-test teardown) -------- */

struct iommu_nest *it_connect(struct nestd *d, const char *name);
/*
 * As it_connect(), as another user: the test must run as root; the socket
 * and its directory are opened up to that user. A plain tenant (no admin
 * rights) for tests of isolation, as root is always an admin.
 */
struct iommu_nest *it_connect_as(struct nestd *d, const char *name, uid_t uid, gid_t gid);
#define IT_NOBODY 65534
#define IT_REQUIRE_ROOT()                                                    \
	do {                                                                 \
		if (geteuid() != 0)                                          \
			IT_SKIP("needs root (to connect as another user)"); \
	} while (0)

/* Closes a handle opened by it_connect() before the teardown would. */
void it_close(struct iommu_nest *h);

bool it_has_cap(struct iommu_nest *h, uint32_t cap);
bool it_has_device(struct iommu_nest *h, const char *dev);

/* Polls the daemon's counters (bounded) until sessions_active is want. */
bool it_wait_sessions(struct iommu_nest *h, uint64_t want);

/*
 * The ListClients entry of the client that said Hello as name (an admin
 * request of h): true and *out filled if there is one (the last, if many).
 */
bool it_client_named(struct iommu_nest *h, const char *name, struct iommu_nest_client_info *out);

uint32_t it_alloc_vtd(struct iommu_nest *h, const char *dev);
uint32_t it_alloc_st(struct iommu_nest *h, const char *dev, uint32_t iotlb);
struct iommu_nest_stats it_stats(struct iommu_nest *h);
/*
 * The nest parent of HWPT id, as AllocReply.parent_id gave it to its owner
 * (read back from ListHwpts: h must be an admin, as root is). Fatal if none.
 */
uint32_t it_parent_of(struct iommu_nest *h, uint32_t id);

/* Model IOTLB / PSC page counts of [addr, addr + npages pages). */
uint64_t it_iotlb_pages(struct iommu_nest *h, uint32_t hwpt, uint64_t addr, uint64_t npages);
uint64_t it_psc_pages(struct iommu_nest *h, uint32_t hwpt, uint64_t addr, uint64_t npages);
void it_populate(struct iommu_nest *h, uint32_t hwpt, uint64_t addr, uint64_t npages,
		 uint32_t kind);

/* ---- Raw packets ---------------------------------------------------------- */

/*
 * A plain SOCK_SEQPACKET connection to path, not tracked (the caller
 * closes it): for crowds and forked children. The fd or -errno.
 */
int it_plain_connect(const char *path, bool nonblock);
/* Sends Hello (this protocol version, client_name name) with id; 0 or -errno. */
int it_send_hello(int fd, uint64_t id, const char *name);

/* A plain SOCK_SEQPACKET connection (closed by the teardown). */
int it_raw_connect(struct nestd *d);
void it_raw_close(int fd);
int it_raw_send(int fd, const void *buf, size_t len);
int it_raw_send_req(int fd, const IommuNest__Request *req);
/* Sends a packet with fds attached via SCM_RIGHTS. */
int it_raw_send_fds(int fd, const void *buf, size_t len, const int *fds, int nfds);
/*
 * Waits (bounded) for a packet. Returns the decoded reply, or NULL with
 * *err = 0 at EOF (connection closed), -ETIMEDOUT, -EPROTO (undecodable)
 * or another -errno.
 */
IommuNest__Reply *it_raw_recv(int fd, int *err);
/* Sends Hello (version 1) and checks the reply. */
void it_raw_hello(int fd);
/* Sends req with the given id, returns the reply (fatal if none). */
IommuNest__Reply *it_raw_call(int fd, IommuNest__Request *req, uint64_t id);
/* Allocates a selftest HWPT on dev over a raw connection (fatal on failure). */
uint32_t it_raw_alloc_st(int fd, const char *dev, uint64_t id);
/* True iff the peer closed the connection (after draining nothing else). */
bool it_raw_eof(int fd);

/* ---- Results -------------------------------------------------------------- */

/* The expected state of one entry; error/hw_error only checked as given. */
struct it_expect {
	uint32_t state;
	int32_t error;
	uint32_t hw_error;
};

/* Asserts each entry's state/error/hw_error and reports the first mismatch. */
void it_check_results_at(const struct iommu_nest_entry_result *got,
			 const struct it_expect *want, size_t n, const char *file, int line);
#define it_check_results(got, want, n) it_check_results_at(got, want, n, __FILE__, __LINE__)

/* Every entry NOT_ATTEMPTED with error 0. */
void it_check_all_not_attempted_at(const struct iommu_nest_entry_result *got, size_t n,
				   const char *file, int line);
#define it_check_all_not_attempted(got, n) \
	it_check_all_not_attempted_at(got, n, __FILE__, __LINE__)

/* ---- CUnit wrapper --------------------------------------------------------- */

/*
 * The bystander: a well-behaved library client with its own selftest HWPT
 * that abuse tests run alongside, checking one exactly known invalidation
 * each round (works on the sim and on the kernel's mock alike).
 */
#define IT_BYSTANDER_SAMPLES 8192
struct it_bystander {
	struct iommu_nest *h;
	uint32_t st;
	uint32_t round;
	/* Round trips of the checks since the last report (ns; the first SAMPLES). */
	uint64_t lat_ns[IT_BYSTANDER_SAMPLES];
	uint32_t n_lat;
};
/* Heap-allocated (it holds its samples); freed by the teardown with its handle. */
struct it_bystander *it_bystander_new(struct nestd *d);
struct it_bystander it_bystander_open(struct nestd *d);
void it_bystander_check(struct it_bystander *b);
/*
 * Prints "what: bystander p50/p99/max over N round trips" and starts a
 * new sample set; returns the p99 in ns (printed, for figures: tests do
 * not compare it with a wall-clock bound).
 */
uint64_t it_bystander_report(struct it_bystander *b, const char *what);

/* ---- The daemon seen from outside ------------------------------------------ */

/* VmRSS of the daemon (KiB), -1 if unreadable. */
long it_daemon_rss_kib(const struct nestd *d);
/* Open descriptors of the daemon, -1 if unreadable. */
int it_daemon_fds(const struct nestd *d);
/* Whether RSS figures mean anything (not under ASan or a wrapper like valgrind). */
bool it_rss_meaningful(void);
/* A raw connection (tracked like it_raw_connect) made as another user (root only). */
int it_raw_connect_as(struct nestd *d, uid_t uid, gid_t gid);

struct it_case {
	const char *name;
	CU_TestFunc fn;
};

/*
 * Registers the cases as one suite (with a teardown that stops leftover
 * daemons and closes connections), runs them (argv[1]: only that case) and
 * returns the process exit code: 1 on any failure, 77 when every case was
 * skipped, else 0.
 */
int it_main(int argc, char **argv, const char *suite, const struct it_case *cases);

/* Marks the running case skipped (with a reason) and returns from it. */
void it_note_skip(const char *test, const char *why);
#define IT_SKIP(why)                           \
	do {                                   \
		it_note_skip(__func__, (why)); \
		return;                        \
	} while (0)
#define IT_REQUIRE_CAP(h, cap)                         \
	do {                                           \
		if (!it_has_cap((h), (cap)))           \
			IT_SKIP("daemon lacks " #cap); \
	} while (0)
#define IT_REQUIRE_DEVICE(h, dev)                            \
	do {                                                 \
		if (!it_has_device((h), (dev)))              \
			IT_SKIP("no device " dev " configured"); \
	} while (0)

#endif
