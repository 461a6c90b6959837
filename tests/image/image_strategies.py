"""Hypothesis strategies: valid migration streams as (header, records).

A drawn stream obeys spec section 6: optional GLOBAL_DATA and GLOBAL_QUOTA_DATA first, each
connection followed by its watches and its transactions (each followed by its nodes), the
committed tree in depth-first pre-order from '/', the special nodes, DOMAIN_DATA only for
domains named earlier, END last. Paths, tokens and names are arbitrary non-NUL bytes (read
back through surrogateescape), values and pending data arbitrary bytes.
"""

from __future__ import annotations

import itertools

from hypothesis import strategies as st

from xsmig_daemon.image.records import (
    DOMID_ANY,
    DOMID_INVALID,
    ConnectionData,
    DomainData,
    End,
    GlobalData,
    GlobalQuotaData,
    Header,
    NodeAccess,
    NodeData,
    Permission,
    Quota,
    Record,
    RingSpec,
    SocketSpec,
    TransactionData,
    WatchData,
    WatchDataExtended,
)

U16 = st.integers(0, 0xFFFF)
U32 = st.integers(0, 0xFFFF_FFFF)
S32 = st.integers(-(2**31), 2**31 - 1)
U64 = st.integers(0, 2**64 - 1)
DOMID = st.one_of(st.integers(0, 10), st.integers(0, 0x7FEF), st.just(DOMID_ANY))


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def text(min_size: int = 0, max_size: int = 12, *, slash: bool = True) -> st.SearchStrategy[str]:
    """Text whose bytes contain no NUL (and no '/' unless ``slash``)."""
    banned = b"\0" if slash else b"\0/"
    alphabet = st.characters(
        min_codepoint=1, max_codepoint=0x2FF, exclude_characters="" if slash else "/"
    )
    readable = st.text(alphabet, min_size=min_size, max_size=max_size)
    raw = st.binary(min_size=min_size, max_size=max_size).filter(
        lambda b: not any(c in banned for c in b)
    )
    return st.one_of(readable, raw.map(_text))


# Mostly the four letters of spec 5.7; any other byte is kept verbatim by the reader.
LETTER = st.one_of(st.sampled_from("nrwb"), st.characters(min_codepoint=0, max_codepoint=255))
PERMISSION = st.builds(Permission, LETTER, DOMID, st.booleans())
PERMS = st.lists(PERMISSION, min_size=1, max_size=4).map(tuple)
QUOTAS: st.SearchStrategy[tuple[Quota, ...]] = st.lists(
    st.tuples(text(1, 10), U32), max_size=4
).map(tuple)


@st.composite
def connection(draw: st.DrawFn, conn_id: int) -> ConnectionData:
    spec: RingSpec | SocketSpec
    if draw(st.booleans()):
        tdomid = draw(st.one_of(st.just(DOMID_INVALID), st.integers(0, 0x7FEF)))
        spec = RingSpec(draw(st.integers(0, 0x7FEF)), tdomid, draw(U32))
    else:
        spec = SocketSpec(draw(S32))
    out_data = draw(st.binary(max_size=40))
    return ConnectionData(
        conn_id,
        spec,
        in_data=draw(st.binary(max_size=40)),
        out_data=out_data,
        out_resp_len=draw(st.integers(0, len(out_data))),
        unique_id=draw(st.one_of(st.none(), U64)),
    )


@st.composite
def watch(draw: st.DrawFn, conn_id: int, version: int) -> WatchData | WatchDataExtended:
    path = draw(text(1, 16))
    token = draw(text(0, 12))
    if version >= 2 and draw(st.booleans()):
        return WatchDataExtended(conn_id, path, token, draw(U16))
    return WatchData(conn_id, path, token)


@st.composite
def transaction_node(draw: st.DrawFn, conn_id: int, tx_id: int, path: str) -> NodeData:
    access = draw(st.sampled_from([NodeAccess(bits) for bits in range(4)]))
    if access == NodeAccess.DELETED:
        return NodeData(path, b"", (), conn_id, tx_id, access)
    return NodeData(path, draw(st.binary(max_size=30)), draw(PERMS), conn_id, tx_id, access)


def absolute_path() -> st.SearchStrategy[str]:
    component = text(1, 6, slash=False)
    return st.lists(component, min_size=1, max_size=4).map(lambda parts: "/" + "/".join(parts))


@st.composite
def committed_tree(draw: st.DrawFn) -> list[NodeData]:
    """'/' and a random tree under it, in depth-first pre-order."""
    count = draw(st.integers(0, 14))
    children: dict[str, list[str]] = {"/": []}
    order = ["/"]
    for _ in range(count):
        parent = draw(st.sampled_from(order))
        name = draw(text(1, 6, slash=False))
        path = ("" if parent == "/" else parent) + "/" + name
        if path in children:
            continue
        children[parent].append(path)
        children[path] = []
        order.append(path)
    nodes: list[NodeData] = []
    stack = ["/"]
    while stack:
        path = stack.pop()
        nodes.append(NodeData(path, draw(st.binary(max_size=48)), draw(PERMS)))
        stack.extend(reversed(children[path]))
    return nodes


@st.composite
def streams(draw: st.DrawFn, versions: tuple[int, ...] = (1, 2)) -> tuple[Header, list[Record]]:
    header = Header(draw(st.sampled_from(versions)), draw(st.booleans()))
    records: list[Record] = []
    if draw(st.booleans()):
        records.append(GlobalData(draw(S32), draw(S32)))
    if draw(st.booleans()):
        records.append(GlobalQuotaData(draw(QUOTAS), draw(QUOTAS)))
    known_domains: set[int] = set()
    conn_ids = draw(st.lists(st.integers(1, 0xFFFF_FFFF), max_size=4, unique=True))
    for conn_id in conn_ids:
        conn = draw(connection(conn_id))
        records.append(conn)
        if isinstance(conn.spec, RingSpec):
            known_domains.add(conn.spec.domid)
            if conn.spec.tdomid != DOMID_INVALID:
                known_domains.add(conn.spec.tdomid)
        records.extend(draw(st.lists(watch(conn_id, header.version), max_size=3)))
        for tx_id in draw(st.lists(U32, max_size=2, unique=True)):
            records.append(TransactionData(conn_id, tx_id))
            for path in draw(st.lists(absolute_path(), max_size=3, unique=True)):
                records.append(draw(transaction_node(conn_id, tx_id, path)))
    tree = draw(committed_tree())
    specials = [
        NodeData(name, b"", draw(PERMS))
        for name in ("@releaseDomain", "@introduceDomain")
        if draw(st.booleans())
    ]
    nodes = specials + tree if draw(st.booleans()) else tree + specials  # 4.17 / HEAD order
    records.extend(nodes)
    known_domains.update(node.perms[0].domid for node in nodes)
    for domid in draw(st.lists(st.sampled_from(sorted(known_domains)), unique=True)):
        features = draw(U32) if header.version >= 2 else 0
        records.append(DomainData(domid, features, draw(QUOTAS)))
    records.append(End())
    return header, records


@st.composite
def cut_points(draw: st.DrawFn, size: int) -> list[int]:
    """Chunk boundaries for a stream of ``size`` bytes: every byte, or random cuts."""
    if draw(st.booleans()):
        return list(range(1, size))
    return sorted(draw(st.sets(st.integers(1, max(1, size - 1)), max_size=40)))


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *cuts, len(data)]
    return [data[start:stop] for start, stop in itertools.pairwise(bounds)]
