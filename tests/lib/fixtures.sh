#!/usr/bin/env bash
# Build the shared test fixtures once: a busybox root filesystem with the
# static probe program in it (tests/lib/probe.c).
set -eu
cd "$(dirname "$0")/../.."
FIX=${PADDOCK_FIXTURES:-$PWD/${BUILD:-build}/fixtures}
mkdir -p "$FIX"
sh tests/lib/mkrootfs.sh "$FIX/rootfs" >/dev/null
if [ -f tests/lib/probe.c ] && { [ ! -x "$FIX/probe" ] || [ tests/lib/probe.c -nt "$FIX/probe" ]; }; then
	cc -O1 -static -std=gnu17 -D_GNU_SOURCE -o "$FIX/probe.tmp" tests/lib/probe.c
	mv "$FIX/probe.tmp" "$FIX/probe"
fi
if [ -x "$FIX/probe" ]; then
	mkdir -p "$FIX/rootfs/usr/local/bin"
	cmp -s "$FIX/probe" "$FIX/rootfs/usr/local/bin/probe" || cp "$FIX/probe" "$FIX/rootfs/usr/local/bin/probe"
fi
