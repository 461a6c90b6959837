"""The image source: forwarding, converting and cutting real Xen 4.17 images (tests/data)."""

from __future__ import annotations

import json
from pathlib import Path

from snaplib import snapshot

from xsmig_daemon.image.decoder import decode_image
from xsmig_daemon.image.records import ConnectionData, NodeData, RingSpec

DATA = Path(__file__).resolve().parent.parent / "data"


def test_real_417_image_forwarded_for_417_is_byte_identical(tmp_path: Path) -> None:
    original = DATA / "domains5.img"
    out = tmp_path / "copy.img"
    run = snapshot(
        None,
        *("--source", "image", "--image", str(original), "--target", "xen-4.17"),
        *("--output", str(out), "--json"),
    )
    assert run.returncode == 0, run.stderr
    assert out.read_bytes() == original.read_bytes()
    manifest = json.loads(run.stdout)
    assert manifest["source"] == {"kind": "image", "location": str(original)}
    assert manifest["fidelity_notes"] == []
    assert manifest["version"] == 1


def test_domain_stream_cut_from_a_real_image(tmp_path: Path) -> None:
    out = tmp_path / "dom1.img"
    run = snapshot(
        None,
        *("--image", str(DATA / "domains5.img"), "--domain", "1", "--output", str(out)),
    )
    assert run.returncode == 0, run.stderr
    _header, located = decode_image(out.read_bytes())
    records = [item.record for item in located]
    rings = [r.spec for r in records if isinstance(r, ConnectionData)]
    assert rings == [RingSpec(1, 0x7FF4, 3)]
    assert [(r.path, ",".join(map(str, r.perms))) for r in records if isinstance(r, NodeData)] == [
        ("@introduceDomain", "n0,r1"),
        ("/local/domain/1", "n1,r0"),
        ("/local/domain/1/name", "r1"),
        ("/local/domain/1/domid", "n0"),
        ("/local/domain/1/data", "n0"),
        ("/local/domain/1/data/blob", "n0"),
    ]


def test_introspect_without_a_daemon_fails_in_one_line(tmp_path: Path) -> None:
    run = snapshot(tmp_path / "s", "--source", "introspect", "--output", str(tmp_path / "x"))
    assert run.returncode == 1
    assert run.stderr.startswith("xsmig snapshot: introspect ")
    assert "cannot connect" in run.stderr
    assert run.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []
