#!/usr/bin/env bash
# The main job on a fresh machine: install what is missing, build, start the
# daemon on the sim backend, run the demo client against it, stop the daemon.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/build}

"$top/scripts/install-deps.sh"
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" --target iommu-nestd iommu-nestctl

run=$(mktemp -d)
trap 'kill "$daemon" 2>/dev/null || true; wait "$daemon" 2>/dev/null || true; rm -rf "$run"' EXIT
sock="$run/iommu-nestd.sock"
"$build/daemon/iommu-nestd" --config "$top/scripts/demo.conf" --socket "$sock" &
daemon=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done

"$build/client/iommu-nestctl" --socket "$sock" demo vf0
kill -TERM "$daemon"
wait "$daemon"
daemon=
