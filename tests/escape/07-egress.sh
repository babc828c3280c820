#!/usr/bin/env bash
# tests/escape/07-egress.sh: get out of a filtered sandbox (the default
# network) as root inside: change its routes, addresses, links or firewall,
# open raw sockets, send ICMP, be reached from outside, talk to the host's
# other ports and addresses or to another sandbox, ask a resolver directly,
# forge /etc/hosts, make a network namespace of its own. Every attempt must
# fail; the lab (tests/lib/netlab.sh: paddock in namespace T, stand-ins in U)
# counts any packet from a sandbox address that gets past the gateway, and
# its loggers record any connection that arrives.
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/tap.sh
. tests/lib/escape.sh
. tests/lib/netlab.sh
plan 50
LEAK_BASE0=$LEAK_BASE
A_PID=
cleanup() {
	[ -n "$A_PID" ] && { touch "$NLD/a/stop"; wait "$A_PID" 2>/dev/null; }
	nl_teardown
}
trap cleanup EXIT
nl_setup || { echo "Bail out! the lab did not come up: $(cat "$NLD/servers.err" 2>/dev/null)"; exit 1; }
LEAK_BASE=$(leak_state)
UP=$NL_UP

# nfnl.pl: one nftables batch over raw netlink, for images without nft/iptables
cat >"$NLD/pub/nfnl.pl" <<'PL'
# nfnl.pl new|flush: one nftables batch over a raw NETLINK_NETFILTER socket, as
# `nft add table inet escape` (new) or `nft flush ruleset` (flush) sends it;
# prints "ok: ..." when the kernel accepts it, else "blocked: ENAME".
use strict; use Errno;
my $what = shift // "new";
my %ename = map { (eval "Errno::$_()" // -1) => $_ } qw(EPERM EACCES EINVAL ENOENT EOPNOTSUPP EPROTONOSUPPORT);
sub fail { print "blocked: ", ($ename{$_[0]} // "errno $_[0]"), "$_[1]\n"; exit 1 }
socket(my $s, 16, 3, 12) or fail($! + 0, " (socket)");
my $seq = 1;
sub msg { my ($type, $flags, $fam, $res, $attrs) = @_;
	my $body = pack("CCn", $fam, 0, $res) . $attrs;
	pack("LSSLL", 16 + length $body, $type, $flags, $seq++, 0) . $body }
sub attr { my ($t, $v) = @_; my $a = pack("SS", 4 + length $v, $t) . $v; $a . "\0" x ((4 - length($a) % 4) % 4) }
my $op = $what eq "flush"
	? msg((10 << 8) | 2, 1 | 4, 0, 0, "")                         # NFT_MSG_DELTABLE, every family
	: msg((10 << 8) | 0, 1 | 4 | 0x400, 1, 0, attr(1, "escape\0")); # NFT_MSG_NEWTABLE inet escape
send($s, msg(0x10, 1, 0, 10, "") . $op . msg(0x11, 1, 0, 10, ""), 0, pack("SSLL", 16, 0, 0, 0))
	or fail($! + 0, " (send)");
$SIG{ALRM} = sub { print "blocked: no answer\n"; exit 1 }; alarm 3;
my $buf; recv($s, $buf, 65536, 0);
my (undef, $type) = unpack("LS", $buf);
if ($type == 2) { my $err = unpack("l", substr($buf, 16, 4)); fail(-$err, "") if $err; }
print "ok: the kernel accepted the batch\n";
PL
# try.sh CMD...: "ok: LAST LINE" when CMD succeeds, else "blocked: LAST LINE"
cat >"$NLD/pub/try.sh" <<'SH'
out=$("$@" 2>&1); rc=$?
if [ $rc -eq 0 ]; then echo "ok: $(echo "$out" | tail -n1)"; exit 0; fi
echo "blocked: $(echo "$out" | tail -n1)"; exit 1
SH
chmod 644 "$NLD/pub/nfnl.pl" "$NLD/pub/try.sh"

# In the default image (perl, curl, openssl; no ip, nft, iptables or python),
# with the lab at /lab, the test rootfs's static busybox at /bb and the probe
# at /probe. $GW inside is the sandbox's gateway.
LAB=(--workspace none --mount "$NLD/pub:/lab" --mount "$ROOTFS/bin:/bb" --mount "$ROOTFS/usr/local/bin:/probe"
	--allow allowed.test)
esb() {
	local args=()
	while [ "$1" != -- ]; do args+=("$1"); shift; done
	shift
	tpd run "${LAB[@]}" "${args[@]}" -- sh -c 'GW=$(awk "/^nameserver/ {print \$2; exit}" /etc/resolv.conf); B=/bb/busybox; '"$1"
}
# in_sb DESC WANT SCRIPT: attempt SCRIPT in a fresh filtered sandbox, expecting exit 1
in_sb() { attempt "$1" 1 "$2" esb -- "$3"; }

# ---- the control: the same tools work where root owns the network ------------------------------
ip netns add "$NL_T-ctl"
out=$(ip netns exec "$NL_T-ctl" perl "$NLD/pub/nfnl.pl" new 2>&1; ip netns exec "$NL_T-ctl" perl "$NLD/pub/nfnl.pl" flush 2>&1)
ip netns del "$NL_T-ctl"
expect "(control) nfnl.pl adds a table and flushes the ruleset as root in a netns of its own" \
	"ok: the kernel accepted the batch
ok: the kernel accepted the batch" "$out"

# ---- a sandbox that stays up: the victim of the cross-sandbox attempts ------------------------------
mkdir -p "$NLD/a" && chmod 777 "$NLD/a"
tpd run "${LAB[@]}" --mount "$NLD/a:/a:rw" -- sh -c '
	GW=$(awk "/^nameserver/ {print \$2; exit}" /etc/resolv.conf)
	addr=$(/bb/busybox ip -o -4 addr show dev eth0 | awk "{ sub(\"/.*\", \"\", \$4); print \$4 }")
	perl -MIO::Socket::INET -e "my \$l = IO::Socket::INET->new(LocalPort => 7000, Listen => 8, ReuseAddr => 1) or die \"listen: \$!\";
		open(my \$f, \">>\", \"/a/conns\") or die; \$f->autoflush(1); open(my \$r, \">\", \"/a/listening\");
		while (my \$c = \$l->accept) { print \$f \"conn \", \$c->peerhost, \"\n\"; close \$c }" &
	while [ ! -e /a/listening ]; do sleep 0.05; done
	perl -MIO::Socket::INET -e "IO::Socket::INET->new(PeerAddr => \"$addr:7000\") or die \"self: \$!\""
	echo "$addr $GW" >/a/info.tmp && mv /a/info.tmp /a/info
	i=0; while [ ! -e /a/stop ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i + 1)); done' >"$NLD/a/out" 2>&1 </dev/null &
A_PID=$!
for _ in $(seq 100); do [ -s "$NLD/a/info" ] && break; sleep 0.1; done
read -r A_ADDR A_GW <"$NLD/a/info" 2>/dev/null
check "sandbox A is up, at ${A_ADDR:-?} behind gateway ${A_GW:-?}" \
	bash -c "[[ '${A_ADDR:-}' == 10.231.* && '${A_GW:-}' == 10.231.* ]]"
nft_before=$(inT nft list table inet paddock 2>&1)
contains "(control) T holds paddock's table with A's chains" "chain pre_pd" "$nft_before"

# ---- routes, addresses, links, firewall ---------------------------------------------------------------
in_sb "ip route add 203.0.113.0/24 via the gateway (EPERM: the netns is not the sandbox's)" \
	"blocked: *Operation not permitted" 'sh /lab/try.sh $B ip route add 203.0.113.0/24 via $GW'
in_sb "ip route replace default dev eth0 (EPERM)" "blocked: *Operation not permitted" \
	'sh /lab/try.sh $B ip route replace default dev eth0'
in_sb "ip addr add 198.51.100.99/24 dev eth0, to talk to T's link directly (EPERM)" \
	"blocked: *Operation not permitted" 'sh /lab/try.sh $B ip addr add 198.51.100.99/24 dev eth0'
in_sb "ip link set eth0 down (EPERM)" "blocked: *Operation not permitted" 'sh /lab/try.sh $B ip link set eth0 down'
in_sb "ip link add a veth pair inside (EPERM)" "blocked: *Operation not permitted" \
	'sh /lab/try.sh $B ip link add v0 type veth peer name v1'
in_sb "nft add table inet escape, by raw netlink (EPERM)" "blocked: EPERM" 'perl /lab/nfnl.pl new'
in_sb "nft flush ruleset, by raw netlink (EPERM)" "blocked: EPERM" 'perl /lab/nfnl.pl flush'
in_sb "write net.ipv6.conf.all.disable_ipv6 = 0 to bring IPv6 back (read-only)" "blocked: *Read-only file system" \
	'sh /lab/try.sh sh -c "echo 0 >/proc/sys/net/ipv6/conf/all/disable_ipv6"'
in_sb "write net.ipv4.ip_forward (read-only)" "blocked: *Read-only file system" \
	'sh /lab/try.sh sh -c "echo 1 >/proc/sys/net/ipv4/ip_forward"'
out=$(esb -- '$B ip route add 203.0.113.0/24 via $GW 2>/dev/null; $B ip addr add 198.51.100.99/24 dev eth0 2>/dev/null
	$B ip link set eth0 down 2>/dev/null; $B ip -4 route; $B ip -o -4 addr show dev eth0 | awk "{print \$4}"' 2>&1)
check "after those attempts the routes and address inside are unchanged (default via the gateway, one /30)" \
	bash -c "[ \"\$(echo '$out' | grep -c .)\" -eq 3 ] && echo '$out' | grep -q '^default via 10.231' && echo '$out' | grep -qE '^10\.231\.[0-9.]+/30$'"
expect "... and paddock's table in T is unchanged" "$nft_before" "$(inT nft list table inet paddock 2>&1)"

# ---- raw sockets, ICMP -----------------------------------------------------------------------------------
in_sb "a raw IPv4 socket (EPERM)" "blocked: EPERM" '/probe/probe raw_socket'
in_sb "an AF_PACKET socket (EPERM)" "blocked: EPERM" '/probe/probe packet_socket'
in_sb "an ICMP datagram (ping) socket (ping_group_range)" "blocked: *ermission denied" \
	'perl -e "socket(S, 2, 2, 1) or do { print qq(blocked: \$!\n); exit 1 }; print qq(ok\n)"'
in_sb "ping $UP with busybox" "blocked: *ermission denied*" "sh /lab/try.sh \$B ping -c 1 -W 2 $UP"
in_sb "ping the gateway" "blocked: *ermission denied*" 'sh /lab/try.sh $B ping -c 1 -W 2 $GW'

# ---- being reached from outside ------------------------------------------------------------------------------
in_sb "bind privileged port 80 inside (EACCES: the netns is not the sandbox's)" "blocked: *ermission denied" \
	'sh /lab/try.sh perl -MIO::Socket::INET -e "IO::Socket::INET->new(LocalPort => 80, Listen => 1) or die \"bind: \$!\n\""'
expect "(control) A's listener on port 7000 works: A reached it from its own address" "conn $A_ADDR" \
	"$(cat "$NLD/a/conns" 2>/dev/null)"
out=$(inT timeout 5 bash -c "echo hi >/dev/tcp/$A_ADDR/7000" 2>&1; echo "rc=$?")
check_fails "T (the host) cannot connect to A's listener at $A_ADDR:7000" test "${out##*rc=}" -eq 0
out=$(inU timeout 5 bash -c "echo hi >/dev/tcp/$A_ADDR/7000" 2>&1; echo "rc=$?")
check_fails "U (the outside) cannot connect to A's listener" test "${out##*rc=}" -eq 0

# ---- the gateway's other ports, the host's other addresses -------------------------------------------------------
in_sb "TCP to the gateway's port 22" "blocked: ETIMEDOUT" '/probe/probe connect $GW 22'
in_sb "TCP to the gateway's port 8022" "blocked: ETIMEDOUT" '/probe/probe connect $GW 8022'
out=$(esb -- 'curl -sS -m 5 --noproxy "*" http://$GW/ 2>&1; curl -sS -m 5 --noproxy "*" http://198.51.100.1/ 2>&1' 2>&1)
not_contains "escape: HTTP to port 80 of the gateway and of T's address lands in the proxy, not T's web service" \
	"HOSTSERVICE" "$out"
in_sb "TCP to T's own address 198.51.100.1:22" "blocked: ETIMEDOUT" '/probe/probe connect 198.51.100.1 22'
in_sb "TCP to T's own address 198.51.100.1:8022" "blocked: ETIMEDOUT" '/probe/probe connect 198.51.100.1 8022'
in_sb "UDP to T's own address 198.51.100.1:5353" "blocked: ETIMEDOUT" '/probe/probe udp_send 198.51.100.1 5353'
in_sb "UDP to the gateway's 5353" "blocked: ETIMEDOUT" '/probe/probe udp_send $GW 5353'
in_sb "TCP to U directly ($UP:8080)" "blocked: ETIMEDOUT" "/probe/probe connect $UP 8080"

# ---- another sandbox -----------------------------------------------------------------------------------------------
in_sb "TCP to sandbox A's address $A_ADDR:7000" "blocked: ETIMEDOUT" "/probe/probe connect $A_ADDR 7000"
in_sb "TCP to sandbox A's gateway proxy $A_GW:3128" "blocked: ETIMEDOUT" "/probe/probe connect $A_GW 3128"
in_sb "DNS to sandbox A's gateway $A_GW:53" "blocked: timeout" \
	"perl /lab/dnsq.pl $A_GW allowed.test A | sed 's/^error:/blocked:/'; exit 1"
sleep 0.3
expect "escape: A's listener saw no connection but A's own" "conn $A_ADDR" "$(cat "$NLD/a/conns" 2>/dev/null)"

# ---- DNS around the gateway -----------------------------------------------------------------------------------------
in_sb "DNS over UDP straight to U's resolver $UP:53" "blocked: timeout" \
	"perl /lab/dnsq.pl $UP direct-udp.allowed.test A | sed 's/^error:/blocked:/'; exit 1"
in_sb "DNS over TCP straight to U's resolver $UP:53" "blocked: timeout" \
	"perl /lab/dnsq.pl $UP direct-tcp.allowed.test A tcp | sed 's/^error:/blocked:/'; exit 1"
sleep 0.2
not_contains "escape: U's resolver never saw those queries" "direct-" "$(nl_dns_queries)"

# ---- a forged /etc/hosts -------------------------------------------------------------------------------------------------
out=$(esb -- 'echo "198.51.100.1 allowed.test" >/etc/hosts; getent hosts allowed.test
	curl -sS -m 5 --noproxy "*" http://allowed.test/forged-80
	curl -sS -m 5 --noproxy "*" --cacert /lab/ca.pem https://allowed.test/forged-443
	curl -sS -m 3 --noproxy "*" http://allowed.test:8022/ 2>&1 | grep -c HOSTSERVICE' 2>&1)
contains "(control) /etc/hosts inside now says allowed.test is T's 198.51.100.1" "198.51.100.1" "$(echo "$out" | sed -n 1p)"
contains "escape: forged /etc/hosts, port 80: the gateway resolves itself, the real allowed.test answers" \
	"hello from upstream host=allowed.test path=/forged-80" "$out"
contains "escape: forged /etc/hosts, port 443: the same" "hello from upstream host=allowed.test path=/forged-443" "$out"
expect "escape: forged /etc/hosts, port 8022 (not proxied): nothing" 0 "$(echo "$out" | tail -n1)"
sleep 0.2
expect "escape: T's services on 80 and 8022 saw nothing of it" "" "$(nl_saw t80; nl_saw t8022)"

# ---- a network namespace of its own -------------------------------------------------------------------------------------
in_sb "unshare -n" "blocked: *Operation not permitted" 'sh /lab/try.sh unshare -n true'
in_sb "unshare -U -r -n, then TCP to $UP:80 from the new netns" "blocked: *Operation not permitted" \
	"sh /lab/try.sh unshare -U -r -n /probe/probe connect $UP 80"

# ---- afterwards ---------------------------------------------------------------------------------------------------------------
expect "escape: no packet from a sandbox address reached U, was routed by T, or reached T's stack past the gateway" \
	0 "$(nl_stray)"
expect "escape: no logger in T or U saw a connection or datagram from a sandbox" "" \
	"$(nl_saw t22; nl_saw t80; nl_saw t8022; nl_saw t5353; nl_saw u8080; nl_saw u9999)"
touch "$NLD/a/stop"
wait "$A_PID"
expect "sandbox A ended normally" 0 $?
A_PID=
nl_clean "after the escape attempts"
cleanup
trap - EXIT
LEAK_BASE=$LEAK_BASE0
leak_check "after the egress escape attempts (lab removed)"
finish
