#!/usr/bin/env bash
# Secrets end to end (issue 6): paddock.yaml secrets:, `paddock run` and named
# sandboxes through paddockd, with the real clients (curl, openssl, node)
# inside. paddock runs in the lab's namespace T (tests/lib/netlab.sh); the
# upstream is tests/lib/seclab.sh's server in U, which echoes the headers it
# got (api.sec.test, other.sec.test, *.wild.sec.test, certificate from the
# lab's test CA, which the gateway is told to trust). Values are random per
# run and never written where a sandbox can read them; searches inside a
# sandbox use a pattern that matches the value without containing it.
. tests/lib/tap.sh
. tests/lib/netlab.sh
. tests/lib/daemon.sh
plan 96
LEAK_BASE0=$LEAK_BASE
SEC=$(mktemp -d /var/tmp/pdtest-sec43.XXXXXX) # the host's side: specs, secret files (not mounted)
chmod 700 "$SEC"
cleanup() { daemon_cleanup; nl_teardown; rm -rf "$SEC"; }
trap cleanup EXIT
nl_setup || { echo "Bail out! the lab did not come up: $(cat "$NLD/servers.err" 2>/dev/null)"; exit 1; }
. tests/lib/seclab.sh
sl_setup || { echo "Bail out! the echo upstream did not come up: $(cat "$NLD/echo.err" 2>/dev/null)"; exit 1; }
LEAK_BASE=$(leak_state)
ok 0 "the lab is up, with an upstream that echoes headers (api.sec.test, other.sec.test, *.wild.sec.test)"

rnd() { openssl rand -hex "$1"; }
V1=sk-live-$(rnd 20) V2=ghp_$(rnd 18) V3=file-$(rnd 16) V4=cmd-$(rnd 16)
# a regular expression that matches VALUE but does not contain it
pat() { printf '%s[%s]%s' "${1:0:6}" "${1:6:1}" "${1:7}"; }
PH_RE='^paddock-secret-[0-9a-f]{32}$'
LAB=(--workspace none --mount "$NLD/pub:/lab")
ALLOW='allow: [api.sec.test, other.sec.test, "*.wild.sec.test"]'
cat >"$SEC/run.yaml" <<Y
network:
  mode: filtered
  $ALLOW
secrets:
  API_KEY: {from: env, hosts: [api.sec.test, "*.wild.sec.test"]}
  GH_TOKEN: {from: env, hosts: [other.sec.test]}
  FILE_TOKEN: {from: "file:$SEC/file-token", hosts: [api.sec.test]}
  CMD_TOKEN: {from: "cmd:echo $V4", hosts: [api.sec.test]}
Y
printf '%s\n' "$V3" >"$SEC/file-token"
export API_KEY=$V1 GH_TOKEN=$V2
# srun SCRIPT [ARGS]: run SCRIPT with sh in a sandbox of run.yaml (stderr too)
srun() { local s=$1; shift; spd run -f "$SEC/run.yaml" "${LAB[@]}" "$@" -- sh -c "$s" 2>&1 </dev/null; }
# the value of "x-api-key" (or HEADER) in the echo's JSON lines, one per line
echoed() { python3 -c '
import json, sys
for l in sys.stdin:
    l = l.strip()
    if l.startswith("{"):
        print(json.loads(l)["headers"].get(sys.argv[1], "-"))' "${1:-x-api-key}"; }

# ---- placeholders ----------------------------------------------------------------------
out=$(srun 'echo "$API_KEY"; echo "$GH_TOKEN"; echo "$FILE_TOKEN"; echo "$CMD_TOKEN"')
P1=$(echo "$out" | sed -n 1p) P2=$(echo "$out" | sed -n 2p)
check "inside, \$API_KEY is a placeholder paddock-secret-<32 hex> ($P1)" bash -c "[[ '$P1' =~ $PH_RE ]]"
check "... and so are GH_TOKEN, FILE_TOKEN (file:) and CMD_TOKEN (cmd:)" bash -c \
	"[ \$(echo '$out' | grep -cE '$PH_RE') = 4 ]"
expect "each secret has its own placeholder" 4 "$(echo "$out" | sort -u | grep -c .)"
out2=$(srun 'echo "$API_KEY"')
check "another run gets another placeholder for the same secret" bash -c "[[ '$out2' =~ $PH_RE && '$out2' != '$P1' ]]"

# ---- injection: transparent 443 and CONNECT ------------------------------------------------
out=$(srun 'curl -sS -m 10 --noproxy "*" -H "x-api-key: $API_KEY" https://api.sec.test/t443')
expect "transparent 443 (curl --noproxy '*'): the upstream echoes the real value" "$V1" "$(echo "$out" | echoed)"
out=$(srun 'echo "$HTTPS_PROXY" | grep -q :3128 && curl -sS -m 10 -H "x-api-key: $API_KEY" https://api.sec.test/connect')
expect "CONNECT (curl through HTTPS_PROXY): the real value arrives" "$V1" "$(echo "$out" | echoed)"
out=$(srun 'curl -sS -m 10 -H "Authorization: Bearer $GH_TOKEN" https://other.sec.test/bearer')
expect "a second secret, inside Authorization: Bearer, for its own host" "Bearer $V2" "$(echo "$out" | echoed authorization)"
out=$(srun 'curl -sS -m 10 -H "x-api-key: $API_KEY" https://x.wild.sec.test/wild')
expect "a host matched by \"*.wild.sec.test\" in hosts: gets the value" "$V1" "$(echo "$out" | echoed)"
out=$(srun 'curl -sS -m 10 -H "x-f: $FILE_TOKEN" -H "x-c: $CMD_TOKEN" https://api.sec.test/sources')
expect "from: \"file:PATH\" (trailing newline dropped) and from: \"cmd:echo ...\" are injected" \
	"$V3 $V4" "$(echo "$out" | echoed x-f) $(echo "$out" | echoed x-c)"
out=$(srun 'curl -sS -m 10 -H "x-api-key: not-a-placeholder" https://api.sec.test/plain-hdr')
expect "(control) a header without a placeholder passes unchanged" "not-a-placeholder" "$(echo "$out" | echoed)"

# ---- keep-alive, a split placeholder, a 64 KB header ----------------------------------------------
out=$(srun 'curl -sS -m 10 -H "x-api-key: $API_KEY" -w "connects=%{num_connects}\n" \
	https://api.sec.test/ka/1 https://api.sec.test/ka/2 https://api.sec.test/ka/3')
expect "keep-alive: curl opened one connection for three URLs" "1 0 0" "$(echo "$out" | sed -n 's/^connects=//p' | xargs)"
expect "keep-alive: each of the three requests carried the real value" "$V1 $V1 $V1" "$(echo "$out" | echoed | xargs)"
expect "keep-alive: the upstream saw them on one connection too" 1 "$(sl_peers /ka/)"
# openssl s_client writes what it reads from stdin as it comes: two TLS
# records, the placeholder cut after 20 of its characters
out=$(srun '(printf "GET /split HTTP/1.1\r\nHost: api.sec.test\r\nx-api-key: %s" "$(echo "$API_KEY" | cut -c1-20)"
	sleep 0.5; printf "%s\r\nConnection: close\r\n\r\n" "$(echo "$API_KEY" | cut -c21-)"; sleep 2) |
	openssl s_client -quiet -connect api.sec.test:443 -servername api.sec.test 2>/dev/null')
expect "a placeholder split across two TLS records (transparent 443) is still replaced" "$V1" "$(echo "$out" | echoed)"
out=$(srun 'big=$(head -c 65536 /dev/zero | tr "\0" b); curl -sS -m 10 -H "x-big: $big" -H "x-api-key: $API_KEY" https://api.sec.test/big')
expect "a 64 KB header passes, and the value next to it is injected" "65536 $V1" \
	"$(echo "$out" | echoed 'x-big#len') $(echo "$out" | echoed)"

# ---- exfiltration ---------------------------------------------------------------------------------------
out=$(srun 'curl -sS -m 10 -H "x-api-key: $API_KEY" -w "\ncode=%{http_code}\n" https://other.sec.test/exfil-hdr')
contains "API_KEY's placeholder to other.sec.test (allowed, not its host): 403" "code=403" "$out"
contains "... naming the secret and the host" "secret API_KEY, which is only sent to api.sec.test, *.wild.sec.test; other.sec.test is not one of its hosts" "$out"
out=$(srun 'curl -sS -m 10 --noproxy "*" -w "\ncode=%{http_code}\n" "https://other.sec.test/exfil-url?k=$FILE_TOKEN"')
contains "a placeholder in the URL, over transparent 443, to another host: 403" "code=403" "$out"
out=$(srun 'curl -sS -m 10 -w "\ncode=%{http_code}\n" -H "x-api-key: $API_KEY" http://api.sec.test/cleartext')
contains "a placeholder in plain HTTP, even to its own host: refused" "code=403" "$out"
expect "none of these reached the upstream" "0 0 0" "$(sl_count /exfil-hdr) $(sl_count '/exfil-url?k=' ) $(sl_count /cleartext)"
not_contains "... (nor any request under /exfil)" "/exfil" "$(cat "$SL_LOG")"

# ---- failing closed --------------------------------------------------------------------------------------
out=$(srun 'curl -sS -m 10 --noproxy "*" --cacert /lab/other-ca.pem -H "x-api-key: $API_KEY" https://api.sec.test/untrusted-t; echo rc=$?
	curl -sS -m 10 --cacert /lab/other-ca.pem -H "x-api-key: $API_KEY" https://api.sec.test/untrusted-c; echo rc=$?
	echo | openssl s_client -connect api.sec.test:443 -servername api.sec.test -CAfile /lab/other-ca.pem -verify_return_error 2>&1 |
		grep -E -e "^verify error" -e "BEGIN CERTIFICATE" -e "^Verify return code"')
expect "a client that trusts another CA fails (transparent, CONNECT: curl exit 60)" "rc=60 rc=60" "$(echo "$out" | grep '^rc=' | xargs)"
contains "... and openssl s_client with -verify_return_error aborts the handshake" "verify error:num=20" "$out"
not_contains "... before any certificate is shown as a session's" "BEGIN CERTIFICATE" "$out"
expect "... and the upstream saw no request from them" "0 0" "$(sl_count /untrusted-t) $(sl_count /untrusted-c)"
out=$(srun 'curl -sS -m 10 --cacert /lab/ca.pem -H "x-api-key: $API_KEY" https://api.sec.test/labca; echo rc=$?')
expect "a client that trusts only the upstream's real CA (not the sandbox's) fails too" "rc=60 0" \
	"$(echo "$out" | grep '^rc=') $(sl_count /labca)"

# ---- nothing of the values inside (paddock run) -------------------------------------------------------------
ALLP="$(pat "$V1")|$(pat "$V2")|$(pat "$V3")|$(pat "$V4")"
out=$(srun "P='$ALLP'"'
	echo "$API_KEY" >/tmp/ctl-planted
	echo "env=$(env | grep -cE "$P")"
	echo "environ=$(cat /proc/[0-9]*/environ | tr "\0" "\n" | grep -cE "$P")"
	echo "files=$(grep -rlE -D skip --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev "$P" / 2>/dev/null | head -5 | xargs)"
	echo "ctl-env=$(cat /proc/[0-9]*/environ | tr "\0" "\n" | grep -c "^API_KEY=paddock-secret-")"
	echo "ctl-files=$(grep -rlF -D skip --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev "$API_KEY" / 2>/dev/null | xargs)"
	echo "ca=$(grep -c "BEGIN CERTIFICATE" /etc/ssl/certs/paddock-ca.crt) $NODE_EXTRA_CA_CERTS $SSL_CERT_FILE"')
expect "run: no value in the environment (env)" "env=0" "$(echo "$out" | grep '^env=')"
expect "run: no value in any /proc/*/environ" "environ=0" "$(echo "$out" | grep '^environ=')"
expect "run: no value in any file the sandbox can read (grep -r /)" "files=" "$(echo "$out" | grep '^files=')"
check "(control) the same searches find the placeholder in environ, and in a planted file" \
	bash -c "echo '$out' | grep -qE '^ctl-env=[1-9]' && echo '$out' | grep -qx 'ctl-files=/tmp/ctl-planted'"
expect "run: the gateway's CA is installed, NODE_EXTRA_CA_CERTS and SSL_CERT_FILE point at the store" \
	"ca=1 /etc/ssl/certs/paddock-ca.crt /etc/ssl/certs/ca-certificates.crt" "$(echo "$out" | grep '^ca=')"

# ---- a missing source fails cleanly (paddock run) ---------------------------------------------------------------
nl_clean "after the runs"
sl_leak_check "after the runs"
out=$(unset API_KEY; srun 'echo RAN'; echo "rc=$?")
rc=$(echo "$out" | sed -n 's/^rc=//p') out=$(echo "$out" | grep -v '^rc=')
expect "run: API_KEY not in the environment: exit 125" 125 "$rc"
expect "... one line on stderr" 1 "$(echo "$out" | grep -c .)"
contains "... naming the secret" "secret API_KEY: the environment variable API_KEY is not set" "$out"
not_contains "... and the command did not run" "RAN" "$out"
nl_clean "after the failed run"
sl_leak_check "after the failed run"
out=$(mv "$SEC/file-token" "$SEC/file-token.off"; srun 'echo RAN'; echo "rc=$?"; mv "$SEC/file-token.off" "$SEC/file-token")
contains "run: a missing file: source: exit 125, naming the secret" "rc=125" "$out"
contains "... naming the secret and the file" "secret FILE_TOKEN: reading $SEC/file-token" "$out"
sed "s|cmd:echo $V4|cmd:false|" "$SEC/run.yaml" >"$SEC/run-cmdfail.yaml"
out=$(spd run -f "$SEC/run-cmdfail.yaml" "${LAB[@]}" -- sh -c 'echo RAN' 2>&1 </dev/null; echo "rc=$?")
contains "run: a failing cmd: source: exit 125, naming the secret" "rc=125" "$out"
contains "... and the command" "secret CMD_TOKEN: the command 'false' failed" "$out"
nl_clean "after the failed sources"
sl_leak_check "after the failed sources"

# ---- node (fetch) in an image that has it ------------------------------------------------------------------------
mkdir -p "$SEC/agents" && printf 'image:\n  agents: [claude, codex, opencode]\n' >"$SEC/agents/paddock.yaml"
t0=$(date +%s)
nimg=$(cd "$SEC/agents" && "$NL_PADDOCK" image build --quiet . 2>"$SEC/agents/err")
nrc=$? t1=$(date +%s)
if [ $nrc -eq 0 ] && [ -x "$nimg/usr/bin/node" ]; then
	[ $((t1 - t0)) -gt 10 ] && diag "built the agents image for node ($((t1 - t0)) s, cached from now on)"
	out=$(srun "node -e \"fetch('https://api.sec.test/node',{headers:{'x-api-key':process.env.API_KEY}}).then(r=>r.text()).then(console.log,e=>console.log('ERR',e.cause||e))\"" --image "$nimg")
	expect "node fetch (NODE_EXTRA_CA_CERTS, transparent 443): the real value arrives" "$V1" "$(echo "$out" | echoed)"
	out=$(srun "node -e \"fetch('https://other.sec.test/node-exfil',{headers:{'x-api-key':process.env.API_KEY}}).then(r=>console.log(r.status))\"" --image "$nimg")
	expect "node fetch: the placeholder to another host gets 403" 403 "$out"
else
	ok 1 "node fetch: the agents image (node) could not be built"; sed 's/^/# /' "$SEC/agents/err" | tail -n 5
	ok 1 "node fetch: exfiltration"
fi

# ---- named sandboxes through paddockd (in T) --------------------------------------------------------------------------
cat >"$SEC/named.yaml" <<Y
network:
  mode: filtered
  $ALLOW
secrets:
  API_KEY: {from: env, hosts: [api.sec.test]}
  GH_TOKEN: {from: "file:$SEC/gh-token", hosts: [other.sec.test]}
Y
printf '%s\n' "$V2" >"$SEC/gh-token"
DPID=
# Started as the CLI and the service start it: a clean environment (this
# shell exports API_KEY for the CLI; a sanitizer runtime, for one, keeps its
# own copy of the environment it started with).
env -i PATH="$PATH" PADDOCK_DNS_UPSTREAM="$SL_UP" nsenter --net="/run/netns/$NL_T" "$PADDOCKD" \
	--socket "$DSOCK" --db "$DDB" --upstream-ca "$NLD/pub/ca.pem" >>"$DT/paddockd.log" 2>&1 &
DPID=$!
for _ in $(seq 100); do pd daemon-status >/dev/null 2>&1 && break; sleep 0.05; done
check "paddockd is up in T (--upstream-ca: the lab's CA)" pd daemon-status
A=${SBP}sec M=${SBP}miss
ex() { pd exec "$A" -- sh -c "$1" 2>&1 </dev/null; }
out=$(env -u API_KEY "$PADDOCK_BIN" up "$M" -f "$SEC/named.yaml" "${LAB[@]}" 2>&1); rc=$?
expect "up with API_KEY unset: exit 125" 125 "$rc"
expect "... one line, naming the secret" "1 1" "$(echo "$out" | grep -c .) $(echo "$out" | grep -c 'secret API_KEY')"
check "... and no such sandbox exists" bash -c "! '$PADDOCK_BIN' ls --json | grep -q '\"$M\"' && ! ls -d '$SBDIR/$M' 2>/dev/null"
out=$(pd up "$A" -f "$SEC/named.yaml" "${LAB[@]}" 2>&1)
expect "up a named sandbox with secrets (env, file)" "$A" "$out"
PA=$(ex 'echo "$API_KEY"') PG=$(ex 'echo "$GH_TOKEN"')
check "named: placeholders inside, differing from the runs' and from each other" \
	bash -c "[[ '$PA' =~ $PH_RE && '$PG' =~ $PH_RE && '$PA' != '$P1' && '$PA' != '$PG' ]]"
sha() { printf %s "$1" | sha256sum | cut -d' ' -f1; }
# the sandbox gets digests only (/digest/): it never sees a value
out=$(ex 'curl -sS -m 10 -H "x-api-key: $API_KEY" https://api.sec.test/digest/n1; curl -sS -m 10 --noproxy "*" -H "x-gh: $GH_TOKEN" https://other.sec.test/digest/n2')
expect "named: API_KEY injected over CONNECT (the upstream got it)" "$V1" "$(sl_seen /digest/n1 x-api-key)"
expect "named: GH_TOKEN (file:) injected over transparent 443" "$V2" "$(sl_seen /digest/n2 x-gh)"
expect "(control) what the sandbox got back is the digest of the value, not the value" \
	"$(sha "$V1") $(sha "$V2")" "$(echo "$out" | echoed x-api-key | head -n1) $(echo "$out" | echoed x-gh | tail -n1)"
out=$(ex 'curl -sS -m 10 -H "x-api-key: $API_KEY" -w "\ncode=%{http_code}\n" https://other.sec.test/exfil-named')
contains "named: API_KEY's placeholder to other.sec.test: 403 naming the secret and the host" \
	"secret API_KEY, which is only sent to api.sec.test; other.sec.test is not one of its hosts" "$out"
expect "... and it did not reach the upstream" 0 "$(sl_count /exfil-named)"

ev=$(sleep 0.3; pd events --sandbox "$A" --json 2>&1)
has_event() { echo "$ev" | python3 -c "
import json, sys
want = json.loads(sys.argv[1])
for l in sys.stdin:
    e = json.loads(l)
    d = dict(e.get('detail') or {}, kind=e.get('kind'))
    if all(d.get(k) == v for k, v in want.items()):
        sys.exit(0)
sys.exit(1)" "$1"; }
check "events: exfiltration (secret, host, where: header)" \
	has_event '{"kind":"exfiltration","secret":"API_KEY","host":"other.sec.test","where":"header"}'
check "events: inject of API_KEY for api.sec.test" has_event '{"kind":"inject","secret":"API_KEY","host":"api.sec.test"}'
check "events: the connection to api.sec.test was intercepted" has_event '{"kind":"connect","name":"api.sec.test","intercept":true}'
check "events: no value in them" bash -c '! printf %s "$0" | grep -qF -e "$1" -e "$2"' "$ev" "$V1" "$V2"

out=$(pd secrets "$A" 2>&1)
contains "paddock secrets: lists API_KEY with its host" "api.sec.test" "$(echo "$out" | grep '^API_KEY ')"
contains "paddock secrets: lists GH_TOKEN with its source and host" "file:$SEC/gh-token" "$(echo "$out" | grep '^GH_TOKEN ')"
expect "paddock secrets: injection counts (API_KEY 1, GH_TOKEN 1)" "1 1" \
	"$(echo "$out" | awk '$1 == "API_KEY" || $1 == "GH_TOKEN" {print $2}' | xargs)"
js=$(pd secrets "$A" --json 2>&1)
expect "paddock secrets --json: names, hosts, injections" "API_KEY:api.sec.test:1 GH_TOKEN:other.sec.test:1" \
	"$(echo "$js" | jq_py "' '.join('%s:%s:%s' % (x['name'], ','.join(x['hosts']), x['injections']) for x in j)" 2>&1)"
check "paddock secrets: no value, no placeholder (text and JSON)" \
	bash -c '! printf %s "$0" | grep -qF -e "$1" -e "$2" -e "$3"' "$out$js" "$V1" "$V2" "$PA"

# ---- rotation -------------------------------------------------------------------------------------------------------
V1b=sk-rot-$(rnd 20) V2b=ghp_rot$(rnd 18)
printf '%s\n' "$V2b" >"$SEC/gh-token"
out=$(echo "$V1b" | pd secrets set "$A" API_KEY 2>&1); rc=$?
expect "paddock secrets set (value on stdin) exits 0, silent" "0 " "$rc $out"
out=$(ex 'echo "$API_KEY"; curl -sS -m 10 -o /dev/null -H "x-api-key: $API_KEY" https://api.sec.test/digest/rot1
	curl -sS -m 10 -o /dev/null -H "x-gh: $GH_TOKEN" https://other.sec.test/digest/rot2')
expect "rotation: the next request carries the new value, no restart" "$V1b" "$(sl_seen /digest/rot1 x-api-key)"
expect "rotation: the other secret was read again from its file" "$V2b" "$(sl_seen /digest/rot2 x-gh)"
expect "rotation: the placeholder inside is unchanged" "$PA" "$(echo "$out" | head -n1)"
expect "paddock secrets: the counts go on (API_KEY 2)" 2 \
	"$(pd secrets "$A" --json | jq_py "[x['injections'] for x in j if x['name']=='API_KEY'][0]" 2>&1)"
out=$(echo "x" | pd secrets set "$A" NOPE 2>&1); rc=$?
check "secrets set of an unknown secret fails" test "$rc" -ne 0

# ---- the values are nowhere but the gateway ---------------------------------------------------------------------------
VALS=("$V1" "$V2" "$V1b" "$V2b")
pd exec -d "$A" -- sh -c 'exec sleep 600' >/dev/null 2>&1 </dev/null
sleep 0.5
cg=$(find /sys/fs/cgroup -maxdepth 4 -type d -name "sb-$A" 2>/dev/null | head -n1)
pids=$(find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -un | xargs)
check "the sandbox's processes, from its cgroup ($cg): init, sleep, at least 2" bash -c "[ $(echo $pids | wc -w) -ge 2 ]"
dump=$(python3 - "$pids" "$PA" "${VALS[@]}" 2>"$SEC/dump.err" <<'PY'
import sys
pids, needles = sys.argv[1].split(), [n.encode() for n in sys.argv[2:]]
hits, total = [0] * len(needles), 0
for pid in pids:
    try:
        maps = open("/proc/%s/maps" % pid).read().splitlines()
        mem = open("/proc/%s/mem" % pid, "rb", 0)
    except OSError as e:
        print("# cannot read %s: %s" % (pid, e), file=sys.stderr)
        continue
    for line in maps:
        f = line.split()
        if f[1][0] != "r" or line.endswith(("[vvar]", "[vsyscall]")):
            continue
        lo, hi = (int(x, 16) for x in f[0].split("-"))
        # An ASan build's shadow memory reserves terabytes: not ours to scan
        # (a value would be in the heap, the stack or a library's data).
        if hi - lo > (1 << 30):
            continue
        data = b""
        for off in range(lo, hi, 16 << 20):
            try:
                mem.seek(off)
                data += mem.read(min(16 << 20, hi - off))
            except (OSError, ValueError, OverflowError):
                break
        total += len(data)
        for i, n in enumerate(needles):
            c = data.count(n)
            hits[i] += c
            if c and i:
                print("# value %d: %d in pid %s (%s) %s" % (i, c, pid,
                      open("/proc/%s/comm" % pid).read().strip(), f[-1] if len(f) > 5 else "anon"),
                      file=sys.stderr)
print(total, *hits)
PY
)
diag "memory dump of pids $pids: $(echo "$dump" | cut -d' ' -f1) bytes"
check "(control) the memory dump finds the placeholder" bash -c "[ $(echo "$dump" | cut -d' ' -f2) -gt 0 ]"
expect "no value (old or rotated) in the memory of the sandbox's processes" "0 0 0 0" "$(echo "$dump" | cut -d' ' -f3-)"
sort "$SEC/dump.err" | uniq | head -n 10
out=$(ex "P='$(pat "$V1")|$(pat "$V2")|$(pat "$V1b")|$(pat "$V2b")'"'
	echo "env=$(env | grep -cE "$P")"
	echo "environ=$(cat /proc/[0-9]*/environ | tr "\0" "\n" | grep -cE "$P")"
	echo "files=$(grep -rlE -D skip --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev "$P" / 2>/dev/null | head -5 | xargs)"
	echo "ctl=$(cat /proc/[0-9]*/environ | tr "\0" "\n" | grep -c "^API_KEY=paddock-secret-")"')
expect "named: no value in env, /proc/*/environ, nor any readable file (grep -r /)" "env=0 environ=0 files=" \
	"$(echo "$out" | grep -E '^(env|environ|files)=' | xargs)"
check "(control) ... where the placeholder is found in the environs" bash -c "echo '$out' | grep -qE '^ctl=[1-9]'"
up_dir=$SBDIR/$A/upper
check "the sandbox's upper dir is on the host ($up_dir)" test -d "$up_dir"
ex 'echo "$API_KEY" >/root/ph-planted || echo "$API_KEY" >/tmp/ph-planted' >/dev/null
check "(control) a planted placeholder shows in the upper dir" bash -c "grep -rqF '$PA' '$up_dir'"
check "no value in the upper dir on the host" bash -c "! grep -rqF $(printf -- "-e '%s' " "${VALS[@]}") '$up_dir'"
check "(control) the daemon's database names the secret" bash -c "cat '$DDB'* | grep -qa API_KEY"
check "no value in the daemon's database files ($(ls "$DDB"* | xargs -n1 basename | xargs))" \
	bash -c "! cat '$DDB'* | grep -qaF $(printf -- "-e '%s' " "${VALS[@]}")"
check "no value in the daemon's log" bash -c "! grep -qaF $(printf -- "-e '%s' " "${VALS[@]}") '$DT/paddockd.log'"
check "no value anywhere in the sandbox's state directory ($SBDIR/$A)" bash -c \
	"! grep -rqaF -D skip $(printf -- "-e '%s' " "${VALS[@]}") --exclude-dir=merged --exclude-dir=rootfs '$SBDIR/$A'"

# ---- stop / start: values read again ----------------------------------------------------------------------------------
V1c=sk-start-$(rnd 20)
pd stop "$A" >/dev/null 2>&1
out=$(API_KEY=$V1c pd start "$A" 2>&1); rc=$?
expect "paddock start (reads the sources again) exits 0" "0 " "$rc $out"
out=$(ex 'echo "$API_KEY"; curl -sS -m 10 -o /dev/null -H "x-api-key: $API_KEY" https://api.sec.test/digest/restart')
expect "after start: the value from the environment of paddock start is injected" "$V1c" "$(sl_seen /digest/restart x-api-key)"
ph=$(echo "$out" | head -n1)
check "after start: still a placeholder inside ($ph)" bash -c "[[ '$ph' =~ $PH_RE ]]"
out=$(pd stop "$A" >/dev/null 2>&1; env -u API_KEY "$PADDOCK_BIN" start "$A" 2>&1); rc=$?
expect "paddock start with API_KEY unset: exit 125 naming the secret" "125 1" "$rc $(echo "$out" | grep -c 'secret API_KEY')"

out=$(pd down "$A" 2>&1)
expect "down the named sandbox" 0 $?
no_leftovers "nothing of the named sandboxes is left (cgroups, directories, processes)"
check "no value in the daemon's database or log after down" \
	bash -c "! cat '$DDB'* '$DT/paddockd.log' | grep -qaF $(printf -- "-e '%s' " "${VALS[@]}" "$V1c")"
NL_GATEWAY_STAYS=1 nl_clean "after paddock down (but the daemon's gateway)"
daemon_stop
nl_clean "after paddockd stopped (its gateway is gone)"

# ---- teardown ----------------------------------------------------------------------------------------------------------
cleanup
trap - EXIT
LEAK_BASE=$LEAK_BASE0
leak_check "after the secrets sandbox tests (lab removed)"
finish
