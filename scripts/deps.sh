#!/bin/sh
# Installs the Debian packages coil needs to build and test, if any are
# missing. As root (or with sudo) it runs apt-get; otherwise it prints the
# exact command and stops.
set -e
pkgs="build-essential cmake pkg-config liburing-dev libjemalloc-dev libbenchmark-dev clang libclang-rt-14-dev valgrind gdb gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "coil: installing missing packages:$missing"
if [ "$(id -u)" = 0 ]; then
	SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
	SUDO="sudo"
else
	echo "coil: run this as root, then try again:"
	echo "  apt-get install -y$missing"
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y $missing >/dev/null || {
	$SUDO apt-get update >/dev/null && $SUDO apt-get install -y $missing >/dev/null
}
