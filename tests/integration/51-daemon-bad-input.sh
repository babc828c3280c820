#!/usr/bin/env bash
# paddockd and bad input over its socket: truncated and oversized frames,
# requests that are not JSON objects, unknown requests, bad names, silence,
# garbage, and many idle connections. Each gets a clear one-line error (or
# the connection is closed) and the daemon keeps serving others.
. tests/lib/tap.sh
. tests/lib/daemon.sh
plan 55
trap daemon_cleanup EXIT
daemon_start || { echo "Bail out! paddockd did not start"; exit 1; }
cat > "$DT/cl.py" <<'EOF'
# cl.py SOCK CASE: send one kind of bad input, print what came back:
# "error: MSG" (a JSON error), "ok: JSON", "closed", or "silent" (nothing
# within the wait).
import json, os, socket, struct, sys, time
sock, case = sys.argv[1], sys.argv[2]
def frame(t, payload, length=None):
    n = len(payload) if length is None else length
    return bytes([ord(t)]) + struct.pack(">I", n)[1:] + payload
def req(obj):
    return frame("J", json.dumps(obj).encode())
sends = {
    "truncated": frame("J", b'{"op":"ls"', 40),
    "huge": bytes([ord("J"), 0xff, 0xff, 0xff]) + b"{",  # 16 MiB - 1 announced
    "huge-data": bytes([ord("I"), 0xff, 0xff, 0xff]),
    "not-json": frame("J", b"hello, daemon"),
    "array": frame("J", b'["op", "ls"]'),
    "string": frame("J", b'"ls"'),
    "no-op": req({"name": "x"}),
    "op-not-string": req({"op": 5}),
    "unknown-op": req({"op": "frobnicate"}),
    "exec-no-name": req({"op": "exec", "argv": ["true"]}),
    "up-dotdot": req({"op": "up", "name": "../x"}),
    "up-slash": req({"op": "up", "name": "a/b"}),
    "down-dotdot": req({"op": "down", "name": "../x"}),
    "exec-slash": req({"op": "exec", "name": "a/b", "argv": ["true"]}),
    "logs-dotdot": req({"op": "logs", "name": ".."}),
    "name-not-string": req({"op": "down", "name": ["x"]}),
    "first-not-json": frame("I", b"data"),
    "garbage": bytes(range(255, 0, -7)) * 20,
    "deep": frame("J", b"[" * 200000 + b"]" * 200000),
    "dup-keys": frame("J", b'{"op":"ls","op":"down"}'),
    "max-ok": req({"op": "ls", "pad": "x" * ((1 << 20) - 40)}),
    "idle": b"",
}
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sock)
data = sends[case]
try:
    s.sendall(data)
except OSError:
    pass
if case == "truncated":
    s.shutdown(socket.SHUT_WR)
s.settimeout(15 if case == "idle" else 5)
buf = b""
try:
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
except socket.timeout:
    if not buf:
        print("silent"); sys.exit(0)
except ConnectionResetError:
    pass
if len(buf) < 4:
    print("closed"); sys.exit(0)
t, n = chr(buf[0]), int.from_bytes(buf[1:4], "big")
ans = json.loads(buf[4:4 + n])
if ans.get("ok"):
    print("ok: " + json.dumps(ans)[:200])
else:
    print("error: " + ans.get("error", "?"))
EOF
try() { python3 "$DT/cl.py" "$DSOCK" "$1" 2>&1; }
serves() { pd ls >/dev/null 2>&1; }
one_line() { [ "$(printf '%s\n' "$1" | wc -l)" -eq 1 ]; }
fds0=$(pd daemon-status | jq_py "j['fds']")

out=$(try truncated)
expect "a truncated frame, then end of input: the daemon closes" closed "$out"
check "... and serves the next client" serves
out=$(try huge)
contains "a header announcing 16 MiB of JSON: an error" "error: protocol: message too large" "$out"
check "... and serves the next client" serves
out=$(try huge-data)
contains "a 16 MiB stream frame: an error" "error: protocol: message too large" "$out"
for c in not-json array string; do
	out=$(try $c)
	contains "a request that is $c: 'not a JSON object'" "error: protocol: the request is not a JSON object" "$out"
	ok $(one_line "$out" && echo 0 || echo 1) "... on one line"
done
check "... and the daemon serves the next client" serves
out=$(try no-op); contains "a request without op: says so" 'error: protocol: the request has no "op"' "$out"
out=$(try op-not-string); contains "op not a string: says there is no op" 'has no "op"' "$out"
out=$(try unknown-op); contains "an unknown op: named in the error" 'error: protocol: unknown request "frobnicate"' "$out"
check "... and the daemon serves the next client" serves
out=$(try exec-no-name); contains "exec without a name: invalid name" "error: invalid sandbox name ''" "$out"
for c in up-dotdot up-slash down-dotdot exec-slash logs-dotdot name-not-string; do
	out=$(try $c)
	contains "$c: refused as an invalid name" "error: invalid sandbox name" "$out"
	ok $(one_line "$out" && echo 0 || echo 1) "... on one line"
done
expect "no sandbox was made by any of it" "" "$(pd ls | tail -n +2)$(ls -d "$SBDIR/x" "$SBDIR/a" 2>/dev/null)"
check "... and the daemon serves the next client" serves
out=$(try first-not-json); contains "a stream frame before the request: an error" "error: protocol: the first frame must be a JSON request" "$out"
out=$(try garbage); contains "binary garbage: an error" "error: protocol: unknown frame type" "$out"
check "... and the daemon serves the next client" serves
out=$(try deep); contains "JSON nested 200000 deep: an error, no crash" "error: protocol: the request is not a JSON object" "$out"
check "... and the daemon serves the next client" serves
out=$(try dup-keys); contains "duplicate keys: refused" "error: protocol: the request is not a JSON object" "$out"
out=$(try max-ok); contains "a request of almost 1 MiB is still served" "ok: " "$out"
check "... and the daemon serves the next client" serves

# a client that says nothing: an error after 10 s; others are served meanwhile
t0=$(date +%s.%N)
try idle > "$DT/idle.out" & ip=$!
sleep 0.5
check "while a silent client waits, others are served" serves
wait $ip
t1=$(date +%s.%N)
contains "a silent client gets an error" "error: protocol: no request within 10 s" "$(cat "$DT/idle.out")"
ok $(python3 -c "import sys; sys.exit(0 if 9 <= $t1 - $t0 <= 13 else 1)" && echo 0 || echo 1) "... after about 10 s ($(python3 -c "print(round($t1 - $t0, 1))") s)"
check "... and the daemon serves the next client" serves

# 200 idle connections at once
python3 - "$DSOCK" 200 > "$DT/many.out" 2>&1 <<'EOF' & mp=$!
import socket, sys, time
conns = []
for i in range(int(sys.argv[2])):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sys.argv[1])
    conns.append(s)
print("connected", len(conns), flush=True)
time.sleep(4)
EOF
for i in $(seq 50); do grep -q connected "$DT/many.out" && break; sleep 0.1; done
contains "200 connections are accepted" "connected 200" "$(cat "$DT/many.out")"
cl=$(pd daemon-status | jq_py "j['clients']")
ok $([ "${cl:-0}" -ge 200 ] && echo 0 || echo 1) "the daemon counts them ($cl clients)"
check "with 200 idle connections, ls is served" serves
check "... and so is an up" pd up "${SBP}x" --image "$ROOTFS" --workspace none --network off
expect "... and an exec" hello "$(pd exec "${SBP}x" -- echo hello 2>&1)"
check "... and a down" pd down "${SBP}x"
wait $mp
for i in $(seq 50); do
	cl=$(pd daemon-status | jq_py "j['clients']")
	[ "$cl" = 1 ] && break
	sleep 0.1
done
expect "when they close, the daemon forgets them (1 client: this one)" 1 "$cl"

# more than it serves (1024): the next one is told why, and service resumes
python3 - "$DSOCK" 1100 > "$DT/many.out" 2>&1 <<'EOF' & mp=$!
import resource, socket, sys, time
resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
conns = []
for i in range(int(sys.argv[2])):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sys.argv[1])
    conns.append(s)
print("connected", len(conns), flush=True)
time.sleep(3)
EOF
for i in $(seq 100); do grep -q connected "$DT/many.out" && break; sleep 0.1; done
out=$(pd ls 2>&1); rc=$?
ok $((rc == 0)) "with 1100 connections open, a new client is refused"
contains "... with a clear error" "too many connections" "$out"
wait $mp
for i in $(seq 50); do serves && break; sleep 0.1; done
check "when they close, service resumes" serves
expect "the daemon's fds are back where they were" "$fds0" "$(pd daemon-status | jq_py "j['fds']")"
ok $(kill -0 "$DPID" 2>/dev/null && echo 0 || echo 1) "the daemon is still the same process"
finish
