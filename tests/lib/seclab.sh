# tests/lib/seclab.sh: an upstream that echoes the headers it receives, for
# tests of secrets end to end, sourced after tests/lib/netlab.sh (and after
# nl_setup). It adds to the lab, without changing what netlab.sh set up:
#
#   U: 203.0.113.20 on u-t (a second address)
#      HTTPS :443 and HTTP :80 for api.sec.test, other.sec.test,
#        *.wild.sec.test (certificate from the lab's test CA)
#      dnsmasq :53 answering *.sec.test with 203.0.113.20 (and nothing else)
#
# The server answers each request with one JSON line: path, the client's
# port (one port for several requests: one connection), and the headers it
# got (name in lower case -> value; a value longer than 256 bytes is cut and
# its length given as "<name>#len"). Under /digest/ it answers with sha256
# digests of the values instead, so that a sandbox never sees a value. It
# logs every request in full (JSON lines) to $SL_LOG on the host side.
#
#   sl_setup              start it (after nl_setup; non-zero on failure)
#   spd ARGS              the paddock CLI in T: the gateway's DNS upstream is
#                         the dnsmasq above, and it trusts the lab's CA for
#                         the upstreams it re-encrypts to
#   sl_leak_check DESC    leak_check, leaving out what other tests running at
#                         the same time leave (see below)
#   sl_seen PATH HEADER   the values of HEADER the upstream got for PATH
#                         (one per line, in order)
#   sl_count PATH         how many requests for PATH the upstream got
#   sl_peers PREFIX       how many distinct client ports sent paths starting
#                         with PREFIX (1: one connection)
#   $SL_UP                the server's address; $NLD/pub/other-ca.pem: a CA
#                         nobody uses (for clients that must not trust the
#                         gateway); nl_teardown stops and removes everything
SL_UP=203.0.113.20
SL_LOG=$NLD/sec-up.jsonl

spd() {
	PADDOCK_DNS_UPSTREAM=$SL_UP PADDOCK_UPSTREAM_CA=$NLD/pub/ca.pem \
		nsenter --net="/run/netns/$NL_T" "$NL_PADDOCK" "$@" <&0 &
	local p=$!
	echo "$p" >>"$NLD/spd.pids"
	wait "$p"
}

# sl_leak_check DESC: leak_check (tests/lib/tap.sh) that leaves out what is
# certainly someone else's, for a machine where other tests run at the same
# time: the host's network namespace (paddock runs only in T here), cgroups
# and directories of named sandboxes not named $SBP*, run-PID cgroups of
# CLIs that spd did not start, and benchmarks' temporary directories.
sl_leak_check() {
	local new i
	for i in 1 2 3 4 5 6 7 8 9 10; do
		new=$(leak_new | sl_mine)
		[ -z "$new" ] && break
		sleep 0.3
	done
	if [ -z "$new" ]; then ok 0 "nothing left behind ${1:-}"; else
		ok 1 "nothing left behind ${1:-}"; echo "$new" | sed 's/^/# left: /' | head -20
	fi
}
sl_mine() {
	local sbp=${SBP:-/} pids
	pids=" $(cat "$NLD/spd.pids" 2>/dev/null | xargs) "
	while IFS= read -r l; do
		case $l in
		"veth "* | "nft table inet paddock") continue ;;
		/sys/fs/cgroup/*/paddock/sb-"$sbp"* | /sys/fs/cgroup/paddock/sb-"$sbp"*) ;;
		/sys/fs/cgroup/*/sb-*) continue ;;
		/sys/fs/cgroup/*/run-*)
			local p=${l##*/run-}
			case $pids in *" ${p%%-*} "*) ;; *) continue ;; esac ;;
		*/sandboxes/"$sbp"*) ;;
		*/sandboxes/*) continue ;;
		/tmp/paddock-bench*) continue ;;
		esac
		echo "$l"
	done
}

sl_setup() {
	ip -n "$NL_U" addr add "$SL_UP/24" dev u-t || return 1
	(
		cd "$NLD" || exit 1
		openssl req -newkey rsa:2048 -nodes -keyout sec.key -out sec.csr -subj /CN=api.sec.test 2>/dev/null &&
			printf 'subjectAltName=DNS:api.sec.test,DNS:other.sec.test,DNS:*.wild.sec.test\n' >sec.ext &&
			openssl x509 -req -in sec.csr -CA pub/ca.pem -CAkey ca.key -CAcreateserial \
				-out sec.pem -days 2 -extfile sec.ext 2>/dev/null &&
			openssl req -x509 -newkey rsa:2048 -nodes -keyout other-ca.key -out pub/other-ca.pem \
				-days 2 -subj /CN=pdtest-other-ca 2>/dev/null
	) || return 1
	chmod 644 "$NLD/pub/other-ca.pem"
	: >"$SL_LOG"
	cat >"$NLD/echo.py" <<'PY'
import hashlib, http.client, http.server, json, socketserver, ssl, sys, threading
http.client._MAXLINE = 1 << 18  # a 64 KB header line must pass here
addr, cert, key, logf = sys.argv[1:5]
LOG = open(logf, "a", buffering=1)
lock = threading.Lock()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def handle_one(self):
        n = int(self.headers.get("Content-Length", "0") or 0)
        body = self.rfile.read(n) if n else b""
        hdrs = [[k, v] for k, v in self.headers.items()]
        with lock:
            LOG.write(json.dumps({"path": self.path, "peer": self.client_address[1],
                                  "headers": hdrs, "body": body.decode("latin-1")}) + "\n")
        if self.path.startswith("/digest/"):
            ans = {k.lower(): hashlib.sha256(v.encode("latin-1")).hexdigest() for k, v in hdrs}
        else:
            ans = {}
            for k, v in hdrs:
                k = k.lower()
                if len(v) > 256:
                    ans[k + "#len"] = len(v)
                    v = v[:256]
                ans[k] = v
        out = (json.dumps({"path": self.path, "peer": self.client_address[1], "headers": ans}) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    do_GET = do_POST = handle_one
    def log_message(self, *a): pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
plain, tls = S((addr, 80), H), S((addr, 443), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
tls.socket = ctx.wrap_socket(tls.socket, server_side=True, do_handshake_on_connect=False)
threading.Thread(target=plain.serve_forever, daemon=True).start()
tls.serve_forever()
PY
	nsenter --net="/run/netns/$NL_U" python3 "$NLD/echo.py" "$SL_UP" "$NLD/sec.pem" "$NLD/sec.key" \
		"$SL_LOG" 2>>"$NLD/echo.err" &
	NL_PIDS+=($!)
	nsenter --net="/run/netns/$NL_U" dnsmasq --no-daemon --no-resolv --no-hosts --bind-interfaces \
		--listen-address="$SL_UP" --port=53 --pid-file= --user=root --log-queries --log-facility=- \
		--local=/test/ --address=/sec.test/$SL_UP 2>"$NLD/sec-dnsmasq.log" &
	NL_PIDS+=($!)
	nl_wait_tcp "$NL_U" "$SL_UP" 443 && nl_wait_tcp "$NL_U" "$SL_UP" 80 &&
		nl_wait_tcp "$NL_U" "$SL_UP" 53 || return 1
	sleep 0.1
	: >"$SL_LOG"
}

sl_seen() {
	sleep 0.1
	python3 - "$SL_LOG" "$1" "$2" <<'PY'
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["path"] == sys.argv[2]:
        print("\n".join(v for k, v in r["headers"] if k.lower() == sys.argv[3].lower()))
PY
}
sl_count() { sleep 0.1; python3 -c '
import json, sys
print(sum(1 for l in open(sys.argv[1]) if json.loads(l)["path"] == sys.argv[2]))' "$SL_LOG" "$1"; }
sl_peers() { sleep 0.1; python3 -c '
import json, sys
print(len({json.loads(l)["peer"] for l in open(sys.argv[1]) if json.loads(l)["path"].startswith(sys.argv[2])}))' "$SL_LOG" "$1"; }
