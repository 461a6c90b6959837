"""The incremental decoder's interface: next_record(), records(), close(), positions."""

from __future__ import annotations

import pytest
from golden_vectors import WORKED_EXAMPLE_RECORDS, WORKED_EXAMPLE_V1, unhex

from xsmig_daemon.image.decoder import ImageDecoder, Located
from xsmig_daemon.image.errors import FramingError, TruncatedImageError
from xsmig_daemon.image.records import Header

EXAMPLE = unhex(WORKED_EXAMPLE_V1)
OFFSETS = [0x10, 0x30, 0x50, 0x70, 0x98]


def test_next_record_advances_index_and_stops_after_end() -> None:
    decoder = ImageDecoder()
    decoder.feed(EXAMPLE)
    got: list[Located] = []
    while (item := decoder.next_record()) is not None:
        got.append(item)
    assert [(item.index, item.offset) for item in got] == list(enumerate(OFFSETS))
    assert tuple(item.record for item in got) == WORKED_EXAMPLE_RECORDS
    assert decoder.ended
    assert decoder.next_record() is None
    decoder.close()


def test_next_record_and_records_can_be_mixed_byte_by_byte() -> None:
    decoder = ImageDecoder()
    got: list[Located] = []
    for position, byte in enumerate(EXAMPLE):
        decoder.feed(bytes([byte]))
        if position % 2:
            got.extend(decoder.records())
        elif (item := decoder.next_record()) is not None:
            got.append(item)
    got.extend(decoder.records())
    assert [(item.index, item.offset) for item in got] == list(enumerate(OFFSETS))
    decoder.close()


def test_header_is_known_once_16_bytes_arrived() -> None:
    decoder = ImageDecoder()
    decoder.feed(EXAMPLE[:15])
    assert decoder.next_record() is None
    assert decoder.header is None
    decoder.feed(EXAMPLE[15:16])
    assert decoder.next_record() is None
    assert decoder.header == Header(1, False)
    assert decoder.offset == 16


def test_offset_tracks_consumed_bytes() -> None:
    decoder = ImageDecoder()
    decoder.feed(EXAMPLE[:0x40])
    list(decoder.records())
    assert decoder.offset == 0x30  # the watch record is not complete yet
    decoder.feed(EXAMPLE[0x40:])
    list(decoder.records())
    assert decoder.offset == len(EXAMPLE)


def test_feeding_after_end_is_an_error_naming_the_position() -> None:
    decoder = ImageDecoder()
    decoder.feed(EXAMPLE)
    list(decoder.records())
    with pytest.raises(FramingError) as info:
        decoder.feed(b"\0")
    message = str(info.value)
    assert "after the END record" in message
    assert "byte" in message


def test_allow_trailing_ignores_bytes_after_end() -> None:
    decoder = ImageDecoder(allow_trailing=True)
    decoder.feed(EXAMPLE + b"junk")
    assert len(list(decoder.records())) == len(OFFSETS)
    decoder.feed(b"more junk")
    assert decoder.next_record() is None
    decoder.close()


def test_close_before_end_names_the_incomplete_record() -> None:
    decoder = ImageDecoder()
    decoder.feed(EXAMPLE[:0x52])
    list(decoder.records())
    with pytest.raises(TruncatedImageError) as info:
        decoder.close()
    error = info.value
    assert error.record_index == 2
    assert error.offset == 0x50
    assert "record 2" in str(error)
    assert "byte 80" in str(error)
