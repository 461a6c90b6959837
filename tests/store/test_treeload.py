"""The pre-copy's fast paths: ``precopy.tree_image`` writes the bytes the general encoder
writes for the same tree, and ``TreeLoader`` builds the tree ``restore_node`` builds (values,
permissions, child order, per-owner counts and memory), refusing what a pre-copy cannot hold
with the record's index and byte offset."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given, settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "image"))
from image_strategies import committed_tree

from xsmig_daemon.image.encoder import RecordEncoder, encode_image
from xsmig_daemon.image.errors import SemanticError
from xsmig_daemon.image.pipeline import ImageParser
from xsmig_daemon.image.records import (
    End,
    GlobalData,
    Header,
    NodeAccess,
    NodeData,
    Permission,
    Record,
)
from xsmig_daemon.store import precopy
from xsmig_daemon.store.image_state import restore_node
from xsmig_daemon.store.tree import Tree
from xsmig_daemon.store.treeload import TreeLoader

HEADER = Header(2, False)
DOM0 = (Permission("n", 0),)


def _general(records: list[NodeData]) -> Tree:
    tree = Tree()
    tree.clear()
    for record in records:
        restore_node(tree, record)
    return tree


def _loaded(image: bytes, pieces: int = 3) -> Tree:
    parser = ImageParser(None)
    loader = TreeLoader(Tree())
    step = max(1, len(image) // pieces)
    ended = None
    for at in range(0, len(image), step):
        assert ended is None
        ended = loader.feed(parser.stream(image[at : at + step]))
    assert isinstance(ended, End)
    parser.close()
    return loader.finish()


def _same(a: Tree, b: Tree) -> None:
    assert list(a.nodes) == list(b.nodes)
    for path, node in a.nodes.items():
        other = b.nodes[path]
        assert (node.value, node.perms, node.children, node.childlen) == (
            other.value,
            other.perms,
            other.children,
            other.childlen,
        ), path
    assert +a.owned == +b.owned
    assert +a.owned_memory == +b.owned_memory
    assert a.check() == b.check() == []


@settings(max_examples=150, deadline=None)
@given(records=committed_tree())
def test_tree_image_is_the_general_encoding_and_loads_as_restore_node_builds(
    records: list[NodeData],
) -> None:
    tree = _general(records)
    image = b"".join(precopy.tree_image(tree, HEADER, piece=64))
    assert image == b"".join(encode_image(records, HEADER))
    _same(_loaded(image), tree)
    loader = TreeLoader(Tree())
    assert loader.feed(ImageParser(None).stream(image)) is not None
    assert loader.loaded == len(records)
    assert loader.tree.generation == Tree().generation + len(records)  # one per node


def test_tree_image_comes_in_pieces_of_about_the_size_asked() -> None:
    records = [NodeData("/", b"", DOM0)]
    records += [NodeData(f"/n{i}", b"x" * 100, DOM0) for i in range(100)]
    pieces = list(precopy.tree_image(_general(records), HEADER, piece=1000))
    assert all(1000 <= len(p) < 1200 for p in pieces[:-1])
    assert len(pieces) > 10


def _image(records: list[Record]) -> bytes:
    return b"".join(encode_image(records, HEADER))


ROOT = NodeData("/", b"", DOM0)
#: Case: the records, the index of the refused one, what the error says.
BAD: dict[str, tuple[list[Record], int, str]] = {
    "duplicate": ([ROOT, NodeData("/a", b"", DOM0), NodeData("/a", b"", DOM0)], 2, "'/a'"),
    "orphan": ([ROOT, NodeData("/a/b", b"", DOM0)], 1, "'/a/b' comes before its parent"),
    "no perms": ([ROOT, NodeData("/a", b"", ())], 1, "'/a' without permissions"),
    "relative": ([ROOT, NodeData("a", b"", DOM0)], 1, "'a' is not a valid node path"),
    "trailing slash": ([ROOT, NodeData("/a/", b"", DOM0)], 1, "not a valid node path"),
    "double slash": (
        [ROOT, NodeData("/a", b"", DOM0), NodeData("/a//b", b"", DOM0)],
        2,
        "not a valid node path",
    ),
    "special": ([ROOT, NodeData("@releaseDomain", b"", DOM0)], 1, "not a valid node path"),
    "transaction node": (
        [ROOT, NodeData("/a", b"", DOM0, 1, 1, NodeAccess.WRITTEN)],
        1,
        "committed nodes only",
    ),
    "other record": ([ROOT, GlobalData(3, 4)], 1, "committed nodes only"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_what_a_precopy_cannot_hold_is_refused_naming_the_record(case: str) -> None:
    records, index, reason = BAD[case]
    image = _image(records)
    loader = TreeLoader(Tree())
    with pytest.raises(SemanticError) as caught:
        loader.feed(ImageParser(None).stream(image))
    message = str(caught.value)
    encoder = RecordEncoder(HEADER)
    offset = len(encoder.preamble()) + sum(len(encoder.encode(r)) for r in records[:index])
    assert message.startswith(f"record {index} (")
    assert f"at byte {offset} (0x{offset:x})" in message, message
    assert reason in message, message


def test_a_tracked_tree_is_not_bulk_loaded() -> None:
    tree = Tree()
    precopy.start(tree)
    with pytest.raises(ValueError, match="bulk-loaded"):
        TreeLoader(tree)
