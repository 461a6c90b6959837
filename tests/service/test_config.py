"""The configuration file: every kind of bad input names the key and the reason, exit 2."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from xsmig_daemon.service.config import OPTIONS, ConfigError, build_config, default_config

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config.example.toml"


def check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "xsmig_daemon", "serve", "--config", str(path), "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


BAD_CONFIGS = [
    # (kind, TOML text, expected start of the error after "xsmig serve: ")
    ("unknown section", "[snapshot]\ninterval = 60\n", "snapshot: unknown section"),
    ("unknown key", "[snapshots]\nkep_count = 3\n", "snapshots.kep_count: unknown key"),
    ("section not a table", "log = 'debug'\n", "log: expected a table, got string"),
    (
        "wrong type: string for number",
        '[snapshots]\ninterval = "1h"\n',
        "snapshots.interval: expected a number of seconds, got string",
    ),
    (
        "wrong type: boolean for integer",
        "[snapshots]\nkeep_count = true\n",
        "snapshots.keep_count: expected an integer, got boolean",
    ),
    (
        "wrong type: float for integer",
        "[control]\nmax_clients = 2.5\n",
        "control.max_clients: expected an integer, got float",
    ),
    (
        "wrong type: integer for boolean",
        "[lu_hook]\nconvert = 1\n",
        "lu_hook.convert: expected true or false, got integer",
    ),
    (
        "bad value: out of range",
        "[snapshots]\nkeep_count = 0\n",
        "snapshots.keep_count: must be between 1 and 100000, got 0",
    ),
    (
        "bad value: interval too short",
        "[snapshots]\ninterval = 5\n",
        "snapshots.interval: must be 0 or between 10 and",
    ),
    (
        "bad value: negative",
        "[xenstored]\nconnect_timeout = -1\n",
        "xenstored.connect_timeout: must be between 0.1 and 600 s, got -1",
    ),
    (
        "bad value: nan",
        "[snapshots]\nkeep_age = nan\n",
        "snapshots.keep_age: must be a finite number of seconds",
    ),
    (
        "bad value: choice",
        '[log]\nlevel = "verbose"\n',
        "log.level: must be one of debug, info, warning, error; got 'verbose'",
    ),
    (
        "bad value: profile",
        '[snapshots]\ntarget = "xen-4.18"\n',
        "snapshots.target: must be one of spec, xen-4.17, xen-4.20, xen-4.21, xen-4.22; "
        "got 'xen-4.18'",
    ),
    (
        "bad value: relative path",
        '[snapshots]\ndirectory = "snaps"\n',
        "snapshots.directory: must be an absolute path, got 'snaps'",
    ),
    (
        "bad value: socket path too long",
        f'[control]\nsocket = "/{"x" * 120}"\n',
        "control.socket: unix socket path longer than 107 bytes",
    ),
    (
        "combination: timeout >= interval",
        "[snapshots]\ninterval = 60\ntimeout = 60\n",
        "snapshots.timeout: 60 s must be shorter than snapshots.interval (60 s)",
    ),
    (
        "combination: same sockets",
        '[control]\nsocket = "/run/xenstored/socket"\n',
        "control.socket: must differ from xenstored.socket",
    ),
    ("not TOML", "[snapshots\ninterval = 60\n", "CONFIG: not valid TOML: "),
    ("not UTF-8", b'[log]\nlevel = "\xff"\n', "CONFIG: not valid TOML: "),
]


@pytest.mark.parametrize(("kind", "text", "expected"), BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config_names_key_and_reason_and_exits_2(
    tmp_path: Path, kind: str, text: str | bytes, expected: str
) -> None:
    path = tmp_path / "bad.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    result = check(path)
    assert result.returncode == 2, (kind, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("xsmig serve: " + expected.replace("CONFIG", str(path))), lines[0]
    assert result.stdout == ""


def test_missing_file_exits_2(tmp_path: Path) -> None:
    result = check(tmp_path / "absent.toml")
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"xsmig serve: {tmp_path / 'absent.toml'}: cannot read: No such file or directory"
    )


def test_serve_without_check_refuses_a_bad_config_before_starting(tmp_path: Path) -> None:
    control = tmp_path / "ctl.sock"
    path = tmp_path / "bad.toml"
    path.write_text(f'[control]\nsocket = "{control}"\n[log]\nlevel = 3\n')
    result = subprocess.run(
        [sys.executable, "-m", "xsmig_daemon", "serve", "--config", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "xsmig serve: log.level: expected a string, got integer"
    assert not control.exists()


def test_empty_file_is_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "empty.toml"
    path.write_text("")
    assert check(path).returncode == 0


def test_example_passes_check() -> None:
    result = check(EXAMPLE)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{EXAMPLE}: configuration valid"


def test_example_lists_every_option_with_its_default() -> None:
    document = tomllib.loads(EXAMPLE.read_text())
    listed = {(s, k) for s, table in document.items() for k in table}
    assert listed == {(s, k) for s, options in OPTIONS.items() for k in options}
    example = build_config(document)
    assert example == default_config()


def test_example_explains_every_option() -> None:
    """Each option line is preceded by a comment line (its explanation)."""
    lines = EXAMPLE.read_text().splitlines()
    for number, line in enumerate(lines):
        if "=" in line and not line.startswith("#"):
            assert lines[number - 1].startswith("#"), f"no explanation above {line!r}"


def test_build_config_error_type() -> None:
    with pytest.raises(ConfigError, match=r"^lu_hook\.on_invalid: must be one of fresh, restore"):
        build_config({"lu_hook": {"on_invalid": "panic"}})


def test_docs_reference_every_option_with_its_default() -> None:
    docs = (REPO / "docs" / "service.md").read_text()
    for section, options in OPTIONS.items():
        for key, option in options.items():
            default = option.default
            shown = str(default).lower() if isinstance(default, bool) else str(default)
            assert f"| `{section}.{key}` | `{shown}` |" in docs, f"{section}.{key}"
