#!/usr/bin/env bash
# Run on a terminal after a command: was anything pushed into its input?
# Prints CLEAN or INJECTED:<char>. script(1) sends its own end-of-file as
# ^D (0x04); when that arrives while paddock holds the terminal raw it stays
# queued as a byte: that one is script's, not an injection, and is skipped.
while IFS= read -r -s -t 1 -n 1 c; do
	[ "$c" = $'\x04' ] && continue
	echo "INJECTED:$c"
	exit 0
done
echo CLEAN
