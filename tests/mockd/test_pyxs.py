"""pyxs's blocking Client against the in-process mock, driven from a worker thread."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import trio
from pyxs import Client

from xsmig_daemon.mockd import MockDaemon

TIMEOUT = 10.0


async def in_thread(function: Callable[[], Any]) -> Any:
    # pyxs blocks without timeouts of its own; fail the test instead of hanging.
    with trio.fail_after(TIMEOUT):
        return await trio.to_thread.run_sync(function, abandon_on_cancel=True)


async def test_basic_operations(mock_daemon: MockDaemon) -> None:
    def session() -> dict[str, Any]:
        with Client(unix_socket_path=mock_daemon.socket_path) as client:
            client.write(b"/vm/name", b"guest")
            client.mkdir(b"/vm/dir")
            client.set_perms(b"/vm/name", [b"n0", b"r3"])
            out = {
                "read": client.read(b"/vm/name"),
                "list": sorted(client.list(b"/vm")),
                "exists": (client.exists(b"/vm/dir"), client.exists(b"/nope")),
                "perms": client.get_perms(b"/vm/name"),
                "path": client.get_domain_path(5),
            }
            client.delete(b"/vm")
            out["gone"] = client.exists(b"/vm")
            return out

    result = await in_thread(session)
    assert result == {
        "read": b"guest",
        "list": [b"dir", b"name"],
        "exists": (True, False),
        "perms": [b"n0", b"r3"],
        "path": b"/local/domain/5",
        "gone": False,
    }


async def test_transaction_commit_and_conflict(mock_daemon: MockDaemon) -> None:
    def session() -> tuple[bool, bool, bytes]:
        with (
            Client(unix_socket_path=mock_daemon.socket_path) as first,
            Client(unix_socket_path=mock_daemon.socket_path) as second,
        ):
            first.write(b"/tx/x", b"0")
            first.transaction()
            first.write(b"/tx/x", b"1")
            committed = first.commit()
            first.transaction()
            first.read(b"/tx/x")
            second.write(b"/tx/x", b"other")
            first.write(b"/tx/y", b"late")
            conflicted = first.commit()
            return committed, conflicted, second.read(b"/tx/x")

    assert await in_thread(session) == (True, False, b"other")


async def test_watch_monitor(mock_daemon: MockDaemon) -> None:
    def session() -> list[tuple[bytes, bytes]]:
        with Client(unix_socket_path=mock_daemon.socket_path) as client:
            monitor = client.monitor()
            monitor.watch(b"/mon", b"tok")
            seen = [monitor.events.get(timeout=TIMEOUT)]
            with Client(unix_socket_path=mock_daemon.socket_path) as writer:
                writer.write(b"/mon/child", b"1")
            seen.append(monitor.events.get(timeout=TIMEOUT))
            monitor.close()
            return [(bytes(path), bytes(token)) for path, token in seen]

    assert await in_thread(session) == [(b"/mon", b"tok"), (b"/mon/child", b"tok")]
