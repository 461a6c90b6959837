"""The control socket: a unix stream socket (mode 0600) speaking control_protocol.

One task per client, at most ``control.max_clients`` at once. A client has
``control.read_timeout`` seconds to send each request line; each request runs under its own
deadline (``deadline`` in the request, else a per-command default). Garbage gets an error
reply; a client that disconnects mid-request only loses its reply -- the operation itself
finishes (or fails) exactly as if the client had stayed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat
from typing import TYPE_CHECKING

import trio

from ..sockpath import listen_at
from .control_protocol import (
    LineBuffer,
    LineTooLongError,
    RequestError,
    encode_response,
    parse_request,
)
from .errors import ControlSocketError, OperationError
from .log import get_logger

if TYPE_CHECKING:
    from .app import Service

log = get_logger("control")

_RECEIVE_SIZE = 4096
_BACKLOG = 16


def bind_control_socket(path: str) -> socket.socket:
    """Listen at ``path`` with mode 0600; replaces a stale socket, never a live one."""
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        _refuse_live(path)
        return listen_at(path, _BACKLOG)
    except OSError as exc:
        raise ControlSocketError(f"control.socket: {path}: {exc.strerror or exc}") from None


def _refuse_live(path: str) -> None:
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ControlSocketError(f"control.socket: {path}: exists and is not a socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.setblocking(False)
        try:
            probe.connect(path)
        except OSError as exc:
            if exc.errno != errno.ECONNREFUSED:
                raise
        else:
            raise ControlSocketError(f"control.socket: {path}: another process is listening there")


def remove_control_socket(path: str, sock: socket.socket) -> None:
    """Close the listener and unlink its path (left alone if something else replaced it)."""
    with contextlib.suppress(OSError):
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)
    sock.close()


async def serve_control(
    service: Service,
    sock: socket.socket,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    listener = trio.SocketListener(trio.socket.from_stdlib_socket(sock))
    clients = trio.CapacityLimiter(service.config.control.max_clients)
    task_status.started()
    async with trio.open_nursery() as nursery:
        while True:
            stream = await listener.accept()
            try:
                clients.acquire_on_behalf_of_nowait(stream)
            except trio.WouldBlock:
                nursery.start_soon(_refuse, stream)
                continue
            nursery.start_soon(_serve_client, service, stream, clients)


async def _refuse(stream: trio.SocketStream) -> None:
    log.warning("control: too many clients, refusing one")
    with trio.move_on_after(1), contextlib.suppress(trio.BrokenResourceError):
        await stream.send_all(encode_response(None, error="too many control clients; try later"))
    await stream.aclose()


async def _serve_client(
    service: Service, stream: trio.SocketStream, clients: trio.CapacityLimiter
) -> None:
    try:
        async with stream:
            await _client_session(service, stream)
    except (trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError) as exc:
        log.debug("control client went away: %r", exc)
    finally:
        clients.release_on_behalf_of(stream)


async def _client_session(service: Service, stream: trio.SocketStream) -> None:
    buffer = LineBuffer()
    while True:
        lines: list[bytes] = []
        with trio.move_on_after(service.config.control.read_timeout) as idle:
            while not lines:
                data = await stream.receive_some(_RECEIVE_SIZE)
                if not data:
                    return
                buffer.feed(data)
                try:
                    lines = list(buffer.lines())
                except LineTooLongError as exc:
                    await _reply(stream, encode_response(None, error=str(exc)))
                    return
        if idle.cancelled_caught:
            if buffer.partial:
                timeout = service.config.control.read_timeout
                message = f"incomplete request after {timeout:g} s"
                await _reply(stream, encode_response(None, error=message))
            return
        for line in lines:
            await _reply(stream, await handle_request(service, line))


async def _reply(stream: trio.SocketStream, data: bytes) -> None:
    with trio.fail_after(10):
        await stream.send_all(data)


async def handle_request(service: Service, line: bytes) -> bytes:
    """Run one request line to its response line; never raises for a client's mistake."""
    try:
        request = parse_request(line)
    except RequestError as exc:
        log.info("control: bad request: %s", exc)
        return encode_response(exc.request_id, error=str(exc))
    deadline = request.deadline or service.default_deadline(request.command)
    log.debug("control: %s (deadline %g s)", request.command, deadline)
    with trio.move_on_after(deadline):
        try:
            result = await service.execute(request)
        except OperationError as exc:
            return encode_response(request.request_id, error=str(exc))
        return encode_response(request.request_id, result)
    message = f"{request.command}: deadline of {deadline:g} s exceeded"
    log.error("control: %s", message)
    return encode_response(request.request_id, error=message)
