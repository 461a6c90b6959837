"""Hand-written golden vectors: encode(record) == bytes and decode(bytes) == record."""

from __future__ import annotations

import pytest
from golden_vectors import (
    END_BE,
    END_LE,
    HEADERS,
    VECTORS,
    WORKED_EXAMPLE_RECORDS,
    WORKED_EXAMPLE_V1,
    Vector,
    unhex,
)

from xsmig_daemon.image.decoder import ImageDecoder, decode_image
from xsmig_daemon.image.encoder import RecordEncoder, encode_image
from xsmig_daemon.image.errors import EncodeError
from xsmig_daemon.image.records import DomainData, End, Header, Record, WatchDataExtended

CASES = [
    pytest.param(
        vector, version, big_endian, id=f"{vector.name}-v{version}-{'be' if big_endian else 'le'}"
    )
    for vector in VECTORS
    for version in vector.versions
    for big_endian in (False, True)
]


def test_every_record_type_has_a_vector() -> None:
    types = {vector.record.type for vector in VECTORS}
    assert types == set(range(9))


def test_c_head_default_quotas_make_a_160_byte_body() -> None:
    (vector,) = [v for v in VECTORS if v.name == "global-quota-c-head-defaults"]
    assert len(vector.hex_for(False)) == len(vector.hex_for(True)) == 8 + 160


def test_vectors_are_8_byte_aligned_and_len_matches() -> None:
    for vector in VECTORS:
        for big_endian in (False, True):
            raw = vector.hex_for(big_endian)
            assert len(raw) % 8 == 0, vector.name
            length = int.from_bytes(raw[4:8], "big" if big_endian else "little")
            assert length == len(raw) - 8, vector.name


@pytest.mark.parametrize("header_key", sorted(HEADERS))
def test_preamble(header_key: tuple[int, bool]) -> None:
    version, big_endian = header_key
    encoder = RecordEncoder(Header(version, big_endian))
    assert encoder.preamble() == HEADERS[header_key]


@pytest.mark.parametrize(("vector", "version", "big_endian"), CASES)
def test_encode_matches_hand_written_bytes(vector: Vector, version: int, big_endian: bool) -> None:
    encoder = RecordEncoder(Header(version, big_endian))
    assert encoder.encode(vector.record).hex() == vector.hex_for(big_endian).hex()


@pytest.mark.parametrize(("vector", "version", "big_endian"), CASES)
def test_decode_hand_written_bytes(vector: Vector, version: int, big_endian: bool) -> None:
    end = END_BE if big_endian else END_LE
    raw = vector.hex_for(big_endian)
    stream = HEADERS[version, big_endian] + raw
    expected: list[Record] = [vector.record]
    if vector.name != "end":
        stream += end
        expected.append(End())
    header, located = decode_image(stream)
    assert header == Header(version, big_endian)
    assert [item.record for item in located] == expected
    assert [item.offset for item in located] == [16, 16 + len(raw)][: len(expected)]
    assert [item.index for item in located] == list(range(len(expected)))


@pytest.mark.parametrize(("vector", "version", "big_endian"), CASES)
def test_decode_hand_written_bytes_one_byte_at_a_time(
    vector: Vector, version: int, big_endian: bool
) -> None:
    stream = HEADERS[version, big_endian] + vector.hex_for(big_endian)
    if vector.name != "end":
        stream += END_BE if big_endian else END_LE
    decoder = ImageDecoder()
    records: list[Record] = []
    for byte in stream:
        decoder.feed(bytes([byte]))
        records.extend(item.record for item in decoder.records())
    decoder.close()
    assert records[0] == vector.record
    assert len(records) == (1 if vector.name == "end" else 2)


@pytest.mark.parametrize("version", [1, 2])
def test_worked_example_of_section_8_encodes_byte_for_byte(version: int) -> None:
    expected = bytearray(unhex(WORKED_EXAMPLE_V1))
    assert len(expected) == 0xA0
    expected[0x0B] = version  # "for version 2 change byte 0x0b from 01 to 02"
    written = b"".join(encode_image(WORKED_EXAMPLE_RECORDS, Header(version, False)))
    assert written.hex() == bytes(expected).hex()


@pytest.mark.parametrize("version", [1, 2])
def test_worked_example_of_section_8_decodes(version: int) -> None:
    raw = bytearray(unhex(WORKED_EXAMPLE_V1))
    raw[0x0B] = version
    header, located = decode_image(bytes(raw))
    assert header == Header(version, False)
    assert tuple(item.record for item in located) == WORKED_EXAMPLE_RECORDS
    assert [item.offset for item in located] == [0x10, 0x30, 0x50, 0x70, 0x98]
    assert [item.index for item in located] == [0, 1, 2, 3, 4]


def test_worked_example_without_explicit_end_gets_one() -> None:
    written = b"".join(encode_image(WORKED_EXAMPLE_RECORDS[:-1], Header(1, False)))
    assert written == unhex(WORKED_EXAMPLE_V1)


@pytest.mark.parametrize("big_endian", [False, True])
def test_v1_domain_features_are_ignored_when_read(big_endian: bool) -> None:
    # Spec 5.9: features is "version 1: write 0, ignore".
    body = (
        "07000000 08000000 0300 0000 0e000000"
        if not big_endian
        else ("00000007 00000008 0003 0000 0000000e")
    )
    end = END_BE if big_endian else END_LE
    _, located = decode_image(HEADERS[1, big_endian] + unhex(body) + end)
    assert located[0].record == DomainData(3, features=0)


@pytest.mark.parametrize("big_endian", [False, True])
def test_v1_cannot_hold_v2_only_items(big_endian: bool) -> None:
    encoder = RecordEncoder(Header(1, big_endian))
    with pytest.raises(EncodeError):
        encoder.encode(WatchDataExtended(1, "/a", "t", depth=1))
    with pytest.raises(EncodeError):
        encoder.encode(DomainData(0, features=14))


@pytest.mark.parametrize("version", [0, 3])
def test_encoder_refuses_unknown_versions(version: int) -> None:
    with pytest.raises(EncodeError):
        RecordEncoder(Header(version, False))
