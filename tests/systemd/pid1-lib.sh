# Shared by test-pid1.sh (outside the container) and pid1-checks.sh (inside).

# Waits (at most $1 tenths of a second) until "$@" succeeds.
wait_until() {
	local n=$1
	shift
	for _ in $(seq "$n"); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}
