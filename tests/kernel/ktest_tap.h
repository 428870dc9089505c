/* SPDX-License-Identifier: MIT */
/*
 * The kernel tier's TAP checks, shared by its test programs (each one a
 * single translation unit run in the guest): "ok N - what" or "not ok N -
 * what: detail", counted in n_checks and n_failed for the final line.
 */
#ifndef IOMMU_NESTD_KTEST_TAP_H
#define IOMMU_NESTD_KTEST_TAP_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static int n_checks;
static int n_failed;

static void report(bool ok, const char *what, const char *detail)
{
	n_checks++;
	if (!ok)
		n_failed++;
	printf("%sok %d - %s%s%s\n", ok ? "" : "not ", n_checks, what, detail ? ": " : "",
	       detail ? detail : "");
	fflush(stdout);
}

/* "0" or "-EINVAL": four buffers, so one check may print two. */
static const char *errname(int rc)
{
	static char buf[4][48];
	static int slot;
	char *b = buf[slot++ % 4];

	if (rc == 0)
		return "0";
	snprintf(b, 48, "-%s", strerrorname_np(-rc) ? strerrorname_np(-rc) : "?");
	return b;
}

/* rc (0 or -errno) must equal want. */
#define EXPECT_RC(want, expr, what)                                                                \
	do {                                                                                       \
		int rc_ = (expr);                                                                  \
		char d_[96];                                                                       \
		snprintf(d_, sizeof(d_), "got %s, want %s", errname(rc_), errname(want));          \
		report(rc_ == (want), what, rc_ == (want) ? NULL : d_);                            \
	} while (0)

#define EXPECT_EQ(want, got, what)                                                                 \
	do {                                                                                       \
		unsigned long long w_ = (want), g_ = (got);                                        \
		char d_[96];                                                                       \
		snprintf(d_, sizeof(d_), "got %llu, want %llu", g_, w_);                           \
		report(w_ == g_, what, w_ == g_ ? NULL : d_);                                      \
	} while (0)

#endif
