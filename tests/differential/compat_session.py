"""Seeded random sessions for ``xsmig mockd --compat``: everything a client can send.

Next to the node, watch and transaction traffic of random_session.py, a step may be a domain
operation (INTRODUCE / RELEASE / RESUME / SET_TARGET / IS_DOMAIN_INTRODUCED / GET_DOMAIN_PATH
with good and bad domids), an operation a version does not have, a special node, a path or a
payload at a length boundary, a malformed payload, or a request that makes the daemon close
the connection (sent on a throw-away connection). Two dom0 sockets and domains 1 and 2 over
their rings take part; the session can be pipelined with random_session.pipelined.

Both real daemons crash releasing a domain whose SET_TARGET target was freed before it
(``_State``): the session never frees a domain while another one targets it. 4.17 answers a
malformed one-string payload with whatever errno an earlier request left behind: its
session leaves those out (``Exclusions``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from random_session import MAX_OPEN_TRANSACTIONS, prologue_with_guests
from replay import Action, Connect, Disconnect, Step

from xsmig_daemon.wire.framing import encode_message
from xsmig_daemon.wire.ops import Op

CLIENTS = ("c0", "c1", "g1", "g2")
GUESTS = {"g1": 1, "g2": 2}
#: Domains introduced, released, targeted at random (1 and 2 keep their rings).
SPARE_DOMIDS = (3, 4, 5, 6)
ODD_DOMIDS = ("0", "1", "7", "32752", "32753", "65535", "65536", "-1", "x", "", "3x", " 3")
PATHS = (
    "/r",
    "/r/a",
    "/r/a/b",
    "/local/domain/1",
    "/local/domain/1/x",
    "/local/domain/1/x/y",
    "/local/domain/2/z",
    "/local/domain/3/w",
    "data",
    "data/v",
    "@introduceDomain",
    "@releaseDomain",
)
BAD_PATHS = ("", "/", "//", "/r/", "/r//a", "/r a", "/r:a", "@other", "@", "/\xe9", "/r/@x")
PERMS = ("n0", "r0", "b0", "n1", "r1", "w1", "b1", "n2", "r2", "w2", "b2", "r3", "w5")
ODD_PERMS = ("x1", "r", "n", "r-1", "b0x3", "r65536", "r32752", "b32757", "", "rr1", "n01")
WATCHES = (("/r", "whole"), ("/local/domain/1", "home1"), ("data", "rel"), ("/r/a", "a"),
           ("@introduceDomain", "intro"), ("@releaseDomain", "rel-dom"), ("/", "root"))  # fmt: skip
#: Path lengths around path-max (2048), XENSTORE_ABS_PATH_MAX (3072) and beyond.
PATH_LENGTHS = (2046, 2047, 2048, 2049, 2050, 2063, 2064, 2065, 3071, 3072, 3073, 3077, 4000)
#: Value lengths around the guests' node-size (2048) and the payload limit (4096).
VALUE_LENGTHS = (0, 1, 1990, 2010, 2015, 2016, 2017, 2027, 2028, 2048, 3000, 4090)
ONE_STRING_OPS = (Op.READ, Op.DIRECTORY, Op.GET_PERMS, Op.MKDIR, Op.RM)
NEW_OPS = (Op.RESTRICT, Op.GET_FEATURE, Op.SET_FEATURE, Op.GET_QUOTA, Op.SET_QUOTA, 27, 99,
           0x7FFF, Op.INVALID, Op.WATCH_EVENT, Op.ERROR)  # fmt: skip


@dataclass(frozen=True)
class Exclusions:
    """What one version's session leaves out, because that daemon cannot be compared on it."""

    malformed_one_string: bool = False
    rm_in_transaction: bool = False
    #: 4.20 dies releasing a domain that owns a special node.
    special_owned_by_spare: bool = False
    #: 4.17 answers a refused SET_PERMS of a special node (unknown name, no permission) with
    #: a stale errno, or none at all and dies on an assertion.
    refused_special_set_perms: bool = False


EXCLUDED = {
    "xen-4.17": Exclusions(malformed_one_string=True, refused_special_set_perms=True),
    "xen-4.20": Exclusions(special_owned_by_spare=True),
}
PRIVILEGED = ("c0", "c1")


@dataclass
class _State:
    """Domain state as both real daemons keep it, to steer clear of their crash.

    SET_TARGET X T makes X's connection hold a talloc reference on T's; RELEASE T then only
    drops the newest reference (OK, T stays), and freeing T while some X still targets it
    leaves X with a dangling pointer: releasing X kills 4.17 and 4.20 alike.
    """

    open_tx: dict[str, list[str]] = field(default_factory=lambda: {c: [] for c in CLIENTS})
    introduced: set[int] = field(default_factory=lambda: {1, 2})
    references: dict[int, list[int]] = field(default_factory=dict)
    target_of: dict[int, int] = field(default_factory=dict)
    throwaway: int = 0

    def set_target(self, domid: int, target: int) -> None:
        if domid in self.introduced and target in self.introduced:
            self.references.setdefault(target, []).append(domid)
            self.target_of[domid] = target

    def release_is_safe(self, domid: int) -> bool:
        if domid not in self.introduced or self.references.get(domid):
            return True
        return not any(t == domid and x in self.introduced for x, t in self.target_of.items())

    def release(self, domid: int) -> None:
        if domid not in self.introduced:
            return
        if self.references.get(domid):
            self.references[domid].pop()
            return
        self.introduced.discard(domid)
        self.target_of.pop(domid, None)
        for holders in self.references.values():
            holders[:] = [h for h in holders if h != domid]


def compat_session(seed: int, steps: int, version: str) -> tuple[Action, ...]:
    rng = random.Random(seed)
    gen = _Generator(rng, EXCLUDED[version])
    actions = prologue_with_guests(("c0", "c1"))
    for counter in range(steps):
        actions += gen.step(counter)
    for client, labels in gen.state.open_tx.items():
        actions += [Step(client, Op.TRANSACTION_END, ("T",), tx=label) for label in labels]
    actions += [Step("c0", Op.DIRECTORY, (p,)) for p in ("/", "/r", "/local/domain")]
    return tuple(actions)


class _Generator:
    def __init__(self, rng: random.Random, excluded: Exclusions) -> None:
        self.rng = rng
        self.excluded = excluded
        self.state = _State()

    def step(self, counter: int) -> list[Action]:
        rng = self.rng
        roll = rng.random()
        for limit, make in _MIX:
            if roll < limit:
                return make(self, counter)
        return self.node_op(counter)

    # -- helpers ------------------------------------------------------------------------

    def client(self) -> str:
        return self.rng.choice(CLIENTS)

    def tx_for(self, client: str) -> str | None:
        labels = self.state.open_tx[client]
        return self.rng.choice(labels) if labels and self.rng.random() < 0.5 else None

    def path(self) -> str:
        return self.rng.choice(PATHS)

    def long_path(self, client: str) -> str:
        length = self.rng.choice(PATH_LENGTHS) + self.rng.choice((0, 0, 1, -1))
        base = self.rng.choice(("/r/", "/local/domain/1/", "/local/domain/12345/", "data/", "/"))
        if client in GUESTS and self.rng.random() < 0.5:
            base = "x/"
        # Few slashes: a guest deleting hundreds of nodes at once is throttled by C's write
        # rate limit for longer than a step waits (timing, not behaviour).
        letters = "abcdefgh" * 8 + "/"
        filler = "".join(self.rng.choice(letters) for _ in range(max(length - len(base), 1)))
        filler = filler.replace("//", "/a").strip("/") or "a"
        return (base + filler)[:length].rstrip("/")

    def set_perms_path(self, client: str, path: str) -> str:
        """``path``, unless it is a special node this version cannot refuse properly."""
        known = path in ("@introduceDomain", "@releaseDomain")
        refused = client not in PRIVILEGED or not known
        if self.excluded.refused_special_set_perms and path.startswith("@") and refused:
            return "/r/a"
        return path

    def perms_for(self, path: str, perms: list[str]) -> tuple[str, ...]:
        """``perms``, owned by dom0 where a special node must not belong to a spare domain."""
        if self.excluded.special_owned_by_spare and path.startswith("@") and perms:
            owner = perms[0]
            if any(owner.endswith(str(d)) for d in SPARE_DOMIDS) or "x" in owner:
                perms = ["n0", *perms[1:]]
        return tuple(perms)

    # -- kinds of step --------------------------------------------------------------------

    def node_op(self, counter: int) -> list[Action]:
        rng, client = self.rng, self.client()
        tx, path = self.tx_for(client), self.path()
        roll = rng.random()
        if roll < 0.25:
            value = bytes(rng.randrange(256) for _ in range(rng.randrange(12)))
            return [Step(client, Op.WRITE, (path,), value, tx=tx)]
        if roll < 0.4:
            return [Step(client, Op.READ, (path,), tx=tx)]
        if roll < 0.5:
            return [Step(client, Op.DIRECTORY, (path,), tx=tx)]
        if roll < 0.57:
            return [Step(client, Op.MKDIR, (path,), tx=tx)]
        if roll < 0.65:
            if tx is not None and self.excluded.rm_in_transaction:
                tx = None
            return [Step(client, Op.RM, (path,), tx=tx)]
        if roll < 0.75:
            return [Step(client, Op.GET_PERMS, (path,), tx=tx)]
        if roll < 0.85:
            path = self.set_perms_path(client, path)
            perms = self.perms_for(path, rng.sample(PERMS, rng.randrange(1, 4)))
            return [Step(client, Op.SET_PERMS, (path, *perms), tx=tx)]
        offset = str(rng.choice((0, 1, 2, 3, 100, -1)))
        return [Step(client, Op.DIRECTORY_PART, (path, offset), tx=tx)]

    def watch_op(self, counter: int) -> list[Action]:
        rng, client = self.rng, self.client()
        wpath, token = rng.choice(WATCHES)
        roll = rng.random()
        if roll < 0.55:
            return [Step(client, Op.WATCH, (wpath, token))]
        if roll < 0.85:
            return [Step(client, Op.UNWATCH, (wpath, token))]
        if roll < 0.92:
            return [Step(client, Op.WATCH, (wpath, token, str(rng.randrange(3))))]
        return [Step(client, Op.RESET_WATCHES, ("",))]

    def transaction_op(self, counter: int) -> list[Action]:
        rng, client = self.rng, self.client()
        labels = self.state.open_tx[client]
        if len(labels) < MAX_OPEN_TRANSACTIONS and (not labels or rng.random() < 0.55):
            label = f"{client}-t{counter}"
            labels.append(label)
            return [Step(client, Op.TRANSACTION_START, ("",), label=label)]
        if not labels:
            return [Step(client, Op.TRANSACTION_END, ("T",))]
        label = labels.pop(rng.randrange(len(labels)))
        verdict = rng.choice(("T", "T", "T", "F", "X", ""))
        if verdict in ("X", ""):
            labels.append(label)  # refused: still open
        return [Step(client, Op.TRANSACTION_END, (verdict,), tx=label)]

    def domain_op(self, counter: int) -> list[Action]:
        rng, state = self.rng, self.state
        client = "c0" if rng.random() < 0.7 else self.client()
        privileged = client in PRIVILEGED
        domid = rng.choice(SPARE_DOMIDS)
        roll = rng.random()
        if roll < 0.3:
            gfn, port = str(rng.randrange(1, 9999)), rng.choice(("5", "7", "0", "x", "70000"))
            if privileged and port not in ("0", "x"):
                state.introduced.add(domid)
            return [Step(client, Op.INTRODUCE, (str(domid), gfn, port))]
        if roll < 0.45:
            if not state.release_is_safe(domid):
                return [Step(client, Op.IS_DOMAIN_INTRODUCED, (str(domid),))]
            if privileged:
                state.release(domid)
            return [Step(client, Op.RELEASE, (str(domid),))]
        if roll < 0.55:
            target = rng.choice((*SPARE_DOMIDS, 1, 2))
            if privileged:
                state.set_target(domid, target)
            return [Step(client, Op.SET_TARGET, (str(domid), str(target)))]
        if roll < 0.65:
            return [Step(client, Op.RESUME, (str(domid),))]
        if roll < 0.8:
            arg = rng.choice((str(domid), *ODD_DOMIDS))
            return [Step(client, Op.IS_DOMAIN_INTRODUCED, (arg,))]
        arg = rng.choice((str(domid), *ODD_DOMIDS))
        return [Step(client, Op.GET_DOMAIN_PATH, (arg,))]

    def odd_op(self, counter: int) -> list[Action]:
        rng, client = self.rng, self.client()
        op = rng.choice(NEW_OPS)
        args = rng.choice(((), ("",), ("1",), ("1", "2"), ("nodes",), ("1", "nodes", "5")))
        return [Step(client, op, args)]

    def bad_path(self, counter: int) -> list[Action]:
        rng, client = self.rng, self.client()
        path = rng.choice(BAD_PATHS)
        op = rng.choice((Op.READ, Op.WRITE, Op.MKDIR, Op.RM, Op.GET_PERMS, Op.SET_PERMS,
                         Op.WATCH, Op.DIRECTORY))  # fmt: skip
        if op == Op.WRITE:
            return [Step(client, op, (path,), b"v")]
        if op == Op.SET_PERMS:
            return [Step(client, op, (self.set_perms_path(client, path), "n0"))]
        if op == Op.WATCH:
            return [Step(client, op, (path, "tok"))]
        return [Step(client, op, (path,))]

    def odd_perms(self, counter: int) -> list[Action]:
        rng, client = self.rng, self.client()
        path = self.set_perms_path(client, self.path())
        perms = [rng.choice(ODD_PERMS + PERMS) for _ in range(rng.randrange(0, 4))]
        return [Step(client, Op.SET_PERMS, (path, *self.perms_for(path, perms)))]

    def boundary(self, counter: int) -> list[Action]:
        rng, client = self.rng, self.client()
        if rng.random() < 0.5:
            path = self.long_path(client)
            op = rng.choice((Op.WRITE, Op.READ, Op.MKDIR, Op.GET_PERMS, Op.RM))
            value = b"v" if op == Op.WRITE else None
            return [Step(client, op, (path,), value)]
        path = rng.choice(("/r/big", "/local/domain/1/big", "data/big", "/r/a"))
        length = rng.choice(VALUE_LENGTHS)
        room = 4096 - len(path.encode()) - 1
        if rng.random() < 0.2:
            length = room  # a payload of exactly 4096 bytes
        length = min(length, room)
        return [Step(client, Op.WRITE, (path,), b"v" * length)]

    def malformed(self, counter: int) -> list[Action]:
        """Payloads that are not the strings an op expects, on a connection of its own."""
        rng, state = self.rng, self.state
        state.throwaway += 1
        name = f"x{state.throwaway}"
        kind = rng.randrange(6)
        if kind == 0 or (kind == 1 and self.excluded.malformed_one_string):
            op, body = Op.WRITE, b"/r/nonul"
        elif kind == 1:
            op = rng.choice(ONE_STRING_OPS)
            body = rng.choice((b"", b"/r", b"/r\0/a\0", b"/r\0\0", b"\0"))
        elif kind == 2:
            op, body = Op.SET_PERMS, rng.choice((b"/r\0", b"/r", b"/r\0n0", b"\0n0\0"))
        elif kind == 3:
            op, body = Op.WATCH, rng.choice((b"/r\0", b"/r\0t", b"/r\0t\0x\0y\0", b""))
        elif kind == 4:
            op, body = rng.choice((Op.INTRODUCE, Op.SET_TARGET, Op.GET_DOMAIN_PATH)), b"1\0"
        else:
            # A header announcing more than 4096 bytes: the daemon drops the connection.
            header = encode_message(Op.READ, 1, 0, b"")[:12]
            raw = header + rng.choice((4097, 5000, 0xFFFFFFFF)).to_bytes(4, "little")
            return [Connect(name), Step(name, Op.READ, raw=raw), Disconnect(name)]
        raw = encode_message(op, 7, 0, body)
        return [Connect(name), Step(name, op, raw=raw), Disconnect(name)]


_MIX = (
    (0.40, _Generator.node_op),
    (0.50, _Generator.watch_op),
    (0.60, _Generator.transaction_op),
    (0.72, _Generator.domain_op),
    (0.77, _Generator.odd_op),
    (0.83, _Generator.bad_path),
    (0.87, _Generator.odd_perms),
    (0.94, _Generator.boundary),
    (1.00, _Generator.malformed),
)
