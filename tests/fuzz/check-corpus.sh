#!/bin/sh
# check-corpus.sh MAKE_CORPUS SEED_DIR WORK_DIR
# Regenerates the seed corpus into WORK_DIR and fails if it differs from the
# committed one (tests/fuzz/corpus). To update the seeds after a schema or
# generator change:  MAKE_CORPUS tests/fuzz/corpus
set -eu
gen=$1 seeds=$2 work=$3
rm -rf "$work"
mkdir -p "$work/dispatch" "$work/coalesce" "$work/queue_slot" "$work/smmuv3"
"$gen" "$work"
if ! diff -r "$seeds" "$work" >/dev/null; then
	diff -r "$seeds" "$work" || true
	echo "check-corpus: $seeds is not what make-corpus writes; run: $gen $seeds" >&2
	exit 1
fi
echo "check-corpus: $(ls "$work/dispatch" | wc -l) dispatch, $(ls "$work/coalesce" | wc -l) coalesce, $(ls "$work/queue_slot" | wc -l) queue_slot and $(ls "$work/smmuv3" | wc -l) smmuv3 seeds up to date"
