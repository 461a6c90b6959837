"""xsmig's table of wire operations agrees with pyxs's, where pyxs has an entry."""

from __future__ import annotations

from pyxs._internal import Op as PyxsOp

from xsmig_daemon.wire.ops import Op

#: pyxs calls CONTROL by its old name, and puts RESTRICT at 128 (the protocol has 20).
_RENAMED = {"DEBUG": "CONTROL"}
_DIFFERENT = {"RESTRICT"}


def test_ops_agree_with_pyxs() -> None:
    theirs = {name: value for name, value in PyxsOp._asdict().items() if name not in _DIFFERENT}
    assert len(theirs) >= 20  # ops 0-19
    for name, value in theirs.items():
        assert Op[_RENAMED.get(name, name)] == value, name


def test_pyxs_restrict_is_elsewhere() -> None:
    assert PyxsOp.RESTRICT != Op.RESTRICT
