"""Socket paths the mock may take, and the only ones it may remove.

The mock's default path is the real xenstored's (``/var/run/xenstored/socket``), so it must
never harm another daemon: a path where something answers is refused, not taken over; a
path is only unlinked if it is still the very socket the mock bound (another daemon may have
replaced it since); and only the socket's own directory is created, never its parents
(``--socket /nonexistent/dir/sock`` is refused, not built).
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import stat

from .argtypes import MAX_SOCKET_PATH


class SocketPathError(OSError):
    """A socket path the mock refuses; ``str()`` is one line naming the path."""

    def __str__(self) -> str:
        return str(self.args[0])


def check_free(path: str) -> None:
    """Raise SocketPathError unless ``path`` is absent or a socket nobody listens on."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise SocketPathError(f"{path} exists and is not a socket; not replacing it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.setblocking(False)
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        return  # a stale socket left by a daemon that is gone
    except BlockingIOError:
        pass  # a listener with a full backlog: very much alive
    except OSError as exc:
        if exc.errno != errno.EAGAIN:
            raise SocketPathError(f"{path}: cannot check the socket: {exc.strerror}") from None
    finally:
        probe.close()
    raise SocketPathError(f"{path}: another daemon is listening there; not taking it over")


def make_own_directory(directory: str) -> None:
    """Create ``directory`` (one level) if missing; its parent must already exist."""
    if not directory or os.path.isdir(directory):
        return
    parent = os.path.dirname(os.path.abspath(directory))
    if not os.path.isdir(parent):
        raise SocketPathError(f"{directory}: parent directory {parent} does not exist")
    try:
        os.mkdir(directory, 0o755)
    except FileExistsError:
        pass
    except OSError as exc:
        raise SocketPathError(f"{directory}: cannot create: {exc.strerror}") from None


class OwnedPath:
    """Remembers which file sits at ``path`` now, to unlink it later only if unchanged."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._identity = _identity(path)

    def unlink(self) -> None:
        if self._identity is not None and _identity(self.path) == self._identity:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)


def _identity(path: str) -> tuple[int, int] | None:
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino)


def prepare(path: str) -> None:
    """Everything that can be said about ``path`` before binding it, as one SocketPathError."""
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        raise SocketPathError(
            f"{path}: a unix socket path is at most {MAX_SOCKET_PATH} bytes "
            f"(this one is {len(os.fsencode(path))})"
        )
    check_free(path)
    make_own_directory(os.path.dirname(path))


def listen_at(path: str, backlog: int) -> socket.socket:
    """A blocking unix listener (mode 0600) that appears at ``path`` only once it accepts.

    It is bound under a staging name and renamed over ``path`` after ``listen()``: a client
    that waits for the path to exist and then connects is never refused in between, and no
    one else can connect at any moment (the umask covers the bind). A stale socket at
    ``path`` is replaced by the rename; callers refuse a live one first (``check_free``).
    """
    staging = f"{path}.{os.getpid()}.new"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(staging)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        old_umask = os.umask(0o177)
        try:
            sock.bind(staging)
        finally:
            os.umask(old_umask)
        sock.listen(backlog)
        os.replace(staging, path)
    except OSError:
        sock.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staging)
        raise
    return sock


def first_os_error(exc: BaseException) -> OSError | None:
    """The OSError inside ``exc`` (trio wraps a task's error in exception groups), if any."""
    if isinstance(exc, OSError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = first_os_error(inner)
            if found is not None:
                return found
    return None
