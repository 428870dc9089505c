/* SPDX-License-Identifier: MIT */
/*
 * iommu-nestd: owns iommufd nested HWPTs and serves batched IOTLB
 * invalidations to unprivileged VMMs over a SOCK_SEQPACKET socket.
 */
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "backend/backend.h"
#include "util/config.h"
#include "util/log.h"
#include "util/notify.h"
#include "persist/restart.h"
#include "net/server.h"
#include "util/common.h"

struct options {
	const char *config_path;
	const char *socket_path;
	const char *backend;
	const char *log_level;
	bool test_requests;
	bool check_config;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: iommu-nestd [OPTIONS]\n"
		"  -c, --config FILE      configuration file (INI)\n"
		"  -s, --socket PATH      listen on PATH (SOCK_SEQPACKET)\n"
		"  -b, --backend NAME     sim | iommufd\n"
		"  -l, --log-level LEVEL  err | warning | notice | info | debug\n"
		"      --test-requests    serve test-only requests (IOTLB check, sim model)\n"
		"      --check-config     parse the configuration and exit\n"
		"  -h, --help             this text\n");
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "socket", required_argument, NULL, 's' },
		{ "backend", required_argument, NULL, 'b' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "test-requests", no_argument, NULL, 'T' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "c:s:b:l:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': o->config_path = optarg; break;
		case 's': o->socket_path = optarg; break;
		case 'b': o->backend = optarg; break;
		case 'l': o->log_level = optarg; break;
		case 'T': o->test_requests = true; break;
		case 'C': o->check_config = true; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -EINVAL;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return -EINVAL;
	}
	return 0;
}

/*
 * The file over cfg (defaults), then the command-line options, which win
 * over the file. 0, or -EINVAL with the reason in why.
 */
static int apply_options(struct config *cfg, const struct options *o, char *why, size_t len)
{
	char err[512];
	int rc;

	if (o->config_path) {
		rc = config_load(cfg, o->config_path, err, sizeof(err));
		if (rc) {
			if (rc > 0)
				snprintf(why, len, "%s:%d: %s", o->config_path, rc, err);
			else
				snprintf(why, len, "%s", err);
			return -EINVAL;
		}
	}
	if (o->socket_path)
		snprintf(cfg->socket_path, sizeof(cfg->socket_path), "%s", o->socket_path);
	if (o->backend) {
		if (strcmp(o->backend, "sim") && strcmp(o->backend, "iommufd")) {
			snprintf(why, len, "unknown backend \"%s\"", o->backend);
			return -EINVAL;
		}
		snprintf(cfg->backend, sizeof(cfg->backend), "%s", o->backend);
	}
	if (o->log_level) {
		rc = log_level_from_name(o->log_level);
		if (rc < 0) {
			snprintf(why, len, "unknown log level \"%s\"", o->log_level);
			return -EINVAL;
		}
		cfg->log_level = rc;
	}
	if (o->test_requests)
		cfg->test_requests = true;
	return 0;
}

struct daemon_ctx {
	struct event_base *base;
	struct server *srv;
	struct config *cfg;
	const struct options *opts;
	struct event *ev_watchdog;
	struct event *ev_status;
	uint64_t watchdog_usec;
	unsigned base_fds;     /* descriptors in use before any client (clamp_clients) */
	char last_status[256]; /* the STATUS= text systemd has */
	bool clean_stop; /* SIGTERM/SIGINT: tear everything down (restart.h) */
};

static void on_terminate(evutil_socket_t sig, short what, void *arg)
{
	struct daemon_ctx *d = arg;

	log_event(LOG_NOTICE, LOG_EV_STOP,
		  LOG_FIELDS(LF_INT("signal", sig), LF_UINT("clients", d->srv->stats.sessions_active)),
		  "%s, shutting down", strsignal((int)sig));
	notify_send("STOPPING=1");
	d->clean_stop = true;
	event_base_loopexit(d->base, NULL);
}

/* Every descriptor costs one client less; these are kept for everything else. */
#define FD_HEADROOM 32
/* recvmmsg can install MAX_PASSED_FDS (16) for each of RX_SLOTS (8) packets at once. */
#define FD_PASSED_MAX (16 * 8)

static unsigned count_open_fds(void)
{
	unsigned n = 0;
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *e;

	if (!dir)
		return 64; /* a guess that errs on the safe side */
	while ((e = readdir(dir)))
		n += e->d_name[0] != '.';
	closedir(dir);
	return n > 0 ? n - 1 : 0; /* not the directory's own descriptor */
}

/*
 * Clamps max_clients (0: unlimited) to what RLIMIT_NOFILE leaves after the
 * descriptors the daemon holds anyway, those passed descriptors can take
 * transiently, and some headroom: past it accept would fail with EMFILE
 * instead of refusing clients with -EUSERS. A client costs its socket;
 * while shared queues are allowed (max_queue_bytes) the kick and call
 * eventfds its queue holds (the memfd is closed once mapped); with VM
 * contexts its context's own open of /dev/iommu (the sim: its anchor).
 * A VFIO device moved into a context costs nothing more: the root closes
 * its cdev before the context opens its own (counted in base_fds).
 * Logged when it bites.
 */
static void clamp_clients(struct config *cfg, unsigned base_fds)
{
	uint32_t want = cfg->quota.max_clients;
	uint64_t reserve = (uint64_t)base_fds + FD_HEADROOM + FD_PASSED_MAX, fit;
	unsigned per_client = 1 + (cfg->quota.max_queue_bytes ? 2 : 0) + (cfg->vm_contexts ? 1 : 0);
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur == RLIM_INFINITY)
		return;
	fit = rl.rlim_cur > reserve ? (rl.rlim_cur - reserve) / per_client : 1;
	if (!fit)
		fit = 1;
	if (fit > UINT32_MAX)
		fit = UINT32_MAX;
	if (want && want <= fit)
		return;
	cfg->quota.max_clients = (uint32_t)fit;
	log_warn("max_clients %u%s is more than RLIMIT_NOFILE %llu allows (%u descriptors in use, "
		 "%u kept back, %u per client): serving at most %u clients",
		 want, want ? "" : " (unlimited)", (unsigned long long)rl.rlim_cur, base_fds,
		 FD_HEADROOM + FD_PASSED_MAX, per_client, cfg->quota.max_clients);
}

/*
 * The reload of SIGHUP and of the Reload request: parse the whole file
 * into a new config, check it, and swap it in at once, so that every key
 * the man page calls reloadable (policy, quotas, limits, coalescing,
 * logging) takes effect and nothing is half-applied. A file that does not
 * parse, or that changes what only a restart can (config_reload_conflict),
 * is refused with the reason logged, and the running config stays.
 */
static int reload_config(void *arg, char *why, size_t len)
{
	struct daemon_ctx *d = arg;
	struct config *next = malloc(sizeof(*next));
	const char *conflict;
	int rc = 0;

	notify_send("RELOADING=1\nMONOTONIC_USEC=%llu", (unsigned long long)monotonic_ns() / 1000u);
	if (!next) {
		snprintf(why, len, "out of memory");
		rc = -ENOMEM;
		goto out;
	}
	config_defaults(next);
	rc = apply_options(next, d->opts, why, len);
	if (!rc && (conflict = config_reload_conflict(d->cfg, next))) {
		snprintf(why, len, "%s changes only on restart", conflict);
		rc = -EINVAL;
	}
	if (rc)
		goto out;
	clamp_clients(next, d->base_fds);
	*d->cfg = *next;
	log_set_level(d->cfg->log_level);
	log_configure(d->cfg->log_rate_burst, d->cfg->log_rate_interval_ms);
	server_apply_config(d->srv);
	log_event(LOG_NOTICE, LOG_EV_RELOAD,
		  LOG_FIELDS(LF_STR("config", d->opts->config_path),
			     LF_UINT("log_rate_burst", d->cfg->log_rate_burst),
			     LF_UINT("log_rate_interval_ms", d->cfg->log_rate_interval_ms),
			     LF_UINT("max_clients", d->cfg->quota.max_clients)),
		  "configuration reloaded");
out:
	if (rc)
		log_event(LOG_ERR, LOG_EV_RELOAD,
			  LOG_FIELDS(LF_STR("config", d->opts->config_path), LF_INT("error", rc),
				     LF_STR("reason", why)),
			  "reload refused, keeping the running configuration: %s", why);
	free(next);
	notify_send("READY=1");
	return rc;
}

static void on_reload(evutil_socket_t sig, short what, void *arg)
{
	char why[512];

	(void)reload_config(arg, why, sizeof(why));
}

static void format_status(const struct server *srv, char *buf, size_t len)
{
	const struct daemon_stats *st = &srv->stats;

	snprintf(buf, len,
		 "%llu clients, %llu HWPTs, %llu requests, %llu entries in, "
		 "%llu submitted in %llu calls",
		 (unsigned long long)st->sessions_active, (unsigned long long)st->hwpts_active,
		 (unsigned long long)st->requests, (unsigned long long)st->entries_received,
		 (unsigned long long)st->entries_submitted, (unsigned long long)st->submissions);
}

/* STATUS= when the counters changed since it was last sent; never per request. */
static void notify_status(struct daemon_ctx *d)
{
	char buf[sizeof(d->last_status)];

	format_status(d->srv, buf, sizeof(buf));
	if (!strcmp(buf, d->last_status))
		return;
	memcpy(d->last_status, buf, sizeof(buf));
	notify_send("STATUS=%s", buf);
}

/* At most one STATUS= a second, so `systemctl status` lags by a second, not a watchdog period. */
static void on_status_tick(evutil_socket_t fd, short what, void *arg)
{
	notify_status(arg);
}

static int start_status_tick(struct daemon_ctx *d)
{
	struct timeval tv = {.tv_sec = 1, .tv_usec = 0};

	if (!notify_enabled())
		return 0;
	d->ev_status = event_new(d->base, -1, EV_PERSIST, on_status_tick, d);
	return d->ev_status && !event_add(d->ev_status, &tv) ? 0 : -ENOMEM;
}

/* Pets systemd's watchdog from the loop itself: a wedged loop stops petting. */
static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	notify_send("WATCHDOG=1");
}

static int start_watchdog(struct daemon_ctx *d)
{
	struct timeval tv;
	uint64_t usec = 0;

	/* STATUS= has its own tick (start_status_tick): no watchdog, no timer. */
	if (sd_watchdog_enabled(0, &usec) <= 0 || !usec)
		return 0;
	d->watchdog_usec = usec / 2;
	tv.tv_sec = d->watchdog_usec / 1000000u;
	tv.tv_usec = d->watchdog_usec % 1000000u;
	d->ev_watchdog = event_new(d->base, -1, EV_PERSIST, on_watchdog, d);
	return d->ev_watchdog && !event_add(d->ev_watchdog, &tv) ? 0 : -ENOMEM;
}

/*
 * A socket from systemd activation, else the configured path. $LISTEN_FDS
 * may also carry the fd store's descriptors (persist/fdstore.c tells them apart by
 * name), so the socket is the one that is neither theirs nor taken.
 */
static int start_listening(struct server *srv, const struct config *cfg, struct restart *rs)
{
	int fd, rc = restart_take_socket(rs, &fd);

	if (rc == 0) {
		log_info("using the socket passed by systemd");
		return server_listen_fd(srv, fd);
	}
	if (rc != -ENOENT)
		return rc;
	rc = server_listen_path(srv, cfg->socket_path, cfg->socket_mode);
	if (rc)
		log_err("cannot listen on %s: %s", cfg->socket_path, strerror(-rc));
	return rc;
}

/*
 * Each client costs one descriptor; the default soft limit of 1024 would
 * cap clients well below max_clients, so take what the hard limit allows
 * (clamp_clients then fits max_clients to it).
 */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int add_signal(struct event_base *base, int sig, event_callback_fn fn, void *arg,
		      struct event **ev)
{
	*ev = evsignal_new(base, sig, fn, arg);
	return *ev && !evsignal_add(*ev, NULL) ? 0 : -ENOMEM;
}

/*
 * A clean stop (SIGTERM) destroys everything and leaves nothing to recover;
 * any other way out leaves the fd store and the state file alone, so that
 * the next instance can take over (restart.h).
 */
static void shut_down(struct daemon_ctx *d, struct restart *rs, struct backend *be)
{
	if (d->clean_stop)
		restart_clean_stop(rs);
	server_fini(d->srv);
	if (d->clean_stop || !be->ops->abandon)
		be->ops->close(be);
	else
		be->ops->abandon(be);
	restart_fini(rs);
}

static int run(struct config *cfg, const struct options *o)
{
	struct daemon_ctx d = { .cfg = cfg, .opts = o };
	struct event *ev_sig[3] = { NULL, NULL, NULL };
	struct backend *be = NULL;
	struct restart rs;
	const char *why = "";
	struct server srv;
	int rc;

	raise_fd_limit();
	/* Before anything can use up the descriptors: the notify path needs none later. */
	if (notify_open())
		log_warn("cannot pre-open $NOTIFY_SOCKET; notifying through libsystemd");
	if (restart_init(&rs, cfg)) {
		log_err("out of memory");
		return -ENOMEM;
	}
	rc = restart_open_backend(&rs, &be, &why);
	if (rc) {
		log_err("cannot open the %s backend: %s", cfg->backend, why);
		restart_fini(&rs);
		return rc;
	}
	d.base = event_base_new();
	d.srv = &srv;
	if (!d.base || server_init(&srv, d.base, cfg, be)) {
		log_err("out of memory");
		be->ops->close(be);
		restart_fini(&rs);
		if (d.base)
			event_base_free(d.base);
		return -ENOMEM;
	}
	/*
	 * Before the socket is served, so that no client sees the unclamped
	 * limit: what is open now, the listening socket to come (one too many
	 * when activated, where it is open already), and no client sockets
	 * (restored sessions have none until their owner reconnects).
	 */
	d.base_fds = count_open_fds() + 1;
	clamp_clients(cfg, d.base_fds);
	/*
	 * Signals before the socket: whoever sees the socket appear may send
	 * SIGTERM at once, and it must be a clean stop, not the default action.
	 */
	srv.reload = reload_config;
	srv.reload_ctx = &d;
	if (add_signal(d.base, SIGTERM, on_terminate, &d, &ev_sig[0]) ||
	    add_signal(d.base, SIGINT, on_terminate, &d, &ev_sig[1]) ||
	    add_signal(d.base, SIGHUP, on_reload, &d, &ev_sig[2]))
		rc = -ENOMEM;
	else
		rc = start_listening(&srv, cfg, &rs);
	if (!rc) {
		srv.rs = &rs;
		rc = restart_restore(&rs, d.base, &srv.reg, &srv.stats.hwpts_active);
	}
	if (rc)
		goto out;
	if (start_watchdog(&d) || start_status_tick(&d)) {
		rc = -ENOMEM;
		goto out;
	}
	log_event(LOG_NOTICE, LOG_EV_START,
		  LOG_FIELDS(LF_STR("socket", srv.listen_fd_owned ? cfg->socket_path : "activated"),
			     LF_STR("backend", be->ops->name),
			     LF_UINT("devices", be->ops->n_devices(be))),
		  "serving on %s with the %s backend (%u devices)",
		  srv.listen_fd_owned ? cfg->socket_path : "the activated socket", be->ops->name,
		  be->ops->n_devices(be));
	notify_send("READY=1");
	notify_status(&d);
	rc = event_base_dispatch(d.base) < 0 ? -EIO : 0;
out:
	shut_down(&d, &rs, be);
	log_flush_suppressed(); /* the last word on what the rate limit held back */
	for (int i = 0; i < 3; i++)
		if (ev_sig[i])
			event_free(ev_sig[i]);
	if (d.ev_watchdog)
		event_free(d.ev_watchdog);
	if (d.ev_status)
		event_free(d.ev_status);
	event_base_free(d.base);
	notify_close();
	return rc;
}

int main(int argc, char **argv)
{
	struct options o = { 0 };
	struct config cfg;
	char why[512];
	int rc;

	signal(SIGPIPE, SIG_IGN);
	config_defaults(&cfg);
	if (parse_options(argc, argv, &o))
		return 2;
	if (apply_options(&cfg, &o, why, sizeof(why))) {
		log_err("%s", why);
		return 2;
	}
	log_set_level(cfg.log_level);
	log_configure(cfg.log_rate_burst, cfg.log_rate_interval_ms);
	if (o.check_config) {
		printf("configuration OK: backend %s, socket %s, %u devices\n", cfg.backend,
		       cfg.socket_path, cfg.n_devices);
		return 0;
	}
	rc = run(&cfg, &o);
	return rc ? 1 : 0;
}
