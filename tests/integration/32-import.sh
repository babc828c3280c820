#!/usr/bin/env bash
# paddock image import through the CLI: the busybox test root filesystem
# packed as a tar.gz and as a docker-archive (tests/lib/mkarchive.py),
# imported, run in a sandbox, removed; a hostile archive refused with nothing
# written and nothing left.
. tests/lib/tap.sh
if ! pd image --help 2>&1 | grep -q '^  import'; then
	echo "1..0 # SKIP this build has no paddock image import"
	exit 0
fi
plan 22
images=${PADDOCK_STATE_DIR:-/var/lib/paddock}/images
tmp=$(mktemp -d /var/tmp/pdtest.XXXXXX)
names=()
cleanup() {
	local n
	for n in "${names[@]}"; do rm -rf "${images:?}/$n"; done
	rm -rf "$tmp"
}
trap cleanup EXIT

tree=$tmp/tree
cp -a "$ROOTFS" "$tree"
printf 'ID=paddock-import-test\nNAME="imported by paddock"\n' >"$tree/etc/os-release"
python3 tests/lib/mkarchive.py pack "$tmp/rootfs.tar.gz" "$tree"
python3 tests/lib/mkarchive.py docker-pack "$tmp/docker.tar" "$tree"

for kind in tar.gz docker; do
	file=$tmp/rootfs.tar.gz
	[ $kind = docker ] && file=$tmp/docker.tar
	name=test-import-$$-${kind%.gz}
	names+=("$name")
	out=$(pd image import --name "$name" "$file" 2>"$tmp/err"); rc=$?
	expect "$kind: import exits 0" 0 $rc
	expect "$kind: prints the image's rootfs" "$images/$name/rootfs" "$out"
	got=$(pd run --image "$out" --workspace none -- cat /etc/os-release 2>&1)
	contains "$kind: a sandbox runs from the imported image" "ID=paddock-import-test" "$got"
	got=$(pd run --image "$out" --workspace none -- sh -c 'ls -l /bin/sh | cut -c1; id -u' 2>&1)
	expect "$kind: symlinks and owners kept" "l
0" "$got"
done
contains "the tarball's format is named" "rootfs-tarball" "$(cat "$images/test-import-$$-tar/meta.json")"
contains "the docker-archive's format is named" "docker-archive" \
	"$(cat "$images/test-import-$$-docker/meta.json")"
pd image ls 2>&1 | grep -Eq '^test-import-[^ ]* +- +imported'
ok $? "image ls lists it"

out=$(pd image import --name "test-import-$$-docker" "$tmp/rootfs.tar.gz" 2>&1); rc=$?
expect "an existing name: 125" 125 $rc
contains "... says so, with what to do" "paddock image rm" "$out"

# The usage's own order: FILE, then --name.
name=test-import-$$-order
names+=("$name")
out=$(pd image import "$tmp/rootfs.tar.gz" --name "$name" 2>&1); rc=$?
expect "import FILE --name NAME exits 0" 0 $rc
contains "... and imports as NAME" "$images/$name/rootfs" "$out"

mkdir "$tmp/canary"
python3 tests/lib/mkarchive.py evil-symlink "$tmp/evil.tar" "$tmp/canary"
name=test-import-$$-evil
names+=("$name")
out=$(pd image import --name "$name" "$tmp/evil.tar" 2>&1); rc=$?
expect "a hostile archive: 125" 125 $rc
contains "... names the entry" "link/pwned" "$out"
check_fails "... writes nothing outside" test -e "$tmp/canary/pwned"
check_fails "... leaves no image" test -e "$images/$name"
expect "... and no temp dir" "" "$(ls -A "$images" | grep '^\.import-')"

for n in "${names[@]}"; do rm -rf "${images:?}/$n"; done
check_fails "the test images are removed" ls -d "$images"/test-import-$$-*
leak_check "after image import"
finish
