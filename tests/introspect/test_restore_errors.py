"""``xsmig mockd --restore`` refuses a bad stream in one line (exit 1) and never serves a
half-loaded state; ``--drop-unresumed`` drops the socket connections it cannot resume."""

from __future__ import annotations

import signal
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from introlib import XSMIG, mock, records_of, snapshot
from peerlib import REPO_ROOT, short_tempdir, wait_until
from wireclient import ok

from xsmig_daemon.image.encoder import encode_image
from xsmig_daemon.image.records import (
    ConnectionData,
    GlobalData,
    Header,
    NodeData,
    Permission,
    Record,
    WatchData,
)
from xsmig_daemon.store.engine import Engine
from xsmig_daemon.store.image_state import restore_engine, state_records
from xsmig_daemon.wire.ops import Op


@pytest.fixture
def work() -> Iterator[Path]:
    directory = short_tempdir()
    yield directory
    subprocess.run(["rm", "-rf", str(directory)], check=True)


def valid_image() -> bytes:
    records: list[Record] = [GlobalData(-1, -1), NodeData("/", b"", (Permission("n", 0),))]
    return b"".join(encode_image(records, Header(2, False)))


def restore_from(work: Path, source: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*XSMIG, "mockd", "--socket", str(work / "socket"), "--restore", source, *extra],
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def refused(process: subprocess.Popen[str], work: Path) -> str:
    try:
        stdout, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 1, stdout + stderr
    assert "listening" not in stdout
    assert not (work / "socket").exists()
    assert stderr.count("\n") == 1 and stderr.startswith("xsmig mockd: restore failed: ")
    return stderr


@pytest.mark.parametrize(
    ("name", "mangle", "why"),
    [
        ("truncated", lambda image: image[:-8], "before the END record"),
        ("garbage", lambda image: b"not an image at all", "header"),
        (
            "watch of no connection",
            lambda image: (
                image[:-8]
                + b"".join(encode_image([WatchData(9, "/a", "t")], Header(2, False)))[16:]
            ),
            "conn-id 9",
        ),
    ],
)
def test_a_bad_image_file_is_refused(
    work: Path, name: str, mangle: Callable[[bytes], bytes], why: str
) -> None:
    image = work / "bad.img"
    image.write_bytes(mangle(valid_image()))
    assert why in refused(restore_from(work, str(image)), work), name


@pytest.mark.parametrize(
    ("name", "data", "why"),
    [
        ("cut short", valid_image()[:-8], "before the END record"),
        ("garbage", b"x" * 100, "header"),
    ],
)
def test_a_bad_unix_stream_is_refused(work: Path, name: str, data: bytes, why: str) -> None:
    stream = work / "succ"
    process = restore_from(work, f"unix:{stream}", "--restore-timeout", "10")
    wait_until(lambda: stream.exists() or process.poll() is not None, 30, "the restore socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as producer:
        producer.connect(str(stream))
        producer.sendall(data)
    assert why in refused(process, work), name
    assert not stream.exists()


def test_no_producer_within_the_timeout(work: Path) -> None:
    process = restore_from(work, f"unix:{work / 'succ'}", "--restore-timeout", "0.5")
    assert "no producer connected within 0.5 s" in refused(process, work)


def test_drop_unresumed_drops_the_socket_connections(work: Path) -> None:
    with mock() as source, source.connect() as client:
        ok(client, Op.WATCH, "/w", "tok")
        assert snapshot(source.socket_path, "--output", str(work / "a.img")).returncode == 0
    assert sum(isinstance(r, ConnectionData) for r in records_of(work / "a.img")) == 1
    with mock("--restore", str(work / "a.img"), "--drop-unresumed") as restored:
        assert "(socket fd" in restored.log() and "; dropped" in restored.log()
        run = snapshot(restored.socket_path, "--output", str(work / "b.img"))
        assert run.returncode == 0, run.stderr
    records = records_of(work / "b.img")
    assert not any(isinstance(r, ConnectionData | WatchData) for r in records)


def test_domains_introduced_after_a_restore_get_fresh_ports_and_ids() -> None:
    engine = Engine()
    for domid in (1, 2, 3):
        engine.introduce(domid, 10 + domid)
    restored = restore_engine(state_records(engine))
    new = restored.introduce(9, 19)
    old = [restored.domains[domid] for domid in (1, 2, 3)]
    assert new.local_port not in {d.local_port for d in old}
    assert new.unique_id not in {d.unique_id for d in old}


def test_sigterm_while_waiting_for_the_producer(work: Path) -> None:
    stream = work / "succ"
    process = restore_from(work, f"unix:{stream}", "--restore-timeout", "30")
    wait_until(lambda: stream.exists() or process.poll() is not None, 30, "the restore socket")
    process.send_signal(signal.SIGTERM)
    assert "SIGTERM before the stream was complete" in refused(process, work)
    assert not stream.exists()
