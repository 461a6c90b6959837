"""xsmig_daemon/imagefile.py: chunked reading and the atomic, no-clobber output file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from xsmig_daemon.imagefile import ImageFileError, atomic_output, read_chunks


def test_read_chunks_bounded(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(bytes(range(256)) * 10)
    chunks = list(read_chunks(str(path), chunk_size=1000))
    assert [len(c) for c in chunks] == [1000, 1000, 560]
    assert b"".join(chunks) == path.read_bytes()


def test_read_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(ImageFileError, match=f"^{tmp_path}/nope: cannot open: "):
        list(read_chunks(str(tmp_path / "nope")))
    with pytest.raises(ImageFileError, match=r"[Ii]s a directory"):
        list(read_chunks(str(tmp_path)))


def test_atomic_output_appears_complete_with_private_mode(tmp_path: Path) -> None:
    target = tmp_path / "out.img"
    with atomic_output(str(target)) as out:
        out.write(b"part one ")
        assert not target.exists()  # nothing visible before the block completes
        out.write(b"part two")
    assert target.read_bytes() == b"part one part two"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["out.img"]


def test_atomic_output_error_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "out.img"
    with pytest.raises(RuntimeError), atomic_output(str(target)) as out:
        out.write(b"half")
        raise RuntimeError("producer failed")
    assert os.listdir(tmp_path) == []


def test_atomic_output_never_clobbers_without_force(tmp_path: Path) -> None:
    target = tmp_path / "out.img"
    target.write_bytes(b"old")
    with pytest.raises(ImageFileError, match="exists"), atomic_output(str(target)):
        pass
    assert target.read_bytes() == b"old"
    # A file that appears while the output is being written is not replaced either.
    late = tmp_path / "late.img"
    with pytest.raises(ImageFileError, match="exists"), atomic_output(str(late)) as out:
        out.write(b"new")
        late.write_bytes(b"someone else's")
    assert late.read_bytes() == b"someone else's"
    assert sorted(os.listdir(tmp_path)) == ["late.img", "out.img"]
    with atomic_output(str(target), force=True) as out:
        out.write(b"new")
    assert target.read_bytes() == b"new"
