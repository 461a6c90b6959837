"""Small synchronous file helpers for the offline image commands.

Reading: an image path, or ``-`` for standard input, in bounded chunks (never the whole file),
as raw chunks or through the reading pipeline (``open_image``).
Writing: atomically -- the bytes go to a temporary file in the target's directory, which is
fsynced and then renamed over (``--force``) or linked to (no clobber) the target, and the
directory is fsynced; on any error the temporary file is removed. New files get mode 0600
(like C xenstored's state_dump: an image holds the whole store). A reader therefore sees
either no file / the old file, or the complete new one, never a partial image.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, BinaryIO

from .image.reader import ImageReader

if TYPE_CHECKING:
    from .image.profiles import Profile

STDIO = "-"
CHUNK_SIZE = 1 << 20


class ImageFileError(Exception):
    """A file could not be opened, read or written; ``str()`` is one line naming the path."""

    def __init__(self, path: str, reason: str, *, output: bool = False) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{display_name(path, output=output)}: {reason}")


def display_name(path: str, *, output: bool = False) -> str:
    """How messages name a path; ``-`` is standard input (or output)."""
    if path != STDIO:
        return path
    return "<stdout>" if output else "<stdin>"


def _os_reason(exc: OSError) -> str:
    return exc.strerror or exc.__class__.__name__


def read_chunks(path: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Yield the contents of ``path`` (``-`` = stdin) in chunks of at most ``chunk_size``."""
    try:
        if path == STDIO:
            stream = sys.stdin.buffer
            close = False
        else:
            stream = open(path, "rb")  # noqa: SIM115 - closed in finally below
            close = True
            if stat.S_ISDIR(os.fstat(stream.fileno()).st_mode):
                stream.close()
                raise ImageFileError(path, "is a directory")
    except OSError as exc:
        raise ImageFileError(path, f"cannot open: {_os_reason(exc)}") from None
    try:
        while True:
            try:
                chunk = stream.read(chunk_size)
            except OSError as exc:
                raise ImageFileError(path, f"read error: {_os_reason(exc)}") from None
            if not chunk:
                return
            yield chunk
    finally:
        if close:
            stream.close()


def open_image(
    path: str, profile: Profile | None, *, migration: bool = False, collect_defects: bool = False
) -> ImageReader:
    """The records of the image at ``path`` (``-`` = stdin), read in chunks, decoded and, with
    a ``profile``, validated (see ``image.pipeline``; ``collect_defects``: Xen 4.22's broken
    records are listed in ``defects`` instead of raised). Both its errors, ``ImageError`` and
    ``ImageFileError``, name the image: print ``str(exc)``."""
    return ImageReader(
        read_chunks(path),
        profile,
        migration=migration,
        collect_defects=collect_defects,
        name=display_name(path),
    )


#: Names of standard output that are written as ``-`` (a rename cannot replace them).
STDOUT_ALIASES = frozenset({"/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"})


def output_name(path: str) -> str:
    """``path`` as the writers take it: standard output under any of its names is ``-``."""
    return STDIO if path in STDOUT_ALIASES else path


def check_not_terminal(path: str) -> None:
    """An image is binary: refuse to write one to a terminal (pipe or redirect it)."""
    if path == STDIO and sys.stdout.isatty():
        raise ImageFileError(
            path, "is a terminal; redirect or pipe the image (e.g. | xsmig inspect -)", output=True
        )


def check_writable_target(path: str, *, force: bool) -> None:
    """Fail early (before any work) if ``path`` exists and ``force`` is not given, or if it
    is something ``force`` must not replace (a device, a symlink, a fifo, a socket)."""
    if path == STDIO:
        return
    if os.path.isdir(path):
        raise ImageFileError(path, "is a directory")
    if not os.path.lexists(path):
        return
    if not force:
        raise ImageFileError(path, "exists (use --force to replace it)")
    if not stat.S_ISREG(os.lstat(path).st_mode):
        raise ImageFileError(path, "is not a regular file; --force replaces only regular files")


@contextmanager
def atomic_output(path: str, *, force: bool = False) -> Iterator[BinaryIO]:
    """A binary file that becomes ``path`` only if the ``with`` block completes.

    ``-`` writes to standard output directly (not atomic: a pipe has no rename).
    """
    if path == STDIO:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    check_writable_target(path, force=force)
    directory = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    import tempfile  # noqa: PLC0415 - only writers need it (start-up of inspect/verify/diff)

    try:
        fd, tmp_path = tempfile.mkstemp(prefix=f".{base}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise ImageFileError(path, f"cannot create a temporary file: {_os_reason(exc)}") from None
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        if force:
            os.replace(tmp_path, path)
        else:
            # link() refuses an existing target, so a file created meanwhile is never clobbered.
            os.link(tmp_path, path)
            os.unlink(tmp_path)
        _fsync_dir(directory)
    except FileExistsError:
        _remove_quietly(tmp_path)
        raise ImageFileError(path, "exists (use --force to replace it)") from None
    except OSError as exc:
        _remove_quietly(tmp_path)
        raise ImageFileError(path, f"cannot write: {_os_reason(exc)}") from None
    except BaseException:
        _remove_quietly(tmp_path)
        raise


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_quietly(path: str) -> None:
    with suppress(FileNotFoundError):
        os.unlink(path)
