#!/usr/bin/env bash
# tests/escape/04-resources.sh: exhaust the host from inside. A fork bomb,
# a memory hog, fd exhaustion and a disk fill are each contained: the
# sandbox's process fails or dies, the host and paddock stay healthy, and
# nothing is left behind.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/tap.sh

# attempt DESC WANT_RC WANT CMD...: ok when CMD exits WANT_RC and the probe's
# line is WANT (a glob; a trailing " (detail)" is allowed). The probe's line
# is left in $LINE.
attempt() {
	local desc=$1 want_rc=$2 want=$3 out rc
	shift 3
	out=$("$@" 2>&1 </dev/null)
	rc=$?
	LINE=$(printf '%s\n' "$out" | grep -m1 -E '^(ok|blocked)')
	# shellcheck disable=SC2053 # $want is a pattern
	if [ "$rc" -eq "$want_rc" ] && [[ $LINE == $want || $LINE == $want" ("* ]]; then
		ok 0 "escape: $desc"
	else
		ok 1 "escape: $desc"
		diag "want: exit $want_rc, '$want'"
		diag " got: exit $rc, $(printf %q "$out" | tail -c 400)"
	fi
}
# The first number in $LINE after WORD ("after 62 forks" -> 62).
num_after() { sed -n "s/.*$1 \([0-9][0-9]*\).*/\1/p" <<<"$LINE"; }
host_forks() { for _ in $(seq 100); do /bin/true || return 1; done; }
root_used_kb() { df -Pk / | awk 'NR == 2 { print $3 }'; }

plan 19

# ---- fork bomb -----------------------------------------------------------------
attempt "a fork bomb under --pids 64 is stopped (EAGAIN)" 1 "blocked: EAGAIN (after * forks)" \
	pdrun --pids 64 -- probe forkbomb 10
n=$(num_after after)
[ -n "$n" ] && [ "$n" -lt 64 ]
ok $? "escape: it got fewer than 64 forks (got ${n:-none})"
check "the host still forks fine" host_forks
out=$(timeout 60 "$PADDOCK_BIN" run --image "$ROOTFS" --workspace none --pids 64 -- \
	sh -c 'b() { b | b & }; b; sleep 2; echo bomb-done' 2>&1 </dev/null)
rc=$?
[ "$rc" -eq 0 ] && [[ $out == *bomb-done* ]]
ok $? "escape: a shell fork bomb (b() { b | b & }) is contained and paddock returns"
[ "$rc" -eq 0 ] || diag "exit $rc: $(tail -c 300 <<<"$out")"
leak_check "after the fork bombs"

# ---- memory -----------------------------------------------------------------------
out=$(pdrun --memory 64M -- probe memhog 512 2>&1 </dev/null)
rc=$?
expect "escape: a 512 MB memory hog under --memory 64M is killed (exit 137)" 137 "$rc"
contains "paddock says the sandbox ran out of memory" "ran out of memory" "$out"
check "the host still allocates 256 MB" python3 -c 'b = bytearray(256 << 20); b[-1] = 1'
attempt "filling /dev/shm (memory, not --disk) is bounded by --memory (killed, 137)" 137 "" \
	pdrun --memory 64M --disk 32M -- probe diskfill /dev/shm/fill 200
leak_check "after the memory hogs"

# ---- file descriptors ----------------------------------------------------------------
# Bounded by RLIMIT_NOFILE, inherited from paddock's caller (the hard limit
# cannot be raised without CAP_SYS_RESOURCE), and by fs.nr_open.
attempt "fd exhaustion stops at EMFILE" 1 "blocked: EMFILE (after * fds; *)" pdrun -- probe fdbomb
diag "$LINE"
n=$(num_after after)
[ -n "$n" ] && [ "$n" -lt 1100000 ]
ok $? "escape: fewer than 1,100,000 fds could be opened (got ${n:-none})"
[[ $LINE == *"raising the hard limit refused"* ]]
ok $? "escape: the hard RLIMIT_NOFILE cannot be raised inside"
expect "paddock is healthy after the fd bomb" "alive" \
	"$(pdrun -- echo alive 2>&1 </dev/null)"
leak_check "after the fd bomb"

# ---- disk -------------------------------------------------------------------------------
# The writable layer is a tmpfs of --disk bytes: a fill stops there, and the
# host's disk never sees it.
used_before=$(root_used_kb)
attempt "filling the writable layer under --disk 32M stops with ENOSPC" 1 \
	"blocked: ENOSPC (after * MB)" pdrun --disk 32M -- probe diskfill /tmp/fill 100
mb=$(num_after after)
[ -n "$mb" ] && [ "$mb" -ge 16 ] && [ "$mb" -le 32 ]
ok $? "escape: the fill stopped near 32 MB (at ${mb:-none} MB)"
used_after=$(root_used_kb)
delta=$(((used_after - used_before) / 1024))
[ "${delta#-}" -lt 16 ]
ok $? "escape: the host's / changed by less than 16 MB ($delta MB)"
leak_check "after the disk fill"
finish
