/* SPDX-License-Identifier: MIT */
#include "util/notify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

static int notify_fd = -1;
static struct sockaddr_un notify_addr;
static socklen_t notify_addr_len;
/* $NOTIFY_SOCKET is set but is not a path we can pre-open (e.g. vsock:). */
static bool notify_fallback;

static int notify_connect(void)
{
	return connect(notify_fd, (struct sockaddr *)&notify_addr, notify_addr_len) < 0 ? -errno
											: 0;
}

int notify_open(void)
{
	const char *e = getenv("NOTIFY_SOCKET");
	size_t len;
	int rc;

	notify_close();
	if (!e || !*e)
		return 0;
	len = strlen(e);
	if ((e[0] != '/' && e[0] != '@') || len >= sizeof(notify_addr.sun_path)) {
		notify_fallback = true;
		return -EAFNOSUPPORT;
	}
	memset(&notify_addr, 0, sizeof(notify_addr));
	notify_addr.sun_family = AF_UNIX;
	memcpy(notify_addr.sun_path, e, len);
	if (e[0] == '@')
		notify_addr.sun_path[0] = '\0'; /* abstract: no terminating NUL counts */
	notify_addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (e[0] == '/'));
	notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (notify_fd < 0) {
		notify_fallback = true;
		return -errno;
	}
	rc = notify_connect();
	if (rc) {
		close(notify_fd);
		notify_fd = -1;
		notify_fallback = true;
	}
	return rc;
}

void notify_close(void)
{
	if (notify_fd >= 0)
		close(notify_fd);
	notify_fd = -1;
	notify_fallback = false;
}

bool notify_enabled(void)
{
	return notify_fd >= 0 || notify_fallback;
}

void notify_send(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(msg))
		return;
	if (notify_fd < 0) {
		if (notify_fallback)
			sd_notify(0, msg);
		return;
	}
	if (send(notify_fd, msg, (size_t)n, MSG_NOSIGNAL) >= 0)
		return;
	/* The manager re-created its socket (daemon-reexec): connect anew, once. */
	if ((errno == ECONNREFUSED || errno == ENOTCONN) && !notify_connect())
		(void)!send(notify_fd, msg, (size_t)n, MSG_NOSIGNAL);
}
