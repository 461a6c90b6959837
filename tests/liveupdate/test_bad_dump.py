"""``xsmig mockd -U`` on a dump it cannot restore: one line, exit 1, the dump kept for the
operator (docs/liveupdate.md, "Recovery"), never a traceback and never a served socket."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from peerlib import REPO_ROOT, short_tempdir

from xsmig_daemon.image.encoder import encode_image
from xsmig_daemon.image.records import (
    GlobalData,
    Header,
    NodeData,
    Permission,
    Record,
    WatchData,
)

XSMIG = [sys.executable, "-m", "xsmig_daemon"]


@pytest.fixture
def rundir() -> Iterator[Path]:
    directory = short_tempdir()
    yield directory
    subprocess.run(["rm", "-rf", str(directory)], check=True)


def _valid_dump() -> bytes:
    records: list[Record] = [GlobalData(-1, -1), NodeData("/", b"", (Permission("n", 0),))]
    return b"".join(encode_image(records, Header(2, False)))


def _successor(rundir: Path) -> tuple[int, str, str]:
    process = subprocess.Popen(
        [*XSMIG, "mockd", "--rundir", str(rundir), "-U"],
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
        process.wait()
    return process.returncode, stdout, stderr


@pytest.mark.parametrize(
    ("name", "mangle", "why"),
    [
        # GLOBAL_DATA and NODE_DATA are records 0 and 1; END was cut off.
        (
            "truncated",
            lambda dump: dump[:-8],
            "record 2 at byte {size} (0x{size:x}): stream ends before",
        ),
        ("cut in the header", lambda dump: dump[:10], "header"),
        ("garbage", lambda dump: b"garbage " * 8, "header"),
        (
            "watch of no connection",
            lambda dump: (
                dump[:-8] + b"".join(encode_image([WatchData(9, "/a", "t")], Header(2, False)))[16:]
            ),
            "unknown conn-id 9",
        ),
    ],
)
def test_a_bad_dump_is_one_line_and_kept(
    rundir: Path, name: str, mangle: Callable[[bytes], bytes], why: str
) -> None:
    dump = rundir / "state_dump"
    data = mangle(_valid_dump())
    dump.write_bytes(data)
    code, stdout, stderr = _successor(rundir)
    assert code == 1, (name, stdout, stderr)
    assert "Traceback" not in stderr
    assert stderr.count("\n") == 1, stderr
    assert stderr.startswith(f"xsmig mockd: live update restore failed: {dump}: "), stderr
    assert why.format(size=len(data)) in stderr, (name, stderr)
    assert "listening" not in stdout
    assert not (rundir / "socket").exists()
    assert dump.read_bytes() == data


def test_a_missing_dump_is_one_line(rundir: Path) -> None:
    code, stdout, stderr = _successor(rundir)
    assert code == 1, (stdout, stderr)
    assert stderr == (
        f"xsmig mockd: live update restore failed: {rundir / 'state_dump'}: "
        "cannot open: No such file or directory\n"
    )
