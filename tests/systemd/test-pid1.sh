#!/usr/bin/env bash
# The real-systemd tier: boots systemd (252, PID 1) in a systemd-nspawn
# container on a throw-away overlay of this machine's own root, installs the
# built Debian packages there and checks what an operator relies on, with
# systemctl, journalctl and systemd-analyze. Before the packages it checks
# the `cmake --install` route in the same container, from a build of this
# tree made here for it (default prefix /usr/local, no tests).
#
# Usage: test-pid1.sh DEB_DIR PID1_CLIENT
#   DEB_DIR      the .deb files from scripts/build-deb.sh (built there
#                first if it has none)
#   PID1_CLIENT  tests/systemd/pid1_client (linked to libiommu-nest; inside
#                the container it uses the packaged library)
# Exit 0 all checks passed, 1 a check failed, 77 this machine cannot run a
# container at all (not root, no overlayfs, no unified cgroup hierarchy).
# NESTD_PID1_KEEP=1 leaves the work directory (console log, journal).
set -euo pipefail

skip() { echo "SKIP: $*"; exit 77; }

if [ "${1:-}" != --inside ]; then
	[ $# -eq 2 ] || { echo "usage: $0 DEB_DIR PID1_CLIENT" >&2; exit 2; }
	[ "$(id -u)" -eq 0 ] || skip "needs root to boot a container"
	command -v systemd-nspawn >/dev/null ||
		{ echo "FAIL: systemd-nspawn missing: run scripts/install-deps.sh" >&2; exit 1; }
	command -v unshare >/dev/null || skip "no unshare(1)"
	# No packages given (ctest run by hand): build them first.
	if ! ls "$1"/iommu-nestd_*.deb "$1"/libiommu-nest0_*.deb >/dev/null 2>&1; then
		"$(dirname "$0")/../../scripts/build-deb.sh" "$1" >"$1.log" 2>&1 ||
			{ echo "FAIL: scripts/build-deb.sh $1 (log: $1.log)" >&2; exit 1; }
	fi
	# A private mount namespace: the overlay and (if needed) a unified
	# cgroup hierarchy are seen by the container only, never by the host.
	exec unshare -m --propagation private "$0" --inside "$(cd "$1" && pwd)" \
		"$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"
fi
debs=$2
client=$3
top=$(cd "$(dirname "$0")/../.." && pwd)

work=$(mktemp -d /tmp/nestd-pid1.XXXXXX)
root=$work/root
nspawn_pid=
cleanup() {
	local rc=$?
	if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
		kill -TERM "$nspawn_pid" 2>/dev/null || true # nspawn: a clean poweroff
		for _ in $(seq 600); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$nspawn_pid" 2>/dev/null || true
		wait "$nspawn_pid" 2>/dev/null || true
	fi
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && [ -s "$work/console.log" ]; then
		echo "--- last lines of the container console ($work/console.log)"
		tail -n 40 "$work/console.log"
	fi
	umount -R "$root" 2>/dev/null || true
	umount "$work/t" 2>/dev/null || true
	[ "${NESTD_PID1_KEEP:-0}" = 1 ] && echo "kept $work" || rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT

# DevicePolicy= is enforced with BPF only on cgroup v2: without a unified
# hierarchy the check would pass for the wrong reason.
if [ "$(stat -fc %T /sys/fs/cgroup)" != cgroup2fs ]; then
	mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null ||
		skip "cannot mount a unified cgroup hierarchy (cgroup2)"
fi
# The cmake --install route: a build dir made for it, with the default
# prefix (none given, and none from the environment), built here because the
# container boots from the same root and has the same compiler; installed
# inside (pid1-checks.sh), where `cmake --install` runs as on a live system.
inst=$work/inst
if ! { env -u CMAKE_INSTALL_PREFIX cmake -S "$top" -B "$inst" -DBUILD_TESTING=OFF &&
	cmake --build "$inst" -j"$(nproc)"; } >"$work/inst.log" 2>&1; then
	tail -n 30 "$work/inst.log"
	echo "FAIL: building $top for cmake --install (log above)"
	exit 1
fi
grep -qx 'CMAKE_INSTALL_PREFIX:PATH=/usr/local' "$inst/CMakeCache.txt" ||
	{ echo "FAIL: the default prefix is not /usr/local in $inst"; exit 1; }
mkdir -p "$work/t" "$root"
mount -t tmpfs -o mode=0755 tmpfs "$work/t"
mkdir -p "$work/t/upper" "$work/t/work"
mount -t overlay overlay -o "lowerdir=/,upperdir=$work/t/upper,workdir=$work/t/work" "$root" ||
	skip "cannot mount an overlay of / (overlayfs)"

# What the container gets besides the host's root: the packages, the client,
# a minimal boot target (the host's multi-user services stay off).
stage=$root/var/lib/nestd-pid1
mkdir -p "$stage"
cp "$debs"/iommu-nestd_*.deb "$debs"/libiommu-nest0_*.deb "$stage/"
cp "$client" "$stage/pid1_client"
cp "$(dirname "$0")/pid1-checks.sh" "$(dirname "$0")/pid1-lib.sh" "$stage/"
cat >"$root/etc/systemd/system/nestd-test.target" <<'EOF'
[Unit]
Description=iommu-nestd real-systemd test tier
Requires=basic.target
After=basic.target
AllowIsolate=yes
EOF
# Stale state from the host's own package, if any, must not leak in.
rm -rf "$root/etc/systemd/system/iommu-nestd.service.d" "$root/etc/iommu-nestd"

# CAP_IPC_LOCK for the unit's bounding set; CAP_BPF and bpf() for the
# device-policy programs (--private-network also grants CAP_NET_ADMIN,
# which attaching cgroup programs needs); no registration with a machined.
# The install build and the source tree it installs from keep their paths
# (cmake_install.cmake names them absolutely), bound in whatever mounts they
# live on.
systemd-nspawn --quiet --register=no --keep-unit --boot --directory="$root" \
	--bind="$inst" --bind-ro="$top" \
	--machine=nestd-pid1 --private-network --console=read-only \
	--capability=CAP_IPC_LOCK,CAP_BPF --system-call-filter=bpf \
	systemd.unit=nestd-test.target </dev/null >"$work/console.log" 2>&1 &
nspawn_pid=$!

# The container's PID 1 (as seen here): the nspawn descendant whose pid in
# its own namespace is 1.
leader=
for _ in $(seq 600); do
	kill -0 "$nspawn_pid" 2>/dev/null || { echo "FAIL: systemd-nspawn exited"; exit 1; }
	for s in /proc/[0-9]*/status; do
		read -r -a ns < <(sed -n 's/^NSpid:\s*//p' "$s" 2>/dev/null) || continue
		if [ "${#ns[@]}" -eq 2 ] && [ "${ns[1]}" = 1 ]; then
			p=${ns[0]}
			while [ "$p" -gt 1 ] && [ "$p" != "$nspawn_pid" ]; do
				p=$(awk '/^PPid:/ { print $2 }' "/proc/$p/status" 2>/dev/null || echo 1)
			done
			[ "$p" = "$nspawn_pid" ] && leader=${ns[0]} && break
		fi
	done
	[ -n "$leader" ] && break
	sleep 0.1
done
[ -n "$leader" ] || { echo "FAIL: no container init found"; exit 1; }
# If this script is killed (a CTest timeout), nspawn's death alone would
# leave the container's init running: a detached watcher ends it (and exits
# within a second of this script).
setsid bash -c "while kill -0 $$ 2>/dev/null; do sleep 1; done; kill -KILL $leader 2>/dev/null" \
	</dev/null >/dev/null 2>&1 &

# Runs a command in the container (all its namespaces, a clean environment).
in_ct() {
	nsenter -t "$leader" -m -u -i -n -p -C -- \
		env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
		"$@"
}

. "$(dirname "$0")/pid1-lib.sh"

booted() {
	local s
	s=$(in_ct systemctl is-system-running 2>/dev/null) || true
	[ "$s" = running ] || [ "$s" = degraded ]
}
wait_until 1200 booted || { echo "FAIL: the container did not finish booting"; exit 1; }
echo "container up: systemd $(in_ct systemctl --version | sed -n '1s/systemd \([0-9]*\).*/\1/p') as PID 1, cgroup $(in_ct stat -fc %T /sys/fs/cgroup)"

# The rest runs inside, as one script: see pid1-checks.sh.
in_ct /bin/bash /var/lib/nestd-pid1/pid1-checks.sh /var/lib/nestd-pid1 "$inst"
