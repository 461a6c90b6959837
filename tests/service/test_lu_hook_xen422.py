"""lu-hook with profile xen-4.22 on the dumps a real Xen 4.22.0 wrote (tests/data/xen-4.22).

4.22 itself dies on ``watches.img`` (FATAL: Inconsistent state data) and on
``unintroduced.img`` (FATAL: referenced domain not found); the hook must hand its successor a
dump it loads, and list every broken record in the log and the manifest. That 4.22 then
really loads it, inside its own live update, is checked by tests/data/xen-4.22/live_check.py.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from xen422_data import dump, facts

from xsmig_daemon.image.decoder import decode_image
from xsmig_daemon.image.encoder import encode_image
from xsmig_daemon.image.records import DomainData, UnwrittenDepthWatch, WatchData
from xsmig_daemon.image.validate import validate_records
from xsmig_daemon.service.lu_hook import decide

from .conftest import make_config


def _decide(base: Path, name: str) -> tuple[str, dict[str, object], bytes]:
    rundir = base / "run"
    rundir.mkdir()
    (rundir / "state_dump").write_bytes(dump(name))
    config = make_config(base, lu_hook={"successor": "/usr/sbin/xenstored", "profile": "xen-4.22"})
    plan = decide(config, ["-N", "-U"], {"XENSTORED_RUNDIR": str(rundir)})
    (manifest,) = (base / "snaps").glob("lu-*.manifest.json")
    return plan.action, json.loads(manifest.read_text()), (rundir / "state_dump").read_bytes()


@pytest.mark.parametrize("name", ["watches", "watches-v1", "domains", "unintroduced"])
def test_broken_4_22_dumps_are_repaired_and_listed(
    short_dir: Path, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    action, manifest, converted = _decide(short_dir, name)
    assert action == "converted"
    check = manifest["check"]
    assert isinstance(check, dict) and not check["valid"]
    depth_watches = [w for w in facts(name)["watches"] if w["depth"] is not None]
    defects = check["defects"]
    assert len(defects) == len(depth_watches) + (1 if name == "unintroduced" else 0)
    logged = [r.getMessage() for r in caplog.records if "broken for xen-4.22" in r.getMessage()]
    assert len(logged) == len(defects)
    assert all("record " in line and " at byte " in line for line in logged)
    conversion = manifest["conversion"]
    assert isinstance(conversion, dict) and conversion["ok"]
    repairs = " ".join(conversion["repairs"])
    if depth_watches:
        assert f"{len(depth_watches)} depth watch" in repairs
    # The rewritten dump is one 4.22 loads, with every watch, depth-less.
    header, located = decode_image(converted)
    assert header.version == 2
    validate_records(located, header, "xen-4.22")
    records = [item.record for item in located]
    assert not any(isinstance(r, UnwrittenDepthWatch) for r in records)
    watches = [(r.path, r.token) for r in records if isinstance(r, WatchData)]
    assert watches == [(w["path"], w["token"]) for w in facts(name)["watches"]]
    assert 3 not in {r.domid for r in records if isinstance(r, DomainData)}


def test_a_sound_4_22_dump_is_restored_as_it_is(short_dir: Path) -> None:
    # No depth watch, no unknown domain: nothing to repair.
    rundir = short_dir / "run"
    rundir.mkdir()
    header, located = decode_image(dump("domains"))
    plain = [r.record for r in located if not isinstance(r.record, UnwrittenDepthWatch)]
    data = b"".join(encode_image(plain, header))
    (rundir / "state_dump").write_bytes(data)
    config = make_config(
        short_dir, lu_hook={"successor": "/usr/sbin/xenstored", "profile": "xen-4.22"}
    )
    plan = decide(config, ["-U"], {"XENSTORED_RUNDIR": str(rundir)})
    assert plan.action == "restore"
    assert (rundir / "state_dump").read_bytes() == data
