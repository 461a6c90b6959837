"""How the wire source makes a walk one consistent instant (live-update.md section 3.1).

Both are async context managers that yield the transaction id every walk request carries; on
leaving they raise ``TransactionConflictError`` / ``TreeChanged`` when the walk's view cannot be
trusted, and the caller rewinds and retries.

``transaction_view``: one transaction committed with ``T``. ``OK`` proves that no node read
changed before the commit. Exact, but both C daemons (4.17 and 4.20) pay for every read inside
a transaction in proportion to the nodes it already touched (quadratic walks: about 5 s for 10k
nodes, minutes for 100k), and a transaction is one connection's, so the walk cannot be spread.

``watched_view`` (the default): no transaction. A watch on ``/``, ``@introduceDomain`` and
``@releaseDomain`` with a private token is registered first; after the walk a round trip makes
sure every event of a change committed before it has arrived (C queues an event when the change
commits, ahead of later replies on the same connection). The walk itself may run on other
connections (the lanes of lanewalk.py): every read it made was answered before the barrier was
sent, so a change that any read could have missed committed before the barrier, and its event
is ahead of the barrier's reply on the watching connection. If nothing but the three initial
events came, nothing changed while the walk ran, so what it read is the state at any instant of
the walk. A change seen mid-walk stops the walk at once; the wire source's retry then repairs a
buffered walk instead of waiting for a quiet one (converge.py). Changes inside other clients'
transactions fire at their commit, like any other change. Any watch event counts, spurious ones
included.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Literal

import trio

from ..client import ClientError, WatchEvent, Xenstore
from ..wire.paths import INTRODUCE_DOMAIN, RELEASE_DOMAIN
from .walk import TreeChanged

Consistency = Literal["transaction", "watch"]
CONSISTENCY_CHOICES: tuple[Consistency, ...] = ("transaction", "watch")
WATCHED = ("/", INTRODUCE_DOMAIN, RELEASE_DOMAIN)


@asynccontextmanager
async def transaction_view(xs: Xenstore) -> AsyncIterator[int]:
    async with xs.transaction() as tx_id:
        yield tx_id


class ChangeWatch:
    """Sorts this walk's watch events: the first per watched path is the initial one."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.initial_pending = set(WATCHED)
        self.changes: list[str] = []

    def see(self, event: WatchEvent) -> bool:
        """Record ``event``; True if it reports a change."""
        if event.token != self.token:
            return False
        if event.path in self.initial_pending:
            self.initial_pending.discard(event.path)
            return False
        self.changes.append(event.path)
        return True

    def take_queued(self, xs: Xenstore) -> None:
        """See every event already queued on the connection, without waiting (after a round
        trip, that is every event of a change committed before it)."""
        while True:
            try:
                self.see(xs.conn.events.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                return


async def unwatch_all(xs: Xenstore, token: str) -> None:
    """Remove the change watches, shielded and bounded: also on the way out of a cancellation."""
    with trio.CancelScope(shield=True), trio.move_on_after(xs.conn.timeout):
        for path in WATCHED:
            with suppress(ClientError):
                await xs.unwatch(path, token)


@asynccontextmanager
async def registered(
    xs: Xenstore, watch: ChangeWatch, *, stop_at_change: bool
) -> AsyncIterator[None]:
    """The change watches registered around the body, their events fed to ``watch`` in the
    background (``stop_at_change``: the first change cancels the body); unwatched on the way
    out, also when cancelled."""
    body_error: BaseException | None = None
    # Cancelling before the body has started would leave this generator without a yield: a
    # change seen while the watches are being registered cancels the body at its start.
    armed = False
    async with trio.open_nursery() as nursery:

        async def collect() -> None:
            async for event in xs.conn.events:
                if watch.see(event) and stop_at_change and armed:
                    nursery.cancel_scope.cancel()
                    return

        nursery.start_soon(collect)
        try:
            for path in WATCHED:
                await xs.watch(path, watch.token)
            armed = True
            if stop_at_change and watch.changes:
                nursery.cancel_scope.cancel()
            yield
        except trio.Cancelled:
            raise
        except BaseException as exc:
            # Re-raised after the nursery, so that callers see it, not a group around it.
            body_error = exc
        finally:
            await unwatch_all(xs, watch.token)
            nursery.cancel_scope.cancel()
    if body_error is not None:
        raise body_error


@asynccontextmanager
async def watched_view(xs: Xenstore, attempt: int) -> AsyncIterator[int]:
    watch = ChangeWatch(f"xsmig-snapshot-{os.getpid()}-{attempt}")
    async with registered(xs, watch, stop_at_change=True):
        yield 0
        # A round trip: events of changes committed before it are queued ahead of its reply.
        await xs.get_perms("/")
    watch.take_queued(xs)
    if watch.changes:
        raise TreeChanged(
            f"{watch.changes[0]} changed during the walk ({len(watch.changes)} watch events)"
        )
