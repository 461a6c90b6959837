"""The real Xen 4.17 images the tests read, and codec-independent helpers to walk them."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

from peerlib import shared_dir

TESTS_DIR = Path(__file__).resolve().parent.parent
PEER_IMAGES = shared_dir() / "peer" / "images"
DATA_IMAGES = TESTS_DIR / "data"


def real_image_paths() -> list[Path]:
    """Every real image, each distinct content once (tests/data copies some peer images)."""
    seen: set[bytes] = set()
    paths: list[Path] = []
    for path in sorted(PEER_IMAGES.glob("*.img")) + sorted(DATA_IMAGES.glob("*.img")):
        content = path.read_bytes()
        if content not in seen:
            seen.add(content)
            paths.append(path)
    return paths


IMAGES = real_image_paths()
IMAGE_IDS = [f"{path.parent.name}/{path.name}" for path in IMAGES]


def walk_frames(data: bytes) -> Iterator[tuple[int, int, int]]:
    """(offset, type, len) of each record, read with struct alone (independent of the codec)."""
    offset = 16
    while True:
        record_type, length = struct.unpack_from("<II", data, offset)
        yield offset, record_type, length
        if record_type == 0:
            return
        offset += 8 + length


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]
