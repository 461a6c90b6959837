"""The mock's state through the project's image codec and validator, and back."""

from __future__ import annotations

from collections.abc import Callable

from xsmig_daemon.image.encoder import encode_image
from xsmig_daemon.image.pipeline import read_image
from xsmig_daemon.image.records import End, Header
from xsmig_daemon.store.image_state import restore_engine, state_records
from xsmig_daemon.wire.ops import Op

from .engine_client import EngineClient

Guest = Callable[[int], EngineClient]


def test_state_survives_encode_validate_decode(dom0: EngineClient, guest: Guest) -> None:
    dom0.write("/local/domain/3", "")
    dom0.ok(Op.SET_PERMS, "/local/domain/3", "n3", "r0")
    g = guest(3)
    g.write("name", b"vm\0bin")
    g.ok(Op.WATCH, "name", "rel")
    dom0.ok(Op.WATCH, "/local", "deep", "2")
    dom0.ok(Op.WATCH, "@releaseDomain", "gone")
    tx = g.start()
    g.write("name", "renamed", tx=tx)
    g.drain()
    g.send(Op.GET_DOMAIN_PATH, "3")  # leaves a queued reply
    records = list(state_records(dom0.engine))
    image = b"".join(encode_image(records, Header(version=2)))
    warnings: list[str] = []
    decoded = [item.record for item in read_image([image], warnings=warnings)]
    assert decoded[-1] == End()
    assert decoded[:-1] == records
    restored = restore_engine(decoded)
    assert list(state_records(restored)) == records
