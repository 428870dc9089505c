#!/bin/busybox sh
# SPDX-License-Identifier: MIT
#
# /init of the kernel test tier's initramfs. Runs every test in
# /etc/nestd-ktest.env's NESTD_TESTS, prints one machine-readable line per
# test and a final line on the console, then powers the VM off:
#
#   NESTD-KTEST <name> PASS|FAIL|SKIP rc=<n> secs=<s>
#   NESTD-KTEST-DONE pass=<n> fail=<n> skip=<n>
#
# Besides the given tests it runs two checks of its own:
#   daemon-start  (when a daemon is packed) the daemon comes up on a socket
#                 with the packed config and exits cleanly on SIGTERM;
#   kernel-log    the kernel logged no WARNING/BUG/Oops during the run.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu:/lib64:/usr/lib
export HOME=/root TMPDIR=/tmp

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=0755 tmpfs /run
# A few 2 MiB huge pages for tests that need physically contiguous memory.
[ -w /proc/sys/vm/nr_hugepages ] && echo 4 >/proc/sys/vm/nr_hugepages
exec </dev/console >/dev/console 2>&1

. /etc/nestd-ktest.env

pass=0
fail=0
skip=0

result() { # name rc secs
	if [ "$2" = 0 ]; then
		st=PASS
		pass=$((pass + 1))
	elif [ "$2" = 77 ]; then
		st=SKIP
		skip=$((skip + 1))
	else
		st=FAIL
		fail=$((fail + 1))
	fi
	echo "NESTD-KTEST $1 $st rc=$2 secs=$3"
}

now() { cut -d. -f1 /proc/uptime; }

echo "nestd-ktest: kernel $(uname -r), tests: ${NESTD_TESTS:-none}"
ls -l /dev/iommu 2>&1

if [ -n "$NESTD_DAEMON" ] && [ -n "$NESTD_CONFIG" ]; then
	t0=$(now)
	sock=/run/nestd-ktest.sock
	dlog=/tmp/nestd-ktest-daemon.log
	"$NESTD_DAEMON" --socket "$sock" --config "$NESTD_CONFIG" >"$dlog" 2>&1 &
	dpid=$!
	rc=1
	i=0
	# Up means serving: the socket exists before the daemon has its
	# signal handlers, and a SIGTERM in between would kill it outright.
	# It logs "serving on" only once it has them. Bounded (60 s) for a
	# daemon that never gets there, generous for a slow TCG guest.
	while [ $i -lt 600 ]; do
		if [ -S "$sock" ] && grep -q 'serving on' "$dlog"; then
			rc=0
			break
		fi
		kill -0 $dpid 2>/dev/null || break
		sleep 0.1
		i=$((i + 1))
	done
	if [ $rc = 0 ]; then
		kill -TERM $dpid
		wait $dpid
		rc=$?
		echo "nestd-ktest: daemon exited with $rc after SIGTERM"
	else
		echo "nestd-ktest: daemon did not start serving on $sock"
		kill -KILL $dpid 2>/dev/null
		wait $dpid
	fi
	sed 's/^/nestd-ktest: daemon| /' "$dlog"
	result daemon-start $rc $(($(now) - t0))
fi

for t in $NESTD_TESTS; do
	echo "nestd-ktest: running $t"
	t0=$(now)
	(cd /tmp && timeout "$NESTD_TEST_TIMEOUT" "/tests/$t")
	rc=$?
	result "$t" $rc $(($(now) - t0))
done

if dmesg | grep -E 'WARNING:|BUG:|Oops|Call Trace:' >/tmp/kwarn; then
	echo "nestd-ktest: the kernel logged warnings:"
	cat /tmp/kwarn
	result kernel-log 1 0
else
	result kernel-log 0 0
fi

echo "NESTD-KTEST-DONE pass=$pass fail=$fail skip=$skip"
sync
# The test kernel has no ACPI, so `poweroff -f` would only halt it (the
# kernel turns POWER_OFF into HALT without a power-off method). A reset is
# what ends the VM: qemu runs with -no-reboot, so it exits on the reset.
reboot -f
