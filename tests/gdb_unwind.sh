#!/bin/sh
# Checks that gdb unwinds through coil's context switch (its CFI): from a
# function called by a task, the backtrace walks the task's stack down to
# the coroutine entry and stops there cleanly; stopped inside the switch
# after the stack swap, it walks the loop's stack up to main.
# usage: gdb_unwind.sh PROGRAM   (skips with 77 without gdb)
set -eu
prog=$1
command -v gdb >/dev/null 2>&1 || { echo "skip: gdb not installed"; exit 77; }
out=$(gdb -nx -batch -ex 'break unwind_leaf' -ex run -ex bt \
	-ex 'break coil__ctx_switch' -ex continue -ex 'stepi 10' -ex bt \
	-ex kill "$prog" 2>&1)
echo "$out"
fail() { echo "FAIL: $1"; exit 1; }
echo "$out" | grep -q 'in unwind_task' || fail "no task frame under unwind_leaf"
echo "$out" | grep -q 'coro_main' || fail "no coro_main frame"
echo "$out" | grep -q 'ctx_entry' || fail "the task's stack does not end at ctx_entry"
echo "$out" | grep -q 'in run_once' || fail "no loop frame after the swap"
echo "$out" | grep -q 'in main ()' || fail "the loop's stack does not reach main"
echo "$out" | grep -qi 'corrupt stack\|Backtrace stopped' && fail "gdb reports a broken unwind"
echo "unwind ok"
