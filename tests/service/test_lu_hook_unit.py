"""lu-hook decisions without a daemon: dump checks, copies, plans, the wrapper script."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from xsmig_daemon.image.profiles import XEN_4_17
from xsmig_daemon.service.lu_hook import (
    HookPlan,
    check_dump,
    decide,
    readiness_problems,
    successor_argv,
    wrapper_script,
)

from .conftest import make_config
from .fakes import DATA

BASIC = (DATA / "basic.img").read_bytes()


def chunks(data: bytes, size: int = 7) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def test_valid_dump_is_hashed_counted_and_copied() -> None:
    copy = io.BytesIO()
    result = check_dump(chunks(BASIC), XEN_4_17, copy)
    assert result.valid, result.error
    assert copy.getvalue() == BASIC
    assert result.sha256 == hashlib.sha256(BASIC).hexdigest()
    assert result.size == len(BASIC)
    assert result.header is not None and result.header.version == 1
    assert sum(result.counts.values()) == result.records == 24
    assert result.counts["END"] == 1


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda d: d[:-12], "ends"),
        (lambda d: d[:40] + b"garbage!" + d[48:], "conn-type"),
        (lambda d: d[:8] + b"\x02" + d[9:], "version"),
        (lambda d: b"", "stream ends after 0 bytes"),
    ],
    ids=["truncated", "garbage", "version 2", "empty"],
)
def test_a_bad_dump_is_rejected_but_copied_whole(
    damage: Callable[[bytes], bytes], reason: str
) -> None:
    data = damage(BASIC)
    copy = io.BytesIO()
    result = check_dump(chunks(data), XEN_4_17, copy)
    assert not result.valid
    assert result.error is not None and reason in result.error, result.error
    assert copy.getvalue() == data
    assert result.sha256 == hashlib.sha256(data).hexdigest()


def _decide(base: Path, dump: bytes | None, args: list[str], **lu_hook: object) -> HookPlan:
    rundir = base / "run"
    rundir.mkdir(exist_ok=True)
    if dump is not None:
        (rundir / "state_dump").write_bytes(dump)
    config = make_config(base, lu_hook={"successor": "/usr/sbin/xenstored", **lu_hook})
    return decide(config, args, {"XENSTORED_RUNDIR": str(rundir)})


def test_valid_dump_restores_with_the_original_arguments(short_dir: Path) -> None:
    plan = _decide(short_dir, BASIC, ["-N", "-U"])
    assert (plan.action, plan.argv, plan.close_fds) == (
        "restore",
        ["/usr/sbin/xenstored", "-N", "-U"],
        False,
    )
    (image,) = (short_dir / "snaps").glob("lu-*.img")
    assert image.read_bytes() == BASIC
    manifest = json.loads(image.with_name(image.name + ".manifest.json").read_text())
    assert manifest["schema"] == "xsmig.lu-hook/1"
    assert manifest["copy"] == str(image)


def test_invalid_dump_starts_fresh_without_live_update_flags(short_dir: Path) -> None:
    plan = _decide(short_dir, BASIC[:100], ["-N", "--live-update", "-T", "/t", "-U"])
    assert plan.action == "fresh"
    assert plan.argv == ["/usr/sbin/xenstored", "-N", "-T", "/t"]
    assert plan.close_fds and plan.remove_dump and plan.dump_kept_as is None
    assert [p.name.startswith("lu-rejected-") for p in (short_dir / "snaps").iterdir()] == [
        True,
        True,
    ]


def test_on_invalid_restore_hands_the_dump_over_anyway(short_dir: Path) -> None:
    plan = _decide(short_dir, BASIC[:100], ["-U"], on_invalid="restore")
    assert (plan.action, plan.argv) == ("restore-unchecked", ["/usr/sbin/xenstored", "-U"])
    assert not plan.close_fds and not plan.remove_dump


def test_missing_dump_is_an_invalid_dump(short_dir: Path) -> None:
    plan = _decide(short_dir, None, ["-U"], keep_copy=False)
    assert plan.action == "fresh"
    assert plan.dump_kept_as == short_dir / "run" / "state_dump.rejected"


def test_without_live_update_flag_the_hook_passes_through(short_dir: Path) -> None:
    plan = _decide(short_dir, None, ["-N"])
    assert (plan.action, plan.argv) == ("passthrough", ["/usr/sbin/xenstored", "-N"])
    assert not (short_dir / "snaps").exists()


def test_successor_argv() -> None:
    assert successor_argv("/x", ["-U", "-N"], live=True) == ["/x", "-N", "-U"]
    assert successor_argv("/x", ["-U", "-N"], live=False) == ["/x", "-N"]


def test_wrapper_quotes_paths_and_is_valid_shell(short_dir: Path) -> None:
    script = wrapper_script("/opt/my python/bin/python3", "/etc/x s/c.toml", "/usr/sbin/xenstored")
    assert "exec '/opt/my python/bin/python3' -P -m xsmig_daemon.service.lu_entry " in script
    assert "'/etc/x s/c.toml' \"$@\"" in script
    path = short_dir / "w"
    path.write_text(script)
    assert subprocess.run(["sh", "-n", str(path)], check=False).returncode == 0


def test_readiness_names_what_a_live_update_would_miss(short_dir: Path) -> None:
    wrapper = short_dir / "w"
    config = make_config(short_dir, lu_hook={"successor": "/bin/true", "wrapper": str(wrapper)})
    assert readiness_problems(config) == [
        f"lu_hook.wrapper: {wrapper}: No such file or directory (xsmig lu-hook --install-wrapper)"
    ]
    wrapper.write_text(wrapper_script("/usr/bin/python3", "/etc/other.toml", "/bin/false"))
    wrapper.chmod(0o755)
    problems = readiness_problems(config)
    assert problems == [
        f"lu_hook.wrapper: {wrapper} was not written for this successor (/bin/true); "
        "re-run xsmig lu-hook --install-wrapper"
    ]  # make_config has no file path, so only the successor is compared
    gone = short_dir / "no-such-successor"  # inside the test's own directory: surely absent
    missing = make_config(short_dir, lu_hook={"successor": str(gone), "wrapper": str(wrapper)})
    assert readiness_problems(missing)[0] == f"lu_hook.successor: {gone} is not executable"


@pytest.mark.parametrize("keep", [True, False])
def test_fresh_start_execs_even_when_the_dump_is_missing(short_dir: Path, keep: bool) -> None:
    kept_as = f"Path({str(short_dir / 'kept')!r})" if keep else "None"
    code = (
        "from pathlib import Path\n"
        "from xsmig_daemon.service.lu_hook import HookPlan, execute\n"
        "plan = HookPlan('fresh', ['/bin/sh', '-c', 'echo successor $0', 'started'],\n"
        f"                close_fds=True, remove_dump=True, dump_kept_as={kept_as})\n"
        f"execute(plan, {{'XENSTORED_RUNDIR': {str(short_dir)!r}}})\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False
    )
    assert (result.returncode, result.stdout) == (0, "successor started\n"), result.stderr
