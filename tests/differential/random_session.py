"""Seeded random sessions for the differential check: many small operations on a handful of
paths, so that interactions nobody thought to script (a watch, a transaction and an RM on
overlapping nodes; a guest's rights after someone changed the permissions) are compared too.

``random_session`` uses three dom0 socket clients. ``random_guest_session`` adds domains 1
and 2 speaking over their rings, their homes among the paths and their domids among the
permissions.

Excluded, as in the scripted sessions: RM inside a transaction (4.17 answers EIO there at
random, wire-protocol.md section 14), malformed payloads, and anything near a per-domain
quota (at most 3 open transactions per client; 4.17 and current Xen differ at the edge).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from replay import Action, Burst, Connect, ConnectGuest, Step

from xsmig_daemon.wire.ops import Op

MAX_OPEN_TRANSACTIONS = 3
MAX_PIPELINE = 6


@dataclass(frozen=True)
class Universe:
    clients: tuple[str, ...]
    paths: tuple[str, ...]
    perms: tuple[str, ...]
    watches: tuple[tuple[str, str], ...]


DOM0_ONLY = Universe(
    clients=("c0", "c1", "c2"),
    paths=("/r", "/r/a", "/r/a/b", "/r/a/b/c", "/r/d", "/r/d/e", "/s", "rel", "rel/x"),
    perms=("n0", "r0", "w0", "b0", "r1", "w2", "b3", "n4"),
    watches=(("/r", "whole"), ("/r/a", "a"), ("/r/a/b/c", "c"), ("rel", "rel"), ("/s", "s")),
)

WITH_GUESTS = Universe(
    clients=("c0", "g1", "g2", "g1", "g2"),
    paths=(
        "/r",
        "/r/a",
        "/r/a/b",
        "/local/domain/1",
        "/local/domain/1/x",
        "/local/domain/1/x/y",
        "/local/domain/2/z",
        "data",
        "data/v",
    ),
    perms=("n0", "r0", "b0", "n1", "r1", "w1", "b1", "n2", "r2", "w2", "b2"),
    watches=(("/r", "whole"), ("/local/domain/1", "home1"), ("data", "rel"), ("/r/a", "a")),
)


def prologue_with_guests(clients: tuple[str, ...] = ("c0",)) -> list[Action]:
    """dom1 and dom2 own their homes; /r is shared (dom1 both, dom2 read); both attached over
    their rings. ``clients``: the socket clients connected first (``c0`` sets all this up)."""
    actions: list[Action] = [Connect(client) for client in clients]
    actions += [
        Step("c0", Op.MKDIR, ("/r",)),
        Step("c0", Op.SET_PERMS, ("/r", "n0", "b1", "r2")),
    ]
    for domid in (1, 2):
        home = f"/local/domain/{domid}"
        actions += [
            Step("c0", Op.MKDIR, (home,)),
            Step("c0", Op.SET_PERMS, (home, f"n{domid}")),
            Step("c0", Op.INTRODUCE, (str(domid), str(0x1000 + domid), str(10 + domid))),
            ConnectGuest(f"g{domid}", domid),
        ]
    return actions


def random_session(seed: int, steps: int) -> tuple[Action, ...]:
    return _random_actions(
        random.Random(seed), steps, DOM0_ONLY, [Connect(c) for c in DOM0_ONLY.clients]
    )


def random_guest_session(seed: int, steps: int) -> tuple[Action, ...]:
    return _random_actions(random.Random(seed), steps, WITH_GUESTS, prologue_with_guests())


def _random_actions(
    rng: random.Random, steps: int, universe: Universe, actions: list[Action]
) -> tuple[Action, ...]:
    """The same actions for the same seed; every client's transaction labels are tracked so
    that its requests name only transactions it started."""
    open_tx: dict[str, list[str]] = {name: [] for name in universe.clients}
    for counter in range(steps):
        client = rng.choice(universe.clients)
        tx = rng.choice(open_tx[client]) if open_tx[client] and rng.random() < 0.6 else None
        roll = rng.random()
        path = rng.choice(universe.paths)
        if roll < 0.22:
            value = bytes(rng.randrange(256) for _ in range(rng.randrange(12)))
            actions.append(Step(client, Op.WRITE, (path,), value, tx=tx))
        elif roll < 0.36:
            actions.append(Step(client, Op.READ, (path,), tx=tx))
        elif roll < 0.44:
            actions.append(Step(client, Op.DIRECTORY, (path,), tx=tx))
        elif roll < 0.50:
            actions.append(Step(client, Op.MKDIR, (path,), tx=tx))
        elif roll < 0.56 and tx is None:
            actions.append(Step(client, Op.RM, (path,)))
        elif roll < 0.62:
            actions.append(Step(client, Op.GET_PERMS, (path,), tx=tx))
        elif roll < 0.67:
            perms = rng.sample(universe.perms, rng.randrange(1, 4))
            actions.append(Step(client, Op.SET_PERMS, (path, *perms), tx=tx))
        elif roll < 0.74:
            wpath, token = rng.choice(universe.watches)
            op = Op.WATCH if rng.random() < 0.7 else Op.UNWATCH
            actions.append(Step(client, op, (wpath, token)))
        elif roll < 0.86 and len(open_tx[client]) < MAX_OPEN_TRANSACTIONS:
            label = f"{client}-t{counter}"
            open_tx[client].append(label)
            actions.append(Step(client, Op.TRANSACTION_START, ("",), label=label))
        elif open_tx[client]:
            label = open_tx[client].pop(rng.randrange(len(open_tx[client])))
            commit = "T" if rng.random() < 0.75 else "F"
            actions.append(Step(client, Op.TRANSACTION_END, (commit,), tx=label))
        else:
            actions.append(Step(client, Op.READ, (path,)))
    for client, labels in open_tx.items():
        actions.extend(Step(client, Op.TRANSACTION_END, ("T",), tx=label) for label in labels)
    first = universe.clients[0]
    actions.extend(Step(first, Op.DIRECTORY, (p,)) for p in universe.paths)
    return tuple(actions)


def pipelined(actions: tuple[Action, ...]) -> tuple[Action, ...]:
    """Consecutive requests of one client sent as one pipelined burst (up to MAX_PIPELINE);
    a TRANSACTION_START stays alone, later steps need the id from its reply."""
    out: list[Action] = []
    group: list[Step] = []

    def flush() -> None:
        if len(group) > 1:
            out.append(Burst(group[0].client, tuple(group), "pipelined"))
        else:
            out.extend(group)
        group.clear()

    for action in actions:
        joinable = isinstance(action, Step) and action.op != Op.TRANSACTION_START
        if not (
            joinable
            and group
            and isinstance(action, Step)
            and action.client == group[0].client
            and len(group) < MAX_PIPELINE
        ):
            flush()
        if joinable and isinstance(action, Step):
            group.append(action)
        else:
            out.append(action)
    flush()
    return tuple(out)
