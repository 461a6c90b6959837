"""The handover channel's packets (wire/handover.py): round trips and garbage."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xsmig_daemon.wire import handover as ho

json_values = st.recursive(
    st.none() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=30,
)


@given(kind=st.sampled_from(list(ho.Kind)), payload=st.binary(max_size=300))
def test_packet_round_trip(kind: ho.Kind, payload: bytes) -> None:
    assert ho.decode(ho.Packet(kind, payload).encode()) == ho.Packet(kind, payload)


@given(data=st.binary(max_size=200_000))
def test_image_bytes_are_cut_and_joined(data: bytes) -> None:
    packets = ho.image_packets(data)
    assert all(len(p.encode()) <= ho.PACKET_MAX for p in packets)
    assert b"".join(ho.decode(p.encode()).payload for p in packets) == data


@given(value=json_values, padding=st.integers(0, 3 * ho.PACKET_MAX))
def test_json_document_in_pieces(value: object, padding: int) -> None:
    document = {"v": value, "pad": "x" * padding}
    packets = ho.json_packets(ho.Kind.DELTA, document)
    assert all(len(p.encode()) <= ho.PACKET_MAX for p in packets)
    assert ho.json_document([p.payload for p in packets], ho.Kind.DELTA) == document


def test_greeting_and_garbage() -> None:
    ho.check_hello(ho.hello().encode())
    with pytest.raises(ho.HandoverError, match="not an xsmig successor"):
        ho.check_hello(b"HELOsomething else")
    with pytest.raises(ho.HandoverError, match="unknown packet kind b'garb'"):
        ho.decode(b"garbage!")
    with pytest.raises(ho.HandoverError, match="3-byte packet"):
        ho.decode(b"HEL")
    with pytest.raises(ho.HandoverError, match="expected LOADED, got IMAGE"):
        ho.expect(b"IMAGxx", ho.Kind.LOADED)
    with pytest.raises(ho.HandoverError, match="not JSON"):
        ho.json_document([b"{"], ho.Kind.DELTA)
    with pytest.raises(ValueError, match="too large"):
        ho.Packet(ho.Kind.IMAGE, bytes(ho.PACKET_MAX)).encode()
