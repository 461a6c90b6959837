"""``xsmig snapshot --domain N``: the manifest says what the stream holds and what it leaves
to the toolstack; an unknown domain fails naming it and writes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from miglib import build_domain, xsmig
from peerlib import MockDaemon, start_mockd
from wireclient import ok, write

from xsmig_daemon.wire.framing import encode_message
from xsmig_daemon.wire.ops import Op


@pytest.fixture
def mock() -> Iterator[MockDaemon]:
    daemon = start_mockd()
    try:
        yield daemon
    finally:
        daemon.stop()


def test_manifest_lists_what_the_stream_holds(mock: MockDaemon, tmp_path: Path) -> None:
    with mock.connect() as admin:
        build_domain(admin)
    with mock.guest(7) as guest:
        ok(guest, Op.WATCH, "data", "rel")
        ok(guest, Op.WATCH, "/local/domain/7/data", "deep", "1")
        tx = int(ok(guest, Op.TRANSACTION_START, "").rstrip(b"\0"))
        ok(guest, Op.READ, "data/key", tx_id=tx)
        write(guest, "data/new", b"n", tx_id=tx)
        # Half a request, sent with a whole one: once that is answered the daemon has read both.
        whole = encode_message(Op.READ, 76, 0, b"name\0")
        guest.send_raw(whole + encode_message(Op.READ, 77, 0, b"name\0")[:5])
        assert guest.receive().req_id == 76
        out = tmp_path / "dom7.img"
        run = xsmig(
            "snapshot", "--socket", str(mock.socket_path), "--domain", "7",
            "--output", str(out), "--json",
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
    held = json.loads(run.stdout)["migration"]
    assert held["domid"] == 7
    assert held["home"] == "/local/domain/7"
    assert held["home_nodes"] == 7  # home, name, big, data, data/key, data/sub, data/sub/leaf
    assert held["owned_elsewhere"] == ["/vm/7"]
    assert held["left_to_toolstack"] == ["/local/domain/0/backend/vif/7"]
    assert held["connection"]["pending_input_bytes"] == 5
    assert held["connection"]["unique_id"] is not None
    assert held["watches"] == [
        {"path": "data", "token": "rel", "depth": None},
        {"path": "/local/domain/7/data", "token": "deep", "depth": 1},
    ]
    [transaction] = held["transactions"]
    assert transaction["tx_id"] == tx
    assert {"path": "/local/domain/7/data/new", "access": "written"} in transaction["nodes"]
    assert {"path": "/local/domain/7/data/key", "access": "read"} in transaction["nodes"]
    assert held["domain_data"]["features"] != 0


@pytest.mark.parametrize("source", ["introspect", "wire"])
def test_unknown_domain_fails_naming_it(mock: MockDaemon, tmp_path: Path, source: str) -> None:
    with mock.connect() as admin:
        build_domain(admin)
    out = tmp_path / "dom9.img"
    run = xsmig(
        "snapshot", "--socket", str(mock.socket_path), "--source", source,
        "--domain", "9", "--output", str(out),
    )  # fmt: skip
    assert run.returncode == 1
    assert "domain 9 is unknown at" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_wire_source_lists_the_toolstack_part(mock: MockDaemon, tmp_path: Path) -> None:
    with mock.connect() as admin:
        build_domain(admin)
    run = xsmig(
        "snapshot", "--socket", str(mock.socket_path), "--source", "wire",
        "--domain", "7", "--output", str(tmp_path / "w.img"), "--json",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    held = json.loads(run.stdout)["migration"]
    assert held["left_to_toolstack"] == ["/local/domain/0/backend/vif/7"]
    assert held["owned_elsewhere"] == ["/vm/7"]
    assert held["watches"] == [] and held["transactions"] == []
