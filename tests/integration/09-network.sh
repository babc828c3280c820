#!/usr/bin/env bash
# Layer 10: network namespace with loopback only.
. tests/lib/tap.sh
plan 5
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 "$port" >/dev/null 2>&1 & srv=$!
trap 'kill $srv 2>/dev/null' EXIT
for i in 1 2 3 4 5 6 7 8 9 10; do (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.2; done
out=$(pdrun -- sh -c "wget -q -T 2 -O- http://127.0.0.1:$port/ 2>&1; echo rc=\$?")
contains "the host's loopback service is unreachable" "rc=1" "$out"
out=$(pdrun -- sh -c 'cat /proc/net/route | wc -l'); expect "no routes at all (only the header line)" 1 "$(echo $out)"
out=$(pdrun -- sh -c 'ip link 2>/dev/null | grep -c "^[0-9]" || ls /sys/class/net | wc -l'); expect "one interface" 1 "$(echo $out)"
out=$(pdrun -- sh -c 'nc -l -p 7000 -e echo hi >/dev/null 2>&1 & sleep 0.3; echo | nc 127.0.0.1 7000 2>&1; echo done')
contains "the sandbox's own loopback works" done "$out"
leak_check "after network tests"
finish
