"""The image commands stream: peak memory stays flat on a 300,000-node image."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from cli_helpers import TIMEOUT, XSMIG

from xsmig_daemon.image.encoder import encode_image
from xsmig_daemon.image.records import GlobalData, NodeData, Permission, Record

NODES = 300_000
#: Decoded and kept, 300,000 NodeData records would take well over 100 MB on their own.
RSS_LIMIT_KIB = 80 * 1024

#: A parent whose only child is the command, so RUSAGE_CHILDREN is that command's peak RSS.
MEASURE = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
    "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


def many_nodes() -> Iterator[Record]:
    perms = (Permission("n", 0), Permission("r", 7))
    yield GlobalData()
    yield NodeData("/", b"", perms)
    yield NodeData("/data", b"", perms)
    for i in range(NODES - 2):
        yield NodeData(f"/data/item{i}", b"value %d of a node" % i, perms)


def peak_rss_kib(*args: str | Path) -> tuple[int, int]:
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, str(XSMIG), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 2,
        check=True,
    ).stdout.split()
    return int(out[0]), int(out[1])


def test_inspect_verify_convert_stay_small(tmp_path: Path) -> None:
    image = tmp_path / "many.img"
    with image.open("wb") as out:
        for chunk in encode_image(many_nodes()):
            out.write(chunk)
    assert image.stat().st_size > 15_000_000
    for args in (
        ("inspect", image),
        ("inspect", "--records", image),
        ("convert", image, tmp_path / "big.img", "--endian", "big"),
    ):
        code, rss = peak_rss_kib(*args)
        assert code == 0, args
        assert rss < RSS_LIMIT_KIB, (args, rss)
    code, rss = peak_rss_kib("verify", image)
    assert code == 0
    # The validator keeps one 64-bit hash per committed path (validate.py); allow for it.
    assert rss < RSS_LIMIT_KIB + NODES * 100 // 1024
