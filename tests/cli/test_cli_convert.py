"""``xsmig convert`` end to end: round trips, loader targets, --lossy, atomic output."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cli_helpers import REAL_IDS, REAL_IMAGES, image_path, write_image, xsmig

from xsmig_daemon.image.records import (
    ConnectionData,
    DomainData,
    End,
    GlobalData,
    Header,
    NodeAccess,
    NodeData,
    Permission,
    Record,
    RingSpec,
    SocketSpec,
    TransactionData,
    WatchDataExtended,
)

#: Images whose input on some connection ends with part of a header (tests/data/README):
#: pending_input.img 7 bytes of client C, ring_pending.img 10 bytes of dom1 on its ring.
PARTIAL_INPUT_HEADER_BYTES = {"pending_input.img": 7, "ring_pending.img": 10}


def partial_input_header(path: Path) -> bool:
    return path.name in PARTIAL_INPUT_HEADER_BYTES


@pytest.mark.parametrize("path", REAL_IMAGES, ids=REAL_IDS)
def test_byte_order_round_trip_is_byte_identical(path: Path, tmp_path: Path) -> None:
    big, back = tmp_path / "big.img", tmp_path / "little.img"
    if partial_input_header(path):
        refused = xsmig("convert", path, big, "--endian", "big")
        assert refused.code == 1
        count = PARTIAL_INPUT_HEADER_BYTES[path.name]
        assert f"1 ambiguous partial wire header ({count} input bytes" in refused.stderr
        assert not big.exists()
        return
    assert xsmig("convert", path, big, "--endian", "big").code == 0
    data, converted = path.read_bytes(), big.read_bytes()
    assert len(converted) == len(data)
    assert converted[:12] == data[:12]
    assert converted[12:16] == b"\0\0\0\1"  # flags: big endian (spec section 2)
    assert converted[16:20] == data[16:20][::-1]  # first record's type, byte-swapped
    assert xsmig("verify", big).code == 0
    assert xsmig("diff", path, big).code == 0
    assert xsmig("convert", big, back, "--endian", "little").code == 0
    assert back.read_bytes() == data


@pytest.mark.parametrize("path", REAL_IMAGES, ids=REAL_IDS)
def test_version_round_trip_is_byte_identical(path: Path, tmp_path: Path) -> None:
    v2, v1 = tmp_path / "v2.img", tmp_path / "v1.img"
    assert xsmig("convert", path, v2, "--version", "2").code == 0
    data = path.read_bytes()
    # A version 1 image without v2-only content differs in the version byte only (spec 8).
    assert v2.read_bytes() == data[:11] + b"\x02" + data[12:]
    assert xsmig("verify", "--target", "xen-4.21", v2).code == 0
    assert xsmig("convert", v2, v1, "--version", "1").code == 0
    assert v1.read_bytes() == data


def test_pending_wire_headers_are_swapped(tmp_path: Path) -> None:
    """basic.img's requester socket holds the 19-byte live-update reply (spec 5.3)."""
    big = tmp_path / "big.img"
    assert xsmig("convert", image_path("basic.img"), big, "--endian", "big").code == 0
    data = big.read_bytes()
    reply_le = bytes.fromhex("00000000 00000000 00000000 03000000") + b"OK\0"
    reply_be = bytes.fromhex("00000000 00000000 00000000 00000003") + b"OK\0"
    assert reply_le not in data
    assert data.count(reply_be) == 1


def transaction_image(path: Path) -> Path:
    records: list[Record] = [
        GlobalData(4, 7),
        ConnectionData(1, RingSpec(0, evtchn=2)),
        ConnectionData(2, SocketSpec(9)),
        TransactionData(2, 7),
        NodeData("/", b"", (Permission("n", 0),)),
        NodeData("/a", b"1", (Permission("n", 0),)),
        NodeData("/a", b"2", (Permission("n", 0),), 2, 7, NodeAccess.WRITTEN),
        NodeData("/a/gone", b"", (), 2, 7, NodeAccess.DELETED),
        End(),
    ]
    return write_image(path, records, Header(1, False))


def test_xen_4_17_target_refuses_transactions_without_lossy(tmp_path: Path) -> None:
    source = transaction_image(tmp_path / "tx.img")
    out = tmp_path / "out.img"
    run = xsmig("convert", source, out, "--target", "xen-4.17")
    assert run.code == 1
    assert len(run.stderr_lines) == 1, run.stderr
    line = run.stderr_lines[0]
    assert line.startswith(f"xsmig convert: {source}: ")
    assert "1 open transaction (tx 7 on conn 2 (socket fd 9))" in line
    assert "2 transaction nodes (/a in tx 7" in line
    assert "--lossy" in line
    assert not out.exists()
    assert sorted(os.listdir(tmp_path)) == ["tx.img"]  # no temporary file left behind


def test_xen_4_17_target_with_lossy_drops_and_lists(tmp_path: Path) -> None:
    source = transaction_image(tmp_path / "tx.img")
    out = tmp_path / "out.img"
    run = xsmig("convert", source, out, "--target", "xen-4.17", "--lossy")
    assert run.code == 0, run
    assert run.stderr_lines == [
        "xsmig convert: dropped 1 open transaction (tx 7 on conn 2 (socket fd 9))",
        "xsmig convert: dropped 2 transaction nodes (/a in tx 7 on conn 2 (socket fd 9), "
        "/a/gone in tx 7 on conn 2 (socket fd 9))",
    ]
    assert xsmig("verify", "--target", "xen-4.17", out).code == 0
    diff = xsmig("diff", source, out)
    assert diff.code == 1
    assert diff.stdout.splitlines() == [
        "connection socket fd 9: transaction 7: only in A",
    ]


def v2_image(path: Path) -> Path:
    records: list[Record] = [
        GlobalData(4, 7),
        ConnectionData(1, RingSpec(0, evtchn=2), unique_id=0x1234),
        WatchDataExtended(1, "/local", "deep", 0xFFFF),
        WatchDataExtended(1, "/vm", "shallow", 1),
        NodeData("/", b"", (Permission("n", 0),)),
        DomainData(0, features=14),
        End(),
    ]
    return write_image(path, records, Header(2, False))


def test_xen_4_21_target_keeps_domains_and_unique_id(tmp_path: Path) -> None:
    source = v2_image(tmp_path / "v2.img")
    out = tmp_path / "out.img"
    run = xsmig("convert", source, out, "--target", "xen-4.21")
    assert run.code == 1
    assert "1 watch depth limit (/vm token shallow depth 1 on conn 1 (ring dom0))" in run.stderr
    assert "unique-id" not in run.stderr
    assert "DOMAIN_DATA" not in run.stderr
    run = xsmig("convert", source, out, "--target", "xen-4.21", "--lossy")
    assert run.code == 0, run
    records = xsmig("inspect", "--records", out).stdout
    assert "unique-id=0x1234" in records
    assert "WATCH_DATA_EXTENDED" not in records
    assert records.count("WATCH_DATA ") == 2
    assert "DOMAIN_DATA" in records


def test_xen_4_17_target_lists_everything_it_cannot_hold(tmp_path: Path) -> None:
    source = v2_image(tmp_path / "v2.img")
    out = tmp_path / "out.img"
    run = xsmig("convert", source, out, "--target", "xen-4.17", "--lossy")
    assert run.code == 0, run
    assert run.stderr_lines == [
        "xsmig convert: dropped 1 connection unique-id (conn 1 (ring dom0) 0x1234)",
        "xsmig convert: dropped 1 watch depth limit (/vm token shallow depth 1 on conn 1 "
        "(ring dom0))",
        "xsmig convert: dropped 1 DOMAIN_DATA record (dom0)",
    ]
    assert out.read_bytes()[8:12] == b"\0\0\0\1"  # version 1 chosen for xen-4.17
    assert xsmig("verify", "--target", "xen-4.17", out).code == 0


def test_usage_conflicts_are_exit_2(tmp_path: Path) -> None:
    basic = image_path("basic.img")
    out = tmp_path / "out.img"
    for extra in (["--version", "2"], ["--endian", "big"]):
        run = xsmig("convert", basic, out, "--target", "xen-4.17", *extra)
        assert run.code == 2, run
        assert len(run.stderr_lines) == 1
    assert xsmig("convert", basic, out, "--version", "3").code == 2
    assert xsmig("convert", basic).code == 2
    assert not out.exists()


def test_existing_output_needs_force(tmp_path: Path) -> None:
    basic = image_path("basic.img")
    out = tmp_path / "out.img"
    out.write_bytes(b"precious")
    run = xsmig("convert", basic, out)
    assert run.code == 1
    assert run.stderr_lines == [f"xsmig convert: {out}: exists (use --force to replace it)"]
    assert out.read_bytes() == b"precious"
    assert xsmig("convert", basic, out, "--force").code == 0
    assert out.read_bytes() == basic.read_bytes()
    assert sorted(os.listdir(tmp_path)) == ["out.img"]


def test_failed_conversion_leaves_no_output(tmp_path: Path) -> None:
    truncated = tmp_path / "cut.img"
    truncated.write_bytes(image_path("basic.img").read_bytes()[:700])
    out = tmp_path / "out.img"
    run = xsmig("convert", truncated, out)
    assert run.code == 1
    assert len(run.stderr_lines) == 1
    assert "stream ends before the END record" in run.stderr
    assert sorted(os.listdir(tmp_path)) == ["cut.img"]


def test_convert_pipes_stdin_to_stdout() -> None:
    basic = image_path("basic.img").read_bytes()
    run = xsmig("convert", "-", "-", "--version", "2", stdin=basic)
    assert run.code == 0
    assert run.stderr == ""
    assert run.stdout.encode("utf-8", "surrogateescape")[:16] == basic[:11] + b"\x02" + basic[12:16]


def test_rule_violation_names_the_input_record(tmp_path: Path) -> None:
    records: list[Record] = [
        NodeData("/", b"", (Permission("n", 0),)),
        NodeData("/a/b", b"", (Permission("n", 0),)),  # before its parent (spec section 6)
        NodeData("/a", b"", (Permission("n", 0),)),
        End(),
    ]
    source = write_image(tmp_path / "orphan.img", records, Header(1, False))
    run = xsmig("convert", source, tmp_path / "out.img", "--endian", "big")
    assert run.code == 1
    assert run.stderr_lines == [
        f"xsmig convert: {source}: record 1 (NODE_DATA) at byte 48 (0x30): "
        "node '/a/b' before its parent '/a'"
    ]
    assert sorted(os.listdir(tmp_path)) == ["orphan.img"]
