#!/usr/bin/env bash
# The agents really work inside: an image with agents [claude, codex,
# opencode] and each agent's --version in a sandbox from it. The image is
# cached in the state directory like any built image, so it is built at most
# once per machine (once per CI run); later runs are cache hits.
. tests/lib/tap.sh
plan 9
tmp=$(mktemp -d /var/tmp/pdtest-agents.XXXXXX); trap 'rm -rf "$tmp"' EXIT
printf 'image:\n  agents: [claude, codex, opencode]\n' >"$tmp/paddock.yaml"
cd "$tmp"

rootfs=$(pd image build --quiet "$tmp" 2>"$tmp/err"); rc=$?
expect "the agents image builds (or comes from the cache)" 0 $rc
diag "$(tail -n 1 "$tmp/err")"
[ $rc -eq 0 ] || sed 's/^/# /' "$tmp/err" | tail -n 5
check "the agents are installed under /usr/local/bin" \
	test -e "$rootfs/usr/local/bin/claude" -a -e "$rootfs/usr/local/bin/codex" \
	-a -e "$rootfs/usr/local/bin/opencode"
for agent in claude codex opencode; do
	out=$(timeout 120 "$PADDOCK_BIN" run --image "$rootfs" --workspace none -- "$agent" --version 2>&1)
	rc=$?
	expect "$agent --version exits 0 in a sandbox" 0 $rc
	if [[ $out =~ [0-9]+\.[0-9]+\.[0-9]+ ]]; then ok 0 "... and prints a version ($out)"; else
		ok 1 "... and prints a version"; diag "got: $out"; fi
done
cd /
leak_check "after running the agents"
finish
