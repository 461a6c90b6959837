"""Pre-order walk of the committed tree over several connections, far ahead of the output.

Theory of operation. Each node costs three requests (GET_PERMS, READ, DIRECTORY), all sent on
one lane (client/bulk.py), nodes dealt round-robin over the lanes. Two cursors move over the
same tree of entries:

* the *scout* issues requests. It keeps a heap of entries whose child list is known and
  whose children are not all requested yet, keyed by the pre-order position of the next
  child to request (the tuple of child indices from the root), and requests up to
  ``window`` children of the earliest one at a time. So requests go out in pre-order as far
  as the child lists that have arrived allow, and one slow listing does not stop the others:
  the next subtrees are requested while it is awaited.
* the *emitter* takes entries in pre-order, waits for their replies and hands each node to
  ``emit``; it needs nothing else, so it never waits for the scout except when the next node
  has not been requested at all (then the scout requests it at once, over budget).

The walk drives its lanes itself, without reader tasks: it reads every lane without waiting
when the next node's replies are not there yet (and sleeps on that one lane if they still
are not) and when the scout refills, which it does in batches of a quarter of the budget so
that sends are few and large.

Memory: entries requested but not yet emitted are at most ``budget`` (plus one ``window`` per
tree level when the emitter is starved), whatever the size of the store; an emitted entry is
forgotten once its subtree is done; the heap holds only entries with children left to request.

A node that vanished (ENOENT) means the tree changed under the walk: ``TreeChanged`` when the
emitter reaches it, as in walk.py; a child list too big for one reply (E2BIG) is read with
DIRECTORY_PART.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass

from ..client import XenstoreError
from ..client.bulk import Lane, send_lanes
from ..client.xenstore import parse_directory_part
from ..image.records import TEXT_ENCODING, TEXT_ERRORS, NodeData, Permission, decode_text
from ..wire.ops import Op
from .errors import SourceError
from .walk import NodeCallback, TreeChanged, child_path

#: Children requested per expansion of one entry.
DEFAULT_WINDOW = 128
#: Nodes requested but not emitted, at most (beyond a starved emitter's need).
DEFAULT_BUDGET = 3072
#: Connections a walk spreads its requests over.
DEFAULT_LANES = 8
#: The most connections one walk opens.
MAX_LANES = 64
_PART_RESTARTS = 8
#: Distinct GET_PERMS replies remembered (nodes share few permission lists).
_PERMS_MEMO_MAX = 4096


@dataclass(slots=True, eq=False)
class _Entry:
    path: str
    key: tuple[int, ...]
    lane: Lane
    #: req_id of GET_PERMS; READ is rid + 1, DIRECTORY rid + 2 (consecutive on ``lane``).
    rid: int
    names: list[str] | None = None
    #: Its DIRECTORY answered ENOENT: the emitter raises ``TreeChanged`` when it gets here.
    vanished: bool = False
    #: Its DIRECTORY answered E2BIG: the emitter reads the list with DIRECTORY_PART.
    too_big: bool = False
    #: Children requested so far (a prefix of ``names``).
    issued: int = 0
    #: Children requested and not yet emitted (None until the first is requested).
    kids: deque[_Entry] | None = None


class LaneWalker:
    """Walks with every request in transaction ``tx_id`` (0: none) over ``lanes``."""

    def __init__(
        self,
        lanes: list[Lane],
        tx_id: int = 0,
        *,
        window: int = DEFAULT_WINDOW,
        budget: int = DEFAULT_BUDGET,
    ) -> None:
        if not lanes:
            raise ValueError("a lane walk needs at least one lane")
        self.lanes = lanes
        self.tx_id = tx_id
        self.window = max(1, window)
        self.budget = max(self.window, budget)
        #: The scout waits until this many requested nodes were emitted, then refills.
        self._refill = max(1, self.budget // 4)
        self.requests = 0
        self.nodes = 0
        self._perms_memo: dict[bytes, tuple[Permission, ...]] = {}
        self._reset()

    def _reset(self) -> None:
        # An earlier walk may have stopped (TreeChanged) with replies still to come.
        for lane in self.lanes:
            lane.forget()
        self._deal = 0
        self._outstanding = 0
        self._seq = 0
        self._descend = True
        self._dirty = False
        #: Replies filed since the scout last looked for child lists.
        self._arrived = 0
        self._unlisted: deque[_Entry] = deque()
        self._expandable: list[tuple[tuple[int, ...], int, int, _Entry]] = []

    # ------------------------------------------------------------ the public walks

    async def walk(self, emit: NodeCallback, root: str = "/") -> None:
        """Call ``emit(node, child_names)`` for every node under ``root`` (itself included),
        parents before children, siblings in the daemon's order."""
        self._reset()
        first = self._issue(root, (), None)
        await self._flush()
        stack: list[_Entry] = []
        entry: _Entry | None = first
        while True:
            if entry is None:
                entry = self._next(stack)
                if entry is None:
                    return
            taken = self._take(entry)
            if taken is None:
                await self._wait_ready(entry)
                continue
            node, names = taken
            if names:
                stack.append(entry)
            entry = None
            self.nodes += 1
            await emit(node, names)
            if self._outstanding <= self.budget - self._refill and (
                self._expandable or self._unlisted
            ):
                # Time to refill: read what arrived (child lists), request, send.
                self._pump()
                self._scout()
                await self._flush()

    async def read_nodes(self, paths: list[str]) -> list[tuple[NodeData, list[str]] | None]:
        """Nodes and their child names, requested together; None for one that does not exist."""
        self._reset()
        self._descend = False
        entries = [self._issue(path, (i,), None) for i, path in enumerate(paths)]
        await self._flush()
        found: list[tuple[NodeData, list[str]] | None] = []
        for entry in entries:
            try:
                taken = self._take(entry)
                while taken is None:
                    await self._wait_ready(entry)
                    taken = self._take(entry)
                found.append(taken)
                self.nodes += 1
            except TreeChanged:
                found.append(None)
        return found

    # ------------------------------------------------------------ the emitter

    def _next(self, stack: list[_Entry]) -> _Entry | None:
        """The next entry in pre-order after the one just emitted; None at the end."""
        while stack:
            top = stack[-1]
            if top.kids:
                return top.kids.popleft()
            assert top.names is not None
            if top.issued < len(top.names):
                # Starved: the next node was never requested (budget, or its parent's list
                # came late). Request it now (sent before the emitter waits for it).
                self._expand(top)
                continue
            stack.pop()
        return None

    async def _wait_ready(self, entry: _Entry) -> None:
        """Until ``_take`` can take ``entry`` (or it vanished): meanwhile the scout goes on."""
        lane, rid = entry.lane, entry.rid
        while True:
            if entry.names is None:
                if entry.too_big:
                    self._set_names(entry, await self._directory_in_parts(entry))
                else:
                    self._list(entry)
            if entry.vanished:
                return
            if entry.names is None:
                missing = rid + 2
            elif not lane.has(rid):
                missing = rid
            elif not lane.has(rid + 1):
                missing = rid + 1
            else:
                return
            self._pump()
            if lane.has(missing):
                continue
            self._scout()
            await self._flush()
            await lane.wait_readable(f"{entry.path}")
            self._arrived += lane.pump()

    def _take(self, entry: _Entry) -> tuple[NodeData, list[str]] | None:
        """The node and its child names if all three replies are here (else None)."""
        names = entry.names
        if names is None and not self._list(entry):
            return None
        lane, path = entry.lane, entry.path
        if entry.vanished:
            self._outstanding -= 1
            raise TreeChanged(f"{path} vanished during the walk")
        replies = lane.take_pair(entry.rid)
        if replies is None:
            return None
        self._outstanding -= 1
        (perms_op, perms_payload), (value_op, value) = replies
        if perms_op == Op.ERROR:
            _payload(replies[0], path, "GET_PERMS", lane)
        if value_op == Op.ERROR:
            _payload(replies[1], path, "READ", lane)
        perms = self._perms_memo.get(perms_payload) or self._perms(perms_payload, path, lane)
        assert entry.names is not None
        return NodeData(path, value, perms), entry.names

    def _perms(self, payload: bytes, path: str, lane: Lane) -> tuple[Permission, ...]:
        """A GET_PERMS reply parsed, and remembered: nodes share few permission lists (and
        the encoder caches a shared tuple's bytes)."""
        items = payload.split(b"\0")
        if items and not items[-1]:
            items.pop()
        if not items:
            raise SourceError(f"{lane.name}: GET_PERMS {path} returned no permissions")
        try:
            perms = tuple(Permission.parse(decode_text(item)) for item in items)
        except ValueError as exc:
            raise SourceError(f"{lane.name}: GET_PERMS {path}: {exc}") from None
        if len(self._perms_memo) >= _PERMS_MEMO_MAX:
            self._perms_memo.clear()
        self._perms_memo[payload] = perms
        return perms

    # ------------------------------------------------------------ the scout

    def _issue(self, path: str, key: tuple[int, ...], parent: _Entry | None) -> _Entry:
        lane = self.lanes[self._deal]
        self._deal = (self._deal + 1) % len(self.lanes)
        arg = path.encode(TEXT_ENCODING, TEXT_ERRORS) + b"\0"
        rid = lane.queue_node(arg, self.tx_id)
        self.requests += 3
        self._outstanding += 1
        self._dirty = True
        entry = _Entry(path, key, lane, rid)
        if parent is not None:
            if parent.kids is None:
                parent.kids = deque()
            parent.kids.append(entry)
        self._unlisted.append(entry)
        return entry

    def _expand(self, entry: _Entry) -> None:
        """Request the next ``window`` children of ``entry``; re-queue it if more remain."""
        names = entry.names
        assert names is not None
        start = entry.issued
        stop = min(len(names), start + self.window)
        for index in range(start, stop):
            self._issue(child_path(entry.path, names[index]), (*entry.key, index), entry)
        entry.issued = stop
        self._push(entry)

    def _push(self, entry: _Entry) -> None:
        assert entry.names is not None
        if entry.issued < len(entry.names):
            self._seq += 1
            heapq.heappush(
                self._expandable, ((*entry.key, entry.issued), self._seq, entry.issued, entry)
            )

    def _scout(self) -> None:
        """Take the child lists that arrived, queue the requests the budget allows (the
        caller sends them)."""
        unlisted = self._unlisted
        if self._arrived:
            self._arrived = 0
            while unlisted:
                entry = unlisted[0]
                if entry.names is None and not self._list(entry):
                    break
                unlisted.popleft()
        heap = self._expandable
        if heap and self._outstanding > self.budget - self._refill:
            return  # refill in batches: fewer, bigger sends
        while heap and self._outstanding < self.budget:
            _key, _seq, issued, entry = heapq.heappop(heap)
            if issued == entry.issued:  # else superseded by a later push
                self._expand(entry)

    def _list(self, entry: _Entry) -> bool:
        """Set ``entry.names`` from its DIRECTORY reply if it is here; True if set."""
        if entry.too_big:
            return False
        reply = entry.lane.take(entry.rid + 2)
        if reply is None:
            return False
        op, payload = reply
        error = payload.rstrip(b"\0") if op == Op.ERROR else None
        if error == b"ENOENT":
            entry.vanished = True
            self._set_names(entry, [])
        elif error == b"E2BIG":
            entry.too_big = True
            return False
        else:
            listing = _payload(reply, entry.path, "DIRECTORY", entry.lane)
            self._set_names(entry, [decode_text(raw) for raw in listing.split(b"\0") if raw])
        return True

    def _set_names(self, entry: _Entry, names: list[str]) -> None:
        entry.names = names
        if names and self._descend:
            self._push(entry)

    async def _directory_in_parts(self, entry: _Entry) -> list[str]:
        """A child list too big for one reply, read with DIRECTORY_PART (wire-protocol §11)."""
        lane, path = entry.lane, entry.path
        raw_path = path.encode(TEXT_ENCODING, TEXT_ERRORS)
        for _ in range(_PART_RESTARTS):
            names: list[str] = []
            offset = 0
            generation: int | None = None
            while True:
                rid = lane.queue(Op.DIRECTORY_PART, raw_path + b"\0%d\0" % offset, self.tx_id)
                self.requests += 1
                await send_lanes([lane])
                reply = await self._reply(lane, rid, path)
                payload = _payload(reply, path, "DIRECTORY_PART", lane)
                gen, chunk, complete = parse_directory_part(payload)
                if generation is not None and gen != generation:
                    break
                generation = gen
                names.extend(chunk)
                offset += sum(len(name.encode(TEXT_ENCODING, TEXT_ERRORS)) + 1 for name in chunk)
                if complete:
                    return names
                if not chunk:
                    raise SourceError(
                        f"{lane.name}: DIRECTORY_PART {path} at offset {offset} "
                        "returned nothing and no end marker"
                    )
        raise TreeChanged(f"children of {path} kept changing during DIRECTORY_PART")

    async def _reply(self, lane: Lane, rid: int, path: str) -> tuple[int, bytes]:
        while True:
            reply = lane.take(rid)
            if reply is not None:
                return reply
            await lane.wait_readable(path)
            self._arrived += lane.pump()

    def _pump(self) -> None:
        """Read every lane without waiting."""
        for lane in self.lanes:
            self._arrived += lane.pump()

    async def _flush(self) -> None:
        if self._dirty:
            self._dirty = False
            await send_lanes(self.lanes)


def _payload(reply: tuple[int, bytes], path: str, what: str, lane: Lane) -> bytes:
    op, payload = reply
    if op != Op.ERROR:
        return payload
    name = decode_text(payload.rstrip(b"\0")) or "?"
    if name == "ENOENT":
        raise TreeChanged(f"{path} vanished during the walk")
    raise SourceError(str(XenstoreError(name, f"{lane.name}: {what} {path}")))
