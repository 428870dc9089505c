/* SPDX-License-Identifier: MIT */
/*
 * Logging to stderr with sd-daemon priority prefixes ("<3>" ...), which
 * journald turns into log levels. Messages above the configured level cost
 * one comparison, so debug logging may stay in cold paths.
 *
 * Notable events (connects, HWPT lifetime, denials, backend errors,
 * recovery) go through log_event() instead: one structured line each,
 * rate-limited per event kind. Form A is a logfmt line on stderr
 *   <6>event=client_connect session=3 pid=123 uid=0 gid=0 comm=qemu msg="client connected"
 * form B, used when stderr is the journal (JOURNAL_STREAM), is a native
 * journal entry with NESTD_EVENT= and one NESTD_<KEY>= field per key.
 */
#ifndef IOMMU_NESTD_LOG_H
#define IOMMU_NESTD_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <syslog.h>

extern int log_max_level;

void log_set_level(int level);
int log_level_from_name(const char *name); /* -1 if unknown */
void log_msg(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                   \
	do {                                             \
		if (log_max_level >= LOG_DEBUG)          \
			log_msg(LOG_DEBUG, __VA_ARGS__); \
	} while (0)

/* ---- Structured events ---------------------------------------------------- */

/* Each kind has its own rate limit; names are in log.c (event_names). */
enum log_event {
	LOG_EV_START,	       /* daemon_start */
	LOG_EV_STOP,	       /* daemon_stop */
	LOG_EV_RELOAD,	       /* config_reload */
	LOG_EV_CONNECT,	       /* client_connect */
	LOG_EV_DISCONNECT,     /* client_disconnect */
	LOG_EV_REFUSED,	       /* client_refused: turned away before a session */
	LOG_EV_PROTOCOL_ERROR, /* protocol_error: bad frame, session closed */
	LOG_EV_DENIED,	       /* denied: policy or quota */
	LOG_EV_HWPT_ALLOC,     /* hwpt_alloc */
	LOG_EV_HWPT_DESTROY,   /* hwpt_destroy */
	LOG_EV_HWPT_RECLAIM,   /* hwpt_reclaim */
	LOG_EV_BACKEND_ERROR,  /* backend_error */
	LOG_EV_RECOVERY,       /* recovery: restart without loss */
	LOG_EV_SUPPRESSED,     /* log_suppressed: what the rate limit dropped */
	LOG_EV_COUNT
};

enum log_field_type { LOG_F_STR, LOG_F_INT, LOG_F_UINT, LOG_F_HEX };

struct log_field {
	const char *key; /* [a-z0-9_]; journald gets NESTD_ + upper case */
	enum log_field_type type;
	union {
		const char *s; /* may be client-supplied: escaped on output */
		int64_t i;
		uint64_t u;
	};
};

/* clang-format off */
#define LF_STR(k, v)  { .key = (k), .type = LOG_F_STR, .s = (v) }
#define LF_INT(k, v)  { .key = (k), .type = LOG_F_INT, .i = (int64_t)(v) }
#define LF_UINT(k, v) { .key = (k), .type = LOG_F_UINT, .u = (uint64_t)(v) }
#define LF_HEX(k, v)  { .key = (k), .type = LOG_F_HEX, .u = (uint64_t)(v) }
/* A struct ucred (not a pointer): pid, uid, gid. */
#define LF_CRED(c) LF_INT("pid", (c).pid), LF_UINT("uid", (c).uid), LF_UINT("gid", (c).gid)

/* Expands to the two arguments "array, count" of log_event(). */
#define LOG_FIELDS(...) \
	(const struct log_field[]){ __VA_ARGS__ }, \
	sizeof((const struct log_field[]){ __VA_ARGS__ }) / sizeof(struct log_field)
/* clang-format on */

/* At most this many fields are output; more are dropped. */
#define LOG_MAX_FIELDS 16

/*
 * Logs one event: dropped above log_max_level, then rate-limited per kind.
 * fmt gives the human-readable msg; the fields carry the data. Example:
 *   log_event(LOG_INFO, LOG_EV_HWPT_DESTROY,
 *             LOG_FIELDS(LF_UINT("session", s->id), LF_UINT("hwpt", id)),
 *             "hwpt destroyed");
 */
void log_event(int prio, enum log_event ev, const struct log_field *f, size_t n, const char *fmt,
	       ...) __attribute__((format(printf, 5, 6)));

/*
 * Rate limit: at most burst events of one kind per interval_ms (either 0:
 * unlimited). Also re-checks whether stderr is the journal. Counters of
 * suppressed events survive a reconfiguration.
 */
void log_configure(uint32_t burst, uint32_t interval_ms);

/* Emits the summary of every kind with suppressed events (at shutdown). */
void log_flush_suppressed(void);

const char *log_event_name(enum log_event ev);

/* The process name of pid from /proc (racy by nature; for logs). "" if unknown. */
void log_read_comm(pid_t pid, char *buf, size_t len);

/* ---- Exposed for unit tests ----------------------------------------------- */

/* Replaces the limiter's clock (milliseconds; NULL: CLOCK_MONOTONIC). */
void log_set_clock(uint64_t (*now_ms)(void));

/* A fixed-window limiter, a pure function of its state and now_ms. */
struct log_ratelimit {
	bool active;	     /* a window is open */
	uint64_t window_ms;  /* when it opened */
	uint32_t n;	     /* events let through in it */
	uint64_t suppressed; /* events dropped since the last summary */
};

/*
 * True if an event at now_ms may be logged. If events were dropped before
 * it, *report gets their count (else 0): the caller summarises them first.
 */
bool log_ratelimit_take(struct log_ratelimit *rl, uint32_t burst, uint32_t interval_ms,
			uint64_t now_ms, uint64_t *report);

/*
 * Form A without the trailing newline: "<prio>event=NAME k=v ... msg=MSG".
 * Always NUL-terminated and well-formed (truncated values stay quoted).
 * Returns the length.
 */
size_t log_format_line(char *buf, size_t cap, int prio, enum log_event ev,
		       const struct log_field *f, size_t n, const char *msg);

#endif
