"""Golden byte vectors, written by hand from the tables of shared/spec/image-format.md.

Nothing here was produced by xsmig's encoder: every hex literal was typed from the byte
tables (record header section 3, bodies section 5, worked example section 8). Each vector
holds one record and its bytes in a little-endian and in a big-endian stream (the 16-byte
header is always big-endian and is given separately). ``#`` starts a comment inside a hex
literal; whitespace is ignored.

Pending connection data is copied verbatim by the format, so in the big-endian vectors the
embedded wire headers are written big-endian too, as a big-endian producer would queue them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from xsmig_daemon.image.records import (
    ConnectionData,
    DomainData,
    End,
    GlobalData,
    GlobalQuotaData,
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


def unhex(text: str) -> bytes:
    """Bytes of a commented hex literal."""
    return bytes.fromhex(re.sub(r"#[^\n]*", "", text))


#: Preambles (always big-endian): ident "xenstore", version, flags (bit 0 = big endian).
HEADER_V1_LE = unhex("78 65 6e 73 74 6f 72 65  00 00 00 01  00 00 00 00")
HEADER_V2_LE = unhex("78 65 6e 73 74 6f 72 65  00 00 00 02  00 00 00 00")
HEADER_V1_BE = unhex("78 65 6e 73 74 6f 72 65  00 00 00 01  00 00 00 01")
HEADER_V2_BE = unhex("78 65 6e 73 74 6f 72 65  00 00 00 02  00 00 00 01")

HEADERS = {
    (1, False): HEADER_V1_LE,
    (2, False): HEADER_V2_LE,
    (1, True): HEADER_V1_BE,
    (2, True): HEADER_V2_BE,
}

END_LE = unhex("00000000 00000000")
END_BE = unhex("00000000 00000000")


@dataclass(frozen=True)
class Vector:
    """One record and its hand-written bytes in each byte order."""

    name: str
    record: Record
    le: str
    be: str
    #: Stream versions in which the record has exactly these bytes.
    versions: tuple[int, ...] = (1, 2)

    def hex_for(self, big_endian: bool) -> bytes:
        return unhex(self.be if big_endian else self.le)


# The 10 quotas C HEAD writes by default, in its order (spec 5.8).
C_HEAD_QUOTAS = (
    ("nodes", 1000),
    ("watches", 128),
    ("outstanding", 20),
    ("memory", 2621440),
    ("soft-memory", 2097152),
    ("transactions", 10),
    ("transaction-nodes", 1024),
    ("node-permissions", 5),
    ("path-max", 2048),
    ("node-size", 2048),
)

_C_HEAD_QUOTA_NAMES = """
    6e 6f 64 65 73 00                                      # nodes
    77 61 74 63 68 65 73 00                                # watches
    6f 75 74 73 74 61 6e 64 69 6e 67 00                    # outstanding
    6d 65 6d 6f 72 79 00                                   # memory
    73 6f 66 74 2d 6d 65 6d 6f 72 79 00                    # soft-memory
    74 72 61 6e 73 61 63 74 69 6f 6e 73 00                 # transactions
    74 72 61 6e 73 61 63 74 69 6f 6e 2d 6e 6f 64 65 73 00  # transaction-nodes
    6e 6f 64 65 2d 70 65 72 6d 69 73 73 69 6f 6e 73 00     # node-permissions
    70 61 74 68 2d 6d 61 78 00                             # path-max
    6e 6f 64 65 2d 73 69 7a 65 00                          # node-size
    00 00 00 00                                            # 156 -> 160: 4 pad
"""

VECTORS: tuple[Vector, ...] = (
    Vector(
        "end",
        End(),
        le="00000000 00000000",
        be="00000000 00000000",
    ),
    # ---- GLOBAL_DATA (5.2) ----------------------------------------------------------------
    Vector(
        "global-fds",
        GlobalData(rw_socket_fd=4, evtchn_fd=7),
        le="01000000 08000000  04000000 07000000",
        be="00000001 00000008  00000004 00000007",
    ),
    Vector(
        "global-no-fds",
        GlobalData(rw_socket_fd=-1, evtchn_fd=-1),
        le="01000000 08000000  ffffffff ffffffff",
        be="00000001 00000008  ffffffff ffffffff",
    ),
    Vector(
        "global-no-socket",
        GlobalData(rw_socket_fd=-1, evtchn_fd=0x12345678),
        le="01000000 08000000  ffffffff 78563412",
        be="00000001 00000008  ffffffff 12345678",
    ),
    # ---- CONNECTION_DATA (5.3) ------------------------------------------------------------
    Vector(
        "conn-ring-dom0",
        ConnectionData(1, RingSpec(domid=0, tdomid=0x7FF4, evtchn=2)),
        le="""
            02000000 18000000   # type 2, len 24
            01000000 0000 0000  # conn-id 1 | ring | fields 0
            0000 f47f 02000000  # domid 0 | tdomid DOMID_INVALID | evtchn 2
            0000 0000 00000000  # in 0 | resp 0 | out 0
        """,
        be="""
            00000002 00000018
            00000001 0000 0000
            0000 7ff4 00000002
            0000 0000 00000000
        """,
    ),
    Vector(
        "conn-ring-tdomid",
        ConnectionData(4, RingSpec(domid=2, tdomid=1, evtchn=4)),
        le="02000000 18000000  04000000 0000 0000  0200 0100 04000000  0000 0000 00000000",
        be="00000002 00000018  00000004 0000 0000  0002 0001 00000004  0000 0000 00000000",
    ),
    Vector(
        "conn-socket",
        ConnectionData(2, SocketSpec(fd=8)),
        le="02000000 18000000  02000000 0100 0000  08000000 00000000  0000 0000 00000000",
        be="00000002 00000018  00000002 0001 0000  00000008 00000000  0000 0000 00000000",
    ),
    Vector(
        "conn-socket-negative-fd",
        ConnectionData(3, SocketSpec(fd=-1)),
        le="02000000 18000000  03000000 0100 0000  ffffffff 00000000  0000 0000 00000000",
        be="00000002 00000018  00000003 0001 0000  ffffffff 00000000  0000 0000 00000000",
    ),
    Vector(
        # The live-update requester: 19 bytes of pending output, the stored "OK" reply.
        "conn-socket-lu-reply",
        ConnectionData(
            5,
            SocketSpec(fd=9),
            out_data=bytes.fromhex("00000000 00000000 00000000 03000000 4f4b00"),
        ),
        le="""
            02000000 30000000                    # type 2, len 48 (24+19=43 -> 48)
            05000000 0100 0000                   # conn-id 5 | socket | fields 0
            09000000 00000000                    # fd 9 | pad
            0000 0000 13000000                   # in 0 | resp 0 | out 19
            00000000 00000000 00000000 03000000  # XS_CONTROL req 0 tx 0 len 3
            4f4b00                               # "OK\\0"
            0000000000                           # 5 pad
        """,
        be="""
            00000002 00000030
            00000005 0001 0000
            00000009 00000000
            0000 0000 00000013
            00000000 00000000 00000000 03000000
            4f4b00
            0000000000
        """,
    ),
    Vector(
        "conn-ring-in-out-resp",
        ConnectionData(
            3,
            RingSpec(domid=1, tdomid=0x7FF4, evtchn=3),
            in_data=bytes.fromhex("02000000 07000000 00000000 05000000 2f612f6200 020000"),
            out_data=bytes.fromhex("6c756500 0f000000 00000000 00000000 05000000 2f61007400"),
            out_resp_len=4,
        ),
        le="""
            02000000 50000000                       # type 2, len 80 (24+24+25=73 -> 80)
            03000000 0000 0000                      # conn-id 3 | ring | fields 0
            0100 f47f 03000000                      # domid 1 | tdomid invalid | evtchn 3
            1800 0400 19000000                      # in 24 | resp 4 | out 25
            02000000 07000000 00000000 05000000     # in: XS_READ req 7 len 5
            2f612f6200                              #     "/a/b\\0"
            020000                                  #     3 bytes of the next header
            6c756500                                # out: tail of a partly sent reply
            0f000000 00000000 00000000 05000000     #      WATCH_EVENT len 5
            2f61007400                              #      "/a\\0t\\0"
            00000000000000                          # 7 pad
        """,
        be="""
            00000002 00000050
            00000003 0000 0000
            0001 7ff4 00000003
            0018 0004 00000019
            02000000 07000000 00000000 05000000 2f612f6200 020000
            6c756500 0f000000 00000000 00000000 05000000 2f61007400
            00000000000000
        """,
    ),
    Vector(
        "conn-ring-unique-id",
        ConnectionData(1, RingSpec(domid=0, evtchn=2), unique_id=0x0123456789ABCDEF),
        le="""
            02000000 20000000                   # len 32 = A(24) + 8
            01000000 0000 0100                  # conn-id 1 | ring | fields 1
            0000 f47f 02000000
            0000 0000 00000000
            efcdab8967452301                    # unique-id at A = 24
        """,
        be="""
            00000002 00000020
            00000001 0000 0001
            0000 7ff4 00000002
            0000 0000 00000000
            0123456789abcdef
        """,
    ),
    Vector(
        "conn-ring-unique-id-aligned",
        ConnectionData(2, RingSpec(domid=7, evtchn=9), in_data=b"\xaa\xbb\xcc", unique_id=7),
        le="""
            02000000 28000000                   # len 40 = A(roundup8(27) = 32) + 8
            02000000 0000 0100
            0700 f47f 09000000
            0300 0000 00000000                  # in 3
            aabbcc 0000000000                   # data + 5 pad
            0700000000000000                    # unique-id at body offset 32
        """,
        be="""
            00000002 00000028
            00000002 0000 0001
            0007 7ff4 00000009
            0003 0000 00000000
            aabbcc 0000000000
            0000000000000007
        """,
    ),
    Vector(
        "conn-ring-unique-id-no-pad",
        ConnectionData(
            6, RingSpec(domid=3, tdomid=0, evtchn=0x10), out_data=bytes(8), unique_id=1 << 63
        ),
        le="""
            02000000 28000000                   # 24+8 = 32 already aligned, +8
            06000000 0000 0100
            0300 0000 10000000
            0000 0000 08000000
            0000000000000000
            0000000000000080
        """,
        be="""
            00000002 00000028
            00000006 0000 0001
            0003 0000 00000010
            0000 0000 00000008
            0000000000000000
            8000000000000000
        """,
    ),
    # ---- WATCH_DATA (5.4) -----------------------------------------------------------------
    Vector(
        "watch",
        WatchData(1, "/local", "tok"),
        le="03000000 18000000  01000000 0700 0400  2f6c6f63616c00 746f6b00 0000000000",
        be="00000003 00000018  00000001 0007 0004  2f6c6f63616c00 746f6b00 0000000000",
    ),
    Vector(
        "watch-relative",
        WatchData(2, "name", "relative-tok"),
        le="""
            03000000 20000000 02000000 0500 0d00   # 8+5+13 = 26 -> 32
            6e616d6500 72656c61746976652d746f6b00 000000000000
        """,
        be="""
            00000003 00000020 00000002 0005 000d
            6e616d6500 72656c61746976652d746f6b00 000000000000
        """,
    ),
    Vector(
        "watch-special-no-pad",
        WatchData(4, "@introduceDomain", "intro"),
        le="""
            03000000 20000000 04000000 1100 0600   # 8+17+6 = 31 -> 32
            40696e74726f64756365446f6d61696e00 696e74726f00 00
        """,
        be="""
            00000003 00000020 00000004 0011 0006
            40696e74726f64756365446f6d61696e00 696e74726f00 00
        """,
    ),
    Vector(
        "watch-exact-multiple",
        WatchData(1, "/ab", "tok"),
        le="03000000 10000000  01000000 0400 0400  2f616200 746f6b00",
        be="00000003 00000010  00000001 0004 0004  2f616200 746f6b00",
    ),
    # ---- WATCH_DATA_EXTENDED, design-doc layout (5.5), version 2 only ------------------
    Vector(
        "watch-ext-depth-2",
        WatchDataExtended(1, "/vm", "t", depth=2),
        le="08000000 18000000  01000000 0400 0200 0200 0000  2f766d00 7400 000000000000",
        be="00000008 00000018  00000001 0004 0002 0002 0000  2f766d00 7400 000000000000",
        versions=(2,),
    ),
    Vector(
        "watch-ext-unlimited",
        WatchDataExtended(3, "/local/domain", "dom", depth=0xFFFF),
        le="""
            08000000 20000000 03000000 0e00 0400 ffff 0000  # 12+14+4 = 30 -> 32
            2f6c6f63616c2f646f6d61696e00 646f6d00 0000
        """,
        be="""
            00000008 00000020 00000003 000e 0004 ffff 0000
            2f6c6f63616c2f646f6d61696e00 646f6d00 0000
        """,
        versions=(2,),
    ),
    Vector(
        "watch-ext-depth-0",
        WatchDataExtended(1, "/x", "0", depth=0),
        le="08000000 18000000  01000000 0300 0200 0000 0000  2f7800 3000 00000000000000",
        be="00000008 00000018  00000001 0003 0002 0000 0000  2f7800 3000 00000000000000",
        versions=(2,),
    ),
    # ---- TRANSACTION_DATA (5.6) -----------------------------------------------------------
    Vector(
        "transaction",
        TransactionData(2, 0x1234),
        le="04000000 08000000  02000000 34120000",
        be="00000004 00000008  00000002 00001234",
    ),
    # ---- NODE_DATA (5.7) ------------------------------------------------------------------
    Vector(
        "node-root",
        NodeData("/", perms=(Permission("n", 0),)),
        le="""
            05000000 18000000  00000000 00000000    # committed: conn 0, tx 0
            0200 0000 0000 0100                     # path 2 | value 0 | access 0 | 1 perm
            6e000000 2f00 0000                      # n0 | "/\\0" + 2 pad
        """,
        be="""
            00000005 00000018  00000000 00000000
            0002 0000 0000 0001
            6e000000 2f00 0000
        """,
    ),
    Vector(
        "node-stale-perm",
        NodeData("/local", perms=(Permission("n", 0), Permission("r", 5, stale=True))),
        le="""
            05000000 20000000  00000000 00000000
            0700 0000 0000 0200
            6e000000 72010500                       # n0 | r5 stale
            2f6c6f63616c00 00
        """,
        be="""
            00000005 00000020  00000000 00000000
            0007 0000 0000 0002
            6e000000 72010005
            2f6c6f63616c00 00
        """,
    ),
    Vector(
        "node-value-several-perms",
        NodeData(
            "/perm/node",
            b"v",
            (Permission("b", 0), Permission("r", 1), Permission("w", 2), Permission("n", 3)),
        ),
        le="""
            05000000 30000000  00000000 00000000    # 16+16+11+1 = 44 -> 48
            0b00 0100 0000 0400
            62000000 72000100 77000200 6e000300
            2f7065726d2f6e6f646500 76 00000000
        """,
        be="""
            00000005 00000030  00000000 00000000
            000b 0001 0000 0004
            62000000 72000001 77000002 6e000003
            2f7065726d2f6e6f646500 76 00000000
        """,
    ),
    Vector(
        "node-binary-value",
        NodeData("/bin", b"\x00\x01\x00\xff\x00"),
        le="""
            05000000 20000000  00000000 00000000    # 16+4+5+5 = 30 -> 32
            0500 0500 0000 0100
            6e000000 2f62696e00 000100ff00 0000
        """,
        be="""
            00000005 00000020  00000000 00000000
            0005 0005 0000 0001
            6e000000 2f62696e00 000100ff00 0000
        """,
    ),
    Vector(
        "node-special",
        NodeData("@releaseDomain"),
        le="""
            05000000 28000000  00000000 00000000    # 16+4+15 = 35 -> 40
            0f00 0000 0000 0100
            6e000000 4072656c65617365446f6d61696e00 0000000000
        """,
        be="""
            00000005 00000028  00000000 00000000
            000f 0000 0000 0001
            6e000000 4072656c65617365446f6d61696e00 0000000000
        """,
    ),
    Vector(
        "node-domid-any-owner",
        NodeData("/d", b"xy", (Permission("r", 0x7FF5),)),
        le="""
            05000000 20000000  00000000 00000000    # 16+4+3+2 = 25 -> 32
            0300 0200 0000 0100
            7200f57f 2f6400 7879 00000000000000     # r DOMID_ANY | "/d\\0" "xy" + 7 pad
        """,
        be="""
            00000005 00000020  00000000 00000000
            0003 0002 0000 0001
            72007ff5 2f6400 7879 00000000000000
        """,
    ),
    Vector(
        "node-tx-read",
        NodeData("/a", b"x", (Permission("r", 0),), conn_id=2, tx_id=5, access=NodeAccess.READ),
        le="""
            05000000 18000000  02000000 05000000    # conn 2, tx 5; 16+4+3+1 = 24
            0300 0100 0100 0100                     # access READ
            72000000 2f6100 78
        """,
        be="""
            00000005 00000018  00000002 00000005
            0003 0001 0001 0001
            72000000 2f6100 78
        """,
    ),
    Vector(
        "node-tx-written",
        NodeData(
            "/a/b",
            b"new",
            (Permission("w", 0), Permission("b", 0x7FF5, stale=True)),
            conn_id=2,
            tx_id=5,
            access=NodeAccess.WRITTEN,
        ),
        le="""
            05000000 20000000  02000000 05000000    # 16+8+5+3 = 32
            0500 0300 0200 0200                     # access WRITTEN, 2 perms
            77000000 6201f57f                       # w0 | b DOMID_ANY stale
            2f612f6200 6e6577
        """,
        be="""
            00000005 00000020  00000002 00000005
            0005 0003 0002 0002
            77000000 62017ff5
            2f612f6200 6e6577
        """,
    ),
    Vector(
        "node-tx-read-written",
        NodeData(
            "/c",
            perms=(Permission("n", 0),),
            conn_id=2,
            tx_id=5,
            access=NodeAccess.READ | NodeAccess.WRITTEN,
        ),
        le="05000000 18000000  02000000 05000000  0300 0000 0300 0100  6e000000 2f6300 00",
        be="00000005 00000018  00000002 00000005  0003 0000 0003 0001  6e000000 2f6300 00",
    ),
    Vector(
        "node-tx-deleted",
        NodeData("/a/old", perms=(), conn_id=2, tx_id=5, access=NodeAccess.DELETED),
        le="05000000 18000000  02000000 05000000  0700 0000 0000 0000  2f612f6f6c6400 00",
        be="00000005 00000018  00000002 00000005  0007 0000 0000 0000  2f612f6f6c6400 00",
    ),
    # ---- GLOBAL_QUOTA_DATA (5.8) ----------------------------------------------------------
    Vector(
        "global-quota-c-head-defaults",
        GlobalQuotaData(domain_quotas=C_HEAD_QUOTAS),
        le="""
            06000000 a0000000  0a00 0000            # len 160 | 10 per-domain, 0 global
            e8030000 80000000 14000000 00002800 00002000
            0a000000 00040000 05000000 00080000 00080000
        """
        + _C_HEAD_QUOTA_NAMES,
        be="""
            00000006 000000a0  000a 0000
            000003e8 00000080 00000014 00280000 00200000
            0000000a 00000400 00000005 00000800 00000800
        """
        + _C_HEAD_QUOTA_NAMES,
    ),
    Vector(
        "global-quota-mixed",
        GlobalQuotaData(
            domain_quotas=(("nodes", 1000),),
            global_quotas=(("memory", 0), ("transactions", 50)),
        ),
        le="""
            06000000 30000000  0100 0200            # 4+12+6+7+13 = 42 -> 48
            e8030000 00000000 32000000
            6e6f64657300 6d656d6f727900 7472616e73616374696f6e7300
            000000000000
        """,
        be="""
            00000006 00000030  0001 0002
            000003e8 00000000 00000032
            6e6f64657300 6d656d6f727900 7472616e73616374696f6e7300
            000000000000
        """,
    ),
    Vector(
        "global-quota-global-only",
        GlobalQuotaData(global_quotas=(("memory", 4096),)),
        le="06000000 10000000  0000 0100  00100000 6d656d6f727900 00",
        be="00000006 00000010  0000 0001  00001000 6d656d6f727900 00",
    ),
    Vector(
        "global-quota-empty",
        GlobalQuotaData(),
        le="06000000 08000000  0000 0000 00000000",
        be="00000006 00000008  0000 0000 00000000",
    ),
    # ---- DOMAIN_DATA (5.9) ----------------------------------------------------------------
    Vector(
        "domain-no-quota",
        DomainData(1),
        le="07000000 08000000  0100 0000 00000000",
        be="00000007 00000008  0001 0000 00000000",
    ),
    Vector(
        "domain-quota-v1",
        DomainData(2, quotas=(("memory", 0x100000),)),
        le="07000000 18000000  0200 0100 00000000  00001000 6d656d6f727900 0000000000",
        be="00000007 00000018  0002 0001 00000000  00100000 6d656d6f727900 0000000000",
    ),
    Vector(
        "domain-features-v2",
        DomainData(0, features=14),
        le="07000000 08000000  0000 0000 0e000000",
        be="00000007 00000008  0000 0000 0000000e",
        versions=(2,),
    ),
    Vector(
        "domain-features-quotas-v2",
        DomainData(5, features=14, quotas=(("nodes", 2000), ("watches", 0))),
        le="""
            07000000 20000000  0500 0200 0e000000   # 8+8+6+8 = 30 -> 32
            d0070000 00000000
            6e6f64657300 7761746368657300 0000
        """,
        be="""
            00000007 00000020  0005 0002 0000000e
            000007d0 00000000
            6e6f64657300 7761746368657300 0000
        """,
        versions=(2,),
    ),
)

#: Spec section 8, byte for byte (version 1; version 2 differs only in byte 0x0b).
WORKED_EXAMPLE_V1 = """
    78 65 6e 73 74 6f 72 65   00 00 00 01 00 00 00 00
    02 00 00 00 18 00 00 00   01 00 00 00 01 00 00 00
    07 00 00 00 00 00 00 00   00 00 00 00 00 00 00 00
    03 00 00 00 18 00 00 00   01 00 00 00 07 00 04 00
    2f 6c 6f 63 61 6c 00 74   6f 6b 00 00 00 00 00 00
    05 00 00 00 18 00 00 00   00 00 00 00 00 00 00 00
    02 00 00 00 00 00 01 00   6e 00 00 00 2f 00 00 00
    05 00 00 00 20 00 00 00   00 00 00 00 00 00 00 00
    07 00 00 00 00 00 02 00   6e 00 00 00 72 01 05 00
    2f 6c 6f 63 61 6c 00 00   00 00 00 00 00 00 00 00
"""

WORKED_EXAMPLE_RECORDS: tuple[Record, ...] = (
    ConnectionData(1, SocketSpec(fd=7)),
    WatchData(1, "/local", "tok"),
    NodeData("/", perms=(Permission("n", 0),)),
    NodeData("/local", perms=(Permission("n", 0), Permission("r", 5, stale=True))),
    End(),
)
