#!/usr/bin/env bash
# The real default image (Debian 12 built with mmdebstrap, cached under the
# state directory): the README's main job, and the workspace as a git clone.
. tests/lib/tap.sh
plan 10
tmp=$(mktemp -d /var/tmp/pdtest.XXXXXX); trap 'rm -rf "$tmp"' EXIT
r=$tmp/repo
git init -q -b main "$r" && cd "$r"
echo base > file && git add file && git -c user.name=t -c user.email=t@t commit -q -m base
echo dirty >> file; echo new > untracked
out=$(pd run -- sh -c 'id; ls /workspace; rm -rf / --no-preserve-root 2>/dev/null; echo still here' 2>&1); rc=$?
expect "the README's main job exits 0" 0 $rc
contains "runs as root inside" "uid=0(root) gid=0(root)" "$out"
contains "rm -rf / inside leaves the sandbox standing" "still here" "$out"
check "... and the host untouched" test -f "$r/file"
out=$(pd run -- git log --format=%s 2>&1)
expect "the workspace is a clone: HEAD plus one commit of the uncommitted changes" "paddock: uncommitted changes
base" "$out"
out=$(pd run -- sh -c 'git status --porcelain; git remote -v; cat file' 2>&1)
expect "clean tree, no remote, working-tree content" "base
dirty" "$out"
out=$(pd run -- sh -c 'cat /etc/debian_version; for c in git curl bash; do command -v $c; done' 2>&1)
contains "Debian 12 with git, curl and bash" "/usr/bin/curl" "$out"
out=$(pd run -- sh -c 'useradd -m u1 && su u1 -c id' 2>&1)
contains "users can be added and used inside (the 65536-id range)" "uid=1000(u1)" "$out"
out=$(pd run -- sh -c 'apt-get install -y --no-download hello 2>&1 | tail -1; echo ok' 2>&1)
contains "apt-get runs (as far as it can without a network)" "ok" "$out"
cd /
leak_check "after default image tests"
finish
