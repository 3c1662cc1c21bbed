#!/bin/sh
# Runs the given test executables of a build under Valgrind's memcheck, a
# few at a time, and fails if any reports an error or a definite leak.
# usage: valgrind-tests.sh BUILD_DIR JOBS TEST...
set -u
if [ "${1:-}" = "--one" ]; then
	dir=$2
	t=$3
	[ -x "$dir/tests/$t" ] || { echo "valgrind $t: not built"; exit 1; }
	COIL_VALGRIND=1 valgrind -q --error-exitcode=99 --leak-check=full \
		--errors-for-leak-kinds=definite "$dir/tests/$t" >"$dir/$t.vg.log" 2>&1
	rc=$?
	if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
		cat "$dir/$t.vg.log"
		echo "valgrind $t: FAILED (exit $rc)"
		exit 1
	fi
	echo "valgrind $t: $(tail -n 1 "$dir/$t.vg.log")"
	exit 0
fi
dir=$1
jobs=$2
shift 2
# One slot per core: a program runs one thread at a time under Valgrind.
printf '%s\n' "$@" | xargs -P "$jobs" -n 1 "$0" --one "$dir"
