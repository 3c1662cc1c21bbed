#!/bin/bash
# Compares two builds of libcoil on one benchmark program, on this noisy VM:
# runs the program with LD_LIBRARY_PATH=LIBA and =LIBB in ABBA order (A B,
# B A, A B, ...), prints each pair and the median of the per-pair ratios B/A
# of one result line (`@ METRIC value unit`). The program must load libcoil
# dynamically (the bench/ programs do; the tests link it statically).
# usage: METRIC=time_ms scripts/abba.sh ROUNDS LIBA LIBB PROGRAM [ARGS...]
# e.g.:  METRIC=ns_per_task scripts/abba.sh 12 /tmp/old/build build build/bench/w1_spawn --workers 2
set -u
K=$1; A=$2; B=$3; shift 3
: "${METRIC:?set METRIC to the name of the result line}"
run() { LD_LIBRARY_PATH=$1 "${@:2}" | awk -v m="$METRIC" '$1=="@" && $2==m {print $3; exit}'; }
for i in $(seq "$K"); do
	if [ $((i % 2)) = 1 ]; then a=$(run "$A" "$@"); b=$(run "$B" "$@"); else b=$(run "$B" "$@"); a=$(run "$A" "$@"); fi
	echo "$a $b"
done | awk '{ r[NR] = $2 / $1; printf "%s %s %.3f\n", $1, $2, $2 / $1 }
END { n = NR; for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (r[j] < r[i]) { t = r[i]; r[i] = r[j]; r[j] = t }
      if (n) printf "median B/A %.3f (n=%d)\n", r[int((n + 1) / 2)], n }'
