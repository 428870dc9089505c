#!/bin/sh
# Runs the program of libiommu-nest(3)'s EXAMPLE (built by
# docs/libiommu-nest-example-build) against a private iommu-nestd on the
# sim backend, and checks that it prints what the page says it prints:
# the sample output between the page's OUTPUT-BEGIN and OUTPUT-END
# comments (HWPT ids aside, they depend on the backend's numbering).
#   run-example.sh DAEMON PROGRAM PAGE
set -eu
daemon=$1 program=$2 page=$3

dir=$(mktemp -d)
pid=
cleanup() {
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$dir"
}
trap cleanup EXIT

cat >"$dir/iommu-nestd.conf" <<CONF
[daemon]
backend = sim
state_file =
log_level = warning

[device vf0]
kind = vtd
CONF
"$daemon" --config "$dir/iommu-nestd.conf" --socket "$dir/sock" 2>"$dir/daemon.log" &
pid=$!
tries=0
while [ ! -S "$dir/sock" ]; do
	tries=$((tries + 1))
	if [ "$tries" -gt 200 ] || ! kill -0 "$pid" 2>/dev/null; then
		echo "iommu-nestd did not come up:" >&2
		cat "$dir/daemon.log" >&2
		exit 1
	fi
	sleep 0.05
done

# Whatever it says, the program must succeed: it reports the failing entry,
# it does not fail because of it.
if ! "$program" vf0 "$dir/sock" >"$dir/actual" 2>&1; then
	echo "the example program failed:" >&2
	cat "$dir/actual" "$dir/daemon.log" >&2
	exit 1
fi

# The sample output: the .EX block between the markers, without requests,
# the command line and roff escapes.
sed -n '/^\.\\" OUTPUT-BEGIN/,/^\.\\" OUTPUT-END/p' "$page" |
	sed -e '/^\./d' -e '/^\$ /d' \
	    -e 's/\\f[BIRP]//g' -e 's/\\-/-/g' -e 's/\\(aq/'"'"'/g' -e 's/\\e/\\/g' \
	    >"$dir/expected"
if [ ! -s "$dir/expected" ]; then
	echo "$page: no sample output between OUTPUT-BEGIN and OUTPUT-END" >&2
	exit 1
fi
for f in expected actual; do
	sed -E 's/HWPT [0-9]+/HWPT N/' "$dir/$f" >"$dir/$f.cmp"
done
if ! diff -u "$dir/expected.cmp" "$dir/actual.cmp"; then
	echo "the program's output (+) differs from the page's sample (-)" >&2
	exit 1
fi
cat "$dir/actual"
