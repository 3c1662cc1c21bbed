#!/bin/sh
# Checks tools/gdb/coil.py on a program whose tasks wait in a sleep, a queue
# get and an await (tests/gdb_tasks_target.c), with one worker and with
# two: `coil tasks` lists them with what they wait for and `coil bt` prints
# their stacks, in the live process stopped at a breakpoint, in a core file
# gdb's gcore wrote of it, and in the core the kernel dumps when the program
# aborts (when the machine's core_pattern leaves one in the working
# directory; otherwise that part is skipped with a note).
# usage: gdb_tasks.sh PROGRAM SCRIPT   (skips with 77 without gdb)
set -eu
prog=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
script=$2
command -v gdb >/dev/null 2>&1 || { echo "skip: gdb not installed"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
fail() { echo "FAIL: $1"; exit 1; }
gdbx() { gdb -nx -batch -ex 'set debuginfod enabled off' -ex "source $script" "$@" 2>&1 || true; }

# check OUTPUT WHAT: the listing and the stacks every run must show.
check() {
	out=$1
	what=$2
	echo "$out" | grep -q "coil: 4 task(s)" || fail "$what: not 4 tasks listed"
	echo "$out" | grep -q "task [0-9]* 'sleeper': waiting.* for sleep" ||
		fail "$what: the sleeper's wait"
	echo "$out" | grep -q "task [0-9]* 'getter': waiting.* for queue get" ||
		fail "$what: the getter's wait"
	echo "$out" | grep -q "task [0-9]* 'awaiter': waiting.* for task [0-9]" ||
		fail "$what: the awaiter's wait"
	# A queue get and an await are tail waits while one thread runs
	# tasks (core.h): the getter's and the awaiter's innermost frames are
	# then gdbt_getter and gdbt_awaiter themselves.
	for f in gdbt_nap gdbt_sleeper gdbt_getter gdbt_awaiter \
		 coil_sleep_ns gdbt_stop_here gdbt_main; do
		echo "$out" | grep -q "#[0-9]* *0x[0-9a-f]* in $f+0x" ||
			fail "$what: no frame in $f"
	done
	echo "$out" | grep -q "': running.*stack [1-9]" ||
		fail "$what: the running main task"
	echo "$out" | grep -q "ctx_entry" && fail "$what: a coroutine entry frame shown"
	echo "$out" | grep -q "Traceback\|Python Exception\|Error occurred" &&
		fail "$what: the script failed"
	return 0
}

for workers in 1 2; do
	live=$(gdbx -ex 'break gdbt_stop_here' -ex run -ex 'coil tasks' \
		-ex 'coil bt all' -ex 'coil bt 999999' -ex kill --args "$prog" "$workers")
	echo "$live"
	check "$live" "live, $workers worker(s)"
	echo "$live" | grep -q "coil bt: no live task 999999" || fail "live: unknown id"

	# gcore reads each mapping whole, and a read that meets a stack guard
	# installed with MADV_GUARD_INSTALL fails: mprotect guards split the
	# mappings so that gcore keeps the stacks (see tools/gdb/coil.py).
	core=$tmp/gcore.$workers
	out=$(COIL_STACK_GUARD=mprotect gdbx -ex 'break gdbt_stop_here' -ex run \
		-ex "gcore $core" -ex kill --args "$prog" "$workers")
	[ -s "$core" ] || { echo "$out"; fail "gcore wrote no core file"; }
	dead=$(gdbx -ex 'coil tasks' -ex 'coil bt all' "$prog" "$core")
	echo "$dead"
	check "$dead" "gcore, $workers worker(s)"
	rm -f "$core"

	mkdir "$tmp/k$workers"
	(cd "$tmp/k$workers" && ulimit -c unlimited 2>/dev/null &&
		exec "$prog" "$workers" abort) >/dev/null 2>&1 || true
	core=$(ls "$tmp/k$workers"/core* 2>/dev/null | head -n 1 || true)
	if [ -z "$core" ]; then
		echo "note: no kernel core dump here (core_pattern: $(cat /proc/sys/kernel/core_pattern 2>/dev/null)); that part is skipped"
		continue
	fi
	dead=$(gdbx -ex 'coil tasks' -ex 'coil bt all' "$prog" "$core")
	echo "$dead"
	check "$dead" "kernel core, $workers worker(s)"
	echo "$dead" | grep -q "in __GI_abort\|in abort" || fail "kernel core: no abort frame"
	rm -rf "$tmp/k$workers"
done
echo "gdb tasks ok"
