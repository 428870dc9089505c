#!/usr/bin/env bash
# The main job on a fresh machine: install what is missing, build, start the
# daemon on the sim backend, run the demo client against it, stop the daemon.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/build}

"$top/scripts/install-deps.sh"
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" --target iommu-nestd iommu-nestctl iommu-nest-demo

run=$(mktemp -d)
trap 'kill "$daemon" 2>/dev/null || true; wait "$daemon" 2>/dev/null || true; rm -rf "$run"' EXIT
sock="$run/iommu-nestd.sock"
# Admin requests (status, clients, ...) are root's, or an admin group's:
# a non-root user running the demo makes their own group the admin group.
conf="$run/demo.conf"
cp "$top/scripts/demo.conf" "$conf"
[ "$(id -u)" -eq 0 ] || printf '\n[policy]\nadmin_groups = %s\n' "$(id -gn)" >>"$conf"
"$build/daemon/iommu-nestd" --config "$conf" --socket "$sock" 2>"$run/daemon.log" &
daemon=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
ctl() { "$build/client/iommu-nestctl" --socket "$sock" "$@"; }
demo() { "$build/client/iommu-nest-demo" --socket "$sock" "$@"; }
title() { printf '\n\033[1m### %s\033[0m\n' "$*"; }

title "A VMM's batched invalidations, with a result per entry"
demo vf0

title "The operator's view while a guest runs (a client holding a HWPT on vf0)"
# The demo program plays the guest: a HWPT attached, one invalidation, held 3 s.
demo --guest 3 vf0 >"$run/guest.out" &
guest=$!
for _ in $(seq 100); do grep -q '^hwpt' "$run/guest.out" 2>/dev/null && break; sleep 0.02; done
sleep 0.2
hwpt=$(sed -n 's/^hwpt \([0-9]*\) .*/\1/p' "$run/guest.out")
title "iommu-nestctl status"
ctl status
title "iommu-nestctl clients"
ctl clients
title "iommu-nestctl hwpts"
ctl hwpts
title "iommu-nestctl probe mock0 selftest"
ctl probe mock0 selftest
title "iommu-nestctl invalidate $hwpt 0x200000 16 --leaf   (the operator flushes the guest's HWPT)"
ctl invalidate "$hwpt" 0x200000 16 --leaf
title "iommu-nestctl metrics   (per-HWPT and latency lines)"
ctl metrics | grep -E '^iommu_nestd_(hwpt_(requests|entries)|invalidate_latency_seconds_(count|sum))'
wait "$guest"
title "The daemon's event log"
cat "$run/daemon.log"
kill -TERM "$daemon"
wait "$daemon"
daemon=
