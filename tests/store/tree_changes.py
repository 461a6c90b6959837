"""A tree that changes while it is read: the hypothesis strategies and the engine set-up the
copy-on-write snapshot and the pre-copy tests share."""

from __future__ import annotations

from hypothesis import strategies as st

from xsmig_daemon.store import Engine
from xsmig_daemon.wire.ops import Op

from .engine_client import EngineClient

NAMES = ("a", "b", "c")
paths = st.lists(st.sampled_from(NAMES), min_size=1, max_size=3).map(lambda p: "/" + "/".join(p))
#: ``(op, path, value)``: a change to apply, or ``walk`` (read on while the tree changes).
operations = st.lists(
    st.tuples(st.sampled_from(("write", "rm", "perms", "walk")), paths, st.binary(max_size=3)),
    max_size=40,
)


def engine_with(initial: list[str]) -> tuple[Engine, EngineClient]:
    """An engine holding ``initial`` (each path's value is its name) and a dom0 client."""
    engine = Engine()
    client = EngineClient(engine, engine.connect_socket(7))
    for path in initial:
        client.write(path, path)
    return engine, client


def apply_change(client: EngineClient, op: str, path: str, value: bytes) -> None:
    """One non-``walk`` step of ``operations``."""
    if op == "write":
        client.call(Op.WRITE, path, value=value)
    elif op == "rm":
        client.call(Op.RM, path)
    else:
        client.call(Op.SET_PERMS, path, "n0", f"r{len(value)}")
