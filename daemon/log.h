/* SPDX-License-Identifier: MIT */
/*
 * Logging to stderr with sd-daemon priority prefixes ("<3>" ...), which
 * journald turns into log levels. Messages above the configured level cost
 * one comparison, so debug logging may stay in cold paths.
 */
#ifndef IOMMU_NESTD_LOG_H
#define IOMMU_NESTD_LOG_H

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

#endif
