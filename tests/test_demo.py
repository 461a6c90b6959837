"""README's first command ends in `xsmig demo`: it must work end to end."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from xsmig_daemon.image.decoder import decode_image
from xsmig_daemon.image.records import (
    ConnectionData,
    NodeData,
    RingSpec,
    TransactionData,
    WatchData,
)


def test_demo_snapshots_the_populated_mock() -> None:
    rundir = Path(tempfile.mkdtemp(prefix="xsdemo", dir="/tmp"))
    done = subprocess.run(
        [sys.executable, "-m", "xsmig_daemon", "demo", "--rundir", str(rundir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "valid for spec" in done.stdout
    _, located = decode_image((rundir / "demo.img").read_bytes())
    records = [item.record for item in located]
    rings = {
        r.spec.domid
        for r in records
        if isinstance(r, ConnectionData) and isinstance(r.spec, RingSpec)
    }
    assert {1, 2, 3} <= rings
    watches = [(r.path, r.token) for r in records if isinstance(r, WatchData)]
    assert watches == [("/demo", "demo-watch")]
    assert any(isinstance(r, TransactionData) for r in records)
    nodes = {r.path: r for r in records if isinstance(r, NodeData) and r.committed}
    assert nodes["/local/domain/2/name"].value == b"guest2"
    assert str(nodes["/local/domain/2"].perms[0]) == "n2"
    pending = [r for r in records if isinstance(r, NodeData) and not r.committed]
    assert ("/demo/pending", b"not yet committed") in [(r.path, r.value) for r in pending]
    assert (rundir / "demo.img.manifest.json").exists()
