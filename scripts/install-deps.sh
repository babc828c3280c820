#!/bin/sh
# install-deps.sh: install the Debian 12 packages paddock needs to build, test
# and benchmark. Run as root. Idempotent: installs only what is missing and
# runs `apt-get update` only when something is.
set -eu

packages="
	build-essential pkg-config
	libseccomp-dev libcmocka-dev libyaml-dev libjansson-dev libevent-dev
	libssl-dev libsqlite3-dev libcap-dev libarchive-dev libnftables-dev
	clang libclang-rt-14-dev
	git bubblewrap mmdebstrap busybox-static hyperfine
	iproute2 nftables uidmap python3 util-linux
	tinyproxy squid mitmproxy curl dnsmasq-base openssl
"

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps.sh: run as root (apt-get needs it)" >&2
	exit 1
fi

missing=
for pkg in $packages; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
	[ "$status" = installed ] || missing="$missing $pkg"
done

if [ -z "$missing" ]; then
	echo "install-deps.sh: all packages are installed"
	exit 0
fi

echo "install-deps.sh: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update
# $missing is a list of words on purpose.
# shellcheck disable=SC2086
apt-get install -y $missing
echo "install-deps.sh: done"
