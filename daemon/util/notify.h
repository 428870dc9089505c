/* SPDX-License-Identifier: MIT */
/*
 * sd_notify(3) over one datagram socket opened and connected at start.
 * libsystemd's sd_notify() opens a fresh socket per call, so once the
 * daemon is out of descriptors (EMFILE) WATCHDOG=1 stops and systemd kills
 * the service; this path needs no new descriptor ever.
 */
#ifndef IOMMU_NESTD_NOTIFY_H
#define IOMMU_NESTD_NOTIFY_H

#include <stdbool.h>

/*
 * Opens and connects the socket $NOTIFY_SOCKET names (a path or an
 * @abstract name). 0 when there is none to talk to; -errno on failure,
 * after which notify_send() falls back to libsystemd.
 */
int notify_open(void);
void notify_close(void);

/* Whether there is a service manager to notify at all. */
bool notify_enabled(void);

/* Sends one notification ("READY=1", "STATUS=..."); best effort. */
void notify_send(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
