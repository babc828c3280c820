#!/usr/bin/env bash
# Workspace: a clone of the repository with the uncommitted changes, or a
# copy of a plain directory; the original is never touched.
. tests/lib/tap.sh
plan 14
tmp=$(mktemp -d /var/tmp/pdtest.XXXXXX); trap 'rm -rf "$tmp"' EXIT
r=$tmp/repo
git init -q "$r" && cd "$r"
git -c user.name=t -c user.email=t@t commit -q --allow-empty -m init
echo v1 > tracked; echo ignored > .gitignore; echo keep > deleted
git add . && git -c user.name=t -c user.email=t@t commit -q -m base
echo v2 > tracked; echo new > untracked; echo secret > ignored; rm deleted; echo TOKEN=x > .env
echo staged > staged && git add staged
before=$(cd "$r" && find .git -type f -exec sha256sum {} + | sort | sha256sum)
out=$(pd run --image "$ROOTFS" -- sh -c 'cat tracked untracked staged; ls -A; cat .git/HEAD')
contains "modified tracked file has the working-tree content" v2 "$out"
contains "untracked file is there" new "$out"
contains "staged file is there" staged "$out"
not_contains "ignored file is not" ignored "$(echo "$out" | grep -v gitignore)"
not_contains ".env is left out (deny list)" ".env" "$out"
not_contains "deleted file is gone" deleted "$out"
contains "it is a git repository" "ref: refs/heads/" "$out"
after=$(cd "$r" && find .git -type f -exec sha256sum {} + | sort | sha256sum)
expect "the original repository's .git is byte-identical" "$before" "$after"
pd run --image "$ROOTFS" -- sh -c 'echo changed > tracked; rm -rf /workspace/*'
expect "changes inside never reach the original" v2 "$(cat "$r/tracked")"
out=$(pd run --image "$ROOTFS" -- sh -c 'grep -c url .git/config || true'); expect "no remote pointing at the host repository" 0 "$(echo $out)"
cd "$tmp"; mkdir plain; echo p > plain/file; echo S=1 > plain/.env.local; cd plain
out=$(pd run --image "$ROOTFS" -- ls -A); expect "outside git: a copy of the directory, minus credentials" file "$out"
out=$(pd run --image "$ROOTFS" --workspace none -- ls -A /workspace); expect "--workspace none: empty" "" "$out"
chown 1000:1000 "$tmp/plain"
pd run --image "$ROOTFS" --workspace-mount -- sh -c 'echo via-mount > from-sandbox'
expect "--workspace-mount writes through to the directory" via-mount "$(cat "$tmp/plain/from-sandbox" 2>&1)"
cd /
leak_check "after workspace tests"
finish
