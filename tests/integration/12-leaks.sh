#!/usr/bin/env bash
# Leaving nothing behind: normal exit, setup failure, and paddock itself
# killed with SIGKILL mid-run.
. tests/lib/tap.sh
plan 8
pdrun -- true; leak_check "after a normal run"
pdrun --mount /nonexistent:/x -- true 2>/dev/null; leak_check "after a setup failure"
# (the binary itself in the background, so that $! is paddock's pid)
"$PADDOCK_BIN" run --image "$ROOTFS" --workspace none -- sleep 30 & p=$!
sleep 1
kill -KILL $p; wait $p 2>/dev/null
leak_check "after SIGKILL of paddock run mid-run"
out=$(pgrep -f 'sleep 30' | wc -l); expect "the sandbox's processes died with it" 0 "$out"
# Kill during setup, 50 ms after the start.
"$PADDOCK_BIN" run --image "$ROOTFS" --workspace none -- sh -c 'sleep 30 & sleep 30 & wait' & p=$!
sleep 0.05; kill -KILL $p; wait $p 2>/dev/null
leak_check "after SIGKILL during setup"
# Kill the whole process group (watcher has its own session and survives).
setsid sh -c "exec $PADDOCK_BIN run --image $ROOTFS --workspace none -- sleep 30" & p=$!
sleep 1; kill -KILL -- -$p 2>/dev/null; wait $p 2>/dev/null
leak_check "after SIGKILL of paddock's whole process group"
for i in $(seq 20); do pdrun -- true || break; done
expect "20 runs in a row succeed" 20 "$i"
leak_check "after 20 runs"
finish
