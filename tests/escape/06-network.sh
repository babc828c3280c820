#!/usr/bin/env bash
# tests/escape/06-network.sh: reach the host's services from inside with
# --network off: its loopback (TCP, UDP, IPv4 and IPv6), its own address,
# abstract and path Unix sockets, raw and packet sockets, vsock; then the
# same host services from a filtered sandbox (the default mode), with
# paddock and the services in the namespace T of tests/lib/netlab.sh.
# A small server on the host logs every connection and datagram it gets:
# each attempt must fail inside AND leave that log empty. Nothing here sends
# a packet off this machine: every address is the host's own or the lab's.
# (tests/escape/07-egress.sh attacks the filtered network itself.)
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/tap.sh
. tests/lib/escape.sh
. tests/lib/netlab.sh
# The attempts of deny/pdrun use --network off, unless a test says otherwise.
pdrun() { "$PADDOCK_BIN" run --image "$ROOTFS" --workspace none --network off "$@"; }
LEAK_BASE0=$LEAK_BASE

# host_saw KIND: what the host server logged for KIND (empty: nothing).
host_saw() { grep "^$1 " "$T/log" 2>/dev/null; }

T=$(mktemp -d /tmp/escape-net.XXXXXX)
SERVER=
LAB_SERVER=
cleanup() {
	[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
	[ -n "$LAB_SERVER" ] && kill "$LAB_SERVER" 2>/dev/null && wait "$LAB_SERVER" 2>/dev/null
	SERVER='' LAB_SERVER=''
	nl_teardown
	rm -rf "$T"
}
trap cleanup EXIT
HOST_IP=$(ip -4 -o addr show scope global 2>/dev/null | awk '{ sub("/.*", "", $4); print $4; exit }')

# The host's services: TCP on 127.0.0.1, [::1] and the host's own address,
# a UDP echo on 127.0.0.1, an abstract Unix socket, and a path Unix socket
# in a directory owned by an ordinary user (uid 1000), which the sandbox
# will mount read-only. Ports are picked by the kernel.
mkdir "$T/svc"
cat >"$T/server.py" <<'EOF'
import os, selectors, socket, sys
d, host_ip, abstract = sys.argv[1], sys.argv[2], sys.argv[3]
log = open(d + "/log", "a", buffering=1)
sel = selectors.DefaultSelector()
ports = {}
def listen(kind, fam, typ, addr):
    s = socket.socket(fam, typ)
    s.bind(addr)
    if typ == socket.SOCK_STREAM:
        s.listen(16)
    sel.register(s, selectors.EVENT_READ, kind)
    if fam != socket.AF_UNIX:
        ports[kind] = s.getsockname()[1]
listen("tcp4", socket.AF_INET, socket.SOCK_STREAM, ("127.0.0.1", 0))
listen("udp4", socket.AF_INET, socket.SOCK_DGRAM, ("127.0.0.1", 0))
try:
    listen("tcp6", socket.AF_INET6, socket.SOCK_STREAM, ("::1", 0))
except OSError:
    pass
if host_ip:
    listen("tcphost", socket.AF_INET, socket.SOCK_STREAM, (host_ip, 0))
listen("abstract", socket.AF_UNIX, socket.SOCK_STREAM, "\0" + abstract)
path = d + "/svc/agent.sock"
listen("path", socket.AF_UNIX, socket.SOCK_STREAM, path)
os.chown(path, 1000, 1000)
os.chmod(path, 0o600)
with open(d + "/ports.tmp", "w") as f:
    for k, v in ports.items():
        f.write("PORT_%s=%d\n" % (k.upper(), v))
os.rename(d + "/ports.tmp", d + "/ports")
while True:
    for key, _ in sel.select():
        s = key.fileobj
        if s.type == socket.SOCK_DGRAM:
            data, peer = s.recvfrom(2048)
            log.write("%s %r\n" % (key.data, peer))
            s.sendto(data, peer)
        else:
            c, peer = s.accept()
            log.write("%s %r\n" % (key.data, peer))
            c.close()
EOF
ABSTRACT=paddock-escape-$$
chown 1000:1000 "$T/svc"
python3 "$T/server.py" "$T" "$HOST_IP" "$ABSTRACT" &
SERVER=$!
for _ in $(seq 50); do [ -f "$T/ports" ] && break; sleep 0.1; done
PORT_TCP4='' PORT_UDP4='' PORT_TCP6='' PORT_TCPHOST=''
# shellcheck disable=SC1091
. "$T/ports"

plan 39

# The server really answers on the host: the probe run outside a sandbox
# gets through (so a "blocked" inside means something).
PROBE=$ROOTFS/usr/local/bin/probe
check "the host server answers TCP on 127.0.0.1 (probe run on the host)" \
	"$PROBE" connect 127.0.0.1 "$PORT_TCP4"
check "the host's UDP echo answers (probe run on the host)" "$PROBE" udp_send 127.0.0.1 "$PORT_UDP4"
check "the host's abstract socket answers (probe run on the host)" \
	"$PROBE" unix_connect "@$ABSTRACT"
: >"$T/log"

# ---- loopback ---------------------------------------------------------------------
deny "TCP to the host's 127.0.0.1:$PORT_TCP4 meets the sandbox's own loopback (ECONNREFUSED)" \
	"blocked: ECONNREFUSED" connect 127.0.0.1 "$PORT_TCP4"
expect "escape: the host's TCP server saw no connection" "" "$(host_saw tcp4)"
if [ -n "$PORT_TCP6" ]; then
	deny "TCP to the host's [::1]:$PORT_TCP6 is refused (ECONNREFUSED)" "blocked: ECONNREFUSED" \
		connect ::1 "$PORT_TCP6"
	expect "escape: the host's IPv6 server saw no connection" "" "$(host_saw tcp6)"
else
	ok 0 "escape: TCP to the host's [::1] # SKIP no IPv6 loopback on the host"
	ok 0 "escape: the host's IPv6 server saw no connection # SKIP no IPv6 loopback"
fi
deny "UDP to the host's 127.0.0.1:$PORT_UDP4 gets no answer (ECONNREFUSED)" \
	"blocked: ECONNREFUSED" udp_send 127.0.0.1 "$PORT_UDP4"
expect "escape: the host's UDP echo saw no datagram" "" "$(host_saw udp4)"
if [ -n "$PORT_TCPHOST" ]; then
	deny "TCP to the host's own address $HOST_IP has no route (ENETUNREACH)" \
		"blocked: ENETUNREACH" connect "$HOST_IP" "$PORT_TCPHOST"
	expect "escape: the host's server on $HOST_IP saw no connection" "" "$(host_saw tcphost)"
else
	ok 0 "escape: TCP to the host's own address # SKIP the host has no global IPv4 address"
	ok 0 "escape: the host's server on its address saw no connection # SKIP no address"
fi
out=$(pdrun -- cat /proc/net/dev 2>&1 </dev/null | awk 'NR > 2 { sub(":", "", $1); print $1 }')
expect "escape: the sandbox's only network interface is lo" "lo" "$out"
leak_check "after the loopback attempts"

# ---- Unix sockets ---------------------------------------------------------------------
deny "the host's abstract Unix socket @$ABSTRACT is out of reach (ECONNREFUSED)" \
	"blocked: ECONNREFUSED" unix_connect "@$ABSTRACT"
expect "escape: the host's abstract socket saw no connection" "" "$(host_saw abstract)"
# A read-only mount is not a write channel: a service's socket inside it
# (an agent, docker.sock, a language server) must not be reachable.
attempt "a host Unix socket inside a read-only --mount cannot be connected to" 1 "blocked: E*" \
	pdrun --mount "$T/svc:/svc" -- probe unix_connect /svc/agent.sock
expect "escape: the host service behind that socket saw no connection" "" "$(host_saw path)"
out=$(pd run --image "$ROOTFS" --workspace none --network off --mount "$T/svc/agent.sock:/s" -- true 2>&1 \
	</dev/null)
expect "escape: --mount of the socket itself is refused (exit 125)" 125 "$?"
diag "$out"
leak_check "after the Unix socket attempts"

# ---- raw, packet and vsock sockets ----------------------------------------------------------
deny "a raw IPv4 socket needs CAP_NET_RAW, which is dropped (EPERM)" "blocked: EPERM" raw_socket
deny "an AF_PACKET socket is refused (EPERM)" "blocked: EPERM" packet_socket
# vsock is not network-namespaced on this kernel: a socket could reach the
# hypervisor (CID 2) past --network off. Docker's profile refuses the family.
# Only the socket is created and bound locally; nothing is sent.
deny "an AF_VSOCK socket (host/hypervisor channel, not namespaced) is refused (EPERM)" \
	"blocked: EPERM" vsock_socket
leak_check "after the raw socket attempts"

# ---- filtered (the default): the same host services, paddock in the lab's T -------------------
nl_setup || { echo "Bail out! the lab did not come up: $(cat "$NLD/servers.err" 2>/dev/null)"; exit 1; }
LEAK_BASE=$(leak_state)
mkdir -p "$T/lab/svc"
nsenter --net="/run/netns/$NL_T" python3 "$T/server.py" "$T/lab" 198.51.100.1 "$ABSTRACT" &
LAB_SERVER=$!
for _ in $(seq 50); do [ -f "$T/lab/ports" ] && break; sleep 0.1; done
PORT_TCP4='' PORT_UDP4='' PORT_TCP6='' PORT_TCPHOST=''
# shellcheck disable=SC1091
. "$T/lab/ports"
lab_saw() { grep "^$1 " "$T/lab/log" 2>/dev/null; }
check "(control) T's server answers on T's address (probe run in T)" \
	inT "$PROBE" connect 198.51.100.1 "$PORT_TCPHOST"
sleep 0.2
: >"$T/lab/log"
# fdeny DESC WANT PROBE-ARGS...: deny, in a filtered sandbox in T
fdeny() { local d=$1 w=$2; shift 2; attempt "filtered: $d" 1 "$w" tpd run --image "$ROOTFS" --workspace none -- probe "$@"; }
fdeny "TCP to T's 127.0.0.1:$PORT_TCP4 meets the sandbox's own loopback (ECONNREFUSED)" \
	"blocked: ECONNREFUSED" connect 127.0.0.1 "$PORT_TCP4"
expect "escape: filtered: T's TCP server on 127.0.0.1 saw no connection" "" "$(lab_saw tcp4)"
if [ -n "$PORT_TCP6" ]; then
	fdeny "TCP to T's [::1]:$PORT_TCP6: no IPv6 inside (EADDRNOTAVAIL)" "blocked: EADDRNOTAVAIL" \
		connect ::1 "$PORT_TCP6"
	expect "escape: filtered: T's IPv6 server saw no connection" "" "$(lab_saw tcp6)"
else
	ok 0 "escape: filtered: TCP to T's [::1] # SKIP no IPv6 loopback in T"
	ok 0 "escape: filtered: T's IPv6 server saw no connection # SKIP no IPv6 loopback"
fi
fdeny "UDP to T's 127.0.0.1:$PORT_UDP4 gets no answer (ECONNREFUSED)" \
	"blocked: ECONNREFUSED" udp_send 127.0.0.1 "$PORT_UDP4"
expect "escape: filtered: T's UDP echo saw no datagram" "" "$(lab_saw udp4)"
fdeny "TCP to T's own address 198.51.100.1:$PORT_TCPHOST is dropped (ETIMEDOUT)" \
	"blocked: ETIMEDOUT" connect 198.51.100.1 "$PORT_TCPHOST"
expect "escape: filtered: T's server on its address saw no connection" "" "$(lab_saw tcphost)"
fdeny "T's abstract Unix socket @$ABSTRACT is out of reach (ECONNREFUSED)" \
	"blocked: ECONNREFUSED" unix_connect "@$ABSTRACT"
expect "escape: filtered: T's abstract socket saw no connection" "" "$(lab_saw abstract)"
fdeny "an AF_VSOCK socket is refused (EPERM)" "blocked: EPERM" vsock_socket
out=$(tpd run --image "$ROOTFS" --workspace none -- cat /proc/net/dev 2>&1 </dev/null |
	awk 'NR > 2 { sub(":", "", $1); print $1 }' | sort | tr '\n' ' ')
expect "escape: filtered: the sandbox's interfaces are eth0 and lo" "eth0 lo " "$out"
expect "escape: filtered: no stray packet from the sandbox (nft counters in T and U)" 0 "$(nl_stray)"
nl_clean "after the filtered attempts"
cleanup
trap - EXIT
LEAK_BASE=$LEAK_BASE0
leak_check "after the network escape attempts (lab removed)"
finish
