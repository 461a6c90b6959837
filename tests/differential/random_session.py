"""Seeded random sessions for the differential check: many small operations by three socket
clients on a handful of paths, so that interactions nobody thought to script (a watch and a
transaction and an RM on overlapping nodes) are compared too.

Excluded, as in the scripted session: RM inside a transaction (4.17 answers EIO there at
random, wire-protocol.md section 14) and malformed payloads.
"""

from __future__ import annotations

import random

from replay import Action, Connect, Step

from xsmig_daemon.wire.ops import Op

CLIENTS = ("c0", "c1", "c2")
PATHS = ("/r", "/r/a", "/r/a/b", "/r/a/b/c", "/r/d", "/r/d/e", "/s", "rel", "rel/x")
PERMS = ("n0", "r0", "w0", "b0", "r1", "w2", "b3", "n4")
WATCHES = (("/r", "whole"), ("/r/a", "a"), ("/r/a/b/c", "c"), ("rel", "rel"), ("/s", "s"))


def random_session(seed: int, steps: int) -> tuple[Action, ...]:
    """The same actions for the same ``seed``; every client's transaction labels are
    tracked so that its requests name only transactions it started."""
    rng = random.Random(seed)
    actions: list[Action] = [Connect(name) for name in CLIENTS]
    open_tx: dict[str, list[str]] = {name: [] for name in CLIENTS}
    for counter in range(steps):
        client = rng.choice(CLIENTS)
        tx = rng.choice(open_tx[client]) if open_tx[client] and rng.random() < 0.6 else None
        roll = rng.random()
        path = rng.choice(PATHS)
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
            perms = rng.sample(PERMS, rng.randrange(1, 4))
            actions.append(Step(client, Op.SET_PERMS, (path, *perms), tx=tx))
        elif roll < 0.74:
            wpath, token = rng.choice(WATCHES)
            op = Op.WATCH if rng.random() < 0.7 else Op.UNWATCH
            actions.append(Step(client, op, (wpath, token)))
        elif roll < 0.86:
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
    actions.extend(Step(CLIENTS[0], Op.DIRECTORY, (p,)) for p in PATHS)
    return tuple(actions)
