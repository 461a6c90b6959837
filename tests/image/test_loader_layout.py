"""image/loader_layout.py: what a real loader needs, produced record by record. Expected
streams are written out by hand from shared/peer*/README.md (what 4.17 and 4.20 write and
load), not taken from the code."""

from __future__ import annotations

import pytest

from xsmig_daemon.image.errors import ProfileError
from xsmig_daemon.image.loader_layout import LayoutOptions, LoaderLayout, lay_out
from xsmig_daemon.image.profiles import XEN_4_17, XEN_4_20, writer_of
from xsmig_daemon.image.records import (
    ConnectionData,
    End,
    GlobalData,
    NodeData,
    Permission,
    Record,
    RingSpec,
    SocketSpec,
    WatchData,
)

N0 = (Permission("n", 0),)
ROOT = NodeData("/", b"", N0)
TOOL = NodeData("/tool", b"", N0)
RELEASE = NodeData("@releaseDomain", b"", N0)
INTRODUCE = NodeData("@introduceDomain", b"", N0)
DOM0 = RingSpec(0, 0x7FF4, 1)


def _mock_stream() -> list[Record]:
    """As the mock dumps itself: its listening fd, no event channel, no dom0 ring, one
    socket client at fd 7 with a watch, special nodes after the tree."""
    return [
        GlobalData(8, -1),
        ConnectionData(1, SocketSpec(7)),
        WatchData(1, "/tool", "t"),
        ROOT,
        TOOL,
        RELEASE,
        INTRODUCE,
        End(),
    ]


def test_the_mock_stream_for_420() -> None:
    records, notes = lay_out(_mock_stream(), XEN_4_20)
    assert records == [
        GlobalData(8, 6),  # 4.20's own evtchn number, free here
        ConnectionData(2, DOM0),  # dom0's ring first, a conn-id nobody uses
        ConnectionData(1, SocketSpec(7)),
        WatchData(1, "/tool", "t"),
        ROOT,
        TOOL,
        RELEASE,
        INTRODUCE,
        End(),
    ]
    assert any("evtchn-fd 6 chosen" in n for n in notes)
    assert any("dom0 ring CONNECTION_DATA synthesised as conn 2" in n for n in notes)


def test_the_mock_stream_for_417_avoids_a_taken_fd() -> None:
    stream = _mock_stream()
    stream[1] = ConnectionData(1, SocketSpec(7))  # 4.17's evtchn number is a client's fd
    records, notes = lay_out(stream, XEN_4_17)
    assert records[0] == GlobalData(8, 3)
    # Without a read-ahead the special nodes stay where the source has them.
    assert records[-3:] == [RELEASE, INTRODUCE, End()]
    assert any("special nodes kept after the tree" in n for n in notes)


def test_special_nodes_read_ahead_go_first_for_417() -> None:
    records, _ = lay_out(_mock_stream(), XEN_4_17, specials=[RELEASE, INTRODUCE])
    assert records[4:] == [RELEASE, INTRODUCE, ROOT, TOOL, End()]


def test_special_nodes_first_in_the_source_go_last_for_420() -> None:
    stream: list[Record] = [GlobalData(3, 6), ConnectionData(1, DOM0), RELEASE, INTRODUCE]
    stream += [ROOT, TOOL, End()]
    records, notes = lay_out(stream, XEN_4_20)
    assert records == [
        GlobalData(3, 6),
        ConnectionData(1, DOM0),
        ROOT,
        TOOL,
        RELEASE,
        INTRODUCE,
        End(),
    ]
    assert notes == []


def test_a_417_dump_gets_420_fds() -> None:
    """4.17: socket 4, evtchn 7, clients from 8, specials first; 4.20: 3, 6, 7, last."""
    stream: list[Record] = [
        GlobalData(4, 7),
        ConnectionData(1, DOM0),
        ConnectionData(2, SocketSpec(8)),
        ConnectionData(3, SocketSpec(9)),
        RELEASE,
        INTRODUCE,
        ROOT,
        End(),
    ]
    records, notes = lay_out(stream, XEN_4_20)
    assert records == [
        GlobalData(3, 6),
        ConnectionData(1, DOM0),
        ConnectionData(2, SocketSpec(7)),
        ConnectionData(3, SocketSpec(8)),
        ROOT,
        RELEASE,
        INTRODUCE,
        End(),
    ]
    assert "2 socket connections -1" in notes[0]
    kept, _ = lay_out(stream, XEN_4_20, LayoutOptions(keep_fds=True))
    assert kept[:3] == stream[:3]


def test_fds_alone_do_not_name_a_writer() -> None:
    """A 4.17 daemon started without a log holds 4.20's numbers: the special-node position
    tells them apart."""
    assert writer_of(3, 6, specials_first=False) is XEN_4_20
    assert writer_of(3, 6, specials_first=True) is None
    assert writer_of(4, 7, specials_first=True) is XEN_4_17


def test_explicit_fds_that_collide_fail_naming_them() -> None:
    with pytest.raises(ProfileError, match="fd 7 is both evtchn-fd and a socket connection's"):
        lay_out(_mock_stream(), XEN_4_20, LayoutOptions(evtchn_fd=7))


def test_records_stream_one_by_one_and_finish_flushes() -> None:
    layout = LoaderLayout(XEN_4_20)
    assert layout.feed(GlobalData(3, 6)) == []
    assert layout.feed(ConnectionData(1, DOM0)) == []
    assert layout.feed(INTRODUCE) == []
    assert layout.feed(ROOT) == [GlobalData(3, 6), ConnectionData(1, DOM0), ROOT]
    assert layout.feed(TOOL) == [TOOL]
    assert layout.finish() == [INTRODUCE]
