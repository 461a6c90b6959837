"""Every unix socket xsmig listens on appears at its path only once it accepts connections.

A client (the real xenstore tools, a producer streaming to ``mockd --restore unix:PATH``, an
operator's ``xsmig ctl``) waits for the path and connects at once; had the path been bound
before ``listen()``, that connect could be refused (ECONNREFUSED) on a loaded machine.
"""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trio
from peerlib import short_tempdir, wait_until_async

from xsmig_daemon.mockd.restore import RestoreError, receive
from xsmig_daemon.mockd.server import _listen
from xsmig_daemon.service.control import bind_control_socket
from xsmig_daemon.sockpath import listen_at


@pytest.fixture
def where(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A socket path whose existence is checked at every ``listen()`` call."""
    directory = short_tempdir()
    path = directory / "sock"
    real_listen = socket.socket.listen
    seen: list[bool] = []

    def checking_listen(sock: socket.socket, *args: int) -> None:
        seen.append(path.exists())
        real_listen(sock, *args)

    monkeypatch.setattr(socket.socket, "listen", checking_listen)
    yield path
    assert seen == [False], "the path existed before listen()"
    assert os.listdir(directory) == [], "a staging file or the socket was left behind"
    directory.rmdir()


@pytest.mark.parametrize(
    "open_listener",
    [_listen, bind_control_socket, lambda path: listen_at(path, 1)],
    ids=["mock", "control", "listen_at"],
)
def test_a_listener_appears_only_once_listening(
    where: Path, open_listener: Callable[[str], socket.socket]
) -> None:
    sock = open_listener(str(where))
    try:
        assert stat.S_IMODE(os.lstat(where).st_mode) == 0o600
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.connect(str(where))
    finally:
        sock.close()
        where.unlink()


async def test_the_restore_socket_appears_only_once_listening(where: Path) -> None:
    async with trio.open_nursery() as nursery:

        async def produce() -> None:
            await wait_until_async(where.exists, 30, "the restore socket")
            with trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as producer:
                await producer.connect(str(where))
                await producer.send(b"x" * 100)

        nursery.start_soon(produce)
        with pytest.raises(RestoreError, match="header"):
            await receive(str(where), timeout=30)


async def test_the_restore_socket_refuses_a_live_daemons_path(where: Path) -> None:
    live = listen_at(str(where), 1)
    try:
        with pytest.raises(RestoreError, match="another daemon is listening there"):
            await receive(str(where), timeout=30)
        assert where.exists()
    finally:
        live.close()
        where.unlink()
