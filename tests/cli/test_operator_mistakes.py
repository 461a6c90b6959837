"""An operator's first mistakes, one table: every case exits with its documented code, says
one line on stderr (never a traceback), and leaves nothing at (or changes nothing about) the
target it names."""

from __future__ import annotations

import os
import pty
import stat
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cli_helpers import DATA_IMAGES, TIMEOUT, XSMIG

IMAGE = str(DATA_IMAGES / "domains.img")


@dataclass
class Case:
    argv: list[str]
    code: int
    says: str
    #: Paths under the test's directory that must not exist afterwards.
    absent: list[str] = field(default_factory=list)
    #: Prepares the directory (and returns extra environment) before the command runs.
    setup: Callable[[Path], dict[str, str]] | None = None


def _symlink(base: Path) -> dict[str, str]:
    (base / "real.img").write_bytes(b"keep me")
    (base / "link.img").symlink_to(base / "real.img")
    return {}


def _bad_dump(base: Path) -> dict[str, str]:
    (base / "lu").mkdir()
    (base / "lu" / "state_dump").write_bytes(Path(IMAGE).read_bytes()[:100])
    return {"XENSTORED_RUNDIR": str(base / "lu")}


def _config_with_unknown_key(base: Path) -> dict[str, str]:
    (base / "c.toml").write_text(f'[control]\nsocket = "{base}/ctl.sock"\n[future]\nkey = 1\n')
    return {}


LONG = "x" * 120
CASES: dict[str, Case] = {
    # numbers: usage errors at parse time (exit 2)
    "snapshot --timeout -5": Case(
        ["snapshot", "--image", IMAGE, "--output", "{d}/o.img", "--timeout", "-5"], 2,
        "--timeout: -5 is out of range", ["o.img"],
    ),
    "snapshot --timeout nan": Case(
        ["snapshot", "--image", IMAGE, "--output", "{d}/o.img", "--timeout", "nan"], 2,
        "not a finite number", ["o.img"],
    ),
    "snapshot --freeze-deadline -1": Case(
        ["snapshot", "--output", "{d}/o.img", "--freeze-deadline", "-1"], 2,
        "--freeze-deadline: -1 is out of range", ["o.img"],
    ),
    "snapshot --attempts -1": Case(
        ["snapshot", "--output", "{d}/o.img", "--attempts", "-1"], 2, "--attempts", ["o.img"]
    ),
    "snapshot --connections 0": Case(
        ["snapshot", "--output", "{d}/o.img", "--connections", "0"], 2,
        "--connections: 0 is out of range", ["o.img"],
    ),
    "snapshot --connections 65": Case(
        ["snapshot", "--output", "{d}/o.img", "--connections", "65"], 2,
        "--connections: 65 is out of range", ["o.img"],
    ),
    "snapshot --dom0-evtchn -1": Case(
        ["snapshot", "--output", "{d}/o.img", "--dom0-evtchn", "-1"], 2, "--dom0-evtchn"
    ),
    "snapshot --domain 40000": Case(
        ["snapshot", "--output", "{d}/o.img", "--domain", "40000"], 2, "--domain"
    ),
    "snapshot --socket-fd x": Case(
        ["snapshot", "--output", "{d}/o.img", "--socket-fd", "x"], 2, "not an integer"
    ),
    "mockd --restore-timeout -1": Case(
        ["mockd", "--socket", "{d}/s", "--restore", "unix:{d}/r", "--restore-timeout", "-1"],
        2, "--restore-timeout", ["s", "r"],
    ),
    "ctl --timeout 0": Case(
        ["ctl", "--socket", "{d}/c", "--timeout", "0", "status"], 2, "--timeout"
    ),
    "ctl live-update --lu-timeout 0": Case(
        ["ctl", "--socket", "{d}/c", "live-update", "--lu-timeout", "0"], 2, "--lu-timeout"
    ),
    "migrate --domain 0": Case(
        ["migrate", "--from", "{d}/a", "--to", "{d}/b", "--domain", "0"], 2,
        "--domain: 0 is not a guest domain id (1..32751)",
    ),
    "migrate --domain 32752": Case(
        ["migrate", "--from", "{d}/a", "--to", "{d}/b", "--domain", "32752"], 2,
        "--domain: 32752 is not a guest domain id",
    ),
    "migrate --domid -1": Case(
        ["migrate", "--from", "{d}/a", "--to", "{d}/b", "--domain", "7", "--domid", "-1"], 2,
        "--domid: -1 is not a guest domain id",
    ),
    "migrate --timeout 0": Case(
        ["migrate", "--from", "{d}/a", "--to", "{d}/b", "--domain", "7", "--timeout", "0"], 2,
        "--timeout: 0 is out of range",
    ),
    "migrate --timeout inf": Case(
        ["migrate", "--from", "{d}/a", "--to", "{d}/b", "--domain", "7", "--timeout", "inf"], 2,
        "not a finite number",
    ),
    "migrate --freeze-deadline 0": Case(
        ["migrate", "--from", "{d}/a", "--to", "{d}/b", "--domain", "7",
         "--freeze-deadline", "0"], 2, "--freeze-deadline: 0 is out of range",
    ),
    "migrate --evtchn 0": Case(
        ["migrate", "--from", "{d}/a", "--to", "{d}/b", "--domain", "7", "--evtchn", "0"], 2,
        "--evtchn: 0 is out of range",
    ),
    "migrate --gfn -1": Case(
        ["migrate", "--from", "{d}/a", "--to", "{d}/b", "--domain", "7", "--gfn", "-1"], 2,
        "--gfn: -1 is out of range",
    ),
    "migrate --to too long": Case(
        ["migrate", "--from", "{d}/a", "--to", "{d}/" + LONG, "--domain", "7"], 2,
        "a unix socket path is at most 107 bytes", [LONG],
    ),
    "migrate-in --domid 0": Case(["migrate-in", IMAGE, "--domid", "0"], 2, "--domid: 0 is not"),
    "migrate-in --socket empty": Case(
        ["migrate-in", IMAGE, "--socket", ""], 2, "--socket: an empty socket path"
    ),
    "migrate-in --freeze-deadline nan": Case(
        ["migrate-in", IMAGE, "--freeze-deadline", "nan"], 2, "not a finite number"
    ),
    # paths: one line, exit 1
    "mockd socket path too long": Case(
        ["mockd", "--socket", "{d}/" + LONG], 1, "at most 107 bytes", [LONG]
    ),
    "mockd missing parent": Case(
        ["mockd", "--socket", "{d}/no/such/socket"], 1, "does not exist", ["no"]
    ),
    "demo --rundir /proc/x": Case(["demo", "--rundir", "/proc/xsmig-x"], 1, "/proc/xsmig-x"),
    "mockd -U on a truncated dump": Case(["mockd", "-U"], 1, "state_dump", setup=_bad_dump),
    "inspect a missing file": Case(["inspect", "{d}/none.img"], 1, "none.img"),
    "snapshot unknown --domain": Case(
        ["snapshot", "--image", IMAGE, "--domain", "99", "--output", "{d}/o.img"], 1,
        "domain 99", ["o.img", "o.img.manifest.json"],
    ),
    "snapshot --force over a device": Case(
        ["snapshot", "--image", IMAGE, "--output", "/dev/null", "--force"], 1,
        "/dev/null: is not a regular file",
    ),
    "snapshot --force over a symlink": Case(
        ["snapshot", "--image", IMAGE, "--output", "{d}/link.img", "--force"], 1,
        "is not a regular file", setup=_symlink,
    ),
    "convert --force over a symlink": Case(
        ["convert", IMAGE, "{d}/link.img", "--force"], 1, "is not a regular file", setup=_symlink
    ),
    "ctl ignores a key it does not use": Case(
        ["ctl", "--config", "{d}/c.toml", "status"], 1, "ctl.sock: No such file or directory",
        setup=_config_with_unknown_key,
    ),
}  # fmt: skip


def run_case(case: Case, base: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if case.setup is not None:
        env.update(case.setup(base))
    argv = [arg.replace("{d}", str(base)) for arg in case.argv]
    return subprocess.run(
        [str(XSMIG), *argv],
        cwd=base,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


@pytest.mark.parametrize("name", list(CASES))
def test_mistake(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run_case(case, tmp_path)
    assert result.returncode == case.code, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("xsmig"), result.stderr
    assert case.says in result.stderr
    for name_ in case.absent:
        assert not os.path.lexists(tmp_path / name_), name_
    if case.setup is None:
        assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_the_symlink_and_its_target_are_untouched(tmp_path: Path) -> None:
    run_case(CASES["snapshot --force over a symlink"], tmp_path)
    assert (tmp_path / "link.img").is_symlink()
    assert (tmp_path / "real.img").read_bytes() == b"keep me"
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_the_bad_dump_is_kept(tmp_path: Path) -> None:
    run_case(CASES["mockd -U on a truncated dump"], tmp_path)
    assert (tmp_path / "lu" / "state_dump").read_bytes() == Path(IMAGE).read_bytes()[:100]


def test_output_dev_stdout_writes_the_image(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(XSMIG), "snapshot", "--image", IMAGE, "--output", "/dev/stdout"],
        cwd=tmp_path,
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout[:8] == Path(IMAGE).read_bytes()[:8]
    assert list(tmp_path.iterdir()) == []


def test_output_dash_refuses_a_terminal(tmp_path: Path) -> None:
    leader, follower = pty.openpty()
    try:
        result = subprocess.run(
            [str(XSMIG), "snapshot", "--image", IMAGE, "--output", "-"],
            cwd=tmp_path,
            stdout=follower,
            stderr=subprocess.PIPE,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    finally:
        os.close(follower)
        os.close(leader)
    assert result.returncode == 1
    assert result.stderr == (
        "xsmig snapshot: <stdout>: is a terminal; redirect or pipe the image "
        "(e.g. | xsmig inspect -)\n"
    )
