# tests/lib/tap.sh: TAP helpers and the leak check, sourced by every
# integration and escape test.
#
#   plan N                      print the plan
#   ok COND_RC "description"    report a result
#   check "desc" CMD...         ok when CMD succeeds
#   check_fails "desc" CMD...   ok when CMD fails
#   expect "desc" WANT GOT      ok when equal (shows both otherwise)
#   contains "desc" NEEDLE HAY  ok when HAY contains NEEDLE
#   leak_check "after what"     ok when paddock left nothing behind
#   pd ARGS...                  the paddock binary
set -u
: "${PADDOCK_BIN:=$PWD/build/paddock}"
: "${BUILD:=build}"
FIX=${PADDOCK_FIXTURES:-$PWD/$BUILD/fixtures}
ROOTFS=$FIX/rootfs
T_N=0 T_FAIL=0

plan() { echo "1..$1"; }
ok() {
	T_N=$((T_N + 1))
	if [ "$1" -eq 0 ]; then echo "ok $T_N - $2"; else echo "not ok $T_N - $2"; T_FAIL=$((T_FAIL + 1)); fi
}
diag() { echo "# $*"; }
check() { local d=$1; shift; "$@" >/dev/null 2>&1; ok $? "$d"; }
check_fails() { local d=$1; shift; if "$@" >/dev/null 2>&1; then ok 1 "$d"; else ok 0 "$d"; fi; }
expect() {
	if [ "$2" = "$3" ]; then ok 0 "$1"; else ok 1 "$1"; diag "want: $(printf %q "$2")"; diag " got: $(printf %q "$3")"; fi
}
contains() {
	case "$3" in *"$2"*) ok 0 "$1" ;; *) ok 1 "$1"; diag "missing: $2"; diag "in: $(printf %s "$3" | head -c 600)" ;; esac
}
not_contains() {
	case "$3" in *"$2"*) ok 1 "$1"; diag "unexpected: $2"; diag "in: $(printf %s "$3" | head -c 600)" ;; *) ok 0 "$1" ;; esac
}
pd() { "$PADDOCK_BIN" "$@"; }
# Run a command in a sandbox on the test rootfs, with the workspace off.
pdrun() { "$PADDOCK_BIN" run --image "$ROOTFS" --workspace none "$@"; }

# What paddock may leave behind, as text; leak_check compares to the
# baseline taken when this file is sourced.
leak_state() {
	# cgroups of sandboxes (v1 hierarchies and v2)
	find /sys/fs/cgroup -maxdepth 4 -type d -path '*/paddock/*' 2>/dev/null | sort
	# mounts of the host namespace
	awk '{print $5, $9}' /proc/self/mountinfo | sort
	# network namespaces, the egress plumbing (veths, the nft table)
	ip netns list 2>/dev/null | sort
	ip -o link show 2>/dev/null | awk -F': ' '$2 ~ /^pd[0-9]/ {print "veth " $2}' | sed 's/@.*//'
	nft list table inet paddock >/dev/null 2>&1 && echo "nft table inet paddock"
	# processes running paddock's binaries (the CLI, the gateway)
	local bindir; bindir=$(dirname "$(readlink -f "$PADDOCK_BIN")")
	for p in /proc/[0-9]*; do
		case "$(readlink "$p/exe" 2>/dev/null)" in
		"$bindir/paddock"|"$bindir/paddock-run"|"$bindir/paddock-egress") echo "process ${p#/proc/} $(cat "$p/comm" 2>/dev/null)" ;;
		esac
	done
	# temporary directories
	ls -d /tmp/paddock* /var/tmp/paddock* 2>/dev/null
	ls -A "${PADDOCK_STATE_DIR:-/var/lib/paddock}/tmp" 2>/dev/null
}
LEAK_BASE=$(leak_state)
# What exists now that did not at the start (things that disappeared, e.g.
# stale cgroups collected meanwhile, are not leaks).
leak_new() { comm -13 <(echo "$LEAK_BASE" | sort) <(leak_state | sort); }
leak_check() {
	local new i
	for i in 1 2 3 4 5 6 7 8 9 10; do
		new=$(leak_new)
		[ -z "$new" ] && break
		sleep 0.3
	done
	if [ -z "$new" ]; then ok 0 "nothing left behind ${1:-}"; else
		ok 1 "nothing left behind ${1:-}"; echo "$new" | sed 's/^/# left: /' | head -20
	fi
}
finish() { [ "$T_FAIL" -eq 0 ]; }
