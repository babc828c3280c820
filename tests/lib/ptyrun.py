#!/usr/bin/env python3
"""Run a command under a fresh pseudo-terminal, as a user's shell would.

usage: ptyrun.py [--cols N --rows N] [--send TEXT@DELAY ...] [--signal SIG@DELAY]
                 [--resize COLSxROWS@DELAY] -- CMD...
Prints everything the command wrote to the terminal, then "[exit N]".
"""
import os, pty, select, signal, struct, sys, termios, fcntl, time

def main():
    args = sys.argv[1:]
    cols, rows, events = 80, 24, []
    while args and args[0] != "--":
        opt, val = args[0], args[1]
        args = args[2:]
        if opt == "--cols": cols = int(val)
        elif opt == "--rows": rows = int(val)
        else:
            what, _, delay = val.rpartition("@")
            events.append((float(delay), opt, what))
    cmd = args[1:]
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(cmd[0], cmd)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    start, out, status = time.time(), b"", None
    events.sort()
    while True:
        now = time.time() - start
        while events and events[0][0] <= now:
            _, opt, what = events.pop(0)
            if opt == "--send":
                os.write(fd, what.encode().decode("unicode_escape").encode())
            elif opt == "--signal":
                os.kill(pid, getattr(signal, what))
            elif opt == "--resize":
                c, r = what.split("x")
                fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", int(r), int(c), 0, 0))
                os.kill(pid, signal.SIGWINCH)
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            if not data:
                break
            out += data
        if status is None:
            p, st = os.waitpid(pid, os.WNOHANG)
            if p:
                status = st
        if now > 30:
            os.kill(pid, signal.SIGKILL)
    if status is None:
        _, status = os.waitpid(pid, 0)
    sys.stdout.write(out.decode(errors="replace"))
    sys.stdout.write("\n[exit %d]\n" % (os.waitstatus_to_exitcode(status) if status >= 0 else -1))

main()
