#!/bin/sh
# mkrootfs.sh DIR: a small busybox root filesystem for fast tests.
#
# DIR gets /bin/busybox (a copy of Debian's busybox-static) with a symlink per
# applet in /bin, /sbin -> bin, empty /usr/bin and /usr/sbin, /etc/passwd and
# /etc/group with root and nobody, /root, /tmp (1777), /proc, /sys, /dev and
# /workspace, and no /etc/hostname. Built in DIR.tmp.PID and renamed into
# place; DIR/.complete marks a finished tree, so a second run does nothing.
set -eu

die() {
	echo "mkrootfs.sh: $*" >&2
	exit 1
}

if [ $# -ne 1 ] || [ -z "$1" ]; then
	die "usage: mkrootfs.sh DIR"
fi
dir=${1%/}
busybox=/bin/busybox

[ -e "$dir/.complete" ] && exit 0
if [ -e "$dir" ] || [ -L "$dir" ]; then
	rmdir "$dir" 2>/dev/null ||
		die "$dir exists and is not a finished rootfs (no .complete); remove it first"
fi

[ -x "$busybox" ] || die "$busybox is missing: apt-get install busybox-static"
# The rootfs has no libc: only a static busybox works in it.
if command -v file >/dev/null 2>&1; then
	file -L "$busybox" | grep -q 'statically linked' ||
		die "$busybox is not statically linked: apt-get install busybox-static"
elif LC_ALL=C ldd "$busybox" 2>&1 | grep -q '=>'; then
	die "$busybox is not statically linked: apt-get install busybox-static"
fi

tmp="$dir.tmp.$$"
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM
rm -rf "$tmp"
mkdir -p "$tmp"

mkdir -p "$tmp/bin" "$tmp/usr/bin" "$tmp/usr/sbin" "$tmp/etc" "$tmp/root" "$tmp/tmp" \
	"$tmp/proc" "$tmp/sys" "$tmp/dev" "$tmp/workspace"
ln -s bin "$tmp/sbin"
cp "$busybox" "$tmp/bin/busybox"
chmod 0755 "$tmp" "$tmp/bin/busybox"
chmod 0700 "$tmp/root"
chmod 1777 "$tmp/tmp"

applets=$("$busybox" --list) || die "$busybox --list failed"
for applet in $applets; do
	[ "$applet" = busybox ] && continue
	ln -s busybox "$tmp/bin/$applet"
done

cat >"$tmp/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$tmp/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
chmod 0644 "$tmp/etc/passwd" "$tmp/etc/group"

if [ "$(id -u)" -eq 0 ]; then
	chown -R -h 0:0 "$tmp"
fi
: >"$tmp/.complete"

# A concurrent run may have finished first: then its tree stands.
mv -T "$tmp" "$dir" 2>/dev/null || [ -e "$dir/.complete" ] || die "cannot rename $tmp to $dir"
rm -rf "$tmp"
trap - EXIT
