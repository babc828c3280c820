#!/usr/bin/env bash
# Layer 1: user namespace. Root inside is an unprivileged host uid range.
. tests/lib/tap.sh
plan 8
out=$(pdrun -- id -u); expect "uid 0 inside" 0 "$out"
out=$(pdrun -- cat /proc/self/uid_map | tr -s ' '); expect "root maps to 1879048192, 65536 ids" " 0 1879048192 65536" "$out"
out=$(pdrun -- cat /proc/self/gid_map | tr -s ' '); expect "gid map likewise" " 0 1879048192 65536" "$out"

tmp=$(mktemp -d /var/tmp/pdtest.XXXXXX); trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/rw" && chown 1000:1000 "$tmp/rw"
pdrun --mount "$tmp/rw:/out:rw" -- sh -c 'echo x > /out/made-inside'
expect "a file made in a user's rw mount belongs to that user on the host" "1000:1000" "$(stat -c %u:%g "$tmp/rw/made-inside")"
mkdir "$tmp/rootowned"; chmod 0777 "$tmp/rootowned"
pdrun --mount "$tmp/rootowned:/out:rw" -- sh -c 'echo x > /out/made-inside'
expect "in a root-owned rw mount it belongs to the mapped uid, never to host root" "1879048192:1879048192" "$(stat -c %u:%g "$tmp/rootowned/made-inside")"
# apt's _apt user (uid 42 in Debian) must exist as a distinct id inside
out=$(pdrun -- sh -c 'touch /tmp/f && chown 42:65534 /tmp/f && stat -c %u:%g /tmp/f'); expect "ids up to 65535 usable inside (chown 42:65534)" "42:65534" "$out"
out=$(pdrun -- sh -c 'stat -c %u /bin/busybox'); expect "image files appear owned by root inside (idmapped)" 0 "$out"
leak_check "after user namespace tests"
finish
