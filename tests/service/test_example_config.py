"""config.example.toml starts as is where a (mock) xenstored listens on its socket, and the
live-update hook imports nothing heavy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from xsmig_daemon.export.manifest import manifest_path
from xsmig_daemon.service.runner import manifest_of

TESTS = Path(__file__).resolve().parents[1]


def test_example_config_starts_as_is_in_front_of_the_mock() -> None:
    # A private mount namespace, so that /run/xsmig and /var/lib/xsmig are fresh tmpfs
    # directories and the host's are never touched.
    result = subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            sys.executable,
            "-m",
            "service.example_in_namespace",
        ],
        cwd=TESTS,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ctl_returncode"] == 0, report
    image = json.loads(report["ctl_stdout"])["image"]
    assert image.startswith("/var/lib/xsmig/snapshots/manual-")
    name = Path(image).name
    assert report["snapshots"] == [name, name + ".manifest.json"]
    assert report["control_mode"] == "0o600"
    assert report["serve_returncode"] == 0, report["serve_stderr"]
    assert "<6>service: ready: control socket /run/xsmig/control.sock" in report["serve_stderr"]


def test_lu_hook_does_not_import_the_exporter_or_trio() -> None:
    code = (
        "import sys, xsmig_daemon.service.lu_entry, xsmig_daemon.service.lu_hook\n"
        "print([m for m in sys.modules if m.startswith(('trio', 'xsmig_daemon.export',"
        " 'xsmig_daemon.client', 'xsmig_daemon.commands'))])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"


def test_manifest_name_agrees_with_the_exporter() -> None:
    assert str(manifest_of(Path("/a/b.img"))) == manifest_path("/a/b.img")
