#!/usr/bin/env bash
# bench/daemon.sh: issue 4's benchmark. Against a private paddockd (its own
# socket and database in a temporary directory; the system's daemon, if any,
# is not touched):
#
#   1. exec latency: `paddock exec NAME -- true` into a running sandbox,
#      side by side in ONE hyperfine run with `bwrap ... true` and
#      `paddock run --workspace none --image <busybox rootfs> -- true`
#      (the same busybox rootfs as bench/start.sh), and the same three on
#      the default Debian 12 image. Goal: exec p50 <= 3 ms.
#   2. up latency on a cached image: `paddock up` (default image,
#      --workspace none; and with the default workspace, a clone of a small
#      git repository), each timed alone (the `down` is hyperfine's untimed
#      --prepare) and as `up && down`, with `paddock run` and bwrap on the
#      same image as the peers, in ONE hyperfine run.
#   3. memory per idle sandbox: N (20) idle sandboxes up at once; the daemon's
#      VmRSS delta, what the sandboxes' own processes and cgroups hold, and
#      the kernel's (Slab + KernelStack + PageTables, and MemAvailable) delta,
#      divided by N. Goal: <= 1 MiB per sandbox.
#
# Run as root from the repository root:   bash bench/daemon.sh
# Not part of the test suite (tests never time things).
# Sandboxes are up with --network off (bwrap and `paddock run` peers have no
# network either); MEM_NETWORK=filtered measures the memory with the egress
# plumbing. Environment: RUNS (200), UP_RUNS (30), WARMUP (5), MEM_N (20),
# PADDOCK_BIN / PADDOCKD_BIN (build/..., built with `make` when not given).
set -euo pipefail

RUNS=${RUNS:-200}
UP_RUNS=${UP_RUNS:-30}
WARMUP=${WARMUP:-5}
MEM_N=${MEM_N:-20}

load_note() {
	echo "# load $1: loadavg $(cut -d' ' -f1-3 /proc/loadavg)$(
		[ -r /proc/pressure/cpu ] && printf '; cpu pressure %s' "$(head -n 1 /proc/pressure/cpu)")"
}
die() {
	echo "bench/daemon.sh: $*" >&2
	exit 1
}

[ "$(id -u)" -eq 0 ] || die "run as root"
[ -f src/daemon/main.c ] && [ -f tests/lib/fixtures.sh ] || die "run from the repository root"
for tool in hyperfine bwrap git python3; do
	command -v "$tool" >/dev/null || die "$tool is not installed"
done
repo_root=$PWD
if [ -z "${PADDOCK_BIN:-}" ]; then
	make -s all >&2 || die "make failed"
	PADDOCK_BIN=$repo_root/build/paddock
	PADDOCKD_BIN=$repo_root/build/paddockd
fi
PADDOCKD_BIN=${PADDOCKD_BIN:-$(dirname "$PADDOCK_BIN")/paddockd}
PADDOCK_BIN=$(realpath "$PADDOCK_BIN")
PADDOCKD_BIN=$(realpath "$PADDOCKD_BIN")
bash tests/lib/fixtures.sh
rootfs=$repo_root/build/fixtures/rootfs
[ -x "$rootfs/bin/busybox" ] || die "no busybox rootfs at $rootfs"
image=${PADDOCK_STATE_DIR:-/var/lib/paddock}/images/default/rootfs

tmp=$(mktemp -d /tmp/paddock-bench-daemon.XXXXXX)
chmod 755 "$tmp"
export PADDOCK_SOCKET=$tmp/pd.sock
P=$PADDOCK_BIN
pre=pdb$$ # name prefix: unique to this run
dpid=
cleanup() {
	set +e
	cd /
	if [ -n "$dpid" ] && kill -0 "$dpid" 2>/dev/null; then
		for n in $("$P" ls 2>/dev/null | awk -v p="$pre" 'index($1, p) == 1 {print $1}'); do
			"$P" down "$n" >/dev/null 2>&1
		done
		kill "$dpid"
		wait "$dpid" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# A small git repository (24 files, 2 commits), as in bench/start.sh.
repo=$tmp/repo
mkdir -p "$repo/src" "$repo/docs"
for i in $(seq 1 20); do
	printf 'int f%d(int x) { return x + %d; }\n' "$i" "$i" >"$repo/src/f$i.c"
done
printf '# demo\n' >"$repo/README.md"
printf 'all:\n\tcc -c src/*.c\n' >"$repo/Makefile"
printf '*.o\n' >"$repo/.gitignore"
printf 'notes\n' >"$repo/docs/notes.md"
(
	cd "$repo"
	export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@localhost
	export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@localhost
	git init -q .
	git add -A
	git -c commit.gpgSign=false commit -q -m "first"
	printf 'more\n' >>docs/notes.md
	git -c commit.gpgSign=false commit -q -am "second"
)

"$PADDOCKD_BIN" --socket "$PADDOCK_SOCKET" --db "$tmp/pd.db" 2>"$tmp/paddockd.log" &
dpid=$!
for _ in $(seq 50); do [ -S "$PADDOCK_SOCKET" ] && break; sleep 0.1; done
[ -S "$PADDOCK_SOCKET" ] || die "paddockd did not start: $(cat "$tmp/paddockd.log")"
cd "$repo"
(cd "$repo" && "$P" run --rm --network off --workspace none -- true) || die "no default image"
[ -x "$image/usr/bin/true" ] || die "the default image is not at $image"

echo "# machine: $(nproc) CPUs, $(uname -sr), $(hyperfine --version), $(bwrap --version)"
echo "# paddock: $PADDOCK_BIN, paddockd: $PADDOCKD_BIN (repository at $(git -C "$repo_root" describe --always --dirty))"
echo "# private paddockd pid $dpid, PADDOCK_SOCKET=$PADDOCK_SOCKET; cwd $repo (a 24-file git repository)"

report() { # report JSON: mean, sd, median, p90 and ratios against the named reference
	python3 - "$@" <<'EOF'
import json, sys
res = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
refs = dict(a.split("=", 1) for a in sys.argv[2:])
def pct(t, q):
    t = sorted(t); k = (len(t) - 1) * q; f = int(k); c = min(f + 1, len(t) - 1)
    return t[f] + (t[c] - t[f]) * (k - f)
print()
print("| variant | mean ± sd (ms) | p50 (ms) | p90 (ms) | min (ms) | reference | mean ratio | p50 ratio |")
print("|---|---|---|---|---|---|---|---|")
for name, r in res.items():
    ref = res[refs.get(name, name)]
    print(f"| {name} | {r['mean']*1e3:.2f} ± {r['stddev']*1e3:.2f} | {r['median']*1e3:.2f} "
          f"| {pct(r['times'], 0.9)*1e3:.2f} | {r['min']*1e3:.2f} | {ref['command']} "
          f"| {r['mean']/ref['mean']:.2f}x | {r['median']/ref['median']:.2f}x |")
EOF
}

# ---- 1. exec latency -------------------------------------------------------
"$P" up "$pre-busy" --image "$rootfs" --workspace none --network off >/dev/null
"$P" up "$pre-deb" --workspace none --network off >/dev/null
"$P" exec "$pre-busy" -- true && "$P" exec "$pre-deb" -- true || die "paddock exec fails"
bwrap_opts="--unshare-all --die-with-parent"
json=$tmp/exec.json
cmd=(hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$json"
	-n "bwrap busybox" "bwrap $bwrap_opts --ro-bind $rootfs / --proc /proc --dev /dev --tmpfs /tmp true"
	-n "paddock exec busybox" "$P exec $pre-busy -- true"
	-n "paddock run busybox" "$P run --rm --network off --workspace none --image $rootfs -- true"
	-n "bwrap default image" "bwrap $bwrap_opts --ro-bind $image / --proc /proc --dev /dev --tmpfs /tmp true"
	-n "paddock exec default image" "$P exec $pre-deb -- true"
	-n "paddock run default image" "$P run --rm --network off --workspace none -- true")
echo
echo "## 1. exec latency"
echo "# command line:"
printf '%q ' "${cmd[@]}"
echo
load_note before
"${cmd[@]}"
load_note after
report "$json" "paddock exec busybox=bwrap busybox" "paddock run busybox=bwrap busybox" \
	"paddock exec default image=bwrap default image" "paddock run default image=bwrap default image"
python3 - "$json" <<'EOF'
import json, sys
res = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
for n in ("paddock exec busybox", "paddock exec default image"):
    p50 = res[n]["median"] * 1e3
    print(f"{n}: p50 {p50:.2f} ms; goal <= 3 ms: {'met' if p50 <= 3 else 'MISSED by %.2f ms' % (p50 - 3)}")
EOF
echo "# daemon after the exec runs: $("$P" daemon-status)"
"$P" down "$pre-busy" >/dev/null
"$P" down "$pre-deb" >/dev/null

# ---- 2. up latency ---------------------------------------------------------
json=$tmp/up.json
u1=$pre-up1 u2=$pre-up2 u3=$pre-up3 u4=$pre-up4
cmd=(hyperfine -N --warmup 2 --runs "$UP_RUNS" --export-json "$json"
	-n "bwrap default image" --prepare true
	"bwrap $bwrap_opts --ro-bind $image / --proc /proc --dev /dev --tmpfs /tmp true"
	-n "paddock run default image" --prepare true
	"$P run --rm --network off --workspace none -- true"
	-n "paddock up default image" --prepare "sh -c '$P down $u1 >/dev/null 2>&1; true'"
	"$P up $u1 --workspace none --network off"
	-n "paddock up+down default image" --prepare true
	"sh -c '$P up $u2 --workspace none --network off >/dev/null && $P down $u2'"
	-n "paddock run workspace" --prepare true
	"$P run --rm --network off -- true"
	-n "paddock up workspace" --prepare "sh -c '$P down $u3 >/dev/null 2>&1; true'"
	"$P up $u3 --network off"
	-n "paddock up+down workspace" --prepare true
	"sh -c '$P up $u4 --network off >/dev/null && $P down $u4'")
echo
echo "## 2. up latency (cached image)"
echo "# command line:"
printf '%q ' "${cmd[@]}"
echo
load_note before
"${cmd[@]}"
load_note after
"$P" down "$u1" >/dev/null 2>&1 || true
"$P" down "$u3" >/dev/null 2>&1 || true
report "$json" "paddock run default image=bwrap default image" \
	"paddock up default image=bwrap default image" "paddock up+down default image=bwrap default image" \
	"paddock up workspace=paddock run workspace" "paddock up+down workspace=paddock run workspace"
# `down` alone: the +down variants minus the up variants, and a direct sample
python3 - "$json" <<'EOF'
import json, sys
res = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
for k in ("default image", "workspace"):
    d = res[f"paddock up+down {k}"]["median"] - res[f"paddock up {k}"]["median"]
    print(f"down ({k}), p50 of up+down minus p50 of up: {d*1e3:.2f} ms")
EOF

# ---- 3. memory per idle sandbox --------------------------------------------
meminfo() { # key... -> values in KiB
	for k in "$@"; do awk -v k="$k:" '$1 == k {print $2}' /proc/meminfo; done
}
kern() { meminfo Slab KernelStack PageTables | awk '{s += $1} END {print s}'; }
rss() { awk '/^VmRSS:/{print $2}' "/proc/$1/status"; }
snapshot() { # label
	echo "$1 $(rss "$dpid") $(kern) $(meminfo MemAvailable) $(meminfo Slab) $(meminfo KernelStack) $(meminfo PageTables) $(meminfo Shmem)"
}
echo
echo "## 3. memory per idle sandbox ($MEM_N sandboxes, busybox image, --workspace none)"
echo "# columns: label, paddockd VmRSS, Slab+KernelStack+PageTables, MemAvailable, Slab, KernelStack, PageTables, Shmem (KiB)"
sync
sleep 2
s0=$(snapshot idle-a)
sleep 5
s1=$(snapshot idle-b) # noise: nothing happened between a and b
echo "$s0"
echo "$s1"
for i in $(seq 1 "$MEM_N"); do
	"$P" up "$pre-m$i" --image "$rootfs" --workspace none --network "${MEM_NETWORK:-off}" >/dev/null
done
sleep 5
s2=$(snapshot "up-$MEM_N")
echo "$s2"
# every process that belongs to one of our sandboxes: the daemon's children
# (pid 1 of each sandbox, shims) and their descendants
procs=$(ps -e -o pid=,ppid= | awk -v d="$dpid" '
	{ par[$1] = $2 } END { for (p in par) { q = p; while (q in par && q != d && q > 1) q = par[q]; if (q == d && p != d) print p } }')
echo "# processes under paddockd: $(echo "$procs" | wc -w)"
pss=0
uss=0
for p in $procs; do
	v=$(awk '/^Pss:/{s += $2} END {print s + 0}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
	pss=$((pss + v))
	v=$(awk '/^Private_(Clean|Dirty):/{s += $2} END {print s + 0}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
	uss=$((uss + v))
done
echo "# their PSS, all together: $pss KiB; their private memory (USS, what goes when they go): $uss KiB"
echo "# one of them: $(ps -o pid=,comm=,rss= -p "$(echo "$procs" | head -n1)")"
cgs=$(for p in $procs; do awk -F: '$2 == "memory" {print $3}' "/proc/$p/cgroup"; done | sort -u)
cgmem=0
cgrss=0
cgcache=0
ncg=0
for c in $cgs; do
	d=/sys/fs/cgroup/memory$c
	[ -r "$d/memory.usage_in_bytes" ] || continue
	case "$c" in /) continue ;; esac
	ncg=$((ncg + 1))
	cgmem=$((cgmem + $(cat "$d/memory.usage_in_bytes")))
	cgrss=$((cgrss + $(awk '$1 == "total_rss" {print $2}' "$d/memory.stat")))
	cgcache=$((cgcache + $(awk '$1 == "total_cache" {print $2}' "$d/memory.stat")))
	[ "$ncg" = 1 ] && { echo "# one sandbox's memory cgroup: $c"; grep -E '^total_(rss|cache|shmem|mapped_file|kernel_stack) ' "$d/memory.stat" | sed 's/^/#   /' || true; [ -r "$d/memory.kmem.usage_in_bytes" ] && echo "#   kmem.usage_in_bytes $(cat "$d/memory.kmem.usage_in_bytes")"; }
done
echo "# $ncg memory cgroups: usage_in_bytes $cgmem (rss $cgrss, cache $cgcache)"
for i in $(seq 1 "$MEM_N"); do
	"$P" down "$pre-m$i" >/dev/null
done
sleep 5
s3=$(snapshot down)
echo "$s3"
python3 - "$MEM_N" "$s0" "$s1" "$s2" "$s3" "$cgmem" "$pss" "$ncg" "$uss" "$cgcache" <<'EOF'
import sys
uss, cgcache = int(sys.argv[9]), int(sys.argv[10]) / 1024
n = int(sys.argv[1])
snap = [list(map(int, s.split()[1:])) for s in sys.argv[2:6]]
cgmem, pss, ncg = int(sys.argv[6]) / 1024, int(sys.argv[7]), int(sys.argv[8])
a, b, up, down = snap
names = ["paddockd VmRSS", "Slab+KernelStack+PageTables", "MemAvailable (drop)", "Slab", "KernelStack", "PageTables", "Shmem"]
print()
print(f"| per idle sandbox (KiB), N = {n} | up - idle | idle noise (5 s, nothing done) / N | down - idle |")
print("|---|---|---|---|")
for i, name in enumerate(names):
    sign = -1 if "MemAvailable" in name else 1
    print(f"| {name} | {sign*(up[i]-b[i])/n:.0f} | {sign*(b[i]-a[i])/n:.0f} | {sign*(down[i]-b[i])/n:.0f} |")
print(f"| memory cgroups' usage_in_bytes ({ncg} cgroups) | {cgmem/n:.0f} | | |")
print(f"| PSS of the sandboxes' processes | {pss/n:.0f} | | |")
print(f"| USS (private memory) of the sandboxes' processes | {uss/n:.0f} | | |")
print(f"| page cache and tmpfs charged to their cgroups | {cgcache/n:.0f} | | |")
rssd = (up[0] - b[0]) / n
kern = (up[1] - b[1]) / n
# cgroup usage overlaps both the processes' memory (rss) and, with kmem
# accounting, the kernel's slab; so: daemon + processes' USS + kernel + cache
total = rssd + uss / n + kern + cgcache / n
print()
print(f"daemon RSS delta + sandbox processes' USS + kernel objects (Slab+KernelStack+PageTables) "
      f"+ page cache charged to the sandboxes: {total:.0f} KiB per sandbox "
      f"({total/1024:.2f} MiB); goal <= 1024 KiB: {'met' if total <= 1024 else 'MISSED'}")
print(f"MemAvailable drop per sandbox: {(b[2]-up[2])/n:.0f} KiB")
EOF
echo "# daemon at the end: $("$P" daemon-status)"
