#!/usr/bin/env bash
# Structured events to the journal: with stderr being the journal stream
# (JOURNAL_STREAM names its device:inode, as systemd sets it), the daemon
# sends native journal entries (NESTD_EVENT=, NESTD_PID=, ...) instead of
# logfmt lines. A private mount namespace puts a fake journald socket
# (journal_listener) at /run/systemd/journal/socket. Then, with a dead
# journal socket, the lines must fall back to stderr.
# Usage: test-journal.sh DAEMON NESTCTL JOURNAL_LISTENER CONFIG
# (NESTD_KEEP_LOGS=1: print the entries and logs on success too)
set -euo pipefail
daemon=$1 ctl=$2 listener=$3 config=$4

if [ -z "${NESTD_JOURNAL_NS:-}" ]; then
	command -v unshare >/dev/null || { echo "SKIP: no unshare"; exit 77; }
	unshare --mount true 2>/dev/null ||
		{ echo "SKIP: cannot create a mount namespace (needs root / CAP_SYS_ADMIN)"; exit 77; }
	NESTD_JOURNAL_NS=1 exec unshare --mount --propagation private "$0" "$@"
fi

# In the private namespace: an empty /run/systemd/journal of our own.
if [ -d /run/systemd/journal ]; then
	mount -t tmpfs tmpfs /run/systemd/journal
elif [ -d /run/systemd ]; then
	mount -t tmpfs tmpfs /run/systemd && mkdir /run/systemd/journal
else
	mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/journal
fi
jsock=/run/systemd/journal/socket

dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT
sock=$dir/nestd.sock
fail=0

start_daemon() { # LOGFILE: stderr appended to it, JOURNAL_STREAM naming it
	: >"$1"
	JOURNAL_STREAM=$(stat -c '%d:%i' "$1") "$daemon" --config "$config" --socket "$sock" \
		2>>"$1" &
	daemon_pid=$!
	pids+=("$daemon_pid")
	for _ in $(seq 100); do [ -S "$sock" ] && return 0; sleep 0.05; done
	echo "FAIL: daemon did not come up"; cat "$1"; exit 1
}

stop_daemon() {
	kill -TERM "$daemon_pid"
	wait "$daemon_pid" || { echo "FAIL: daemon exit status $?"; fail=1; }
}

client_hello() { # sets client_pid
	"$ctl" --socket "$sock" hello >/dev/null &
	client_pid=$!
	wait "$client_pid" || { echo "FAIL: iommu-nestctl hello"; fail=1; }
}

# An entry (paragraph of KEY=value lines) with all of the given lines.
has_entry() {
	local what=$1
	shift
	if awk -v RS= -v want="$*" '
		BEGIN { n = split(want, w, " ") }
		{ ok = 1; for (i = 1; i <= n; i++) if (index("\n" $0 "\n", "\n" w[i] "\n") == 0) ok = 0
		  if (ok) found = 1 }
		END { exit !found }' "$dir/entries"; then
		echo "ok: $what"
	else
		echo "FAIL: no journal entry for $what with: $*"
		fail=1
	fi
}

# ---- 1. stderr is the journal: native entries --------------------------------
"$listener" "$jsock" 30 >"$dir/entries" &
listener_pid=$!
pids+=("$listener_pid")
for _ in $(seq 50); do [ -S "$jsock" ] && break; sleep 0.05; done
[ -S "$jsock" ] || { echo "FAIL: journal listener did not bind $jsock"; exit 1; }

start_daemon "$dir/log"
client_hello
sleep 0.2
stop_daemon
wait "$listener_pid" || true

uid=$(id -u) gid=$(id -g)
has_entry "daemon_start" NESTD_EVENT=daemon_start PRIORITY=5 SYSLOG_IDENTIFIER=iommu-nestd \
	NESTD_BACKEND=sim NESTD_SOCKET="$sock"
has_entry "client_connect with creds" NESTD_EVENT=client_connect PRIORITY=6 \
	SYSLOG_IDENTIFIER=iommu-nestd NESTD_PID="$client_pid" NESTD_UID="$uid" NESTD_GID="$gid" \
	NESTD_COMM=iommu-nestctl
has_entry "client_disconnect with creds" NESTD_EVENT=client_disconnect NESTD_PID="$client_pid" \
	NESTD_UID="$uid" NESTD_CLIENT=iommu-nestctl NESTD_HWPTS=0
has_entry "daemon_stop" NESTD_EVENT=daemon_stop NESTD_SIGNAL=15
# MESSAGE is the human text with the fields, for journalctl's default view.
grep -q "^MESSAGE=client connected \[session=[0-9]* pid=$client_pid uid=$uid gid=$gid comm=iommu-nestctl\]$" \
	"$dir/entries" || { echo "FAIL: MESSAGE of client_connect"; fail=1; }
grep -q '^MALFORMED' "$dir/entries" && { echo "FAIL: malformed datagram"; fail=1; }
# The events went to the journal, not (also) to stderr.
if grep -q 'event=' "$dir/log"; then
	echo "FAIL: events on stderr although it is the journal"; fail=1
fi

# ---- 2. journal socket dead: fallback to stderr ------------------------------
# A socket file nobody listens on: sending fails with ECONNREFUSED.
"$listener" "$jsock" 30 >/dev/null &
dead=$!
for _ in $(seq 50); do [ -S "$jsock" ] && break; sleep 0.05; done
kill -KILL "$dead"
wait "$dead" 2>/dev/null || true
[ -S "$jsock" ] || { echo "FAIL: no stale journal socket"; exit 1; }

start_daemon "$dir/log2"
client_hello
sleep 0.2
stop_daemon
if grep -q "^<6>event=client_connect session=[0-9]* pid=$client_pid uid=$uid gid=$gid comm=iommu-nestctl " \
	"$dir/log2"; then
	echo "ok: fallback to stderr"
else
	echo "FAIL: no client_connect line on stderr after the journal failed"; fail=1
fi

if [ $fail -ne 0 ] || [ -n "${NESTD_KEEP_LOGS:-}" ]; then
	echo "--- journal entries"; cat "$dir/entries"
	echo "--- stderr (journal up)"; cat "$dir/log"
	echo "--- stderr (journal dead)"; cat "$dir/log2"
fi
exit $fail
