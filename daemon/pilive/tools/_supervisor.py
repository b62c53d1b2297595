"""The tool supervisor: runs one command tool's program and, when it ends, everything it started.

    python -I -S _supervisor.py DAEMON_PID -- PROGRAM [ARG...]

A process group is not enough to end a tool: a child that calls `setsid()` (or double-forks the
way daemons do) leaves the group and outlives the call. So each program runs under this small
process, which makes itself a child subreaper (PR_SET_CHILD_SUBREAPER): every orphan among the
program's descendants is re-parented here instead of to init, so all of them stay findable as
this process's children. When the program exits, or when the daemon asks with SIGTERM (timeout,
output cap, cancellation, shutdown), or when the daemon dies (PR_SET_PDEATHSIG), it kills its
children with SIGKILL and reaps them, round after round, until it has none; then it ends the way
the program ended (same status, or the same signal), so the daemon reports what the program did.

The program also gets PR_SET_NO_NEW_PRIVS (a setuid binary cannot raise its privileges) and only
stdin, stdout and stderr (the daemon closes the rest when it starts this process).

Standard library only, single-threaded, started with -I -S so it loads nothing from the daemon's
environment (about 20 ms and 10 MB for its lifetime on a PC, a few times that on a Pi Zero 2 W).
If it cannot start the program it says so on stderr after `START_FAILED` and exits with 127.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time

START_FAILED = "pilive-supervisor: could not start"
_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_NO_NEW_PRIVS = 38
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class _Stop(Exception):
    """The daemon asked us to end the call (or went away)."""


def _prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, value, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


def _stop(signum: int, frame: object) -> None:
    raise _Stop


def _children() -> list[int]:
    """This process's children (the program, and every orphan re-parented to us)."""
    me = os.getpid()
    try:
        with open(f"/proc/{me}/task/{me}/children", encoding="ascii") as listing:
            return [int(pid) for pid in listing.read().split()]
    except OSError:
        pass  # a kernel without CONFIG_PROC_CHILDREN: look at every process's parent
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it ended meanwhile
        if int(fields[1]) == me:
            found.append(int(entry))
    return found


def _kill_everything() -> None:
    """SIGKILL every child and reap it; the orphans that re-parents here come next round."""
    while True:
        for pid in _children():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        reaped = False
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return  # no children left at all
            if pid == 0:
                break
            reaped = True
        if not reaped:
            time.sleep(0.001)  # killed, not yet dead: let them go


def _end_like(status: int) -> None:
    """Exit with the program's status, or die of the signal that killed it."""
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        _prctl(_PR_SET_DUMPABLE, 0)  # the program may have dumped core; we must not
        with contextlib.suppress(OSError, ValueError):  # SIGKILL/SIGSTOP cannot be reset
            signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    sys.exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1)


def main(argv: list[str]) -> None:
    if len(argv) < 3 or argv[1] != "--":
        sys.exit(f"usage: {os.path.basename(__file__)} DAEMON_PID -- PROGRAM [ARG...]")
    daemon_pid, program = int(argv[0]), argv[2:]
    for signum in _STOP_SIGNALS:
        signal.signal(signum, _stop)
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    _prctl(_PR_SET_NO_NEW_PRIVS, 1)
    if os.getppid() != daemon_pid:
        return  # the daemon died before PDEATHSIG was set
    status = None
    try:
        try:
            child = os.posix_spawnp(program[0], program, os.environ)
        except OSError as exc:
            print(f"{START_FAILED} {program[0]!r}: {exc.strerror or exc}", file=sys.stderr)
            sys.exit(127)
        while status is None:
            pid, wait_status = os.waitpid(-1, 0)  # reaps re-parented orphans meanwhile
            if pid == child:
                status = wait_status
    except _Stop:
        pass
    finally:
        # Block the stop signals before ignoring them: a second one (the timeout and the
        # daemon's death can both send one) must not raise _Stop inside this clean-up.
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        for signum in _STOP_SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
        _kill_everything()
    if status is None:
        sys.exit(128 + signal.SIGTERM)
    _end_like(status)


if __name__ == "__main__":
    main(sys.argv[1:])
