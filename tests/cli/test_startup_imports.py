"""Offline commands start fast because they import only what they use: never trio, the
exporter, the client, the mock or the service; a subcommand's ``--help`` no image code at all;
``inspect`` (framing only) neither the validator nor the rewriting half (benchmarks/startup.py
measures the time)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import DATA_IMAGES, TIMEOUT

from xsmig_daemon.cli import COMMANDS, build_parser

IMAGE = str(DATA_IMAGES / "basic.img")
HEAVY = ("trio", "xsmig_daemon.export", "xsmig_daemon.client", "xsmig_daemon.mockd",
         "xsmig_daemon.service", "xsmig_daemon.store")  # fmt: skip

PROBE = """
import contextlib, io, json, sys
from xsmig_daemon.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    main(sys.argv[1:])
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def imported_by(argv: list[str], tmp_path: Path) -> list[str]:
    """Every module a run of ``xsmig ARGV`` imported (OUT in argv: a file under tmp_path)."""
    argv = [str(tmp_path) + "/out.img" if a == "OUT" else a for a in argv]
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    modules: list[str] = json.loads(result.stderr.strip().splitlines()[-1])
    return modules


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["inspect", "--help"],
        ["verify", "--help"],
        ["diff", "--help"],
        ["convert", "--help"],
        ["inspect", IMAGE],
        ["inspect", "--records", "--json", IMAGE],
        ["verify", "--target", "xen-4.17", IMAGE],
        ["diff", IMAGE, IMAGE],
        ["convert", IMAGE, "OUT", "--target", "xen-4.17"],
    ],
    ids=lambda argv: " ".join(a for a in argv if "/" not in a),
)
def test_offline_command_imports_nothing_heavy(argv: list[str], tmp_path: Path) -> None:
    modules = imported_by(argv, tmp_path)
    heavy = [m for m in modules if m.split(".")[0] == "trio" or m.startswith(HEAVY[1:])]
    assert heavy == [], heavy


@pytest.mark.parametrize("command", ["inspect", "verify", "diff", "convert"])
def test_a_subcommand_help_imports_no_image_code(command: str, tmp_path: Path) -> None:
    """Building the parser needs the option table only: no record model, no dataclasses."""
    modules = imported_by([command, "--help"], tmp_path)
    image_code = [
        m for m in modules if m.startswith(("xsmig_daemon.image.", "xsmig_daemon.imagefile"))
    ]
    assert set(image_code) <= {"xsmig_daemon.image.targets"}, image_code
    assert "dataclasses" not in modules


def test_inspect_decodes_without_the_validator_or_the_rewriter(tmp_path: Path) -> None:
    """``inspect`` checks framing only, so it reads with the decoder alone."""
    modules = set(imported_by(["inspect", "--records", IMAGE], tmp_path))
    assert "xsmig_daemon.image.decoder" in modules  # the probe really ran the command
    unused = {"validate", "profiles", "pipeline", "convert", "loader_layout", "compare"}
    assert modules.isdisjoint(f"xsmig_daemon.image.{name}" for name in unused)
    assert "tempfile" not in modules  # only writers need it


def test_the_lazy_help_table_matches_every_command() -> None:
    """``xsmig --help`` lists each command with the help its module registers."""
    parser = build_parser(full=True)
    subparsers = next(a for a in parser._actions if a.dest == "command")
    registered = {a.dest: a.help for a in subparsers._choices_actions}  # type: ignore[attr-defined]
    assert registered == {name: help_text for name, (_, help_text) in COMMANDS.items()}
