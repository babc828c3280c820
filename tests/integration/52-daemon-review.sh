#!/usr/bin/env bash
# The review gate: paddock diff and pull bring an agent's work out of a named
# sandbox as data. Whatever the agent leaves in its repository (fsmonitor,
# hooks, a filter driver) never runs on the host; the owner's current branch
# and work tree are never touched; a bundle too large, malformed, or naming
# other refs is refused. Default image (it has git), network off.
. tests/lib/tap.sh
. tests/lib/daemon.sh
plan 45
trap daemon_cleanup EXIT
[ -d /var/lib/paddock/images/default ] || { echo "1..0 # SKIP the default image is not cached"; exit 0; }
daemon_start || { echo "Bail out! paddockd did not start"; exit 1; }
A=${SBP}rev B=${SBP}big C=${SBP}evil
M=$DT/markers mark=pdmark-$$
mkdir -p "$M"
repo=$DT/repo
git init -q -b main "$repo" && cd "$repo"
gc() { git -c user.name=owner -c user.email=owner@host "$@"; }
gc commit -q --allow-empty -m init
printf 'one\ntwo\nthree\n' > a.txt; echo keep > k.txt
git add . && gc commit -q -m base
snap() { (cd "$repo" && { find . -path ./.git/objects -prune -o -type f -print0 | sort -z | xargs -0 sha256sum; git for-each-ref; }) | sha256sum; }
# the hooks touch $M/WHAT and /tmp/$mark-WHAT: on the host, either would appear
# (the sandboxes' own /tmp, in their upper directories, is not the host's)
markers() { { ls -A "$M"; find / -xdev -maxdepth 6 -path "$SBDIR" -prune -o -name "$mark*" -print 2>/dev/null; } | sort -u; }

out=$(pd up "$A" --network off 2>&1); rc=$?
expect "up in a git repository (default image)" "0 $A" "$rc $out"
echo owner-wip > owner.txt # the owner's own work after up stays theirs
out=$(pd diff "$A" 2>&1); rc=$?
ok $((rc == 0)) "diff with nothing changed fails"
contains "... saying there is nothing" "nothing to show" "$out"
out=$(pd pull "$A" 2>&1); rc=$?
contains "pull with nothing changed says there is nothing" "nothing to pull" "$out"
expect "... and makes no branch" "" "$(git branch --list 'paddock/*')"

# The agent: one commit, a hostile .git, and uncommitted changes.
pd exec "$A" -- sh -c "
set -e
git config user.name agent; git config user.email agent@sandbox
printf 'one\nTWO\nthree\nfour\n' > a.txt; echo 'agent file' > b.txt
git add -A; git commit -q -m 'agent: work'
git config core.fsmonitor 'touch $M/fsmonitor /tmp/$mark-fsmonitor; false'
git config core.hooksPath .git/hooks
mkdir -p .git/hooks
for h in post-checkout reference-transaction pre-commit post-merge post-index-change; do
	printf '#!/bin/sh\ntouch $M/hook-%s /tmp/$mark-hook-%s\n' \$h \$h > .git/hooks/\$h; chmod +x .git/hooks/\$h
done
git config filter.evil.clean 'touch $M/filter-clean /tmp/$mark-clean; cat'
git config filter.evil.smudge 'touch $M/filter-smudge /tmp/$mark-smudge; cat'
git config diff.external 'touch $M/diff-external /tmp/$mark-diffext'
echo '* filter=evil diff=evil' > .gitattributes
git config diff.evil.textconv 'touch $M/textconv /tmp/$mark-textconv; cat'
rm k.txt
echo 'not committed' > c.txt
" >/dev/null 2>"$DT/agent.err"
expect "the agent committed inside" "agent: work" "$(pd exec "$A" -- git log -1 --format=%s 2>&1)"
rm -f "$M"/* # the agent's own git ran its hooks inside (not our concern); start clean
before=$(snap)

out=$(pd diff "$A" 2>"$DT/diff.err"); rc=$?
expect "diff succeeds" 0 $rc
contains "diff shows the committed change" "+TWO" "$out"
contains "diff shows the new committed file" "+agent file" "$out"
contains "diff shows the uncommitted new file" "+not committed" "$out"
contains "diff shows the uncommitted deletion" "deleted file mode" "$(echo "$out" | grep -A1 '^diff --git a/k.txt')"
out=$(pd diff "$A" --stat 2>&1)
contains "diff --stat lists the files" "b.txt" "$out"
not_contains "... without the patch" "+agent file" "$out"
expect "diff leaves the owner's repository as it was" "$before" "$(snap)"
expect "no marker: nothing of the sandbox's ran on the host (diff)" "" "$(markers)"

out=$(pd pull "$A" 2>"$DT/pull.err"); rc=$?
expect "pull succeeds" 0 $rc
contains "pull names the branch and counts commits" "paddock/$A: 2 commit(s)" "$out"
contains "pull counts files, insertions, deletions" "5 file(s) changed, 5 insertion(s), 2 deletion(s)" "$out"
contains "pull prints the review command" "review: git log -p main..paddock/$A" "$out"
expect "the branch is refs/heads/paddock/NAME" "paddock/$A" "$(git branch --list "paddock/$A" --format='%(refname:short)')"
expect "the current branch is untouched" "main $(git rev-parse main)" "$(git symbolic-ref --short HEAD) $(git rev-parse HEAD)"
expect "main did not move" "base" "$(git log -1 --format=%s main)"
expect "the owner's work tree is untouched" "one two three keep owner-wip" "$(cat a.txt k.txt owner.txt | xargs)"
expect "the owner's .git/config is unchanged" "" "$(git config --list --local | grep -Ei 'fsmonitor|filter|hookspath|external|textconv')"
expect "the branch has the agent's commit" "agent: work" "$(git log -1 --format=%s "paddock/$A~1")"
expect "... and the uncommitted work on top" "not committed" "$(git show "paddock/$A:c.txt" 2>&1)"
expect "... with the deletion" "" "$(git ls-tree --name-only "paddock/$A" k.txt)"
expect "... the tip's parent chain reaches main" "$(git rev-parse main)" "$(git merge-base main "paddock/$A")"
expect "only the branch's ref was added" "refs/heads/main refs/heads/paddock/$A" "$(git for-each-ref --format='%(refname)' | xargs)"
check "the fetched objects are sound (git fsck)" git fsck --no-progress --strict
expect "no marker: nothing of the sandbox's ran on the host (pull)" "" "$(markers)"
# the owner now works with the branch: their git must not pick up the agent's config
git diff --stat main "paddock/$A" >/dev/null 2>&1; git log -p -1 "paddock/$A" >/dev/null 2>&1
expect "no marker after the owner reviews the branch with git" "" "$(markers)"
out=$(pd exec "$A" -- sh -c 'echo again >> b.txt'; pd pull "$A" 2>&1); rc=$?
expect "a second pull updates the branch" "0 again" "$rc $(git show "paddock/$A:b.txt" | tail -1)"

# A bundle larger than --max-bytes.
out=$(pd up "$B" --network off 2>&1)
pd exec "$B" -- sh -c 'head -c 300000 /dev/urandom > big.bin && git add big.bin && git -c user.name=a -c user.email=a@a commit -q -m big'
out=$(pd pull "$B" --max-bytes 1k 2>&1); rc=$?
ok $((rc == 0)) "a bundle over --max-bytes is refused"; diag "$out"
contains "... with a clear error naming the flag" "raise --max-bytes" "$out"
expect "... and no branch appears" "" "$(git branch --list "paddock/$B")"
out=$(pd pull "$B" --max-bytes 10M 2>&1); rc=$?
expect "with the limit raised, it comes" "0 big" "$rc $(git log -1 --format=%s "paddock/$B" 2>&1)"

# The agent replaces git: the bundle is whatever it wants.
pd up "$C" --network off >/dev/null 2>&1
pd exec "$C" -- sh -c '
git -c user.name=a -c user.email=a@a commit -q --allow-empty -m evil
git tag owned; git bundle create -q /tmp/evil.bundle --all
mv /usr/bin/git /usr/bin/git.real
printf "#!/bin/sh\ncase \"\$*\" in *\"bundle create\"*) cat \${EVIL:-/tmp/evil.bundle} ;; *) exec /usr/bin/git.real \"\$@\" ;; esac\n" > /usr/bin/git
chmod +x /usr/bin/git' >/dev/null 2>&1
snapshot=$(git for-each-ref)
out=$(pd pull "$C" 2>&1); rc=$?
ok $((rc == 0)) "a bundle naming other refs (main) is refused"; diag "$out"
contains "... with an error naming the ref" "carries the ref 'refs/heads/main'" "$out"
pd exec "$C" -- sh -c 'head -c 5000 /dev/urandom > /tmp/evil.bundle'
out=$(pd pull "$C" 2>&1); rc=$?
ok $((rc == 0)) "a malformed bundle is refused"
contains "... as not a git bundle" "not a git bundle" "$out"
expect "... and the refs of the owner's repository did not change" "$snapshot" "$(git for-each-ref)"
expect "no marker at the end" "" "$(markers)"
cd /
check "down" pd down "$A"
pd down "$B" >/dev/null 2>&1; pd down "$C" >/dev/null 2>&1
no_leftovers "nothing of the sandboxes is left (and no export or review directory)"
finish
