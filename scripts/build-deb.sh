#!/usr/bin/env bash
# Builds the Debian packages (iommu-nestd, libiommu-nest0, libiommu-nest-dev)
# from a copy of this tree, offline, and checks them with lintian.
# Usage: scripts/build-deb.sh OUTDIR    (the .deb files end up in OUTDIR)
# The build dependencies come from Debian 12's archive: scripts/install-deps.sh.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "$1" && cd "$1" && pwd)
src=$out/src/iommu-nestd

rm -rf "$out/src" "$out"/*.deb "$out"/*.changes "$out"/*.buildinfo
mkdir -p "$src"
# The tracked files plus new ones not ignored: what the next commit holds,
# never a build tree.
(cd "$top" && git ls-files -z --cached --others --exclude-standard |
	xargs -0 -I{} sh -c 'test -e "{}" && printf "%s\0" "{}"' |
	tar --null -T - -cf -) | tar -C "$src" -xf -
(cd "$src" && dpkg-buildpackage -us -uc -b -j"$(nproc)")
mv "$out"/src/*.deb "$out"/src/*.changes "$out"/src/*.buildinfo "$out"/
# Every tag lintian still reports is explained in debian/*.lintian-overrides;
# anything else fails the build.
lintian -I --fail-on error,warning,info --no-tag-display-limit "$out"/iommu-nestd_*.changes
ls "$out"/*.deb
