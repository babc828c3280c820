#!/usr/bin/env bash
# paddock-egress, the gateway, against stand-in upstreams in network
# namespaces this test creates (and removes). No packet goes anywhere but
# loopback and these namespaces:
#
#   cl (client, "the sandbox")        gw (paddock-egress)          up (stand-ins)
#   198.51.100.2 --------------- 198.51.100.1 | 203.0.113.1 ------- 203.0.113.10
#   resolv.conf -> 198.51.100.1   nft: tcp 80/443 from cl           HTTP :80, HTTPS :443
#                                 -> transparent :3129             dnsmasq :53 (logs queries)
#
# 203.0.113.0/24 and 198.51.100.0/24 are documentation ranges, which the
# gateway deliberately treats as public.
. tests/lib/tap.sh
plan 70
EG=$PWD/$BUILD/paddock-egress
tmp=$(mktemp -d /var/tmp/pdtest-egress.XXXXXX)
chmod 755 "$tmp"
id=$$
UP=pdeg-up-$id GW=pdeg-gw-$id CL=pdeg-cl-$id
pids=()
# `ip netns add` mounts /run/netns the first time; undo that if we did it.
netns_mounted=$(awk '$5 == "/run/netns"' /proc/self/mountinfo)
etc_netns=$([ -d /etc/netns ] && echo yes)
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	for n in $UP $GW $CL; do ip netns del "$n" 2>/dev/null; done
	rm -rf "/etc/netns/$CL" "$tmp"
	[ -n "$etc_netns" ] || rmdir /etc/netns 2>/dev/null
	if [ -z "$netns_mounted" ] && [ -z "$(ip netns list)" ]; then
		while awk '$5 == "/run/netns"' /proc/self/mountinfo | grep -q .; do umount /run/netns || break; done
	fi
}
trap cleanup EXIT
inup() { ip netns exec "$UP" "$@"; }
ingw() { ip netns exec "$GW" "$@"; }
incl() { ip netns exec "$CL" "$@"; }
wait_tcp() { # netns addr port
	for _ in $(seq 50); do
		ip netns exec "$1" bash -c "echo >/dev/tcp/$2/$3" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# --- namespaces and links ---
for n in $UP $GW $CL; do ip netns add "$n" && ip -n "$n" link set lo up; done
ip link add gwu netns "$GW" type veth peer name upg netns "$UP"
ip link add gwc netns "$GW" type veth peer name clg netns "$CL"
ip -n "$GW" addr add 203.0.113.1/24 dev gwu && ip -n "$GW" link set gwu up
ip -n "$UP" addr add 203.0.113.10/24 dev upg && ip -n "$UP" link set upg up
ip -n "$GW" addr add 198.51.100.1/24 dev gwc && ip -n "$GW" link set gwc up
ip -n "$CL" addr add 198.51.100.2/24 dev clg && ip -n "$CL" link set clg up
ip -n "$CL" route add default via 198.51.100.1
mkdir -p "/etc/netns/$CL" && echo "nameserver 198.51.100.1" > "/etc/netns/$CL/resolv.conf"
ingw nft -f - <<'NFT'
table ip pdeg {
	chain pre {
		type nat hook prerouting priority dstnat;
		iifname "gwc" tcp dport { 80, 443 } redirect to :3129
	}
}
NFT

# --- stand-in upstreams: a test CA, HTTP and HTTPS, DNS ---
(
	cd "$tmp"
	openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 \
		-subj /CN=pdtest-ca 2>/dev/null
	openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj /CN=allowed.test 2>/dev/null
	printf 'subjectAltName=DNS:allowed.test,DNS:evil.test,DNS:x.wild.test\n' > san.ext
	openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem \
		-days 2 -extfile san.ext 2>/dev/null
)
cat > "$tmp/upstream.py" <<'PY'
import http.server, socketserver, ssl, sys, threading
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = ("hello from upstream host=%s path=%s conn=%s\n" % (
            self.headers.get("Host"), self.path, self.headers.get("Connection"))).encode()
        if self.path == "/big":
            body = bytes(range(256)) * (32 << 10)  # 8 MiB
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        sys.stderr.write("%s %s\n" % (self.headers.get("Host"), self.path))
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
plain = S(("203.0.113.10", 80), H)
tls = S(("203.0.113.10", 443), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
tls.socket = ctx.wrap_socket(tls.socket, server_side=True, do_handshake_on_connect=False)
threading.Thread(target=plain.serve_forever, daemon=True).start()
tls.serve_forever()
PY
ip netns exec "$UP" python3 "$tmp/upstream.py" "$tmp/srv.pem" "$tmp/srv.key" 2>"$tmp/upstream.log" & pids+=($!)
ip netns exec "$UP" dnsmasq --no-daemon --no-resolv --no-hosts --bind-interfaces --listen-address=203.0.113.10 \
	--port=53 --pid-file= --user=root --log-queries --log-facility=- \
	--address=/allowed.test/203.0.113.10 --address=/x.wild.test/203.0.113.10 \
	--address=/deny.wild.test/203.0.113.10 --address=/evil.test/203.0.113.10 \
	--address=/rebind.test/127.0.0.1 --address=/rebind10.test/10.0.0.5 \
	--address=/meta.test/169.254.169.254 --address=/gwself.test/203.0.113.1 \
	--txt-record=allowed.test,leak 2>"$tmp/dnsmasq.log" & pids+=($!)

# --- the gateway, standalone ---
ip netns exec "$GW" "$EG" --sandbox work --mode filtered --allow allowed.test --allow '*.wild.test' \
	--deny deny.wild.test --allow rebind.test --allow rebind10.test --allow meta.test \
	--allow gwself.test --proxy 198.51.100.1:3128 --transparent 198.51.100.1:3129 \
	--dns 198.51.100.1:53 --dns-upstream 203.0.113.10 --events "$tmp/events.jsonl" \
	2>"$tmp/egress.log" & pids+=($!)
egpid=$!
check "stand-ins and gateway are up" bash -c "$(declare -f wait_tcp); wait_tcp $UP 203.0.113.10 80 &&
	wait_tcp $UP 203.0.113.10 443 && wait_tcp $UP 203.0.113.10 53 && wait_tcp $GW 198.51.100.1 3128"
sleep 0.3
egp=$(pgrep -f "^$EG --sandbox work" | head -n1)
expect "the gateway dropped root (runs as nobody)" 65534 "$(awk '/^Uid:/{print $2}' /proc/"$egp"/status)"
expect "the gateway runs with a seccomp filter and no_new_privs" "2 1" \
	"$(awk '/^Seccomp:/{s=$2} /^NoNewPrivs:/{n=$2} END{print s, n}' /proc/"$egp"/status)"

# --- DNS ---
cat > "$tmp/dnsq.py" <<'PY'
# dnsq.py NAME TYPE [tcp]: ask 198.51.100.1, print "rcode=N answers=..."
import random, socket, struct, sys
name, qtype = sys.argv[1], {"A": 1, "TXT": 16, "AAAA": 28, "MX": 15}[sys.argv[2]]
qid = random.randrange(65536)
q = struct.pack(">HHHHHH", qid, 0x100, 1, 0, 0, 0)
q += b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"
q += struct.pack(">HH", qtype, 1)
if len(sys.argv) > 3:
    s = socket.create_connection(("198.51.100.1", 53), timeout=5)
    s.sendall(struct.pack(">H", len(q)) + q)
    r = b""
    while len(r) < 2 or len(r) < 2 + struct.unpack(">H", r[:2])[0]:
        c = s.recv(4096)
        if not c: break
        r += c
    r = r[2:]
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    s.sendto(q, ("198.51.100.1", 53))
    r = s.recv(4096)
an = struct.unpack(">H", r[6:8])[0]
answers, o = [], len(q)
for _ in range(an):
    o += 2
    t, _c, _ttl, l = struct.unpack(">HHIH", r[o:o + 10]); o += 10
    if t == 1: answers.append(socket.inet_ntoa(r[o:o + l]))
    o += l
print("rcode=%d answers=%s" % (r[3] & 15, ",".join(answers)))
PY
dq() { incl python3 "$tmp/dnsq.py" "$@" 2>&1; }
expect "DNS: an allowed name resolves through the upstream" "rcode=0 answers=203.0.113.10" "$(dq allowed.test A)"
expect "DNS: a wildcard-allowed name resolves" "rcode=0 answers=203.0.113.10" "$(dq x.wild.test A)"
expect "DNS: the wildcard's own suffix is not allowed (NXDOMAIN)" "rcode=3 answers=" "$(dq wild.test A)"
expect "DNS: deny wins over a matching wildcard (NXDOMAIN)" "rcode=3 answers=" "$(dq deny.wild.test A)"
expect "DNS: a name outside the allowlist is NXDOMAIN" "rcode=3 answers=" "$(dq evil.test A)"
expect "DNS: rebinding to 127.0.0.1 is REFUSED" "rcode=5 answers=" "$(dq rebind.test A)"
expect "DNS: rebinding to 10.0.0.5 is REFUSED" "rcode=5 answers=" "$(dq rebind10.test A)"
expect "DNS: the metadata address is REFUSED" "rcode=5 answers=" "$(dq meta.test A)"
expect "DNS: TXT for an allowed name is NOTIMP" "rcode=4 answers=" "$(dq allowed.test TXT)"
expect "DNS: TXT exfiltration to an invented name is NXDOMAIN" "rcode=3 answers=" \
	"$(dq c2VjcmV0LWRhdGE.exfil.evil.test TXT)"
expect "DNS over TCP: an allowed name resolves" "rcode=0 answers=203.0.113.10" "$(dq allowed.test A tcp)"
expect "DNS over TCP: a name outside the allowlist is NXDOMAIN" "rcode=3 answers=" "$(dq evil.test A tcp)"
sleep 0.2
# (the gateway's resolver randomizes the case of names: compare in lower case)
q=$(grep -E 'query\[' "$tmp/dnsmasq.log" | tr A-Z a-z)
contains "the upstream saw the allowed query" "query[a] allowed.test" "$q"
not_contains "no TXT query ever reached the upstream" "query[txt]" "$q"
not_contains "no query for a denied name reached the upstream" "evil.test" "$q"

# --- explicit proxy ---
P=http://198.51.100.1:3128
out=$(incl curl -sS -m 10 --cacert "$tmp/ca.pem" -x $P https://allowed.test/hello 2>&1)
contains "CONNECT to an allowed name reaches the upstream over TLS" "hello from upstream host=allowed.test path=/hello" "$out"
out=$(incl curl -sS -m 10 -x $P http://allowed.test/plain?x=1 2>&1)
contains "plain HTTP forward: origin-form target and Host sent upstream" "host=allowed.test path=/plain?x=1 conn=close" "$out"
cat > "$tmp/raw.py" <<'PY'
# raw.py HOST PORT DATA: send DATA (\r\n escapes), print what comes back
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=15)
s.sendall(sys.argv[3].encode().decode("unicode_escape").encode("latin-1"))
out = b""
try:
    while True:
        c = s.recv(65536)
        if not c: break
        out += c
except Exception as e:
    out += b"[" + type(e).__name__.encode() + b"]"
sys.stdout.write(out.decode("latin-1"))
PY
raw() { incl python3 "$tmp/raw.py" 198.51.100.1 3128 "$1" 2>&1; }
out=$(raw 'CONNECT evil.test:443 HTTP/1.1\r\nHost: evil.test:443\r\n\r\n')
contains "CONNECT to a denied name: 403" "HTTP/1.1 403 Forbidden" "$out"
contains "the 403 says how to allow it" 'evil.test is not in this sandbox'"'"'s allowlist; add it with `paddock allow work evil.test` or network.allow in paddock.yaml' "$out"
out=$(incl curl -sS -m 10 -x $P http://evil.test/ 2>&1)
contains "plain HTTP to a denied name: the 403 body" "paddock allow work evil.test" "$out"
out=$(raw 'CONNECT 203.0.113.10:443 HTTP/1.1\r\nHost: 203.0.113.10:443\r\n\r\n')
contains "CONNECT to a raw IP is refused in filtered mode" "not allowed in filtered mode" "$out"
out=$(raw 'CONNECT rebind.test:80 HTTP/1.1\r\nHost: rebind.test\r\n\r\n')
contains "CONNECT to a name resolving to 127.0.0.1 is refused" "127.0.0.1 (loopback)" "$out"
out=$(raw 'CONNECT rebind10.test:80 HTTP/1.1\r\nHost: rebind10.test\r\n\r\n')
contains "CONNECT to a name resolving to 10.0.0.5 is refused" "10.0.0.5 (private" "$out"
out=$(raw 'CONNECT gwself.test:80 HTTP/1.1\r\nHost: gwself.test\r\n\r\n')
contains "CONNECT to a name resolving to the gateway's own address is refused" "address of the gateway host" "$out"
out=$(incl timeout 10 openssl s_client -proxy 198.51.100.1:3128 -connect allowed.test:443 \
	-servername evil.test -CAfile "$tmp/ca.pem" </dev/null 2>&1)
not_contains "CONNECT allowed.test then SNI evil.test: no TLS session" "BEGIN CERTIFICATE" "$out"
out=$(incl timeout 10 openssl s_client -proxy 198.51.100.1:3128 -connect allowed.test:443 \
	-servername allowed.test -CAfile "$tmp/ca.pem" </dev/null 2>&1)
contains "(control) CONNECT allowed.test with the same SNI completes TLS" "BEGIN CERTIFICATE" "$out"

big=$(python3 -c 'import hashlib; print(hashlib.sha256(bytes(range(256)) * (32 << 10)).hexdigest())')
out=$(incl curl -sS -m 30 --cacert "$tmp/ca.pem" -x $P https://allowed.test/big 2>&1 | sha256sum)
expect "CONNECT relays 8 MiB intact (splice)" "$big  -" "$out"

# --- transparent proxy (TCP 80/443 redirected by nft in gw) ---
out=$(incl curl -sS -m 10 http://allowed.test/t80 2>&1)
contains "transparent 80: an allowed Host reaches the upstream" "host=allowed.test path=/t80" "$out"
out=$(incl curl -sS -m 10 --cacert "$tmp/ca.pem" https://allowed.test/t443 2>&1)
contains "transparent 443: an allowed SNI reaches the upstream" "host=allowed.test path=/t443" "$out"
out=$(incl curl -sS -m 30 http://allowed.test/big 2>&1 | sha256sum)
expect "transparent 80 relays 8 MiB intact" "$big  -" "$out"
out=$(incl curl -sS -m 10 --resolve evil.test:443:203.0.113.10 --cacert "$tmp/ca.pem" https://evil.test/ 2>&1)
not_contains "transparent 443: a denied SNI gets no answer" "hello from upstream" "$out"
out=$(incl curl -sS -m 10 --resolve evil.test:80:203.0.113.10 http://evil.test/ 2>&1)
not_contains "transparent 80: a denied Host gets no answer" "hello from upstream" "$out"
# a forged address for an allowed name: the gateway connects where it resolved
out=$(incl curl -sS -m 10 --resolve allowed.test:80:192.0.2.99 http://allowed.test/forged 2>&1)
contains "transparent 80: a forged address gains nothing (the gateway resolves)" "path=/forged" "$out"
out=$(incl curl -sS -m 5 --resolve allowed.test:443:203.0.113.10 --cacert "$tmp/ca.pem" \
	-H 'Host: evil.test' https://allowed.test/sni-decides 2>&1)
contains "transparent 443: decided by SNI, not by the encrypted Host" "host=evil.test" "$out"
expect "denied names never reached the upstream web server" 0 "$(grep -cx 'evil.test /' "$tmp/upstream.log")"
# Every request of a plain HTTP connection is decided, not only the first:
# a later keep-alive or pipelined request for a denied name at an allowed
# name's address (fronting) is answered 421 and never reaches the upstream.
cat > "$tmp/ka.py" <<'PY'
# ka.py HOST PORT REQ1 REQ2: send REQ1, wait for its answer (when there is
# one: "path=" in it), send REQ2 on the same connection, print all answers
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
req = [a.encode().decode("unicode_escape").encode("latin-1") for a in sys.argv[3:5]]
s.sendall(req[0])
out = b""
try:
    while b"\n" not in out.split(b"path=")[-1] or b"path=" not in out:
        c = s.recv(65536)
        if not c: break
        out += c
    s.sendall(req[1])
    while True:
        c = s.recv(65536)
        if not c: break
        out += c
except OSError as e:
    out += b"[" + type(e).__name__.encode() + b"]"
sys.stdout.write(out.decode("latin-1"))
PY
ka() { incl python3 "$tmp/ka.py" "$@" 2>&1; }
out=$(ka 203.0.113.10 80 'GET /ka1 HTTP/1.1\r\nHost: allowed.test\r\n\r\n' \
	'GET /ka2 HTTP/1.1\r\nHost: evil.test\r\nConnection: close\r\n\r\n')
check "transparent 80 keep-alive: the first request is answered, a second for a denied Host gets 421" \
	bash -c '[[ $1 == *"host=allowed.test path=/ka1"* && $1 == *"421 Misdirected Request"* && $1 != *path=/ka2* ]]' _ "$out"
out=$(ka 203.0.113.10 80 'GET /ka3 HTTP/1.1\r\nHost: allowed.test\r\n\r\n' \
	'GET /ka4 HTTP/1.1\r\nHost: x.wild.test\r\nContent-Length: 5\r\n\r\nhello')
check "transparent 80 keep-alive: even an allowed other name must use a connection of its own (421)" \
	bash -c '[[ $1 == *"path=/ka3"* && $1 == *"421 Misdirected Request"* && $1 != *path=/ka4* ]]' _ "$out"
out=$(raw 'GET http://allowed.test/pl1 HTTP/1.1\r\nHost: allowed.test\r\n\r\nGET http://evil.test/pl2 HTTP/1.1\r\nHost: evil.test\r\n\r\n')
not_contains "explicit proxy, pipelined: a second absolute URI for a denied name is not forwarded" "path=/pl2" "$out"
out=$(ka 198.51.100.1 3128 'CONNECT allowed.test:80 HTTP/1.1\r\nHost: allowed.test:80\r\n\r\nGET /tun1 HTTP/1.1\r\nHost: allowed.test\r\n\r\n' \
	'GET /tun2 HTTP/1.1\r\nHost: evil.test\r\nConnection: close\r\n\r\n')
check "plain HTTP inside a CONNECT tunnel: the same (first answered, a denied Host 421)" \
	bash -c '[[ $1 == *"path=/tun1"* && $1 == *"421 Misdirected Request"* && $1 != *path=/tun2* ]]' _ "$out"
sleep 0.2
expect "none of the later requests for other names reached the upstream" 0 \
	"$(grep -cE '^(evil|x\.wild)\.test /(ka|pl|tun)' "$tmp/upstream.log")"

# --- hostile clients against the standalone gateway ---
cat > "$tmp/hostile.py" <<'PY'
import socket, subprocess, sys, time
what = sys.argv[1]
if what == "slowloris":
    s = socket.create_connection(("198.51.100.1", 3128))
    s.sendall(b"GET http://allowed.test/ HTTP/1.1\r\n")
    t0 = time.time(); closed = None
    for i in range(30):
        try:
            s.sendall(b"X-a: b\r\n")
            s.settimeout(1)
            d = s.recv(4096)
            if not d or b"408" in d:
                closed = time.time() - t0; break
        except socket.timeout:
            pass
        except OSError:
            closed = time.time() - t0; break
    # meanwhile (already checked below by the shell), print when it ended
    print("closed-after=%d" % (closed if closed is not None else -1))
elif what == "bigheader":
    s = socket.create_connection(("198.51.100.1", 3128))
    s.settimeout(10)
    out = b""
    try:
        s.sendall(b"GET http://allowed.test/ HTTP/1.1\r\nX-big: " + b"a" * (1 << 20) + b"\r\n\r\n")
    except OSError:
        pass
    try:
        while True:
            c = s.recv(65536)
            if not c: break
            out += c
    except OSError:
        pass
    print(out.split(b"\r\n")[0].decode() or "closed")
PY
incl python3 "$tmp/hostile.py" slowloris >"$tmp/slow.out" 2>&1 & slow=$!
sleep 1
out=$(incl curl -sS -m 5 -x $P http://allowed.test/during-slowloris 2>&1)
contains "another client works during a slowloris attack" "path=/during-slowloris" "$out"
wait $slow
v=$(sed -n 's/closed-after=//p' "$tmp/slow.out")
check "the slowloris connection is cut after the 10 s head timeout" test "${v:--1}" -ge 9 -a "${v:--1}" -le 13
out=$(incl python3 "$tmp/hostile.py" bigheader 2>&1)
expect "a 1 MB header is answered 431" "HTTP/1.1 431 Request Header Fields Too Large" "$out"
out=$(incl curl -sS -m 5 -x $P http://allowed.test/after 2>&1)
contains "the gateway still serves after the hostile clients" "path=/after" "$out"

# --- the audit events ---
sleep 0.3
ev=$(cat "$tmp/events.jsonl")
contains "event: DNS denial" '"event":"dns","sandbox":"work","name":"evil.test","qtype":"A","verdict":"deny","reason":"not in allowlist"' "$ev"
contains "event: DNS rebinding" '"verdict":"deny","reason":"rebinding: 127.0.0.1 is loopback"' "$ev"
check "event: an allowed CONNECT with its bytes and address" bash -c "grep '\"via\":\"connect\",\"verdict\":\"allow\"' '$tmp/events.jsonl' | grep -q '\"name\":\"allowed.test\",\"addr\":\"203.0.113.10\",\"port\":443.*\"bytes_down\":[1-9]'"
contains "event: SNI refused on the transparent port" '"name":"evil.test","addr":null,"port":443,"via":"transparent-tls","verdict":"deny","reason":"not in allowlist"' "$ev"
contains "event: a later request for a denied Host on a transparent 80 connection" '"name":"evil.test","addr":null,"port":80,"via":"transparent-http","verdict":"deny","reason":"not in allowlist"' "$ev"
contains "event: SNI/CONNECT mismatch" 'SNI evil.test differs from the CONNECT host' "$ev"
check "event: transparent HTTP allowed" grep -q '"via":"transparent-http","verdict":"allow"' "$tmp/events.jsonl"
check "every event line is a JSON object" python3 -c "
import json,sys
for l in open('$tmp/events.jsonl'): assert isinstance(json.loads(l), dict)"

# --- daemon mode: --control-fd, sockets passed by SCM_RIGHTS ---
cat > "$tmp/control.py" <<'PY'
import array, json, os, socket, subprocess, sys, time
eg, up = sys.argv[1], sys.argv[2]
def tap(ok, what): print(("ok" if ok else "not ok") + " - " + what, flush=True)
def listeners(base):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("198.51.100.1", base))
    fds = [u]
    for p in (base, base + 1, base + 2):
        t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t.bind(("198.51.100.1", p)); t.listen(4096); fds.append(t)
    return fds
ctl, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
p = subprocess.Popen([eg, "--control-fd", str(theirs.fileno()), "--dns-upstream", up],
                     pass_fds=[theirs.fileno()], stderr=subprocess.PIPE)
theirs.close()
events = []
def send(obj, socks=()):
    fds = [s.fileno() for s in socks]
    anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
    ctl.sendmsg([json.dumps(obj).encode()], anc)
    for s in socks: s.close()
    while True:
        m = json.loads(ctl.recv(65536))
        if "event" in m: events.append(m); continue
        return m
def proxy(port, data):
    s = socket.create_connection(("198.51.100.1", port), timeout=10)
    s.sendall(data); out = b""
    while True:
        c = s.recv(65536)
        if not c: break
        out += c
    return out.decode("latin-1")
get = b"GET http://allowed.test/ctl HTTP/1.1\r\nHost: allowed.test\r\n\r\n"
r = send({"op": "add", "sandbox": "a", "mode": "filtered", "allow": [], "deny": []}, listeners(4100))
tap(r == {"ok": True}, "control: add with 4 fds")
tap("not in this sandbox" in proxy(4101, get), "control: empty allowlist refuses allowed.test")
r = send({"op": "policy", "sandbox": "a", "mode": "filtered", "allow": ["allowed.test"]})
tap(r == {"ok": True} and "path=/ctl" in proxy(4101, get), "control: live policy change lets allowed.test through")
r = send({"op": "add", "sandbox": "a", "mode": "open"}, listeners(4200)[:3])
tap(r.get("ok") is False and "fds" in r.get("error", ""), "control: add with 3 fds is refused")
r = send({"op": "nope", "sandbox": "a"})
tap(r.get("ok") is False, "control: unknown op is refused")
r = send({"op": "add", "sandbox": "b", "mode": "open", "allow": [], "deny": ["evil.test"]}, listeners(4300))
tap(r == {"ok": True}, "control: a second sandbox (open mode)")
tap("path=/ctl" in proxy(4301, get) and "403" in proxy(4301, b"GET http://evil.test/ HTTP/1.1\r\n\r\n"),
    "control: open mode allows any name but the denied one")
# sandbox a floods its proxy with connections; b must still work
flood, t0 = [], time.time()
for i in range(3000):
    try:
        flood.append(socket.create_connection(("198.51.100.1", 4101), timeout=2))
    except OSError:
        break
time.sleep(0.5)
st = send({"op": "stats", "sandbox": "a"})
tap(st.get("connections", 0) <= 1024 and st.get("limited", 0) > 0,
    "control: sandbox a is held to 1024 connections (%s held, %s refused)" % (st.get("connections"), st.get("limited")))
tap("path=/ctl" in proxy(4301, get), "control: sandbox b works while a floods (%d opened)" % len(flood))
for s in flood: s.close()
r = send({"op": "remove", "sandbox": "a"})
try:
    socket.create_connection(("198.51.100.1", 4101), timeout=2); closed = False
except OSError:
    closed = True
tap(r == {"ok": True} and closed, "control: remove closes the sandbox's listeners")
time.sleep(0.2)
ctl.setblocking(False)
try:
    while True: events.append(json.loads(ctl.recv(65536)))
except BlockingIOError:
    pass
kinds = {(e.get("event"), e.get("sandbox"), e.get("verdict")) for e in events}
tap(("connect", "a", "allow") in kinds and ("connect", "a", "deny") in kinds and ("limit", "a", None) in kinds,
    "control: connect and limit events arrive on the control socket")
ctl.close()
try:
    p.wait(timeout=3); ok = True
except subprocess.TimeoutExpired:
    p.kill(); ok = False
tap(ok and p.returncode == 0, "control: EOF on the control socket makes the gateway exit 0")
PY
while read -r line; do
	case "$line" in
	"ok - "*) ok 0 "${line#ok - }" ;;
	"not ok - "*) ok 1 "${line#not ok - }" ;;
	*) diag "$line" ;;
	esac
done < <(ingw python3 "$tmp/control.py" "$EG" 203.0.113.10 2>&1)

# --- usage errors ---
out=$("$EG" --sandbox x --mode weird --proxy 127.0.0.1:1 2>&1); rc=$?
expect "a bad --mode exits 2 with one line naming the flag" "2 1 yes" \
	"$rc $(echo "$out" | wc -l) $(case "$out" in *--mode*) echo yes;; esac)"

kill "$egpid" 2>/dev/null
t=$tmp
cleanup
trap - EXIT
check "no stand-in or gateway process is left" bash -c "sleep 0.3; ! pgrep -f '[${t:0:1}]${t:1}'"
leak_check "after the egress tests"
finish
