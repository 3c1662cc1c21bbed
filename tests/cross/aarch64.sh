#!/bin/sh
# Builds the coroutine layer (the AArch64 context switch, stacks, coroutines)
# and tests/test_coro.c with the AArch64 cross compiler and runs them under
# qemu-aarch64. Skips (77) when the cross tools are not installed.
# usage: aarch64.sh SOURCE_DIR SCRATCH_DIR
set -eu
src=$1
out=$2
cc=aarch64-linux-gnu-gcc
command -v $cc >/dev/null 2>&1 || { echo "skip: $cc not installed"; exit 77; }
command -v qemu-aarch64 >/dev/null 2>&1 || { echo "skip: qemu-aarch64 not installed"; exit 77; }
mkdir -p "$out"
$cc -std=gnu11 -O2 -static -Wall -Wextra -Werror -D_GNU_SOURCE -DCOIL_BUILDING \
	-I"$src/include" -I"$src/runtime" -I"$src/io" -I"$src/tests" \
	"$src/runtime/coro.c" "$src/runtime/stack.c" "$src/runtime/alloc.c" \
	"$src/runtime/error.c" "$src/runtime/arch/switch_aarch64.S" \
	"$src/tests/test_coro.c" -o "$out/test_coro_aarch64" -lpthread
exec qemu-aarch64 "$out/test_coro_aarch64"
