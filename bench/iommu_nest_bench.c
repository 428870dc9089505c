/* SPDX-License-Identifier: MIT */
/*
 * iommu-nest-bench: throughput, latency and cost of iommu-nestd against
 * the floors a socket broker is measured by, all in one run.
 *
 * It starts a daemon (sim backend, one VT-d device, max_entries 4096;
 * once with coalescing, once without) or uses one already running
 * (--socket), forks N client processes - one connection and one VT-d
 * nested HWPT each - replaying a workload synchronously or pipelined, and
 * prints a table per configuration, the floors, and PASS/FAIL lines for
 * the acceptance targets. Everything is bounded: the whole default run
 * takes about 2 minutes on 2 cores and a watchdog ends it at --time-limit.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "bench.h"

#ifndef BENCH_DEFAULT_DAEMON
#define BENCH_DEFAULT_DAEMON "iommu-nestd"
#endif

#define MAX_LIST 16
#define MAX_ROWS 256
#define SWEEP_WL "sweep-seq"

struct opts {
	const char *daemon;
	const char *socket;
	const char *csv;
	const char *tmpdir;
	double duration;
	double warmup;
	uint32_t window;
	uint32_t clients[MAX_LIST];
	uint32_t n_clients;
	uint32_t nc_clients[MAX_LIST]; /* coalescing-disabled run */
	uint32_t n_nc_clients;
	uint32_t sweep[MAX_LIST];
	uint32_t n_sweep;
	const struct workload *wls[MAX_LIST];
	uint32_t n_wls;
	bool sync, async;
	bool floors, idle, nocoalesce, queue;
	uint32_t idle_conns;
	uint32_t churn_hwpts; /* HWPTs the churning tenant holds; 0: no churn run */
	unsigned time_limit;
	int pin; /* server CPU, -1: let the scheduler place everything */
	const char *base_daemon; /* --base-daemon: an older build for the socket A/B rows */
};

/* One measured configuration. */
struct row {
	const char *section; /* "coalesce", "no-coalesce", "sweep" */
	const char *wl;
	uint32_t batch;
	bool async;
	uint32_t window;
	uint32_t clients;
	struct run_result r;
	int rc;
};

static struct opts o;
static struct row rows[MAX_ROWS];
static uint32_t n_rows;
static FILE *csv;

/* Floors. */
static struct run_result pp_sync[MAX_LIST], pp_async[MAX_LIST];
static bool pp_have[MAX_LIST];
static struct run_result inproc[MAX_LIST];
static bool inproc_have[MAX_LIST];
static struct run_result pp_same; /* 1 client, sync, one CPU */
static bool pp_same_have;
static double idle_kib_per_conn = -1;
static struct churn_result churn;
static bool have_churn;
static long idle_rss0, idle_rss1;
/* The shared-queue section: its floors and idle cost. */
static struct run_result shm_floor, efd_floor;
static bool shm_have, efd_have;
static double queue_idle_cpu_s = -1;
#define QUEUE_IDLE_N 64
#define QUEUE_IDLE_S 1.0

/* Daemons we started, for the watchdog. */
static struct daemon_proc *volatile running_daemon;

/* ---- watchdog ------------------------------------------------------------ */

static void on_fatal_signal(int sig)
{
	static const char msg[] = "\nbench: time limit reached or interrupted; cleaning up\n";
	struct daemon_proc *d = running_daemon;
	pid_t *ch = bench_children;

	for (uint32_t i = 0; ch && i < bench_n_children; i++)
		kill(ch[i], SIGKILL);
	if (d && d->pid > 0)
		kill(d->pid, SIGKILL);
	if (write(2, msg, sizeof(msg) - 1) < 0) {
		/* nothing to do */
	}
	_exit(sig == SIGALRM ? 3 : 130);
}

/* ---- the daemon client --------------------------------------------------- */

struct dc_arg {
	const char *socket;
	void (*gen)(struct wl_state *, struct iommu_nest_vtd_inv *, uint32_t);
	uint32_t batch;
	uint32_t window; /* 0: synchronous */
	int queue_spin;	 /* >= 0: through a shared queue, this spin_us; -1: the socket */
};

/* The transport of the rows run_daemon_row() measures now (see dc_arg.queue_spin). */
static int cur_queue_spin = -1;

/* Per-process state of an asynchronous client (one per process). */
static struct {
	struct shared *sh;
	struct client_slot *cs;
	uint64_t *t0;
	uint32_t *free_slots;
	uint32_t n_free;
	uint32_t batch;
} ac;

static void set_why(struct client_slot *cs, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cs->why, sizeof(cs->why), fmt, ap);
	va_end(ap);
}

static void on_done(struct iommu_nest *h, uint64_t token,
		    const struct iommu_nest_inv_summary *sum, struct iommu_nest_entry_result *res,
		    size_t n, void *opaque)
{
	uint32_t slot = (uint32_t)(uintptr_t)opaque;
	uint64_t now = bench_now_ns();

	if (sh_counting(ac.sh)) {
		hist_add(&ac.cs->lat, now - ac.t0[slot]);
		ac.cs->requests++;
		ac.cs->entries += n;
		if (sum->status)
			ac.cs->errors++;
	}
	ac.free_slots[ac.n_free++] = slot;
}

static bool transport_error(int rc)
{
	return rc == -ECONNRESET || rc == -EPIPE || rc == -EPROTO || rc == -ENOMEM;
}

static int run_sync(struct iommu_nest *h, uint32_t hwpt, const struct dc_arg *a,
		    struct shared *sh, struct client_slot *cs, struct iommu_nest_vtd_inv *e,
		    struct iommu_nest_entry_result *res, struct wl_state *st)
{
	while (!sh_stopping(sh)) {
		struct iommu_nest_inv_summary sum;
		uint64_t t0;
		int rc;

		a->gen(st, e, a->batch);
		t0 = bench_now_ns();
		rc = iommu_nest_invalidate(h, hwpt, IOMMU_NEST_INV_DATA_VTD_S1, e, a->batch, 0, res,
					   &sum);
		if (rc && transport_error(rc)) {
			set_why(cs, "invalidate: %s", iommu_nest_last_error(h));
			return rc;
		}
		if (sh_counting(sh)) {
			hist_add(&cs->lat, bench_now_ns() - t0);
			cs->requests++;
			cs->entries += a->batch;
			if (rc)
				cs->errors++;
		}
	}
	return 0;
}

/*
 * With a queue that polls, look for completions before sleeping on the call
 * eventfd, as the library's synchronous calls do, for the library's spin
 * between a window's completions (IOMMU_NEST_QUEUE_WINDOW_SPIN_US: one
 * daemon batch and more): a window of requests in flight then costs no
 * wake-up, on either side. The looks are iommu_nest_queue_spin()'s,
 * without system calls (process() makes two a call, and a loop of them
 * takes the CPU that may share a core with the daemon's). Returns the
 * callbacks run (0: none within the budget) or a negative errno.
 */
static int spin_process(struct iommu_nest *h)
{
	int rc = iommu_nest_queue_spin(h, IOMMU_NEST_QUEUE_WINDOW_SPIN_US);

	return rc > 0 ? iommu_nest_process(h) : rc;
}

static int run_async(struct iommu_nest *h, uint32_t hwpt, const struct dc_arg *a,
		     struct shared *sh, struct client_slot *cs, struct iommu_nest_vtd_inv *e,
		     struct iommu_nest_entry_result *res, struct wl_state *st)
{
	/* With a queue, its completions are signalled on the queue's eventfd. */
	struct pollfd p[2] = {{.fd = iommu_nest_fd(h), .events = POLLIN},
			      {.fd = iommu_nest_queue_fd(h), .events = POLLIN}};
	nfds_t np = iommu_nest_queue_fd(h) >= 0 ? 2 : 1;
	int rc;

	while (!sh_stopping(sh)) {
		while (ac.n_free && !sh_stopping(sh)) {
			uint32_t slot = ac.free_slots[--ac.n_free];

			a->gen(st, e, a->batch);
			ac.t0[slot] = bench_now_ns();
			rc = iommu_nest_invalidate_submit(h, hwpt, IOMMU_NEST_INV_DATA_VTD_S1, e,
							  a->batch, 0, res + (size_t)slot * a->batch,
							  on_done, (void *)(uintptr_t)slot, NULL);
			if (rc == -EAGAIN) {
				ac.free_slots[ac.n_free++] = slot;
				p[0].events = POLLIN | POLLOUT;
				break;
			}
			if (rc) {
				set_why(cs, "submit: %s", iommu_nest_last_error(h));
				return rc;
			}
		}
		if (np == 2 && a->queue_spin > 0 && iommu_nest_in_flight(h)) {
			rc = spin_process(h);
			if (rc < 0) {
				set_why(cs, "process: %s", iommu_nest_last_error(h));
				return rc;
			}
			if (rc > 0) {
				p[0].events = POLLIN;
				continue;
			}
		}
		if (!iommu_nest_pending(h))
			poll(p, np, 100);
		p[0].events = POLLIN;
		rc = iommu_nest_process(h);
		if (rc < 0) {
			set_why(cs, "process: %s", iommu_nest_last_error(h));
			return rc;
		}
	}
	/* Drain: every request in flight gets its reply before we leave. */
	for (int i = 0; iommu_nest_in_flight(h) && i < 1000; i++) {
		if (!iommu_nest_pending(h))
			poll(p, np, 10);
		rc = iommu_nest_process(h);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int daemon_client(uint32_t idx, struct shared *sh, void *argp)
{
	const struct dc_arg *a = argp;
	struct client_slot *cs = &sh->c[idx];
	uint32_t w = a->window ? a->window : 1;
	struct iommu_nest_entry_result *res;
	struct iommu_nest_vtd_inv *e;
	struct iommu_nest *h;
	struct wl_state st;
	char name[32];
	uint32_t hwpt;
	int rc;

	snprintf(name, sizeof(name), "bench-%u", idx);
	rc = iommu_nest_connect(a->socket, name, &h);
	if (rc) {
		set_why(cs, "connect %s", a->socket);
		return rc;
	}
	/* Invalidation needs an allocated HWPT, not an attached one. */
	rc = iommu_nest_alloc_vtd_s1(h, "vf0", 0, 0x10000000ull + ((uint64_t)idx << 12), 48,
				     &hwpt);
	if (rc) {
		set_why(cs, "alloc: %s", iommu_nest_last_error(h));
		iommu_nest_close(h);
		return rc;
	}
	if (a->queue_spin >= 0) {
		rc = iommu_nest_queue_open(h, 64, (uint32_t)a->queue_spin);
		if (rc) {
			set_why(cs, "queue_open: %s", iommu_nest_last_error(h));
			iommu_nest_close(h);
			return rc;
		}
	}
	e = calloc(a->batch, sizeof(*e));
	res = calloc((size_t)w * a->batch, sizeof(*res));
	ac.t0 = calloc(w, sizeof(*ac.t0));
	ac.free_slots = calloc(w, sizeof(*ac.free_slots));
	if (!e || !res || !ac.t0 || !ac.free_slots) {
		iommu_nest_close(h);
		return -ENOMEM;
	}
	ac.sh = sh;
	ac.cs = cs;
	ac.batch = a->batch;
	for (ac.n_free = 0; ac.n_free < w; ac.n_free++)
		ac.free_slots[ac.n_free] = w - 1 - ac.n_free;
	wl_state_init(&st, idx);

	harness_ready(sh);
	if (a->window)
		rc = run_async(h, hwpt, a, sh, cs, e, res, &st);
	else
		rc = run_sync(h, hwpt, a, sh, cs, e, res, &st);
	iommu_nest_close(h);
	return rc;
}

/* ---- one measured configuration against the daemon ----------------------- */

struct mark_ctx {
	struct iommu_nest *ctl;
	pid_t pid;
	struct iommu_nest_stats s0, s1;
	double cpu0, cpu1;
	long rss;
};

static void daemon_mark(void *p, int which)
{
	struct mark_ctx *m = p;

	if (which == 0) {
		iommu_nest_stats(m->ctl, &m->s0);
		m->cpu0 = proc_cpu_seconds(m->pid);
	} else if (which == 1) {
		m->cpu1 = proc_cpu_seconds(m->pid);
		iommu_nest_stats(m->ctl, &m->s1);
		m->rss = proc_rss_kib(m->pid);
	}
}

static struct row *run_daemon_row(const char *section, const char *socket,
				  struct iommu_nest *ctl, pid_t pid, const char *wl_name,
				  void (*gen)(struct wl_state *, struct iommu_nest_vtd_inv *,
					      uint32_t),
				  uint32_t batch, bool async, uint32_t clients)
{
	struct dc_arg a = { .socket = socket, .gen = gen, .batch = batch,
			    .window = async ? o.window : 0, .queue_spin = cur_queue_spin };
	struct mark_ctx m = { .ctl = ctl, .pid = pid };
	struct row *r;

	if (n_rows == MAX_ROWS)
		return NULL;
	r = &rows[n_rows++];
	*r = (struct row){ .section = section, .wl = wl_name, .batch = batch, .async = async,
			   .window = a.window, .clients = clients };
	fprintf(stderr, "  %-11s %-10s %-5s %2u client%s ...", section, wl_name,
		async ? "async" : "sync", clients, clients == 1 ? " " : "s");
	r->rc = harness_run(clients, daemon_client, &a, o.warmup, o.duration, daemon_mark, &m,
			    &r->r);
	r->r.received = m.s1.entries_received - m.s0.entries_received;
	r->r.submitted = m.s1.entries_submitted - m.s0.entries_submitted;
	r->r.submissions = m.s1.submissions - m.s0.submissions;
	r->r.daemon_cpu = m.cpu1 - m.cpu0;
	r->r.rss_kib = m.rss;
	fprintf(stderr, " %s\n", r->rc ? strerror(-r->rc) : "ok");
	return r;
}

/* ---- derived figures ----------------------------------------------------- */

static int list_index(const uint32_t *l, uint32_t n, uint32_t v)
{
	for (uint32_t i = 0; i < n; i++)
		if (l[i] == v)
			return (int)i;
	return -1;
}

static int wl_index(const char *name)
{
	for (uint32_t i = 0; i < o.n_wls; i++)
		if (!strcmp(o.wls[i]->name, name))
			return (int)i;
	return -1;
}

static double per_s(uint64_t x, double s)
{
	return s > 0 ? (double)x / s : 0;
}

/* Submitted entries per second: client entries/s scaled by the daemon's ratio. */
static double sub_per_s(const struct row *r)
{
	if (!r->r.received)
		return 0;
	return per_s(r->r.entries, r->r.seconds) * (double)r->r.submitted / (double)r->r.received;
}

static double reduction(const struct row *r)
{
	return r->r.submitted ? (double)r->r.received / (double)r->r.submitted : 0;
}

static double ns_per_entry(const struct row *r)
{
	return r->r.entries ? r->r.daemon_cpu * 1e9 / (double)r->r.entries : 0;
}

static const struct run_result *pp_floor(const struct row *r)
{
	if (!strcmp(r->section, "one-cpu"))
		return pp_same_have ? &pp_same : NULL;
	int i = list_index(o.clients, o.n_clients, r->clients);

	if (i < 0 || !pp_have[i] || r->window != (r->async ? o.window : 0))
		return NULL;
	return r->async ? &pp_async[i] : &pp_sync[i];
}

static const struct run_result *inproc_floor(const struct row *r)
{
	/* The sweep's generators are seq-strict's and lazy-fq's. */
	int i = wl_index(!strcmp(r->wl, SWEEP_WL) ? "seq-strict" :
			 !strcmp(r->wl, "sweep-lazy") ? "lazy-fq" : r->wl);

	return i >= 0 && inproc_have[i] ? &inproc[i] : NULL;
}

static double us(uint64_t ns)
{
	return (double)ns / 1000.0;
}

static void fmt_rate(char *buf, size_t len, double v)
{
	if (v >= 1e6)
		snprintf(buf, len, "%.2fM", v / 1e6);
	else if (v >= 1e3)
		snprintf(buf, len, "%.1fk", v / 1e3);
	else
		snprintf(buf, len, "%.0f", v);
}

static void fmt_ratio(char *buf, size_t len, double num, double den)
{
	if (den > 0 && num > 0)
		snprintf(buf, len, "%.2f", num / den);
	else
		snprintf(buf, len, "-");
}

static void print_header(const char *title)
{
	printf("\n%s\n", title);
	printf("%-10s %-5s %3s %5s %8s %8s %8s %6s %8s %8s %8s %6s %6s %8s %7s %7s %7s %4s\n",
	       "workload", "mode", "cl", "batch", "req/s", "ent/s", "sub/s", "fewer", "p50us",
	       "p99us", "p999us", "p50/pp", "p99/pp", "cpu s/M", "ns/ent", "RSS MiB",
	       "xinproc", "err");
}

static void print_row(const struct row *r)
{
	const struct run_result *pp = pp_floor(r), *ip = inproc_floor(r);
	char rq[16], en[16], sb[16], f50[16], f99[16], xin[16];
	double ent_s = per_s(r->r.entries, r->r.seconds);

	if (r->rc) {
		printf("%-10s %-5s %3u %5u  failed: %s\n", r->wl, r->async ? "async" : "sync",
		       r->clients, r->batch, strerror(-r->rc));
		return;
	}
	fmt_rate(rq, sizeof(rq), per_s(r->r.requests, r->r.seconds));
	fmt_rate(en, sizeof(en), ent_s);
	fmt_rate(sb, sizeof(sb), sub_per_s(r));
	fmt_ratio(f50, sizeof(f50), (double)hist_quantile(&r->r.lat, 0.5),
		  pp ? (double)hist_quantile(&pp->lat, 0.5) : 0);
	fmt_ratio(f99, sizeof(f99), (double)hist_quantile(&r->r.lat, 0.99),
		  pp ? (double)hist_quantile(&pp->lat, 0.99) : 0);
	fmt_ratio(xin, sizeof(xin), ent_s, ip ? per_s(ip->entries, ip->seconds) : 0);
	printf("%-10s %-5s %3u %5u %8s %8s %8s %6.1f %8.1f %8.1f %8.1f %6s %6s %8.3f %7.0f %7.1f "
	       "%7s %4llu\n",
	       r->wl, r->async ? "async" : "sync", r->clients, r->batch, rq, en, sb, reduction(r),
	       us(hist_quantile(&r->r.lat, 0.5)), us(hist_quantile(&r->r.lat, 0.99)),
	       us(hist_quantile(&r->r.lat, 0.999)), f50, f99,
	       r->r.entries ? r->r.daemon_cpu * 1e6 / (double)r->r.entries : 0, ns_per_entry(r),
	       (double)r->r.rss_kib / 1024.0, xin, (unsigned long long)r->r.errors);
}

static void csv_row(const struct row *r)
{
	const struct run_result *pp = pp_floor(r), *ip = inproc_floor(r);

	if (!csv || r->rc)
		return;
	fprintf(csv,
		"%s,%s,%s,%u,%u,%u,%.1f,%.1f,%.1f,%.3f,%.2f,%.2f,%.2f,%.2f,%.2f,%.4f,%.1f,%ld,%.2f,%.2f,"
		"%llu,%llu,%llu\n",
		r->section, r->wl, r->async ? "async" : "sync", r->clients, r->batch, r->window,
		per_s(r->r.requests, r->r.seconds), per_s(r->r.entries, r->r.seconds),
		sub_per_s(r), reduction(r), us(hist_quantile(&r->r.lat, 0.5)),
		us(hist_quantile(&r->r.lat, 0.99)), us(hist_quantile(&r->r.lat, 0.999)),
		pp ? us(hist_quantile(&pp->lat, 0.5)) : 0, pp ? us(hist_quantile(&pp->lat, 0.99)) : 0,
		r->r.entries ? r->r.daemon_cpu * 1e6 / (double)r->r.entries : 0, ns_per_entry(r),
		r->r.rss_kib, ip ? per_s(ip->entries, ip->seconds) : 0, r->r.seconds,
		(unsigned long long)r->r.errors, (unsigned long long)r->r.received,
		(unsigned long long)r->r.submitted);
}

/* ---- sections ------------------------------------------------------------ */

static void run_floors(void)
{
	size_t qs, rs;

	floor_msg_sizes(&qs, &rs);
	fprintf(stderr, "floors: ping-pong (%zu-byte request, %zu-byte reply)\n", qs, rs);
	for (uint32_t i = 0; i < o.n_clients; i++) {
		int rc = 0;

		if (o.sync)
			rc = floor_pingpong(o.clients[i], 1, o.duration, o.warmup, &pp_sync[i]);
		if (!rc && o.async)
			rc = floor_pingpong(o.clients[i], o.window, o.duration, o.warmup,
					    &pp_async[i]);
		pp_have[i] = !rc;
		if (rc)
			fprintf(stderr, "bench: ping-pong floor, %u clients: %s\n", o.clients[i],
				strerror(-rc));
	}
	if (o.pin >= 0 && o.sync) {
		bench_clients_on_server_cpu = true;
		pp_same_have = !floor_pingpong(1, 1, o.duration, o.warmup, &pp_same);
		bench_clients_on_server_cpu = false;
	}
	fprintf(stderr, "floors: in-process sim backend, one entry per call\n");
	for (uint32_t i = 0; i < o.n_wls; i++)
		inproc_have[i] = !floor_inproc(o.wls[i], o.duration, &inproc[i]);
}

static void print_floors(void)
{
	size_t qs, rs;

	floor_msg_sizes(&qs, &rs);
	printf("\nFloor (a): raw SOCK_SEQPACKET ping-pong, %zu-byte protobuf-c request, "
	       "%zu-byte reply\n", qs, rs);
	printf("           (1 client: two processes, blocking calls; more: one epoll echo "
	       "process)\n");
	printf("%-5s %3s %10s %8s %8s %8s\n", "mode", "cl", "req/s", "p50us", "p99us", "p999us");
	for (uint32_t i = 0; i < o.n_clients; i++) {
		for (int m = 0; m < 2; m++) {
			const struct run_result *f = m ? &pp_async[i] : &pp_sync[i];

			if (!pp_have[i] || (m ? !o.async : !o.sync))
				continue;
			printf("%-5s %3u %10.0f %8.1f %8.1f %8.1f\n", m ? "async" : "sync",
			       o.clients[i], per_s(f->requests, f->seconds),
			       us(hist_quantile(&f->lat, 0.5)), us(hist_quantile(&f->lat, 0.99)),
			       us(hist_quantile(&f->lat, 0.999)));
			if (csv)
				fprintf(csv, "floor-pp,pingpong,%s,%u,1,%u,%.1f,%.1f,%.1f,1,%.2f,%.2f,%.2f"
					     ",,,,,,,%.2f,0,%llu,%llu\n",
					m ? "async" : "sync", o.clients[i], m ? o.window : 0,
					per_s(f->requests, f->seconds), per_s(f->entries, f->seconds),
					per_s(f->entries, f->seconds), us(hist_quantile(&f->lat, 0.5)),
					us(hist_quantile(&f->lat, 0.99)), us(hist_quantile(&f->lat, 0.999)),
					f->seconds, (unsigned long long)f->entries,
					(unsigned long long)f->entries);
		}
	}
	if (pp_same_have) {
		const struct run_result *f = &pp_same;

		printf("%-5s %3s %10.0f %8.1f %8.1f %8.1f   <- both processes on CPU %d\n", "sync",
		       "1", per_s(f->requests, f->seconds), us(hist_quantile(&f->lat, 0.5)),
		       us(hist_quantile(&f->lat, 0.99)), us(hist_quantile(&f->lat, 0.999)), o.pin);
		if (csv)
			fprintf(csv, "floor-pp-one-cpu,pingpong,sync,1,1,0,%.1f,%.1f,%.1f,1,%.2f,%.2f,"
				     "%.2f,,,,,,,%.2f,0,%llu,%llu\n",
				per_s(f->requests, f->seconds), per_s(f->entries, f->seconds),
				per_s(f->entries, f->seconds), us(hist_quantile(&f->lat, 0.5)),
				us(hist_quantile(&f->lat, 0.99)), us(hist_quantile(&f->lat, 0.999)),
				f->seconds, (unsigned long long)f->entries,
				(unsigned long long)f->entries);
	}
	printf("\nFloor (b): the workload into the sim backend in-process, one entry per call "
	       "(no daemon)\n");
	printf("%-10s %5s %10s %12s %12s\n", "workload", "batch", "ent/s", "entries", "submitted");
	for (uint32_t i = 0; i < o.n_wls; i++) {
		const struct run_result *f = &inproc[i];

		if (!inproc_have[i])
			continue;
		printf("%-10s %5u %10.0f %12llu %12llu\n", o.wls[i]->name, o.wls[i]->batch,
		       per_s(f->entries, f->seconds), (unsigned long long)f->entries,
		       (unsigned long long)f->submitted);
		if (csv)
			fprintf(csv, "floor-inproc,%s,inproc,1,%u,0,%.1f,%.1f,%.1f,1,,,,,,,,,,%.2f,%llu,"
				     "%llu,%llu\n",
				o.wls[i]->name, o.wls[i]->batch, per_s(f->requests, f->seconds),
				per_s(f->entries, f->seconds), per_s(f->submitted, f->seconds),
				f->seconds, (unsigned long long)f->errors,
				(unsigned long long)f->entries, (unsigned long long)f->submitted);
	}
}

/* Runs the workload matrix against one daemon. */
static void run_matrix(const char *section, const char *socket, pid_t pid,
		       const uint32_t *clients, uint32_t n_clients, bool sweep)
{
	struct iommu_nest *ctl;
	int rc = iommu_nest_connect(socket, "bench-ctl", &ctl);

	if (rc) {
		fprintf(stderr, "bench: connect %s: %s\n", socket, strerror(-rc));
		return;
	}
	if (pid <= 0)
		pid = peer_pid(iommu_nest_fd(ctl));
	for (uint32_t w = 0; w < o.n_wls; w++)
		for (int m = 0; m < 2; m++) {
			if (m ? !o.async : !o.sync)
				continue;
			for (uint32_t c = 0; c < n_clients; c++)
				run_daemon_row(section, socket, ctl, pid, o.wls[w]->name,
					       o.wls[w]->gen, o.wls[w]->batch, m, clients[c]);
		}
	/* The 1-entry round trip with client and daemon sharing one CPU. */
	if (sweep && o.pin >= 0 && o.sync && !o.socket && wl_index("seq-strict") >= 0) {
		bench_clients_on_server_cpu = true;
		run_daemon_row("one-cpu", socket, ctl, pid, "seq-strict", wl_gen_seq, 1, false, 1);
		bench_clients_on_server_cpu = false;
	}
	for (uint32_t b = 0; sweep && b < o.n_sweep; b++)
		for (int m = 0; m < 2; m++) {
			if (m ? !o.async : !o.sync)
				continue;
			run_daemon_row("sweep", socket, ctl, pid, SWEEP_WL, wl_gen_seq, o.sweep[b], m, 1);
			run_daemon_row("sweep", socket, ctl, pid, "sweep-lazy", wl_gen_lazy, o.sweep[b],
				       m, 1);
		}
	iommu_nest_close(ctl);
}

static void run_idle(const char *daemon_bin)
{
	struct daemon_proc d;
	int n = (int)o.idle_conns, *fds, warm;
	long lim = raise_nofile(n + 64);
	int rc;

	if (lim < n + 32) {
		fprintf(stderr, "bench: RLIMIT_NOFILE %ld too low for %d idle connections\n", lim, n);
		return;
	}
	fds = calloc((size_t)n, sizeof(int));
	if (!fds)
		return;
	fprintf(stderr, "idle: %d connections against a fresh daemon\n", n);
	if (daemon_start(&d, daemon_bin, o.tmpdir, true, "idle")) {
		free(fds);
		return;
	}
	running_daemon = &d;
	/* A first connection and Hello, so one-time setup does not count. */
	rc = open_idle_connections(d.socket, 1, &warm);
	if (!rc) {
		bench_sleep_ns(50000000);
		idle_rss0 = proc_rss_kib(d.pid);
		rc = open_idle_connections(d.socket, n, fds);
		close(warm);
	}
	if (!rc) {
		bench_sleep_ns(100000000);
		idle_rss1 = proc_rss_kib(d.pid);
		idle_kib_per_conn = (double)(idle_rss1 - idle_rss0) / n;
		for (int i = 0; i < n; i++)
			close(fds[i]);
	}
	daemon_stop(&d);
	running_daemon = NULL;
	free(fds);
}

/* ---- the shared-memory queue (issue 17) ---------------------------------- */

static const struct row *find_row(const char *section, const char *wl, bool async,
				  uint32_t clients);

/*
 * The same 1-entry sync and 256-entry pipelined rows as the socket's,
 * through a shared queue: against a daemon that polls (default
 * queue_poll_us, the client spinning IOMMU_NEST_QUEUE_SPIN_US for a sync
 * call and IOMMU_NEST_QUEUE_WINDOW_SPIN_US between pipelined completions)
 * and one that does not (queue_poll_us = 0, the client sleeping at once). Then 64
 * idle queues on the polling daemon.
 */
static void run_queue(void)
{
	static const struct {
		const char *section, *extra;
		int spin;
	} kinds[] = {
	    {"queue-poll", "[policy]\nmax_clients_per_pid = 0\n", IOMMU_NEST_QUEUE_SPIN_US},
	    {"queue-nopoll", "[policy]\nmax_clients_per_pid = 0\n[coalesce]\nqueue_poll_us = 0\n",
	     0},
	};
	static const char *const wls[] = {"seq-strict", "lazy-fq"};

	if (o.floors) {
		fprintf(stderr, "floors: shared-memory spin and eventfd ping-pong\n");
		shm_have = !floor_shm_spin(o.duration, o.warmup, &shm_floor);
		efd_have = !floor_eventfd(o.duration, o.warmup, &efd_floor);
	}
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		struct daemon_proc d;
		struct iommu_nest *ctl;

		if (daemon_start_ext(&d, o.daemon, o.tmpdir, true, kinds[k].section,
				     kinds[k].extra))
			continue;
		running_daemon = &d;
		if (!iommu_nest_connect(d.socket, "bench-ctl", &ctl)) {
			cur_queue_spin = kinds[k].spin;
			for (size_t w = 0; w < 2; w++) {
				const struct workload *wl = workload_find(wls[w]);

				/* --workloads narrows these rows too (while iterating on one). */
				if (wl_index(wls[w]) < 0)
					continue;
				for (uint32_t c = 0; wl && c < o.n_clients; c++)
					run_daemon_row(kinds[k].section, d.socket, ctl, d.pid,
						       wl->name, wl->gen, wl->batch, w == 1,
						       o.clients[c]);
			}
			cur_queue_spin = -1;
			iommu_nest_close(ctl);
			if (k == 0) {
				fprintf(stderr, "  %d idle queues ...", QUEUE_IDLE_N);
				if (queue_idle_cpu(d.socket, d.pid, QUEUE_IDLE_N, QUEUE_IDLE_S,
						   &queue_idle_cpu_s))
					queue_idle_cpu_s = -1;
				fprintf(stderr, " %s\n", queue_idle_cpu_s < 0 ? "failed" : "ok");
			}
		}
		daemon_stop(&d);
		running_daemon = NULL;
	}
}

/*
 * The socket path against an older build, back to back in the same
 * machine state (--base-daemon): the 1-entry sync and 256-entry
 * pipelined rows, this build's daemon then the base build's, each
 * freshly started, so that a "no regression" claim compares like with
 * like rather than with a table from another day.
 */
static void run_socket_ab(void)
{
	static const struct {
		const char *wl;
		bool async;
	} ab[] = {{"seq-strict", false}, {"lazy-fq", true}};

	fprintf(stderr, "socket A/B: this build vs %s\n", o.base_daemon);
	for (size_t w = 0; w < sizeof(ab) / sizeof(ab[0]); w++) {
		const struct workload *wl = workload_find(ab[w].wl);

		for (int side = 0; wl && side < 2; side++) {
			const char *section = side ? "socket-base" : "socket-this";
			struct daemon_proc d;
			struct iommu_nest *ctl;

			if (daemon_start(&d, side ? o.base_daemon : o.daemon, o.tmpdir, true,
					 section))
				continue;
			running_daemon = &d;
			if (!iommu_nest_connect(d.socket, "bench-ctl", &ctl)) {
				run_daemon_row(section, d.socket, ctl, d.pid, wl->name, wl->gen,
					       wl->batch, ab[w].async, 1);
				iommu_nest_close(ctl);
			}
			daemon_stop(&d);
			running_daemon = NULL;
		}
	}
}

/* One floor's line; tag: its CSV section (NULL: already in the CSV). */
static void print_lat_floor(const char *name, const char *tag, const struct run_result *f)
{
	printf("%-34s %10.0f %8.3f %8.3f %8.3f\n", name, per_s(f->requests, f->seconds),
	       us(hist_quantile(&f->lat, 0.5)), us(hist_quantile(&f->lat, 0.99)),
	       us(hist_quantile(&f->lat, 0.999)));
	if (csv && tag)
		fprintf(csv,
			"%s,pingpong,sync,1,1,0,%.1f,%.1f,%.1f,1,%.3f,%.3f,%.3f,,,,,,,%.2f,0,"
			"%llu,%llu\n",
			tag, per_s(f->requests, f->seconds), per_s(f->entries, f->seconds),
			per_s(f->entries, f->seconds), us(hist_quantile(&f->lat, 0.5)),
			us(hist_quantile(&f->lat, 0.99)), us(hist_quantile(&f->lat, 0.999)),
			f->seconds, (unsigned long long)f->entries, (unsigned long long)f->entries);
}

static void print_queue(void)
{
	printf("\nFloors of the shared-memory queue (1 round trip, two processes, two CPUs)\n");
	printf("%-34s %10s %8s %8s %8s\n", "floor", "rt/s", "p50us", "p99us", "p999us");
	if (shm_have)
		print_lat_floor("shm-spin (one cache line)", "floor-shm", &shm_floor);
	if (efd_have)
		print_lat_floor("eventfd (blocking reads)", "floor-efd", &efd_floor);
	if (pp_have[0] && o.clients[0] == 1)
		print_lat_floor("socket (raw SEQPACKET ping-pong)", NULL, &pp_sync[0]);
	print_header("Daemon over the shared queue, polling (queue_poll_us 50, client spin 20 us, "
		     "200 us between pipelined completions)");
	for (uint32_t i = 0; i < n_rows; i++)
		if (!strcmp(rows[i].section, "queue-poll"))
			print_row(&rows[i]);
	print_header("Daemon over the shared queue, not polling (queue_poll_us 0, no spin)");
	for (uint32_t i = 0; i < n_rows; i++)
		if (!strcmp(rows[i].section, "queue-nopoll"))
			print_row(&rows[i]);
	if (queue_idle_cpu_s >= 0)
		printf(
		    "\nDaemon CPU with %d idle queues after the poll window: %.3f s over %.1f s\n",
		    QUEUE_IDLE_N, queue_idle_cpu_s, QUEUE_IDLE_S);
}

static void print_socket_ab(void)
{
	print_header("Socket path, this build then the base build, back to back (--base-daemon)");
	for (uint32_t i = 0; i < n_rows; i++)
		if (!strcmp(rows[i].section, "socket-this") || !strcmp(rows[i].section, "socket-base"))
			print_row(&rows[i]);
}

static int miss(bool ok, const char *fmt, ...)
{
	va_list ap;

	printf("%s  ", ok ? "PASS" : "MISS");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	return ok ? 0 : 1;
}

/*
 * Socket no-regression (--base-daemon): this build's 1-entry sync p50 over
 * the socket ping-pong floor, beside the base build's measured right
 * after it; and the pipelined rows' daemon CPU per entry. "Beyond noise"
 * is taken as 15%: repeated runs of one binary on this shared machine
 * differ by about that much.
 */
static int socket_ab_targets(void)
{
	const struct row *ts = find_row("socket-this", "seq-strict", false, 1);
	const struct row *bs = find_row("socket-base", "seq-strict", false, 1);
	const struct row *tl = find_row("socket-this", "lazy-fq", true, 1);
	const struct row *bl = find_row("socket-base", "lazy-fq", true, 1);
	int fails = 0;

	if (ts && bs && pp_have[0] && o.clients[0] == 1) {
		double t50 = (double)hist_quantile(&ts->r.lat, 0.5),
		       b50 = (double)hist_quantile(&bs->r.lat, 0.5),
		       f50 = (double)hist_quantile(&pp_sync[0].lat, 0.5);

		fails += miss(t50 <= 1.15 * b50,
			      "socket path: 1-entry sync p50 %.1f us = %.2fx the ping-pong floor "
			      "(%.1f us); base build, same run: %.1f us = %.2fx (target: within "
			      "15%%)",
			      t50 / 1e3, t50 / f50, f50 / 1e3, b50 / 1e3, b50 / f50);
	}
	if (tl && bl)
		fails += miss(ns_per_entry(tl) <= 1.15 * ns_per_entry(bl),
			      "socket path: pipelined 256-entry batches: daemon CPU %.0f ns per "
			      "entry, %.2fM entries/s; base build, same run: %.0f ns, %.2fM/s "
			      "(target: within 15%%)",
			      ns_per_entry(tl), per_s(tl->r.entries, tl->r.seconds) / 1e6,
			      ns_per_entry(bl), per_s(bl->r.entries, bl->r.seconds) / 1e6);
	return fails;
}

/* Issue 17's targets, as ratios to the floors of this run. */
static int queue_targets(void)
{
	const struct row *qp = find_row("queue-poll", "seq-strict", false, 1);
	const struct row *qn = find_row("queue-nopoll", "seq-strict", false, 1);
	const struct row *sk = find_row("coalesce", "seq-strict", false, 1);
	const struct row *qb = find_row("queue-poll", "lazy-fq", true, 1);
	int fails = 0;

	printf("\nShared-queue targets (issue 17; ratios to this run's floors)\n");
	if (qp && shm_have) {
		double p50 = (double)hist_quantile(&qp->r.lat, 0.5),
		       p99 = (double)hist_quantile(&qp->r.lat, 0.99),
		       f50 = (double)hist_quantile(&shm_floor.lat, 0.5),
		       f99 = (double)hist_quantile(&shm_floor.lat, 0.99);

		fails += miss(p50 <= 4 * f50,
			      "queue, polling: 1-entry sync p50 %.3f us = %.1fx the shm-spin floor "
			      "p50 %.3f us (target <= 4x)",
			      p50 / 1e3, p50 / f50, f50 / 1e3);
		fails += miss(p99 <= 10 * f99,
			      "queue, polling: 1-entry sync p99 %.3f us = %.1fx the shm-spin floor "
			      "p99 %.3f us (target <= 10x)",
			      p99 / 1e3, p99 / f99, f99 / 1e3);
		if (sk) {
			double s50 = (double)hist_quantile(&sk->r.lat, 0.5);

			fails += miss(s50 >= 50 * p50,
				      "queue, polling: %.1fx faster than the socket path (p50 %.1f "
				      "us; target >= 50x)",
				      s50 / p50, s50 / 1e3);
		}
	} else {
		printf("n/a   queue, polling, 1-entry sync (needs the floors and seq-strict)\n");
	}
	if (qn && sk) {
		double n50 = (double)hist_quantile(&qn->r.lat, 0.5),
		       s50 = (double)hist_quantile(&sk->r.lat, 0.5);

		fails += miss(n50 <= s50,
			      "queue, not polling: 1-entry sync p50 %.1f us vs the socket path's "
			      "%.1f us (target: no slower)",
			      n50 / 1e3, s50 / 1e3);
	}
	if (qb) {
		double es = per_s(qb->r.entries, qb->r.seconds);

		fails += miss(es >= 30e6,
			      "queue, polling: pipelined 256-entry batches (lazy-fq, window %u, 1 "
			      "client): %.2fM client entries/s (target >= 30M)",
			      o.window, es / 1e6);
		fails += miss(ns_per_entry(qb) <= 40,
			      "queue, polling: pipelined 256-entry batches: daemon CPU %.0f ns per "
			      "entry (target <= 40)",
			      ns_per_entry(qb));
	}
	fails += socket_ab_targets();
	if (queue_idle_cpu_s >= 0)
		fails += miss(queue_idle_cpu_s <= 0.01 * QUEUE_IDLE_S,
			      "idle: %d queues after the poll window: daemon CPU %.1f ms per s "
			      "(target ~0: <= 10 ms/s, the tick's resolution)",
			      QUEUE_IDLE_N, queue_idle_cpu_s * 1e3 / QUEUE_IDLE_S);
	return fails;
}

/* ---- acceptance ---------------------------------------------------------- */

static const struct row *find_row(const char *section, const char *wl, bool async,
				  uint32_t clients)
{
	for (uint32_t i = 0; i < n_rows; i++)
		if (!strcmp(rows[i].section, section) && !strcmp(rows[i].wl, wl) &&
		    rows[i].async == async && rows[i].clients == clients && !rows[i].rc)
			return &rows[i];
	return NULL;
}

static int verdict(bool ok, const char *fmt, ...)
{
	va_list ap;

	printf("%s  ", ok ? "PASS" : "FAIL");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	return ok ? 0 : 1;
}

static int acceptance(void)
{
	const struct row *r;
	int fails = 0;

	printf("\nAcceptance (figures from this run)\n");
	r = find_row("coalesce", "seq-strict", false, 1);
	if (r && pp_have[0] && o.clients[0] == 1) {
		double d50 = (double)hist_quantile(&r->r.lat, 0.5);
		double f50 = (double)hist_quantile(&pp_sync[0].lat, 0.5);

		fails += verdict(d50 <= 1.3 * f50,
				 "1-entry sync round trip p50 %.1f us = %.2fx the raw ping-pong "
				 "p50 %.1f us (target <= 1.3x)",
				 d50 / 1e3, d50 / f50, f50 / 1e3);
	} else {
		printf("n/a   1-entry sync round trip (needs seq-strict, sync, 1 client, floors)\n");
	}
	r = find_row("one-cpu", "seq-strict", false, 1);
	if (r && pp_same_have) {
		double d50 = (double)hist_quantile(&r->r.lat, 0.5);
		double f50 = (double)hist_quantile(&pp_same.lat, 0.5);

		fails += verdict(d50 <= 1.3 * f50,
				 "1-entry sync round trip, client and daemon on one CPU: p50 %.1f us "
				 "= %.2fx the ping-pong p50 %.1f us on one CPU (target <= 1.3x)",
				 d50 / 1e3, d50 / f50, f50 / 1e3);
	}
	r = find_row("coalesce", "lazy-fq", true, 1);
	if (r) {
		double es = per_s(r->r.entries, r->r.seconds);

		fails += verdict(es >= 5e6,
				 "pipelined 256-entry batches (lazy-fq, window %u, 1 client): "
				 "%.2fM client entries/s (target >= 5M)",
				 o.window, es / 1e6);
		fails += verdict(ns_per_entry(r) <= 200,
				 "pipelined 256-entry batches: daemon CPU %.0f ns per client entry "
				 "(target <= 200)",
				 ns_per_entry(r));
	} else {
		printf("n/a   pipelined 256-entry batches (needs lazy-fq, async, 1 client)\n");
	}
	{
		double worst = 0, inproc_sub = 0;
		bool any = false;
		int wi = wl_index("seq-batch");

		for (uint32_t i = 0; i < n_rows; i++) {
			const struct row *q = &rows[i];

			if (strcmp(q->section, "coalesce") || strcmp(q->wl, "seq-batch") || q->rc)
				continue;
			if (!any || reduction(q) < worst)
				worst = reduction(q);
			any = true;
		}
		if (wi >= 0 && inproc_have[wi])
			inproc_sub = (double)inproc[wi].submitted / (double)inproc[wi].entries;
		if (any)
			fails += verdict(worst >= 50,
					 "sequential storm (seq-batch): daemon submits %.1fx fewer "
					 "entries than one-by-one (%.2f submitted per client entry "
					 "in-process) in its worst row (target >= 50x)",
					 worst, inproc_sub);
		else
			printf("n/a   sequential storm (needs seq-batch)\n");
		r = find_row("coalesce", "seq-strict", true, o.clients[o.n_clients - 1]);
		if (r)
			printf("info  strict-mode storm (seq-strict, 1 entry per request, async, %u "
			       "clients): %.1fx fewer submitted (cross-request coalescing only)\n",
			       r->clients, reduction(r));
	}
	{
		const struct row *base = find_row("coalesce", "seq-strict", false, 1);

		if (base) {
			bool ok = true;
			char detail[256] = "";
			size_t off = 0;
			double p1 = (double)hist_quantile(&base->r.lat, 0.99);

			for (uint32_t c = 0; c < o.n_clients; c++) {
				const struct row *q = find_row("coalesce", "seq-strict", false,
							       o.clients[c]);
				double g;

				if (!q || o.clients[c] == 1)
					continue;
				g = (double)hist_quantile(&q->r.lat, 0.99) / p1;
				ok &= g <= o.clients[c];
				off += (size_t)snprintf(detail + off, sizeof(detail) - off,
							"%s%u: %.1fx", off ? ", " : "", o.clients[c], g);
			}
			fails += verdict(ok,
					 "p99 vs clients (seq-strict sync, p99 at 1 client %.1f us): %s "
					 "(target <= N x)",
					 p1 / 1e3, detail);
		}
		/* The same check on every workload and mode, for information. */
		for (uint32_t w = 0; w < o.n_wls; w++)
			for (int m = 0; m < 2; m++) {
				const struct row *b1 = find_row("coalesce", o.wls[w]->name, m, 1);
				char detail[256] = "";
				size_t off = 0;
				bool ok = true;

				if (!b1)
					continue;
				for (uint32_t c = 0; c < o.n_clients; c++) {
					const struct row *q = find_row("coalesce", o.wls[w]->name, m,
								       o.clients[c]);
					double g;

					if (!q || o.clients[c] == 1)
						continue;
					g = (double)hist_quantile(&q->r.lat, 0.99) /
					    (double)hist_quantile(&b1->r.lat, 0.99);
					ok &= g <= o.clients[c];
					off += (size_t)snprintf(detail + off, sizeof(detail) - off,
								"%s%u: %.1fx", off ? ", " : "",
								o.clients[c], g);
				}
				printf("info  p99 growth %-10s %-5s %s %s\n", o.wls[w]->name,
				       m ? "async" : "sync", detail, ok ? "(<= linear)" : "(SUPERLINEAR)");
			}
	}
	if (idle_kib_per_conn >= 0)
		fails += verdict(idle_kib_per_conn <= 16,
				 "RSS per idle connection: %.2f KiB (%ld -> %ld KiB for %u "
				 "connections; target <= 16 KiB)",
				 idle_kib_per_conn, idle_rss0, idle_rss1, o.idle_conns);
	else if (o.idle)
		printf("n/a   RSS per idle connection (measurement failed)\n");
	return fails;
}

/* ---- options ------------------------------------------------------------- */

static int parse_list(const char *s, uint32_t *out, uint32_t *n)
{
	char *copy = strdup(s), *save = NULL, *tok;

	*n = 0;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *end;
		unsigned long v = strtoul(tok, &end, 10);

		if (*end || !v || v > 4096 || *n == MAX_LIST) {
			free(copy);
			return -EINVAL;
		}
		out[(*n)++] = (uint32_t)v;
	}
	free(copy);
	return *n ? 0 : -EINVAL;
}

static int parse_workloads(const char *s)
{
	char *copy = strdup(s), *save = NULL, *tok;

	o.n_wls = 0;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		const struct workload *w = workload_find(tok);

		if (!w || o.n_wls == MAX_LIST) {
			fprintf(stderr, "bench: unknown workload \"%s\"\n", tok);
			free(copy);
			return -EINVAL;
		}
		o.wls[o.n_wls++] = w;
	}
	free(copy);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: iommu-nest-bench [OPTIONS]\n"
		"  --daemon PATH        iommu-nestd to start (default: %s)\n"
		"  --socket PATH        use a running daemon instead (its coalescing config is\n"
		"                       whatever it has; the no-coalescing and idle runs are skipped)\n"
		"  --duration S         measured seconds per configuration (default 0.5)\n"
		"  --warmup S           unmeasured seconds before each (default 0.15)\n"
		"  --window N           requests in flight per async client (default 16)\n"
		"  --clients LIST       client counts (default 1,4,16,64)\n"
		"  --nc-clients LIST    client counts of the no-coalescing run (default 1,16)\n"
		"  --sweep LIST         batch sizes of the sweep (default 1,4,16,64,256,1024,4096)\n"
		"  --workloads LIST     any of:",
		BENCH_DEFAULT_DAEMON);
	for (size_t i = 0; i < bench_n_workloads; i++)
		fprintf(f, " %s", bench_workloads[i].name);
	fprintf(f,
		"\n"
		"  --modes LIST         sync,async (default both)\n"
		"  --no-floors --no-idle --no-nocoalesce --no-sweep --no-queue   skip a section\n"
		"  --idle-conns N       idle connections for the RSS figure (default 1000)\n"
		"  --churn-hwpts N      HWPTs a churning tenant holds (default 10000, --quick\n"
		"                       1000; 0: skip the bystander-under-churn figure)\n"
		"  --csv FILE           also write every figure as CSV\n"
		"  --tmpdir DIR         for configs, sockets, daemon logs (default /tmp)\n"
		"  --time-limit S       hard stop (default 290)\n"
		"  --quick              short smoke run (0.2 s, clients 1,4)\n"
		"  --base-daemon PATH   an older iommu-nestd: its socket rows (1-entry sync,\n"
		"                       256-entry pipelined) run right after this build's\n"
		"  --pin CPU|none       server side (daemon, echo peer, in-process floor) on CPU,\n"
		"                       clients on the other CPUs (default 0; none: unpinned)\n\n"
		"Workloads:\n");
	for (size_t i = 0; i < bench_n_workloads; i++)
		fprintf(f, "  %-10s %s\n", bench_workloads[i].name, bench_workloads[i].descr);
}

static int parse_options(int argc, char **argv)
{
	enum {
		O_DAEMON = 256,
		O_SOCKET,
		O_DURATION,
		O_WARMUP,
		O_WINDOW,
		O_CLIENTS,
		O_NC,
		O_SWEEP,
		O_WL,
		O_MODES,
		O_NOFLOORS,
		O_NOIDLE,
		O_NONC,
		O_NOSWEEP,
		O_NOQUEUE,
		O_IDLEN,
		O_CSV,
		O_TMP,
		O_LIMIT,
		O_QUICK,
		O_PIN,
		O_CHURN,
		O_BASE,
		O_HELP
	};
	static const struct option lo[] = {
	    {"daemon", required_argument, NULL, O_DAEMON},
	    {"socket", required_argument, NULL, O_SOCKET},
	    {"duration", required_argument, NULL, O_DURATION},
	    {"warmup", required_argument, NULL, O_WARMUP},
	    {"window", required_argument, NULL, O_WINDOW},
	    {"clients", required_argument, NULL, O_CLIENTS},
	    {"nc-clients", required_argument, NULL, O_NC},
	    {"sweep", required_argument, NULL, O_SWEEP},
	    {"workloads", required_argument, NULL, O_WL},
	    {"modes", required_argument, NULL, O_MODES},
	    {"no-floors", no_argument, NULL, O_NOFLOORS},
	    {"no-idle", no_argument, NULL, O_NOIDLE},
	    {"no-nocoalesce", no_argument, NULL, O_NONC},
	    {"no-sweep", no_argument, NULL, O_NOSWEEP},
	    {"no-queue", no_argument, NULL, O_NOQUEUE},
	    {"idle-conns", required_argument, NULL, O_IDLEN},
	    {"csv", required_argument, NULL, O_CSV},
	    {"tmpdir", required_argument, NULL, O_TMP},
	    {"time-limit", required_argument, NULL, O_LIMIT},
	    {"quick", no_argument, NULL, O_QUICK},
	    {"pin", required_argument, NULL, O_PIN},
	    {"churn-hwpts", required_argument, NULL, O_CHURN},
	    {"base-daemon", required_argument, NULL, O_BASE},
	    {"help", no_argument, NULL, O_HELP},
	    {NULL, 0, NULL, 0},
	};
	bool sweep = true;
	int c;

	o = (struct opts){.daemon = BENCH_DEFAULT_DAEMON,
			  .tmpdir = "/tmp",
			  .duration = 0.5,
			  .warmup = 0.15,
			  .window = 16,
			  .sync = true,
			  .async = true,
			  .floors = true,
			  .idle = true,
			  .nocoalesce = true,
			  .queue = true,
			  .idle_conns = 1000,
			  .churn_hwpts = 10000,
			  .time_limit = 290,
			  .pin = 0};
	parse_list("1,4,16,64", o.clients, &o.n_clients);
	parse_list("1,16", o.nc_clients, &o.n_nc_clients);
	parse_list("1,4,16,64,256,1024,4096", o.sweep, &o.n_sweep);
	for (size_t i = 0; i < bench_n_workloads; i++)
		o.wls[o.n_wls++] = &bench_workloads[i];

	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case O_DAEMON: o.daemon = optarg; break;
		case O_SOCKET: o.socket = optarg; break;
		case O_DURATION: o.duration = atof(optarg); break;
		case O_WARMUP: o.warmup = atof(optarg); break;
		case O_WINDOW: o.window = (uint32_t)atoi(optarg); break;
		case O_CLIENTS:
			if (parse_list(optarg, o.clients, &o.n_clients))
				return -EINVAL;
			break;
		case O_NC:
			if (parse_list(optarg, o.nc_clients, &o.n_nc_clients))
				return -EINVAL;
			break;
		case O_SWEEP:
			if (parse_list(optarg, o.sweep, &o.n_sweep))
				return -EINVAL;
			break;
		case O_WL:
			if (parse_workloads(optarg))
				return -EINVAL;
			break;
		case O_MODES:
			o.sync = strstr(optarg, "sync") == optarg || strstr(optarg, ",sync");
			o.async = strstr(optarg, "async") != NULL;
			break;
		case O_NOFLOORS: o.floors = false; break;
		case O_NOIDLE: o.idle = false; break;
		case O_NONC: o.nocoalesce = false; break;
		case O_NOSWEEP: sweep = false; break;
		case O_NOQUEUE: o.queue = false; break;
		case O_IDLEN: o.idle_conns = (uint32_t)atoi(optarg); break;
		case O_CSV: o.csv = optarg; break;
		case O_TMP: o.tmpdir = optarg; break;
		case O_LIMIT: o.time_limit = (unsigned)atoi(optarg); break;
		case O_QUICK:
			o.duration = 0.2;
			o.warmup = 0.05;
			parse_list("1,4", o.clients, &o.n_clients);
			parse_list("1", o.nc_clients, &o.n_nc_clients);
			parse_list("1,256", o.sweep, &o.n_sweep);
			o.idle_conns = 200;
			o.churn_hwpts = 1000;
			break;
		case O_PIN: o.pin = strcmp(optarg, "none") ? atoi(optarg) : -1; break;
		case O_CHURN:
			o.churn_hwpts = (uint32_t)atoi(optarg);
			break;
		case O_BASE: o.base_daemon = optarg; break;
		case 'h':
		case O_HELP: usage(stdout); exit(0);
		default: usage(stderr); return -EINVAL;
		}
	}
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2 || o.pin >= sysconf(_SC_NPROCESSORS_ONLN))
		o.pin = -1;
	if (optind != argc || o.duration <= 0 || o.warmup < 0 || !o.window || o.window > 4096 ||
	    (!o.sync && !o.async) || o.idle_conns < 1) {
		usage(stderr);
		return -EINVAL;
	}
	if (!sweep)
		o.n_sweep = 0;
	if (o.socket) {
		o.nocoalesce = false;
		o.queue = false;
		o.idle = false;
		o.churn_hwpts = 0;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct daemon_proc d = { 0 };
	char tmpl[256];
	struct utsname un;
	int fails;

	if (parse_options(argc, argv))
		return 2;
	bench_server_cpu = o.pin;
	signal(SIGPIPE, SIG_IGN);
	signal(SIGALRM, on_fatal_signal);
	signal(SIGINT, on_fatal_signal);
	signal(SIGTERM, on_fatal_signal);
	alarm(o.time_limit);
	/* 64 clients plus their daemon side, 1000 idle connections. */
	raise_nofile(4096);
	if (o.csv) {
		csv = fopen(o.csv, "w");
		if (!csv) {
			perror(o.csv);
			return 2;
		}
		fprintf(csv, "section,workload,mode,clients,batch,window,req_s,ent_s,sub_ent_s,"
			     "fewer,p50_us,p99_us,p999_us,pp_p50_us,pp_p99_us,cpu_s_per_M,"
			     "ns_per_ent,rss_kib,inproc_ent_s,seconds,errors,received,submitted\n");
	}
	snprintf(tmpl, sizeof(tmpl), "%s/iommu-nest-bench.XXXXXX", o.tmpdir);
	if (!mkdtemp(tmpl)) {
		perror(tmpl);
		return 2;
	}
	o.tmpdir = tmpl;

	if (o.floors)
		run_floors();
	if (o.idle)
		run_idle(o.daemon);
	if (o.churn_hwpts) {
		fprintf(stderr,
			"churn: a tenant with %u HWPTs (state_file on) against a bystander\n",
			o.churn_hwpts);
		have_churn = !bench_churn(o.daemon, o.tmpdir, o.churn_hwpts, &churn);
	}

	fprintf(stderr, "daemon runs (%.2f s each after %.2f s warmup)\n", o.duration, o.warmup);
	if (o.socket) {
		run_matrix("coalesce", o.socket, 0, o.clients, o.n_clients, true);
	} else {
		if (daemon_start(&d, o.daemon, o.tmpdir, true, "coalesce") == 0) {
			running_daemon = &d;
			run_matrix("coalesce", d.socket, d.pid, o.clients, o.n_clients, true);
			daemon_stop(&d);
		}
		if (o.queue)
			run_queue();
		if (o.base_daemon)
			run_socket_ab();
		if (o.nocoalesce && daemon_start(&d, o.daemon, o.tmpdir, false, "nocoalesce") == 0) {
			running_daemon = &d;
			run_matrix("no-coalesce", d.socket, d.pid, o.nc_clients, o.n_nc_clients, false);
			daemon_stop(&d);
		}
		running_daemon = NULL;
	}
	alarm(0);

	uname(&un);
	printf("iommu-nest-bench: %ld CPUs, %s %s; %.2f s measured per row after %.2f s warmup;"
	       " async window %u\n",
	       sysconf(_SC_NPROCESSORS_ONLN), un.sysname, un.release, o.duration, o.warmup,
	       o.window);
	if (o.pin >= 0)
		printf("placement: daemon / echo peer / in-process floor on CPU %d, clients on the "
		       "other CPUs%s\n", o.pin, o.socket ? " (external daemon: not pinned by us)" : "");
	else
		printf("placement: unpinned\n");
	printf("daemon: sim backend, one VT-d device, max_entries 4096%s\n",
	       o.socket ? " (external daemon: its own config)" : "");
	printf("columns: req/s, ent/s = client requests and entries completed per second; sub/s ="
	       " entries the daemon submitted\n"
	       "  to the backend per second; fewer = client entries / submitted entries (one-by-one"
	       " is 1.0);\n"
	       "  p50/p99/p999 = round trip per request (async: submit to callback); p50/pp, "
	       "p99/pp = over the\n"
	       "  ping-pong floor with as many clients in the same mode; cpu s/M = daemon "
	       "utime+stime per million\n"
	       "  client entries; ns/ent = the same per entry; RSS = daemon VmRSS; xinproc = ent/s "
	       "over the\n"
	       "  in-process one-entry-per-call floor of the same workload\n");
	if (o.floors)
		print_floors();
	print_header("Daemon, coalescing enabled");
	for (uint32_t i = 0; i < n_rows; i++)
		if (!strcmp(rows[i].section, "coalesce"))
			print_row(&rows[i]);
	if (o.nocoalesce) {
		print_header("Daemon, coalescing disabled");
		for (uint32_t i = 0; i < n_rows; i++)
			if (!strcmp(rows[i].section, "no-coalesce"))
				print_row(&rows[i]);
	}
	for (uint32_t i = 0; i < n_rows; i++)
		if (!strcmp(rows[i].section, "one-cpu")) {
			print_header("1-entry round trip with client and daemon on one CPU");
			print_row(&rows[i]);
		}
	if (o.n_sweep) {
		print_header("Batch-size sweep (coalescing enabled, 1 client)");
		for (uint32_t i = 0; i < n_rows; i++)
			if (!strcmp(rows[i].section, "sweep"))
				print_row(&rows[i]);
	}
	if (o.queue)
		print_queue();
	if (o.base_daemon)
		print_socket_ab();
	if (have_churn) {
		printf("\nBystander while another tenant churns Alloc/Destroy (state_file on)\n");
		printf(
		    "  tenant holds %u HWPTs (allocated in %.2f s); bystander 1-entry Invalidate,"
		    " 4000 round trips each:\n"
		    "    no churn       p50 %8.1f us  p99 %8.1f us\n"
		    "    during churn   p50 %8.1f us  p99 %8.1f us   (%.0f Alloc/Destroy pairs/s,"
		    " daemon RSS %ld KiB)\n",
		    o.churn_hwpts, churn.fill_s, us(churn.idle_p50_ns), us(churn.idle_p99_ns),
		    us(churn.churn_p50_ns), us(churn.churn_p99_ns), churn.pairs_per_s,
		    churn.rss_kib);
	}
	bench_smmuv3(o.duration, csv);
	bench_batch(o.duration, csv);
	for (uint32_t i = 0; i < n_rows; i++)
		csv_row(&rows[i]);
	fails = acceptance();
	if (o.queue)
		fails += queue_targets();
	else if (o.base_daemon)
		fails += socket_ab_targets();
	if (csv)
		fclose(csv);
	/* Leave the daemon logs for inspection only when something failed. */
	{
		bool failed = false;

		for (uint32_t i = 0; i < n_rows; i++)
			failed |= rows[i].rc != 0;
		if (failed) {
			fprintf(stderr, "bench: a run failed; daemon logs kept in %s\n", o.tmpdir);
		} else {
			static const char *const tags[] = { "idle",	  "coalesce", "nocoalesce",
							    "queue-poll", "queue-nopoll", "socket-this",
							    "socket-base" };
			static const char *const exts[] = { "conf", "log", "sock" };
			char path[512];

			for (size_t t = 0; t < sizeof(tags) / sizeof(tags[0]); t++)
				for (size_t e = 0; e < 3; e++) {
					snprintf(path, sizeof(path), "%s/%s.%s", o.tmpdir, tags[t],
						 exts[e]);
					unlink(path);
				}
			rmdir(o.tmpdir);
		}
	}
	printf("\n%d target(s) not met\n", fails);
	return 0;
}
