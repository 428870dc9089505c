#!/bin/sh
# run-fuzzer.sh NAME BINARY SEED_DIR WORK_DIR SECONDS [EXTRA_SEED_DIR...]
#
# Runs one libFuzzer harness for SECONDS on a copy of its seeds (the source
# tree is never written to), then prints a one-line summary:
#   NAME: N execs, cov C, ft F, E exec/s, corpus K
# Fails on any crash, leak, timeout (-timeout=10 per input), RSS over
# 2 GiB or invariant break; the reproducer is left in WORK_DIR/artifacts
# and the log in WORK_DIR/NAME.log. Used by CTest (label fuzz).
set -u
if [ $# -lt 5 ]; then
	echo "usage: $0 NAME BINARY SEED_DIR WORK_DIR SECONDS [EXTRA_SEED_DIR...]" >&2
	exit 2
fi
name=$1 bin=$2 seeds=$3 work=$4 secs=$5
shift 5

rm -rf "$work/corpus" "$work/artifacts"
mkdir -p "$work/corpus" "$work/artifacts" || exit 1
cp "$seeds"/* "$work/corpus/" || exit 1
# Regression inputs (minimised findings), when there are any.
for d in "$@"; do
	[ -d "$d" ] || continue
	for f in "$d"/*; do
		[ -f "$f" ] && cp "$f" "$work/corpus/regress-$(basename "$f")"
	done
done

log=$work/$name.log
# Sanitizer findings must end the run; leaks are checked per input and at exit.
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=1:abort_on_error=1:symbolize=1"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-}:print_stacktrace=1:halt_on_error=1"
"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	-artifact_prefix="$work/artifacts/" "$work/corpus" >"$log" 2>&1
rc=$?

execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
# The last status line: "#N <event> cov: C ft: F corp: K/..."
last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n 1)
cov=$(printf '%s\n' "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
ft=$(printf '%s\n' "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
corp=$(printf '%s\n' "$last" | sed -n 's/.* corp: \([0-9]*\).*/\1/p')
echo "$name: ${execs:-?} execs, cov ${cov:-?}, ft ${ft:-?}, ${rate:-?} exec/s, corpus ${corp:-?}"

if [ $rc -ne 0 ] || ls "$work/artifacts/" | grep -q .; then
	echo "$name: FAILED (exit $rc); last lines of $log:" >&2
	tail -n 80 "$log" >&2
	echo "$name: reproducers:" >&2
	ls -l "$work/artifacts/" >&2
	exit 1
fi
exit 0
