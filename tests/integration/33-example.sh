#!/usr/bin/env bash
# Issue 3's example paddock.yaml, minus the fields this build refuses
# (network, secrets, idle): `paddock run -- claude --version` in that repo
# builds the image once (cached afterwards) and the agents work inside.
. tests/lib/tap.sh
plan 10
tmp=$(mktemp -d /var/tmp/pdtest.XXXXXX); trap 'rm -rf "$tmp"' EXIT
export HOME=$tmp/home
mkdir -p "$HOME/datasets" && echo sample > "$HOME/datasets/d.csv" && chown -R 1000:1000 "$HOME"
r=$tmp/repo && mkdir "$r" && cd "$r" && git init -q
cat > paddock.yaml <<'YAML'
image:
  base: debian:bookworm
  packages: [build-essential, nodejs, npm, python3]
  agents: [claude, codex, opencode]
  run: |
    npm install -g pnpm@8
setup: npm ci
env: {NODE_ENV: development}
mounts:
  - {source: ~/datasets, target: /data}
  - {source: ./build-cache, target: /cache, write: true}
limits: {memory: 4G, cpus: 2, pids: 2048, disk: 20G}
YAML
printf '{"name":"demo","version":"1.0.0","lockfileVersion":3}\n' > package.json
printf '{"name":"demo","version":"1.0.0","lockfileVersion":3,"requires":true,"packages":{"":{"name":"demo","version":"1.0.0"}}}\n' > package-lock.json
mkdir build-cache && chown 1000:1000 build-cache
git add -A && git -c user.name=t -c user.email=t@t commit -qm demo
out=$(pd run -- claude --version 2>&1); rc=$?
expect "paddock run -- claude --version exits 0" 0 $rc
contains "claude prints its version" "Claude Code" "$out"
out=$(pd run -- codex --version 2>&1); contains "codex --version" "codex-cli" "$out"
out=$(pd run -- opencode --version 2>&1); ok $? "opencode --version ($(echo "$out" | tail -1))"
out=$(pd run -- sh -c 'pnpm --version; python3 --version; cc --version | head -1' 2>&1)
contains "run: steps are in the image (pnpm)" "8." "$out"
contains "packages are in the image (build-essential: cc)" "cc (Debian 12" "$out"
out=$(pd run -- sh -c 'echo $NODE_ENV; cat /data/d.csv; echo w > /cache/x' 2>&1)
contains "env from the file" development "$out"
contains "~/datasets mounted read-only at /data" sample "$out"
contains "setup (npm ci) ran in /workspace first" "audited 1 package" "$out"
cd /
leak_check "after the example spec"
finish
