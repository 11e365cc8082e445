"""Run a command and kill it when the Python process that started us dies.

Usage: python -I -S _watchdog.py LIFELINE_FD PIDFILE GRACE [CLEANUP_DIR|-] -- CMD...

Stdlib only and run by path, so it never imports fastprod (nor its compiled kernels).

Two independent guards, so no JVM outlives its owner whatever way the owner dies
(exception, Ctrl-C, SIGKILL, OOM killer):
- LIFELINE_FD is the read end of a pipe whose write end only the owner holds. The kernel
  closes it when the owner exits for any reason; we see EOF and stop the command
  (SIGTERM, then SIGKILL after GRACE seconds).
- The command itself gets PR_SET_PDEATHSIG=SIGKILL towards us, so if this watchdog is
  SIGKILLed the command dies with it. (We are single-threaded, which is what makes the
  per-thread death signal and preexec_fn safe here, unlike in the owner.)
SIGTERM to the watchdog is forwarded to the command, whose exit status we then return.
"""

from __future__ import annotations

import ctypes
import os
import select
import shutil
import signal
import subprocess
import sys
import time

PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the watchdog died before prctl took effect
        os._exit(1)


def main(argv: list[str]) -> int:
    sep = argv.index("--")
    fd_s, pidfile, grace_s, cleanup = argv[:sep]
    cmd = argv[sep + 1 :]
    lifeline, grace = int(fd_s), float(grace_s)
    me = os.getpid()

    proc = subprocess.Popen(cmd, preexec_fn=lambda: _die_with_parent(me), stdin=subprocess.DEVNULL)
    tmp = pidfile + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(str(proc.pid))
    os.replace(tmp, pidfile)

    def forward(signum: int, _frame: object) -> None:
        try:
            proc.send_signal(signum)
        except OSError:
            pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    # pidfd (Linux 5.3+) lets us sleep until either the owner or the command goes away.
    pidfd = None
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        pass
    watch = [lifeline] + ([pidfd] if pidfd is not None else [])

    owner_gone = False
    while proc.poll() is None:
        try:
            ready, _, _ = select.select(watch, [], [], 1.0 if pidfd is not None else 0.2)
        except InterruptedError:
            continue
        if lifeline in ready and not os.read(lifeline, 1):
            owner_gone = True
            break
    if owner_gone:
        forward(signal.SIGTERM, None)
        deadline = time.monotonic() + grace
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        # Nobody is left to clean up after the owner: remove the node's dir, and the
        # cluster dir once the last node is gone.
        if cleanup != "-":
            shutil.rmtree(cleanup, ignore_errors=True)
            try:
                os.rmdir(os.path.dirname(cleanup.rstrip("/")))
            except OSError:
                pass
    rc = proc.returncode
    return 128 - rc if rc < 0 else rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
