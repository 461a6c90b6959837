"""``xsmig lu-hook`` inside real Xen 4.17 live updates (shared/peer): the update passes through
it, the copy and manifest are kept, clients keep working; a damaged dump is caught and dom0
keeps a working xenstored; a dump the successor cannot load is converted when asked."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from peerlib import PeerInstall, RealXenstored, wait_until

from xsmig_daemon.image.decoder import decode_image
from xsmig_daemon.image.records import NodeData
from xsmig_daemon.wire.ops import Op

from .conftest import write_config
from .test_serve_snapshot import ctl_json, serving

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.peer


def install_hook(
    base: Path, install: PeerInstall, snapshots_dir: Path | None = None, **lu_hook: Any
) -> tuple[Path, Path]:
    """A configuration under ``base`` and its wrapper, installed by the real CLI."""
    wrapper = base / "lu-hook"
    config = write_config(
        base / "config.toml",
        base,
        lu_hook={"successor": str(install.xenstored_bin), "wrapper": str(wrapper), **lu_hook},
        snapshots={"directory": str(snapshots_dir or base / "snaps")},
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "xsmig_daemon",
            "lu-hook",
            "--config",
            str(config),
            "--install-wrapper",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(wrapper)
    assert os.access(wrapper, os.X_OK)
    return config, wrapper


def tamper_wrapper(base: Path, wrapper: Path, step: str) -> Path:
    """A test-only 'binary' that damages or rewrites state_dump, then execs the real wrapper."""
    path = base / "tamper"
    path.write_text(f'#!/bin/sh\nD="$XENSTORED_RUNDIR/state_dump"\n{step}\nexec {wrapper} "$@"\n')
    path.chmod(0o755)
    return path


def live_update(xs: RealXenstored, binary: Path) -> subprocess.CompletedProcess[str]:
    return xs.client("xenstore-control", "live-update", "-f", str(binary), check=False, timeout=60)


def kept(base: Path, prefix: str) -> tuple[Path, dict[str, Any]]:
    images = sorted((base / "snaps").glob(f"{prefix}-*.img"))
    assert len(images) == 1, sorted(p.name for p in (base / "snaps").iterdir())
    manifest = json.loads(images[0].with_name(images[0].name + ".manifest.json").read_text())
    return images[0], manifest


def node_paths(image: bytes) -> set[str]:
    _, located = decode_image(image)
    return {item.record.path for item in located if isinstance(item.record, NodeData)}


def wait_until_serving(xs: RealXenstored, timeout: float = 10.0) -> None:
    """A fresh start re-creates the socket: until then, new clients are refused."""

    def serving() -> bool:
        assert xs.alive(), xs.log()[-2000:]
        return xs.client("xenstore-write", "/after", "works", check=False).returncode == 0

    wait_until(serving, timeout, "the restarted xenstored to serve")


def exe_of(pid: int) -> str:
    return os.readlink(f"/proc/{pid}/exe")


def test_live_update_passes_through_the_hook(
    real_xenstored: RealXenstored, peer_install: PeerInstall, short_dir: Path
) -> None:
    xs = real_xenstored
    _, wrapper = install_hook(short_dir, peer_install)
    xs.client("xenstore-write", "/test/a", "one", "/test/b", "two")
    pid = xs.pid
    with xs.connect() as watcher:
        assert watcher.call(Op.WATCH, "/test/a", "tok").payload == b"OK\0"
        assert watcher.event().op == Op.WATCH_EVENT  # the initial event

        result = live_update(xs, wrapper)
        assert result.returncode == 0, (result.stdout, result.stderr, xs.log()[-2000:])

        # Same process, now the real xenstored again, serving the restored state.
        assert xs.alive() and exe_of(pid) == str(peer_install.xenstored_bin)
        assert not (xs.rundir / "state_dump").exists()
        assert xs.client("xenstore-read", "/test/b").stdout == "two\n"
        # The connection opened before the update still works, its watch too.
        assert watcher.call(Op.READ, "/test/a").payload == b"one"
        xs.client("xenstore-write", "/test/a", "changed")
        event = watcher.event()
        assert event.strings[:2] == [b"/test/a", b"tok"]

    image, manifest = kept(short_dir, "lu")
    data = image.read_bytes()
    assert {"/test/a", "/test/b"} <= node_paths(data)
    assert manifest["action"] == "restore"
    assert manifest["check"]["valid"] is True
    assert manifest["check"]["profile"] == "xen-4.17"
    assert manifest["check"]["version"] == 1 and manifest["check"]["endian"] == "little"
    assert manifest["check"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert manifest["check"]["size"] == len(data)
    assert manifest["exec"] == [str(peer_install.xenstored_bin), "-N", "-U"]
    verify = subprocess.run(
        [sys.executable, "-m", "xsmig_daemon", "verify", "--target", "xen-4.17", str(image)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert verify.returncode == 0, verify.stderr
    assert f"<6>lu-hook: {xs.rundir}/state_dump: valid for xen-4.17" in xs.log()


def test_corrupted_dump_is_caught_and_dom0_keeps_a_working_xenstored(
    real_xenstored: RealXenstored, peer_install: PeerInstall, short_dir: Path
) -> None:
    xs = real_xenstored
    _, wrapper = install_hook(short_dir, peer_install)
    xs.client("xenstore-write", "/test/a", "one")
    pid = xs.pid
    # Overwrite the first CONNECTION_DATA's conn-type: 4.17 would abort on this dump.
    tamper = tamper_wrapper(
        short_dir,
        wrapper,
        "printf 'garbage!' | dd of=\"$D\" bs=1 seek=40 conv=notrunc 2>/dev/null",
    )
    result = live_update(xs, tamper)
    # The requester's connection was closed, so the tool reports a failure ...
    assert result.returncode != 0
    # ... but the same process is a working xenstored, started fresh (the state is lost).
    wait_until_serving(xs)  # (the tool returns when its connection closes, before the exec)
    assert xs.alive() and exe_of(pid) == str(peer_install.xenstored_bin)
    assert xs.client("xenstore-read", "/test/a", check=False).returncode != 0
    assert xs.client("xenstore-read", "/after").stdout == "works\n"
    assert not (xs.rundir / "state_dump").exists()

    image, manifest = kept(short_dir, "lu-rejected")
    assert manifest["action"] == "fresh"
    assert manifest["check"]["valid"] is False
    assert "reserved conn-type" in manifest["check"]["error"]
    assert manifest["conversion"]["ok"] is False  # tried (convert = true), impossible
    assert manifest["exec"] == [str(peer_install.xenstored_bin), "-N"]
    assert b"garbage!" in image.read_bytes()
    log = xs.log()
    assert "<3>lu-hook: " in log and "not loadable by xen-4.17" in log
    assert "<2>lu-hook: " in log and "WITHOUT -U as a fresh, EMPTY xenstored" in log


def _v2_dump_step() -> str:
    """Rewrite the dump as a version 2 stream (what a newer xenstored writes): 4.17 refuses it."""
    convert = (
        f'{sys.executable} -m xsmig_daemon convert --version 2 --target spec "$D" "$D.v2" '
        f'&& mv "$D.v2" "$D"'
    )
    return f"cd {REPO} && {convert}"


def test_dump_the_successor_cannot_load_is_converted(
    real_xenstored: RealXenstored, peer_install: PeerInstall, short_dir: Path
) -> None:
    xs = real_xenstored
    _, wrapper = install_hook(short_dir, peer_install)  # lu_hook.convert defaults to true
    xs.client("xenstore-write", "/test/a", "one")
    result = live_update(xs, tamper_wrapper(short_dir, wrapper, _v2_dump_step()))
    assert result.returncode == 0, (result.stderr, xs.log()[-2000:])
    assert xs.client("xenstore-read", "/test/a").stdout == "one\n"
    image, manifest = kept(short_dir, "lu")
    assert manifest["action"] == "converted"
    assert manifest["check"]["version"] == 2
    assert "loads stream version 1 only" in manifest["check"]["error"]
    assert manifest["conversion"]["ok"] is True
    assert decode_image(image.read_bytes())[0].version == 2  # the copy is the original dump
    assert "<4>lu-hook: " in xs.log() and "converted for xen-4.17" in xs.log()


def test_without_conversion_such_a_dump_means_a_fresh_start(
    real_xenstored: RealXenstored, peer_install: PeerInstall, short_dir: Path
) -> None:
    xs = real_xenstored
    _, wrapper = install_hook(short_dir, peer_install, convert=False)
    xs.client("xenstore-write", "/test/a", "one")
    assert live_update(xs, tamper_wrapper(short_dir, wrapper, _v2_dump_step())).returncode != 0
    wait_until_serving(xs)
    assert xs.client("xenstore-read", "/test/a", check=False).returncode != 0
    _, manifest = kept(short_dir, "lu-rejected")
    assert manifest["action"] == "fresh" and "conversion" not in manifest


def _point_at(config: Path, base: Path, xs: RealXenstored, wrapper: Path | None = None) -> None:
    """Aim the service's configuration at the real daemon (and optionally another wrapper)."""
    text = config.read_text().replace(str(base / "xs.sock"), str(xs.socket_path))
    if wrapper is not None:
        text = text.replace(f'wrapper = "{base / "lu-hook"}"', f'wrapper = "{wrapper}"')
    config.write_text(text)


def test_ctl_live_update_through_the_service(
    real_xenstored: RealXenstored, peer_install: PeerInstall, short_dir: Path
) -> None:
    xs = real_xenstored
    config, _ = install_hook(short_dir, peer_install)
    _point_at(config, short_dir, xs)
    xs.client("xenstore-write", "/test/a", "one")
    with serving(config) as ctl:
        result = subprocess.run(
            [*ctl, "--json", "live-update", "--lu-timeout", "5"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, (result.stderr, xs.log()[-2000:])
        reply = json.loads(result.stdout)
        assert reply["reply"] == "OK"
        image, manifest = kept(short_dir, "lu")
        assert reply["copies"] == [str(image)]
        assert manifest["action"] == "restore"
        assert xs.client("xenstore-read", "/test/a").stdout == "one\n"
        status = ctl_json(ctl, "status")
        assert status["counters"]["live_updates"] == 1
        assert status["lu_hook_problems"] == []


def test_ctl_live_update_reports_a_rejected_dump(
    real_xenstored: RealXenstored, peer_install: PeerInstall, short_dir: Path
) -> None:
    xs = real_xenstored
    config, wrapper = install_hook(short_dir, peer_install)
    tamper = tamper_wrapper(
        short_dir,
        wrapper,
        "printf 'garbage!' | dd of=\"$D\" bs=1 seek=40 conv=notrunc 2>/dev/null",
    )
    _point_at(config, short_dir, xs, tamper)
    with serving(config) as ctl:
        result = subprocess.run(
            [*ctl, "live-update"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 1
        image, _ = kept(short_dir, "lu-rejected")
        assert result.stderr.startswith(f"xsmig ctl: live update of {xs.socket_path}: ")
        assert result.stderr.endswith(
            "; lu-hook rejected the dump and started xenstored fresh (empty), rejected dump "
            f"kept at {image}\n"
        )
        wait_until_serving(xs)
        assert ctl_json(ctl, "status")["last_error"] == result.stderr[len("xsmig ctl: ") : -1]


def test_an_unusable_snapshot_directory_does_not_stop_the_update(
    real_xenstored: RealXenstored, peer_install: PeerInstall, short_dir: Path
) -> None:
    xs = real_xenstored
    blocker = short_dir / "file"
    blocker.write_text("a file where a directory should be")
    _, wrapper = install_hook(short_dir, peer_install, snapshots_dir=blocker / "snaps")
    xs.client("xenstore-write", "/test/a", "one")
    result = live_update(xs, wrapper)
    assert result.returncode == 0, (result.stderr, xs.log()[-2000:])
    assert xs.client("xenstore-read", "/test/a").stdout == "one\n"
    log = xs.log()
    assert f"<4>lu-hook: cannot keep a copy in {blocker / 'snaps'}: Not a directory" in log
    assert "valid for xen-4.17" in log


def test_a_broken_configuration_still_hands_over_to_the_successor(
    real_xenstored: RealXenstored, peer_install: PeerInstall, short_dir: Path
) -> None:
    xs = real_xenstored
    config, wrapper = install_hook(short_dir, peer_install)
    config.write_text(config.read_text() + "\n[lu_hook]\nsuccessor = 1\n")  # now invalid
    xs.client("xenstore-write", "/test/a", "one")
    pid = xs.pid
    result = live_update(xs, wrapper)
    assert result.returncode == 0, (result.stderr, xs.log()[-2000:])
    assert exe_of(pid) == str(peer_install.xenstored_bin)
    assert xs.client("xenstore-read", "/test/a").stdout == "one\n"
    log = xs.log()
    assert "<2>lu-hook: " in log and "not valid TOML" in log
    assert (
        f"<2>lu-hook: the hook returned without starting the successor; starting "
        f"{peer_install.xenstored_bin} WITHOUT checks" in log
    )


def test_without_a_copy_a_rejected_dump_is_kept_in_the_run_directory(
    real_xenstored: RealXenstored, peer_install: PeerInstall, short_dir: Path
) -> None:
    xs = real_xenstored
    _, wrapper = install_hook(short_dir, peer_install, keep_copy=False)
    tamper = tamper_wrapper(short_dir, wrapper, ': > "$D"')  # an empty dump
    assert live_update(xs, tamper).returncode != 0
    wait_until_serving(xs)
    assert xs.client("xenstore-read", "/after").stdout == "works\n"
    assert (xs.rundir / "state_dump.rejected").stat().st_size == 0
    assert not (short_dir / "snaps").exists()
