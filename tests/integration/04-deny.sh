#!/usr/bin/env bash
# Layer 3: the credential deny list, even through a mounted parent.
. tests/lib/tap.sh
plan 16
tmp=$(mktemp -d /var/tmp/pdtest.XXXXXX); trap 'rm -rf "$tmp"' EXIT
h=$tmp/home
mkdir -p "$h/.ssh" "$h/.aws" "$h/.config/gcloud" "$h/.kube" "$h/.docker" "$h/proj/sub"
echo KEY > "$h/.ssh/id_ed25519"; echo AWS > "$h/.aws/credentials"; echo G > "$h/.config/gcloud/c.json"
echo K > "$h/.kube/config"; echo D > "$h/.docker/config.json"; echo N > "$h/.netrc"; echo NPM > "$h/.npmrc"
echo P > "$h/.pypirc"; echo GC > "$h/.git-credentials"; echo E > "$h/proj/.env"; echo EL > "$h/proj/sub/.env.local"
echo R > "$h/proj/id_rsa"; echo OK > "$h/proj/readme"; echo OK > "$h/.docker/other"
chown -R 1000:1000 "$h"

read_in() { pdrun --mount "$h:/home/u" "$@" 2>&1; }
for f in .ssh/id_ed25519 .aws/credentials .config/gcloud/c.json .kube/config .docker/config.json \
	.netrc .pypirc .git-credentials proj/.env proj/sub/.env.local proj/id_rsa; do
	out=$(read_in -- cat "/home/u/$f")
	case "$out" in *"Permission denied"*|*"No such file"*) ok 0 "masked through the mounted parent: $f" ;;
		*) ok 1 "masked through the mounted parent: $f"; diag "$out" ;; esac
done
out=$(read_in -- cat /home/u/proj/readme /home/u/.docker/other); expect "ordinary files next to them stay readable" "OK
OK" "$out"
out=$(read_in -- ls -A /home/u/.ssh); expect "a masked directory lists as empty or unreadable" "" "$(echo "$out" | grep -v 'Permission denied')"
out=$(read_in --unmask .npmrc -- cat /home/u/.npmrc /home/u/.netrc); contains "--unmask .npmrc lifts only .npmrc" NPM "$out"
not_contains "... and not .netrc" "N
" "$out"
leak_check "after deny list tests"
finish
