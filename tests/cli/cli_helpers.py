"""Shared pieces of the CLI tests: the real console script, the real images, image builders."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from peerlib import shared_dir

from xsmig_daemon.image.decoder import decode_image
from xsmig_daemon.image.encoder import encode_image
from xsmig_daemon.image.records import Header, Record

TESTS_DIR = Path(__file__).resolve().parent.parent
DATA_IMAGES = TESTS_DIR / "data"
PEER_IMAGES = shared_dir() / "peer" / "images"
#: The installed console script (pyproject's [project.scripts]) next to this interpreter.
XSMIG = Path(sys.executable).parent / "xsmig"
#: No command may take longer than this on the small test images: a hang fails the test.
TIMEOUT = 60


def real_images() -> list[Path]:
    """Every image written by the real Xen 4.17 xenstored, each distinct content once."""
    seen: set[bytes] = set()
    paths: list[Path] = []
    for path in sorted(PEER_IMAGES.glob("*.img")) + sorted(DATA_IMAGES.glob("*.img")):
        content = path.read_bytes()
        if content not in seen:
            seen.add(content)
            paths.append(path)
    assert len(paths) >= 3, f"no real images found in {PEER_IMAGES} / {DATA_IMAGES}"
    return paths


REAL_IMAGES = real_images()
REAL_IDS = [f"{p.parent.name}/{p.name}" for p in REAL_IMAGES]


def image_path(name: str) -> Path:
    """A real image by file name; the shared copy first (it is the one DESCRIPTION.txt names)."""
    for directory in (PEER_IMAGES, DATA_IMAGES):
        if (directory / name).exists():
            return directory / name
    raise FileNotFoundError(name)


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def stderr_lines(self) -> list[str]:
        return self.stderr.splitlines()


def xsmig(*args: str | Path, stdin: bytes | None = None) -> Run:
    """Run the real ``xsmig`` console script; fails the test if it does not finish in time."""
    assert XSMIG.exists(), f"console script {XSMIG} missing: pip install -e '.[test]'"
    proc = subprocess.run(
        [str(XSMIG), *map(str, args)],
        input=stdin if stdin is not None else b"",
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )
    return Run(
        proc.returncode,
        proc.stdout.decode("utf-8", "replace"),
        proc.stderr.decode("utf-8", "replace"),
    )


def assert_one_line_failure(run: Run, command: str, name: str) -> None:
    """Exit 1, exactly one stderr line ``xsmig CMD: NAME: ...``, and no traceback."""
    assert run.code == 1, run
    assert "Traceback" not in run.stderr, run.stderr
    assert len(run.stderr_lines) == 1, run.stderr
    assert run.stderr_lines[0].startswith(f"xsmig {command}: {name}: "), run.stderr


def read_records(path: Path) -> tuple[Header, list[Record]]:
    header, located = decode_image(path.read_bytes())
    return header, [item.record for item in located]


def write_image(path: Path, records: Iterable[Record], header: Header | None = None) -> Path:
    path.write_bytes(b"".join(encode_image(records, header or Header())))
    return path


def same_files(paths: Sequence[Path]) -> bool:
    first = paths[0].read_bytes()
    return all(p.read_bytes() == first for p in paths[1:])
