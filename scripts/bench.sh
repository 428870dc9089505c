#!/bin/sh
# Builds iommu-nestd and iommu-nest-bench (Release), runs the standard
# benchmark, and writes the results and the plots:
#   $OUT/bench.txt   the tables and the PASS/FAIL lines, as printed
#   $OUT/bench.csv   every figure, one row per configuration
#   docs/bench-latency.png, docs/bench-throughput.png, docs/bench-queue.png
# Usage: scripts/bench.sh [iommu-nest-bench options, e.g. --quick]
# Environment: BUILD (default build-bench), OUT (default $BUILD/bench-results).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build-bench}
OUT=${OUT:-$BUILD/bench-results}

cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target iommu-nestd iommu-nest-bench >/dev/null
mkdir -p "$OUT"

"$BUILD/bench/iommu-nest-bench" --csv "$OUT/bench.csv" "$@" | tee "$OUT/bench.txt"

if ! command -v gnuplot >/dev/null 2>&1; then
	echo "bench.sh: gnuplot not found (apt-get install gnuplot-nox); no plots" >&2
	exit 0
fi

# One data file per series: x, y columns out of the CSV.
# CSV columns: 1 section 2 workload 3 mode 4 clients 5 batch 6 window 7 req_s
# 8 ent_s 9 sub_ent_s 10 fewer 11 p50_us 12 p99_us 13 p999_us ...
series() { # file section workload mode xcol ycol
	awk -F, -v s="$2" -v w="$3" -v m="$4" -v x="$5" -v y="$6" \
		'$1 == s && $2 == w && $3 == m { print $x, $y }' "$OUT/bench.csv" | sort -n >"$OUT/$1"
}
series lat-sync.dat coalesce seq-strict sync 4 11
series lat-sync99.dat coalesce seq-strict sync 4 12
series lat-async.dat coalesce seq-strict async 4 11
series lat-async99.dat coalesce seq-strict async 4 12
series lat-lazy99.dat coalesce lazy-fq async 4 12
series pp-sync.dat floor-pp pingpong sync 4 11
series pp-sync99.dat floor-pp pingpong sync 4 12
series pp-async99.dat floor-pp pingpong async 4 12
series tp-seq-async.dat sweep sweep-seq async 5 8
series tp-seq-sync.dat sweep sweep-seq sync 5 8
series tp-lazy-async.dat sweep sweep-lazy async 5 8
series tp-lazy-sync.dat sweep sweep-lazy sync 5 8
series tp-seq-sub.dat sweep sweep-seq async 5 9
# The shared queue (issue 17): 1-entry sync round trips, and its floors.
series q-poll.dat queue-poll seq-strict sync 4 11
series q-poll99.dat queue-poll seq-strict sync 4 12
series q-nopoll.dat queue-nopoll seq-strict sync 4 11
series q-lazy-poll.dat queue-poll lazy-fq async 4 8
series q-lazy-sock.dat coalesce lazy-fq async 4 8
floor() { # section column: the 1-client figure of a floor row
	awk -F, -v s="$1" -v c="$2" '$1 == s && $4 == 1 { print $c; exit }' "$OUT/bench.csv"
}
SHM50=$(floor floor-shm 11)
EFD50=$(floor floor-efd 11)
PP50=$(awk -F, '$1 == "floor-pp" && $3 == "sync" && $4 == 1 { print $11; exit }' "$OUT/bench.csv")

cd "$OUT"
gnuplot <<GP
set terminal pngcairo size 900,560 font "sans,10" noenhanced
set grid
set key top left
set logscale xy
set xtics (1, 4, 16, 64)

set output "$ROOT/docs/bench-latency.png"
set title "iommu-nestd round-trip latency vs clients (sim backend, 1-entry requests)"
set xlabel "client processes"
set ylabel "round trip (us)"
plot "lat-sync.dat" using 1:2 with linespoints lw 2 title "daemon sync p50", \
     "lat-sync99.dat" using 1:2 with linespoints lw 2 title "daemon sync p99", \
     "pp-sync.dat" using 1:2 with linespoints dt 2 title "ping-pong floor sync p50", \
     "pp-sync99.dat" using 1:2 with linespoints dt 2 title "ping-pong floor sync p99", \
     "lat-async99.dat" using 1:2 with linespoints lw 2 title "daemon async (window 16) p99", \
     "pp-async99.dat" using 1:2 with linespoints dt 2 title "ping-pong floor async p99", \
     "lat-lazy99.dat" using 1:2 with linespoints lw 2 title "daemon lazy-fq 256-entry async p99"

set output "$ROOT/docs/bench-throughput.png"
set title "iommu-nestd client entries/s vs entries per request (1 client)"
set xlabel "entries per request"
set ylabel "entries / s"
set xtics auto
set key bottom right
plot "tp-seq-async.dat" using 1:2 with linespoints lw 2 title "sequential, async (window 16)", \
     "tp-seq-sync.dat" using 1:2 with linespoints lw 2 title "sequential, sync", \
     "tp-lazy-async.dat" using 1:2 with linespoints lw 2 title "scattered (lazy), async", \
     "tp-lazy-sync.dat" using 1:2 with linespoints lw 2 title "scattered (lazy), sync", \
     "tp-seq-sub.dat" using 1:2 with linespoints dt 2 title "sequential async: entries submitted / s"

set output "$ROOT/docs/bench-queue.png"
set multiplot layout 1,2 title "iommu-nestd over its shared-memory queue vs the socket (sim backend)"
set title "1-entry sync round trip vs clients"
set xlabel "client processes"
set ylabel "round trip (us)"
set logscale xy
set xtics (1, 4, 16, 64)
set key top left
plot "lat-sync.dat" using 1:2 with linespoints lw 2 title "socket p50", \
     "q-nopoll.dat" using 1:2 with linespoints lw 2 title "queue, not polling p50", \
     "q-poll.dat" using 1:2 with linespoints lw 2 title "queue, polling p50", \
     "q-poll99.dat" using 1:2 with linespoints lw 2 title "queue, polling p99", \
     ${PP50:-1/0} with lines dt 2 title "floor: socket ping-pong p50", \
     ${EFD50:-1/0} with lines dt 2 title "floor: eventfd ping-pong p50", \
     ${SHM50:-1/0} with lines dt 2 title "floor: shared cache line p50"
set title "256-entry batches, pipelined (window 16)"
set ylabel "client entries / s"
set key bottom right
plot "q-lazy-sock.dat" using 1:2 with linespoints lw 2 title "socket", \
     "q-lazy-poll.dat" using 1:2 with linespoints lw 2 title "queue, polling"
unset multiplot
GP
echo "bench.sh: results in $OUT, plots in $ROOT/docs"
