/* SPDX-License-Identifier: MIT */
#include "util/log.h"
#include "util/common.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
/* CODE_FILE= etc. would name log.c for every entry: no use. */
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>
#include <time.h>
#include <unistd.h>

int log_max_level = LOG_INFO;

static const char *const level_names[] = {
	[LOG_EMERG] = "emerg", [LOG_ALERT] = "alert",   [LOG_CRIT] = "crit",
	[LOG_ERR] = "err",     [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
	[LOG_INFO] = "info",   [LOG_DEBUG] = "debug",
};

void log_set_level(int level)
{
	log_max_level = level;
}

int log_level_from_name(const char *name)
{
	for (int i = 0; i <= LOG_DEBUG; i++)
		if (!strcmp(name, level_names[i]))
			return i;
	if (!strcmp(name, "error"))
		return LOG_ERR;
	if (!strcmp(name, "warn"))
		return LOG_WARNING;
	return -1;
}

void log_msg(int prio, const char *fmt, ...)
{
	char line[1024];
	int saved = errno;
	va_list ap;
	int n;

	if (prio > log_max_level)
		return;
	n = snprintf(line, sizeof(line), "<%d>", prio);
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	/* One write per line so concurrent writers to the journal don't interleave. */
	fprintf(stderr, "%s\n", line);
	errno = saved;
}

/* ---- Structured events ---------------------------------------------------- */

/* A line longer than this is cut (still well-formed); journald has no such limit. */
#define LOG_LINE_MAX 2048

/* clang-format off */
static const char *const event_names[LOG_EV_COUNT] = {
	[LOG_EV_START] = "daemon_start",
	[LOG_EV_STOP] = "daemon_stop",
	[LOG_EV_RELOAD] = "config_reload",
	[LOG_EV_CONNECT] = "client_connect",
	[LOG_EV_DISCONNECT] = "client_disconnect",
	[LOG_EV_REFUSED] = "client_refused",
	[LOG_EV_PROTOCOL_ERROR] = "protocol_error",
	[LOG_EV_DENIED] = "denied",
	[LOG_EV_HWPT_ALLOC] = "hwpt_alloc",
	[LOG_EV_HWPT_DESTROY] = "hwpt_destroy",
	[LOG_EV_HWPT_RECLAIM] = "hwpt_reclaim",
	[LOG_EV_BACKEND_ERROR] = "backend_error",
	[LOG_EV_RECOVERY] = "recovery",
	[LOG_EV_SUPPRESSED] = "log_suppressed",
};
/* clang-format on */

static struct {
	uint32_t burst;
	uint32_t interval_ms;
	struct log_ratelimit rl[LOG_EV_COUNT];
	uint64_t (*now_ms)(void);
	int journal; /* stderr is the journal: 1, not: 0, not checked yet: -1 */
} ev_log = {.journal = -1};

const char *log_event_name(enum log_event ev)
{
	return (unsigned)ev < LOG_EV_COUNT ? event_names[ev] : "unknown";
}

void log_configure(uint32_t burst, uint32_t interval_ms)
{
	ev_log.burst = burst;
	ev_log.interval_ms = interval_ms;
	ev_log.journal = -1;
}

void log_set_clock(uint64_t (*now_ms)(void))
{
	ev_log.now_ms = now_ms;
}

bool log_ratelimit_take(struct log_ratelimit *rl, uint32_t burst, uint32_t interval_ms,
			uint64_t now_ms, uint64_t *report)
{
	*report = 0;
	/* Unsigned: a clock going backwards (tests) also opens a new window. */
	if (!rl->active || now_ms - rl->window_ms >= interval_ms) {
		rl->active = true;
		rl->window_ms = now_ms;
		rl->n = 0;
	}
	if (burst && interval_ms && rl->n >= burst) {
		rl->suppressed++;
		return false;
	}
	if (rl->n < UINT32_MAX)
		rl->n++;
	/* Normally the first event of a new window; after a reload raised the burst, any. */
	*report = rl->suppressed;
	rl->suppressed = 0;
	return true;
}

/*
 * Systemd's documented test (systemd.exec(5)): JOURNAL_STREAM names the
 * device and inode of the stream it connected; stderr may have been
 * redirected since, so compare with what stderr is now. The socket must
 * exist too: sd_journal_sendv() drops an entry silently (returns 0) when
 * it does not, and then the line would be lost.
 */
static bool stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st))
		return false;
	if ((unsigned long long)st.st_dev != dev || (unsigned long long)st.st_ino != ino)
		return false;
	return !access("/run/systemd/journal/socket", F_OK);
}

/* ---- Line building: bounded, all-or-nothing appends ----------------------- */

struct lbuf {
	char *p;
	size_t cap; /* usable bytes: room for one closing quote and the NUL is kept */
	size_t len;
	bool full;
};

static struct lbuf lb_init(char *p, size_t size)
{
	struct lbuf lb = {.p = p, .cap = size > 2 ? size - 2 : 0};

	if (size)
		p[0] = '\0';
	return lb;
}

static bool lb_put(struct lbuf *lb, const char *s, size_t n)
{
	if (lb->full || lb->len + n > lb->cap) {
		lb->full = true;
		return false;
	}
	memcpy(lb->p + lb->len, s, n);
	lb->len += n;
	lb->p[lb->len] = '\0';
	return true;
}

static bool lb_printf(struct lbuf *lb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool lb_printf(struct lbuf *lb, const char *fmt, ...)
{
	char tmp[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	return n >= 0 && (size_t)n < sizeof(tmp) && lb_put(lb, tmp, (size_t)n);
}

/* Safe unquoted in logfmt: printable ASCII but for the syntax characters. */
static bool bare_char(unsigned char c)
{
	return c > ' ' && c < 0x7f && c != '"' && c != '=' && c != '\\';
}

/*
 * The escape of one byte. In logfmt (quoted) mode everything that could
 * end the value, the line or the field is escaped, and bytes outside
 * printable ASCII too, so a client's string can never forge a key or a
 * line. In journal mode only control characters are: the value is a field
 * of its own there, but should stay one readable line.
 */
static size_t escape_byte(unsigned char c, bool logfmt, char out[5])
{
	const char *named = c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;

	if (logfmt && (c == '"' || c == '\\'))
		return (size_t)snprintf(out, 5, "\\%c", c);
	if (named)
		return (size_t)snprintf(out, 5, "%s", named);
	if (c < ' ' || c == 0x7f || (logfmt && c >= 0x80))
		return (size_t)snprintf(out, 5, "\\x%02x", c);
	out[0] = (char)c;
	return 1;
}

static void lb_escaped(struct lbuf *lb, const char *s, bool logfmt)
{
	char esc[5];

	for (; *s; s++)
		if (!lb_put(lb, esc, escape_byte((unsigned char)*s, logfmt, esc)))
			return;
}

/* A logfmt value: bare if it can be, else quoted; the quote always closes. */
static void lb_logfmt_str(struct lbuf *lb, const char *s)
{
	const unsigned char *c = (const unsigned char *)s;

	while (*c && bare_char(*c))
		c++;
	if (*s && !*c) {
		lb_put(lb, s, strlen(s));
		return;
	}
	if (!lb_put(lb, "\"", 1))
		return;
	lb_escaped(lb, s, true);
	/* The byte kept free by lb_init: a cut value still ends quoted. */
	lb->p[lb->len++] = '"';
	lb->p[lb->len] = '\0';
}

static void lb_number(struct lbuf *lb, const struct log_field *f)
{
	if (f->type == LOG_F_INT)
		lb_printf(lb, "%lld", (long long)f->i);
	else if (f->type == LOG_F_HEX)
		lb_printf(lb, "%#llx", (unsigned long long)f->u);
	else
		lb_printf(lb, "%llu", (unsigned long long)f->u);
}

/* " k=v k=v": each field with a leading space but the first if !lead. */
static void lb_logfmt_fields(struct lbuf *lb, const struct log_field *f, size_t n, bool lead)
{
	for (size_t i = 0; i < n && i < LOG_MAX_FIELDS; i++) {
		if (!lb_printf(lb, "%s%s=", lead || i ? " " : "", f[i].key))
			return;
		if (f[i].type == LOG_F_STR)
			lb_logfmt_str(lb, f[i].s ? f[i].s : "");
		else
			lb_number(lb, &f[i]);
	}
}

size_t log_format_line(char *buf, size_t cap, int prio, enum log_event ev,
		       const struct log_field *f, size_t n, const char *msg)
{
	struct lbuf lb = lb_init(buf, cap);

	lb_printf(&lb, "<%d>event=%s", prio, log_event_name(ev));
	lb_logfmt_fields(&lb, f, n, true);
	if (lb_put(&lb, " msg=", 5))
		lb_logfmt_str(&lb, msg);
	return lb.len;
}

/* ---- Sinks ------------------------------------------------------------------ */

static void write_stderr(const char *p, size_t len)
{
	while (len) {
		ssize_t w = write(STDERR_FILENO, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		len -= (size_t)w;
	}
}

static void emit_stderr(int prio, enum log_event ev, const struct log_field *f, size_t n,
			const char *msg)
{
	char line[LOG_LINE_MAX + 1];
	size_t len = log_format_line(line, sizeof(line) - 1, prio, ev, f, n, msg);

	/* One write per line so concurrent writers to the journal don't interleave. */
	line[len++] = '\n';
	write_stderr(line, len);
}

/* Appends one "KEY=value" item to iov, its bytes to lb. */
static void iov_item(struct iovec *iov, size_t *k, struct lbuf *lb, size_t start)
{
	if (lb->full || lb->len == start)
		return;
	iov[*k].iov_base = lb->p + start;
	iov[*k].iov_len = lb->len - start;
	(*k)++;
	lb_put(lb, "", 1); /* keep the items apart (the NUL is not sent) */
}

static void journal_field(struct lbuf *lb, const struct log_field *f)
{
	lb_put(lb, "NESTD_", 6);
	for (const char *c = f->key; *c; c++) {
		char u = (char)toupper((unsigned char)*c);

		lb_put(lb, &u, 1);
	}
	lb_put(lb, "=", 1);
	if (f->type == LOG_F_STR)
		lb_escaped(lb, f->s ? f->s : "", false);
	else
		lb_number(lb, f);
}

/*
 * MESSAGE is what journalctl shows by default, so it carries the fields
 * too ("client connected [session=3 pid=123 ...]"); NESTD_* are for queries.
 */
static int emit_journal(int prio, enum log_event ev, const struct log_field *f, size_t n,
			const char *msg)
{
	struct iovec iov[LOG_MAX_FIELDS + 4];
	char store[3 * LOG_LINE_MAX];
	struct lbuf lb = lb_init(store, sizeof(store));
	size_t k = 0, start = 0;

	lb_put(&lb, "MESSAGE=", 8);
	lb_escaped(&lb, msg, false);
	if (n && lb_put(&lb, " [", 2)) {
		lb_logfmt_fields(&lb, f, n, false);
		lb_put(&lb, "]", 1);
	}
	iov_item(iov, &k, &lb, start);
	start = lb.len;
	lb_printf(&lb, "PRIORITY=%d", prio);
	iov_item(iov, &k, &lb, start);
	start = lb.len;
	lb_printf(&lb, "SYSLOG_IDENTIFIER=iommu-nestd");
	iov_item(iov, &k, &lb, start);
	start = lb.len;
	lb_printf(&lb, "NESTD_EVENT=%s", log_event_name(ev));
	iov_item(iov, &k, &lb, start);
	for (size_t i = 0; i < n && i < LOG_MAX_FIELDS; i++) {
		start = lb.len;
		journal_field(&lb, &f[i]);
		iov_item(iov, &k, &lb, start);
	}
	return sd_journal_sendv(iov, (int)k);
}

static void emit(int prio, enum log_event ev, const struct log_field *f, size_t n, const char *msg)
{
	if (ev_log.journal < 0)
		ev_log.journal = stderr_is_journal();
	/* The journal may be gone (restarting, say): the line still goes out. */
	if (!ev_log.journal || emit_journal(prio, ev, f, n, msg) < 0)
		emit_stderr(prio, ev, f, n, msg);
}

static void emit_summary(int prio, enum log_event ev, uint64_t suppressed)
{
	char msg[128];

	snprintf(msg, sizeof(msg), "%llu %s events suppressed by the rate limit",
		 (unsigned long long)suppressed, log_event_name(ev));
	emit(prio, LOG_EV_SUPPRESSED,
	     LOG_FIELDS(LF_STR("kind", log_event_name(ev)), LF_UINT("suppressed", suppressed)),
	     msg);
}

void log_event(int prio, enum log_event ev, const struct log_field *f, size_t n, const char *fmt,
	       ...)
{
	int saved = errno;
	uint64_t report;
	char msg[512];
	va_list ap;

	if (prio > log_max_level || (unsigned)ev >= LOG_EV_COUNT)
		return;
	if (!log_ratelimit_take(&ev_log.rl[ev], ev_log.burst, ev_log.interval_ms,
				ev_log.now_ms ? ev_log.now_ms() : monotonic_ns() / 1000000u, &report)) {
		errno = saved;
		return;
	}
	if (report)
		emit_summary(prio, ev, report);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	emit(prio, ev, f, n, msg);
	errno = saved;
}

void log_flush_suppressed(void)
{
	if (LOG_NOTICE > log_max_level)
		return;
	for (int ev = 0; ev < LOG_EV_COUNT; ev++) {
		if (!ev_log.rl[ev].suppressed)
			continue;
		emit_summary(LOG_NOTICE, (enum log_event)ev, ev_log.rl[ev].suppressed);
		ev_log.rl[ev].suppressed = 0;
	}
}

void log_read_comm(pid_t pid, char *buf, size_t len)
{
	char path[32];
	ssize_t n = -1;
	int fd;

	if (!len)
		return;
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	fd = pid > 0 ? open(path, O_RDONLY | O_CLOEXEC) : -1;
	if (fd >= 0) {
		n = read(fd, buf, len - 1);
		close(fd);
	}
	if (n < 0)
		n = 0;
	buf[n] = '\0';
	if (n && buf[n - 1] == '\n')
		buf[n - 1] = '\0';
}
