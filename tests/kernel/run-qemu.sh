#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The kernel test tier's driver: builds (or reuses) the test kernel, packs
# an initramfs with the daemon, its config and the test binaries, boots it
# under qemu-system-x86_64 with TCG, and turns the guest's result lines into
# an exit status.
#
# Usage: run-qemu.sh [options] [--] TEST...
#   --source 6.12|7.x  which kernel tier (default 6.12): the kernel
#                      build-kernel.sh builds, NESTD_KTEST_KERNEL in the
#                      tests' environment (the rules they expect), and the
#                      version the guest must report
#   --kernel BZIMAGE   boot this kernel (default: build-kernel.sh's, built
#                      or taken from its cache)
#   --daemon PATH      the iommu-nestd binary (guest: $NESTD_DAEMON)
#   --config FILE      its config (guest: $NESTD_CONFIG)
#   --env NAME=VALUE   extra environment for the tests (repeatable)
#   --file PATH        a helper the tests use, packed next to them in /tests
#                      but not run (repeatable)
#   --timeout SECONDS  whole-VM timeout (default 300)
#   --test-timeout S   per-test timeout inside the guest (default 120)
#   --log FILE         keep the serial console output here
#   --memory SIZE      guest memory (default 512M)
#   --machine edu      a q35 with an emulated VT-d (interrupt remapping,
#                      caching mode) and two of QEMU's edu PCI devices
#                      behind it (00:03.0, 00:04.0), intel_iommu=on: the
#                      edu tier's real VFIO devices, one per VMM when two
#                      tenants DMA (default: the plain PC the selftest
#                      tiers boot)
#   --no-install       never apt-get missing packages
#
# Exit status: 0 every test passed (SKIP counts as passing) and the guest
# printed its final line; 77 qemu, busybox or the kernel source are not
# available and cannot be installed (CTest SKIP_RETURN_CODE); 1 otherwise.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly SKIP=77

kernel=
source_sel=6.12
daemon=
config=
timeout_s=300
test_timeout=120
log=
memory=512M
machine=
no_install=0
envs=()
files=()
tests=()
while [ $# -gt 0 ]; do
	case "$1" in
	--kernel) kernel=$2; shift 2 ;;
	--source) source_sel=$2; shift 2 ;;
	--daemon) daemon=$2; shift 2 ;;
	--config) config=$2; shift 2 ;;
	--env) envs+=(-e "$2"); shift 2 ;;
	--file) files+=(-f "$2"); shift 2 ;;
	--timeout) timeout_s=$2; shift 2 ;;
	--test-timeout) test_timeout=$2; shift 2 ;;
	--log) log=$2; shift 2 ;;
	--memory) memory=$2; shift 2 ;;
	--machine) machine=$2; shift 2 ;;
	--no-install) no_install=1; shift ;;
	-h | --help) sed -n '3,35p' "$0"; exit 0 ;;
	--) shift; tests+=("$@"); break ;;
	-*) echo "run-qemu.sh: unknown option $1" >&2; exit 2 ;;
	*) tests+=("$1"); shift ;;
	esac
done

machine_args=()
append_extra=
case "$machine" in
"") ;;
edu)
	# The IOMMU before the devices it translates for (QEMU wires PCI
	# devices to the vIOMMU that exists when they are created). Two
	# edus: one for a second VMM whose DMA must not reach the first's
	# memory (ktest_edu's two-tenant phase).
	machine_args=(-machine q35,kernel-irqchip=split
		-device intel-iommu,intremap=on,caching-mode=on -device edu -device edu)
	# nox2apic: QEMU's VT-d has no extended interrupt mode (EIM)
	# under TCG, and a kernel with CONFIG_X86_X2APIC (the 7.x tier's)
	# then panics at boot ("timer doesn't work through
	# Interrupt-remapped IO-APIC"); xAPIC is what a 1-CPU guest needs.
	# no_timer_check: the boot's check that the timer ticks through
	# the remapped IO-APIC (io_apic.c timer_irq_works()) waits a fixed
	# number of TSC cycles for 4 jiffies; a TCG guest on a loaded host
	# can miss that window and panic with the same message, though
	# the timer works (seen once in ~15 boots at load 5).
	append_extra=" intel_iommu=on nox2apic no_timer_check"
	;;
*) echo "run-qemu.sh: --machine must be edu" >&2; exit 2 ;;
esac

case "$source_sel" in
6.12) guest_release='6.12.*' ;;
7.x) guest_release='7.*' ;;
*) echo "run-qemu.sh: --source must be 6.12 or 7.x" >&2; exit 2 ;;
esac
# Tests that expect per-kernel answers read this (never uname: the tier
# says which kernel it meant to boot, and the verdict checks it did).
envs+=(-e "NESTD_KTEST_KERNEL=$source_sel")

log_msg() { echo "run-qemu: $*" >&2; }
skip() {
	log_msg "SKIP: $*"
	exit $SKIP
}

as_root() {
	if [ "$(id -u)" = 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		sudo -n "$@"
	else
		return 1
	fi
}

apt_install() {
	[ "$no_install" = 0 ] && command -v apt-get >/dev/null 2>&1 || return 1
	log_msg "installing: $*"
	export DEBIAN_FRONTEND=noninteractive
	as_root apt-get install -y --no-install-recommends "$@" >&2 ||
		{ as_root apt-get update >&2 &&
			as_root apt-get install -y --no-install-recommends "$@" >&2; }
}

# --- prerequisites: qemu, busybox, the kernel ---------------------------

missing=()
command -v qemu-system-x86_64 >/dev/null 2>&1 || missing+=(qemu-system-x86)
[ -x /bin/busybox ] || [ -x /usr/bin/busybox ] || [ -n "${NESTD_BUSYBOX:-}" ] ||
	missing+=(busybox-static)
command -v cpio >/dev/null 2>&1 || missing+=(cpio)
if [ ${#missing[@]} -gt 0 ]; then
	apt_install "${missing[@]}" ||
		skip "missing ${missing[*]} and cannot install (need root or sudo, and apt)"
fi

if [ -z "$kernel" ]; then
	kargs=(--print-path --source "$source_sel")
	[ "$no_install" = 0 ] || kargs+=(--no-install)
	rc=0
	kernel=$("$here/build-kernel.sh" "${kargs[@]}") || rc=$?
	[ "$rc" != "$SKIP" ] || skip "no $source_sel kernel: build-kernel.sh could not get its source"
	[ "$rc" = 0 ] || { log_msg "build-kernel.sh failed ($rc)"; exit 1; }
fi
[ -s "$kernel" ] || { log_msg "kernel $kernel not found"; exit 1; }
if [ "$machine" = edu ]; then
	for dev in edu intel-iommu; do
		qemu-system-x86_64 -device help 2>/dev/null | grep -q "name \"$dev\"" ||
			skip "this qemu-system-x86_64 has no $dev device"
	done
fi

# --- initramfs -----------------------------------------------------------

work=$(mktemp -d "${TMPDIR:-/tmp}/nestd-ktest.XXXXXX")
trap 'rm -rf "$work"' EXIT
initrd=$work/initramfs.cpio.gz
margs=(-o "$initrd" -t "$test_timeout")
[ -z "$daemon" ] || margs+=(-d "$daemon")
[ -z "$config" ] || margs+=(-c "$config")
"$here/mkinitramfs.sh" "${margs[@]}" ${envs[@]+"${envs[@]}"} ${files[@]+"${files[@]}"} \
	-- ${tests[@]+"${tests[@]}"}

# The names the guest must report, in order.
expect=()
[ -z "$daemon" ] || [ -z "$config" ] || expect+=(daemon-start)
for t in ${tests[@]+"${tests[@]}"}; do
	expect+=("$(basename "$t")")
done
expect+=(kernel-log)

# --- boot ----------------------------------------------------------------

serial=$work/serial.log
log_msg "booting $kernel (timeout ${timeout_s}s)"
start=$(date +%s.%N)
qrc=0
timeout -k 10 "$timeout_s" qemu-system-x86_64 \
	-accel tcg -cpu max -smp 1 -m "$memory" ${machine_args[@]+"${machine_args[@]}"} \
	-nographic -no-reboot \
	-kernel "$kernel" -initrd "$initrd" \
	-append "console=ttyS0 panic=-1 loglevel=4 rdinit=/init$append_extra" \
	</dev/null 2>&1 | tr -d '\r' | tee "$serial" | sed -u 's/^/guest| /' >&2 ||
	qrc=$?
# With pipefail the pipeline's status is timeout's/qemu's (tr, tee and sed
# do not fail here).
end=$(date +%s.%N)
secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
[ -z "$log" ] || { mkdir -p "$(dirname "$log")" && cp "$serial" "$log"; }

# --- verdict -------------------------------------------------------------

ok=1
if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
	log_msg "FAIL: the VM did not finish within ${timeout_s}s"
	ok=0
elif [ "$qrc" != 0 ]; then
	log_msg "FAIL: qemu exited with status $qrc"
	ok=0
fi
# The kernel the guest ran must be the tier's: a 7.x tier that booted a
# 6.12 image (a cache mix-up) would test nothing new.
release=$(sed -n 's/.*nestd-ktest: kernel \([^ ,]*\),.*/\1/p' "$serial" | tail -n 1)
case "$release" in
$guest_release) log_msg "guest kernel $release (tier $source_sel)" ;;
*)
	log_msg "FAIL: the guest ran kernel '${release:-?}', not the $source_sel tier's"
	ok=0
	;;
esac
for name in "${expect[@]}"; do
	line=$(grep -E "NESTD-KTEST $name (PASS|FAIL|SKIP) " "$serial" | tail -n 1 || true)
	case "$line" in
	*" PASS "*) log_msg "PASS $name" ;;
	*" SKIP "*) log_msg "SKIP $name (counted as passing)" ;;
	"") log_msg "FAIL $name: no result line"; ok=0 ;;
	*) log_msg "FAIL $name: ${line#*NESTD-KTEST }"; ok=0 ;;
	esac
done
if ! grep -q '^NESTD-KTEST-DONE ' "$serial"; then
	log_msg "FAIL: the guest never printed its final line (NESTD-KTEST-DONE)"
	ok=0
fi
log_msg "boot+test: ${secs}s (kernel $kernel)"
if [ "$ok" = 1 ]; then
	log_msg "all ${#expect[@]} checks passed"
	exit 0
fi
exit 1
