"""``CONTROL migrate`` refusals, in-process mock (docs/introspect.md, "Migrating one domain")."""

from __future__ import annotations

from pathlib import Path

import pytest

from xsmig_daemon.client import XenstoreError, connect
from xsmig_daemon.image.records import Permission
from xsmig_daemon.mockd import MockDaemon


async def error(path: str, *args: str) -> str:
    async with connect(path, timeout=5) as xs:
        with pytest.raises(XenstoreError) as caught:
            await xs.control(*args)
        return caught.value.name


async def test_refusals(mock_daemon: MockDaemon) -> None:
    path = mock_daemon.socket_path
    assert await error(path, "migrate", "export", "7", "1000") == "ENOENT"
    assert await error(path, "migrate", "precopy", "7", "1000") == "ENOENT"
    assert await error(path, "migrate", "release", "7") == "EINVAL"
    assert await error(path, "migrate", "abort") == "EINVAL"
    assert await error(path, "migrate", "import", "data", "x") == "EINVAL"
    assert await error(path, "migrate", "export", "7", "1000", "bogus") == "EINVAL"
    assert await error(path, "migrate", "export", "x", "1000") == "EINVAL"
    async with connect(path, timeout=5) as guest_admin:
        await guest_admin.introduce(3, 1, 5)
    async with connect(str(Path(mock_daemon.rundir) / "domain" / "3"), timeout=5) as guest:
        with pytest.raises(XenstoreError, match="EACCES"):
            await guest.control("migrate", "abort")


async def test_one_import_at_a_time(mock_daemon: MockDaemon) -> None:
    path = mock_daemon.socket_path
    async with connect(path, timeout=5) as first:
        await first.control("migrate", "import", "begin", "5")
        assert await error(path, "migrate", "import", "begin") == "EBUSY"
        reply = await first.control("migrate", "import", "commit", "staged")
        assert reply == b"refused: no staged pre-copy\0"
        await first.control("migrate", "import", "begin", "5")
    # The importer went away: its import went with it.
    async with connect(path, timeout=5) as second:
        await second.control("migrate", "import", "begin")
        reply = await second.control("migrate", "import", "commit")
        assert reply.startswith(b"refused: bad image: ")


async def test_a_refused_export_leaves_the_guest_unsealed(mock_daemon: MockDaemon) -> None:
    """A bad deadline is refused before the guest's endpoint is sealed: it is still served."""
    path = mock_daemon.socket_path
    async with connect(path, timeout=5) as admin:
        await admin.introduce(3, 1, 5)
        await admin.write("/local/domain/3/data", b"")
        await admin.set_perms("/local/domain/3/data", (Permission("b", 3),))
        async with connect(str(Path(mock_daemon.rundir) / "domain" / "3"), timeout=5) as guest:
            await guest.write("data", b"before")  # attached and served
            for deadline in ("0", "99999999"):
                with pytest.raises(XenstoreError, match="EINVAL"):
                    await admin.control("migrate", "export", "3", deadline)
            await guest.write("data", b"after")
            assert await guest.read("data") == b"after"


async def test_a_bad_transaction_fate_is_refused(mock_daemon: MockDaemon) -> None:
    async with connect(mock_daemon.socket_path, timeout=5) as importer:
        for word in ("3:EBUSY", "x:EAGAIN"):
            await importer.control("migrate", "import", "begin", "5")
            reply = await importer.control("migrate", "import", "commit", word)
            assert reply == f"refused: transaction fate {word!r}\0".encode()
