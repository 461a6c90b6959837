"""Replay a scripted xenstore session over raw sockets against any xenstored, and compare.

A script (see session.py) is data: steps naming a client, an operation and its arguments.
``run_session`` replays it against one daemon and returns a transcript: for every step, the
exact bytes every connected client received because of it. After each step every client
sends a barrier request (``GET_DOMAIN_PATH 0``) and everything that arrives before the
barrier's reply belongs to the step; a request is answered in order, so the step's reply and
every watch event the step caused are in that window on any daemon that queues events before
it answers the request that fired them (C does).

``Deviation`` steps are where the mock follows current Xen on purpose; they carry the 4.17
answer (observed, shared/spec/wire-protocol.md section 14) and the current-Xen answer
(documented in that spec), and run on a throw-away client so that no state they create can
leak into later steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from wireclient import PeerError, WireClient, payload

from xsmig_daemon.wire.framing import HEADER_SIZE, encode_message
from xsmig_daemon.wire.ops import Op

STEP_TIMEOUT = 3.0
BARRIER = (Op.GET_DOMAIN_PATH, payload("0"))
#: What a transcript records for a connection the daemon closed / a reply that never came.
CLOSED = b"<connection closed>"
TIMED_OUT = b"<no reply>"

#: (op, payload) of one expected message; events carry req_id 0.
Expected = tuple[int, bytes]


def op_name(code: int) -> str:
    try:
        return Op(code).name
    except ValueError:
        return str(code)


@dataclass(frozen=True)
class Step:
    """One request. ``tx`` names the step whose TRANSACTION_START reply gives the tx_id;
    ``tx_id`` is a literal id instead; ``raw`` sends bytes as they are (protocol abuse)."""

    client: str
    op: int
    args: tuple[str | bytes, ...] = ()
    value: bytes | None = None
    tx: str | None = None
    tx_id: int = 0
    label: str | None = None
    raw: bytes | None = None
    #: False for raw bytes that leave the sender's stream mid-message (no barrier possible).
    drain_sender: bool = True

    def describe(self) -> str:
        name = op_name(self.op)
        shown = " ".join(a if isinstance(a, str) else repr(a) for a in self.args)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        extra = f" value={self.value[:16]!r}" if self.value is not None else ""
        tx = f" tx={self.tx or self.tx_id}" if self.tx or self.tx_id else ""
        raw = f" raw {len(self.raw)} bytes" if self.raw is not None else ""
        return f"{self.client}: {name} {shown}{extra}{tx}{raw}".rstrip()


@dataclass(frozen=True)
class Deviation(Step):
    """A step where Xen 4.17 and current Xen answer differently and the mock follows current
    Xen. ``xen417`` / ``current`` are the messages ``differing_client`` receives (replies
    carry the step's req_id only when that client sent the step)."""

    reason: str = ""
    xen417: tuple[Expected, ...] = ()
    current: tuple[Expected, ...] = ()
    #: The client whose messages differ, when it is not the one sending the request.
    observer: str | None = None

    @property
    def differing_client(self) -> str:
        return self.observer or self.client


@dataclass(frozen=True)
class Burst:
    """Many requests pipelined by one client, replies read afterwards (one transcript entry)."""

    client: str
    steps: tuple[Step, ...]
    label: str

    def describe(self) -> str:
        return f"{self.client}: burst of {len(self.steps)} ({self.label})"


@dataclass(frozen=True)
class Connect:
    client: str

    def describe(self) -> str:
        return f"{self.client}: connect"


@dataclass(frozen=True)
class ConnectGuest:
    """Attach ``client`` to introduced domain ``domid``'s ring (right after its INTRODUCE)."""

    client: str
    domid: int

    def describe(self) -> str:
        return f"{self.client}: attach as dom{self.domid}"


@dataclass(frozen=True)
class Disconnect:
    client: str

    def describe(self) -> str:
        return f"{self.client}: disconnect"


Action = Step | Burst | Connect | ConnectGuest | Disconnect

#: Opens a client acting as domain ``domid`` (RunningDaemon.guest of peerlib).
GuestFactory = Callable[[int, float], WireClient]


@dataclass
class Entry:
    """What each client received because of one action, and the req_id the step used."""

    action: Action
    received: dict[str, list[bytes]] = field(default_factory=dict)
    req_id: int = 0


def ok(op: Op) -> Expected:
    return (op, b"OK\0")


def err(name: str) -> Expected:
    return (Op.ERROR, name.encode() + b"\0")


def _step_bytes(step: Step, req_id: int, tx_ids: dict[str, int]) -> bytes:
    if step.raw is not None:
        return step.raw
    body = payload(*step.args, value=step.value)
    tx_id = tx_ids[step.tx] if step.tx else step.tx_id
    return encode_message(step.op, req_id, tx_id, body)


class _Session:
    def __init__(self, socket_path: Path, guest: GuestFactory | None) -> None:
        self.socket_path = socket_path
        self.guest = guest
        self.clients: dict[str, WireClient] = {}
        self.next_req: dict[str, int] = {}
        self.tx_ids: dict[str, int] = {}

    def req_id(self, client: str) -> int:
        self.next_req[client] = self.next_req.get(client, 0) + 1
        return self.next_req[client]

    def close(self) -> None:
        for client in self.clients.values():
            client.close()

    def run(self, action: Action) -> Entry:
        entry = Entry(action)
        if isinstance(action, Connect):
            try:
                self.clients[action.client] = WireClient.connect(self.socket_path, STEP_TIMEOUT)
            except OSError:
                entry.received[action.client] = [CLOSED]  # the daemon is gone
            return entry
        if isinstance(action, ConnectGuest):
            if self.guest is None:
                raise PeerError(f"{action.describe()}: no way to act as a guest given")
            self.clients[action.client] = self.guest(action.domid, STEP_TIMEOUT)
            return entry
        if isinstance(action, Disconnect):
            # The daemon may have closed it already (recorded in an earlier entry).
            closing = self.clients.pop(action.client, None)
            if closing is not None:
                closing.close()
            return entry
        steps = action.steps if isinstance(action, Burst) else (action,)
        sender = self.clients.get(action.client)
        if sender is None:
            # The daemon closed this client earlier (or died): recorded, not sent.
            entry.received[action.client] = [CLOSED]
            return entry
        out = bytearray()
        for step in steps:
            entry.req_id = self.req_id(action.client)
            out += _step_bytes(step, entry.req_id, self.tx_ids)
        try:
            sender.send_raw(bytes(out))
        except OSError:
            entry.received[action.client] = [CLOSED]
            self.clients.pop(action.client).close()
        skip = isinstance(action, Step) and not action.drain_sender
        for name in sorted(self.clients, key=lambda n: n != action.client):
            if not (skip and name == action.client):
                entry.received[name] = self.drain(name)
        if isinstance(action, Step) and action.label and action.op == Op.TRANSACTION_START:
            self.remember_tx(action.label, entry.received.get(action.client, []))
        return entry

    def remember_tx(self, label: str, received: list[bytes]) -> None:
        for raw in received:
            if raw[:4] == int(Op.TRANSACTION_START).to_bytes(4, "little"):
                self.tx_ids[label] = int(raw[HEADER_SIZE:].rstrip(b"\0"))
                return
        self.tx_ids[label] = 0xDEAD  # start failed: later steps use an id nobody knows

    def drain(self, name: str) -> list[bytes]:
        """Everything ``name`` receives up to the reply to a barrier request."""
        client = self.clients[name]
        barrier_id = self.req_id(name)
        received: list[bytes] = []
        try:
            client.send(BARRIER[0], BARRIER[1], req_id=barrier_id)
            while True:
                message = client.receive()
                if message.req_id == barrier_id and message.op == BARRIER[0]:
                    return received
                received.append(message.encode())
        except PeerError as exc:
            received.append(CLOSED if "closed" in str(exc) else TIMED_OUT)
        except OSError:
            received.append(CLOSED)
        self.clients.pop(name).close()
        return received


def run_session(
    socket_path: Path, actions: tuple[Action, ...], guest: GuestFactory | None = None
) -> list[Entry]:
    session = _Session(socket_path, guest)
    try:
        return [session.run(action) for action in actions]
    finally:
        session.close()


def compare_transcripts(
    real: list[Entry], mock: list[Entry], *, collapse_repeated_events: bool = False
) -> list[str]:
    """Every difference between the two transcripts, one line each. Deviation steps are
    checked against their documented answers instead of against each other.

    ``collapse_repeated_events`` keeps only the first of identical watch events a client
    receives within one step, on both sides: for pipelined requests, where current Xen (and
    the mock) drop an event identical to one still queued (wire-protocol.md section 6) and
    4.17 sends both, depending on what was still queued at the time.
    """
    differences: list[str] = []
    real_gens: dict[bytes, str] = {}
    mock_gens: dict[bytes, str] = {}
    for index, (ours, theirs) in enumerate(zip(real, mock, strict=True)):
        action = ours.action
        where = f"step {index} [{action.describe()}]"
        for client in sorted(set(ours.received) | set(theirs.received)):
            got_real = _normalise(ours.received.get(client, []), real_gens)
            got_mock = _normalise(theirs.received.get(client, []), mock_gens)
            if collapse_repeated_events:
                got_real, got_mock = _first_events(got_real), _first_events(got_mock)
            if isinstance(action, Deviation) and client == action.differing_client:
                want_417 = expected_bytes(action.xen417, ours.req_id)
                want_now = expected_bytes(action.current, theirs.req_id)
                if got_real != want_417:
                    differences.append(
                        f"{where}: real 4.17 no longer gives the documented 4.17 answer: "
                        f"{_show(got_real)} != {_show(want_417)}"
                    )
                if got_mock != want_now:
                    differences.append(
                        f"{where}: mock {_show(got_mock)} != current Xen {_show(want_now)}"
                    )
            elif got_real != got_mock:
                differences.append(
                    f"{where}: {client} got real {_show(got_real)} != mock {_show(got_mock)}"
                )
    return differences


def _first_events(received: list[bytes]) -> list[bytes]:
    seen: set[bytes] = set()
    out = []
    for raw in received:
        if raw[:4] == int(Op.WATCH_EVENT).to_bytes(4, "little"):
            if raw in seen:
                continue
            seen.add(raw)
        out.append(raw)
    return out


def _normalise(received: list[bytes], gens: dict[bytes, str]) -> list[bytes]:
    """Replace DIRECTORY_PART generation counts by their order of first appearance: the
    value is an opaque counter (C's global modification count), only its changes matter."""
    out = []
    for raw in received:
        if raw[:4] == int(Op.DIRECTORY_PART).to_bytes(4, "little"):
            gen, _, rest = raw[HEADER_SIZE:].partition(b"\0")
            label = gens.setdefault(gen, f"G{len(gens)}").encode()
            body = label + b"\0" + rest
            out.append(raw[:12] + len(body).to_bytes(4, "little") + body)
        else:
            out.append(raw)
    return out


def _show(messages: list[bytes]) -> str:
    shown = []
    for raw in messages[:4]:
        if len(raw) < HEADER_SIZE:
            shown.append(repr(raw))
            continue
        op = int.from_bytes(raw[:4], "little")
        name = op_name(op)
        req = int.from_bytes(raw[4:8], "little")
        tx = int.from_bytes(raw[8:12], "little")
        body = raw[HEADER_SIZE:]
        text = repr(body[:48]) + ("..." if len(body) > 48 else "")
        shown.append(f"{name}(req={req},tx={tx}){text}")
    more = f" +{len(messages) - 4} more" if len(messages) > 4 else ""
    return "[" + ", ".join(shown) + more + "]"


def expected_bytes(expected: tuple[Expected, ...], req_id: int) -> list[bytes]:
    """The wire bytes of an expected answer: replies echo ``req_id``, events carry 0."""
    return [
        encode_message(op, 0 if op == Op.WATCH_EVENT else req_id, 0, body) for op, body in expected
    ]
