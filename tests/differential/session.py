"""One scripted xenstore session, replayed over raw sockets against any xenstored.

The script is data (``SESSION``): steps naming a client, an operation and its arguments.
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

from dataclasses import dataclass, field
from pathlib import Path

from wireclient import PeerError, WireClient, payload

from xsmig_daemon.wire.framing import HEADER_SIZE, PAYLOAD_MAX, encode_message
from xsmig_daemon.wire.ops import Op

STEP_TIMEOUT = 3.0
BARRIER = (Op.GET_DOMAIN_PATH, payload("0"))
#: What a transcript records for a connection the daemon closed / a reply that never came.
CLOSED = b"<connection closed>"
TIMED_OUT = b"<no reply>"

#: (op, payload) of one expected message; events carry req_id 0.
Expected = tuple[int, bytes]


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
        name = Op(self.op).name if self.op in Op._value2member_map_ else str(self.op)
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
    Xen. ``xen417`` / ``current`` are the messages the issuing client receives."""

    reason: str = ""
    xen417: tuple[Expected, ...] = ()
    current: tuple[Expected, ...] = ()


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
class Disconnect:
    client: str

    def describe(self) -> str:
        return f"{self.client}: disconnect"


Action = Step | Burst | Connect | Disconnect


@dataclass
class Entry:
    """What each client received because of one action, and the req_id the step used."""

    action: Action
    received: dict[str, list[bytes]] = field(default_factory=dict)
    req_id: int = 0


def _ok(op: Op) -> Expected:
    return (op, b"OK\0")


def _err(name: str) -> Expected:
    return (Op.ERROR, name.encode() + b"\0")


def _step_bytes(step: Step, req_id: int, tx_ids: dict[str, int]) -> bytes:
    if step.raw is not None:
        return step.raw
    body = payload(*step.args, value=step.value)
    tx_id = tx_ids[step.tx] if step.tx else step.tx_id
    return encode_message(step.op, req_id, tx_id, body)


class _Session:
    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path
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
            self.clients[action.client] = WireClient.connect(self.socket_path, STEP_TIMEOUT)
            return entry
        if isinstance(action, Disconnect):
            self.clients.pop(action.client).close()
            return entry
        steps = action.steps if isinstance(action, Burst) else (action,)
        sender = self.clients[action.client]
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


def run_session(socket_path: Path, actions: tuple[Action, ...]) -> list[Entry]:
    session = _Session(socket_path)
    try:
        return [session.run(action) for action in actions]
    finally:
        session.close()


def compare_transcripts(real: list[Entry], mock: list[Entry]) -> list[str]:
    """Every difference between the two transcripts, one line each. Deviation steps are
    checked against their documented answers instead of against each other."""
    differences: list[str] = []
    real_gens: dict[bytes, str] = {}
    mock_gens: dict[bytes, str] = {}
    for index, (ours, theirs) in enumerate(zip(real, mock, strict=True)):
        action = ours.action
        where = f"step {index} [{action.describe()}]"
        for client in sorted(set(ours.received) | set(theirs.received)):
            got_real = _normalise(ours.received.get(client, []), real_gens)
            got_mock = _normalise(theirs.received.get(client, []), mock_gens)
            if isinstance(action, Deviation) and client == action.client:
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
        name = Op(op).name if op in Op._value2member_map_ else str(op)
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


# --------------------------------------------------------------------------- the script

A, B, W, R, X = "a", "b", "watcher", "root-watcher", "deviant"
BAD, CUT = "bad", "cut"
BINARY = bytes(range(256)) + b"\0\0\xff"
MANY_CHILDREN = 600

_basics: tuple[Action, ...] = (
    Connect(A),
    Connect(B),
    Connect(W),
    Connect(R),
    # Every change below is also seen by a watch on / (its events are compared too).
    Step(R, Op.WATCH, ("/", "all")),
    Step(A, Op.READ, ("/tool/xenstored",)),
    Step(A, Op.DIRECTORY, ("/",)),
    Step(A, Op.GET_PERMS, ("/",)),
    Step(A, Op.WRITE, ("/test/a",), b"hello"),
    Step(A, Op.READ, ("/test/a",)),
    Step(A, Op.WRITE, ("/test/a",), b""),
    Step(A, Op.READ, ("/test/a",)),
    Step(A, Op.WRITE, ("/test/bin",), BINARY),
    Step(B, Op.READ, ("/test/bin",)),
    Step(A, Op.WRITE, ("/test/deep/x/y/z",), b"v"),
    Step(A, Op.DIRECTORY, ("/test",)),
    Step(A, Op.DIRECTORY, ("/test/deep/x",)),
    Step(A, Op.READ, ("/test/deep/x",)),
    Step(A, Op.MKDIR, ("/test/dir",)),
    Step(A, Op.MKDIR, ("/test/dir",)),
    Step(A, Op.READ, ("/test/dir",)),
    Step(A, Op.DIRECTORY, ("/test/dir",)),
    Step(A, Op.READ, ("/test/missing",)),
    Step(A, Op.DIRECTORY, ("/test/missing",)),
    Step(A, Op.GET_PERMS, ("/test/missing",)),
    Step(A, Op.READ, ("/nothing/here/at/all",)),
    # Path syntax errors.
    Step(A, Op.READ, ("/a//b",)),
    Step(A, Op.READ, ("/a/",)),
    Step(A, Op.READ, ("",)),
    Step(A, Op.READ, ("/a b",)),
    Step(A, Op.READ, ("/a\xe9",)),
    Step(A, Op.WRITE, ("/bad:char",), b"x"),
    Step(A, Op.WRITE, ("/" + "p" * 3100,), b"x"),
    Step(A, Op.READ, ("@introduceDomain",)),
    Step(A, Op.DIRECTORY, ("@releaseDomain",)),
    # Unknown, removed and server-only operations; malformed and boundary payloads.
    Step(A, 99, ("x",)),
    Step(A, Op.RESTRICT, ("1",)),
    Step(A, Op.INVALID, ("",)),
    Step(A, Op.WATCH_EVENT, ("/test", "tok")),
    Step(A, Op.ERROR, ("EINVAL",)),
    Step(A, Op.WRITE, ()),
    Step(A, Op.WRITE, ("/test/full",), b"f" * (PAYLOAD_MAX - len("/test/full") - 1)),
    Step(A, Op.READ, ("/test/full",)),
    Step(A, Op.READ, raw=encode_message(Op.READ, 0xDEADBEEF, 0, payload("/test/bin"))),
    # RM.
    Step(A, Op.RM, ("/test/dir",)),
    Step(A, Op.RM, ("/test/dir",)),
    Step(A, Op.RM, ("/nope/nope",)),
    Step(A, Op.RM, ("/",)),
    Step(A, Op.RM, ("/test/deep",)),
    Step(A, Op.DIRECTORY, ("/test",)),
    # Relative paths resolve under /local/domain/0 for a socket client.
    Step(A, Op.WRITE, ("rel/one",), b"1"),
    Step(A, Op.READ, ("/local/domain/0/rel/one",)),
    Step(A, Op.READ, ("rel/one",)),
    Step(A, Op.DIRECTORY, ("rel",)),
    Step(A, Op.DIRECTORY, ("/local/domain/0",)),
    Step(A, Op.GET_DOMAIN_PATH, ("0",)),
    Step(A, Op.GET_DOMAIN_PATH, ("7",)),
    Step(A, Op.GET_DOMAIN_PATH, ("65535",)),
)

_perms: tuple[Action, ...] = (
    Step(A, Op.WRITE, ("/perm/node",), b"p"),
    Step(A, Op.SET_PERMS, ("/perm/node", "b0", "r1", "w2")),
    Step(A, Op.GET_PERMS, ("/perm/node",)),
    Step(A, Op.WRITE, ("/perm/node/child",), b"c"),
    Step(A, Op.GET_PERMS, ("/perm/node/child",)),
    Step(A, Op.SET_PERMS, ("/perm/node/child", "n5", "r0x3")),
    Step(A, Op.GET_PERMS, ("/perm/node/child",)),
    Step(A, Op.SET_PERMS, ("/perm/node", "x1")),
    Step(A, Op.SET_PERMS, ("/perm/node",)),
    Step(A, Op.SET_PERMS, ("/perm/missing", "n0")),
    Step(A, Op.GET_PERMS, ("/perm",)),
    Step(B, Op.READ, ("/perm/node",)),
)

_watches: tuple[Action, ...] = (
    Step(W, Op.WATCH, ("/watched", "tokA")),
    Step(W, Op.WATCH, ("/watched", "tokA")),
    Step(W, Op.WATCH, ("/watched", "tokB")),
    Step(W, Op.WATCH, ("relw", "tokR")),
    Step(W, Op.WATCH, ("@introduceDomain", "intro")),
    Step(W, Op.WATCH, ("@releaseDomain", "release")),
    Step(W, Op.WATCH, ("/tx", "tx-watch")),
    Step(W, Op.WATCH, ("/only-one-arg",)),
    Step(A, Op.WRITE, ("/watched/x",), b"1"),
    Step(A, Op.WRITE, ("/watched/x",), b"2"),
    Step(A, Op.WRITE, ("relw/child",), b"r"),
    Step(A, Op.SET_PERMS, ("/watched/x", "n0", "r1")),
    Step(A, Op.MKDIR, ("/watched/x",)),
    Step(A, Op.WRITE, ("/watched//bad",), b"no event for a failed request"),
    Step(A, Op.WRITE, ("/watched/x/y/z",), b"deep"),
    Step(A, Op.RM, ("/watched",)),
    Step(A, Op.MKDIR, ("/watched",)),
    Step(W, Op.UNWATCH, ("/watched", "tokB")),
    Step(W, Op.UNWATCH, ("/watched", "tokB")),
    Step(W, Op.UNWATCH, ("/never", "t")),
    Step(A, Op.WRITE, ("/watched/y",), b"only tokA"),
    Step(A, Op.RM, ("/watched/y",)),
)

_transactions: tuple[Action, ...] = (
    Step(A, Op.WRITE, ("/tx/base",), b"0"),
    Step(A, Op.TRANSACTION_START, ("",), label="T1"),
    Step(A, Op.WRITE, ("/tx/a",), b"in-tx", tx="T1"),
    Step(A, Op.READ, ("/tx/a",), tx="T1"),
    Step(B, Op.READ, ("/tx/a",)),
    Step(A, Op.DIRECTORY, ("/tx",), tx="T1"),
    Step(B, Op.DIRECTORY, ("/tx",)),
    Step(A, Op.GET_PERMS, ("/tx/a",), tx="T1"),
    Step(A, Op.TRANSACTION_START, ("",), tx="T1"),
    Step(A, Op.TRANSACTION_START, ("",), tx_id=999),
    Step(A, Op.READ, ("/tx/a",), tx_id=999),
    Step(A, Op.TRANSACTION_END, ("T",), tx="T1"),
    Step(B, Op.READ, ("/tx/a",)),
    Step(A, Op.TRANSACTION_END, ("T",), tx="T1"),
    Step(A, Op.TRANSACTION_END, ("T",)),
    # Conflict: the transaction read /tx/a, someone else changed it -> EAGAIN, nothing applied.
    Step(A, Op.TRANSACTION_START, ("",), label="T2"),
    Step(A, Op.READ, ("/tx/a",), tx="T2"),
    Step(B, Op.WRITE, ("/tx/a",), b"changed-outside"),
    Step(A, Op.WRITE, ("/tx/b",), b"lost", tx="T2"),
    Step(A, Op.TRANSACTION_END, ("T",), tx="T2"),
    Step(A, Op.READ, ("/tx/b",)),
    Step(A, Op.READ, ("/tx/a",)),
    # No conflict: an unrelated node changed meanwhile.
    Step(A, Op.TRANSACTION_START, ("",), label="T3"),
    Step(A, Op.READ, ("/tx/a",), tx="T3"),
    Step(B, Op.WRITE, ("/unrelated",), b"u"),
    Step(A, Op.WRITE, ("/tx/c",), b"kept", tx="T3"),
    Step(A, Op.TRANSACTION_END, ("T",), tx="T3"),
    Step(A, Op.READ, ("/tx/c",)),
    # Two writers of one node: the first commit wins, the second gets EAGAIN.
    Step(A, Op.TRANSACTION_START, ("",), label="T4"),
    Step(B, Op.TRANSACTION_START, ("",), label="U1"),
    Step(A, Op.WRITE, ("/tx/race",), b"from a", tx="T4"),
    Step(B, Op.WRITE, ("/tx/race",), b"from b", tx="U1"),
    Step(A, Op.TRANSACTION_END, ("T",), tx="T4"),
    Step(B, Op.TRANSACTION_END, ("T",), tx="U1"),
    Step(B, Op.READ, ("/tx/race",)),
    # Abort, bad END argument, unknown ids.
    Step(A, Op.TRANSACTION_START, ("",), label="T5"),
    Step(A, Op.WRITE, ("/tx/aborted",), b"x", tx="T5"),
    Step(A, Op.TRANSACTION_END, ("F",), tx="T5"),
    Step(A, Op.READ, ("/tx/aborted",)),
    Step(A, Op.TRANSACTION_START, ("",), label="T6"),
    Step(A, Op.TRANSACTION_END, ("X",), tx="T6"),
    Step(A, Op.TRANSACTION_END, ("F",), tx="T6"),
    Step(A, Op.TRANSACTION_END, ("F",), tx_id=12345),
    Step(A, Op.TRANSACTION_START, ("",), label="T7"),
    Step(A, Op.TRANSACTION_END, ("F",), tx="T7"),
    # A node the transaction found missing is created meanwhile -> EAGAIN.
    Step(A, Op.TRANSACTION_START, ("",), label="T8"),
    Step(A, Op.READ, ("/tx/ghost",), tx="T8"),
    Step(B, Op.WRITE, ("/tx/ghost",), b"boo"),
    Step(A, Op.WRITE, ("/tx/other",), b"x", tx="T8"),
    Step(A, Op.TRANSACTION_END, ("T",), tx="T8"),
    Step(A, Op.READ, ("/tx/other",)),
    # Permissions changed inside a transaction, applied at commit.
    Step(A, Op.TRANSACTION_START, ("",), label="T9"),
    Step(A, Op.SET_PERMS, ("/tx/c", "n0", "r4"), tx="T9"),
    Step(A, Op.GET_PERMS, ("/tx/c",), tx="T9"),
    Step(B, Op.GET_PERMS, ("/tx/c",)),
    Step(A, Op.TRANSACTION_END, ("T",), tx="T9"),
    Step(B, Op.GET_PERMS, ("/tx/c",)),
)

_deviations: tuple[Action, ...] = (
    Connect(X),
    Deviation(
        X,
        Op.GET_PERMS,
        ("@introduceDomain",),
        reason="4.17 refuses GET_PERMS on special nodes (spec 14); current Xen returns "
        "their permissions, n0 for @introduceDomain (spec 5)",
        xen417=(_err("EINVAL"),),
        current=((Op.GET_PERMS, payload("n0")),),
    ),
    Deviation(
        X,
        Op.GET_PERMS,
        ("@releaseDomain",),
        reason="as above; current Xen gives @releaseDomain n0 plus read for DOMID_ANY "
        "(0x7ff5), spec 5",
        xen417=(_err("EINVAL"),),
        current=((Op.GET_PERMS, payload("n0", "r32757")),),
    ),
    Deviation(
        X,
        Op.WATCH,
        ("/depth", "d", "1"),
        reason="4.17 needs exactly 2 WATCH strings; current Xen takes a depth "
        "(WATCHDEPTH) and fires the initial event (spec 4, 6)",
        xen417=(_err("EINVAL"),),
        current=(_ok(Op.WATCH), (Op.WATCH_EVENT, payload("/depth", "d"))),
    ),
    Deviation(
        X,
        Op.GET_FEATURE,
        ("",),
        reason="GET_FEATURE does not exist in 4.17 (ENOSYS); current Xen answers a socket "
        "with every supported feature, 14 (spec 10)",
        xen417=(_err("ENOSYS"),),
        current=((Op.GET_FEATURE, payload("14")),),
    ),
    Deviation(
        X,
        Op.GET_QUOTA,
        ("nodes",),
        reason="GET_QUOTA does not exist in 4.17 (ENOSYS); current Xen returns the "
        "global default, 1000 nodes (spec 4, 9)",
        xen417=(_err("ENOSYS"),),
        current=((Op.GET_QUOTA, payload("1000")),),
    ),
    Deviation(
        X,
        Op.CONTROL,
        ("quota", "set", "node-permissions", "5"),
        reason="the per-node permission quota is 'permissions' in 4.17 and "
        "'node-permissions' in current Xen (spec 9)",
        xen417=(_err("EINVAL"),),
        current=(_ok(Op.CONTROL),),
    ),
    Deviation(
        X,
        Op.CONTROL,
        ("quota", "set", "permissions", "5"),
        reason="same rename seen from the other side: current Xen no longer knows "
        "'permissions' (spec 9)",
        xen417=(_ok(Op.CONTROL),),
        current=(_err("EINVAL"),),
    ),
    Disconnect(X),
    Step(A, Op.SET_PERMS, ("@introduceDomain", "n0", "r1")),
)

_domains: tuple[Action, ...] = (
    Step(A, Op.IS_DOMAIN_INTRODUCED, ("1",)),
    Step(A, Op.INTRODUCE, ("1", "4097", "11")),
    Step(A, Op.INTRODUCE, ("2", "4098", "12")),
    Step(A, Op.INTRODUCE, ("3", "4099", "13")),
    Step(A, Op.IS_DOMAIN_INTRODUCED, ("1",)),
    Step(A, Op.IS_DOMAIN_INTRODUCED, ("4",)),
    Step(A, Op.GET_DOMAIN_PATH, ("3",)),
    Step(A, Op.SET_TARGET, ("2", "1")),
    Step(A, Op.SET_TARGET, ("2", "9")),
    Step(A, Op.SET_TARGET, ("9", "1")),
    Step(A, Op.WRITE, ("/local/domain/1/name",), b"guest1"),
    Step(A, Op.SET_PERMS, ("/local/domain/1", "n1", "r2")),
    Step(A, Op.GET_PERMS, ("/local/domain/1",)),
    Step(A, Op.WRITE, ("/local/domain/3/data",), b"of dom3"),
    Step(A, Op.RESUME, ("1",)),
    Step(A, Op.RESUME, ("9",)),
    # Domain 3 takes no part in SET_TARGET: releasing it avoids the 4.17 crash (spec 14).
    Step(A, Op.RELEASE, ("3",)),
    Step(A, Op.IS_DOMAIN_INTRODUCED, ("3",)),
    Step(A, Op.RELEASE, ("3",)),
    Step(A, Op.RELEASE, ("9",)),
    Step(A, Op.RELEASE, ("0",)),
    Step(A, Op.READ, ("/local/domain/3/data",)),
    Step(A, Op.INTRODUCE, ("3", "4099", "13")),
    Step(A, Op.IS_DOMAIN_INTRODUCED, ("3",)),
    # Introducing an introduced domain again: OK, no new @introduceDomain event.
    Step(A, Op.INTRODUCE, ("1", "4097", "11")),
    Step(A, Op.INTRODUCE, ("1", "4097", "21")),
    Step(A, Op.INTRODUCE, ("5",)),
    Step(A, Op.SET_TARGET, ("1",)),
)

_control: tuple[Action, ...] = (
    Step(A, Op.CONTROL, ("quota", "set", "nodes", "2000")),
    Step(A, Op.CONTROL, ("quota", "set", "nodes", "0")),
    Step(A, Op.CONTROL, ("quota", "set", "bogus", "3")),
    Step(A, Op.CONTROL, ("quota", "set")),
    Step(A, Op.CONTROL, ("quota-soft", "set", "memory", "100000")),
    Step(A, Op.CONTROL, ("bogus",)),
    Step(A, Op.CONTROL, ("print", "differential session")),
    Step(A, Op.CONTROL, ("check",)),
)

_big_directory: tuple[Action, ...] = (
    Burst(
        A,
        tuple(
            Step(A, Op.WRITE, (f"/many/child-{i:04d}",), str(i).encode())
            for i in range(MANY_CHILDREN)
        ),
        label=f"WRITE /many/child-0000..{MANY_CHILDREN - 1}",
    ),
    Step(A, Op.DIRECTORY, ("/many",)),
    Step(A, Op.DIRECTORY_PART, ("/many", "0")),
    Step(A, Op.DIRECTORY_PART, ("/many", "4092")),
    Step(A, Op.DIRECTORY_PART, ("/many", "6589")),
    Step(A, Op.DIRECTORY_PART, ("/many", "6600")),
    Step(A, Op.DIRECTORY_PART, ("/many", "100000")),
    Step(A, Op.DIRECTORY_PART, ("/many/missing", "0")),
    Step(A, Op.WRITE, ("/many/child-0000",), b"changed"),
    Step(A, Op.DIRECTORY_PART, ("/many", "6589")),
    Step(A, Op.WRITE, ("/many/child-0600",), b"new"),
    Step(A, Op.DIRECTORY_PART, ("/many", "6589")),
    Step(A, Op.RM, ("/many",)),
)

_reset: tuple[Action, ...] = (
    Step(W, Op.TRANSACTION_START, ("",), label="V1"),
    Step(W, Op.RESET_WATCHES, ("",)),
    Step(A, Op.WRITE, ("/watched/after-reset",), b"only / sees this"),
    Step(W, Op.TRANSACTION_END, ("F",), tx="V1"),
    Step(W, Op.TRANSACTION_START, ("",), label="V2"),
    Step(W, Op.TRANSACTION_END, ("F",), tx="V2"),
)

_abuse: tuple[Action, ...] = (
    Connect(CUT),
    Step(CUT, Op.READ, raw=encode_message(Op.READ, 1, 0, payload("/test"))[:7], drain_sender=False),
    Disconnect(CUT),
    Step(A, Op.READ, ("/test/a",)),
    Connect(BAD),
    Step(
        BAD,
        Op.READ,
        raw=encode_message(Op.READ, 1, 0, b"")[:12] + (PAYLOAD_MAX + 1).to_bytes(4, "little"),
    ),
    Step(A, Op.READ, ("/test/a",)),
    Step(W, Op.READ, ("/tx/c",)),
)

SESSION: tuple[Action, ...] = (
    *_basics,
    *_perms,
    *_watches,
    *_transactions,
    *_deviations,
    *_domains,
    *_control,
    *_big_directory,
    *_reset,
    *_abuse,
)
