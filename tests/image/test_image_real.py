"""Images written by the real Xen 4.17 xenstored: decode, re-encode byte for byte, validate."""

from __future__ import annotations

from pathlib import Path

import pytest
from golden_vectors import VECTORS
from real_images import IMAGE_IDS, IMAGES, PEER_IMAGES, chunked, walk_frames

from xsmig_daemon.image.decoder import ImageDecoder, Located, decode_image
from xsmig_daemon.image.encoder import encode_image
from xsmig_daemon.image.pipeline import read_image
from xsmig_daemon.image.records import (
    ConnectionData,
    End,
    GlobalData,
    Header,
    NodeData,
    Permission,
    Record,
    RecordType,
    RingSpec,
    SocketSpec,
    WatchData,
)
from xsmig_daemon.image.validate import validate_records


def test_real_images_exist() -> None:
    names = {path.name for path in IMAGES}
    assert {"basic.img", "watches.img", "domains.img"} <= names
    assert len(IMAGES) >= 3


@pytest.mark.parametrize("path", IMAGES, ids=IMAGE_IDS)
def test_decodes_with_the_frames_of_an_independent_walk(path: Path) -> None:
    data = path.read_bytes()
    assert data[:16] == b"xenstore\0\0\0\1\0\0\0\0"  # 4.17: version 1, little endian
    frames = list(walk_frames(data))
    assert frames[-1][0] + 8 == len(data)  # END is the last 8 bytes
    assert all(length % 8 == 0 for _, _, length in frames)  # C pads len
    header, located = decode_image(data)
    assert header == Header(1, False)
    assert [(item.offset, int(item.record.type)) for item in located] == [
        (offset, record_type) for offset, record_type, _ in frames
    ]
    assert [item.index for item in located] == list(range(len(frames)))
    assert isinstance(located[-1].record, End)


@pytest.mark.parametrize("path", IMAGES, ids=IMAGE_IDS)
def test_read_then_write_reproduces_the_image_byte_for_byte(path: Path) -> None:
    data = path.read_bytes()
    header, located = decode_image(data)
    written = b"".join(encode_image((item.record for item in located), header))
    assert written == data


@pytest.mark.parametrize("chunk_size", [1, 3, 8, 13, 4096])
@pytest.mark.parametrize("path", IMAGES, ids=IMAGE_IDS)
def test_any_chunking_gives_the_same_records(path: Path, chunk_size: int) -> None:
    data = path.read_bytes()
    _, expected = decode_image(data)
    decoder = ImageDecoder()
    got: list[Located] = []
    for chunk in chunked(data, chunk_size):
        decoder.feed(chunk)
        got.extend(decoder.records())
    decoder.close()
    assert got == expected


@pytest.mark.parametrize("profile", ["xen-4.17", "xen-4.21", "spec"])
@pytest.mark.parametrize("path", IMAGES, ids=IMAGE_IDS)
def test_real_images_validate(path: Path, profile: str) -> None:
    data = path.read_bytes()
    header, located = decode_image(data)
    warnings = validate_records(located, header, profile)
    assert warnings == []
    streamed = list(read_image(chunked(data, 1000), profile))
    assert streamed == located


def _records(name: str) -> list[Record]:
    return [item.record for item in decode_image((PEER_IMAGES / name).read_bytes())[1]]


def test_basic_image_content_matches_its_description() -> None:
    records = _records("basic.img")
    assert isinstance(records[0], GlobalData)
    conns = [r for r in records if isinstance(r, ConnectionData)]
    dom0 = conns[0].spec
    assert isinstance(dom0, RingSpec)
    assert (dom0.domid, dom0.tdomid) == (0, 0x7FF4)
    requester = conns[-1]
    assert isinstance(requester.spec, SocketSpec)
    # The stored reply to the live-update command: XS_CONTROL, len 3, "OK\0".
    assert requester.out_data[12:] == b"\x03\0\0\0OK\0"
    assert len(requester.out_data) == 19
    nodes = {r.path: r for r in records if isinstance(r, NodeData)}
    assert nodes["/perm/node"].perms[:3] == (
        Permission("b", 0),
        Permission("r", 1, stale=nodes["/perm/node"].perms[1].stale),
        Permission("w", 2, stale=nodes["/perm/node"].perms[2].stale),
    )
    assert len(nodes["/bin/value"].value) == 256
    assert "/emptydir" in nodes
    # 4.17 order: specials before the tree, the tree from '/'.
    paths = [r.path for r in records if isinstance(r, NodeData)]
    assert paths[:3] == ["@releaseDomain", "@introduceDomain", "/"]


def test_watches_image_content_matches_its_description() -> None:
    records = _records("watches.img")
    watches = {(r.path, r.token) for r in records if isinstance(r, WatchData)}
    assert {
        ("/vm", "/vm"),
        ("/local/domain/0/name", "tokA"),
        ("name", "relative-tok"),
        ("@releaseDomain", "rel"),
        ("@introduceDomain", "intro"),
    } <= watches


def test_domains_image_content_matches_its_description() -> None:
    records = _records("domains.img")
    rings = [r.spec for r in records if isinstance(r, ConnectionData)]
    assert [s.domid for s in rings if isinstance(s, RingSpec)] == [0, 1, 2]
    dom2 = next(s for s in rings if isinstance(s, RingSpec) and s.domid == 2)
    assert dom2.tdomid == 1
    intro = next(r for r in records if isinstance(r, NodeData) and r.path == "@introduceDomain")
    assert intro.perms == (Permission("n", 0), Permission("r", 1))
    assert all(r.type != RecordType.DOMAIN_DATA for r in records)


def test_hand_written_vectors_occur_verbatim_in_a_real_image() -> None:
    # The golden vectors were typed from the spec; C 4.17 wrote the same bytes.
    data = (PEER_IMAGES / "domains.img").read_bytes()
    by_name = {vector.name: vector.hex_for(False) for vector in VECTORS}
    assert data[0x80:0xA0] == by_name["conn-ring-tdomid"]
    assert data[0xA0:0xD8] == by_name["conn-socket-lu-reply"]
    assert data[0xD8:0x108] == by_name["node-special"]
    assert data[0x140:0x160] == by_name["node-root"]
    assert data[-8:] == by_name["end"]
