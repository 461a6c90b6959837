"""``xsmig diff`` end to end: same state, one change at a time, order independence."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from cli_helpers import REAL_IDS, REAL_IMAGES, image_path, read_records, write_image, xsmig

from xsmig_daemon.image.records import (
    ConnectionData,
    NodeData,
    Permission,
    Record,
    SocketSpec,
    WatchData,
)


@pytest.mark.parametrize("path", REAL_IMAGES, ids=REAL_IDS)
def test_image_equals_itself(path: Path) -> None:
    run = xsmig("diff", path, path)
    assert run.code == 0, run
    assert run.stdout == ""
    assert run.stderr == ""


def rewrite(source: Path, target: Path, records: list[Record]) -> Path:
    header, _ = read_records(source)
    return write_image(target, records, header)


def with_node(records: list[Record], path: str, **changes: object) -> list[Record]:
    out: list[Record] = []
    hits = 0
    for record in records:
        if isinstance(record, NodeData) and record.path == path and record.conn_id == 0:
            out.append(dataclasses.replace(record, **changes))  # type: ignore[arg-type]
            hits += 1
        else:
            out.append(record)
    assert hits == 1
    return out


def test_changed_value_is_named(tmp_path: Path) -> None:
    basic = image_path("basic.img")
    _, records = read_records(basic)
    changed = rewrite(
        basic, tmp_path / "b.img", with_node(records, "/vm/uuid-1/name", value=b"guest2")
    )
    run = xsmig("diff", basic, changed)
    assert run.code == 1
    assert run.stdout.splitlines() == [
        "node /vm/uuid-1/name: value: A 'guest1' (6 bytes), B 'guest2' (6 bytes)"
    ]


def test_changed_long_binary_value_is_named(tmp_path: Path) -> None:
    basic = image_path("basic.img")
    _, records = read_records(basic)
    value = bytes(range(256))  # DESCRIPTION.txt: 256-byte binary value /bin/value
    flipped = value[:200] + b"\xff" + value[201:]
    changed = rewrite(basic, tmp_path / "b.img", with_node(records, "/bin/value", value=flipped))
    lines = xsmig("diff", basic, changed).stdout.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("node /bin/value: value: A <256 bytes, blake2b ")


def test_changed_permission_and_stale_flag_are_named(tmp_path: Path) -> None:
    basic = image_path("basic.img")
    _, records = read_records(basic)
    # DESCRIPTION.txt: perms b0,r1,w2 on /perm/node; make r1 stale.
    stale = (Permission("b", 0), Permission("r", 1, stale=True), Permission("w", 2))
    changed = rewrite(basic, tmp_path / "b.img", with_node(records, "/perm/node", perms=stale))
    run = xsmig("diff", basic, changed)
    assert run.code == 1
    assert run.stdout.splitlines() == ["node /perm/node: perms: A b0,r1,w2, B b0,r1!,w2"]


def test_changed_watch_is_named(tmp_path: Path) -> None:
    path = image_path("watches.img")
    _, records = read_records(path)
    # DESCRIPTION.txt: `xenstore-watch /vm` registered /vm with token /vm.
    fd = None
    out: list[Record] = []
    conns = {r.conn_id: r for r in records if isinstance(r, ConnectionData)}
    for record in records:
        if isinstance(record, WatchData) and record.token == "/vm":
            spec = conns[record.conn_id].spec
            assert isinstance(spec, SocketSpec)
            fd = spec.fd
            out.append(dataclasses.replace(record, token="/vm2"))
        else:
            out.append(record)
    changed = rewrite(path, tmp_path / "w.img", out)
    run = xsmig("diff", path, changed)
    assert run.code == 1
    assert run.stdout.splitlines() == [
        f"connection socket fd {fd}: watch '/vm' token '/vm': only in A",
        f"connection socket fd {fd}: watch '/vm' token '/vm2': only in B",
    ]


def test_conn_ids_and_record_order_do_not_matter(tmp_path: Path) -> None:
    """Renumber the connections and emit them (with their watches) in reverse order."""
    path = image_path("watches.img")
    _, records = read_records(path)
    conns = [r for r in records if isinstance(r, ConnectionData)]
    renumber = {c.conn_id: 100 - c.conn_id for c in conns}
    groups: list[list[Record]] = []
    head: list[Record] = []
    rest: list[Record] = []
    for record in records:
        if isinstance(record, ConnectionData):
            groups.append([dataclasses.replace(record, conn_id=renumber[record.conn_id])])
        elif isinstance(record, WatchData):
            groups[-1].append(dataclasses.replace(record, conn_id=renumber[record.conn_id]))
        elif groups:
            rest.append(record)
        else:
            head.append(record)
    reordered = head + [r for group in reversed(groups) for r in group] + rest
    # Watches of one connection in reverse order too.
    changed = rewrite(path, tmp_path / "r.img", reordered)
    assert changed.read_bytes() != path.read_bytes()
    run = xsmig("diff", path, changed)
    assert run.code == 0, run.stdout


def test_sibling_order_is_reported(tmp_path: Path) -> None:
    basic = image_path("basic.img")
    _, records = read_records(basic)
    # /local/domain/0 has children name, domid in that order; swap them.
    names = [i for i, r in enumerate(records) if isinstance(r, NodeData)
             and r.path in ("/local/domain/0/name", "/local/domain/0/domid")]  # fmt: skip
    assert len(names) == 2
    i, j = names
    records[i], records[j] = records[j], records[i]
    changed = rewrite(basic, tmp_path / "o.img", records)
    run = xsmig("diff", basic, changed)
    assert run.code == 1
    # B lists domid first; name is the first child B puts after one that A puts later.
    assert run.stdout.splitlines() == [
        "node /local/domain/0: order of children differs (at /local/domain/0/name)"
    ]


def test_missing_node_and_connection_and_json(tmp_path: Path) -> None:
    basic = image_path("basic.img")
    _, records = read_records(basic)
    fewer = [r for r in records if not (isinstance(r, NodeData) and r.path == "/unicode")]
    changed = rewrite(basic, tmp_path / "f.img", fewer)
    run = xsmig("diff", "--json", basic, changed)
    assert run.code == 1
    document = json.loads(run.stdout)
    assert document["schema"] == "xsmig.diff/1"
    assert document["identical"] is False
    assert document["differences"] == [
        {"area": "node", "subject": "/unicode", "detail": "only in A"}
    ]
    same = json.loads(xsmig("diff", "--json", basic, basic).stdout)
    assert same["identical"] is True and same["differences"] == []


def test_different_images_list_connections(tmp_path: Path) -> None:
    run = xsmig("diff", image_path("basic.img"), image_path("domains.img"))
    assert run.code == 1
    lines = run.stdout.splitlines()
    # domains.img adds rings for domains 1 and 2 (DESCRIPTION.txt).
    assert "connection ring dom1: only in B" in lines
    assert "connection ring dom2: only in B" in lines
    assert "node /bin/value: only in A" in lines


def test_diff_errors(tmp_path: Path) -> None:
    basic = image_path("basic.img")
    empty = tmp_path / "empty.img"
    empty.write_bytes(b"")
    run = xsmig("diff", basic, empty)
    assert run.code == 1
    assert run.stdout == ""
    assert len(run.stderr_lines) == 1
    assert run.stderr_lines[0].startswith(f"xsmig diff: {empty}: ")
    assert xsmig("diff", basic).code == 2
    assert xsmig("diff", "-", "-").code == 2
    piped = xsmig("diff", "-", basic, stdin=basic.read_bytes())
    assert piped.code == 0, piped
