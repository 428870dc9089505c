/* SPDX-License-Identifier: MIT */
/*
 * Filling a reply's error, and the admin check. Shared by every handler
 * and by net/ for its own error replies (a frame it rejects).
 */
#include <stdarg.h>
#include <stdio.h>

#include "net/server.h"
#include "net/session.h"
#include "req/dispatch.h"
#include "util/log.h"

bool req_is_admin(const struct session *s)
{
	return policy_is_admin(&s->srv->cfg->admin, &s->cred);
}

void reply_error(IommuNest__Reply *rep, int err, const char *fmt, ...)
{
	/* The loop is single-threaded and a reply is encoded before the next. */
	static char reason[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	rep->status = err;
	rep->error = reason;
}

void req_deny(struct session *s, IommuNest__Reply *rep, int err, uint64_t limit, const char *fmt,
	      ...)
{
	static char reason[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	rep->status = err;
	rep->error = reason;
	rep->limit = limit;
	s->srv->stats.denials++;
	/* A client hammering a limit must not flood the journal: 1st, 2nd, 4th, ... */
	s->n_denied++;
	if (s->n_denied & (s->n_denied - 1))
		return;
	log_event(LOG_NOTICE, LOG_EV_DENIED,
		  LOG_FIELDS(LF_UINT("session", s->id), LF_CRED(s->cred), LF_STR("comm", s->comm),
			     LF_INT("error", err), LF_UINT("limit", limit),
			     LF_UINT("denied", s->n_denied)),
		  "denied: %s", reason);
}
