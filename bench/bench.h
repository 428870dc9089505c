/* SPDX-License-Identifier: MIT */
/*
 * iommu-nest-bench: shared declarations of the benchmark's pieces.
 *
 *   bench_hist.c      log-linear latency histogram (~3% resolution)
 *   bench_workload.c  the invalidation workloads (entry generators)
 *   bench_proc.c      daemon start/stop, /proc readers, limits
 *   bench_floor.c     the floors: raw SOCK_SEQPACKET ping-pong and the sim
 *                     backend driven in-process one entry per call
 *   bench_smmuv3.c    SMMUv3 command streams through the validator and
 *                     coalescer in-process
 *   bench_batch.c     VT-d batches through the validator and inv_batch_run
 *                     into the sim, in-process
 *   iommu_nest_bench.c  options, client processes, table, acceptance
 */
#ifndef IOMMU_NEST_BENCH_H
#define IOMMU_NEST_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <time.h>

#include "iommu_nest.h"

/* ---- time ---------------------------------------------------------------- */

static inline uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void bench_sleep_ns(uint64_t ns);

/* ---- histogram ----------------------------------------------------------- */

#define HIST_SUB_BITS 5
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS (64u * HIST_SUB)

struct hist {
	uint64_t count;
	uint64_t sum_ns;
	uint64_t max_ns;
	uint64_t b[HIST_BUCKETS];
};

void hist_add(struct hist *h, uint64_t ns);
void hist_merge(struct hist *dst, const struct hist *src);
/* Value (ns) at quantile q in [0, 1]; 0 for an empty histogram. */
uint64_t hist_quantile(const struct hist *h, double q);

/* ---- workloads ----------------------------------------------------------- */

struct wl_state {
	uint64_t rng;    /* xorshift64* state */
	uint64_t cursor; /* sequential page cursor */
	uint64_t seq;    /* requests generated */
};

struct workload {
	const char *name;  /* table label */
	const char *descr; /* one line for the docs */
	uint32_t batch;    /* entries per request */
	void (*gen)(struct wl_state *st, struct iommu_nest_vtd_inv *e, uint32_t n);
};

extern const struct workload bench_workloads[];
extern const size_t bench_n_workloads;

const struct workload *workload_find(const char *name);
void wl_state_init(struct wl_state *st, uint32_t client);
/* The sequential generator, for the batch-size sweep. */
void wl_gen_seq(struct wl_state *st, struct iommu_nest_vtd_inv *e, uint32_t n);
void wl_gen_lazy(struct wl_state *st, struct iommu_nest_vtd_inv *e, uint32_t n);

/* ---- processes and /proc ------------------------------------------------- */

struct daemon_proc {
	pid_t pid;          /* 0: not ours (--socket) */
	pid_t stat_pid;     /* whose /proc files we read */
	char socket[108];
	char config[256];
	char log[256];
};

/* Writes a config and starts the daemon; waits until it accepts. */
int daemon_start(struct daemon_proc *d, const char *daemon_bin, const char *dir,
		 bool coalesce, const char *tag);
/* As daemon_start, with extra appended to the config (more sections or keys). */
int daemon_start_ext(struct daemon_proc *d, const char *daemon_bin, const char *dir, bool coalesce,
		     const char *tag, const char *extra);

/* Tenant churn against a bystander (bench_churn.c). */
struct churn_result {
	double fill_s;			     /* allocating the held HWPTs */
	uint64_t idle_p50_ns, idle_p99_ns;   /* bystander, HWPTs held, no churn */
	uint64_t churn_p50_ns, churn_p99_ns; /* bystander during Alloc/Destroy churn */
	double pairs_per_s;		     /* the churner's Alloc/Destroy pairs meanwhile */
	long rss_kib;
};
int bench_churn(const char *daemon_bin, const char *dir, uint32_t held, struct churn_result *out);

/* SIGTERM, then SIGKILL after a grace period. */
void daemon_stop(struct daemon_proc *d);
/* The pid on the other end of a connected unix socket (SO_PEERCRED). */
pid_t peer_pid(int fd);

/* utime + stime of pid, in seconds (from /proc/pid/stat). -1 on error. */
double proc_cpu_seconds(pid_t pid);
/* VmRSS of pid in KiB (from /proc/pid/status). -1 on error. */
long proc_rss_kib(pid_t pid);
/* Raises RLIMIT_NOFILE's soft limit to want (or the hard limit). */
long raise_nofile(long want);

/*
 * CPU placement: the server side (daemon, echo peer, in-process floor) on
 * bench_server_cpu, clients round-robin over the other CPUs; -1: none.
 */
extern int bench_server_cpu;
extern bool bench_clients_on_server_cpu; /* everything on one CPU */
void pin_server(void);         /* the calling process */
void pin_client(uint32_t idx); /* the calling process */
void pin_none(void);

/* Waits for pid up to timeout_ms; kills it after that. Returns exit status. */
int wait_child(pid_t pid, int timeout_ms);

struct run_result {
	uint64_t requests;       /* completed inside the measured window */
	uint64_t entries;        /* client entries completed inside the window */
	uint64_t errors;         /* requests answered with a non-zero status */
	uint64_t submitted;      /* backend entries submitted (daemon stats / in-process) */
	uint64_t received;       /* entries the daemon received (daemon stats) */
	uint64_t submissions;    /* backend calls */
	double seconds;          /* measured window */
	double daemon_cpu;       /* daemon utime + stime over the window */
	long rss_kib;            /* daemon VmRSS at the end */
	struct hist lat;         /* round-trip latency of every request */
};

/* ---- client processes ---------------------------------------------------- */

/* What one client process reports back, in shared memory. */
struct client_slot {
	uint64_t requests; /* completed inside the measured window */
	uint64_t entries;
	uint64_t errors;
	int32_t status;    /* 0, or the negative errno that stopped the client */
	char why[96];
	struct hist lat;
};

/* Shared between the parent and its client processes (MAP_SHARED). */
struct shared {
	volatile uint32_t measuring; /* completions count from now on */
	volatile uint32_t stop;      /* finish what is in flight and return */
	uint32_t ready;              /* atomically incremented */
	uint32_t done;
	int go_fd;                   /* read end: EOF means go */
	struct client_slot c[];
};

static inline bool sh_counting(const struct shared *sh)
{
	return __atomic_load_n(&sh->measuring, __ATOMIC_RELAXED) &&
	       !__atomic_load_n(&sh->stop, __ATOMIC_RELAXED);
}

static inline bool sh_stopping(const struct shared *sh)
{
	return __atomic_load_n(&sh->stop, __ATOMIC_RELAXED);
}

/* The client processes of the run in progress (for the watchdog). */
extern pid_t *volatile bench_children;
extern volatile uint32_t bench_n_children;

/* Called by a client once set up: blocks until every client is. */
void harness_ready(struct shared *sh);

/* A client process body: set up, harness_ready(), run until sh_stopping(). */
typedef int (*client_fn)(uint32_t idx, struct shared *sh, void *arg);

/* Parent-side marks: 0 = window opens, 1 = window closes, 2 = clients drained. */
typedef void (*mark_fn)(void *ctx, int which);

/*
 * Forks n clients running fn, lets them go together, measures for
 * `seconds` after `warmup`, and sums what they report into out (requests,
 * entries, errors, lat, seconds). Returns 0 or the first client failure.
 */
int harness_run(uint32_t n, client_fn fn, void *arg, double warmup, double seconds,
		mark_fn mark, void *ctx, struct run_result *out);

/* SMMUv3 command stream rows (printed; csv rows when csv). */
int bench_smmuv3(double seconds, FILE *csv);

/* VT-d in-process batch rows (printed; csv rows when csv). */
int bench_batch(double seconds, FILE *csv);

/* ---- floors -------------------------------------------------------------- */


/*
 * Raw SOCK_SEQPACKET ping-pong, nclients client processes against one
 * echo process, window requests in flight per client (1: synchronous).
 * Request and reply are protobuf-c encodings of the same messages the
 * daemon exchanges for a 1-entry invalidation.
 */
int floor_pingpong(uint32_t nclients, uint32_t window, double seconds, double warmup,
		   struct run_result *out);

/*
 * The workload driven straight into the sim backend in-process, one entry
 * per backend invalidate call (what a VMM owning /dev/iommu does today).
 */
int floor_inproc(const struct workload *wl, double seconds, struct run_result *out);

/*
 * The sim backend in-process with one VT-d device vf0 and a nested HWPT
 * on it (*hwpt), for the in-process figures; *cfgp (if asked) is the
 * default configuration it was opened with. 0 or a negative errno.
 */
struct backend;
struct config;
int bench_sim_vtd(const struct config **cfgp, struct backend **be, uint32_t *hwpt);

/* Sizes of the 1-entry request and reply packets (for the report). */
void floor_msg_sizes(size_t *req, size_t *rep);

/* ---- the shared-memory queue (bench_queue.c) ------------------------------ */

/* Two processes on two CPUs passing one cache line: the polled round-trip floor. */
int floor_shm_spin(double seconds, double warmup, struct run_result *out);
/* Two processes passing a token through two eventfds: the sleep/wake-up floor. */
int floor_eventfd(double seconds, double warmup, struct run_result *out);
/* The daemon's CPU seconds over `seconds` with n queues idle after their poll window. */
int queue_idle_cpu(const char *socket, pid_t pid, uint32_t n, double seconds, double *cpu_s);

/* Opens n idle connections (Hello done) to path; fds in *fds. */
int open_idle_connections(const char *path, int n, int *fds);

#endif
