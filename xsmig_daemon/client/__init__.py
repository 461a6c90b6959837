"""Async (trio) xenstore client: pipelined requests, watch events, transactions.

async with connect("/var/run/xenstored/socket", timeout=5) as xs:
    value = await xs.read("/local/domain/0/name")
    async with xs.transaction() as tx:
        await xs.write("/a", b"1", tx)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from .connection import (
    DEFAULT_EVENT_BUFFER,
    DEFAULT_TIMEOUT,
    Connection,
    PendingReply,
    Request,
    WatchEvent,
    connect_unix_stream,
    open_connection,
    strings_payload,
)
from .errors import (
    ClientError,
    ClientProtocolError,
    ClientTimeoutError,
    DaemonGoneError,
    XenstoreError,
)
from .xenstore import TransactionConflictError, Xenstore, retry_backoff


@asynccontextmanager
async def connect(
    path: str, *, timeout: float = DEFAULT_TIMEOUT, event_buffer: int = DEFAULT_EVENT_BUFFER
) -> AsyncIterator[Xenstore]:
    """Connect to the daemon's unix socket at ``path``; closed when the block ends."""
    stream = await connect_unix_stream(path, timeout)
    async with open_connection(
        stream, name=path, timeout=timeout, event_buffer=event_buffer
    ) as conn:
        yield Xenstore(conn)


__all__ = [
    "DEFAULT_TIMEOUT",
    "ClientError",
    "ClientProtocolError",
    "ClientTimeoutError",
    "Connection",
    "DaemonGoneError",
    "PendingReply",
    "Request",
    "TransactionConflictError",
    "WatchEvent",
    "Xenstore",
    "XenstoreError",
    "connect",
    "open_connection",
    "retry_backoff",
    "strings_payload",
]
