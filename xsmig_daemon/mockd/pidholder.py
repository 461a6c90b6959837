"""The pid holder of a mock xenstored after its first live update (docs/liveupdate.md).

Run by path with ``python -I -S`` (standard library only, nothing of xsmig imported): the
first daemon of a service execs this once its standby successor has taken over, so the
service keeps its main pid while the memory of the old daemon is freed.

    pidholder.py READ_FD PID

It makes itself the child subreaper, so every later successor (started by a successor that
then exits) becomes its child. Each daemon that hands over writes its successor's pid to
the pipe (READ_FD is the read end) before it exits. SIGTERM, SIGINT, SIGHUP, SIGUSR1 and
SIGUSR2 are passed on to the serving daemon; when the serving daemon exits without a
successor, the holder exits the same way.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys

PR_SET_CHILD_SUBREAPER = 36
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)


class Holder:
    def __init__(self, read_fd: int, serving: int) -> None:
        self.read_fd = read_fd
        self.serving = serving
        self.pending = b""
        #: Signals passed to each pid: a daemon that was handing over had them blocked and
        #: exited without acting on them, so its successor gets them.
        self.sent: dict[int, list[int]] = {}
        os.set_blocking(read_fd, False)

    def forward(self, signum: int, _frame: object) -> None:
        self.update()
        self.sent.setdefault(self.serving, []).append(signum)
        self._send(self.serving, signum)

    @staticmethod
    def _send(pid: int, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    def update(self) -> None:
        """Take the newest pid a handing-over daemon wrote."""
        while True:
            try:
                data = os.read(self.read_fd, 4096)
            except BlockingIOError:
                break
            if not data:
                break
            self.pending += data
        *lines, self.pending = self.pending.split(b"\n")
        for line in lines:
            if line.strip():
                self.serving = int(line)

    def run(self) -> int:
        while True:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                return 1
            self.update()
            missed = self.sent.pop(pid, [])
            if pid != self.serving:
                # A daemon that handed over (or a successor that failed to start).
                for signum in missed:
                    self._send(self.serving, signum)
                continue
            if os.WIFSIGNALED(status):
                signum = os.WTERMSIG(status)
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)
                return 128 + signum
            return os.waitstatus_to_exitcode(status)


def main(argv: list[str]) -> int:
    read_fd, serving = int(argv[1]), int(argv[2])
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    holder = Holder(read_fd, serving)
    for signum in FORWARDED:
        signal.signal(signum, holder.forward)
    # The daemon blocked them before its exec into us: whatever came meanwhile arrives now.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)
    return holder.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
