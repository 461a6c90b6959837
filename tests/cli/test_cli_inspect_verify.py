"""``xsmig inspect`` and ``xsmig verify`` end to end on the real 4.17 images.

Expected values come from how the images were made (shared/peer/images/DESCRIPTION.txt and
tests/data/README.md) and from the spec, never from an earlier run of the command.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import REAL_IDS, REAL_IMAGES, image_path, write_image, xsmig

from xsmig_daemon.image.records import (
    ConnectionData,
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
)

LU_REPLY = 16 + len(b"OK\0")  # XS_CONTROL header + "OK\0" (spec 5.3)


def inspect_json(path: Path) -> dict[str, Any]:
    run = xsmig("inspect", "--json", path)
    assert run.code == 0, run
    document: dict[str, Any] = json.loads(run.stdout)
    assert document["schema"] == "xsmig.inspect/1"
    return document


@pytest.mark.parametrize("path", REAL_IMAGES, ids=REAL_IDS)
def test_real_image_inspects_and_verifies_for_xen_4_17(path: Path) -> None:
    text = xsmig("inspect", path)
    assert text.code == 0, text
    assert text.stderr == ""
    assert "header: version 1, little endian" in text.stdout
    document = inspect_json(path)
    assert document["header"] == {"version": 1, "byte_order": "little"}
    assert document["size_bytes"] == path.stat().st_size
    by_type = document["records"]["by_type"]
    assert by_type["END"] == {"count": 1, "bytes": 8}
    assert by_type["GLOBAL_DATA"] == {"count": 1, "bytes": 16}
    assert sum(entry["bytes"] for entry in by_type.values()) + 16 == path.stat().st_size
    # C 4.17 writes no quota, domain, transaction or extended-watch records (spec 9.1).
    assert set(by_type) <= {"END", "GLOBAL_DATA", "CONNECTION_DATA", "WATCH_DATA", "NODE_DATA"}
    assert document["connections"][0]["conn_type"] == "ring"
    assert document["connections"][0]["domid"] == 0
    assert document["tree"]["special_nodes"] == 2  # @releaseDomain, @introduceDomain
    verify = xsmig("verify", "--target", "xen-4.17", path)
    assert verify.code == 0, verify
    assert verify.stderr == ""


def test_inspect_basic_matches_its_description() -> None:
    path = image_path("basic.img")
    document = inspect_json(path)
    conns = document["connections"]
    assert [c["conn_type"] for c in conns] == ["ring", "socket"]
    assert conns[0]["tdomid"] is None  # DOMID_INVALID
    assert conns[1]["pending_out_bytes"] == LU_REPLY
    assert conns[1]["pending_in_bytes"] == 0
    tree = document["tree"]
    assert tree["largest_value_bytes"] == 256  # /bin/value
    # / /tool /tool/xenstored /local /local/domain /local/domain/0{,/name,/domid} /vm
    # /vm/uuid-1{,/name,/memory} /emptydir /bin{,/value} /perm{,/node} /unicode
    assert tree["nodes"] == 18
    assert tree["max_depth"] == 4  # /local/domain/0/name
    assert document["domains"] == []
    assert document["quotas"] is None


def test_inspect_domains_shows_rings_and_target() -> None:
    conns = inspect_json(image_path("domains.img"))["connections"]
    rings = {c["domid"]: c for c in conns if c["conn_type"] == "ring"}
    assert sorted(rings) == [0, 1, 2]
    assert rings[2]["tdomid"] == 1  # SET_TARGET 2 -> 1
    assert rings[1]["tdomid"] is None


def test_inspect_watches_counts_watches_per_connection() -> None:
    conns = inspect_json(image_path("watches.img"))["connections"]
    assert sorted(c["watches"] for c in conns if c["conn_type"] == "socket") == [0, 1, 4]


def test_inspect_many_watches_and_pending_input() -> None:
    conns = inspect_json(image_path("many_watches.img"))["connections"]
    # make_many_watches registers 20 abs + 20 rel + 5 + 5 special + 2 + 3 + 3 + 1 = 59 watches
    # on the first client (its docstring and tests/data/README.md say 60) and 3 on the second.
    assert sorted(c["watches"] for c in conns if c["watches"]) == [3, 59]
    conns = inspect_json(image_path("pending_input.img"))["connections"]
    pending = sorted(c["pending_in_bytes"] for c in conns if c["pending_in_bytes"])
    # client C: first 7 bytes of a READ header; client B: a whole TRANSACTION_START ("\0"
    # payload, 17 bytes) + 21 bytes of a WRITE.
    assert pending == [7, 17 + 21]


def test_inspect_records_one_line_per_record_text_and_json() -> None:
    path = image_path("watches.img")
    text = xsmig("inspect", "--records", path)
    assert text.code == 0, text
    lines = text.stdout.splitlines()
    assert len(lines) == 31
    assert lines[0].split()[:3] == ["0", "0x10", "GLOBAL_DATA"]
    assert "path='/vm' token='/vm'" in text.stdout
    jsonl = xsmig("inspect", "--records", "--json", path)
    rows = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert [r["index"] for r in rows] == list(range(31))
    assert rows[0]["offset"] == 16
    assert rows[-1]["type"] == "END"
    watches = [(r["path"], r["token"]) for r in rows if r["type"] == "WATCH_DATA"]
    assert ("/vm", "/vm") in watches
    assert ("name", "relative-tok") in watches
    assert all(r["schema"] == "xsmig.record/1" for r in rows)


def test_inspect_reads_standard_input() -> None:
    path = image_path("basic.img")
    run = xsmig("inspect", "--json", "-", stdin=path.read_bytes())
    assert run.code == 0, run
    document = json.loads(run.stdout)
    assert document["image"] == "<stdin>"
    assert document["size_bytes"] == path.stat().st_size


def transaction_image(path: Path, *, with_tx_node: bool) -> Path:
    records: list[Record] = [
        GlobalData(4, 7),
        ConnectionData(1, RingSpec(0, evtchn=2)),
        ConnectionData(2, SocketSpec(9)),
        TransactionData(2, 7),
        NodeData("/", b"", (Permission("n", 0),)),
        NodeData("/a", b"1", (Permission("n", 0),)),
    ]
    if with_tx_node:
        records.append(
            NodeData("/a", b"2", (Permission("n", 0),), 2, 7, NodeAccess.READ | NodeAccess.WRITTEN)
        )
    return write_image(path, [*records, End()], Header(1, False))


def test_verify_warns_about_open_transactions_for_xen_4_17(tmp_path: Path) -> None:
    path = transaction_image(tmp_path / "tx.img", with_tx_node=False)
    spec = xsmig("verify", path)
    assert spec.code == 0 and spec.stderr == "", spec
    run = xsmig("verify", "--target", "xen-4.17", path)
    assert run.code == 0, run
    assert run.stderr_lines == [
        f"xsmig verify: {path}: warning: 1 open transaction will be dropped by xen-4.17"
    ]


def test_verify_rejects_transaction_nodes_for_xen_4_17(tmp_path: Path) -> None:
    path = transaction_image(tmp_path / "txn.img", with_tx_node=True)
    assert xsmig("verify", path).code == 0
    run = xsmig("verify", "--target", "xen-4.17", path)
    assert run.code == 1
    assert len(run.stderr_lines) == 1
    line = run.stderr_lines[0]
    assert line.startswith(f"xsmig verify: {path}: record 6 (NODE_DATA)")
    assert "transaction node '/a'" in line


def test_verify_json_reports_error_fields(tmp_path: Path) -> None:
    big = tmp_path / "big.img"
    assert xsmig("convert", image_path("basic.img"), big, "--endian", "big").code == 0
    run = xsmig("verify", "--json", "--target", "xen-4.17", big)
    assert run.code == 1
    document = json.loads(run.stdout)
    assert document["schema"] == "xsmig.verify/1"
    assert document["valid"] is False
    assert document["header"] == {"version": 1, "byte_order": "big"}
    assert document["error"]["offset"] == 12  # the flags field of the header
    assert len(run.stderr_lines) == 1
    ok = xsmig("verify", "--json", big)
    assert ok.code == 0
    assert json.loads(ok.stdout)["valid"] is True
    assert json.loads(ok.stdout)["records"] == 24
