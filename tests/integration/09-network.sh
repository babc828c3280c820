#!/usr/bin/env bash
# Layer 10: the network namespace. --network off: loopback only. Filtered
# (the default): eth0 to the gateway and nothing of the host's loopback; run
# with paddock inside the lab's namespace T (tests/lib/netlab.sh), so the
# host's own network is not touched.
. tests/lib/tap.sh
. tests/lib/netlab.sh
plan 13
LEAK_BASE0=$LEAK_BASE
srv=
cleanup() { [ -n "$srv" ] && kill "$srv" 2>/dev/null; nl_teardown; }
trap cleanup EXIT
OFF=(--network off)

# ---- --network off ------------------------------------------------------------------------
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 "$port" >/dev/null 2>&1 & srv=$!
for _ in 1 2 3 4 5 6 7 8 9 10; do (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.2; done
out=$(pdrun "${OFF[@]}" -- sh -c "wget -q -T 2 -O- http://127.0.0.1:$port/ 2>&1; echo rc=\$?")
contains "off: the host's loopback service is unreachable" "rc=1" "$out"
out=$(pdrun "${OFF[@]}" -- sh -c 'cat /proc/net/route | wc -l'); expect "off: no routes at all (only the header line)" 1 "$(echo $out)"
out=$(pdrun "${OFF[@]}" -- sh -c 'ip link 2>/dev/null | grep -c "^[0-9]" || ls /sys/class/net | wc -l'); expect "off: one interface" 1 "$(echo $out)"
out=$(pdrun "${OFF[@]}" -- sh -c 'nc -l -p 7000 -e echo hi >/dev/null 2>&1 & sleep 0.3; echo | nc 127.0.0.1 7000 2>&1; echo done')
contains "off: the sandbox's own loopback works" "done" "$out"
kill "$srv" 2>/dev/null; wait "$srv" 2>/dev/null; srv=
leak_check "after the --network off tests"

# ---- filtered (the default), in the lab -----------------------------------------------------------
nl_setup || { echo "Bail out! the lab did not come up: $(cat "$NLD/servers.err" 2>/dev/null)"; exit 1; }
LEAK_BASE=$(leak_state)
# T's service listens on every address: only paddock's rules keep it out of reach
nsenter --net="/run/netns/$NL_T" python3 -m http.server --bind 0.0.0.0 "$port" >/dev/null 2>&1 & srv=$!
nl_wait_tcp "$NL_T" 127.0.0.1 "$port"
check "(control) T's service answers in T" inT bash -c "echo >/dev/tcp/198.51.100.1/$port"
# fsb SCRIPT: a filtered sandbox on the test rootfs, in T
fsb() { tpd run --image "$ROOTFS" --workspace none -- sh -c "$1" 2>&1 </dev/null; }
out=$(fsb "wget -q -T 2 -O- http://127.0.0.1:$port/ 2>&1; echo rc=\$?")
contains "filtered: the host's loopback service is unreachable (127.0.0.1 is the sandbox's own)" "rc=1" "$out"
out=$(fsb "gw=\$(awk '/^nameserver/ {print \$2}' /etc/resolv.conf); wget -q -T 2 -O- http://\$gw:$port/ 2>&1; echo rc=\$?")
contains "filtered: ... and so is the same port on the gateway's address" "rc=1" "$out"
out=$(fsb 'ip route')
check "filtered: two routes, the default via the gateway and the /30 of eth0" bash -c \
	"[ \"\$(echo '$out' | wc -l)\" -eq 2 ] && echo '$out' | grep -q '^default via 10\.231\.[0-9.]* dev eth0' &&
	echo '$out' | grep -q '^10\.231\.[0-9.]*/30 dev eth0'"
out=$(fsb 'ip -o link | awk -F": " "{ sub(\"@.*\", \"\", \$2); print \$2 }" | sort | tr "\n" " "')
expect "filtered: two interfaces, eth0 and lo" "eth0 lo " "$out"
out=$(fsb 'nc -l -p 7000 -e echo hi >/dev/null 2>&1 & sleep 0.3; echo | nc 127.0.0.1 7000 2>&1; echo done')
contains "filtered: the sandbox's own loopback works" "done" "$out"
nl_clean "after the filtered tests"
cleanup; srv=
trap - EXIT
LEAK_BASE=$LEAK_BASE0
leak_check "after network tests"
finish
