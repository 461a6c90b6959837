"""Watch firing: which watches a change reaches, and the events they get (C's rules).

A change of a path reaches watches on it and on its ancestors (within their depth); an
``exact`` change (a descendant deleted by a recursive RM) reaches only watches placed exactly
on it. A watcher gets the event only if it may read the node (before or after a permission
change) or its parent. Inside a transaction events wait for the commit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..wire.paths import levels_below, parent
from .connection import Connection, Watch
from .perms import Access, PermList
from .transaction import Transaction

if TYPE_CHECKING:
    from .engine import Engine


def fire(
    engine: Engine,
    tx: Transaction | None,
    path: str,
    *,
    exact: bool,
    perms: PermList | None = None,
    old_perms: PermList | None = None,
) -> None:
    """Fire watches for a change of ``path`` (queued until commit inside a transaction)."""
    if tx is not None:
        tx.queue_event(path, exact=exact)
        return
    candidates = [p for p in (old_perms, perms) if p is not None]
    for watcher in engine.connections:
        if not watcher.watches:
            continue
        allowed: bool | None = None
        for watch in watcher.watches:
            if exact:
                matched = watch.canonical == path
            elif path.startswith("@"):
                # A special node changed (4.20's SET_PERMS): C's is_child puts it under /.
                matched = watch.canonical in (path, "/")
            else:
                levels = levels_below(path, watch.canonical)
                matched = levels is not None and (watch.depth is None or levels <= watch.depth)
            if not matched:
                continue
            if allowed is None:
                allowed = watch_permitted(engine, watcher, path, candidates)
            if allowed:
                add_event(engine, watcher, watch, path)


def watch_permitted(
    engine: Engine, watcher: Connection, path: str, candidates: list[PermList]
) -> bool:
    node = engine.tree.get(path)
    if node is None and path.startswith("@"):
        node = engine.tree.special_node(path)
    options = [*candidates, *([node.perms] if node is not None else [])]
    if not options:
        return False
    if any(engine.access(watcher, perms) & Access.READ for perms in options):
        return True
    if node is None and not path.startswith("@"):
        # C asks the parent only about a node it can still read (not one a commit removed).
        return False
    above = engine.tree.get(parent(path))
    return above is not None and bool(engine.access(watcher, above.perms) & Access.READ)


def add_event(engine: Engine, watcher: Connection, watch: Watch, path: str) -> None:
    shown = path
    if watch.relative and path.startswith(watcher.home + "/"):
        shown = path[len(watcher.home) + 1 :]
    payload = shown.encode() + b"\0" + watch.token + b"\0"
    dedup = engine.compat.dedup_events and not path.startswith("@")
    if watcher.queue_event(payload, dedup=dedup):
        engine.on_output(watcher)


def fire_special(engine: Engine, name: str, domid: int) -> None:
    """Fire ``@introduceDomain``/``@releaseDomain`` for ``domid``.

    A plain watch on the special path gets the bare name; one with a depth of 1 or
    more, and one placed on ``<name>/<domid>``, gets ``<name>/<domid>``.
    """
    perms = engine.tree.special_perms[name]
    with_domid = f"{name}/{domid}"
    for watcher in engine.connections:
        if not watcher.watches or not watch_permitted(engine, watcher, name, [perms]):
            continue
        for watch in watcher.watches:
            if watch.canonical == name:
                shown = with_domid if watch.depth else name
            elif watch.canonical == with_domid:
                shown = with_domid
            else:
                continue
            if watcher.queue_event(shown.encode() + b"\0" + watch.token + b"\0", dedup=False):
                engine.on_output(watcher)
