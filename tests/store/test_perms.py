"""Permissions: owner first, r/w/b/n, privilege, inheritance, SET_TARGET, stale entries."""

from __future__ import annotations

from collections.abc import Callable

from xsmig_daemon.wire.ops import Op

from .engine_client import EngineClient

Guest = Callable[[int], EngineClient]


def test_guest_cannot_touch_dom0_nodes(dom0: EngineClient, guest: Guest) -> None:
    dom0.write("/secret", "s")
    g = guest(1)
    assert g.error(Op.READ, "/secret") == "EACCES"
    assert g.error(Op.WRITE, "/secret", value=b"x") == "EACCES"
    # Missing node below an unreadable ancestor: EACCES, so existence does not leak.
    assert g.error(Op.READ, "/secret/nope") == "EACCES"


def test_missing_node_under_readable_parent_is_enoent(dom0: EngineClient, guest: Guest) -> None:
    dom0.write("/pub", "")
    dom0.ok(Op.SET_PERMS, "/pub", "r0")
    g = guest(1)
    assert g.error(Op.READ, "/pub/nope") == "ENOENT"
    assert g.read("/pub") == b""


def test_owner_letter_is_the_default_and_later_entries_win(
    dom0: EngineClient, guest: Guest
) -> None:
    dom0.write("/n", "v")
    dom0.ok(Op.SET_PERMS, "/n", "r0", "n2", "w3", "b4")
    g1, g2, g3, g4 = guest(1), guest(2), guest(3), guest(4)
    assert g1.read("/n") == b"v"
    assert g1.error(Op.WRITE, "/n", value=b"x") == "EACCES"
    assert g2.error(Op.READ, "/n") == "EACCES"
    assert g3.error(Op.READ, "/n") == "EACCES"
    g3.write("/n", "3")
    g4.write("/n", "4")
    assert g4.read("/n") == b"4"
    assert dom0.ok(Op.GET_PERMS, "/n") == b"r0\0n2\0w3\0b4\0"


def test_owner_has_full_access_whatever_its_letter(dom0: EngineClient, guest: Guest) -> None:
    dom0.write("/o", "")
    dom0.ok(Op.SET_PERMS, "/o", "n5")
    g = guest(5)
    g.write("/o", "mine")
    assert g.read("/o") == b"mine"


def test_created_nodes_inherit_parent_perms_with_creator_as_owner(
    dom0: EngineClient, guest: Guest
) -> None:
    dom0.write("/local/domain/6", "")
    dom0.ok(Op.SET_PERMS, "/local/domain/6", "n0", "b6")
    g = guest(6)
    g.write("data/x", "1")
    assert dom0.ok(Op.GET_PERMS, "/local/domain/6/data") == b"n6\0b6\0"
    assert dom0.ok(Op.GET_PERMS, "/local/domain/6/data/x") == b"n6\0b6\0"
    dom0.write("/local/domain/6/byd0", "")
    assert dom0.ok(Op.GET_PERMS, "/local/domain/6/byd0") == b"n0\0b6\0"


def test_creation_needs_write_on_nearest_existing_ancestor(
    dom0: EngineClient, guest: Guest
) -> None:
    dom0.write("/ro", "")
    dom0.ok(Op.SET_PERMS, "/ro", "r0")
    g = guest(2)
    assert g.error(Op.WRITE, "/ro/a/b", value=b"") == "EACCES"
    assert g.error(Op.MKDIR, "/ro/a") == "EACCES"


def test_set_perms_rules(dom0: EngineClient, guest: Guest) -> None:
    dom0.write("/s", "")
    dom0.ok(Op.SET_PERMS, "/s", "n3")
    g3, g4 = guest(3), guest(4)
    assert g3.ok(Op.SET_PERMS, "/s", "n3", "r4") == b"OK\0"
    assert g4.read("/s") == b""
    assert g3.error(Op.SET_PERMS, "/s", "n4") == "EPERM"
    assert g4.error(Op.SET_PERMS, "/s", "b4") == "EACCES"
    assert dom0.error(Op.SET_PERMS, "/s") == "EINVAL"
    assert dom0.error(Op.SET_PERMS, "/s", "x1") == "EINVAL"
    assert dom0.error(Op.SET_PERMS, "/s", "n0 ") == "EINVAL"
    assert dom0.error(Op.SET_PERMS, "/s", "r") == "EINVAL"
    # An owner that cannot exist is refused; any other such entry is kept but stale.
    assert dom0.error(Op.SET_PERMS, "/s", "r32752") == "ENOENT"
    assert dom0.ok(Op.SET_PERMS, "/s", "n0", "r32752") == b"OK\0"
    node = dom0.engine.tree.get("/s")
    assert node is not None and node.perms[1].stale
    assert dom0.error(Op.SET_PERMS, "/s", "n0", "r-1") == "EINVAL"
    assert dom0.ok(Op.SET_PERMS, "/s", "r0x5") == b"OK\0"
    assert dom0.ok(Op.GET_PERMS, "/s") == b"r5\0"


def test_set_target_grants_the_targets_rights(dom0: EngineClient, guest: Guest) -> None:
    dom0.write("/t", "")
    dom0.ok(Op.SET_PERMS, "/t", "n2")
    g2, g3 = guest(2), guest(3)
    assert g3.error(Op.READ, "/t") == "EACCES"
    assert dom0.ok(Op.SET_TARGET, "3", "2") == b"OK\0"
    assert g3.read("/t") == b""
    assert g2.error(Op.SET_TARGET, "3", "2") == "EACCES"
    assert dom0.error(Op.SET_TARGET, "3", "9") == "ENOENT"


def test_released_domain_entries_become_stale(dom0: EngineClient, guest: Guest) -> None:
    dom0.write("/st", "")
    dom0.ok(Op.SET_PERMS, "/st", "n0", "r8")
    g8 = guest(8)
    assert g8.read("/st") == b""
    dom0.ok(Op.RELEASE, "8")
    node = dom0.engine.tree.get("/st")
    assert node is not None and node.perms[1].stale
    # GET_PERMS does not show the stale flag.
    assert dom0.ok(Op.GET_PERMS, "/st") == b"n0\0r8\0"
    g8 = guest(8)
    assert g8.error(Op.READ, "/st") == "EACCES"


def test_special_node_perms(dom0: EngineClient, guest: Guest) -> None:
    assert dom0.ok(Op.GET_PERMS, "@introduceDomain") == b"n0\0"
    assert dom0.ok(Op.GET_PERMS, "@releaseDomain") == b"n0\0r32757\0"
    assert dom0.ok(Op.SET_PERMS, "@introduceDomain", "n0", "r5") == b"OK\0"
    assert dom0.ok(Op.GET_PERMS, "@introduceDomain") == b"n0\0r5\0"
    assert guest(5).error(Op.SET_PERMS, "@introduceDomain", "n5") == "EACCES"


def test_special_node_perms_need_read(dom0: EngineClient, guest: Guest) -> None:
    g = guest(4)
    assert g.error(Op.GET_PERMS, "@introduceDomain") == "EACCES"
    # Every domain may read @releaseDomain (DOMID_ANY entry).
    assert g.ok(Op.GET_PERMS, "@releaseDomain") == b"n0\0r32757\0"


def test_missing_node_error_depends_on_the_access_asked_for(
    dom0: EngineClient, guest: Guest
) -> None:
    # C answers ENOENT only if the nearest existing ancestor grants some of the access the
    # request needs: write for WRITE/RM/SET_PERMS, read for READ.
    dom0.write("/drop", "")
    dom0.ok(Op.SET_PERMS, "/drop", "n2", "w1", "r3")
    writer, reader = guest(1), guest(3)
    writer.write("/drop/box", "post")
    assert writer.ok(Op.RM, "/drop/absent") == b"OK\0"
    assert writer.error(Op.READ, "/drop/absent") == "EACCES"
    assert reader.error(Op.READ, "/drop/absent") == "ENOENT"
    assert reader.error(Op.RM, "/drop/absent") == "EACCES"
    assert reader.error(Op.SET_PERMS, "/drop/absent", "n3") == "EACCES"


def test_domid_any_needs_the_feature(dom0: EngineClient, guest: Guest) -> None:
    dom0.write("/any", "")
    dom0.ok(Op.SET_PERMS, "/any", "n0", "r32757")
    assert guest(2).read("/any") == b""
    dom0.ok(Op.SET_FEATURE, "6", "2")
    dom0.write("/local/domain/6", "")
    dom0.ok(Op.SET_PERMS, "/local/domain/6", "n6")
    g6 = guest(6)
    g6.write("mine", "")
    g6.ok(Op.SET_PERMS, "mine", "n6", "r32757")
    node = dom0.engine.tree.get("/local/domain/6/mine")
    assert node is not None and node.perms[1].stale
    assert guest(7).error(Op.READ, "/local/domain/6/mine") == "EACCES"


def test_release_marks_special_node_entries_stale(dom0: EngineClient, guest: Guest) -> None:
    guest(4)
    dom0.ok(Op.SET_PERMS, "@introduceDomain", "n0", "r4")
    dom0.ok(Op.RELEASE, "4")
    assert dom0.engine.tree.special_perms["@introduceDomain"][1].stale
