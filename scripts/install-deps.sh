#!/usr/bin/env bash
# Installs the Debian 12 packages iommu-nestd needs to build, test and run
# (strace: tenants/persist_before_ack delays the daemon's writes with it),
# skipping those already present. Usage: scripts/install-deps.sh [--kernel] [--fuzz]
#   --kernel  also what the QEMU kernel test tier needs
#   --fuzz    also clang's libFuzzer runtime
set -euo pipefail

pkgs=(build-essential cmake pkg-config protobuf-c-compiler libprotobuf-c-dev
      libevent-dev libsystemd-dev libcunit1-dev libinih-dev libjson-c-dev
      valgrind systemd python3-prometheus-client strace
      debhelper dpkg-dev lintian systemd-container)
for arg in "$@"; do
	case "$arg" in
	--kernel) pkgs+=(linux-source-6.12 qemu-system-x86 busybox-static flex bison bc
			 libelf-dev libssl-dev cpio xz-utils kmod
			 debian-archive-keyring gpgv) ;; # the last two: fetch-linux-source.sh
	--fuzz) pkgs+=(clang libclang-rt-14-dev) ;;
	*) echo "unknown option $arg" >&2; exit 2 ;;
	esac
done

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
