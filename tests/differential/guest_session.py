"""The differential session as guests see it: three introduced domains speak over their own
rings (the real daemon's shared ring pages, the mock's stand-in sockets) next to dom0.

Covers what a dom0 socket cannot show: the permission check for an unprivileged caller
(owner, r/w/b/n entries, the EACCES-versus-ENOENT rule for unreadable ancestors), relative
paths under the caller's home, ownership of created nodes, EPERM on an owner change,
privileged-only operations, SET_TARGET, watch events filtered by permission (including
@introduceDomain once dom0 granted read on it), guest transactions with EAGAIN, and the
per-domain limits far from their boundary (4.17 and current Xen differ by one at the edge,
wire-protocol.md section 9).
"""

from __future__ import annotations

from replay import (
    Action,
    Connect,
    ConnectGuest,
    Deviation,
    Disconnect,
    Expected,
    Step,
    err,
    ok,
)
from wireclient import payload

from xsmig_daemon.wire.ops import Op

A, R = "dom0", "root-watcher"
G1, G2, G3, G5 = "guest1", "guest2", "guest3", "guest5"


def _home(domid: int, owner_perms: tuple[str, ...]) -> tuple[Action, ...]:
    home = f"/local/domain/{domid}"
    return (
        Step(A, Op.WRITE, (f"{home}/domid",), str(domid).encode()),
        Step(A, Op.SET_PERMS, (home, *owner_perms)),
        Step(A, Op.WRITE, (f"{home}/name",), f"guest{domid}".encode()),
        Step(A, Op.INTRODUCE, (str(domid), str(0x1000 + domid), str(10 + domid))),
    )


def _over(step: Step, xen417: tuple[Expected, ...], current: tuple[Expected, ...]) -> Deviation:
    return Deviation(
        step.client,
        step.op,
        step.args,
        step.value,
        reason="at a per-domain limit 4.17 refuses only above the quota, current Xen already "
        "at it (spec 9, 'Boundary'); 4.17's watch limit error is E2BIG, current Xen's ENOSPC",
        xen417=xen417,
        current=current,
    )


def _boundaries() -> tuple[Action, ...]:
    """Quotas at their edge, on a domain of its own introduced after they were set (4.17
    applies CONTROL quota to every domain at once, so nothing else may act afterwards)."""
    tx_start = Step(G5, Op.TRANSACTION_START, ("",))
    nospace = (err("ENOSPC"),)

    def watch(i: int) -> Step:
        return Step(G5, Op.WATCH, (f"w{i}", "t"))

    def watched(i: int) -> tuple[Expected, ...]:
        return (ok(Op.WATCH), (Op.WATCH_EVENT, payload(f"w{i}", "t")))

    def node(i: int) -> Step:
        return Step(G5, Op.WRITE, (f"n{i}",), b"x")

    five_perms = ("n5", "r1", "r2", "r3", "r4")
    return (
        # What succeeds on one daemon only would also differ in the events on /.
        Disconnect(R),
        Step(A, Op.CONTROL, ("quota", "set", "transactions", "3")),
        Step(A, Op.CONTROL, ("quota", "set", "watches", "3")),
        Step(A, Op.CONTROL, ("quota", "set", "nodes", "6")),
        *_home(5, ("n5",)),
        ConnectGuest(G5, 5),
        tx_start,
        tx_start,
        _over(tx_start, ((Op.TRANSACTION_START, payload("3")),), nospace),
        _over(tx_start, ((Op.TRANSACTION_START, payload("4")),), nospace),
        tx_start,
        watch(0),
        watch(1),
        _over(watch(2), watched(2), nospace),
        _over(watch(3), watched(3), nospace),
        _over(watch(4), (err("E2BIG"),), nospace),
        node(0),
        Step(G5, Op.SET_PERMS, ("n0", *five_perms[:4])),
        _over(Step(G5, Op.SET_PERMS, ("n0", *five_perms)), (ok(Op.SET_PERMS),), nospace),
        Step(G5, Op.SET_PERMS, ("n0", *five_perms, "r6")),
        # dom5 owns its home and name already: two more nodes under quota 6 for 4.17.
        node(1),
        node(2),
        _over(node(3), (ok(Op.WRITE),), nospace),
        node(4),
        Deviation(
            G5,
            Op.WRITE,
            ("d/" + "p" * 2046,),
            b"",
            reason="a relative path of exactly path-max (2048) bytes: 4.17 refuses only longer "
            "ones and then fails to create the nodes (ENOSPC: the domain is at its node "
            "quota here); current Xen refuses the path itself (EINVAL, spec 5)",
            xen417=(err("ENOSPC"),),
            current=(err("EINVAL"),),
        ),
        Step(A, Op.CONTROL, ("quota", "set", "transactions", "10")),
        Deviation(
            G5,
            Op.TRANSACTION_START,
            ("",),
            reason="CONTROL quota set changes 4.17's one global limit for every domain at "
            "once; in current Xen it sets the default for domains introduced later (spec 9: "
            "global values are the defaults for new domains), so dom5 keeps its 3",
            xen417=((Op.TRANSACTION_START, payload("5")),),
            current=nospace,
        ),
    )


GUEST_SESSION: tuple[Action, ...] = (
    Connect(A),
    Connect(R),
    Step(R, Op.WATCH, ("/", "all")),
    Step(A, Op.WRITE, ("/tool/private",), b"dom0 only"),
    Step(A, Op.WRITE, ("/public/info",), b"for everyone"),
    Step(A, Op.SET_PERMS, ("/public", "r0")),
    Step(A, Op.SET_PERMS, ("/public/info", "r0")),
    *_home(1, ("n1",)),
    ConnectGuest(G1, 1),
    *_home(2, ("n2",)),
    ConnectGuest(G2, 2),
    *_home(3, ("n3", "r1")),
    ConnectGuest(G3, 3),
    Step(A, Op.SET_PERMS, ("/local/domain/1/domid", "n0", "r1")),
    Step(A, Op.SET_TARGET, ("2", "1")),
    # Reading: own home, entries, other homes, dom0 nodes, missing nodes under each.
    Step(G1, Op.READ, ("name",)),
    Step(G1, Op.READ, ("domid",)),
    Step(G1, Op.READ, ("/local/domain/1/name",)),
    Step(G1, Op.READ, ("/local/domain/1/missing",)),
    Step(G1, Op.READ, ("/local/domain/2/name",)),
    Step(G1, Op.READ, ("/local/domain/2/missing",)),
    Step(G1, Op.READ, ("/local/domain/3/name",)),
    Step(G1, Op.DIRECTORY, ("/local/domain/3",)),
    Step(G1, Op.READ, ("/tool/private",)),
    Step(G1, Op.READ, ("/public/info",)),
    Step(G1, Op.READ, ("/public/missing",)),
    Step(G1, Op.READ, ("/nowhere/at/all",)),
    Step(G1, Op.DIRECTORY, ("/local/domain",)),
    Step(G1, Op.GET_PERMS, ("/local/domain/3/name",)),
    Step(G1, Op.GET_PERMS, ("/local/domain/2",)),
    # Writing: relative paths, created nodes belong to the creator.
    Step(G1, Op.WRITE, ("data/a",), b"1"),
    Step(G1, Op.GET_PERMS, ("data/a",)),
    Step(G1, Op.GET_PERMS, ("data",)),
    Step(G1, Op.READ, ("/local/domain/1/data/a",)),
    Step(G1, Op.DIRECTORY, ("data",)),
    Step(G1, Op.WRITE, ("domid",), b"7"),
    Step(G1, Op.WRITE, ("/local/domain/3/new",), b"x"),
    Step(G1, Op.WRITE, ("/public/info",), b"x"),
    Step(G1, Op.MKDIR, ("/tool/mine",)),
    Step(G1, Op.RM, ("/local/domain/3/name",)),
    Step(G1, Op.MKDIR, ("data/dir",)),
    Step(G1, Op.RM, ("data/dir",)),
    Step(G1, Op.WRITE, ("data/b",), b"2"),
    Step(G1, Op.SET_PERMS, ("data/b", "n1", "r2", "w3")),
    Step(G1, Op.GET_PERMS, ("data/b",)),
    Step(G1, Op.SET_PERMS, ("data/b", "n3")),
    Step(G1, Op.SET_PERMS, ("/public/info", "r1")),
    Step(G1, Op.SET_PERMS, ("data/b", "n1", "r2", "r3", "r4", "r5", "r6", "r7", "r8")),
    Step(G1, Op.WRITE, ("data/huge",), b"v" * 3000),
    Step(G1, Op.WRITE, ("data/" + "p" * 2500,), b"x"),
    Step(G1, Op.WRITE, ("data/" + "q" * 1000,), b"x"),
    Step(G1, Op.RM, ("data/" + "q" * 1000,)),
    # Write-only and read-only parents: creating, removing and SET_PERMS of children.
    Step(A, Op.MKDIR, ("/drop",)),
    Step(A, Op.SET_PERMS, ("/drop", "n2", "w1", "r3")),
    Step(G1, Op.WRITE, ("/drop/box",), b"post"),
    Step(G1, Op.READ, ("/drop/box",)),
    Step(G1, Op.DIRECTORY, ("/drop",)),
    Step(G1, Op.RM, ("/drop/absent",)),
    Step(G3, Op.RM, ("/drop/absent",)),
    Step(G3, Op.SET_PERMS, ("/drop/absent", "n3")),
    Step(G3, Op.READ, ("/drop/absent",)),
    Step(G3, Op.WRITE, ("/drop/x",), b"x"),
    Step(G1, Op.RM, ("/drop/box",)),
    # Privileged operations.
    Step(G1, Op.IS_DOMAIN_INTRODUCED, ("1",)),
    Step(G1, Op.INTRODUCE, ("9", "4105", "19")),
    Step(G1, Op.RELEASE, ("3",)),
    Step(G1, Op.SET_TARGET, ("1", "3")),
    Step(G1, Op.CONTROL, ("print", "guest")),
    Step(G1, Op.GET_DOMAIN_PATH, ("1",)),
    Step(G1, Op.GET_DOMAIN_PATH, ("3",)),
    # SET_TARGET 2 1: dom2 may act on dom1's nodes, not the other way round.
    Step(G2, Op.READ, ("/local/domain/1/data/a",)),
    Step(G2, Op.WRITE, ("/local/domain/1/data/by-dom2",), b"t"),
    Step(G2, Op.GET_PERMS, ("/local/domain/1/data/by-dom2",)),
    Step(G1, Op.READ, ("/local/domain/1/data/by-dom2",)),
    Step(G1, Op.READ, ("/local/domain/2/name",)),
    Step(G3, Op.READ, ("/local/domain/1/data/b",)),
    Step(G3, Op.WRITE, ("/local/domain/1/data/b",), b"by 3"),
    Step(G2, Op.READ, ("/local/domain/1/data/b",)),
    # Watches: relative paths, events only where the watcher may read.
    Step(G1, Op.WATCH, ("data", "mine")),
    Step(G1, Op.WATCH, ("/local/domain/2", "theirs")),
    Step(G1, Op.WATCH, ("/public", "pub")),
    Step(G2, Op.WATCH, ("/local/domain/1/data", "target")),
    Step(G3, Op.WATCH, ("/local/domain/1/data/b", "b-only")),
    Step(A, Op.WRITE, ("/local/domain/1/data/c",), b"3"),
    Step(A, Op.WRITE, ("/local/domain/2/secret",), b"s"),
    Step(A, Op.WRITE, ("/public/news",), b"n"),
    Step(A, Op.SET_PERMS, ("/local/domain/1/data/b", "n1", "r2")),
    Step(A, Op.WRITE, ("/local/domain/1/data/b",), b"after"),
    Step(G1, Op.RM, ("data/c",)),
    Step(G1, Op.WATCH, ("@introduceDomain", "intro")),
    Step(G2, Op.WATCH, ("@introduceDomain", "intro")),
    Step(G3, Op.WATCH, ("@releaseDomain", "release")),
    Step(A, Op.SET_PERMS, ("@introduceDomain", "n0", "r1")),
    Step(A, Op.INTRODUCE, ("4", "4100", "14")),
    Deviation(
        A,
        Op.RELEASE,
        ("4",),
        observer=G3,
        reason="@releaseDomain is n0 only in 4.17, so guest3 (no read on it) gets no event; "
        "current Xen gives it n0 + read for DOMID_ANY (spec 5), so the event reaches guest3",
        xen417=(),
        current=((Op.WATCH_EVENT, payload("@releaseDomain", "release")),),
    ),
    Step(G1, Op.UNWATCH, ("/local/domain/2", "theirs")),
    # Guest transactions.
    Step(G1, Op.TRANSACTION_START, ("",), label="g1-t1"),
    Step(G1, Op.WRITE, ("data/t",), b"in tx", tx="g1-t1"),
    Step(G1, Op.READ, ("data/t",), tx="g1-t1"),
    Step(G1, Op.READ, ("/local/domain/2/name",), tx="g1-t1"),
    Step(G1, Op.TRANSACTION_END, ("T",), tx="g1-t1"),
    Step(G1, Op.TRANSACTION_START, ("",), label="g1-t2"),
    Step(G1, Op.READ, ("data/a",), tx="g1-t2"),
    Step(A, Op.WRITE, ("/local/domain/1/data/a",), b"changed by dom0"),
    Step(G1, Op.WRITE, ("data/d",), b"lost", tx="g1-t2"),
    Step(G1, Op.TRANSACTION_END, ("T",), tx="g1-t2"),
    Step(G1, Op.READ, ("data/d",)),
    Step(G1, Op.RESET_WATCHES, ("",)),
    Step(A, Op.WRITE, ("/local/domain/1/data/e",), b"no event for guest1 now"),
    Step(A, Op.DIRECTORY, ("/local/domain/1/data",)),
    *_boundaries(),
)
