"""Typed xenstore operations over a ``Connection``: paths in, Python values out.

Each method sends one request and waits for its reply. To pipeline, build ``Request`` objects
with the ``*_request`` helpers, ``submit_many`` them, then decode each reply with the
matching ``parse_*`` function (this is what the exporter's tree walk does).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import trio

from ..image.records import Permission, decode_text
from ..wire.framing import split_strings
from ..wire.ops import Op
from .connection import Connection, Request, strings_payload
from .errors import ClientError, ClientProtocolError, XenstoreError


def path_request(op: Op, path: str, tx_id: int = 0) -> Request:
    return Request(op, strings_payload((path,)), tx_id)


def parse_names(payload: bytes) -> list[str]:
    return [decode_text(name) for name in split_strings(payload)]


def parse_perms(payload: bytes, where: str = "GET_PERMS") -> tuple[Permission, ...]:
    try:
        return tuple(Permission.parse(decode_text(item)) for item in split_strings(payload))
    except ValueError as exc:
        raise ClientProtocolError(f"{where}: {exc}") from None


def parse_directory_part(payload: bytes) -> tuple[int, list[str], bool]:
    """``(generation, names, complete)`` of one DIRECTORY_PART reply (wire-protocol §11)."""
    head, _, rest = payload.partition(b"\0")
    if not head.isdigit():
        raise ClientProtocolError(f"DIRECTORY_PART reply without a generation: {payload[:40]!r}")
    # Every name ends with a NUL; the end of the list is marked by one more (an empty name).
    complete = rest == b"\0" or rest.endswith(b"\0\0")
    names = [decode_text(raw) for raw in rest.split(b"\0") if raw]
    return int(head), names, complete


def parse_bool(payload: bytes, where: str) -> bool:
    text = payload.rstrip(b"\0")
    if text not in (b"T", b"F"):
        raise ClientProtocolError(f"{where}: expected T or F, got {payload!r}")
    return text == b"T"


def parse_int(payload: bytes, where: str) -> int:
    text = payload.rstrip(b"\0")
    if not text.isdigit():
        raise ClientProtocolError(f"{where}: expected a decimal number, got {payload!r}")
    return int(text)


class TransactionConflictError(XenstoreError):
    """TRANSACTION_END 'T' answered EAGAIN: something read was changed meanwhile."""


class Xenstore:
    """High-level operations; ``conn`` stays available for pipelining and watch events."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    @property
    def name(self) -> str:
        return self.conn.name

    async def read(self, path: str, tx_id: int = 0) -> bytes:
        return await self.conn.request(path_request(Op.READ, path, tx_id))

    async def write(self, path: str, value: bytes, tx_id: int = 0) -> None:
        payload = strings_payload((path,)) + value
        await self.conn.request(Request(Op.WRITE, payload, tx_id))

    async def mkdir(self, path: str, tx_id: int = 0) -> None:
        await self.conn.request(path_request(Op.MKDIR, path, tx_id))

    async def rm(self, path: str, tx_id: int = 0) -> None:
        await self.conn.request(path_request(Op.RM, path, tx_id))

    async def directory(self, path: str, tx_id: int = 0) -> list[str]:
        return parse_names(await self.conn.request(path_request(Op.DIRECTORY, path, tx_id)))

    async def directory_part(self, path: str, offset: int, tx_id: int = 0) -> bytes:
        payload = strings_payload((path, str(offset)))
        return await self.conn.request(Request(Op.DIRECTORY_PART, payload, tx_id))

    async def get_perms(self, path: str, tx_id: int = 0) -> tuple[Permission, ...]:
        reply = await self.conn.request(path_request(Op.GET_PERMS, path, tx_id))
        return parse_perms(reply, f"{self.name}: GET_PERMS {path}")

    async def set_perms(self, path: str, perms: tuple[Permission, ...], tx_id: int = 0) -> None:
        await self.conn.call(Op.SET_PERMS, path, *(str(p) for p in perms), tx_id=tx_id)

    async def watch(self, path: str, token: str) -> None:
        await self.conn.call(Op.WATCH, path, token)

    async def unwatch(self, path: str, token: str) -> None:
        await self.conn.call(Op.UNWATCH, path, token)

    async def introduce(self, domid: int, gfn: int, evtchn: int) -> None:
        await self.conn.call(Op.INTRODUCE, str(domid), str(gfn), str(evtchn))

    async def release(self, domid: int) -> None:
        await self.conn.call(Op.RELEASE, str(domid))

    async def is_domain_introduced(self, domid: int) -> bool:
        reply = await self.conn.call(Op.IS_DOMAIN_INTRODUCED, str(domid))
        return parse_bool(reply, f"{self.name}: IS_DOMAIN_INTRODUCED {domid}")

    async def get_feature(self, domid: int | None = None) -> int:
        args = () if domid is None else (str(domid),)
        reply = await self.conn.call(Op.GET_FEATURE, *args)
        return parse_int(reply, f"{self.name}: GET_FEATURE")

    async def get_quota(self, *args: str) -> bytes:
        return await self.conn.call(Op.GET_QUOTA, *args)

    async def control(self, *args: str) -> bytes:
        return await self.conn.call(Op.CONTROL, *args)

    async def transaction_start(self) -> int:
        reply = await self.conn.request(Request(Op.TRANSACTION_START, b"\0"))
        return parse_int(reply, f"{self.name}: TRANSACTION_START")

    async def transaction_end(self, tx_id: int, *, commit: bool) -> None:
        """Commit (``T``) or abort (``F``); a lost commit raises ``TransactionConflictError``."""
        try:
            await self.conn.call(Op.TRANSACTION_END, "T" if commit else "F", tx_id=tx_id)
        except XenstoreError as exc:
            if exc.name == "EAGAIN":
                raise TransactionConflictError(exc.name, exc.request) from None
            raise

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[int]:
        """``async with xs.transaction() as tx:`` commits at the end, aborts on an error.

        A conflict at commit raises ``TransactionConflictError``; see ``retry_backoff``.
        """
        tx_id = await self.transaction_start()
        try:
            yield tx_id
        except Exception:
            # Cancellation skips this: the reader task is cancelled too, so no reply could
            # arrive, and closing the connection ends the transaction in the daemon anyway.
            # The original error matters more than a failed abort.
            with (
                trio.CancelScope(shield=True),
                trio.move_on_after(self.conn.timeout),
                suppress(ClientError),
            ):
                await self.transaction_end(tx_id, commit=False)
            raise
        await self.transaction_end(tx_id, commit=True)


def retry_backoff(attempt: int, *, base: float = 0.01, limit: float = 0.5) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): doubling, capped."""
    return float(min(limit, base * (2 ** (attempt - 1))))
