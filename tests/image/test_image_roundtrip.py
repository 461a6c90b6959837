"""Property tests: random valid streams survive write -> read under any chunking."""

from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from image_strategies import cut_points, split, streams

from xsmig_daemon.image.decoder import ImageDecoder, Located, decode_image
from xsmig_daemon.image.encoder import encode_image
from xsmig_daemon.image.pipeline import read_image
from xsmig_daemon.image.records import (
    ConnectionData,
    DomainData,
    End,
    GlobalData,
    GlobalQuotaData,
    Header,
    NodeData,
    Record,
    TransactionData,
    UnknownRecord,
    WatchData,
    WatchDataExtended,
)
from xsmig_daemon.image.validate import validate_records

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def decode_chunks(chunks: list[bytes]) -> tuple[Header | None, list[Located]]:
    decoder = ImageDecoder()
    got: list[Located] = []
    for chunk in chunks:
        decoder.feed(chunk)
        got.extend(decoder.records())
    decoder.close()
    return decoder.header, got


@SETTINGS
@given(stream=streams(), data=st.data())
def test_write_then_read_under_any_chunking(
    stream: tuple[Header, list[Record]], data: st.DataObject
) -> None:
    header, records = stream
    written = b"".join(encode_image(records, header))
    assert written[:8] == b"xenstore"
    assert len(written) % 8 == 0
    cuts = data.draw(cut_points(len(written)), label="cuts")
    got_header, located = decode_chunks(split(written, cuts))
    assert got_header == header
    assert [item.record for item in located] == records
    assert [item.index for item in located] == list(range(len(records)))
    # Offsets: header, then each record's own encoded length.
    offsets = [16]
    for _ in located[:-1]:
        offsets.append(offsets[-1] + 8 + _u32(written, offsets[-1] + 4, header))
    assert [item.offset for item in located] == offsets


@SETTINGS
@given(stream=streams(), data=st.data())
def test_random_valid_streams_validate_and_stream_through_read_image(
    stream: tuple[Header, list[Record]], data: st.DataObject
) -> None:
    header, records = stream
    written = b"".join(encode_image(records, header))
    cuts = data.draw(cut_points(len(written)), label="cuts")
    located = list(read_image(split(written, cuts), "spec"))
    assert [item.record for item in located] == records
    assert validate_records(located, header, "spec") == []


@SETTINGS
@given(stream=streams())
def test_read_then_write_gives_the_same_bytes(stream: tuple[Header, list[Record]]) -> None:
    header, records = stream
    written = b"".join(encode_image(records, header))
    got_header, located = decode_image(written)
    assert b"".join(encode_image((item.record for item in located), got_header)) == written


def _u32(data: bytes, offset: int, header: Header) -> int:
    value: int = struct.unpack_from(">I" if header.big_endian else "<I", data, offset)[0]
    return value


def _n(text: str) -> int:
    """Bytes of a NUL-terminated string field."""
    return len(text.encode("utf-8", "surrogateescape")) + 1


def content_size(record: Record) -> int:
    """Body bytes before padding, from the field tables of spec section 5."""
    match record:
        case End():
            return 0
        case GlobalData() | TransactionData():
            return 8
        case ConnectionData():
            size = 24 + len(record.in_data) + len(record.out_data)
            return size if record.unique_id is None else (size + 7) // 8 * 8 + 8
        case WatchData():
            return 8 + _n(record.path) + _n(record.token)
        case WatchDataExtended():
            return 12 + _n(record.path) + _n(record.token)
        case NodeData():
            return 16 + 4 * len(record.perms) + _n(record.path) + len(record.value)
        case GlobalQuotaData():
            quotas = record.domain_quotas + record.global_quotas
            return 4 + sum(4 + _n(name) for name, _ in quotas)
        case DomainData():
            return 8 + sum(4 + _n(name) for name, _ in record.quotas)
        case UnknownRecord():
            return len(record.body)
    raise AssertionError(record)


def unpad_lens(written: bytes, header: Header, records: list[Record]) -> bytes:
    """Rewrite every record's len to exclude its padding (the design doc's wording)."""
    out = bytearray(written)
    fmt = ">I" if header.big_endian else "<I"
    offset = 16
    for record in records:
        padded = _u32(written, offset + 4, header)
        size = content_size(record)
        assert padded == (size + 7) // 8 * 8  # the writer pads len (C form)
        struct.pack_into(fmt, out, offset + 4, size)
        offset += 8 + padded
    assert offset == len(written)
    return bytes(out)


@SETTINGS
@given(stream=streams(), data=st.data())
def test_unpadded_len_form_reads_the_same_records(
    stream: tuple[Header, list[Record]], data: st.DataObject
) -> None:
    header, records = stream
    written = b"".join(encode_image(records, header))
    unpadded = unpad_lens(written, header, records)
    cuts = data.draw(cut_points(len(unpadded)), label="cuts")
    _, located = decode_chunks(split(unpadded, cuts))
    assert [item.record for item in located] == records
    _, padded_located = decode_image(written)
    assert [(item.index, item.offset) for item in located] == [
        (item.index, item.offset) for item in padded_located
    ]
