#!/usr/bin/env bash
# paddock run with an image: section in paddock.yaml builds that image (or
# takes it from the cache) and runs in it; --image overrides the section.
. tests/lib/tap.sh
plan 6
tmp=$(mktemp -d /var/tmp/pdtest.XXXXXX); trap 'rm -rf "$tmp"' EXIT
cd "$tmp" && git init -q
printf 'image:\n  packages: [hello]\nsetup: echo setup-ran > /tmp/s\n' > paddock.yaml
out=$(pd run -- sh -c 'hello; cat /tmp/s' 2>&1); rc=$?
expect "run builds the image: section and runs in it" 0 $rc
contains "... the package is there" "Hello, world!" "$out"
contains "... and setup ran first" "setup-ran" "$out"
out=$(pd run -- hello 2>&1)
expect "the second run is a cache hit: no build output at all" "Hello, world!" "$out"
out=$(pd run --image "$ROOTFS" -- sh -c 'command -v hello || echo no-hello' 2>&1)
contains "--image overrides the image: section" "no-hello" "$out"
cd /
leak_check "after runs from an image: section"
finish
