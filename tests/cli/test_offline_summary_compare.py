"""In-process tests of image/summary.py and image/compare.py on hand-built record lists."""

from __future__ import annotations

import dataclasses

from xsmig_daemon.image.compare import Difference, ImageState, compare
from xsmig_daemon.image.decoder import Located
from xsmig_daemon.image.records import (
    ConnectionData,
    DomainData,
    End,
    GlobalData,
    GlobalQuotaData,
    Header,
    NodeAccess,
    NodeData,
    Permission,
    Record,
    RingSpec,
    SocketSpec,
    TransactionData,
    WatchData,
    WatchDataExtended,
)
from xsmig_daemon.image.summary import ImageSummary, node_depth

N0 = (Permission("n", 0),)
EVENT_LE = bytes.fromhex("0f000000 00000000 00000000 07000000") + b"/a\0tok\0"
EVENT_BE = bytes.fromhex("0000000f 00000000 00000000 00000007") + b"/a\0tok\0"


def sample() -> list[Record]:
    return [
        GlobalData(4, 7),
        GlobalQuotaData((("nodes", 1000), ("watches", 128)), (("memory", 0),)),
        ConnectionData(1, RingSpec(0, evtchn=2)),
        ConnectionData(2, RingSpec(3, tdomid=1, evtchn=5), unique_id=99),
        WatchData(2, "/local", "tok"),
        WatchDataExtended(2, "/vm", "d", 1),
        ConnectionData(3, SocketSpec(9), in_data=b"abc", out_data=EVENT_LE),
        TransactionData(3, 5),
        NodeData("/", b"", N0),
        NodeData("/local", b"", N0),
        NodeData("/local/domain", b"", N0),
        NodeData("/local/domain/3", b"", (Permission("n", 3), Permission("r", 0, stale=True))),
        NodeData("/local/domain/3/name", b"guest", (Permission("n", 3),)),
        NodeData("/local/domain/3/name", b"x", N0, 3, 5, NodeAccess.WRITTEN),
        NodeData("@releaseDomain", b"", N0),
        DomainData(3, 14, (("nodes", 5),)),
        End(),
    ]


def locate(records: list[Record]) -> list[Located]:
    # Offsets only need to grow; 8 bytes per record keeps the arithmetic visible.
    return [Located(i, 16 + 8 * i, r) for i, r in enumerate(records)]


def test_node_depth() -> None:
    assert [node_depth(p) for p in ("/", "/a", "/a/b", "@releaseDomain")] == [0, 1, 2, 0]


def test_summary_of_sample() -> None:
    summary = ImageSummary(Header(2, True))
    for item in locate(sample()):
        summary.add(item)
    document = summary.to_json()
    assert document["schema"] == "xsmig.inspect/1"
    assert document["header"] == {"version": 2, "byte_order": "big"}
    assert document["records"]["total"] == 17
    assert document["records"]["by_type"]["NODE_DATA"] == {"count": 7, "bytes": 56}
    assert document["size_bytes"] == 16 + 8 * 16 + 8
    conns = {c["conn_id"]: c for c in document["connections"]}
    assert conns[2] == {
        "conn_id": 2, "conn_type": "ring", "domid": 3, "tdomid": 1, "evtchn": 5, "fd": None,
        "unique_id": 99, "pending_in_bytes": 0, "pending_out_bytes": 0, "out_resp_len": 0,
        "watches": 2, "transactions": 0, "transaction_nodes": 0,
    }  # fmt: skip
    assert conns[3]["fd"] == 9 and conns[3]["pending_in_bytes"] == 3
    assert conns[3]["pending_out_bytes"] == 23
    assert (conns[3]["transactions"], conns[3]["transaction_nodes"]) == (1, 1)
    tree = document["tree"]
    assert tree["nodes"] == 5 and tree["special_nodes"] == 1
    assert tree["max_depth"] == 4 and tree["deepest_path"] == "/local/domain/3/name"
    assert tree["value_bytes"] == 5 and tree["stale_permissions"] == 1
    assert tree["nodes_per_owner"] == {"0": 4, "3": 2}
    assert document["quotas"] == {
        "domain": {"nodes": 1000, "watches": 128},
        "global": {"memory": 0},
    }
    assert document["domains"] == [{"domid": 3, "features": 14, "quotas": {"nodes": 5}}]
    assert "unique-id 0x63" in summary.to_text()


def state(records: list[Record], header: Header | None = None) -> ImageState:
    return ImageState.from_records(header or Header(), records)


def test_same_state_in_another_order_with_other_conn_ids() -> None:
    records = sample()
    renumber = {1: 7, 2: 8, 3: 9}

    def moved(r: Record) -> Record:
        if isinstance(r, ConnectionData | WatchData | WatchDataExtended | TransactionData) or (
            isinstance(r, NodeData) and r.conn_id
        ):
            return dataclasses.replace(r, conn_id=renumber[r.conn_id])
        return r

    other = [moved(r) for r in records]
    # Watches of conn 2 swapped; connection 3 block moved before connection 1.
    other[4], other[5] = other[5], other[4]
    other = other[:2] + other[6:8] + other[2:6] + other[8:]
    assert compare(state(records), state(other)) == []


def test_big_endian_pending_data_compares_equal_to_little() -> None:
    little: list[Record] = [ConnectionData(1, SocketSpec(4), out_data=EVENT_LE), End()]
    big: list[Record] = [ConnectionData(1, SocketSpec(4), out_data=EVENT_BE), End()]
    assert compare(state(little), state(big, Header(1, True))) == []
    assert compare(state(little), state(big)) == [
        Difference(
            "connection",
            "socket fd 4",
            "pending output: A 23 bytes, B 23 bytes, first difference at byte 0",
        )
    ]


def test_every_area_reports_its_difference() -> None:
    a = sample()
    b = list(a)
    b[0] = GlobalData(4, 8)
    b[1] = GlobalQuotaData((("nodes", 1000),), (("memory", 0),))
    b[4] = WatchData(2, "/local", "other")
    b[13] = NodeData("/local/domain/3/name", b"y", N0, 3, 5, NodeAccess.WRITTEN)
    b[15] = DomainData(3, 6, (("nodes", 5),))
    b[12] = NodeData("/local/domain/3/name", b"guest", (Permission("b", 3),))
    del b[14]  # @releaseDomain
    assert [str(d) for d in compare(state(a), state(b), fds=True)] == [
        "fd GLOBAL_DATA: evtchn-fd: A 7, B 8",
        "quota default: per-domain quota watches: A 128, B -",
        "connection ring dom3: watch '/local' token 'other': only in B",
        "connection ring dom3: watch '/local' token 'tok': only in A",
        "connection socket fd 9: transaction 5 node /local/domain/3/name: "
        "value: A 'x' (1 bytes), B 'y' (1 bytes)",
        "domain dom3: features: A 0xe, B 0x6",
        "node /local/domain/3/name: perms: A n3, B b3",
        "node @releaseDomain: only in A",
    ]


def test_streaming_comparison_equals_full_comparison() -> None:
    a = sample()
    b = [r for r in a if not (isinstance(r, NodeData) and r.path == "/local/domain")]
    b.append(NodeData("/new", b"1", N0))
    full = compare(state(a), state(b))
    reference = state(a)
    streamed = ImageState(Header(), against=reference)
    for record in b:
        streamed.add(record)
    assert compare(reference, streamed) == full
    assert [str(d) for d in full] == ["node /local/domain: only in A", "node /new: only in B"]
