#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Fetches the newest linux-source-<series>.* package of Debian's unstable
# suite WITHOUT installing it and WITHOUT touching the machine's apt
# configuration: apt runs on a private source list, list directory, cache
# and (empty) dpkg status under the cache root. The archive URI is read from
# the machine's own apt sources (deb822 *.sources `URIs:` or sources.list
# `deb` lines), so no host name lives in this repository. The Release file
# must verify against the machine's Debian archive keyring.
#
# The package is `apt-get download`ed, unpacked with `dpkg-deb -x`, and only
# its kernel tarball is kept:
#   <cache>/src/<package>_<version>/<package>.tar.xz
#
# Usage: fetch-linux-source.sh [--series N] [--offline]
#   --series N  the major version to look for (default 7: linux-source-7.*)
#   --offline   no network: use the newest tarball already in the cache
# Prints three lines on stdout: the package name, its Debian version and the
# tarball path (logs go to stderr).
#
# Environment:
#   NESTD_KERNEL_CACHE  cache root (default ~/.cache/iommu-nestd/kernel, the
#                       same as build-kernel.sh)
#   NESTD_APT_SUITE     suite to read (default unstable)
#   NESTD_APT_KEYRING   default /usr/share/keyrings/debian-archive-keyring.gpg
#
# Exit status: 0 fetched (or cached); 77 the suite genuinely offers no such
# package or the machine has no usable apt source (apt said no); 1 anything
# else, including network failures and signature failures.
set -euo pipefail

readonly SKIP=77
series=7
offline=0
while [ $# -gt 0 ]; do
	case "$1" in
	--series) series=$2; shift 2 ;;
	--offline) offline=1; shift ;;
	-h | --help) sed -n '3,29p' "$0"; exit 0 ;;
	*) echo "fetch-linux-source.sh: unknown argument '$1'" >&2; exit 2 ;;
	esac
done
case "$series" in
'' | *[!0-9]*) echo "fetch-linux-source.sh: --series wants a number" >&2; exit 2 ;;
esac

log() { echo "fetch-linux-source: $*" >&2; }
die() {
	log "ERROR: $*"
	exit 1
}
skip() {
	log "SKIP: $*"
	exit $SKIP
}

CACHE_ROOT=${NESTD_KERNEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/iommu-nestd/kernel}
SUITE=${NESTD_APT_SUITE:-unstable}
KEYRING=${NESTD_APT_KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}
APT_ROOT=$CACHE_ROOT/apt-$SUITE
SRC_ROOT=$CACHE_ROOT/src
mkdir -p "$APT_ROOT" "$SRC_ROOT"

# One fetcher at a time per cache; the build lock is separate so that a
# kernel build of another tier does not wait on the download.
exec 8>"$CACHE_ROOT/.fetch.lock"
flock 8

# Newest cached tarball of the series: "<pkg> <version> <path>" or nothing.
newest_cached() {
	local d best= bestver= pkg ver
	for d in "$SRC_ROOT"/linux-source-"$series".*_*; do
		[ -f "$d/.complete" ] || continue
		pkg=$(sed -n 1p "$d/.complete")
		ver=$(sed -n 2p "$d/.complete")
		if [ -z "$best" ] || dpkg --compare-versions "$pkg $ver" gt "$bestver"; then
			best="$pkg"$'\n'"$ver"$'\n'"$d/$pkg.tar.xz"
			bestver="$pkg $ver"
		fi
	done
	[ -z "$best" ] || printf '%s\n' "$best"
}

if [ "$offline" = 1 ]; then
	got=$(newest_cached)
	[ -n "$got" ] || die "--offline and no linux-source-$series.* tarball in $SRC_ROOT"
	printf '%s\n' "$got"
	exit 0
fi

command -v apt-get >/dev/null 2>&1 || skip "apt-get is not available"
command -v dpkg-deb >/dev/null 2>&1 || skip "dpkg-deb is not available"
[ -r "$KEYRING" ] || skip "keyring $KEYRING not readable (package debian-archive-keyring)"

# The machine's archive URI: the first enabled `deb` source that is not a
# security or updates pocket, from deb822 files first, then one-line lists.
machine_uri() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		# Stanzas are separated by blank lines; keys are case-insensitive.
		# A stanza whose suites are all -security/-updates/-backports
		# pockets is skipped: those archives carry no unstable suite.
		awk 'BEGIN { RS = ""; FS = "\n" }
		{
			types = ""; uris = ""; suites = ""; enabled = "yes"
			for (i = 1; i <= NF; i++) {
				line = $i
				key = tolower(line)
				sub(/:.*/, "", key)
				val = line
				sub(/^[^:]*:[ \t]*/, "", val)
				if (key == "types") types = val
				else if (key == "uris") uris = val
				else if (key == "suites") suites = val
				else if (key == "enabled") enabled = tolower(val)
			}
			if (enabled ~ /^no/ || types !~ /(^|[ \t])deb([ \t]|$)/) next
			n = split(suites, s, /[ \t]+/)
			plain = 0
			for (j = 1; j <= n; j++)
				if (s[j] != "" && s[j] !~ /-(security|updates|backports)$/) plain = 1
			if (!plain) next
			split(uris, u, /[ \t]+/)
			print u[1]
			exit
		}' "$f"
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		# deb [options] URI suite components...
		sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" |
			awk '$1 == "deb" && $3 !~ /-(security|updates|backports)$/ { print $2 }'
	done
}

URI=$(machine_uri | sed -n 1p)
[ -n "$URI" ] || skip "no Debian archive URI in the machine's apt sources (/etc/apt/sources.list{,.d})"
case "$URI" in
http://* | https://* | file:/* | copy:/*) ;;
*) skip "the machine's first apt source '$URI' is not an http(s)/file archive URI" ;;
esac

mkdir -p "$APT_ROOT"/{lists/partial,cache/archives/partial,etc}
: >"$APT_ROOT/status"
echo "deb [signed-by=$KEYRING] $URI $SUITE main" >"$APT_ROOT/etc/sources.list"
apt_opts=(
	-o "Dir::Etc::SourceList=$APT_ROOT/etc/sources.list"
	-o "Dir::Etc::SourceParts=/dev/null"
	-o "Dir::Etc::Preferences=/dev/null"
	-o "Dir::Etc::PreferencesParts=/dev/null"
	-o "Dir::State::Lists=$APT_ROOT/lists"
	-o "Dir::State::status=$APT_ROOT/status"
	-o "Dir::Cache=$APT_ROOT/cache"
	-o "APT::Architecture=amd64"
)
# As root apt would drop to _apt for downloads, which cannot write into a
# cache under root's home; it warns and goes on as root. Say so up front.
[ "$(id -u)" != 0 ] || apt_opts+=(-o "APT::Sandbox::User=root")

log "reading $SUITE main from the machine's archive source (private apt state in $APT_ROOT)"
out=$APT_ROOT/update.log
rc=0
apt-get "${apt_opts[@]}" -q update >"$out" 2>&1 || rc=$?
sed 's/^/  apt| /' "$out" >&2
# apt-get update exits 0 on many fetch failures, with W:/E: lines instead.
if grep -qE 'NO_PUBKEY|not signed|EXPKEYSIG|BADSIG|signatures (were|couldn.t be) (invalid|verified)' "$out"; then
	die "the $SUITE Release file does not verify against $KEYRING (see apt's output above)"
fi
if grep -qE "does not have a Release file|404 +Not Found" "$out"; then
	skip "the archive has no '$SUITE' suite (apt: $(grep -m1 -E 'Release file|404' "$out"))"
fi
if [ "$rc" != 0 ] || grep -qE '^(W|E): (Failed to fetch|Some index files failed)' "$out" ||
	! ls "$APT_ROOT"/lists/*_dists_"${SUITE}"_InRelease >/dev/null 2>&1; then
	# Not "apt says no": the network or the mirror failed. Reuse a tarball
	# fetched before if there is one, otherwise this is a failure.
	got=$(newest_cached)
	if [ -n "$got" ]; then
		log "WARNING: apt-get update failed; using the newest cached tarball ($(echo "$got" | sed -n 2p))"
		printf '%s\n' "$got"
		exit 0
	fi
	die "apt-get update of $SUITE failed (rc=$rc) and nothing is cached"
fi

# apt checked the signature already (signed-by); check it once more by hand
# so that the log says which key of the keyring signed it.
if command -v gpgv >/dev/null 2>&1; then
	rel=$(ls "$APT_ROOT"/lists/*_dists_"${SUITE}"_InRelease | sed -n 1p)
	if ! gv=$(gpgv --keyring "$KEYRING" "$rel" 2>&1); then
		printf '%s\n' "$gv" | sed 's/^/  gpgv| /' >&2
		die "$rel is not signed by a key in $KEYRING"
	fi
	printf '%s\n' "$gv" | grep 'Good signature' | sed 's/^gpgv: /  /' >&2 || true
fi

# The newest linux-source-<series>.* the suite offers: highest upstream
# series first (7.10 > 7.2), then the Debian version.
cands=$(apt-cache "${apt_opts[@]}" pkgnames "linux-source-$series." 2>/dev/null |
	grep -E "^linux-source-$series\.[0-9]+$" || true)
[ -n "$cands" ] || skip "$SUITE offers no linux-source-$series.* package"
best=
bestkey=
for p in $cands; do
	v=$(apt-cache "${apt_opts[@]}" show --no-all-versions "$p" 2>/dev/null |
		sed -n 's/^Version: //p' | sed -n 1p)
	[ -n "$v" ] || continue
	minor=${p#linux-source-"$series".}
	key="$minor $v"
	if [ -z "$best" ] || [ "$minor" -gt "${bestkey%% *}" ] ||
		{ [ "$minor" = "${bestkey%% *}" ] && dpkg --compare-versions "$v" gt "${bestkey#* }"; }; then
		best=$p
		bestkey=$key
	fi
done
[ -n "$best" ] || skip "$SUITE lists linux-source-$series.* names but no installable version"
ver=${bestkey#* }
log "newest in $SUITE: $best $ver"

dest=$SRC_ROOT/${best}_$ver
if [ -f "$dest/.complete" ]; then
	log "cached: $dest/$best.tar.xz"
	printf '%s\n%s\n%s\n' "$best" "$ver" "$dest/$best.tar.xz"
	exit 0
fi

tmp=$(mktemp -d "$SRC_ROOT/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
log "downloading $best $ver"
(cd "$tmp" && apt-get "${apt_opts[@]}" -q download "$best=$ver" >&2) ||
	die "apt-get download $best=$ver failed"
deb=$(ls "$tmp"/*.deb 2>/dev/null | sed -n 1p)
[ -n "$deb" ] || die "apt-get download left no .deb"
# The download is verified by apt against the signed Packages index; say
# what we got, then unpack only the tarball.
log "unpacking $(basename "$deb") ($(du -m "$deb" | cut -f1) MiB)"
dpkg-deb -x "$deb" "$tmp/root"
tarball=$(ls "$tmp"/root/usr/src/linux-source-*.tar.* 2>/dev/null | sed -n 1p)
[ -n "$tarball" ] || die "$best contains no /usr/src/linux-source-*.tar.*"
rm -rf "$dest"
mkdir -p "$dest.tmp"
mv "$tarball" "$dest.tmp/$best.tar.xz"
printf '%s\n%s\n' "$best" "$ver" >"$dest.tmp/.complete"
mv "$dest.tmp" "$dest"
log "cached: $dest/$best.tar.xz"
printf '%s\n%s\n%s\n' "$best" "$ver" "$dest/$best.tar.xz"
