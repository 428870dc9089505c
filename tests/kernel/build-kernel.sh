#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Builds a kernel the kernel test tiers boot, from one of two sources:
#   6.12  Debian's linux-source-6.12 (installed from the machine's suite)
#   7.x   the newest linux-source-7.* of Debian unstable, fetched without
#         installing it by scripts/fetch-linux-source.sh
# `make tinyconfig` plus exactly the options iommufd's selftest mock and a
# busybox initramfs running our daemon need.
#
# The bzImage is cached outside the work tree, keyed by the sha256 of the
# config fragment, the source package and its version and this recipe's
# version:
#   ${NESTD_KERNEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/iommu-nestd/kernel}/<key>/bzImage
# A present bzImage is reused; nothing is rebuilt.
#
# Usage: build-kernel.sh [--source 6.12|7.x] [--print-path] [--force] [--no-install]
#   --source      which kernel (default $NESTD_KERNEL_SOURCE, else 6.12)
#   --print-path  print only the bzImage path on stdout (logs go to stderr)
#   --force       rebuild even if the cache has a bzImage
#   --no-install  never call apt-get; fail (77) if something is missing
#                 (7.x: use only a tarball fetched before)
#
# Environment:
#   NESTD_KERNEL_SOURCE 6.12 or 7.x, as --source
#   NESTD_KERNEL_CACHE  cache root (default above)
#   NESTD_KSRC          an already unpacked kernel tree of the selected
#                       source to build from (read only; out-of-tree build)
#   NESTD_KSRC_TARBALL  6.12 only: default /usr/src/linux-source-6.12.tar.xz
#
# Exit status: 0 built or reused, 77 the kernel source or the toolchain is
# genuinely unavailable (and could not be installed), anything else failure.
set -euo pipefail

# Bump when the recipe below changes in a way the fragment does not show
# (make targets, tinyconfig base, build flags): it is part of the cache key.
readonly RECIPE_VERSION=1
readonly SKIP=77
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

source_sel=${NESTD_KERNEL_SOURCE:-6.12}
print_path=0
force=0
no_install=0
while [ $# -gt 0 ]; do
	case "$1" in
	--source)
		[ $# -ge 2 ] || { echo "build-kernel.sh: --source needs 6.12 or 7.x" >&2; exit 2; }
		source_sel=$2
		shift 2
		;;
	--source=*) source_sel=${1#--source=}; shift ;;
	--print-path) print_path=1; shift ;;
	--force) force=1; shift ;;
	--no-install) no_install=1; shift ;;
	-h | --help)
		sed -n '3,32p' "$0"
		exit 0
		;;
	*)
		echo "build-kernel.sh: unknown argument '$1'" >&2
		exit 2
		;;
	esac
done
case "$source_sel" in
6.12) SRC_PKG=linux-source-6.12 ;;
7.x | 7) source_sel=7.x SRC_PKG= ;; # the fetched package names it
*)
	echo "build-kernel.sh: --source must be 6.12 or 7.x, not '$source_sel'" >&2
	exit 2
	;;
esac

log() { echo "build-kernel: $*" >&2; }
die() {
	log "ERROR: $*"
	exit 1
}
skip() {
	log "SKIP: $*"
	exit $SKIP
}

# The config fragment. Every line is verified against the final .config.
# Grouped by why it is needed.
FRAGMENT='
# x86-64, the selftest mock IOMMU and its dependencies
CONFIG_64BIT=y
CONFIG_IOMMU_SUPPORT=y
CONFIG_IOMMUFD=y
CONFIG_IOMMUFD_TEST=y
CONFIG_DEBUG_KERNEL=y
CONFIG_FAULT_INJECTION=y
CONFIG_RUNTIME_TESTING_MENU=y
# huge pages for guest memory that is physically contiguous by construction
# (integration/dirty huge_page: 7.2 generic_pt record_dirty())
CONFIG_HUGETLBFS=y
# booting a gzip initramfs with busybox and shell scripts
CONFIG_BLK_DEV_INITRD=y
CONFIG_RD_GZIP=y
CONFIG_BINFMT_ELF=y
CONFIG_BINFMT_SCRIPT=y
CONFIG_DEVTMPFS=y
CONFIG_DEVTMPFS_MOUNT=y
CONFIG_TTY=y
CONFIG_SERIAL_8250=y
CONFIG_SERIAL_8250_CONSOLE=y
CONFIG_PRINTK=y
CONFIG_PROC_FS=y
CONFIG_SYSFS=y
CONFIG_TMPFS=y
CONFIG_SHMEM=y
# the daemon: UNIX sockets, libevent, glibc, libsystemd
CONFIG_NET=y
CONFIG_UNIX=y
CONFIG_FUTEX=y
CONFIG_EPOLL=y
CONFIG_EVENTFD=y
CONFIG_SIGNALFD=y
CONFIG_TIMERFD=y
CONFIG_MEMFD_CREATE=y
CONFIG_POSIX_TIMERS=y
CONFIG_MULTIUSER=y
CONFIG_FILE_LOCKING=y
CONFIG_ADVISE_SYSCALLS=y
CONFIG_MEMBARRIER=y
CONFIG_RSEQ=y
CONFIG_FHANDLE=y
CONFIG_INOTIFY_USER=y
CONFIG_PROC_SYSCTL=y
# a real device behind an IOMMU (the edu tier: the intel-iommu and edu of QEMU,
# bound to vfio-pci and reached through its cdev) and the I/O page fault
# path the fault tests drive (INTEL_IOMMU_SVM is what selects IOMMU_IOPF;
# no real IOMMU driver, no iommu_report_device_fault)
CONFIG_PCI=y
CONFIG_PCI_MSI=y
CONFIG_ACPI=y
CONFIG_IRQ_REMAP=y
CONFIG_INTEL_IOMMU=y
CONFIG_INTEL_IOMMU_SVM=y
CONFIG_IOMMU_IOPF=y
CONFIG_VFIO=y
CONFIG_VFIO_DEVICE_CDEV=y
CONFIG_VFIO_PCI=y
'
# Linux 7.x: the selftest mock builds its paging domains on the generic
# page table (IOMMUFD_TEST depends on IOMMU_PT_AMDV1), which is only
# user-selectable with COMPILE_TEST. Without these olddefconfig silently
# drops IOMMUFD_TEST; the check below turns that into a build failure.
# (Appended only for 7.x, so the 6.12 key and its cached image stay.)
FRAGMENT_7X='
# Linux 7.x: the selftest mock page table (generic PT, AMD v1 format)
CONFIG_COMPILE_TEST=y
CONFIG_GENERIC_PT=y
CONFIG_IOMMU_PT=y
CONFIG_IOMMU_PT_AMDV1=y
'
[ "$source_sel" = 6.12 ] || FRAGMENT="$FRAGMENT$FRAGMENT_7X"

fragment_options() {
	# "CONFIG_X=y" lines of the fragment, comments and blanks dropped.
	printf '%s\n' "$FRAGMENT" | sed -e 's/#.*//' -e '/^[[:space:]]*$/d'
}

# --- prerequisites -------------------------------------------------------

as_root() {
	if [ "$(id -u)" = 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		sudo -n "$@"
	else
		return 1
	fi
}

# apt_install PKG...: installs missing Debian packages, or returns 1.
apt_install() {
	[ "$no_install" = 0 ] || return 1
	command -v apt-get >/dev/null 2>&1 || return 1
	log "installing: $*"
	export DEBIAN_FRONTEND=noninteractive
	as_root apt-get install -y --no-install-recommends "$@" >&2 ||
		{ as_root apt-get update >&2 &&
			as_root apt-get install -y --no-install-recommends "$@" >&2; }
}

ensure_tools() {
	local missing=() cmd pkg
	# command:package pairs
	for pair in gcc:gcc make:make flex:flex bison:bison bc:bc \
		xz:xz-utils cpio:cpio perl:perl tar:tar sha256sum:coreutils; do
		cmd=${pair%%:*}
		pkg=${pair#*:}
		command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
	done
	for pair in libelf-dev:/usr/include/gelf.h libssl-dev:/usr/include/openssl/ssl.h \
		libc6-dev:/usr/include/stdio.h; do
		pkg=${pair%%:*}
		[ -e "${pair#*:}" ] || missing+=("$pkg")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		apt_install "${missing[@]}" ||
			skip "missing build tools (${missing[*]}) and cannot install them (need root or sudo, and apt)"
	fi
}

src_version() {
	local v
	if [ -n "${FETCHED_VERSION:-}" ]; then
		echo "$FETCHED_VERSION"
		return
	fi
	v=$(dpkg-query -W -f='${Version}' "$SRC_PKG" 2>/dev/null || true)
	if [ -z "$v" ]; then
		# Not installed through dpkg (e.g. NESTD_KSRC on another distro).
		v=$(make -s -C "$1" kernelversion 2>/dev/null || echo unknown)
	fi
	echo "$v"
}

# 7.x: sets SRC_PKG, FETCHED_VERSION and FETCHED_TARBALL from
# fetch-linux-source.sh (which skips, 77, only when apt says no).
fetch_7x() {
	local fargs=(--series 7) out rc=0
	[ "$no_install" = 0 ] || fargs+=(--offline)
	out=$("$here/../../scripts/fetch-linux-source.sh" "${fargs[@]}") || rc=$?
	[ "$rc" != "$SKIP" ] || skip "Debian unstable's linux-source-7.* cannot be fetched (see above)"
	[ "$rc" = 0 ] || die "fetch-linux-source.sh failed ($rc)"
	SRC_PKG=$(echo "$out" | sed -n 1p)
	FETCHED_VERSION=$(echo "$out" | sed -n 2p)
	FETCHED_TARBALL=$(echo "$out" | sed -n 3p)
	case "$SRC_PKG" in
	linux-source-7.*) ;;
	*) die "fetch-linux-source.sh returned '$SRC_PKG', not a linux-source-7.* package" ;;
	esac
}

# Sets KSRC to an unpacked source tree, installing/unpacking as needed.
ensure_source() {
	if [ -n "${NESTD_KSRC:-}" ]; then
		[ -f "$NESTD_KSRC/Makefile" ] || die "NESTD_KSRC=$NESTD_KSRC is not a kernel tree"
		KSRC=$NESTD_KSRC
		if [ "$source_sel" = 7.x ]; then
			SRC_PKG=linux-source-$(make -s -C "$KSRC" kernelversion | cut -d. -f1,2)
			case "$SRC_PKG" in
			linux-source-7.*) ;;
			*) die "NESTD_KSRC=$KSRC is $SRC_PKG, not a 7.x tree" ;;
			esac
		fi
		return
	fi
	local tarball ver
	if [ "$source_sel" = 7.x ]; then
		fetch_7x
		tarball=$FETCHED_TARBALL
		ver=$FETCHED_VERSION
	else
		tarball=${NESTD_KSRC_TARBALL:-/usr/src/$SRC_PKG.tar.xz}
		if [ ! -f "$tarball" ]; then
			apt_install "$SRC_PKG" || true
			[ -f "$tarball" ] ||
				skip "$tarball not present and package $SRC_PKG cannot be installed"
		fi
		ver=$(dpkg-query -W -f='${Version}' "$SRC_PKG" 2>/dev/null || stat -c %Y "$tarball")
	fi
	local dest="$CACHE_ROOT/src/$SRC_PKG-$ver"
	KSRC="$dest/$SRC_PKG"
	if [ -f "$dest/.unpacked" ]; then
		return
	fi
	log "unpacking $tarball into $dest"
	rm -rf "$dest.tmp"
	mkdir -p "$dest.tmp"
	tar -C "$dest.tmp" -xf "$tarball"
	[ -f "$dest.tmp/$SRC_PKG/Makefile" ] || die "$tarball does not contain $SRC_PKG/Makefile"
	rm -rf "$dest"
	mv "$dest.tmp" "$dest"
	touch "$dest/.unpacked"
}

# --- main -----------------------------------------------------------------

CACHE_ROOT=${NESTD_KERNEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/iommu-nestd/kernel}
mkdir -p "$CACHE_ROOT"

# One builder at a time per cache (ctest -j, two checkouts).
exec 9>"$CACHE_ROOT/.lock"
flock 9

ensure_tools
ensure_source

SRCVER=$(src_version "$KSRC")
KEY=$( {
	echo "recipe=$RECIPE_VERSION"
	echo "source=$SRC_PKG $SRCVER"
	echo "arch=x86_64"
	fragment_options
} | sha256sum | cut -d' ' -f1)
OUT="$CACHE_ROOT/$KEY"
IMAGE="$OUT/bzImage"

finish() {
	if [ "$print_path" = 1 ]; then
		echo "$IMAGE"
	else
		log "bzImage: $IMAGE"
		log "key: $KEY (source $SRC_PKG $SRCVER, recipe $RECIPE_VERSION)"
	fi
	exit 0
}

if [ "$force" = 0 ] && [ -s "$IMAGE" ]; then
	log "cache hit"
	finish
fi

OBJ="$OUT/obj"
mkdir -p "$OUT"
rm -rf "$OBJ"
mkdir -p "$OBJ"
fragment_options >"$OUT/fragment.config"

kmake() { make -C "$KSRC" O="$OBJ" ARCH=x86_64 "$@"; }

start=$(date +%s)
log "configuring in $OBJ (source $KSRC, $SRC_PKG $SRCVER)"
kmake -s tinyconfig >&2
sc=("$KSRC/scripts/config" --file "$OBJ/.config")
while IFS= read -r line; do
	opt=${line%%=*}
	"${sc[@]}" --enable "${opt#CONFIG_}"
done < <(fragment_options)
kmake -s olddefconfig >&2

# Verify: olddefconfig silently drops options whose dependencies are not met.
bad=0
while IFS= read -r line; do
	if ! grep -qx -- "$line" "$OBJ/.config"; then
		got=$(grep -E "^(# )?${line%%=*}[= ]" "$OBJ/.config" || echo "absent")
		log "required $line, .config has: $got"
		bad=1
	fi
done < <(fragment_options)
[ "$bad" = 0 ] || die "the resulting .config lacks required options (see above)"
# Said once more by name: without it the whole tier tests nothing.
grep -qx 'CONFIG_IOMMUFD_TEST=y' "$OBJ/.config" || die "CONFIG_IOMMUFD_TEST=y is not in .config"
log "all $(fragment_options | wc -l) required options verified in .config"

log "building bzImage with -j$(nproc)"
if ! kmake -j"$(nproc)" bzImage >"$OUT/build.log" 2>&1; then
	tail -n 40 "$OUT/build.log" >&2
	die "kernel build failed (log: $OUT/build.log)"
fi
end=$(date +%s)

cp "$OBJ/.config" "$OUT/config"
cp "$OBJ/arch/x86/boot/bzImage" "$IMAGE.tmp"
mv "$IMAGE.tmp" "$IMAGE"
echo "$((end - start))" >"$OUT/build-seconds"
log "built in $((end - start)) s"
# The object tree is ~100 MB and not needed to boot; keep the cache small.
rm -rf "$OBJ"
finish
