#!/usr/bin/env bash
# Every test on a fresh machine: install what is missing, build the Debian
# packages (lintian-checked), then build and run the whole suite (unit,
# integration, the real-systemd tier booting those packages under systemd as
# PID 1 in a container, kernel tier in QEMU) with warnings as errors, then
# the same unit and integration suites under ASan+UBSan and the integration
# suite with the daemon under valgrind.
#   NESTD_SKIP_KERNEL=1   leave out the QEMU kernel tiers (6.12 and 7.x)
#   NESTD_SKIP_KERNEL7=1  leave out only the Linux 7.x tier
#   NESTD_SKIP_SANITIZE=1 leave out the ASan/UBSan and valgrind passes
#   NESTD_SKIP_FUZZ=1     leave out the libFuzzer runs
#   NESTD_FUZZ_SECONDS=N  run each fuzzer for N seconds (default 60)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out=${BUILD_ROOT:-$top/build-test}
jobs=$(nproc)

deps=()
[ "${NESTD_SKIP_KERNEL:-0}" = 1 ] || deps+=(--kernel)
"$top/scripts/install-deps.sh" "${deps[@]}"

section() { printf '\n==== %s ====\n' "$*"; }

section "Debian packages (dpkg-buildpackage -us -uc -b, lintian)"
"$top/scripts/build-deb.sh" "$out/deb"

section "build (-Werror)"
cmake -S "$top" -B "$out/main" -DNESTD_WERROR=ON -DNESTD_DEB_DIR="$out/deb" \
	-DNESTD_KERNEL_TESTS="$([ "${NESTD_SKIP_KERNEL:-0}" = 1 ] && echo OFF || echo ON)" \
	-DNESTD_KERNEL7_TESTS="$([ "${NESTD_SKIP_KERNEL7:-0}" = 1 ] && echo OFF || echo ON)" >/dev/null
cmake --build "$out/main" -j"$jobs"

section "unit + integration + kernel tests"
ctest --test-dir "$out/main" --output-on-failure -j"$jobs"

if [ "${NESTD_SKIP_SANITIZE:-0}" != 1 ]; then
	section "ASan + UBSan build"
	cmake -S "$top" -B "$out/asan" -DNESTD_WERROR=ON -DNESTD_SANITIZE=ON \
		-DNESTD_KERNEL_TESTS=OFF -DCMAKE_BUILD_TYPE=Debug >/dev/null
	cmake --build "$out/asan" -j"$jobs"
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		ctest --test-dir "$out/asan" --output-on-failure -j"$jobs" -LE "kernel|bench|systemd-pid1"

	section "integration tests with the daemon under valgrind"
	NESTD_DAEMON_WRAPPER="valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=99" \
		ctest --test-dir "$out/main" --output-on-failure -j"$jobs" -L integration
	NESTD_DAEMON_WRAPPER="valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=99" \
		NESTD_RESTART_CASE=orphan-errors \
		ctest --test-dir "$out/main" --output-on-failure -R '^systemd/restart$'
fi
if [ "${NESTD_SKIP_FUZZ:-0}" != 1 ]; then
	section "fuzzing: each harness for ${NESTD_FUZZ_SECONDS:-60} s (clang, libFuzzer + ASan/UBSan)"
	"$top/tests/fuzz/run-fuzzers.sh" "$out/fuzz" "${NESTD_FUZZ_SECONDS:-60}"
fi
section "all test passes done"
