"""Hypothesis: byte-order and version conversions are exact whenever they report no loss."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

from hypothesis import given, settings
from hypothesis import strategies as st

# The record-stream strategies of the codec tests (tests/image has no __init__.py).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "image"))
from image_strategies import streams

from xsmig_daemon.image.compare import ImageState, compare
from xsmig_daemon.image.convert import ImageConverter
from xsmig_daemon.image.profiles import SPEC
from xsmig_daemon.image.records import ConnectionData, Header, Record, SocketSpec
from xsmig_daemon.wire.header import swap_wire_messages


def convert_all(source: Header, target: Header, records: list[Record]) -> tuple[list[Record], bool]:
    converter = ImageConverter(source, target, SPEC)
    out = [r for r in map(converter.convert, records) if r is not None]
    return out, bool(converter.report.losses)


@settings(max_examples=150, deadline=None)
@given(streams())
def test_byte_order_round_trip(stream: tuple[Header, list[Record]]) -> None:
    header, records = stream
    flipped = Header(header.version, not header.big_endian)
    there, lost_there = convert_all(header, flipped, records)
    back, lost_back = convert_all(flipped, header, there)
    if not lost_there:
        assert not lost_back
        assert back == records
        assert (
            compare(
                ImageState.from_records(header, records), ImageState.from_records(flipped, there)
            )
            == []
        )


@settings(max_examples=150, deadline=None)
@given(streams(versions=(1,)))
def test_version_round_trip(stream: tuple[Header, list[Record]]) -> None:
    header, records = stream
    v2 = Header(2, header.big_endian)
    there, lost = convert_all(header, v2, records)
    assert not lost and there == records
    back, lost = convert_all(v2, header, there)
    assert not lost and back == records


@given(st.binary(max_size=200), st.booleans())
def test_swap_is_an_involution_when_nothing_is_dropped(data: bytes, big: bool) -> None:
    once = swap_wire_messages(data, big)
    if once.dropped == 0:
        assert swap_wire_messages(once.data, not big).data == data
    else:
        assert 0 < once.dropped < 16 and once.dropped % 4
        assert swap_wire_messages(once.data, not big).data == data[: len(data) - once.dropped]


@st.composite
def wire_bytes(draw: st.DrawFn, big: bool) -> bytes:
    """Complete messages, then maybe an incomplete one (payload cut, or header cut on a field
    boundary: the cases a byte-order change converts exactly)."""
    order: Literal["little", "big"] = "big" if big else "little"
    out = b""
    for _ in range(draw(st.integers(0, 4))):
        payload = draw(st.binary(max_size=30))
        fields = [draw(st.integers(0, 0xFFFF_FFFF)) for _ in range(3)] + [len(payload)]
        out += b"".join(f.to_bytes(4, order) for f in fields) + payload
    tail = draw(st.sampled_from(["none", "payload", "header"]))
    if tail == "payload":
        payload = draw(st.binary(min_size=1, max_size=30))
        head = (0, 1, 2, len(payload) + draw(st.integers(1, 50)))
        out += b"".join(f.to_bytes(4, order) for f in head) + payload
    elif tail == "header":
        out += draw(st.binary(min_size=1, max_size=3)).ljust(4, b"\0") * draw(st.integers(1, 3))
    return out


@given(st.data(), st.booleans())
def test_pending_messages_convert_exactly(data: st.DataObject, big: bool) -> None:
    conn = ConnectionData(
        1, SocketSpec(3), in_data=data.draw(wire_bytes(big)), out_data=data.draw(wire_bytes(big))
    )
    source, target = Header(1, big), Header(1, not big)
    there, lost = convert_all(source, target, [conn])
    assert not lost
    (converted,) = there
    assert isinstance(converted, ConnectionData)
    assert len(converted.in_data) == len(conn.in_data)
    # Whatever the converted header says, it says it in the target order: decode both and compare.
    order_in: Literal["little", "big"] = "big" if big else "little"
    order_out: Literal["little", "big"] = "little" if big else "big"
    if len(conn.in_data) >= 16:
        first = [int.from_bytes(conn.in_data[i : i + 4], order_in) for i in range(0, 16, 4)]
        again = [int.from_bytes(converted.in_data[i : i + 4], order_out) for i in range(0, 16, 4)]
        assert first == again
    back, lost = convert_all(target, source, there)
    assert not lost and back == [conn]
