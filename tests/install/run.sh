#!/usr/bin/env bash
#
# tests/install/run.sh BUILD_DIR SCRATCH_DIR
#
# Installs the coil build in BUILD_DIR into SCRATCH_DIR/prefix and checks the
# installed tree as a user would meet it:
#   - the library files, links, SONAME and exported symbols (coil_* only);
#   - hello.c built with `pkg-config --cflags --libs coil` (shared), run;
#   - hello.c built with `pkg-config --static --libs coil` and libcoil.a, run;
#   - this directory's CMake project, find_package(coil) with coil::coil and
#     coil::coil_static, built and both programs run.
# Exits 0 on success, 77 (skip) in sanitizer builds or when io_uring cannot
# be set up, anything else with a message on failure. Only SCRATCH_DIR's
# prefix/, bin/ and consumer/ are removed and rewritten.

set -eu

fail() {
	echo "install test: FAIL: $*" >&2
	exit 1
}

[ $# -eq 2 ] || { echo "usage: $0 BUILD_DIR SCRATCH_DIR" >&2; exit 2; }
build=$(cd "$1" && pwd)
mkdir -p "$2"
scratch=$(cd "$2" && pwd)
here=$(cd "$(dirname "$0")" && pwd)

[ -f "$build/CMakeCache.txt" ] || fail "$build is not a CMake build directory"

# cache NAME: the value of a CMake cache entry of the main build.
cache() {
	sed -n "s/^$1:[^=]*=//p" "$build/CMakeCache.txt" | head -n 1
}

# A sanitized libcoil needs the sanitizer runtime and flags in every program
# that links it; rather than repeat them here, the test stands aside.
if [ -n "$(cache COIL_SANITIZE)" ]; then
	echo "install test: skipped in a sanitizer build (COIL_SANITIZE=$(cache COIL_SANITIZE))"
	exit 77
fi

cc=$(cache CMAKE_C_COMPILER)
[ -n "$cc" ] || cc=${CC:-cc}
generator=$(cache CMAKE_GENERATOR)
prefix=$scratch/prefix
bindir=$scratch/bin
rm -rf "$prefix" "$bindir" "$scratch/consumer"
mkdir -p "$bindir"

echo "== cmake --install $build --prefix $prefix"
cmake --install "$build" --prefix "$prefix" ||
	fail "cmake --install failed"

# --- the installed files ---------------------------------------------------

[ -f "$prefix/include/coil/coil.h" ] || fail "include/coil/coil.h not installed"
sonames=$(find "$prefix" -name libcoil.so.0)
[ -n "$sonames" ] || fail "libcoil.so.0 not installed under $prefix"
[ "$(printf '%s\n' "$sonames" | wc -l)" -eq 1 ] ||
	fail "more than one libcoil.so.0 installed: $sonames"
libdir=$(dirname "$sonames")
lib=$libdir/libcoil.so.0

[ -L "$libdir/libcoil.so" ] && [ "$(readlink "$libdir/libcoil.so")" = libcoil.so.0 ] ||
	fail "$libdir/libcoil.so is not a link to libcoil.so.0"
[ -L "$lib" ] || fail "$lib is not a link"
real=$(readlink "$lib")
case $real in
libcoil.so.0.*) [ -f "$libdir/$real" ] || fail "$lib points to missing $real" ;;
*) fail "$lib points to $real, not libcoil.so.0.<minor>.<patch>" ;;
esac
[ -f "$libdir/libcoil.a" ] || fail "libcoil.a not installed in $libdir"
for f in coil.pc; do
	[ -f "$libdir/pkgconfig/$f" ] || fail "$libdir/pkgconfig/$f not installed"
done
for f in coilConfig.cmake coilConfigVersion.cmake coilTargets.cmake; do
	[ -f "$libdir/cmake/coil/$f" ] || fail "$libdir/cmake/coil/$f not installed"
done

echo "== SONAME and exported symbols of $lib -> $real"
readelf -d "$lib" | grep -q 'Library soname: \[libcoil\.so\.0\]' ||
	fail "SONAME of $real is not libcoil.so.0: $(readelf -d "$lib" | grep -i soname || echo none)"

# Only coil_* may be exported (libcoil.map), plus the version node COIL_0,
# which nm shows as an absolute symbol. coil__* names are internal
# (STYLE.md) even though the map's pattern would let them through.
syms=$(nm -D --defined-only "$lib") || fail "nm -D failed on $lib"
bad=$(printf '%s\n' "$syms" | awk '
	NF == 0 { next }
	{ name = $NF; sub(/@.*/, "", name) }
	$(NF-1) == "A" && name == "COIL_0" { next }
	name ~ /^coil__/ { print; next }
	name ~ /^coil_/ { next }
	{ print }')
if [ -n "$bad" ]; then
	echo "$bad" >&2
	fail "libcoil.so.0 exports symbols other than coil_* (listed above):" \
		"mark internal functions static or leave them hidden (no COIL_API)"
fi
for s in coil_run coil_version coil_sleep; do
	printf '%s\n' "$syms" | awk '{ n = $NF; sub(/@.*/, "", n); print n }' |
		grep -qx "$s" || fail "libcoil.so.0 does not export $s"
done
printf '%s\n' "$syms" | grep -q ' A COIL_0$' ||
	fail "libcoil.so.0 has no COIL_0 version node (is the version script applied?)"
echo "$(printf '%s\n' "$syms" | grep -c ' coil_') coil_* symbols, all versioned COIL_0"

# needed BINARY: the DT_NEEDED entries of BINARY, one a line.
needed() {
	readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'
}

skipped=0
# run_hello PROGRAM [ENV...]: runs a built hello; 77 (no io_uring) is noted.
run_hello() {
	local prog=$1 rc=0
	shift
	echo "-- running $prog"
	env "$@" "$prog" || rc=$?
	case $rc in
	0) ;;
	77) skipped=1 ;;
	*) fail "$prog exited with $rc" ;;
	esac
}

# --- pkg-config ----------------------------------------------------------

export PKG_CONFIG_PATH="$libdir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
pkg-config --exists --print-errors coil || fail "pkg-config cannot use coil.pc"
echo "== pkg-config: coil $(pkg-config --modversion coil)"
read -r -a cflags <<<"$(pkg-config --cflags coil)"
read -r -a libs <<<"$(pkg-config --libs coil)"
read -r -a slibs <<<"$(pkg-config --static --libs coil)"
echo "cflags: ${cflags[*]}"
echo "libs: ${libs[*]}"
echo "static libs: ${slibs[*]}"
warn=(-std=c11 -Wall -Wextra -Werror)

"$cc" "${warn[@]}" "${cflags[@]}" "$here/hello.c" -o "$bindir/hello_pc" "${libs[@]}" ||
	fail "building hello.c with pkg-config --cflags --libs coil failed"
needed "$bindir/hello_pc" | grep -qx libcoil.so.0 ||
	fail "hello_pc does not need libcoil.so.0"
run_hello "$bindir/hello_pc" LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# Static: libcoil.a in place of libcoil.so, the rest as pkg-config gives it.
static_libs=()
for w in "${slibs[@]}"; do
	if [ "$w" = -lcoil ]; then
		static_libs+=(-Wl,-Bstatic -lcoil -Wl,-Bdynamic)
	else
		static_libs+=("$w")
	fi
done
"$cc" "${warn[@]}" "${cflags[@]}" "$here/hello.c" -o "$bindir/hello_pc_static" \
	"${static_libs[@]}" ||
	fail "building hello.c with pkg-config --static --libs coil and libcoil.a failed"
if needed "$bindir/hello_pc_static" | grep -q '^libcoil'; then
	fail "hello_pc_static links libcoil dynamically"
fi
run_hello "$bindir/hello_pc_static" -u LD_LIBRARY_PATH

# --- find_package(coil) --------------------------------------------------

echo "== CMake consumer project ($generator, $cc)"
cmake -S "$here" -B "$scratch/consumer" ${generator:+-G "$generator"} \
	-DCMAKE_C_COMPILER="$cc" -DCMAKE_PREFIX_PATH="$prefix" \
	-DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF ||
	fail "configuring tests/install with find_package(coil) failed"
found=$(sed -n 's/^coil_DIR:[^=]*=//p' "$scratch/consumer/CMakeCache.txt")
case $found in
"$prefix"/*) ;;
*) fail "find_package(coil) found $found, not the package under $prefix" ;;
esac
cmake --build "$scratch/consumer" || fail "building tests/install failed"

needed "$scratch/consumer/hello_cmake" | grep -qx libcoil.so.0 ||
	fail "hello_cmake (coil::coil) does not need libcoil.so.0"
if needed "$scratch/consumer/hello_cmake_static" | grep -q '^libcoil'; then
	fail "hello_cmake_static (coil::coil_static) links libcoil dynamically"
fi
# hello_cmake finds libcoil.so.0 through the build-tree RPATH CMake sets.
run_hello "$scratch/consumer/hello_cmake" -u LD_LIBRARY_PATH
run_hello "$scratch/consumer/hello_cmake_static" -u LD_LIBRARY_PATH

if [ "$skipped" -ne 0 ]; then
	echo "install test: everything built, but io_uring is unavailable here: skipped"
	exit 77
fi
echo "install test: OK"
