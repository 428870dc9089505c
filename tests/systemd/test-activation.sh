#!/usr/bin/env bash
# Socket activation and sd_notify: the daemon runs under systemd-socket-activate
# with a SEQPACKET listener it did not create, and a fake NOTIFY_SOCKET checks
# READY=1, STATUS=, WATCHDOG=1, RELOADING=1 (SIGHUP) and STOPPING=1.
# Usage: test-activation.sh DAEMON NESTCTL NOTIFY_LISTENER CONFIG
set -euo pipefail
daemon=$1 ctl=$2 listener=$3 config=$4
command -v systemd-socket-activate >/dev/null || { echo "no systemd-socket-activate"; exit 77; }

dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT
sock=$dir/nestd.sock notify=$dir/notify.sock

"$listener" "$notify" 30 >"$dir/notes" &
pids+=($!)
for _ in $(seq 50); do [ -S "$notify" ] && break; sleep 0.05; done

# WATCHDOG_USEC of 0.4 s: the daemon must pet every 0.2 s from its loop.
systemd-socket-activate --seqpacket -l "$sock" -E NOTIFY_SOCKET="$notify" \
	-E WATCHDOG_USEC=400000 "$daemon" --config "$config" --socket "$dir/unused.sock" \
	2>"$dir/log" &
activator=$!
pids+=($activator)
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.05; done

# The first connection starts the daemon; it must serve it on the passed socket.
"$ctl" --socket "$sock" hello >"$dir/hello"
grep -q "backend" "$dir/hello" || { echo "FAIL: no hello reply"; cat "$dir/hello"; exit 1; }
[ ! -e "$dir/unused.sock" ] || { echo "FAIL: daemon created its own socket"; exit 1; }
sleep 1
kill -HUP "$activator"   # systemd-socket-activate execs the daemon: same pid
sleep 0.5
"$ctl" --socket "$sock" hello >/dev/null
kill -TERM "$activator"
wait "$activator" || { echo "FAIL: daemon exit status $?"; cat "$dir/log"; exit 1; }
wait "${pids[0]}" || true

fail=0
expect() {
	local what=$1 min=$2 n
	n=$(grep -c -- "$what" "$dir/notes" || true)
	if [ "$n" -lt "$min" ]; then
		echo "FAIL: expected at least $min notifications matching '$what', got $n"
		fail=1
	else
		echo "ok: $n x '$what'"
	fi
}
expect '^READY=1' 1
expect 'STATUS=.*clients' 1
expect 'WATCHDOG=1' 3
expect 'RELOADING=1|MONOTONIC_USEC=' 1
expect 'STOPPING=1' 1
# READY=1 must come before any STOPPING=1.
first_ready=$(grep -n '^READY=1' "$dir/notes" | head -1 | cut -d: -f1)
first_stop=$(grep -n 'STOPPING=1' "$dir/notes" | head -1 | cut -d: -f1)
[ -n "$first_ready" ] && [ -n "$first_stop" ] && [ "$first_ready" -lt "$first_stop" ] ||
	{ echo "FAIL: READY=1 not before STOPPING=1"; fail=1; }
grep -q 'using the socket passed by systemd' "$dir/log" || { echo "FAIL: not activated"; fail=1; }
[ $fail -eq 0 ] || { echo "--- notifications"; cat "$dir/notes"; echo "--- log"; cat "$dir/log"; }
exit $fail
