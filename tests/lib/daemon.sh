# tests/lib/daemon.sh: a private paddockd for one test file, sourced after
# tap.sh. Sandboxes still live in the shared state directory
# (/var/lib/paddock/sandboxes/NAME, cgroups paddock/sb-NAME), so every name
# a test uses starts with $SBP, unique to this run, and the checks below look
# only at those.
#
#   daemon_start [ARGS]   start paddockd on $DSOCK/$DDB; $DPID is its pid
#   daemon_stop [SIG]     SIGTERM (or SIG) it and wait until it is gone
#   sb_pid1 NAME          pid 1 of a running sandbox (from paddock ls --json)
#   sb_leftovers          what is left of our sandboxes on the host, as text
#   daemon_cleanup        trap handler: down everything of ours, stop the
#                         daemon, and remove by hand whatever remains
#   jq_py EXPR            evaluate a Python expression on JSON from stdin (j)
DT=$(mktemp -d /var/tmp/pdd.XXXXXX)
SBP=t$$-
DSOCK=$DT/pd.sock
DDB=$DT/pd.db
DPID=
# Private copies of the binaries: a rebuild of the tree during the test does
# not change them under us, and paddockd is not next to this paddock, so the
# CLI cannot start a daemon of its own (on the default database) while ours
# is down. BUILD_BIN is the tree's, for the test of exactly that.
BUILD_BIN=$(dirname "$PADDOCK_BIN")
mkdir -p "$DT/bin" "$DT/sbin"
cp "$BUILD_BIN/paddock" "$BUILD_BIN/paddock-run" "$DT/bin/" &&
	cp "$BUILD_BIN/paddockd" "$BUILD_BIN/paddock-egress" "$DT/sbin/" ||
	{ echo "Bail out! cannot copy the binaries from $BUILD_BIN"; exit 1; }
PADDOCK_BIN=$DT/bin/paddock
PADDOCKD=$DT/sbin/paddockd
SBDIR=${PADDOCK_STATE_DIR:-/var/lib/paddock}/sandboxes
export PADDOCK_SOCKET=$DSOCK

# (never ask the CLI before the socket is there: with nothing listening, it
# would start a daemon of its own, on the default database)
daemon_start() {
	: >"$DT/paddockd.out"
	"$PADDOCKD" --socket "$DSOCK" --db "$DDB" "$@" >"$DT/paddockd.out" 2>&1 &
	DPID=$!
	local i
	for i in $(seq 200); do
		grep -q "paddockd: serving" "$DT/paddockd.out" && [ -S "$DSOCK" ] && break
		kill -0 "$DPID" 2>/dev/null || { cat "$DT/paddockd.out" >>"$DT/paddockd.log"; DPID=; return 1; }
		sleep 0.05
	done
	cat "$DT/paddockd.out" >>"$DT/paddockd.log"
	pd daemon-status >/dev/null 2>&1
}

daemon_stop() {
	[ -n "$DPID" ] || return 0
	kill -"${1:-TERM}" "$DPID" 2>/dev/null
	local i
	for i in $(seq 100); do
		kill -0 "$DPID" 2>/dev/null || break
		sleep 0.05
	done
	wait "$DPID" 2>/dev/null
	DPID=
}

# is PID a live (not zombie) paddock-init?
init_alive() {
	[ "$(cat /proc/"$1"/comm 2>/dev/null)" = paddock-init ] &&
		[ "$(awk '{print $3}' /proc/"$1"/stat 2>/dev/null)" != Z ]
}

jq_py() { python3 -c "import json,sys; j=json.load(sys.stdin); print($1)"; }

sb_pid1() { pd ls --json | jq_py "[s['pid'] for s in j if s['name']=='$1'][0]"; }

# paddock-init and paddock-shim processes of ours: in one of our cgroups, or
# children of our daemon, or a pid we were told about in $SB_PIDS.
sb_procs() {
	local p comm
	for p in /proc/[0-9]*; do
		comm=$(cat "$p/comm" 2>/dev/null) || continue
		case $comm in paddock-init | paddock-shim) ;; *) continue ;; esac
		# a zombie waits for its parent (the host's init, after a restart)
		[ "$(awk '{print $3}' "$p/stat" 2>/dev/null)" = Z ] && continue
		if grep -q "/paddock/sb-$SBP" "$p/cgroup" 2>/dev/null ||
			{ [ -n "$DPID" ] && [ "$(awk '{print $4}' "$p/stat" 2>/dev/null)" = "$DPID" ]; } ||
			case " ${SB_PIDS:-} " in *" ${p#/proc/} "*) true ;; *) false ;; esac; then
			echo "process ${p#/proc/} $comm"
		fi
	done
}

sb_leftovers() {
	find /sys/fs/cgroup -maxdepth 4 -type d -name "sb-$SBP*" 2>/dev/null | sed 's/^/cgroup /'
	ls -d "$SBDIR/$SBP"* 2>/dev/null | sed 's/^/directory /'
	grep -F "$SBDIR/$SBP" /proc/self/mountinfo | sed 's/^/mount /'
	sb_procs
	ls -d /tmp/paddock-export-* 2>/dev/null | sed 's/^/export dir /'
}

# ok when nothing of ours is left (waits up to 3 s for stragglers)
no_leftovers() {
	local left i
	for i in $(seq 10); do
		left=$(sb_leftovers)
		[ -z "$left" ] && break
		sleep 0.3
	done
	if [ -z "$left" ]; then ok 0 "$1"; else ok 1 "$1"; echo "$left" | head -20 | sed 's/^/# left: /'; fi
}

daemon_cleanup() {
	local n cg p
	# a daemon the CLI started on our socket by mistake
	for p in $(pgrep -f -- "--socket $DSOCK"); do [ "$p" = "$DPID" ] || kill -TERM "$p"; done
	if [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; then
		for n in $(pd ls --json 2>/dev/null | jq_py "' '.join(s['name'] for s in j)" 2>/dev/null); do
			case $n in "$SBP"*) timeout 20 "$PADDOCK_BIN" down "$n" >/dev/null 2>&1 ;; esac
		done
		daemon_stop TERM
	fi
	# by hand: processes, cgroups, directories
	for cg in $(find /sys/fs/cgroup -maxdepth 4 -depth -type d -name "sb-$SBP*" 2>/dev/null); do
		for p in $(cat "$cg"/cgroup.procs "$cg"/tasks 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
	done
	for p in ${SB_PIDS:-}; do
		case $(cat /proc/"$p"/comm 2>/dev/null) in paddock-init | paddock-shim) kill -KILL "$p" ;; esac
	done
	sleep 0.2
	for cg in $(find /sys/fs/cgroup -maxdepth 4 -depth -type d -name "sb-$SBP*" 2>/dev/null); do
		rmdir "$cg" 2>/dev/null
	done
	for n in "$SBDIR/$SBP"*; do [ -e "$n" ] && rm -rf "$n"; done
	rm -rf "$DT"
}
