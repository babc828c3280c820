#!/usr/bin/env bash
# paddock image build / ls / rm / prune on a small image (Debian 12 + hello),
# in a state directory of its own so that the first build is a real one:
# a build from paddock.yaml, a cache hit that runs nothing, the same image
# from flags, a sandbox from it, --verify, a failing run: step, bad specs.
set -u
tmp=$(mktemp -d /var/tmp/pdtest-image.XXXXXX)
export PADDOCK_STATE_DIR=$tmp/state
. tests/lib/tap.sh
trap 'rm -rf "$tmp"' EXIT
plan 38

mkdir -p "$tmp/repo" "$tmp/empty" "$tmp/bad"
cat >"$tmp/repo/paddock.yaml" <<'EOF'
image:
  base: debian:bookworm
  packages: [hello]
EOF
cd "$tmp/empty"

# 1. The first build: one plain progress line per step (stderr is no tty).
out=$(pd image build "$tmp/repo" 2>"$tmp/err1"); rc=$?
expect "the first build exits 0" 0 $rc
rootfs=$out dir=${out%/rootfs} digest=${dir##*/}
expect "it prints the image's rootfs path" "$PADDOCK_STATE_DIR/images/$digest/rootfs" "$out"
contains "progress: a line per step" "paddock: [1/3] debian:bookworm with mmdebstrap: hello" "$(cat "$tmp/err1")"
contains "... the last one" "paddock: [3/3] computing the tree digest" "$(cat "$tmp/err1")"
check "the cache entry is complete: ok, build.log, meta.json, tree.sha256, tree.manifest" \
	test -f "$dir/ok" -a -f "$dir/build.log" -a -f "$dir/meta.json" -a -f "$dir/tree.sha256" \
	-a -f "$dir/tree.manifest"
check "the build's temporary trees are gone" test -z "$(ls -A "$dir" | grep '^\.tmp')"

# 2. The same spec again: a cache hit, nothing run, the log untouched.
log_before=$(stat -c %y "$dir/build.log")
out=$(pd image build "$tmp/repo" 2>"$tmp/err2"); rc=$?
expect "the second build exits 0" 0 $rc
expect "... with the same path" "$rootfs" "$out"
contains "... and says it is a cache hit" "image ${digest:0:12}: cache hit" "$(cat "$tmp/err2")"
not_contains "... without running a step" "[1/" "$(cat "$tmp/err2")"
expect "... build.log is not rewritten" "$log_before" "$(stat -c %y "$dir/build.log")"
out=$(pd image build --no-spec --package hello --base debian:12 2>/dev/null)
expect "the same spec from flags (another spelling of the base) is the same image" "$rootfs" "$out"

# 3. The image: hello runs in a sandbox from it; what step 4 cleaned is clean.
out=$(pd run --image "$rootfs" --workspace none -- hello 2>&1); rc=$?
expect "paddock run --image <built image> -- hello" "0 Hello, world!" "$rc $out"
expect "/etc/hostname is paddock, /etc/machine-id is empty" "paddock|" \
	"$(cat "$rootfs/etc/hostname")|$(cat "$rootfs/etc/machine-id")"
check "no apt lists, nothing in /tmp, every log empty" \
	test -z "$(find "$rootfs/var/lib/apt/lists" "$rootfs/tmp" ! -type d
		find "$rootfs/var/log" -type f ! -empty)"
check "/etc/resolv.conf is the placeholder, not the host's" grep -q '^# paddock' "$rootfs/etc/resolv.conf"
expect "no mtime is later than SOURCE_DATE_EPOCH" "" "$(find "$rootfs" -newermt @1700000000 | head -3)"
expect "tree.sha256 is the SHA-256 of tree.manifest" "$(sha256sum <"$dir/tree.manifest" | cut -d' ' -f1)" \
	"$(cat "$dir/tree.sha256")"

# 4. ls.
out=$(pd image ls 2>&1); rc=$?
expect "image ls exits 0" 0 $rc
contains "... and lists the image with its contents" "${digest:0:12}  debian:bookworm   hello" "$out"

# 5. Reproducible: a rebuild has the same tree.
out=$(pd image build --verify "$tmp/repo" 2>&1); rc=$?
expect "build --verify exits 0" 0 $rc
contains "... the rebuild is identical" "verify: the rebuild is identical (tree sha256 $(cat "$dir/tree.sha256"))" "$out"

# 6. A failing run: step: the step, its status and output in one line; no
# tree left, the log kept; an incomplete entry that prune removes.
out=$(pd image build --no-spec --package hello --run 'echo step-output; echo boom >&2; exit 3' 2>&1 >/dev/null); rc=$?
expect "a failing run: step fails the build with 125" 125 $rc
contains "... naming the step, the status and the output" \
	"step 2/4 (running the run: steps) failed (exit 3): step-output | boom" "$out"
expect "... in one line after the step lines" 1 "$(printf '%s\n' "$out" | grep -vc '^paddock: \[')"
faildir=$(ls -d "$PADDOCK_STATE_DIR"/images/*/ | grep -v "$digest" | head -1)
check "... no tree left, build.log kept" test -f "$faildir/build.log" -a ! -e "$faildir/rootfs" -a \
	-z "$(ls -A "$faildir" | grep '^\.tmp')"
contains "image ls shows it as incomplete" "(incomplete)" "$(pd image ls)"

# 7. Bad specs and commands: one line, exit 125.
bad() { # bad DESC WANT ARGS...: exit 125 and one line of stderr containing WANT
	local d=$1 want=$2 out rc; shift 2
	out=$(pd "$@" 2>&1 >/dev/null); rc=$?
	case "$rc|$(printf '%s\n' "$out" | wc -l)|$out" in
	"125|1|"*"$want"*) ok 0 "$d" ;;
	*) ok 1 "$d"; diag "rc=$rc out=$out" ;;
	esac
}
bad "an unknown agent is refused" "unknown agent 'nosuch'" image build --no-spec --agent nosuch
bad "an unsupported base is refused" "image base 'ubuntu:24.04' is not supported" \
	image build --no-spec --base ubuntu:24.04
bad "a bad package name is refused" "'bad,pkg' is not a Debian package name" \
	image build --no-spec --package 'bad,pkg'
printf 'image:\n  agents: [claude, cdex]\n' >"$tmp/bad/paddock.yaml"
bad "paddock.yaml errors name the file" "paddock.yaml:2" image build "$tmp/bad"
bad "unknown subcommand" "unknown image command 'frob'" image frob
bad "unknown option" "unknown option '--frob'" image build --frob
bad "an ambiguous or unknown digest prefix is refused" "no image ffff" image rm ffff

# 8. rm and prune.
out=$(pd image rm "${digest:0:10}" 2>/dev/null); rc=$?
expect "image rm DIGEST-PREFIX removes it" "0 $digest" "$rc $out"
check "... entirely" test ! -e "$dir" -a ! -e "$dir.lock"
pd image prune 2>/dev/null
expect "prune removes the failed build" "" "$(ls "$PADDOCK_STATE_DIR/images")"

cd /
leak_check "after image builds"
finish
