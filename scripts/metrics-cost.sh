#!/usr/bin/env bash
# scripts/metrics-cost.sh: what the per-worker counters and the disabled
# trace recorder cost, in instructions.
#
# Builds the library twice, with COIL_METRICS=ON (the default) and OFF
# (counters and recorder compiled out), runs the same workloads under
# Valgrind's callgrind in both and prints the instruction counts and their
# ratio. Instructions, not time: on a shared machine time varies by more
# than the 2% this is about, while instruction counts repeat to a few
# parts per million. W1 on two workers is the exception: how long the idle
# worker spins and what the allocator does between threads depend on the
# interleaving, which moves its count by a percent or two from run to run;
# it gets five runs and their median, and jemalloc's time-based purging is
# turned off (MALLOC_CONF) so that wall time does not add work.
#
# Workloads (../shared/WORKLOADS.md):
#   W1  bench/w1_spawn: spawn N tasks, await them (1 worker, then 2)
#   W3  bench/w3_pingpong: two tasks wake each other N times through queues
#   and bench/wake_pingpong: BM_WakePingPong's round trip (two tasks waking
#   each other through futures), with a fixed count
# Each is run at N and at N=1; the difference, divided by N-1, is the cost
# per task or round trip without the start-up and shutdown both share, and
# the ratio of those is what must stay within the limit.
#
# usage: scripts/metrics-cost.sh [--on DIR] [--off DIR] [--n-w1 N] [--n-w3 N]
#                                [--limit PCT] [--no-build]
# (--n-w3 is also the wake ping-pong's count)
# defaults: build-metrics-cost-on, build-metrics-cost-off, 100000, 200000,
# 2 (percent). Exits 1 when a ratio exceeds the limit, 2 on a usage or
# build error. Needs valgrind, and Google Benchmark plus ../shared/workloads
# for the workload programs (bench/CMakeLists.txt).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
on_dir=$root/build-metrics-cost-on
off_dir=$root/build-metrics-cost-off
n_w1=100000
n_w3=200000
limit=2
build=1
jobs=${JOBS:-2}

die() { echo "metrics-cost: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
	case $1 in
	--on) on_dir=$2; shift 2 ;;
	--off) off_dir=$2; shift 2 ;;
	--n-w1) n_w1=$2; shift 2 ;;
	--n-w3) n_w3=$2; shift 2 ;;
	--limit) limit=$2; shift 2 ;;
	--no-build) build=0; shift ;;
	-h|--help) sed -n '2,30p' "$0"; exit 0 ;;
	*) die "unknown argument '$1' (see --help)" ;;
	esac
done
command -v valgrind >/dev/null || die "valgrind is not installed"
[ "$n_w1" -gt 1 ] && [ "$n_w3" -gt 1 ] || die "N must be at least 2"

configure_build() { # dir on|off
	[ "$build" = 1 ] || return 0
	cmake -S "$root" -B "$1" -DCMAKE_BUILD_TYPE=Release -DCOIL_METRICS="$2" \
		-DCOIL_BUILD_TESTS=OFF -DCOIL_BUILD_EXAMPLES=OFF >/dev/null ||
		die "configuring $1 failed"
	cmake --build "$1" -j"$jobs" --target w1_spawn w3_pingpong wake_pingpong >/dev/null ||
		die "building $1 failed (are Google Benchmark and ../shared/workloads there?)"
}
configure_build "$on_dir" ON
configure_build "$off_dir" OFF
for d in "$on_dir" "$off_dir"; do
	for p in w1_spawn w3_pingpong wake_pingpong; do
		[ -x "$d/bench/$p" ] || die "$d/bench/$p is missing"
	done
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The total instructions of one run (callgrind's "Collected").
instructions() { # program args...
	local out=$tmp/cg.out
	valgrind --tool=callgrind --callgrind-out-file="$tmp/callgrind.%p" "$@" \
		>/dev/null 2>"$out" || { cat "$out" >&2; die "'$*' failed under callgrind"; }
	rm -f "$tmp"/callgrind.*
	sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$out" | tail -n 1
}

# The median of `runs` runs.
median_instructions() { # runs program args...
	local runs=$1 i
	shift
	for ((i = 0; i < runs; i++)); do
		instructions "$@"
	done | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}
export MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1,background_thread:false

fail=0
printf '%-22s %16s %16s %9s %12s %12s %9s\n' workload "Ir off" "Ir on" "ratio" \
	"off/op" "on/op" "ratio/op"
measure() { # label runs n program-name args-before-n...
	local label=$1 runs=$2 n=$3 prog=$4
	shift 4
	local off_n on_n off_1 on_1
	off_n=$(median_instructions "$runs" "$off_dir/bench/$prog" "$@" --n "$n")
	on_n=$(median_instructions "$runs" "$on_dir/bench/$prog" "$@" --n "$n")
	off_1=$(median_instructions "$runs" "$off_dir/bench/$prog" "$@" --n 1)
	on_1=$(median_instructions "$runs" "$on_dir/bench/$prog" "$@" --n 1)
	local verdict
	verdict=$(awk -v a="$off_n" -v b="$on_n" -v c="$off_1" -v d="$on_1" \
		-v n="$n" -v lim="$limit" -v label="$label" 'BEGIN {
		po = (a - c) / (n - 1); pn = (b - d) / (n - 1)
		r = b / a; rp = pn / po
		printf "%-22s %16d %16d %9.4f %12.1f %12.1f %9.4f\n", label, a, b, r, po, pn, rp
		if (rp > 1 + lim / 100) print "OVER"
	}')
	echo "$verdict" | grep -v '^OVER$' || true
	if echo "$verdict" | grep -q '^OVER$'; then
		fail=1
	fi
}

measure "W1 spawn, 1 worker" 1 "$n_w1" w1_spawn --workers 1
measure "W1 spawn, 2 workers" 5 "$n_w1" w1_spawn --workers 2
measure "W3 ping-pong" 1 "$n_w3" w3_pingpong
measure "wake ping-pong" 1 "$n_w3" wake_pingpong

echo "limit: ratio/op <= $(awk -v l="$limit" 'BEGIN { printf "%.4f", 1 + l / 100 }')" \
	"(ON: counters, and the trace recorder present but off)"
if [ "$fail" = 1 ]; then
	echo "metrics-cost: over the limit" >&2
	exit 1
fi
