"""The real Xen 4.17 client tools give the same output (exit status, stdout, stderr) against
the mock as against the real 4.17 xenstored, command for command."""

from __future__ import annotations

from peerlib import MockDaemon, RealXenstored, RunningDaemon, read_line

#: (tool, args...) run in this order against a fresh daemon.
TOOL_SESSION: tuple[tuple[str, ...], ...] = (
    ("xenstore-ls", "-f", "-p", "/"),
    ("xenstore-write", "/t/a", "1", "/t/b", "two words", "/t/c", ""),
    ("xenstore-read", "/t/a", "/t/b", "/t/c"),
    ("xenstore-read", "-p", "/t/a"),
    ("xenstore-read", "/t/missing"),
    ("xenstore-exists", "/t/a"),
    ("xenstore-exists", "/t/missing"),
    ("xenstore-list", "/t"),
    ("xenstore-list", "-p", "/t"),
    ("xenstore-write", "rel/x", "relative"),
    ("xenstore-read", "/local/domain/0/rel/x"),
    ("xenstore-chmod", "/t/a", "r1", "w2"),
    ("xenstore-chmod", "-r", "/t", "n0", "b3"),
    ("xenstore-ls", "-f", "-p", "/t"),
    ("xenstore-ls", "/"),
    ("xenstore-ls", "/t/missing"),
    ("xenstore-write", "/bad path", "x"),
    ("xenstore-write", "/bin/v", "\\x00\\x01\\xff end"),
    ("xenstore-read", "/bin/v"),
    ("xenstore-ls", "-f", "/bin"),
    ("xenstore-rm", "/t/b"),
    ("xenstore-rm", "/t/b"),
    ("xenstore-rm", "-t", "/t/c"),
    ("xenstore-list", "/t"),
    ("xenstore-rm", "/nope/nope"),
    ("xenstore-control", "print", "tool session"),
    ("xenstore-control", "check"),
    ("xenstore-ls", "-f", "-p", "/"),
)


def _run(daemon: RunningDaemon) -> list[tuple[int, str, str]]:
    results = []
    for tool, *args in TOOL_SESSION:
        done = daemon.client(tool, *args, check=False)
        results.append((done.returncode, done.stdout, done.stderr))
    return results


def test_the_4_17_tools_cannot_tell_the_mock_from_the_real_daemon(
    real_xenstored: RealXenstored, mockd: MockDaemon
) -> None:
    real, mock = _run(real_xenstored), _run(mockd)
    differences = [
        f"{' '.join(command)}: real {ours!r} != mock {theirs!r}"
        for command, ours, theirs in zip(TOOL_SESSION, real, mock, strict=True)
        if ours != theirs
    ]
    assert not differences, "\n".join(differences)


def _watch(daemon: RunningDaemon) -> tuple[int, str, str]:
    """``xenstore-watch -n 4 /w`` while another tool writes /w/a, /w/b and removes /w."""
    watcher = daemon.start_client("xenstore-watch", "-n", "4", "/w")
    assert watcher.stdout is not None
    try:
        first = read_line(watcher.stdout)
        daemon.client("xenstore-write", "/w/a", "1", "/w/b", "2")
        daemon.client("xenstore-rm", "/w")
        out, err = watcher.communicate(timeout=10)
    finally:
        watcher.kill()
        watcher.wait()
    return watcher.returncode, first + out, err


def test_xenstore_watch_sees_the_same_events(
    real_xenstored: RealXenstored, mockd: MockDaemon
) -> None:
    real = _watch(real_xenstored)
    assert real == (0, "/w\n/w/a\n/w/b\n/w\n", "")
    assert _watch(mockd) == real
