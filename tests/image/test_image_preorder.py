"""Pre-order validation: O(depth) memory for producers that walk a tree (the exporter)."""

from __future__ import annotations

import pytest

from xsmig_daemon.image.decoder import Located
from xsmig_daemon.image.errors import SemanticError
from xsmig_daemon.image.records import End, Header, NodeData, Record
from xsmig_daemon.image.validate import StreamValidator


def check(paths: list[str], *, preorder: bool) -> None:
    validator = StreamValidator(Header(), preorder=preorder)
    records: list[Record] = [NodeData(path) for path in paths]
    for index, record in enumerate([*records, End()]):
        validator.check(Located(index, 16 + 8 * index, record))


def test_a_pre_order_walk_is_valid() -> None:
    check(["/", "/a", "/a/b", "/a/b/c", "/a/d", "/e", "/e/f", "@releaseDomain"], preorder=True)


def test_valid_order_that_is_not_pre_order_needs_the_full_check() -> None:
    paths = ["/", "/a", "/b", "/a/c"]
    check(paths, preorder=False)
    with pytest.raises(SemanticError, match="not in pre-order") as raised:
        check(paths, preorder=True)
    assert "record 3" in str(raised.value)


@pytest.mark.parametrize("preorder", [False, True])
def test_child_before_parent_is_refused_either_way(preorder: bool) -> None:
    with pytest.raises(SemanticError, match="'/a/b'"):
        check(["/", "/a/b", "/a"], preorder=preorder)


def test_pre_order_keeps_only_the_current_ancestors() -> None:
    validator = StreamValidator(Header(), preorder=True)
    paths = ["/"]
    for domain in range(200):
        paths += [f"/d{domain}", f"/d{domain}/a", f"/d{domain}/a/b"]
    for index, path in enumerate(paths):
        validator.check(Located(index, 0, NodeData(path)))
    assert validator._ancestors == ["/", "/d199", "/d199/a", "/d199/a/b"]
    assert validator._node_hashes == {hash("/")}
