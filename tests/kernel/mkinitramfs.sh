#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Packs the initramfs the kernel test tier boots (cpio newc, gzip): static
# busybox, /init (tests/kernel/guest-init.sh), the daemon, the test
# binaries, every shared library they need (resolved with ldd, dynamic
# loader included) and the daemon's configuration.
#
# Usage: mkinitramfs.sh -o OUT.cpio.gz [-d DAEMON] [-c CONFIG] [-e NAME=VALUE]...
#                       [-f FILE]... [-t SECONDS] [-- ] TEST...
#   -o  output file
#   -d  the iommu-nestd binary -> /usr/sbin/iommu-nestd (NESTD_DAEMON)
#   -c  daemon config -> /etc/iommu-nestd/iommu-nestd.conf (NESTD_CONFIG)
#   -e  extra environment for the tests (repeatable)
#   -f  a helper file the tests use -> /tests/<its name>, next to them but
#       not run (repeatable; executables get their libraries too)
#   -t  per-test timeout inside the guest (default 120)
#   TEST  test binaries (or scripts), run in order; a test is named by its
#         file name, so names must be unique.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=
daemon=
config=
per_test_timeout=120
envs=()
files=()
while getopts "o:d:c:e:f:t:h" opt; do
	case "$opt" in
	o) out=$OPTARG ;;
	d) daemon=$OPTARG ;;
	c) config=$OPTARG ;;
	e) envs+=("$OPTARG") ;;
	f) files+=("$OPTARG") ;;
	t) per_test_timeout=$OPTARG ;;
	h)
		sed -n '3,19p' "$0"
		exit 0
		;;
	*) exit 2 ;;
	esac
done
shift $((OPTIND - 1))
tests=("$@")

die() {
	echo "mkinitramfs: ERROR: $*" >&2
	exit 1
}

[ -n "$out" ] || die "no output file (-o)"
[ ${#tests[@]} -gt 0 ] || [ -n "$daemon" ] || die "nothing to run: no tests and no daemon"
for f in ${daemon:+"$daemon"} "${tests[@]}"; do
	if [ ! -f "$f" ] || [ ! -x "$f" ]; then
		die "$f is not an executable file"
	fi
done
[ -z "$config" ] || [ -f "$config" ] || die "config $config not found"
for f in ${files[@]+"${files[@]}"}; do
	[ -f "$f" ] || die "file $f not found"
done

busybox=${NESTD_BUSYBOX:-}
if [ -z "$busybox" ]; then
	for b in /bin/busybox /usr/bin/busybox; do
		[ -x "$b" ] && busybox=$b && break
	done
fi
[ -n "$busybox" ] || die "busybox not found (install busybox-static)"
command -v cpio >/dev/null || die "cpio not found"

root=$(mktemp -d "${TMPDIR:-/tmp}/nestd-initramfs.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,run,etc/iommu-nestd,tests,usr/sbin}

# add_file SRC DEST: copies SRC (symlinks followed) to DEST inside the root.
add_file() {
	mkdir -p "$root$(dirname "$2")"
	cp -L "$1" "$root$2"
}

# add_libs BINARY: copies every shared object ldd names, at the path ldd
# gives, plus the dynamic loader. Static binaries need nothing.
add_libs() {
	local line path
	while IFS= read -r line; do
		path=
		case "$line" in
		*"=> not found"*) die "$1 needs ${line%% =>*}, which ldd cannot find" ;;
		*"=> /"*) path=${line#*=> } ;;
		[[:space:]]/*) path=$line ;;
		esac
		path=${path%% (*}
		path=${path//[[:space:]]/}
		[ -n "$path" ] || continue
		[ -e "$root$path" ] || add_file "$path" "$path"
		# The project's own libraries sit in the build tree, which the guest
		# may hide (a tmpfs on /tmp): also put them where the loader looks.
		case "$path" in
		/lib/* | /lib64/* | /usr/lib/*) ;;
		*) [ -e "$root/usr/lib/$(basename "$path")" ] ||
			add_file "$path" "/usr/lib/$(basename "$path")" ;;
		esac
	done < <(ldd "$1" 2>/dev/null || true)
}

add_file "$busybox" /bin/busybox
add_libs "$busybox"

names=()
for t in "${tests[@]}"; do
	name=$(basename "$t")
	for n in "${names[@]}"; do
		[ "$n" != "$name" ] || die "two tests named $name"
	done
	names+=("$name")
	add_file "$t" "/tests/$name"
	add_libs "$t"
done

for f in ${files[@]+"${files[@]}"}; do
	name=$(basename "$f")
	for n in "${names[@]}"; do
		[ "$n" != "$name" ] || die "$name is both a test and a file"
	done
	[ ! -e "$root/tests/$name" ] || die "two files named $name"
	add_file "$f" "/tests/$name"
	[ ! -x "$f" ] || add_libs "$f"
done

if [ -n "$daemon" ]; then
	add_file "$daemon" /usr/sbin/iommu-nestd
	add_libs "$daemon"
fi
if [ -n "$config" ]; then
	add_file "$config" /etc/iommu-nestd/iommu-nestd.conf
fi

add_file "$here/guest-init.sh" /init
chmod 0755 "$root/init"

# What /init runs, as shell-sourceable assignments.
{
	echo "NESTD_TESTS='${names[*]}'"
	echo "NESTD_TEST_TIMEOUT=$per_test_timeout"
	[ -z "$daemon" ] || echo "export NESTD_DAEMON=/usr/sbin/iommu-nestd"
	[ -z "$config" ] || echo "export NESTD_CONFIG=/etc/iommu-nestd/iommu-nestd.conf"
	for e in ${envs[@]+"${envs[@]}"}; do
		case "$e" in
		[A-Za-z_]*=*) printf 'export %s=%q\n' "${e%%=*}" "${e#*=}" ;;
		*) die "bad -e $e (want NAME=VALUE)" ;;
		esac
	done
} >"$root/etc/nestd-ktest.env"

# /etc/passwd and /etc/group for getpwnam()/SO_PEERCRED policy lookups.
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' \
	>"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"

mkdir -p "$(dirname "$out")"
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort |
	cpio --quiet -o -H newc -R 0:0) | gzip -1 >"$out.tmp"
mv "$out.tmp" "$out"
echo "mkinitramfs: $out ($(du -k "$out" | cut -f1) KiB; tests: ${names[*]:-none})" >&2
