"""``xsmig ctl snapshot`` against a running ``xsmig serve`` (the real exporter) in front of the
xsmig mock and of the real Xen 4.17 xenstored: a valid image with its manifest, holding what
the xenstore tools wrote."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from peerlib import MockDaemon, RealXenstored, RunningDaemon, wait_until
from wireclient import payload

from xsmig_daemon.export.manifest import manifest_path
from xsmig_daemon.image.decoder import decode_image
from xsmig_daemon.image.records import NodeData
from xsmig_daemon.service.runner import manifest_of
from xsmig_daemon.wire.ops import Op

from .conftest import write_config
from .notify_listener import NotifyListener

REPO = Path(__file__).resolve().parents[2]


@contextmanager
def serving(config: Path) -> Iterator[list[str]]:
    """``xsmig serve --config CONFIG`` until the block ends; yields the ctl command prefix."""
    process = subprocess.Popen(
        [sys.executable, "-m", "xsmig_daemon", "serve", "--config", str(config)],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    ctl = [sys.executable, "-m", "xsmig_daemon", "ctl", "--config", str(config)]
    try:

        def answers() -> bool:
            assert process.poll() is None, process.communicate()[1]
            status = subprocess.run([*ctl, "status"], capture_output=True, check=False)
            return status.returncode == 0

        wait_until(answers, 20, "xsmig serve to answer status")
        yield ctl
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
        assert process.returncode == 0, err


def ctl_json(ctl: list[str], *args: str) -> dict[str, Any]:
    result = subprocess.run(
        [*ctl, "--json", *args], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def snapshot_of(daemon: RunningDaemon, base: Path, target: str) -> tuple[Path, dict[str, Any]]:
    daemon.client("xenstore-write", "/svc/a", "alpha", "/svc/b/c", "gamma")
    daemon.client("xenstore-chmod", "/svc/a", "n0", "r5")
    config = write_config(base / "config.toml", base, xenstored={"socket": str(daemon.socket_path)})
    output = base / "out" / "snap.img"
    output.parent.mkdir()
    with serving(config) as ctl:
        result = ctl_json(ctl, "snapshot", "--output", str(output), "--target", target)
        status = ctl_json(ctl, "status")
    assert result["image"] == str(output)
    assert result["manifest"] == manifest_path(str(output)) == str(manifest_of(output))
    assert status["last_snapshot"]["image"] == str(output)
    assert status["counters"]["snapshots"] == 1
    verify = subprocess.run(
        [sys.executable, "-m", "xsmig_daemon", "verify", "--target", target, str(output)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert verify.returncode == 0, verify.stderr
    manifest: dict[str, Any] = json.loads(Path(result["manifest"]).read_text())
    assert manifest["size"] == output.stat().st_size
    assert manifest["target"] == target
    _, located = decode_image(output.read_bytes())
    nodes = {r.record.path: r.record for r in located if isinstance(r.record, NodeData)}
    assert nodes["/svc/a"].value == b"alpha"
    assert nodes["/svc/b/c"].value == b"gamma"
    assert [(p.access, p.domid) for p in nodes["/svc/a"].perms] == [("n", 0), ("r", 5)]
    return output, manifest


def test_ctl_snapshot_in_front_of_the_mock(mockd: MockDaemon, short_dir: Path) -> None:
    _, manifest = snapshot_of(mockd, short_dir, "spec")
    # source = auto: the mock answers the introspection probe, so it is read frozen.
    assert manifest["source"] == {"kind": "introspect", "location": str(mockd.socket_path)}
    assert manifest["freeze_duration_s"] > 0


@pytest.mark.peer
def test_ctl_snapshot_in_front_of_the_real_xenstored(
    real_xenstored: RealXenstored, short_dir: Path
) -> None:
    _, manifest = snapshot_of(real_xenstored, short_dir, "xen-4.17")
    assert manifest["source"] == {"kind": "wire", "location": str(real_xenstored.socket_path)}


def test_sigterm_during_a_real_export_leaves_no_file(mockd: MockDaemon, short_dir: Path) -> None:
    """The real exporter, walking a 30 000-node store of the mock, stopped by SIGTERM."""
    with mockd.connect() as client:
        for start in range(0, 30000, 500):
            for i in range(start, start + 500):
                client.send(Op.WRITE, payload(f"/big/d{i // 100}/n{i}", value=b"x" * 20))
            for _ in range(500):
                client.reply()
    config = write_config(
        short_dir / "config.toml",
        short_dir,
        xenstored={"socket": str(mockd.socket_path), "request_timeout": 2},
    )
    notify = NotifyListener(short_dir / "notify")
    process = subprocess.Popen(
        [sys.executable, "-m", "xsmig_daemon", "serve", "--config", str(config)],
        cwd=REPO,
        env={**os.environ, "NOTIFY_SOCKET": str(short_dir / "notify")},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        notify.wait_for(lambda f: f.get("READY") == "1")
        output = short_dir / "out" / "big.img"
        output.parent.mkdir()
        request = json.dumps({"command": "snapshot", "output": str(output)}).encode() + b"\n"
        with socket.socket(socket.AF_UNIX) as control:
            control.connect(str(short_dir / "ctl.sock"))
            control.sendall(request)
            notify.wait_for(lambda f: "nodes" in f.get("STATUS", ""))
            stop = time.monotonic()
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
            # The exporter's cancelled walk aborts its transaction, bounded by request_timeout.
            assert time.monotonic() - stop < 2 + 4  # slack for a loaded machine
            control.settimeout(10)
            assert control.recv(4096) == b""  # no answer: the service stopped
        assert list(output.parent.iterdir()) == []
        _, err = process.communicate(timeout=10)
        assert f"<6>service: SIGTERM: stopping (cancelling: snapshot to {output})" in err
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)
        notify.close()
    # The mock is untouched and serving.
    assert mockd.client("xenstore-read", "/big/d3/n345").stdout == "x" * 20 + "\n"
