/* SPDX-License-Identifier: MIT */
#include "unit_run.h"

#include <CUnit/Basic.h>

int unit_run(const char *suite, const struct unit_case *cases, size_t n)
{
	unsigned int failed;
	CU_pSuite s;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	s = CU_add_suite(suite, NULL, NULL);
	for (size_t i = 0; s && i < n; i++)
		if (!CU_add_test(s, cases[i].name, cases[i].fn))
			s = NULL;
	if (s) {
		CU_basic_set_mode(CU_BRM_VERBOSE);
		if (CU_basic_run_tests() != CUE_SUCCESS)
			s = NULL;
	}
	if (!s) {
		CU_cleanup_registry();
		return 2;
	}
	failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
