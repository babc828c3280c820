#!/usr/bin/env bash
# The README's first command: install what paddock needs from Debian, build
# it, and run a sandbox on the default image (built with mmdebstrap on first
# use, then cached under /var/lib/paddock).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "bootstrap: run as root (sudo bash scripts/bootstrap.sh)" >&2; exit 1; }
bash scripts/install-deps.sh
make
./build/paddock run -- sh -c 'echo "hello from $(hostname): $(id)"; ls /workspace | head -5; rm -rf / --no-preserve-root 2>/dev/null; echo still here'
