#!/usr/bin/env bash
# paddock.yaml: found at the top of the work tree, printed by `paddock spec`,
# overridden by flags, its errors one line with file:line:column, setup run
# before the command, env and mounts reaching the sandbox.
. tests/lib/tap.sh
plan 38
tmp=$(mktemp -d /var/tmp/pdtest.XXXXXX); trap 'rm -rf "$tmp"' EXIT
repo=$tmp/repo
mkdir -p "$repo/sub/dir" "$repo/data"
git init -q "$repo"
echo hello > "$repo/data/f"; chown -R 1000:1000 "$repo/data"
cat > "$repo/paddock.yaml" <<'EOF'
setup: echo setup-ran > /tmp/marker   # runs first, in /workspace
env: {GREETING: from-file, OTHER: kept}
mounts:
  - {source: ./data, target: /data}
hostname: filehost
workspace: none
limits: {memory: 80M, pids: 55}
EOF
cd "$repo"

# paddock spec: file + flags + defaults
out=$(pd spec); rc=$?
expect "paddock spec succeeds" 0 $rc
contains "it prints the file's values" "GREETING: from-file" "$out"
contains "relative mount sources are resolved against the file" "source: $repo/data, target: /data" "$out"
contains "and the defaults" "disk: 4G" "$out"
contains "the file's limit" "memory: 80M" "$out"
out=$(cd sub/dir && pd spec); contains "from a subdirectory, the file at the top of the work tree" "hostname: filehost" "$out"
out=$(pd spec --memory 2G -e GREETING=from-flag -- make test)
contains "a flag overrides the file" "memory: 2G" "$out"
contains "-e overrides the file's variable" "GREETING: from-flag" "$out"
contains "the command is part of the spec" "command: [make, test]" "$out"
out=$(pd spec --no-spec); contains "--no-spec ignores the file" "memory: 4G" "$out"
not_contains "--no-spec: no setup" "setup:" "$out"
printf 'limits: {memory: 3G}\n' > "$tmp/other.yaml"
out=$(pd spec -f "$tmp/other.yaml"); contains "-f FILE reads that file" "memory: 3G" "$out"
pd spec > "$tmp/printed.yaml"
expect "the printed spec reads back to the same spec" "$(cat "$tmp/printed.yaml")" "$(pd spec --spec "$tmp/printed.yaml")"
pd spec --json > "$tmp/spec.json"; rc=$?
check "--json is valid JSON" python3 -m json.tool "$tmp/spec.json"
out=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["limits"]["memory_bytes"], d["env"]["GREETING"], d["mounts"][0]["write"])' "$tmp/spec.json")
expect "--json holds the values" "83886080 from-file False" "$out"

# The spec in a run: setup first, env, mounts, flags over the file.
out=$(pd run --image "$ROOTFS" -- sh -c 'cat /tmp/marker; echo $GREETING $OTHER; cat /data/f; hostname')
expect "setup ran before the command; env, mounts and hostname from the file" \
	"setup-ran from-file kept hello filehost" "$(echo $out)"
out=$(pd run --image "$ROOTFS" -e GREETING=flag --hostname flaghost -- sh -c 'echo $GREETING $OTHER; hostname')
expect "flags override the file in a run" "flag kept flaghost" "$(echo $out)"
"$PADDOCK_BIN" run --image "$ROOTFS" --pids 66 -- sleep 3 &
pid=$!
sleep 1.2
mem=$(cat /sys/fs/cgroup/memory/paddock/run-$pid-*/memory.limit_in_bytes /sys/fs/cgroup/unified/paddock/run-$pid-*/memory.max /sys/fs/cgroup/paddock/run-$pid-*/memory.max 2>/dev/null | head -1)
pids=$(cat /sys/fs/cgroup/pids/paddock/run-$pid-*/pids.max /sys/fs/cgroup/paddock/run-$pid-*/pids.max 2>/dev/null | head -1)
wait $pid
expect "the file's memory limit is applied" $((80 * 1024 * 1024)) "$mem"
expect "--pids overrides the file's pids limit" 66 "$pids"
out=$(pd run --image "$ROOTFS" --no-spec --workspace none -- sh -c 'cat /tmp/marker 2>&1; echo ${GREETING:-unset}')
contains "--no-spec: no setup, no env" "unset" "$out"

# setup: in /workspace, a subshell, failing stops the run with its status.
cat > paddock.yaml <<'EOF'
workspace: none
setup: |
  pwd > /tmp/setup-dir
  cd /
  echo setup-output
EOF
out=$(pd run --image "$ROOTFS" -w /tmp -- sh -c 'cat /tmp/setup-dir; pwd')
expect "setup runs in /workspace, its output shows, its cd stays inside it" \
	"setup-output /workspace /tmp" "$(echo $out)"
cat > paddock.yaml <<'EOF'
workspace: none
setup: |
  echo step-one
  false
  echo not-reached
EOF
out=$(pd run --image "$ROOTFS" -- echo command-ran 2>&1); rc=$?
expect "a failing setup step fails the run with its status" 1 $rc
contains "its output is shown" "step-one" "$out"
contains "paddock says the setup failed" "paddock: setup failed with status 1" "$out"
not_contains "the rest of the setup does not run" "not-reached" "$out"
not_contains "the command does not run" "command-ran" "$out"
printf 'workspace: none\nsetup: exit 7\n' > paddock.yaml
pd run --image "$ROOTFS" -- true 2>/dev/null; expect "the exit status of the setup is the run's" 7 $?

# Errors: exit 125, one line naming file:line:column, nothing left behind.
printf 'workspace: none\nimgae:\n  base: x\n' > paddock.yaml
err=$(pd run --image "$ROOTFS" -- true 2>&1); rc=$?
expect "a malformed paddock.yaml fails the run: 125" 125 $rc
expect "one line: file:line:column, what, did you mean" \
	"paddock: spec: paddock.yaml:2:1: unknown key 'imgae' (did you mean 'image'?)" "$err"
err=$(cd sub/dir && pd run --image "$ROOTFS" -- true 2>&1)
expect "found at the top, the file is named as found" \
	"paddock: spec: ../../paddock.yaml:2:1: unknown key 'imgae' (did you mean 'image'?)" "$err"
printf 'env:\n  A: 1\n\tB: 2\n' > paddock.yaml
err=$(pd run --image "$ROOTFS" -- true 2>&1)
expect "a tab in the indentation" "paddock: spec: paddock.yaml:3:1: tabs are not allowed for indentation" "$err"
printf 'limits: {memory: 4X}\n' > paddock.yaml
err=$(pd run --image "$ROOTFS" --memory 1G -- true 2>&1); rc=$?
expect "a bad file fails even when a flag sets the same field" 125 $rc
contains "a bad size is named" "paddock.yaml:1:18: limits.memory: bad size '4X'" "$err"
printf 'mounts: [{source: ../.., target: /up}]\n' > paddock.yaml
err=$(pd run --image "$ROOTFS" -- true 2>&1)
contains "a relative source leaving the repository is refused" "paddock.yaml:1:19: mounts.source '../..' escapes the directory holding paddock.yaml" "$err"
printf 'network:\n  mode: fltered\n' > paddock.yaml
err=$(pd run --image "$ROOTFS" -- true 2>&1); rc=$?
expect "a misspelt network mode in the file: 125" 125 $rc
contains "named with file:line:column" "paddock.yaml:2:9: network.mode: 'fltered' is not a mode" "$err"
head -c 1100000 /dev/zero | tr '\0' '#' > paddock.yaml
err=$(pd spec 2>&1); rc=$?
expect "a file over 1 MiB is refused" "125 paddock: spec: paddock.yaml: the file is larger than 1 MiB (1100000 bytes)" "$rc $err"
leak_check "after spec errors and setup failures"
finish
