"""The differential session: one scripted xenstore session (data only; replay.py runs it).

Steps where the mock follows current Xen on purpose are ``Deviation``s; docs/differential.md
lists them and explains what the session covers and leaves out.
"""

from __future__ import annotations

from replay import Action, Burst, Connect, Deviation, Disconnect, Step, err, ok
from wireclient import payload

from xsmig_daemon.wire.framing import PAYLOAD_MAX, encode_message
from xsmig_daemon.wire.ops import Op

A, B, W, R, X = "a", "b", "watcher", "root-watcher", "deviant"
BAD, CUT = "bad", "cut"
BINARY = bytes(range(256)) + b"\0\0\xff"
MANY_CHILDREN = 600

_basics: tuple[Action, ...] = (
    Connect(A),
    Connect(B),
    Connect(W),
    Connect(R),
    # Every change below is also seen by a watch on / (its events are compared too).
    Step(R, Op.WATCH, ("/", "all")),
    Step(A, Op.READ, ("/tool/xenstored",)),
    Step(A, Op.DIRECTORY, ("/",)),
    Step(A, Op.GET_PERMS, ("/",)),
    Step(A, Op.WRITE, ("/test/a",), b"hello"),
    Step(A, Op.READ, ("/test/a",)),
    Step(A, Op.WRITE, ("/test/a",), b""),
    Step(A, Op.READ, ("/test/a",)),
    Step(A, Op.WRITE, ("/test/bin",), BINARY),
    Step(B, Op.READ, ("/test/bin",)),
    Step(A, Op.WRITE, ("/test/deep/x/y/z",), b"v"),
    Step(A, Op.DIRECTORY, ("/test",)),
    Step(A, Op.DIRECTORY, ("/test/deep/x",)),
    Step(A, Op.READ, ("/test/deep/x",)),
    Step(A, Op.MKDIR, ("/test/dir",)),
    Step(A, Op.MKDIR, ("/test/dir",)),
    Step(A, Op.READ, ("/test/dir",)),
    Step(A, Op.DIRECTORY, ("/test/dir",)),
    Step(A, Op.READ, ("/test/missing",)),
    Step(A, Op.DIRECTORY, ("/test/missing",)),
    Step(A, Op.GET_PERMS, ("/test/missing",)),
    Step(A, Op.READ, ("/nothing/here/at/all",)),
    # Path syntax errors.
    Step(A, Op.READ, ("/a//b",)),
    Step(A, Op.READ, ("/a/",)),
    Step(A, Op.READ, ("",)),
    Step(A, Op.READ, ("/a b",)),
    Step(A, Op.READ, ("/a\xe9",)),
    Step(A, Op.WRITE, ("/bad:char",), b"x"),
    Step(A, Op.WRITE, ("/" + "p" * 3100,), b"x"),
    Step(A, Op.READ, ("@introduceDomain",)),
    Step(A, Op.DIRECTORY, ("@releaseDomain",)),
    # Unknown, removed and server-only operations; malformed and boundary payloads.
    Step(A, 99, ("x",)),
    Step(A, Op.RESTRICT, ("1",)),
    Step(A, Op.INVALID, ("",)),
    Step(A, Op.WATCH_EVENT, ("/test", "tok")),
    Step(A, Op.ERROR, ("EINVAL",)),
    Step(A, Op.WRITE, ()),
    Step(A, Op.WRITE, ("/test/full",), b"f" * (PAYLOAD_MAX - len("/test/full") - 1)),
    Step(A, Op.READ, ("/test/full",)),
    Step(A, Op.READ, raw=encode_message(Op.READ, 0xDEADBEEF, 0, payload("/test/bin"))),
    # RM.
    Step(A, Op.RM, ("/test/dir",)),
    Step(A, Op.RM, ("/test/dir",)),
    Step(A, Op.RM, ("/nope/nope",)),
    Step(A, Op.RM, ("/",)),
    Step(A, Op.RM, ("/test/deep",)),
    Step(A, Op.DIRECTORY, ("/test",)),
    # Relative paths resolve under /local/domain/0 for a socket client.
    Step(A, Op.WRITE, ("rel/one",), b"1"),
    Step(A, Op.READ, ("/local/domain/0/rel/one",)),
    Step(A, Op.READ, ("rel/one",)),
    Step(A, Op.DIRECTORY, ("rel",)),
    Step(A, Op.DIRECTORY, ("/local/domain/0",)),
    Step(A, Op.GET_DOMAIN_PATH, ("0",)),
    Step(A, Op.GET_DOMAIN_PATH, ("7",)),
    Step(A, Op.GET_DOMAIN_PATH, ("65535",)),
)

_perms: tuple[Action, ...] = (
    Step(A, Op.WRITE, ("/perm/node",), b"p"),
    Step(A, Op.SET_PERMS, ("/perm/node", "b0", "r1", "w2")),
    Step(A, Op.GET_PERMS, ("/perm/node",)),
    Step(A, Op.WRITE, ("/perm/node/child",), b"c"),
    Step(A, Op.GET_PERMS, ("/perm/node/child",)),
    Step(A, Op.SET_PERMS, ("/perm/node/child", "n5", "r0x3")),
    Step(A, Op.GET_PERMS, ("/perm/node/child",)),
    Step(A, Op.SET_PERMS, ("/perm/node", "x1")),
    Step(A, Op.SET_PERMS, ("/perm/node",)),
    Step(A, Op.SET_PERMS, ("/perm/missing", "n0")),
    Step(A, Op.GET_PERMS, ("/perm",)),
    Step(B, Op.READ, ("/perm/node",)),
)

_watches: tuple[Action, ...] = (
    Step(W, Op.WATCH, ("/watched", "tokA")),
    Step(W, Op.WATCH, ("/watched", "tokA")),
    Step(W, Op.WATCH, ("/watched", "tokB")),
    Step(W, Op.WATCH, ("relw", "tokR")),
    Step(W, Op.WATCH, ("@introduceDomain", "intro")),
    Step(W, Op.WATCH, ("@releaseDomain", "release")),
    Step(W, Op.WATCH, ("/tx", "tx-watch")),
    Step(W, Op.WATCH, ("/only-one-arg",)),
    Step(A, Op.WRITE, ("/watched/x",), b"1"),
    Step(A, Op.WRITE, ("/watched/x",), b"2"),
    Step(A, Op.WRITE, ("relw/child",), b"r"),
    Step(A, Op.SET_PERMS, ("/watched/x", "n0", "r1")),
    Step(A, Op.MKDIR, ("/watched/x",)),
    Step(A, Op.WRITE, ("/watched//bad",), b"no event for a failed request"),
    Step(A, Op.WRITE, ("/watched/x/y/z",), b"deep"),
    Step(A, Op.RM, ("/watched",)),
    Step(A, Op.MKDIR, ("/watched",)),
    Step(W, Op.UNWATCH, ("/watched", "tokB")),
    Step(W, Op.UNWATCH, ("/watched", "tokB")),
    Step(W, Op.UNWATCH, ("/never", "t")),
    Step(A, Op.WRITE, ("/watched/y",), b"only tokA"),
    Step(A, Op.RM, ("/watched/y",)),
)

_transactions: tuple[Action, ...] = (
    Step(A, Op.WRITE, ("/tx/base",), b"0"),
    Step(A, Op.TRANSACTION_START, ("",), label="T1"),
    Step(A, Op.WRITE, ("/tx/a",), b"in-tx", tx="T1"),
    Step(A, Op.READ, ("/tx/a",), tx="T1"),
    Step(B, Op.READ, ("/tx/a",)),
    Step(A, Op.DIRECTORY, ("/tx",), tx="T1"),
    Step(B, Op.DIRECTORY, ("/tx",)),
    Step(A, Op.GET_PERMS, ("/tx/a",), tx="T1"),
    Step(A, Op.TRANSACTION_START, ("",), tx="T1"),
    Step(A, Op.TRANSACTION_START, ("",), tx_id=999),
    Step(A, Op.READ, ("/tx/a",), tx_id=999),
    Step(A, Op.TRANSACTION_END, ("T",), tx="T1"),
    Step(B, Op.READ, ("/tx/a",)),
    Step(A, Op.TRANSACTION_END, ("T",), tx="T1"),
    Step(A, Op.TRANSACTION_END, ("T",)),
    # Conflict: the transaction read /tx/a, someone else changed it -> EAGAIN, nothing applied.
    Step(A, Op.TRANSACTION_START, ("",), label="T2"),
    Step(A, Op.READ, ("/tx/a",), tx="T2"),
    Step(B, Op.WRITE, ("/tx/a",), b"changed-outside"),
    Step(A, Op.WRITE, ("/tx/b",), b"lost", tx="T2"),
    Step(A, Op.TRANSACTION_END, ("T",), tx="T2"),
    Step(A, Op.READ, ("/tx/b",)),
    Step(A, Op.READ, ("/tx/a",)),
    # No conflict: an unrelated node changed meanwhile.
    Step(A, Op.TRANSACTION_START, ("",), label="T3"),
    Step(A, Op.READ, ("/tx/a",), tx="T3"),
    Step(B, Op.WRITE, ("/unrelated",), b"u"),
    Step(A, Op.WRITE, ("/tx/c",), b"kept", tx="T3"),
    Step(A, Op.TRANSACTION_END, ("T",), tx="T3"),
    Step(A, Op.READ, ("/tx/c",)),
    # Two writers of one node: the first commit wins, the second gets EAGAIN.
    Step(A, Op.TRANSACTION_START, ("",), label="T4"),
    Step(B, Op.TRANSACTION_START, ("",), label="U1"),
    Step(A, Op.WRITE, ("/tx/race",), b"from a", tx="T4"),
    Step(B, Op.WRITE, ("/tx/race",), b"from b", tx="U1"),
    Step(A, Op.TRANSACTION_END, ("T",), tx="T4"),
    Step(B, Op.TRANSACTION_END, ("T",), tx="U1"),
    Step(B, Op.READ, ("/tx/race",)),
    # Abort, bad END argument, unknown ids.
    Step(A, Op.TRANSACTION_START, ("",), label="T5"),
    Step(A, Op.WRITE, ("/tx/aborted",), b"x", tx="T5"),
    Step(A, Op.TRANSACTION_END, ("F",), tx="T5"),
    Step(A, Op.READ, ("/tx/aborted",)),
    Step(A, Op.TRANSACTION_START, ("",), label="T6"),
    Step(A, Op.TRANSACTION_END, ("X",), tx="T6"),
    Step(A, Op.TRANSACTION_END, ("F",), tx="T6"),
    Step(A, Op.TRANSACTION_END, ("F",), tx_id=12345),
    Step(A, Op.TRANSACTION_START, ("",), label="T7"),
    Step(A, Op.TRANSACTION_END, ("F",), tx="T7"),
    # A node the transaction found missing is created meanwhile -> EAGAIN.
    Step(A, Op.TRANSACTION_START, ("",), label="T8"),
    Step(A, Op.READ, ("/tx/ghost",), tx="T8"),
    Step(B, Op.WRITE, ("/tx/ghost",), b"boo"),
    Step(A, Op.WRITE, ("/tx/other",), b"x", tx="T8"),
    Step(A, Op.TRANSACTION_END, ("T",), tx="T8"),
    Step(A, Op.READ, ("/tx/other",)),
    # The order of the events fired at commit: C fires them in the order in which the
    # transaction first touched the nodes (reads included), not in the order of the writes.
    Step(A, Op.WRITE, ("/ord/b",), b"b"),
    Step(A, Op.WRITE, ("/ord/c",), b"c"),
    Step(A, Op.TRANSACTION_START, ("",), label="T10"),
    Step(A, Op.READ, ("/ord/c",), tx="T10"),
    Step(A, Op.READ, ("/ord/b",), tx="T10"),
    Step(A, Op.WRITE, ("/ord/a",), b"a", tx="T10"),
    Step(A, Op.WRITE, ("/ord/b",), b"B", tx="T10"),
    Step(A, Op.WRITE, ("/ord/c",), b"C", tx="T10"),
    Step(A, Op.TRANSACTION_END, ("T",), tx="T10"),
    # Permissions changed inside a transaction, applied at commit.
    Step(A, Op.TRANSACTION_START, ("",), label="T9"),
    Step(A, Op.SET_PERMS, ("/tx/c", "n0", "r4"), tx="T9"),
    Step(A, Op.GET_PERMS, ("/tx/c",), tx="T9"),
    Step(B, Op.GET_PERMS, ("/tx/c",)),
    Step(A, Op.TRANSACTION_END, ("T",), tx="T9"),
    Step(B, Op.GET_PERMS, ("/tx/c",)),
)

_deviations: tuple[Action, ...] = (
    Connect(X),
    Deviation(
        X,
        Op.GET_PERMS,
        ("@introduceDomain",),
        reason="4.17 refuses GET_PERMS on special nodes (spec 14); current Xen returns "
        "their permissions, n0 for @introduceDomain (spec 5)",
        xen417=(err("EINVAL"),),
        current=((Op.GET_PERMS, payload("n0")),),
    ),
    Deviation(
        X,
        Op.GET_PERMS,
        ("@releaseDomain",),
        reason="as above; current Xen gives @releaseDomain n0 plus read for DOMID_ANY "
        "(0x7ff5), spec 5",
        xen417=(err("EINVAL"),),
        current=((Op.GET_PERMS, payload("n0", "r32757")),),
    ),
    Deviation(
        X,
        Op.WATCH,
        ("/depth", "d", "1"),
        reason="4.17 needs exactly 2 WATCH strings; current Xen takes a depth "
        "(WATCHDEPTH) and fires the initial event (spec 4, 6)",
        xen417=(err("EINVAL"),),
        current=(ok(Op.WATCH), (Op.WATCH_EVENT, payload("/depth", "d"))),
    ),
    Deviation(
        X,
        Op.GET_FEATURE,
        ("",),
        reason="GET_FEATURE does not exist in 4.17 (ENOSYS); current Xen answers a socket "
        "with every supported feature, 14 (spec 10)",
        xen417=(err("ENOSYS"),),
        current=((Op.GET_FEATURE, payload("14")),),
    ),
    Deviation(
        X,
        Op.GET_QUOTA,
        ("nodes",),
        reason="GET_QUOTA does not exist in 4.17 (ENOSYS); current Xen returns the "
        "global default, 1000 nodes (spec 4, 9)",
        xen417=(err("ENOSYS"),),
        current=((Op.GET_QUOTA, payload("1000")),),
    ),
    Deviation(
        X,
        Op.CONTROL,
        ("quota", "set", "node-permissions", "5"),
        reason="the per-node permission quota is 'permissions' in 4.17 and "
        "'node-permissions' in current Xen (spec 9)",
        xen417=(err("EINVAL"),),
        current=(ok(Op.CONTROL),),
    ),
    Deviation(
        X,
        Op.CONTROL,
        ("quota", "set", "permissions", "5"),
        reason="same rename seen from the other side: current Xen no longer knows "
        "'permissions' (spec 9)",
        xen417=(ok(Op.CONTROL),),
        current=(err("EINVAL"),),
    ),
    Disconnect(X),
    Step(A, Op.SET_PERMS, ("@introduceDomain", "n0", "r1")),
)

_domains: tuple[Action, ...] = (
    Step(A, Op.IS_DOMAIN_INTRODUCED, ("1",)),
    Step(A, Op.INTRODUCE, ("1", "4097", "11")),
    Step(A, Op.INTRODUCE, ("2", "4098", "12")),
    Step(A, Op.INTRODUCE, ("3", "4099", "13")),
    Step(A, Op.IS_DOMAIN_INTRODUCED, ("1",)),
    Step(A, Op.IS_DOMAIN_INTRODUCED, ("4",)),
    Step(A, Op.GET_DOMAIN_PATH, ("3",)),
    Step(A, Op.SET_TARGET, ("2", "1")),
    Step(A, Op.SET_TARGET, ("2", "9")),
    Step(A, Op.SET_TARGET, ("9", "1")),
    Step(A, Op.WRITE, ("/local/domain/1/name",), b"guest1"),
    Step(A, Op.SET_PERMS, ("/local/domain/1", "n1", "r2")),
    Step(A, Op.GET_PERMS, ("/local/domain/1",)),
    Step(A, Op.WRITE, ("/local/domain/3/data",), b"of dom3"),
    Step(A, Op.SET_PERMS, ("/local/domain/3", "n3", "r0")),
    Step(A, Op.WRITE, ("/shared/by-dom3",), b"x"),
    Step(A, Op.SET_PERMS, ("/shared/by-dom3", "n0", "r3")),
    Step(A, Op.RESUME, ("1",)),
    Step(A, Op.RESUME, ("9",)),
    # Domain 3 takes no part in SET_TARGET: releasing it avoids the 4.17 crash (spec 14).
    Step(A, Op.RELEASE, ("3",)),
    Step(A, Op.IS_DOMAIN_INTRODUCED, ("3",)),
    Step(A, Op.RELEASE, ("3",)),
    Step(A, Op.RELEASE, ("9",)),
    Step(A, Op.RELEASE, ("0",)),
    # C removes the nodes a released domain owns (with their events); entries naming it stay.
    Step(A, Op.READ, ("/local/domain/3/data",)),
    Step(A, Op.DIRECTORY, ("/local/domain",)),
    Step(A, Op.GET_PERMS, ("/shared/by-dom3",)),
    Step(A, Op.INTRODUCE, ("3", "4099", "13")),
    Step(A, Op.IS_DOMAIN_INTRODUCED, ("3",)),
    # Introducing an introduced domain again: OK, no new @introduceDomain event.
    Step(A, Op.INTRODUCE, ("1", "4097", "11")),
    Step(A, Op.INTRODUCE, ("1", "4097", "21")),
    Step(A, Op.INTRODUCE, ("5",)),
    Step(A, Op.SET_TARGET, ("1",)),
)

_control: tuple[Action, ...] = (
    Step(A, Op.CONTROL, ("quota", "set", "nodes", "2000")),
    Step(A, Op.CONTROL, ("quota", "set", "nodes", "0")),
    Step(A, Op.CONTROL, ("quota", "set", "bogus", "3")),
    Step(A, Op.CONTROL, ("quota", "set")),
    Step(A, Op.CONTROL, ("quota-soft", "set", "memory", "100000")),
    Step(A, Op.CONTROL, ("bogus",)),
    Step(A, Op.CONTROL, ("print", "differential session")),
    Step(A, Op.CONTROL, ("check",)),
)

_big_directory: tuple[Action, ...] = (
    Burst(
        A,
        tuple(
            Step(A, Op.WRITE, (f"/many/child-{i:04d}",), str(i).encode())
            for i in range(MANY_CHILDREN)
        ),
        label=f"WRITE /many/child-0000..{MANY_CHILDREN - 1}",
    ),
    Step(A, Op.DIRECTORY, ("/many",)),
    Step(A, Op.DIRECTORY_PART, ("/many", "0")),
    Step(A, Op.DIRECTORY_PART, ("/many", "4092")),
    Step(A, Op.DIRECTORY_PART, ("/many", "6589")),
    Step(A, Op.DIRECTORY_PART, ("/many", "6600")),
    Step(A, Op.DIRECTORY_PART, ("/many", "100000")),
    Step(A, Op.DIRECTORY_PART, ("/many/missing", "0")),
    Step(A, Op.WRITE, ("/many/child-0000",), b"changed"),
    Step(A, Op.DIRECTORY_PART, ("/many", "6589")),
    Step(A, Op.WRITE, ("/many/child-0600",), b"new"),
    Step(A, Op.DIRECTORY_PART, ("/many", "6589")),
    Step(A, Op.RM, ("/many",)),
)

_reset: tuple[Action, ...] = (
    Step(W, Op.TRANSACTION_START, ("",), label="V1"),
    Step(W, Op.RESET_WATCHES, ("",)),
    Step(A, Op.WRITE, ("/watched/after-reset",), b"only / sees this"),
    Step(W, Op.TRANSACTION_END, ("F",), tx="V1"),
    Step(W, Op.TRANSACTION_START, ("",), label="V2"),
    Step(W, Op.TRANSACTION_END, ("F",), tx="V2"),
)

_abuse: tuple[Action, ...] = (
    Connect(CUT),
    Step(CUT, Op.READ, raw=encode_message(Op.READ, 1, 0, payload("/test"))[:7], drain_sender=False),
    Disconnect(CUT),
    Step(A, Op.READ, ("/test/a",)),
    Connect(BAD),
    Step(
        BAD,
        Op.READ,
        raw=encode_message(Op.READ, 1, 0, b"")[:12] + (PAYLOAD_MAX + 1).to_bytes(4, "little"),
    ),
    Step(A, Op.READ, ("/test/a",)),
    Step(W, Op.READ, ("/tx/c",)),
)

SESSION: tuple[Action, ...] = (
    *_basics,
    *_perms,
    *_watches,
    *_transactions,
    *_deviations,
    *_domains,
    *_control,
    *_big_directory,
    *_reset,
    *_abuse,
)
