"""Helpers of the exporter tests: run ``xsmig snapshot``, drive the real client tools, parse
``xenstore-ls -f -p`` and decode images with the project's reader."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from peerlib import REPO_ROOT
from wireclient import WireClient, payload

from xsmig_daemon.image.pipeline import read_image
from xsmig_daemon.image.records import NodeData, Record
from xsmig_daemon.wire.ops import Op

#: The Debian xenstore-utils client binaries (real libxenstore 4.17).
XENSTORE_WRITE = "/usr/bin/xenstore-write"
XENSTORE_CHMOD = "/usr/bin/xenstore-chmod"
XENSTORE_LS = "/usr/bin/xenstore-ls"

_LS_LINE = re.compile(r'^(?P<path>/\S*) = "(?P<value>.*)"   \((?P<perms>[^()]*)\)$')


def tool(socket_path: Path, *argv: str, check: bool = True) -> str:
    """Run a /usr/bin xenstore tool against ``socket_path``; returns its stdout."""
    result = subprocess.run(
        list(argv),
        env={**os.environ, "XENSTORED_PATH": str(socket_path)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{argv} exited {result.returncode}: {result.stderr.strip()}")
    return result.stdout


def xenstore_ls(socket_path: Path) -> dict[str, tuple[str, str]]:
    """``xenstore-ls -f -p`` as {path: (printed value, perms text like "n0,r1")}."""
    listing: dict[str, tuple[str, str]] = {}
    for line in tool(socket_path, XENSTORE_LS, "-f", "-p").splitlines():
        match = _LS_LINE.match(line)
        assert match is not None, f"unexpected xenstore-ls line: {line!r}"
        listing[match["path"]] = (match["value"], match["perms"])
    return listing


def image_nodes(image: bytes, profile: str = "spec") -> list[NodeData]:
    """Committed nodes of the image, decoded and validated by the project's reader."""
    return [
        item.record
        for item in read_image([image], profile)
        if isinstance(item.record, NodeData) and item.record.committed
    ]


def image_records(image: bytes, profile: str = "spec") -> list[Record]:
    return [item.record for item in read_image([image], profile)]


def nodes_as_listing(nodes: list[NodeData]) -> dict[str, tuple[str, str]]:
    """Tree nodes (without '/', which xenstore-ls does not print) in xenstore-ls's terms;
    test values are plain printable ASCII, so the printed value is the value itself."""
    return {
        node.path: (node.value.decode("ascii"), ",".join(str(p) for p in node.perms))
        for node in nodes
        if node.path.startswith("/") and node.path != "/"
    }


@dataclass
class SnapshotRun:
    returncode: int
    stdout: bytes
    stderr: str


def snapshot_command(socket_path: Path | None, *args: str) -> list[str]:
    argv = [sys.executable, "-m", "xsmig_daemon", "snapshot"]
    if socket_path is not None:
        argv += ["--socket", str(socket_path)]
    return argv + list(args)


def snapshot(socket_path: Path | None, *args: str, timeout: float = 120) -> SnapshotRun:
    result = subprocess.run(
        snapshot_command(socket_path, *args),
        cwd=REPO_ROOT,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    return SnapshotRun(result.returncode, result.stdout, result.stderr.decode())


def write_many(socket_path: Path, items: dict[str, bytes]) -> None:
    """Pipelined WRITEs without a transaction (fast set-up of big trees)."""
    with WireClient.connect(socket_path, timeout=60) as client:
        pending = 0
        for path, value in items.items():
            client.send(Op.WRITE, payload(path, value=value))
            pending += 1
            if pending == 500:
                for _ in range(pending):
                    assert client.reply().op == Op.WRITE
                pending = 0
        for _ in range(pending):
            assert client.reply().op == Op.WRITE


def introduce(socket_path: Path, domid: int) -> None:
    """XS_INTRODUCE of a fake guest (the shim maps a zeroed page for its ring)."""
    with WireClient.connect(socket_path) as client:
        reply = client.call(Op.INTRODUCE, str(domid), str(0x1000 + domid), str(10 + domid))
        assert reply.op == Op.INTRODUCE, reply.payload


def leftovers(directory: Path) -> list[str]:
    """Files in ``directory`` (a failed export must leave neither image nor temp file)."""
    return sorted(p.name for p in directory.iterdir())
