"""store/txfate.py: the source's verdict on a migrated transaction, and its words."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from xsmig_daemon.store import Engine
from xsmig_daemon.store.migration import (
    ImportRefusedError,
    apply_import,
    domain_records,
    plan_import,
    transaction_fates,
)
from xsmig_daemon.store.txfate import FateError, parse_fates
from xsmig_daemon.wire.ops import Op

from .engine_client import EngineClient
from .test_migration import source_state, through_bytes

Guest = Callable[[int], EngineClient]


def test_a_written_node_changed_elsewhere_travels_as_eagain(
    engine: Engine, dom0: EngineClient, guest: Guest
) -> None:
    """The case the stream alone gets wrong: the transaction's copy of the node it wrote
    hides that the committed node changed."""
    dom7 = source_state(dom0, guest)
    written = dom7.start()
    dom7.write("data/key", "mine", tx=written)
    failed = dom7.start()
    assert dom7.error(Op.WRITE, "data/key", value=b"v" * 3000, tx=failed) == "ENOSPC"
    clean = dom7.start()
    dom7.write("data/sub/leaf", "x", tx=clean)
    dom0.write("/local/domain/7/data/key", "theirs")
    words = transaction_fates(engine, 7)
    assert words == [b"%d:EAGAIN" % written, b"%d:ENOMEM" % failed]

    records = through_bytes(list(domain_records(engine, 7)))
    for fates, answer in (({}, "OK"), (parse_fates(words), "EAGAIN")):
        dest = Engine()
        apply_import(dest, plan_import(dest, records, 12, fates=fates))
        conn = dest.domain_connection(12)
        assert conn is not None
        moved = EngineClient(dest, conn)
        end = moved.call(Op.TRANSACTION_END, "T", tx=written)
        assert end.payload.rstrip(b"\0").decode() == answer
        assert moved.error(Op.TRANSACTION_END, "T", tx=failed) == ("ENOMEM" if fates else "EAGAIN")
        assert moved.ok(Op.TRANSACTION_END, "T", tx=clean) == b"OK\0"


def test_a_node_found_missing_is_left_out(engine: Engine, dom0: EngineClient, guest: Guest) -> None:
    """The format has no record for it; its directory (read too) carries the conflict."""
    dom7 = source_state(dom0, guest)
    tx = dom7.start()
    assert dom7.error(Op.READ, "data/none", tx=tx) == "ENOENT"
    records = through_bytes(list(domain_records(engine, 7)))  # valid: no permless READ node
    dest = Engine()
    apply_import(dest, plan_import(dest, records, 12))
    EngineClient(dest, dest.connect_socket(fd=9)).write("/local/domain/12/data/none", "now")
    conn = dest.domain_connection(12)
    assert conn is not None
    assert EngineClient(dest, conn).error(Op.TRANSACTION_END, "T", tx=tx) == "EAGAIN"


@pytest.mark.parametrize("word", [b"x:EAGAIN", b"3:EBUSY", b"3", b":EAGAIN", b"-1:ENOMEM"])
def test_bad_words(word: bytes) -> None:
    with pytest.raises(FateError, match="transaction fate"):
        parse_fates([word])


def test_a_duplicate_or_unknown_transaction_is_refused(
    engine: Engine, dom0: EngineClient, guest: Guest
) -> None:
    with pytest.raises(FateError):
        parse_fates([b"1:EAGAIN", b"1:ENOMEM"])
    source_state(dom0, guest)
    records = through_bytes(list(domain_records(engine, 7)))
    with pytest.raises(ImportRefusedError, match="names transaction 4, not in the stream"):
        plan_import(Engine(), records, 12, fates={4: b"EAGAIN"})
