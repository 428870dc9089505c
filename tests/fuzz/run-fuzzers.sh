#!/bin/sh
# run-fuzzers.sh BUILD_DIR SECONDS
#
# Configures a clang build with the libFuzzer harnesses (CC=clang
# -DNESTD_FUZZ=ON) in BUILD_DIR, builds them and runs the CTest label fuzz,
# each harness for SECONDS. Installs clang and libclang-rt-14-dev with apt
# when they are missing. Exits non-zero on any crash, leak or timeout.
set -eu
if [ $# -ne 2 ]; then
	echo "usage: $0 BUILD_DIR SECONDS" >&2
	exit 2
fi
build=$1 secs=$2
src=$(cd "$(dirname "$0")/../.." && pwd)

have_libfuzzer() {
	command -v clang >/dev/null 2>&1 || return 1
	printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { return 0; }\n' |
		clang -x c -fsanitize=fuzzer,address,undefined -o /dev/null - >/dev/null 2>&1
}

if ! have_libfuzzer; then
	echo "run-fuzzers: installing clang and libclang-rt-14-dev" >&2
	if [ "$(id -u)" -eq 0 ]; then sudo=; else sudo=sudo; fi
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get install -y --no-install-recommends clang libclang-rt-14-dev ||
		{ $sudo apt-get update && $sudo apt-get install -y --no-install-recommends clang libclang-rt-14-dev; }
	have_libfuzzer || { echo "run-fuzzers: clang cannot link libFuzzer" >&2; exit 1; }
fi

CC=clang cmake -S "$src" -B "$build" -DNESTD_FUZZ=ON -DNESTD_FUZZ_SECONDS="$secs" \
	-DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$build" --target fuzz_dispatch fuzz_coalesce fuzz_queue_slot fuzz_smmuv3 make-corpus -j "$(nproc)"
cd "$build"
rc=0
ctest -L fuzz --output-on-failure -j 2 || rc=$?
# One summary line per harness: execs, coverage, features, exec/s.
grep -h -E '^fuzz_[a-z_]+: .* execs, cov ' Testing/Temporary/LastTest*.log 2>/dev/null || true
exit $rc
