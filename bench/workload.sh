#!/usr/bin/env bash
# bench/workload.sh: overhead of a real workload in paddock. Builds the paddock
# source itself (`make -j2 all`: the C files of src/, one static library, one
# binary) on the host and inside `paddock run`, with hyperfine, and prints the
# ratio.
#
# Run as root from the repository root:   bash bench/workload.sh
# Not part of the test suite (tests never time things).
#
# Both sides compile the same files with the same flags and the same compiler:
#   - the sandbox's image is a Debian 12 root filesystem with build-essential
#     and paddock's build dependencies, made with mmdebstrap from the host's
#     own apt sources and cached in $BENCH_ROOTFS (built once, about a
#     minute; rebuilt only when the package list below changes);
#   - the script checks that cc (the Makefile's compiler) reports the same
#     version on both sides and that `make -n -B` prints the same compile and
#     link commands;
#   - the source is src/ and Makefile of one commit (WORKLOAD_REV, default
#     HEAD: a consistent snapshot even while the working tree is being
#     edited), and the build writes to the same host directory on both
#     sides: the sandbox gets it with --workspace-mount (a read-write bind of
#     the current directory), not a copy on tmpfs, so the file system work is
#     the same;
#   - both run under the same fixed environment (env -i PATH=... LANG=...).
# Every timed run starts from an empty build directory (hyperfine --prepare),
# and the two sides are timed in alternating pairs (see step 4).
#
# Environment: RUNS (10 pairs: one build takes 1.5 to 2 s and varies by a
# few percent from run to run on a 2-CPU machine, so 5 cannot resolve a 2%
# difference), WARMUP (1 build per side), PADDOCK_BIN (build/paddock, built
# with `make` when not given), BENCH_ROOTFS
# (/var/lib/paddock/bench/rootfs-build), WORKLOAD_REV (HEAD).
set -euo pipefail

RUNS=${RUNS:-10}
WARMUP=${WARMUP:-1}
WORKLOAD_REV=${WORKLOAD_REV:-HEAD}
ROOTFS=${BENCH_ROOTFS:-/var/lib/paddock/bench/rootfs-build}
PACKAGES=build-essential,pkg-config,libseccomp-dev,libyaml-dev,libjansson-dev,libarchive-dev,libssl-dev
STD_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# The sandbox's uid for the workspace owner: the bind is idmapped so that the
# owner of the directory is root inside (a root-owned source would be mounted
# unmapped, and the sandbox could not write to it).
OWNER=65534

# What else the machine is doing, before and after timing: hyperfine runs
# the variants one after the other, so load that comes and goes skews them.
load_note() {
	echo "# load $1: loadavg $(cut -d' ' -f1-3 /proc/loadavg)$(
		[ -r /proc/pressure/cpu ] && printf '; cpu pressure %s' "$(head -n 1 /proc/pressure/cpu)")"
}

die() {
	echo "bench/workload.sh: $*" >&2
	exit 1
}

[ "$(id -u)" -eq 0 ] || die "run as root"
if [ ! -f src/sandbox/sandbox.c ] || [ ! -f Makefile ]; then
	die "run from the repository root (bash bench/workload.sh)"
fi
for tool in hyperfine python3 make cc git tar; do
	command -v "$tool" >/dev/null || die "$tool is not installed"
done

repo_root=$PWD
if [ -z "${PADDOCK_BIN:-}" ]; then
	make -s all >&2 || die "make failed"
	PADDOCK_BIN=$repo_root/build/paddock
fi
[ -x "$PADDOCK_BIN" ] || die "$PADDOCK_BIN is not executable"
PADDOCK_BIN=$(realpath "$PADDOCK_BIN")

tmp=$(mktemp -d /tmp/paddock-bench-workload.XXXXXX)
build_tmp=
cleanup() {
	cd /
	rm -rf "$tmp"
	if [ -n "$build_tmp" ]; then
		rm -rf "$build_tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# 1. The build image, cached. mmdebstrap runs in a private mount namespace so
#    the mounts it makes in the target can never be left on the host.
stamp=$ROOTFS.packages
if [ -x "$ROOTFS/usr/bin/gcc" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$PACKAGES" ]; then
	echo "# build image: $ROOTFS (cached)"
else
	command -v mmdebstrap >/dev/null || die "mmdebstrap is not installed (apt-get install mmdebstrap)"
	sources=()
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
		if [ -f "$f" ] && [ -s "$f" ]; then
			sources+=("$f")
		fi
	done
	[ ${#sources[@]} -gt 0 ] || sources=("deb http://deb.debian.org/debian bookworm main")
	echo "# building the build image in $ROOTFS with mmdebstrap (once)" >&2
	mkdir -p "$(dirname "$ROOTFS")"
	build_tmp=$(mktemp -d "$(dirname "$ROOTFS")/.rootfs-build.XXXXXX")
	unshare --mount --propagation private \
		mmdebstrap --mode=root --variant=minbase --format=directory --include="$PACKAGES" \
		bookworm "$build_tmp/rootfs" "${sources[@]}" </dev/null >"$build_tmp/log" 2>&1 ||
		die "mmdebstrap failed; last lines of its log:$(printf '\n'; tail -n 5 "$build_tmp/log")"
	rm -rf "$ROOTFS" "$stamp"
	mv "$build_tmp/rootfs" "$ROOTFS"
	printf '%s\n' "$PACKAGES" >"$stamp"
	rm -rf "$build_tmp"
	build_tmp=
fi

# 2. The project: src/ and Makefile at WORKLOAD_REV, owned by $OWNER.
rev=$(git rev-parse --short=12 "$WORKLOAD_REV^{commit}") || die "no commit $WORKLOAD_REV"
src=$tmp/src
mkdir -p "$src"
git archive "$rev" -- src Makefile | tar -x -C "$src"
chown -R "$OWNER:$OWNER" "$tmp"
cd "$src"

host_env=(env -i "PATH=$STD_PATH" HOME=/root LANG=C.UTF-8)
sandbox=("$PADDOCK_BIN" run --rm --network off --image "$ROOTFS" --workspace-mount --)

# 3. Same compiler, same commands.
host_cc=$("${host_env[@]}" cc --version | sed -n 1p)
sandbox_cc=$("${host_env[@]}" "${sandbox[@]}" cc --version | sed -n 1p)
echo "# compiler: host: $host_cc; sandbox: $sandbox_cc"
[ "$host_cc" = "$sandbox_cc" ] || die "the compilers differ: '$host_cc' vs '$sandbox_cc'"
"${host_env[@]}" make -n -B BUILD=out all >"$tmp/host.cmds"
"${host_env[@]}" "${sandbox[@]}" make -n -B BUILD=out all >"$tmp/sandbox.cmds"
if ! cmp -s "$tmp/host.cmds" "$tmp/sandbox.cmds"; then
	diff "$tmp/host.cmds" "$tmp/sandbox.cmds" >&2 || true
	die "make -n -B prints different commands on the two sides (see the diff above)"
fi
echo "# make -n -B: the same $(grep -c '' "$tmp/host.cmds") commands on both sides"
# A real build on each side must succeed before anything is timed.
"${host_env[@]}" make -s -j2 BUILD=out all ||
	die "the build of $rev fails on the host; set WORKLOAD_REV to a commit that builds"
rm -rf out
"${host_env[@]}" "${sandbox[@]}" make -s -j2 BUILD=out all || die "the build fails in paddock"
rm -rf out

# 4. Time it, in pairs. One build is long (1.5 to 2 s) and this machine's
#    speed drifts over tens of seconds (other jobs, the hypervisor, page
#    cache reclaim), so one hyperfine run of all host builds followed by all
#    paddock builds turns drift into a difference of several percent either
#    way. Instead: RUNS hyperfine runs of one build per side, the order
#    swapped every time, and the ratio taken within each pair.
host_cmd="${host_env[*]} make -s -j2 BUILD=out all"
paddock_cmd="${host_env[*]} ${sandbox[*]} make -s -j2 BUILD=out all"
pair() { # pair N: one hyperfine run of both commands, N odd: paddock first
	local first=(-n host "$host_cmd") second=(-n paddock "$paddock_cmd")
	if [ $(($1 % 2)) -eq 1 ]; then
		first=(-n paddock "$paddock_cmd")
		second=(-n host "$host_cmd")
	fi
	cmd=(hyperfine -N --style basic --runs 1 --prepare "rm -rf $src/out"
		--export-json "$tmp/pair-$1.json" "${first[@]}" "${second[@]}")
}
echo "# machine: $(nproc) CPUs, $(uname -sr), $(hyperfine --version)"
echo "# paddock: $PADDOCK_BIN; workload: src/ and Makefile of $rev; cwd: $src"
pair 0
echo "# $RUNS pairs, the order swapped in every other one; command line of pair 0:"
printf '%q ' "${cmd[@]}"
echo
for i in $(seq 1 "$WARMUP"); do # warm the page cache on both sides
	rm -rf out
	"${host_env[@]}" make -s -j2 BUILD=out all
	rm -rf out
	"${host_env[@]}" "${sandbox[@]}" make -s -j2 BUILD=out all
done
rm -rf out
load_note before
for i in $(seq 0 $((RUNS - 1))); do
	pair "$i"
	"${cmd[@]}" >/dev/null
done
load_note after

python3 - "$tmp" "$RUNS" <<'EOF'
import json, math, statistics as st, sys

times = {"host": [], "paddock": []}
ratios = []
for i in range(int(sys.argv[2])):
    res = {r["command"]: r["times"][0] for r in
           json.load(open(f"{sys.argv[1]}/pair-{i}.json"))["results"]}
    for k in times:
        times[k].append(res[k])
    ratios.append(res["paddock"] / res["host"])
goal = 2.0
print()
print("| side | mean ± sd (s) | median (s) | min (s) | max (s) | runs |")
print("|---|---|---|---|---|---|")
for k, t in times.items():
    print(f"| {k} | {st.mean(t):.3f} ± {st.stdev(t):.3f} | {st.median(t):.3f} "
          f"| {min(t):.3f} | {max(t):.3f} | {len(t)} |")
n = len(ratios)
over = (st.mean(ratios) - 1) * 100
se = st.stdev(ratios) / math.sqrt(n) * 100
over_median = (st.median(ratios) - 1) * 100
# A verdict only when the noise allows one: two standard errors either side.
if over + 2 * se < goal:
    verdict = "met"
elif over - 2 * se >= goal:
    verdict = "MISSED"
else:
    verdict = (f"inconclusive (the noise, ±{2 * se:.1f}% at two s.e., is larger than the "
               f"goal; rerun on a quieter machine or with more RUNS)")
print()
print(f"paddock/host, paired: mean of {n} ratios {st.mean(ratios):.3f} ({over:+.1f}% ± {se:.1f}% "
      f"s.e.), median {st.median(ratios):.3f} ({over_median:+.1f}%); ratio of the means "
      f"{st.mean(times['paddock']) / st.mean(times['host']):.3f}; goal < {goal:.0f}%: {verdict}")
EOF
