/* SPDX-License-Identifier: MIT */
/* The CUnit driver every unit test program shares. */
#ifndef NESTD_TEST_UNIT_RUN_H
#define NESTD_TEST_UNIT_RUN_H

#include <CUnit/CUnit.h>
#include <stddef.h>

struct unit_case {
	const char *name;
	CU_TestFunc fn;
};

#define UNIT_CASES(a) (a), (sizeof(a) / sizeof((a)[0]))

/*
 * Registers the cases as one suite, runs them verbosely and returns the
 * exit code: 0 all passed, 1 an assertion or case failed, 2 CUnit itself
 * failed (registry, suite or case could not be set up).
 */
int unit_run(const char *suite, const struct unit_case *cases, size_t n);

#endif
