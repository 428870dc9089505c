#!/usr/bin/env bash
# Verifies the built units: systemd-analyze verify (syntax, references) and
# the offline security exposure, which must stay at or below 1.0.
# Usage: verify-units.sh BUILD_SYSTEMD_DIR DAEMON_BINARY [CTL_BINARY]
set -euo pipefail
units=$1
daemon=$2
ctl=${3:-}
command -v systemd-analyze >/dev/null || { echo "systemd-analyze missing"; exit 77; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# verify insists that ExecStart= names an existing binary: point it at the build.
# ExecReload= (iommu-nestctl reload) likewise.
sed -e "s|^ExecStart=[^ ]*|ExecStart=$daemon|" \
	${ctl:+-e "s|^ExecReload=[^ ]*|ExecReload=$ctl|"} \
	"$units/iommu-nestd.service" >"$work/iommu-nestd.service"
cp "$units/iommu-nestd.socket" "$work/"
systemd-analyze verify --man=no "$work/iommu-nestd.socket" "$work/iommu-nestd.service"

out=$(systemd-analyze security --offline=true --no-pager "$work/iommu-nestd.service")
level=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for iommu-nestd.service: \([0-9.]*\).*/\1/p')
echo "exposure: $level (limit 1.0)"
[ -n "$level" ] && awk -v l="$level" 'BEGIN { exit !(l <= 1.0) }'
