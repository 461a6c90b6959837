"""verify / convert / inspect / diff on the dumps a real Xen 4.22.0 wrote (tests/data/xen-4.22)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import read_records, xsmig
from xen422_data import DIR, facts, walk_422

from xsmig_daemon.image.records import DomainData, UnwrittenDepthWatch, WatchData


def test_verify_names_each_broken_watch_record_by_index_and_offset() -> None:
    path = DIR / "watches.img"
    run = xsmig("verify", "--target", "xen-4.22", path)
    assert run.code == 1 and "Traceback" not in run.stderr
    frames = [f for f in walk_422(path.read_bytes()) if f.type == 8]
    lines = run.stderr_lines
    assert len(lines) == len(frames) == 8
    for index, (line, frame) in enumerate(zip(lines, frames, strict=True)):
        assert line.startswith(f"xsmig verify: {path}: record {7 + index} (WATCH_DATA_EXTENDED) ")
        assert f"at byte {frame.offset} (0x{frame.offset:x})" in line
        assert "depth was never written" in line
        assert (f"len says {frame.declared} bytes but {frame.written}" in line) == (
            frame.declared != frame.written
        )
    assert lines[-1].endswith("(8 in all; xsmig convert --target xen-4.22 repairs them)")


def test_verify_json_lists_the_defects() -> None:
    run = xsmig("verify", "--json", "--target", "xen-4.22", DIR / "domains.img")
    document = json.loads(run.stdout)
    assert run.code == 1 and not document["valid"]
    assert [(d["record_index"], d["offset"]) for d in document["defects"]] == [(7, 376), (8, 408)]


def test_verify_names_the_domain_4_22_would_refuse() -> None:
    run = xsmig("verify", "--target", "xen-4.22", DIR / "unintroduced-v1.img")
    assert run.code == 1
    (line,) = [x for x in run.stderr_lines if "warning" not in x]
    assert "record 13 (DOMAIN_DATA) at byte 672" in line and "domain 3" in line


@pytest.mark.parametrize(
    "name", ["watches", "watches-v1", "domains", "domains-v1", "unintroduced", "depth-ok"]
)
def test_convert_repairs_4_22_dumps_for_4_22(name: str, tmp_path: Path) -> None:
    out = tmp_path / "out.img"
    run = xsmig("convert", "--target", "xen-4.22", DIR / f"{name}.img", out)
    assert run.code == 0, run.stderr
    depth = [w for w in facts(name)["watches"] if w["depth"] is not None]
    repaired = [line for line in run.stderr_lines if " repaired " in line]
    if depth:
        assert f"repaired {len(depth)} depth watch" in repaired[0]
    assert ("DOMAIN_DATA record of a domain the loader does not know (dom3)" in run.stderr) == (
        name == "unintroduced"
    )
    assert xsmig("verify", "--target", "xen-4.22", out).code == 0
    _, records = read_records(out)
    assert not any(isinstance(r, UnwrittenDepthWatch) for r in records)
    watches = [(r.path, r.token) for r in records if isinstance(r, WatchData)]
    assert watches == [(w["path"], w["token"]) for w in facts(name)["watches"]]
    # Nothing else changed: the tree is the one the daemon had.
    assert xsmig("diff", DIR / f"{name}.img", out).code == (1 if name == "unintroduced" else 0)


def test_convert_keeps_dom0_features_and_quotas(tmp_path: Path) -> None:
    out = tmp_path / "out.img"
    assert xsmig("convert", "--target", "xen-4.22", DIR / "domains.img", out).code == 0
    _, records = read_records(out)
    domains = {r.domid: r for r in records if isinstance(r, DomainData)}
    assert {d: r.features for d, r in domains.items()} == {0: 14, 1: 14, 2: 6}
    assert dict(domains[1].quotas)["nodes"] == 77


def test_inspect_shows_the_unwritten_depth() -> None:
    run = xsmig("inspect", "--records", DIR / "watches.img")
    assert run.code == 0
    assert "depth=unwritten (Xen 4.22 writer layout, len 32, 24 written)" in run.stdout
    run = xsmig("inspect", DIR / "depth-ok-second.img")
    assert run.code == 0, run.stderr


def test_the_design_document_target_refuses_the_writer_layout() -> None:
    run = xsmig("verify", DIR / "depth-ok.img")
    assert run.code == 1
    assert "record 7 (WATCH_DATA_EXTENDED) at byte 376" in run.stderr_lines[0]
