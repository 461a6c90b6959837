"""Bad input to every image command: one line on stderr, exit 1, no traceback, no hang."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from cli_helpers import assert_one_line_failure, image_path, xsmig

from xsmig_daemon.cli import main

COMMANDS = ("inspect", "verify", "diff", "convert")


def invoke(command: str, path: Path | str, tmp_path: Path) -> tuple[str, list[str]]:
    """The argument list of ``command`` reading ``path`` (diff compares it with basic.img)."""
    if command == "diff":
        return command, [str(image_path("basic.img")), str(path)]
    if command == "convert":
        return command, [str(path), str(tmp_path / "out.img")]
    return command, [str(path)]


@pytest.mark.parametrize("command", COMMANDS)
def test_empty_random_truncated_missing_and_directory(command: str, tmp_path: Path) -> None:
    empty = tmp_path / "empty.img"
    empty.write_bytes(b"")
    noise = tmp_path / "noise.img"
    noise.write_bytes(random.Random(1).randbytes(1 << 20))
    noise_with_ident = tmp_path / "noise2.img"
    noise_with_ident.write_bytes(b"xenstore\0\0\0\1\0\0\0\0" + random.Random(2).randbytes(1 << 20))
    truncated = tmp_path / "cut.img"
    truncated.write_bytes(image_path("watches.img").read_bytes()[:1000])
    for path, expected in (
        (empty, "stream ends after 0 bytes"),
        (noise, "bad header ident"),
        (noise_with_ident, ""),
        (truncated, "stream ends before the END record"),
        (tmp_path / "missing.img", "cannot open: No such file or directory"),
        (tmp_path, "Is a directory"),
    ):
        name, args = invoke(command, path, tmp_path)
        run = xsmig(name, *args)
        assert_one_line_failure(run, name, str(path))
        assert expected in run.stderr
        assert not (tmp_path / "out.img").exists()


@pytest.mark.parametrize("command", ("inspect", "verify", "convert"))
def test_empty_pipe(command: str) -> None:
    args = ["-", "-"] if command == "convert" else ["-"]
    run = xsmig(command, *args, stdin=b"")
    assert_one_line_failure(run, command, "<stdin>")
    assert run.stdout == ""


def test_every_truncation_point_of_a_real_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """In process (one subprocess per byte would take minutes): the same handler code."""
    data = image_path("basic.img").read_bytes()
    cut = tmp_path / "cut.img"
    for size in range(len(data)):
        cut.write_bytes(data[:size])
        assert main(["verify", str(cut)]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(f"xsmig verify: {cut}: "), (size, err)


def test_random_byte_flips(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = image_path("watches.img").read_bytes()
    rng = random.Random(3)
    flipped = tmp_path / "flip.img"
    failures = 0
    for _ in range(400):
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            mutated[rng.randrange(len(mutated))] ^= 1 << rng.randrange(8)
        flipped.write_bytes(bytes(mutated))
        code = main(["verify", str(flipped)])
        captured = capsys.readouterr()
        assert code in (0, 1)
        if code == 1:
            failures += 1
            assert captured.err.count("\n") == 1, captured.err
            assert captured.err.startswith(f"xsmig verify: {flipped}: ")
        else:  # a flip inside a value, or a record type the format reserves (a warning)
            for line in captured.err.splitlines():
                assert line.startswith(f"xsmig verify: {flipped}: warning: "), line
    assert failures > 100  # most flips hit lengths, types, NULs or padding


def test_flips_end_to_end(tmp_path: Path) -> None:
    data = bytearray(image_path("basic.img").read_bytes())
    data[20] ^= 0xFF  # the first record's len: the stream no longer frames
    bad = tmp_path / "bad.img"
    bad.write_bytes(bytes(data))
    for command in COMMANDS:
        name, args = invoke(command, bad, tmp_path)
        assert_one_line_failure(xsmig(name, *args), name, str(bad))
