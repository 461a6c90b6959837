"""The man page and the bash completion are generated from the parser and kept current."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from xsmig_daemon.clidoc import bash_completion, man_page

REPO = Path(__file__).resolve().parents[2]
MAN = REPO / "docs" / "xsmig.1"
COMPLETION = REPO / "contrib" / "bash-completion" / "xsmig"
REGENERATE = "regenerate: python -m xsmig_daemon.clidoc {} > {}"


def test_man_page_is_current() -> None:
    assert MAN.read_text() == man_page(), REGENERATE.format("man", MAN.relative_to(REPO))


def test_bash_completion_is_current() -> None:
    expected = bash_completion()
    assert COMPLETION.read_text() == expected, REGENERATE.format("bash", "contrib/...")


def test_man_page_renders_without_warnings() -> None:
    result = subprocess.run(
        ["groff", "-man", "-Tutf8", "-ww", "-z", str(MAN)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert "--freeze-deadline" in MAN.read_text().replace("\\-", "-")


def complete(*words: str) -> list[str]:
    """What bash offers after ``words`` (the last one is being typed)."""
    script = (
        f"source {COMPLETION}\n"
        f"COMP_WORDS=(xsmig {' '.join(repr(w) for w in words)})\n"
        f"COMP_CWORD={len(words)}\n"
        "_xsmig\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    result = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd="/",
    )
    return [line for line in result.stdout.splitlines() if line]


@pytest.mark.parametrize(
    ("words", "offered"),
    [
        (("ins",), ["inspect"]),
        (("snapshot", "--freeze-d"), ["--freeze-deadline"]),
        (("snapshot", "--target", "xen-4.1"), ["xen-4.17"]),
        (("ctl", "sta"), ["status"]),
        (("ctl", "snapshot", "--tar"), ["--target"]),
    ],
)
def test_bash_completion_offers(words: tuple[str, ...], offered: list[str]) -> None:
    assert complete(*words) == offered
