#!/usr/bin/env bash
# Layer 2: mount namespace, overlay root, --mount.
. tests/lib/tap.sh
plan 17
tmp=$(mktemp -d /var/tmp/pdtest.XXXXXX); trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/data" "$tmp/out"; echo hello > "$tmp/data/f"; chown -R 1000:1000 "$tmp/data" "$tmp/out"
echo marker > "$tmp/host-only"

out=$(pdrun -- sh -c 'rm -rf /bin/busybox; echo gone' 2>&1); contains "the root is writable (overlay)" gone "$out"
check "the image is untouched after rm inside" test -x "$ROOTFS/bin/busybox"
out=$(pdrun -- sh -c 'ls /var/tmp 2>&1; cat '"$tmp"'/host-only 2>&1'); not_contains "host files are not visible" marker "$out"
out=$(pdrun --mount "$tmp/data:/data" -- cat /data/f); expect "--mount is visible" hello "$out"
pdrun --mount "$tmp/data:/data" -- sh -c 'echo no > /data/f' 2>/dev/null; ok $(( $? == 0 )) "--mount is read-only by default"
expect "host file unchanged" hello "$(cat "$tmp/data/f")"
pdrun --mount "$tmp/out:/out:rw" -- sh -c 'echo yes > /out/g'; expect ":rw is writable" yes "$(cat "$tmp/out/g" 2>&1)"
pdrun --mount "$tmp/data/f:/etc/f" -- cat /etc/f >/dev/null; expect "a single file can be mounted" 0 $?
err=$(pdrun --mount "$tmp/data:/x/../../etc" -- true 2>&1); rc=$?
expect "a target with .. is refused" 125 $rc
contains "and the error says why" "contains '..'" "$err"
err=$(pdrun --mount "$tmp/data:relative" -- true 2>&1); expect "a relative target is refused" 125 $?
err=$(pdrun --mount "$tmp/data:/proc" -- true 2>&1); contains "a target over /proc is refused" "reserved" "$err"
ln -s "$tmp/data" "$tmp/link"
err=$(pdrun --mount "$tmp/link:/data" -- true 2>&1); rc=$?
expect "a symlink source is refused" 125 $rc
contains "the error names it" "symlink" "$err"
err=$(pdrun --mount "$tmp/nope:/data" -- true 2>&1); contains "a missing source is named" "$tmp/nope" "$err"
# An image symlink pointing outside cannot redirect a mount target: the
# target resolves inside the root (RESOLVE_IN_ROOT).
out=$(pdrun --mount "$tmp/data:/bin/data" -- sh -c 'cat /bin/data/f; ls /usr/bin/data 2>/dev/null | head -1'); contains "targets resolve inside the root" hello "$out"
leak_check "after mount tests"
finish
