# tests/lib/escape.sh: helpers of the escape tests (sourced after tap.sh).
#
#   attempt DESC WANT_RC WANT CMD...   ok when CMD exits WANT_RC and the
#                                      probe prints WANT
#   deny DESC WANT PROBE-ARGS...       attempt with the probe in a sandbox
#                                      on the test rootfs, expecting exit 1

# attempt DESC WANT_RC WANT CMD...: ok when CMD exits WANT_RC and the probe's
# line is WANT (a glob; a trailing " (detail)" is allowed).
attempt() {
	local desc=$1 want_rc=$2 want=$3 out rc line
	shift 3
	out=$("$@" 2>&1 </dev/null)
	rc=$?
	line=$(printf '%s\n' "$out" | grep -m1 -E '^(ok|blocked)')
	# shellcheck disable=SC2053 # $want is a pattern
	if [ "$rc" -eq "$want_rc" ] && [[ $line == $want || $line == $want" ("* ]]; then
		ok 0 "escape: $desc"
	else
		ok 1 "escape: $desc"
		diag "want: exit $want_rc, '$want'"
		diag " got: exit $rc, $(printf %q "$out" | head -c 400)"
	fi
}
deny() { local d=$1 w=$2; shift 2; attempt "$d" 1 "$w" pdrun -- probe "$@"; }
