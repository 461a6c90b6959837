"""The reading and rewriting pipelines of image/pipeline.py, on the spec's worked example
(section 8: CONNECTION_DATA at 0x10, WATCH_DATA 0x30, NODE_DATA 0x50 and 0x70, END 0x98)."""

from __future__ import annotations

import pytest
from golden_vectors import WORKED_EXAMPLE_V1, unhex

from xsmig_daemon.image.decoder import decode_image
from xsmig_daemon.image.encoder import encode_image
from xsmig_daemon.image.errors import ImageError, ProfileError, TruncatedImageError
from xsmig_daemon.image.pipeline import (
    CheckedEncoder,
    ImageParser,
    ImageReader,
    ImageRewrite,
    ImageRewriter,
    RecordRewriter,
)
from xsmig_daemon.image.profiles import SPEC, XEN_4_17
from xsmig_daemon.image.records import (
    End,
    GlobalQuotaData,
    Header,
    NodeData,
    Permission,
    RecordType,
    WatchData,
)

EXAMPLE = unhex(WORKED_EXAMPLE_V1)
OFFSETS = [0x10, 0x30, 0x50, 0x70, 0x98]


def test_parser_byte_by_byte() -> None:
    parser = ImageParser(SPEC)
    got = []
    for at in range(len(EXAMPLE)):
        got.extend(parser.feed(EXAMPLE[at : at + 1]))
        assert (parser.header is None) == (at < 15)
    parser.close()
    assert [item.offset for item in got] == OFFSETS
    assert [item.index for item in got] == list(range(5))
    assert parser.offset == len(EXAMPLE)
    assert parser.header == Header(1, False)


def test_errors_name_the_stream_once() -> None:
    parser = ImageParser(SPEC, name="dump.img")
    parser.feed(EXAMPLE[:0x60])
    with pytest.raises(TruncatedImageError) as caught:
        parser.close()
    assert str(caught.value) == f"dump.img: {caught.value.message}"
    assert not caught.value.message.startswith("dump.img")
    assert caught.value.offset == 0x50
    reader = ImageReader([EXAMPLE[:0x60]], SPEC, name="other")
    where = r"^other: record 2 \(NODE_DATA\) at byte 80 \(0x50\): stream ends"
    with pytest.raises(ImageError, match=where):
        list(reader)


def test_a_version_the_profile_refuses_fails_at_the_header() -> None:
    v2 = b"".join(encode_image([End()], Header(2, False)))
    parser = ImageParser(XEN_4_17, name="x")
    with pytest.raises(ProfileError, match=r"^x: at byte 8 \(0x8\): xen-4.17 loads stream"):
        parser.feed(v2[:16])


def test_record_rewriter_filters_and_converts() -> None:
    header, located = decode_image(EXAMPLE)
    rewriter = RecordRewriter(
        header, Header(2, True), SPEC, keep=lambda r: not isinstance(r, WatchData)
    )
    out = [r for item in located if (r := rewriter.rewrite(item.record)) is not None]
    assert [r.type for r in out] == [
        RecordType.CONNECTION_DATA,
        RecordType.NODE_DATA,
        RecordType.NODE_DATA,
    ]  # the watch filtered, END dropped
    assert not rewriter.report.losses


def test_rewrite_round_trip_through_the_other_byte_order() -> None:
    there = ImageRewrite([EXAMPLE], SPEC, lambda _h: Header(2, True))
    big = b"".join(there)
    assert decode_image(big)[0] == Header(2, True)
    back = ImageRewrite([big[i : i + 7] for i in range(0, len(big), 7)], SPEC, lambda _h: Header(1))
    assert b"".join(back) == EXAMPLE
    assert not there.report.losses and not back.report.losses and back.warnings == []


def test_a_refused_output_record_names_the_input_record() -> None:
    root = NodeData("/", b"", (Permission("n", 0),))
    quotas = GlobalQuotaData(domain_quotas=(("nodes", 5000),))
    source = b"".join(encode_image([quotas, root], Header(1, False)))
    header, located = decode_image(source)
    rewriter = ImageRewriter(header, XEN_4_17.newest_header, XEN_4_17)
    rewriter.preamble()
    assert rewriter.rewrite(located[0]) == b""  # 4.17 has no GLOBAL_QUOTA_DATA: dropped
    with pytest.raises(ProfileError, match="GLOBAL_DATA as the first record") as caught:
        rewriter.rewrite(located[1])
    error = caught.value
    assert (error.record_index, error.offset) == (1, located[1].offset)
    assert error.record_type == RecordType.NODE_DATA
    assert rewriter.report.losses.counts == {"global-quota": 1}


def test_checked_encoder_without_a_profile_only_encodes() -> None:
    encoder = CheckedEncoder(Header(1), None)
    data = encoder.preamble() + encoder.encode(NodeData("/a", b"", (Permission("n", 0),)))
    assert encoder.index == 1 and encoder.offset == len(data)
    checked = CheckedEncoder(Header(1), SPEC)
    checked.preamble()
    with pytest.raises(ImageError, match="'/' must come first"):
        checked.encode(NodeData("/a", b"", (Permission("n", 0),)))
