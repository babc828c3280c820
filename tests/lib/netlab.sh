# shellcheck shell=bash
# tests/lib/netlab.sh: a private network for tests of paddock's network modes,
# sourced after tap.sh. paddock itself runs inside a network namespace T that
# this file creates, so its veths, its nft table `inet paddock` and its gateway
# live there and the host's network is never touched; the stand-in upstreams
# run in a second namespace U. No packet goes anywhere but these two
# namespaces and loopback:
#
#   T ("the host" as paddock sees it)              U (stand-in Internet)
#   pd<N>-<id> 10.231.x.1 <-> sandbox eth0          203.0.113.10 (on u-t)
#   t-u 198.51.100.1/24 ------------------------   u-t 198.51.100.2/24
#   route 203.0.113.0/24 via 198.51.100.2           route 10.231/16 via 198.51.100.1
#   ip_forward=1 (so only paddock's nft rules      HTTP :80, HTTPS :443 (test CA),
#    stand between a sandbox and U)                  TCP :8080, UDP :9999 (logged),
#   "host services" on 0.0.0.0: TCP 22, 80,          dnsmasq :53 (--log-queries)
#    8022, UDP 5353 (logged)
#
# 203.0.113.0/24 and 198.51.100.0/24 are documentation ranges, which the
# gateway treats as public; 10.231.0.0/16 is paddock's own range.
#
#   nl_setup            build it all (returns non-zero when something is missing)
#   nl_teardown         remove it all (trap handler; idempotent)
#   inT CMD / inU CMD   run CMD in T or U (nsenter --net: no mount changes,
#                       unlike `ip netns exec`, which hides /sys/fs/cgroup)
#   tpd ARGS            the paddock CLI in T, with the gateway's upstream
#                       resolver pointed at U's dnsmasq
#   nl_saw KIND         lines the loggers wrote for KIND (u8080, u9999, t22,
#                       t80, t8022, t5353; empty: nothing arrived)
#   nl_dns_queries      what dnsmasq was asked, in lower case
#   nl_stray            packets from sandbox addresses that reached U, were
#                       routed by T or reached T's stack past the gateway's
#                       ports (nft counters in both; 0 expected)
#   nl_leftovers        paddock's network plumbing still present in T, as text
#                       (NL_GATEWAY_STAYS=1: not counting a daemon's gateway)
#   nl_clean DESC       ok when nl_leftovers is empty (waits up to 3 s)
#   $NLD                the lab directory: ca.pem (test CA), logs, scripts;
#                       $NLD/pub is world-readable, for --mount into sandboxes
NL_T=pdt-T-$$ NL_U=pdt-U-$$
NLD=$(mktemp -d /var/tmp/pdnetlab.XXXXXX)
chmod 755 "$NLD"
NL_PIDS=()
NL_UP=203.0.113.10
# the binaries as they are when this file is sourced (tests/lib/daemon.sh
# later points PADDOCK_BIN at private copies, without paddock-egress next to
# the CLI)
NL_PADDOCK=$PADDOCK_BIN
# `ip netns add` mounts /run/netns the first time; undo that if we did it.
NL_NETNS_MOUNTED=$(awk '$5 == "/run/netns"' /proc/self/mountinfo)

inT() { nsenter --net="/run/netns/$NL_T" "$@"; }
inU() { nsenter --net="/run/netns/$NL_U" "$@"; }
tpd() { PADDOCK_DNS_UPSTREAM=$NL_UP nsenter --net="/run/netns/$NL_T" "$NL_PADDOCK" "$@"; }

nl_wait_tcp() { # NS ADDR PORT
	for _ in $(seq 50); do
		nsenter --net="/run/netns/$1" bash -c "echo >/dev/tcp/$2/$3" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

nl_setup() {
	local n
	for n in "$NL_T" "$NL_U"; do ip netns add "$n" && ip -n "$n" link set lo up || return 1; done
	ip link add t-u netns "$NL_T" type veth peer name u-t netns "$NL_U" || return 1
	ip -n "$NL_T" addr add 198.51.100.1/24 dev t-u && ip -n "$NL_T" link set t-u up &&
		ip -n "$NL_U" addr add 198.51.100.2/24 dev u-t &&
		ip -n "$NL_U" addr add "$NL_UP/24" dev u-t && ip -n "$NL_U" link set u-t up &&
		ip -n "$NL_T" route add 203.0.113.0/24 via 198.51.100.2 &&
		ip -n "$NL_U" route add 10.231.0.0/16 via 198.51.100.1 &&
		inT sysctl -qw net.ipv4.ip_forward=1 || return 1

	# a test CA and a server certificate for the stand-in names
	mkdir -p "$NLD/pub" && chmod 755 "$NLD/pub"
	(
		cd "$NLD" || exit 1
		openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out pub/ca.pem -days 2 \
			-subj /CN=pdtest-ca 2>/dev/null &&
			openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr \
				-subj /CN=allowed.test 2>/dev/null &&
			printf 'subjectAltName=DNS:allowed.test,DNS:evil.test,DNS:x.wild.test,DNS:deny.wild.test,DNS:later.test,DNS:open.test\n' >san.ext &&
			openssl x509 -req -in srv.csr -CA pub/ca.pem -CAkey ca.key -CAcreateserial \
				-out srv.pem -days 2 -extfile san.ext 2>/dev/null
	) || return 1
	chmod 644 "$NLD/pub/ca.pem"

	# tools for inside a sandbox (the default image has perl, not python)
	cat >"$NLD/pub/dnsq.pl" <<'PL'
# dnsq.pl SERVER NAME TYPE [tcp]: one DNS question; prints "rcode=N answers=A,B"
# (IPv4 answers) or "error: WHY" (no answer in 3 s).
use strict; use IO::Socket::INET;
my ($srv, $name, $type, $tcp) = @ARGV;
my %t = (A => 1, TXT => 16, AAAA => 28, MX => 15);
my $q = pack("nnnnnn", int(rand(65536)), 0x100, 1, 0, 0, 0)
      . join("", map { chr(length $_) . $_ } split /\./, $name) . "\0" . pack("nn", $t{$type}, 1);
my ($r, $s) = ("");
$SIG{ALRM} = sub { print "error: timeout\n"; exit 1 };
alarm 3;
if ($tcp) {
	$s = IO::Socket::INET->new(PeerAddr => $srv, PeerPort => 53, Proto => "tcp")
		or do { print "error: $!\n"; exit 1 };
	print $s pack("n", length $q) . $q;
	while (length($r) < 2 || length($r) < 2 + unpack("n", $r)) {
		my $c; sysread($s, $c, 4096) or last; $r .= $c;
	}
	$r = substr($r, 2);
} else {
	$s = IO::Socket::INET->new(PeerAddr => $srv, PeerPort => 53, Proto => "udp")
		or do { print "error: $!\n"; exit 1 };
	$s->send($q) or do { print "error: $!\n"; exit 1 };
	defined $s->recv($r, 4096) or do { print "error: $!\n"; exit 1 };
}
alarm 0;
my $an = unpack("n", substr($r, 6, 2));
my ($o, @a) = (length $q);
for (1 .. $an) {
	$o += 2;
	my ($ty, $cl, $ttl, $l) = unpack("nnNn", substr($r, $o, 10)); $o += 10;
	push @a, join(".", unpack("C4", substr($r, $o, 4))) if $ty == 1;
	$o += $l;
}
printf "rcode=%d answers=%s\n", ord(substr($r, 3, 1)) & 15, join(",", @a);
PL
	cat >"$NLD/pub/raw.pl" <<'PL'
# raw.pl HOST PORT DATA: send DATA (\r \n escapes), print what comes back
# (up to 5 s of silence), or "error: WHY" when the connection fails.
use strict; use IO::Socket::INET;
my ($h, $p, $d) = @ARGV;
$d =~ s/\\r/\r/g; $d =~ s/\\n/\n/g;
my $s = IO::Socket::INET->new(PeerAddr => $h, PeerPort => $p, Proto => "tcp", Timeout => 3)
	or do { print "error: $!\n"; exit 1 };
print $s $d;
$SIG{ALRM} = sub { print "[timeout]\n"; exit 0 };
alarm 5;
my $c; print $c while sysread($s, $c, 65536);
PL
	chmod 644 "$NLD/pub/dnsq.pl" "$NLD/pub/raw.pl"

	# U: the web servers and two loggers; T: "host services" that log
	cat >"$NLD/servers.py" <<'PY'
import http.server, selectors, socket, socketserver, ssl, sys, threading
where, d = sys.argv[1], sys.argv[2]
log = open("%s/saw.%s" % (d, where), "a", buffering=1)
def logger(kind, typ, addr):
    s = socket.socket(socket.AF_INET, typ)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(addr)
    if typ == socket.SOCK_STREAM:
        s.listen(64)
    def loop():
        while True:
            if typ == socket.SOCK_STREAM:
                c, peer = s.accept()
                log.write("%s %s\n" % (kind, peer[0]))
                try:
                    c.sendall(b"HOSTSERVICE " + kind.encode() + b"\n")
                finally:
                    c.close()
            else:
                data, peer = s.recvfrom(2048)
                log.write("%s %s\n" % (kind, peer[0]))
                s.sendto(b"HOSTSERVICE " + kind.encode(), peer)
    threading.Thread(target=loop, daemon=True).start()
if where == "T":
    for p in (22, 80, 8022):
        logger("t%d" % p, socket.SOCK_STREAM, ("0.0.0.0", p))
    logger("t5353", socket.SOCK_DGRAM, ("0.0.0.0", 5353))
    threading.Event().wait()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = ("hello from upstream host=%s path=%s\n" % (self.headers.get("Host"), self.path)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        log.write("web %s %s %s\n" % (self.client_address[0], self.headers.get("Host"), self.path))
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
up = sys.argv[3]
logger("u8080", socket.SOCK_STREAM, (up, 8080))
logger("u9999", socket.SOCK_DGRAM, (up, 9999))
plain, tls = S((up, 80), H), S((up, 443), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(d + "/srv.pem", d + "/srv.key")
tls.socket = ctx.wrap_socket(tls.socket, server_side=True, do_handshake_on_connect=False)
threading.Thread(target=plain.serve_forever, daemon=True).start()
tls.serve_forever()
PY
	nsenter --net="/run/netns/$NL_U" python3 "$NLD/servers.py" U "$NLD" "$NL_UP" 2>>"$NLD/servers.err" &
	NL_PIDS+=($!)
	nsenter --net="/run/netns/$NL_T" python3 "$NLD/servers.py" T "$NLD" 2>>"$NLD/servers.err" &
	NL_PIDS+=($!)
	# dnsmasq: allowed names, names that rebind to loopback and private space, TXT
	nsenter --net="/run/netns/$NL_U" dnsmasq --no-daemon --no-resolv --no-hosts --bind-interfaces --listen-address="$NL_UP" \
		--port=53 --pid-file= --user=root --log-queries --log-facility=- --local=/test/ \
		--address=/allowed.test/$NL_UP --address=/wild.test/$NL_UP \
		--address=/evil.test/$NL_UP --address=/later.test/$NL_UP --address=/open.test/$NL_UP \
		--address=/rebind.test/127.0.0.1 --address=/rebind10.test/10.0.0.5 \
		--address=/gwself.test/198.51.100.1 --address=/sbnet.test/10.231.0.2 \
		--txt-record=allowed.test,leak 2>"$NLD/dnsmasq.log" &
	NL_PIDS+=($!)
	# counters of stray packets: anything from a sandbox address that arrives
	# in U, that T routes, or that T's own stack takes in other than the
	# gateway's DNS and proxy ports (they count only; paddock's drops come first)
	inU nft -f - <<'NFT' || return 1
table ip lab {
	chain pre { type filter hook prerouting priority -400; policy accept; ip saddr 10.231.0.0/16 counter; }
}
NFT
	inT nft -f - <<'NFT' || return 1
table ip lab {
	chain routed { type filter hook forward priority 10; policy accept; ip saddr 10.231.0.0/16 counter; ip daddr 10.231.0.0/16 counter; }
	chain stack {
		type filter hook input priority 10; policy accept;
		ip saddr 10.231.0.0/16 tcp dport != { 53, 3128, 3129 } counter
		ip saddr 10.231.0.0/16 udp dport != 53 counter
		ip saddr 10.231.0.0/16 meta l4proto != { tcp, udp } counter
	}
}
NFT
	nl_wait_tcp "$NL_U" "$NL_UP" 80 && nl_wait_tcp "$NL_U" "$NL_UP" 443 &&
		nl_wait_tcp "$NL_U" "$NL_UP" 53 && nl_wait_tcp "$NL_U" "$NL_UP" 8080 &&
		nl_wait_tcp "$NL_T" 198.51.100.1 8022 || return 1
	# the loggers start empty (the waits above connected)
	sleep 0.2
	: >"$NLD/saw.T"
	: >"$NLD/saw.U"
}

# nl_stray: how many stray packets the lab's counters saw (0: none)
nl_stray() {
	{ inU nft list table ip lab; inT nft list table ip lab; } 2>/dev/null |
		grep -o 'packets [0-9]*' | awk '{ n += $2 } END { print n + 0 }'
}

nl_saw() { cat "$NLD"/saw.* 2>/dev/null | grep "^$1 "; }
nl_dns_queries() { grep -E 'query\[' "$NLD/dnsmasq.log" 2>/dev/null | tr 'A-Z' 'a-z'; }

# pd* interfaces and the paddock table in T, and gateways started by paddock.
nl_leftovers() {
	ip -n "$NL_T" -o link show 2>/dev/null | awk -F': ' '$2 ~ /^pd/ { sub("@.*", "", $2); print "veth " $2 }'
	inT nft list tables 2>/dev/null | grep -x 'table inet paddock'
	local p tns
	[ -n "${NL_GATEWAY_STAYS:-}" ] && return 0
	tns=$(inT readlink /proc/self/ns/net)
	for p in /proc/[0-9]*; do
		case $(readlink "$p/exe" 2>/dev/null) in */paddock-egress | */paddock-egress" (deleted)") ;; *) continue ;; esac
		[ "$(readlink "$p/ns/net" 2>/dev/null)" = "$tns" ] && echo "paddock-egress process ${p#/proc/}"
	done
}
nl_clean() {
	local left
	for _ in $(seq 10); do
		left=$(nl_leftovers)
		[ -z "$left" ] && break
		sleep 0.3
	done
	if [ -z "$left" ]; then ok 0 "nothing of the network left in T $1"; else
		ok 1 "nothing of the network left in T $1"; echo "$left" | head -20 | sed 's/^/# left: /'
	fi
}

nl_teardown() {
	local p n
	for p in "${NL_PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${NL_PIDS[@]}"; do wait "$p" 2>/dev/null; done
	NL_PIDS=()
	for n in "$NL_T" "$NL_U"; do ip netns del "$n" 2>/dev/null; done
	if [ -z "$NL_NETNS_MOUNTED" ] && [ -z "$(ip netns list)" ]; then
		while awk '$5 == "/run/netns"' /proc/self/mountinfo | grep -q .; do umount /run/netns || break; done
	fi
	rm -rf "$NLD"
}
