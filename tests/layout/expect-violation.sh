#!/bin/sh
# expect-violation.sh PATTERN... -- COMMAND...
# Passes only if COMMAND (the layout checker on a deliberately bad graph)
# exits 1, its violations status, and every extended regex PATTERN matches
# a line of its output: failing for another reason (a setup error is 2, a
# crash anything else) or without naming the planted edge does not count.
patterns=
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
	patterns="$patterns$1
"
	shift
done
[ "$1" = "--" ] || { echo "usage: $0 PATTERN... -- COMMAND..." >&2; exit 2; }
shift

out=$("$@" 2>&1)
rc=$?
printf '%s\n' "$out"
if [ "$rc" -ne 1 ]; then
	echo "expect-violation: the checker exited $rc, want 1 (violations found)"
	exit 1
fi
status=0
printf '%s' "$patterns" | while IFS= read -r p; do
	if ! printf '%s\n' "$out" | grep -Eq -- "$p"; then
		echo "expect-violation: no line matches: $p"
		exit 1
	fi
done || status=1
[ "$status" -eq 0 ] && echo "expect-violation: ok, the planted violation is reported"
exit "$status"
