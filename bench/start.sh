#!/usr/bin/env bash
# bench/start.sh: start-up cost of `paddock run ... -- true`, side by side
# with bubblewrap in ONE hyperfine run, and the paddock/bwrap ratio.
#
# Run as root from the repository root:   bash bench/start.sh
# Not part of the test suite (tests never time things).
#
# Variants (all run `true`; the cwd of every variant is a small temporary git
# repository, which only the "workspace clone" variants use):
#   bwrap                      --unshare-all (user, mount, pid, ipc, uts, net,
#                              cgroup ns), the busybox rootfs read-only as /,
#                              fresh /proc, minimal /dev, tmpfs /tmp
#   paddock busybox            --workspace none --image <busybox rootfs>
#                              (the like-for-like comparison with bwrap)
#   paddock busybox+workspace  the default workspace: a clone of the repo
#   paddock default image      --workspace none, Debian 12 image
#   bwrap default image        bwrap as above on the Debian 12 image (the
#                              reference for the default-image ratio)
#   paddock default            the issue's literal command: default image and
#                              default workspace
#
# Then a second, smaller hyperfine run of the like-for-like pair with a pause
# before every run (isolated invocations; see step 2 below).
#
# Environment: RUNS (100), WARMUP (5), SPACED_RUNS (30; 0 skips step 2),
# SPACED_PAUSE (0.25 s), PADDOCK_BIN (build/paddock, built with `make` when
# not given).
set -euo pipefail

RUNS=${RUNS:-100}
WARMUP=${WARMUP:-5}
SPACED_RUNS=${SPACED_RUNS:-30}
SPACED_PAUSE=${SPACED_PAUSE:-0.25}

# What else the machine is doing, before and after timing: hyperfine runs
# the variants one after the other, so load that comes and goes skews them.
load_note() {
	echo "# load $1: loadavg $(cut -d' ' -f1-3 /proc/loadavg)$(
		[ -r /proc/pressure/cpu ] && printf '; cpu pressure %s' "$(head -n 1 /proc/pressure/cpu)")"
}

die() {
	echo "bench/start.sh: $*" >&2
	exit 1
}

[ "$(id -u)" -eq 0 ] || die "run as root"
if [ ! -f src/sandbox/sandbox.c ] || [ ! -f tests/lib/fixtures.sh ]; then
	die "run from the repository root (bash bench/start.sh)"
fi
for tool in hyperfine bwrap git python3; do
	command -v "$tool" >/dev/null || die "$tool is not installed (apt-get install $tool)"
done

repo_root=$PWD
if [ -z "${PADDOCK_BIN:-}" ]; then
	make -s all >&2 || die "make failed"
	PADDOCK_BIN=$repo_root/build/paddock
fi
[ -x "$PADDOCK_BIN" ] || die "$PADDOCK_BIN is not executable"
PADDOCK_BIN=$(realpath "$PADDOCK_BIN")
bash tests/lib/fixtures.sh
rootfs=$repo_root/build/fixtures/rootfs
[ -x "$rootfs/bin/busybox" ] || die "no busybox rootfs at $rootfs (tests/lib/fixtures.sh failed?)"
image=${PADDOCK_STATE_DIR:-/var/lib/paddock}/images/default/rootfs

tmp=$(mktemp -d /tmp/paddock-bench-start.XXXXXX)
cleanup() {
	cd /
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# A small git repository (24 files, 2 commits) for the workspace variants.
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

# The default image must exist before timing (built once on first use).
(cd "$repo" && "$PADDOCK_BIN" run --rm --network off --workspace none -- true) ||
	die "paddock cannot run on the default image"
[ -x "$image/usr/bin/true" ] || die "the default image is not at $image"
(cd "$repo" && "$PADDOCK_BIN" run --rm --network off --image "$rootfs" -- test -f /workspace/README.md) ||
	die "paddock cannot clone the workspace"

report() { # report JSON: the table and the ratios, each paddock variant
	# against the bwrap run on the same root filesystem
	python3 - "$1" <<'EOF'
import json, sys

res = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
goal = 1.5
ref_of = {"paddock busybox": "bwrap", "paddock busybox+workspace": "bwrap",
          "paddock default image": "bwrap default image",
          "paddock default": "bwrap default image"}
print()
print("| variant | mean ± sd (ms) | median (ms) | min (ms) | reference "
      "| mean ratio | median ratio |")
print("|---|---|---|---|---|---|---|")
for name, r in res.items():
    ref = res.get(ref_of.get(name, name))
    print(f"| {name} | {r['mean']*1e3:.2f} ± {r['stddev']*1e3:.2f} | {r['median']*1e3:.2f} "
          f"| {r['min']*1e3:.2f} | {ref['command']} | {r['mean']/ref['mean']:.2f}x "
          f"| {r['median']/ref['median']:.2f}x |")
print()
for name in ("paddock busybox", "paddock default image"):
    if name not in res:
        continue
    p, ref = res[name], res[ref_of[name]]
    rm, rmed = p["mean"] / ref["mean"], p["median"] / ref["median"]
    verdict = "met" if max(rm, rmed) <= goal else "MISSED"
    print(f"{name} / {ref['command']} (--workspace none): mean {rm:.2f}x, "
          f"median {rmed:.2f}x; goal <= {goal}x: {verdict}")
EOF
}

bwrap_busybox="bwrap --unshare-all --die-with-parent --ro-bind $rootfs / --proc /proc --dev /dev --tmpfs /tmp true"
paddock_busybox="$PADDOCK_BIN run --rm --network off --workspace none --image $rootfs -- true"

echo "# machine: $(nproc) CPUs, $(uname -sr), $(hyperfine --version), $(bwrap --version)"
echo "# paddock: $PADDOCK_BIN (repository at $(git -C "$repo_root" describe --always --dirty))"
echo "# cwd: $repo (a temporary git repository, 24 files)"
cd "$repo"

# 1. Back to back: the one run with every variant.
json=$tmp/start.json
cmd=(hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$json"
	-n "bwrap" "$bwrap_busybox"
	-n "paddock busybox" "$paddock_busybox"
	-n "paddock busybox+workspace"
	"$PADDOCK_BIN run --rm --network off --image $rootfs -- true"
	-n "paddock default image"
	"$PADDOCK_BIN run --rm --network off --workspace none -- true"
	-n "paddock default"
	"$PADDOCK_BIN run --rm --network off -- true"
	-n "bwrap default image"
	"bwrap --unshare-all --die-with-parent --ro-bind $image / --proc /proc --dev /dev --tmpfs /tmp true")
echo
echo "## 1. back to back"
echo "# command line:"
printf '%q ' "${cmd[@]}"
echo
load_note before
"${cmd[@]}"
load_note after
report "$json"

# 2. Isolated invocations: a pause before every run, as when a person or an
#    agent starts one sandbox now and then. Some kernel costs (an RCU grace
#    period when a process joins a cgroup v1 hierarchy) are only paid when
#    nothing else paid them a moment before, so back-to-back runs hide them.
if [ "$SPACED_RUNS" -gt 0 ]; then
	json2=$tmp/start-spaced.json
	cmd2=(hyperfine -N --warmup 2 --runs "$SPACED_RUNS" --prepare "sleep $SPACED_PAUSE"
		--export-json "$json2"
		-n "bwrap" "$bwrap_busybox"
		-n "paddock busybox" "$paddock_busybox")
	echo
	echo "## 2. isolated invocations (sleep $SPACED_PAUSE before each run, not timed)"
	echo "# command line:"
	printf '%q ' "${cmd2[@]}"
	echo
	load_note before
	"${cmd2[@]}"
	load_note after
	report "$json2"
fi
