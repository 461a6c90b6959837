"""What a migrated transaction's commit must know that the migration stream cannot say.

The stream carries no generation counts, so the destination cannot tell by itself whether
an open transaction already conflicts at the source: a node the transaction *wrote* that
was changed elsewhere since looks the same as one nobody touched, and so does a directory
whose children changed. The source can tell, exactly, with its own conflict check while it
is frozen for the export, and sends one *fate* word per transaction whose commit is already
decided (docs/introspect.md, ``migrate export`` and ``migrate import commit``):

* ``<tx-id>:ENOMEM`` -- the transaction failed earlier;
* ``<tx-id>:EAGAIN`` -- it conflicts.

Such a verdict cannot change later: a node that existed when the transaction touched it
only gets newer generations, and a node it found missing that was created since has
changed the child list of its nearest existing ancestor, which the transaction touched
when it found the node missing (or created it). A transaction without a word compares the
destination's generations, taken at the import: a change made there after the import
conflicts, as the same change at the source would have.
"""

from __future__ import annotations

from collections.abc import Iterable

from .transaction import Transaction
from .tree import Tree

ENOMEM = b"ENOMEM"
EAGAIN = b"EAGAIN"


class FateError(ValueError):
    """A fate word that cannot be parsed."""


def fate_of(tx: Transaction, tree: Tree) -> bytes | None:
    """What the commit of ``tx`` answers whatever happens from now on (None: not decided),
    in the order a commit checks."""
    if tx.failed:
        return ENOMEM
    if tx.conflicts(tree):
        return EAGAIN
    return None


def fate_words(transactions: Iterable[Transaction], tree: Tree) -> list[bytes]:
    """``<tx-id>:<error>`` for each decided transaction."""
    words = []
    for tx in transactions:
        fate = fate_of(tx, tree)
        if fate is not None:
            words.append(b"%d:%s" % (tx.tx_id, fate))
    return words


def parse_fates(words: Iterable[bytes]) -> dict[int, bytes]:
    """``{tx_id: error}`` from fate words; FateError names a bad one."""
    fates: dict[int, bytes] = {}
    for word in words:
        tx_text, _, error = word.partition(b":")
        if not tx_text.isdigit() or int(tx_text) in fates or error not in (ENOMEM, EAGAIN):
            raise FateError(f"transaction fate {word.decode('ascii', 'replace')!r}")
        fates[int(tx_text)] = error
    return fates


def apply_fate(tx: Transaction, error: bytes) -> None:
    """Give a restored transaction its source's verdict."""
    if error == ENOMEM:
        tx.failed = True
    else:
        for entry in tx.touched.values():
            entry.generation = -1  # no generation ever matches: the commit conflicts
