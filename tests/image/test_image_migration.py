"""Migration streams (spec section 7): one domain's nodes whose ancestors the loader has."""

from __future__ import annotations

import pytest

from xsmig_daemon.image.decoder import decode_image
from xsmig_daemon.image.encoder import encode_image
from xsmig_daemon.image.errors import SemanticError
from xsmig_daemon.image.records import (
    ConnectionData,
    End,
    NodeData,
    Permission,
    Record,
    RingSpec,
    WatchData,
)
from xsmig_daemon.image.validate import validate_records

OWNED = (Permission("n", 7),)
RING = ConnectionData(1, RingSpec(7, evtchn=3))


def stream(*records: Record) -> bytes:
    return b"".join(encode_image([*records, End()]))


def warnings_of(data: bytes, *, migration: bool) -> list[str]:
    header, located = decode_image(data)
    return validate_records(located, header, "spec", migration=migration)


def test_domain_subtree_without_ancestors_is_a_valid_migration_stream() -> None:
    data = stream(
        RING,
        WatchData(1, "device", "tok"),
        NodeData("/local/domain/7", b"", OWNED),
        NodeData("/local/domain/7/name", b"guest", OWNED),
        NodeData("/local/domain/7/device/vif/0", b"", OWNED),
    )
    warnings = warnings_of(data, migration=True)
    # /local/domain and /local/domain/7/device must already exist in the loader.
    assert warnings == ["migration stream: 2 parent nodes must already exist in the loader"]


def test_the_same_stream_is_not_a_whole_tree() -> None:
    data = stream(RING, NodeData("/local/domain/7", b"", OWNED))
    with pytest.raises(SemanticError, match="'/' must come first"):
        warnings_of(data, migration=False)


@pytest.mark.parametrize(
    ("records", "reason"),
    [
        (
            [
                NodeData("/local/domain/7/name", b"x", OWNED),
                NodeData("/local/domain/7", b"", OWNED),
            ],
            "after a child",
        ),
        (
            [NodeData("/local/domain/7", b"", OWNED), NodeData("/local/domain/7", b"", OWNED)],
            "duplicate",
        ),
    ],
)
def test_parent_after_child_and_duplicates_are_still_errors(
    records: list[Record], reason: str
) -> None:
    with pytest.raises(SemanticError, match=reason) as raised:
        warnings_of(stream(RING, *records), migration=True)
    assert "record 2" in str(raised.value)
