#!/usr/bin/env bash
# The cmake --install layout agrees with itself: installed into a DESTDIR,
# the service's --config names the config file that was installed, the
# units sit under the prefix (<prefix>/lib/systemd/system, or systemd's own
# directory for the prefix /usr), and the sysusers.d entry for the socket
# group is there. Usage: check-install.sh BUILD_DIR
set -euo pipefail
build=$1
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build/CMakeCache.txt")
group=$(sed -n 's/^NESTD_SOCKET_GROUP:STRING=//p' "$build/CMakeCache.txt")
DESTDIR=$dest cmake --install "$build" >/dev/null
fail=0
bad() { echo "FAIL: $*"; fail=1; }

if [ "$prefix" = /usr ]; then
	unitdir=$(pkg-config systemd --variable=systemdsystemunitdir)
else
	unitdir=$prefix/lib/systemd/system
fi
service=$dest$unitdir/iommu-nestd.service
[ -f "$service" ] || bad "no unit in $unitdir (prefix $prefix)"
[ -f "$dest$unitdir/iommu-nestd.socket" ] || bad "no socket unit in $unitdir"
if [ -f "$service" ]; then
	conf=$(sed -n 's/^ExecStart=.* --config \([^ ]*\).*/\1/p' "$service")
	[ -f "$dest$conf" ] || bad "the unit reads $conf, which is not what was installed"
	case $conf in "$prefix"/* | /etc/*) ;; *) bad "config $conf outside the prefix" ;; esac
fi
# Nothing but the prefix (and /etc for the prefix /usr) is touched.
outside=$(cd "$dest" && find . -type f | sed 's|^\.||' |
	grep -v -e "^$prefix/" -e "^$unitdir/" -e '^/etc/' || true)
[ -z "$outside" ] || bad "installed outside the prefix: $outside"
sysusers=$(find "$dest" -path '*/sysusers.d/iommu-nestd.conf' | head -1)
[ -n "$sysusers" ] && grep -qx "g $group - -" "$sysusers" ||
	bad "no sysusers.d entry 'g $group - -'"
[ "$fail" = 0 ] && echo "install layout for prefix $prefix: ok (units in $unitdir, config $conf)"
exit "$fail"
