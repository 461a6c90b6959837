"""Bad input: every failure is an ImageError whose one-line message says where it happened."""

from __future__ import annotations

import random
import struct
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest
from golden_vectors import HEADER_V1_LE, HEADER_V2_BE, WORKED_EXAMPLE_V1, unhex
from hypothesis import given, settings
from hypothesis import strategies as st
from image_strategies import streams
from real_images import IMAGE_IDS, IMAGES, walk_frames

from xsmig_daemon.image.decoder import ImageDecoder, Located
from xsmig_daemon.image.encoder import encode_image
from xsmig_daemon.image.errors import FramingError, ImageError, TruncatedImageError
from xsmig_daemon.image.pipeline import read_image
from xsmig_daemon.image.records import End, Header, Record, UnknownRecord

EXAMPLE = unhex(WORKED_EXAMPLE_V1)
END = bytes(8)
# Offsets of the worked example's records (spec section 8).
CONN, WATCH, ROOT, LOCAL, END_AT = 0x10, 0x30, 0x50, 0x70, 0x98


def decode_all(chunks: Iterable[bytes]) -> list[Located]:
    decoder = ImageDecoder()
    got: list[Located] = []
    for chunk in chunks:
        decoder.feed(chunk)
        got.extend(decoder.records())
    decoder.close()
    return got


def failure(data: bytes, kind: type[ImageError] = FramingError) -> ImageError:
    """Decode ``data`` whole and byte by byte; both must fail alike with ``kind``."""
    with pytest.raises(kind) as whole:
        decode_all([data])
    with pytest.raises(kind) as bytewise:
        decode_all(data[i : i + 1] for i in range(len(data)))
    position = (whole.value.record_index, whole.value.offset, whole.value.record_type)
    assert (bytewise.value.record_index, bytewise.value.offset, bytewise.value.record_type) == (
        position
    )
    assert "\n" not in str(whole.value)
    return whole.value


def assert_at_record(error: ImageError, index: int, offset: int) -> None:
    message = str(error)
    assert (error.record_index, error.offset) == (index, offset), message
    assert f"record {index}" in message
    assert f"byte {offset}" in message
    assert "\n" not in message


def assert_at_header(error: ImageError, offset: int) -> None:
    message = str(error)
    assert error.record_index is None
    assert error.offset == offset
    assert f"byte {offset}" in message
    assert "\n" not in message


def patched(data: bytes, offset: int, hex_bytes: str) -> bytes:
    new = unhex(hex_bytes)
    return data[:offset] + new + data[offset + len(new) :]


# ---- truncation ------------------------------------------------------------------------------


def _frame_at(frames: list[tuple[int, int, int]], position: int) -> tuple[int, int]:
    """(index, offset) of the record a stream cut at ``position`` leaves incomplete."""
    for index, (offset, _, length) in enumerate(frames):
        if position < offset + 8 + length:
            return index, offset
    raise AssertionError(position)


@pytest.mark.parametrize("path", IMAGES, ids=IMAGE_IDS)
def test_every_truncation_point_fed_at_once(path: Path) -> None:
    data = path.read_bytes()
    frames = list(walk_frames(data))
    # Every cut of the small images, a seeded sample of the big ones.
    sizes: Sequence[int] = range(len(data))
    if len(data) > 20_000:
        sizes = sorted(random.Random(len(data)).sample(sizes, 200))
    for size in sizes:
        with pytest.raises(TruncatedImageError) as info:
            decode_all([data[:size]])
        if size < 16:
            assert_at_header(info.value, 0)
            assert "header" in str(info.value)
        else:
            assert_at_record(info.value, *_frame_at(frames, size))


@pytest.mark.parametrize("path", IMAGES, ids=IMAGE_IDS)
def test_every_truncation_point_while_feeding_byte_by_byte(path: Path) -> None:
    data = path.read_bytes()
    frames = list(walk_frames(data))
    decoder = ImageDecoder()
    index = 0
    for size in range(len(data)):
        try:  # pytest.raises is too slow for 400k iterations
            decoder.close()
        except TruncatedImageError as error:
            if size >= 16:
                while size >= frames[index][0] + 8 + frames[index][2]:
                    index += 1
                assert (error.record_index, error.offset) == (index, frames[index][0])
        else:
            raise AssertionError(f"close() after {size} bytes did not raise")
        decoder.feed(data[size : size + 1])
        for _ in decoder.records():
            pass
    decoder.close()


def test_read_image_reports_truncation() -> None:
    with pytest.raises(TruncatedImageError) as info:
        list(read_image([EXAMPLE[:0x60]], "spec"))
    assert_at_record(info.value, 2, ROOT)


# ---- random damage ---------------------------------------------------------------------------


def _decode_or_image_error(data: bytes) -> None:
    try:
        decode_all([data])
    except ImageError as error:
        assert "\n" not in str(error)
        assert "byte" in str(error)


@pytest.mark.parametrize("path", IMAGES, ids=IMAGE_IDS)
def test_seeded_random_byte_flips(path: Path) -> None:
    data = path.read_bytes()
    rng = random.Random(path.name)
    for _ in range(300 if len(data) < 20_000 else 40):
        damaged = bytearray(data)
        for _ in range(rng.choice((1, 1, 2, 5))):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        _decode_or_image_error(bytes(damaged))
        for profile in ("spec", "xen-4.17"):
            try:
                list(read_image([bytes(damaged)], profile))
            except ImageError as error:
                assert "\n" not in str(error)


@settings(max_examples=300, deadline=None)
@given(flips=st.lists(st.tuples(st.integers(0, len(EXAMPLE) - 1), st.integers(0, 255)), max_size=4))
def test_hypothesis_byte_flips_of_the_worked_example(flips: list[tuple[int, int]]) -> None:
    damaged = bytearray(EXAMPLE)
    for position, value in flips:
        damaged[position] = value
    _decode_or_image_error(bytes(damaged))


@settings(max_examples=300, deadline=None)
@given(garbage=st.binary(max_size=200))
def test_hypothesis_garbage_after_a_valid_header(garbage: bytes) -> None:
    for header in (HEADER_V1_LE, HEADER_V2_BE):
        _decode_or_image_error(header + garbage)


def test_one_megabyte_of_random_bytes() -> None:
    noise = random.Random(1).randbytes(1 << 20)
    error = failure(noise[:4096])  # byte-wise comparison on a prefix keeps it quick
    assert_at_header(error, 0)
    with pytest.raises(FramingError):
        decode_all(noise[i : i + 65536] for i in range(0, len(noise), 65536))


def test_one_megabyte_of_random_bytes_after_a_valid_header() -> None:
    noise = random.Random(2).randbytes(1 << 20)
    with pytest.raises(ImageError) as info:
        decode_all([HEADER_V1_LE, *(noise[i : i + 65536] for i in range(0, len(noise), 65536))])
    assert "\n" not in str(info.value)
    assert "record" in str(info.value)


def test_one_megabyte_of_zeros_after_a_valid_header() -> None:
    # Zeros read as an END record (type 0, len 0) followed by trailing bytes.
    error = failure(HEADER_V1_LE + bytes(1 << 20))
    assert "after the END record" in str(error)


def test_empty_input() -> None:
    error = failure(b"", TruncatedImageError)
    assert_at_header(error, 0)
    with pytest.raises(TruncatedImageError):
        decode_all([b"", b"", b""])
    with pytest.raises(TruncatedImageError):
        list(read_image([], "spec"))


# ---- header ----------------------------------------------------------------------------------


@pytest.mark.parametrize("ident", ["xenstorE", "XENSTORE", "xenstor\0", "\0" * 8])
def test_bad_ident(ident: str) -> None:
    error = failure(ident.encode("latin-1") + EXAMPLE[8:])
    assert_at_header(error, 0)
    assert "ident" in str(error)


@pytest.mark.parametrize("version", ["00000000", "00000003", "ffffffff", "01000000"])
def test_bad_version(version: str) -> None:
    error = failure(patched(EXAMPLE, 8, version))
    assert_at_header(error, 8)
    assert "version" in str(error)


@pytest.mark.parametrize("flags", ["00000002", "00000003", "80000000", "01000000"])
def test_reserved_flag_bits(flags: str) -> None:
    error = failure(patched(EXAMPLE, 12, flags))
    assert_at_header(error, 12)
    assert "flag" in str(error)


def test_little_endian_body_under_a_big_endian_flag() -> None:
    # Every len now reads as a huge big-endian number: the stream never completes.
    error = failure(patched(EXAMPLE, 12, "00000001"), TruncatedImageError)
    assert_at_record(error, 0, CONN)


# ---- lengths ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "length", "index"),
    [
        (CONN + 4, "10000000", 0),  # CONNECTION_DATA shorter than its 24 fixed bytes
        (CONN + 4, "00000000", 0),
        (WATCH + 4, "10000000", 1),  # strings run past len
        (WATCH + 4, "08000000", 1),
        (WATCH + 4, "20000000", 1),  # swallows the next record header: non-zero "padding"
        (ROOT + 4, "10000000", 2),
        (LOCAL + 4, "18000000", 3),
        (END_AT + 4, "08000000", 4),  # END must have len 0
    ],
)
def test_wrong_record_len(offset: int, length: str, index: int) -> None:
    error = failure(patched(EXAMPLE, offset, length) + bytes(64))
    assert_at_record(error, index, offset - 4)


def test_len_past_the_end_is_a_truncation() -> None:
    error = failure(patched(EXAMPLE, ROOT + 4, "f8ffffff"), TruncatedImageError)
    assert_at_record(error, 2, ROOT)


@pytest.mark.parametrize(
    ("offset", "value", "index", "where"),
    [
        (0x3C, "0800", 1, WATCH),  # wpath-len one more: "/local\0t" not NUL-terminated
        (0x3C, "0000", 1, WATCH),  # wpath-len 0 cannot hold the NUL
        (0x3E, "0500", 1, WATCH),  # token-len past the body
        (0x60, "0300", 2, ROOT),  # path-len 3: "/\0\0" has a NUL before its end
        (0x60, "0000", 2, ROOT),
        (0x62, "0300", 2, ROOT),  # value-len past the body
        (0x66, "0200", 2, ROOT),  # perm-count 2: fields need more than len
        (0x2C, "0100", 0, CONN),  # in-data-len 1 in a 24-byte body
        (0x2C, "0000 0100", 0, CONN),  # out-resp-len 1 > out-data-len 0
    ],
)
def test_inner_lengths_disagree_with_len(offset: int, value: str, index: int, where: int) -> None:
    error = failure(patched(EXAMPLE, offset, value))
    assert_at_record(error, index, where)


def test_unpadded_len_with_non_zero_alignment_bytes() -> None:
    # WATCH_DATA with len 19 (unpadded form) is fine while the 5 alignment bytes are zero...
    unpadded = patched(EXAMPLE, WATCH + 4, "13000000")
    assert [item.offset for item in decode_all([unpadded])] == [CONN, WATCH, ROOT, LOCAL, END_AT]
    # ...and a framing error when one is not.
    error = failure(patched(unpadded, 0x4F, "01"))
    assert_at_record(error, 1, WATCH)


# ---- padding, reserved fields, terminators ---------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "index", "where"),
    [
        (0x4F, 1, WATCH),  # watch padding
        (0x6F, 2, ROOT),  # node padding
        (0x97, 3, LOCAL),  # node padding
        (0x24, 0, CONN),  # socket conn-spec pad
        (0x1E, 0, CONN),  # fields: reserved bit 1
        (0x1C, 0, CONN),  # conn-type 1 -> 0x..: reserved type
        (0x69, 2, ROOT),  # perm flags: reserved bit 1
        (0x64, 2, ROOT),  # access bits on a committed node
        (0x5C, 2, ROOT),  # tx-id on a committed node
    ],
)
def test_non_zero_padding_and_reserved_fields(offset: int, index: int, where: int) -> None:
    error = failure(patched(EXAMPLE, offset, "02"))
    assert_at_record(error, index, where)


def test_reserved_access_bits_on_a_transaction_node() -> None:
    node = unhex("05000000 18000000 02000000 05000000 0300 0100 0500 0100 72000000 2f6100 78")
    tx = unhex("04000000 08000000 02000000 05000000")
    conn = EXAMPLE[CONN:WATCH].replace(b"\x01\x00\x00\x00\x01\x00", b"\x02\x00\x00\x00\x01\x00")
    error = failure(HEADER_V1_LE + conn + tx + node + END)
    assert_at_record(error, 2, 16 + 32 + 16)


def test_non_zero_pad_before_unique_id() -> None:
    record = unhex("""
        02000000 28000000 02000000 0000 0100 0700 f47f 09000000 0300 0000 00000000
        aabbcc 0000000100 0700000000000000
    """)
    error = failure(HEADER_V1_LE + record + END)
    assert_at_record(error, 0, 16)


def test_unique_id_flag_without_room_for_it() -> None:
    record = unhex("02000000 18000000 01000000 0000 0100 0000 f47f 02000000 0000 0000 00000000")
    error = failure(HEADER_V1_LE + record + END)
    assert_at_record(error, 0, 16)


def test_watch_ext_with_c_head_layout_is_rejected_by_a_doc_only_decoder() -> None:
    # C 4.22's loader reads wpath at body offset 10 (no pad): bytes 10-11 hold "/v". The
    # default decoder detects that layout (tests/image/test_watchext.py); told "doc", it refuses.
    record = unhex("08000000 18000000 01000000 0400 0200 0200 2f766d00 7400 0000000000000000")
    decoder = ImageDecoder(watch_ext_layout="doc")
    decoder.feed(HEADER_V2_BE[:15] + b"\0" + record + END)
    with pytest.raises(FramingError) as caught:
        list(decoder.records())
    assert_at_record(caught.value, 0, 16)
    assert "not the documented layout" in str(caught.value)


@pytest.mark.parametrize(
    ("offset", "index", "where"),
    [
        (0x46, 1, WATCH),  # wpath NUL
        (0x4A, 1, WATCH),  # token NUL
        (0x6D, 2, ROOT),  # "/" NUL
        (0x96, 3, LOCAL),  # "/local" NUL
    ],
)
def test_missing_nul(offset: int, index: int, where: int) -> None:
    error = failure(patched(EXAMPLE, offset, "78"))
    assert_at_record(error, index, where)
    assert "NUL" in str(error)


def test_nul_inside_a_watch_path() -> None:
    error = failure(patched(EXAMPLE, 0x42, "00"))
    assert_at_record(error, 1, WATCH)


def test_quota_name_without_nul() -> None:
    # n-dom 0, n-glob 1, value 4096, name "memory1" + NUL filling the body exactly.
    good = unhex("06000000 10000000 0000 0100 00100000 6d656d6f72793100")
    assert decode_all([HEADER_V1_LE + good + END])[0].record.type == 6
    error = failure(HEADER_V1_LE + good[:-1] + b"x" + END)
    assert_at_record(error, 0, 16)
    assert "NUL" in str(error)


def test_more_quota_values_than_len_holds() -> None:
    record = unhex("07000000 08000000 0100 0900 00000000")
    error = failure(HEADER_V1_LE + record + END)
    assert_at_record(error, 0, 16)


# ---- END ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("extra", [b"\0", bytes(8), EXAMPLE[WATCH:ROOT], b"junk"])
def test_data_after_end(extra: bytes) -> None:
    error = failure(EXAMPLE + extra)
    assert "after the END record" in str(error)
    assert "record" in str(error)
    assert f"byte {END_AT}" in str(error) or f"byte {len(EXAMPLE)}" in str(error)
    with pytest.raises(FramingError):
        decode_all([EXAMPLE, extra])


def test_missing_end() -> None:
    error = failure(EXAMPLE[:END_AT], TruncatedImageError)
    assert_at_record(error, 4, END_AT)
    assert "END" in str(error)


def test_unknown_record_type_is_kept_not_rejected() -> None:
    # Type 9 is reserved: C loaders skip it by len, so the reader keeps it verbatim.
    record = unhex("09000000 08000000 01020304 00000000")
    located = decode_all([HEADER_V1_LE + record + END])
    assert located[0].record == UnknownRecord(9, unhex("01020304 00000000"))
    assert located[1].record == End()


def test_error_positions_count_from_the_stream_start_after_compaction() -> None:
    # A long run of records first, so the decoder drops consumed bytes before the error.
    node = EXAMPLE[ROOT:LOCAL]
    count = 5000
    body = EXAMPLE[:ROOT] + node * count
    broken = body + patched(EXAMPLE[LOCAL:END_AT], 0x27, "01") + END
    offset = ROOT + len(node) * count
    for chunk_size in (7, 4096, len(broken)):
        with pytest.raises(FramingError) as info:
            decode_all(broken[i : i + chunk_size] for i in range(0, len(broken), chunk_size))
        assert_at_record(info.value, 2 + count, offset)


def test_struct_layout_of_a_record_header_is_little_endian_here() -> None:
    assert struct.unpack_from("<II", EXAMPLE, CONN) == (2, 24)


# ---- random damage to random valid streams (every record type, both orders) ----------------


@settings(max_examples=200, deadline=None)
@given(stream=streams(), data=st.data())
def test_hypothesis_damage_to_random_valid_streams(
    stream: tuple[Header, list[Record]], data: st.DataObject
) -> None:
    header, records = stream
    damaged = bytearray(b"".join(encode_image(records, header)))
    positions = st.integers(16, len(damaged) - 1)
    flips = st.lists(st.tuples(positions, st.integers(0, 255)), min_size=1, max_size=4)
    for position, value in data.draw(flips, label="flips"):
        damaged[position] = value
    _decode_or_image_error(bytes(damaged))
    for profile in ("spec", "xen-4.17", "xen-4.21"):
        try:
            list(read_image([bytes(damaged)], profile))
        except ImageError as error:
            assert "\n" not in str(error)


@settings(max_examples=100, deadline=None)
@given(stream=streams(), data=st.data())
def test_hypothesis_truncated_random_valid_streams(
    stream: tuple[Header, list[Record]], data: st.DataObject
) -> None:
    header, records = stream
    written = b"".join(encode_image(records, header))
    size = data.draw(st.integers(0, len(written) - 1), label="size")
    with pytest.raises(TruncatedImageError) as info:
        decode_all([written[:size]])
    if size >= 16:
        order = ">" if header.big_endian else "<"
        offset, index = 16, 0
        while size >= offset + 8 + struct.unpack_from(order + "I", written, offset + 4)[0]:
            offset += 8 + struct.unpack_from(order + "I", written, offset + 4)[0]
            index += 1
        assert_at_record(info.value, index, offset)


@pytest.mark.parametrize("record_type", range(1, 9))
@pytest.mark.parametrize("length", [0, 4, 8])
def test_short_len_is_reported_the_same_under_any_chunking(record_type: int, length: int) -> None:
    # A record whose len cannot hold its fixed fields, followed by more bytes that a careless
    # reader would take as the rest of its fields.
    record = struct.pack("<II", record_type, length) + bytes(length)
    follower = unhex("08000000 18000000 01000000 0400 0200 0200 0000 2f766d00 7400") + bytes(14)
    data = HEADER_V2_BE[:15] + b"\0" + record + follower
    cut = 16 + len(record)
    messages = set()
    for chunks in ([data], [data[:cut], data[cut:]], [data[i : i + 1] for i in range(len(data))]):
        try:
            decode_all(chunks)
        except FramingError as error:
            assert_at_record(error, 0, 16)
            messages.add(error.reason)
        else:
            assert (record_type, length) in {(1, 8), (4, 8), (6, 8), (7, 8)}  # all fields fit
    assert len(messages) <= 1, messages
