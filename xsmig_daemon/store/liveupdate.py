"""``CONTROL live-update``: C xenstored's command syntax, session and timing rules, no I/O.

The admin tool (``xenstore-control live-update``) sends ``-f BINARY``, optionally
``-c CMDLINE``, then ``-s [-t SECS] [-F] [-v VERSION]`` (HEAD's ``-v``), and ``-a`` on
failure. ``LiveUpdateSession`` answers those with C's reply texts and keeps the parked ``-s``
request; the transport re-evaluates it with ``decide()`` (C: every main-loop pass) and then
either hands over, keeps waiting or answers the refusal text.

Timing follows current Xen: with open transactions the update waits until ``-t`` seconds
after ``-s``; ``-F`` then goes anyway, or at once if every open transaction is already older
than the timeout. Xen 4.17 computes that age with the wrong sign (so its early ``-F`` never
happens); that bug is not copied.

What blocks depends on the successor. The mock carries open transactions across
(``SuccessorKind.MOCK``): nothing blocks. The real 4.17 and 4.20 xenstored cannot hold them
(``SuccessorKind.XEN_417``, ``XEN_420``): open transactions block as in C, and any other
state the image for it would lose refuses the update unless ``-F`` is given.

Whether the binary exists and is executable is I/O: the transport passes ``probe`` in.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..image.profiles import Profile, get_profile
from ..wire.framing import Message
from .connection import Connection
from .errors import XsError
from .wireargs import c_atoi

#: HEAD accepts up to 6 arguments after "live-update" (4.17: 4, without ``-v``).
MAX_ARGS = 6
#: Stream versions a ``-v`` may ask for (HEAD: 1 and 2).
STREAM_VERSIONS = (1, 2)
DEFAULT_VERSION = 2

OK = "OK"
NOT_ACCESSIBLE = "File not accessible."
NOT_EXECUTABLE = "File not executable."
SESSION_ACTIVE = "live-update session already active."
NOT_IN_SESSION = "Not in live-update session."
NO_SESSION = "No live-update session active."
BAD_VERSION = "Migration stream version not supported."
CANCELLED = "Cancellation was requested"
ALREADY_STARTED = "live-update already started."
LONG_TRANSACTIONS = "Domains with long running transactions:"
OVERLAPPING = "Overlapping transactions"
EXEC_FAILED = "Error activating new binary."


class SuccessorKind(enum.Enum):
    """Who takes over; a real xenstored's value is its version profile's name."""

    MOCK = "mock"
    XEN_417 = "xen-4.17"
    XEN_420 = "xen-4.20"
    XEN_422 = "xen-4.22"

    @property
    def profile(self) -> Profile | None:
        """The loader profile of a real xenstored (looked up by name); None for the mock."""
        return None if self is SuccessorKind.MOCK else get_profile(self.value)


class BinaryStatus(enum.Enum):
    OK = "ok"
    MISSING = "missing"
    NOT_EXECUTABLE = "not executable"


# -- parsed commands --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SetBinary:
    binary: str


@dataclass(frozen=True, slots=True)
class SetCmdline:
    cmdline: str


@dataclass(frozen=True, slots=True)
class Abort:
    pass


@dataclass(frozen=True, slots=True)
class Start:
    timeout: int = 0
    force: bool = False
    version: int = DEFAULT_VERSION


Command = SetBinary | SetCmdline | Abort | Start


def parse_command(args: Sequence[str]) -> Command:
    """The arguments after ``live-update``, read as C reads them; EINVAL otherwise."""
    if not args or len(args) > MAX_ARGS:
        raise XsError("EINVAL", f"live-update with {len(args)} arguments")
    first, rest = args[0], list(args[1:])
    if first == "-a":
        if rest:
            raise XsError("EINVAL", "live-update -a takes no argument")
        return Abort()
    if first == "-c":
        if len(rest) != 1:
            raise XsError("EINVAL", "live-update -c needs exactly one command line")
        return SetCmdline(rest[0])
    if first == "-f":
        if len(rest) != 1:
            raise XsError("EINVAL", "live-update -f needs exactly one file")
        return SetBinary(rest[0])
    if first == "-s":
        return _parse_start(rest)
    raise XsError("EINVAL", f"live-update option {first!r}")


def _parse_start(options: list[str]) -> Start:
    timeout, force, version = 0, False, DEFAULT_VERSION
    while options:
        option = options.pop(0)
        if option == "-F":
            force = True
        elif option in ("-t", "-v") and options:
            value = c_atoi(options.pop(0).encode())
            if option == "-t":
                timeout = value
            else:
                version = value
        else:
            raise XsError("EINVAL", f"live-update -s option {option!r}")
    return Start(timeout, force, version)


# -- the session ------------------------------------------------------------------------


@dataclass(slots=True)
class PendingStart:
    """A parked ``-s``: answered by the successor (OK) or by us (an error text)."""

    request: Message
    timeout: int
    force: bool
    version: int
    started_at: float


@dataclass(slots=True)
class Session:
    owner: Connection
    binary: str
    cmdline: str | None = None
    pending: PendingStart | None = None


@dataclass(frozen=True, slots=True)
class OpenTransactions:
    """A connection with open transactions, as the decision sees it."""

    domid: int
    since: float


class Verdict(enum.Enum):
    GO = "go"
    WAIT = "wait"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    #: FAIL: the reply text. GO: what the successor will lose (forced), else empty.
    text: str = ""
    #: WAIT: when to decide again at the latest (the timeout).
    deadline: float = 0.0


def decide(
    pending: PendingStart,
    now: float,
    kind: SuccessorKind,
    transactions: Sequence[OpenTransactions],
    losses: Sequence[str] = (),
) -> Decision:
    """Go, wait or fail for a parked ``-s`` (C's lu_check_lu_allowed + lu_reject_reason)."""
    if kind is SuccessorKind.MOCK:
        return Decision(Verdict.GO)
    if losses and not pending.force:
        return Decision(Verdict.FAIL, _loss_text(losses))
    if not transactions:
        return Decision(Verdict.GO, "\n".join(losses))
    long_running = [t for t in transactions if now - t.since >= pending.timeout]
    if pending.force and len(long_running) == len(transactions):
        return Decision(Verdict.GO, "\n".join([*losses, *_tx_losses(transactions, now)]))
    deadline = pending.started_at + pending.timeout
    if now < deadline:
        return Decision(Verdict.WAIT, deadline=deadline)
    if pending.force:
        return Decision(Verdict.GO, "\n".join([*losses, *_tx_losses(transactions, now)]))
    if not long_running:
        return Decision(Verdict.FAIL, OVERLAPPING)
    lines = "".join(f"\nDomain {t.domid}: {int(now - t.since)} s" for t in long_running)
    return Decision(Verdict.FAIL, LONG_TRANSACTIONS + lines)


def _loss_text(losses: Sequence[str]) -> str:
    return "Live update would lose (use -F to force):\n" + "\n".join(losses)


def _tx_losses(transactions: Sequence[OpenTransactions], now: float) -> list[str]:
    return [f"open transactions of domain {t.domid} ({int(now - t.since)} s)" for t in transactions]


class LiveUpdateSession:
    """C's single live-update session of a daemon, bound to the connection that sent ``-f``.

    ``control()`` answers one ``live-update`` CONTROL request: the reply text, or None when
    the request (``-s``) is parked. ``probe`` tells whether a file can be executed.
    """

    def __init__(self, probe: Callable[[str], BinaryStatus]) -> None:
        self.probe = probe
        self.session: Session | None = None
        #: A parked ``-s`` that ``-a`` cancelled: the transport answers it with CANCELLED.
        self.cancelled: PendingStart | None = None
        #: Connections seen with open transactions, and since when (C: ta_start_time).
        self._tx_since: dict[Connection, float] = {}

    def control(
        self, conn: Connection, message: Message, args: Sequence[str], now: float
    ) -> str | None:
        command = parse_command(args)
        session = self.session
        if isinstance(command, SetBinary):
            status = self.probe(command.binary)
            if status is BinaryStatus.MISSING:
                return NOT_ACCESSIBLE
            if status is BinaryStatus.NOT_EXECUTABLE:
                return NOT_EXECUTABLE
            if session is not None:
                return SESSION_ACTIVE
            self.session = Session(conn, command.binary)
            return OK
        if isinstance(command, Abort):
            if session is None:
                return NO_SESSION
            self.cancelled = self.cancel()
            return OK
        if session is None or session.owner is not conn:
            return NOT_IN_SESSION
        if isinstance(command, SetCmdline):
            session.cmdline = command.cmdline
            return OK
        if command.version not in STREAM_VERSIONS:
            return BAD_VERSION
        if session.pending is not None:
            return ALREADY_STARTED
        session.pending = PendingStart(
            message, command.timeout, command.force, command.version, now
        )
        return None

    def cancel(self) -> PendingStart | None:
        """End the session; returns the parked ``-s`` that must now be answered (CANCELLED)."""
        pending = self.session.pending if self.session is not None else None
        self.session = None
        return pending

    def finish(self) -> None:
        self.session = None
        self._tx_since.clear()

    def observe(self, connections: Sequence[Connection], now: float) -> list[OpenTransactions]:
        """Connections with open transactions now, aged from when we first saw them open."""
        seen: dict[Connection, float] = {}
        for conn in connections:
            if conn.transactions:
                seen[conn] = self._tx_since.get(conn, now)
        self._tx_since = seen
        return [OpenTransactions(conn.domid, since) for conn, since in seen.items()]


def exec_argv(binary: str, cmdline: str | None, original: Sequence[str]) -> list[str]:
    """C's argv for the successor: the binary, then the ``-c`` line split on blanks or else
    the ``original`` arguments (without a program name); ``-U`` appended unless present."""
    argv = [binary, *(cmdline.split() if cmdline is not None else original)]
    if "-U" not in argv[1:] and "--live-update" not in argv[1:]:
        argv.append("-U")
    return argv


def ok_reply(request: Message) -> bytes:
    """The requester's ``OK``, framed with the header of its ``-s`` request."""
    return Message(request.op, request.req_id, request.tx_id, b"OK\0").encode()
