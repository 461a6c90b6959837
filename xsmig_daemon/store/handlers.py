"""One function per wire operation, each with C xenstored's checks and error names."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..image.records import DOMID_ANY, DOMID_FIRST_RESERVED, DOMID_SELF, Permission
from ..wire.features import FEATURE_DOMID_ANY, FEATURE_WATCHDEPTH, SUPPORTED_FEATURES
from ..wire.framing import Message, split_strings
from ..wire.ops import Op
from ..wire.paths import domain_home, parent
from . import quotas as q
from .connection import Watch
from .control import handle_control
from .errors import XsError
from .perms import Access, PermList, parse_c_perm, parse_wire_perm, perms_payload
from .transaction import Transaction
from .tree import Node
from .watches import add_event, fire
from .wireargs import c_atoi, exact_args, one_arg, parse_domid, parse_u32, strings

if TYPE_CHECKING:
    from .connection import Connection
    from .engine import Engine

Handler = Callable[["Engine", "Connection", Message, Transaction | None], None]
OK = b"OK\0"
_OWNER_WRITE = Access.WRITE | Access.OWNER
#: Strings in the payload of requests that take a fixed number of them.
_PATH_AND_PERMS = 2  # SET_PERMS path perm..., at least one permission
_WATCH_ARGS = 2  # WATCH path token
_WATCH_DEPTH_ARGS = 3  # WATCH path token depth (FEATURE_WATCHDEPTH)
_INTRODUCE_ARGS = 3  # INTRODUCE domid gfn port
_SET_TARGET_ARGS = 2  # SET_TARGET domid target
_DOMAIN_QUOTA_ARGS = 2  # GET_QUOTA domid name
_SET_GLOBAL_QUOTA_ARGS = 2  # SET_QUOTA name value
_SET_DOMAIN_QUOTA_ARGS = 3  # SET_QUOTA domid name value


def child_listing(children: list[str]) -> bytes:
    """Child names, each NUL-terminated, as DIRECTORY sends them."""
    return ("\0".join(children) + "\0").encode() if children else b""


def require_privileged(conn: Connection, message: Message) -> None:
    if not conn.privileged:
        raise XsError("EACCES", f"{message.describe()} needs a privileged caller")


# -- nodes ----------------------------------------------------------------------------------


def do_read(engine: Engine, conn: Connection, message: Message, tx: Transaction | None) -> None:
    path = engine.path_arg(conn, one_arg(message))
    node = engine.get_node(conn, tx, path, Access.READ)
    engine.reply(conn, message, node.value)


def do_directory(
    engine: Engine, conn: Connection, message: Message, tx: Transaction | None
) -> None:
    path = engine.path_arg(conn, one_arg(message))
    node = engine.get_node(conn, tx, path, Access.READ)
    engine.reply(conn, message, child_listing(node.children))


def do_directory_part(
    engine: Engine, conn: Connection, message: Message, tx: Transaction | None
) -> None:
    raw_path, raw_offset = exact_args(message, 2)
    path = engine.path_arg(conn, raw_path)
    offset = c_atoi(raw_offset)
    # C 4.17 / 4.20 read the offset as unsigned: a negative one is past the end.
    offset = offset & 0xFFFFFFFF if engine.compat.domid_atoi else max(offset, 0)
    node = engine.get_node(conn, tx, path, Access.READ)
    listing = child_listing(node.children)
    generation = str(node.generation).encode() + b"\0"
    if offset >= len(listing):
        engine.reply(conn, message, generation + b"\0")
        return
    room = 4096 - len(generation) - 1
    end = offset
    while end < len(listing):
        next_end = listing.index(b"\0", end) + 1
        if next_end - offset > room:
            break
        end = next_end
    payload = generation + listing[offset:end]
    if end >= len(listing):
        payload += b"\0"
    engine.reply(conn, message, payload)


def do_get_perms(
    engine: Engine, conn: Connection, message: Message, tx: Transaction | None
) -> None:
    path = engine.path_arg(conn, one_arg(message), allow_special=True)
    if path.startswith("@"):
        perms = special_perms(engine, conn, tx, path, need=Access.READ, op="GET_PERMS")
    else:
        perms = engine.get_node(conn, tx, path, Access.READ).perms
    engine.reply(conn, message, perms_payload(perms))


def special_perms(
    engine: Engine, conn: Connection, tx: Transaction | None, path: str, *, need: Access, op: str
) -> PermList:
    """The permissions of special node ``path`` if ``conn`` has ``need`` on it.

    4.17 knows only its two special nodes (else EINVAL) and has no GET_PERMS for them; in
    4.20 they are nodes: seen through a transaction, and an unknown one is a missing node
    whose parent is ``/``.
    """
    compat = engine.compat
    if op == "GET_PERMS" and not compat.special_get_perms:
        raise XsError("EINVAL", f"{op} of {path}")
    if compat.special_nodes_are_nodes and tx is not None:
        return engine.get_node(conn, tx, path, need).perms
    perms = engine.tree.special_perms.get(path)
    if perms is None:
        if compat.special_nodes_are_nodes:
            engine.get_node(conn, None, path, need)
        raise XsError("ENOENT" if compat.special_get_perms else "EINVAL", path)
    if engine.access(conn, perms) & need != need:
        raise XsError("EACCES", path)
    return perms


def do_write(engine: Engine, conn: Connection, message: Message, tx: Transaction | None) -> None:
    if b"\0" not in message.payload:
        raise XsError("EINVAL", f"{message.describe()}: no path")
    raw_path, value = message.payload.split(b"\0", 1)
    path = engine.path_arg(conn, raw_path)
    try:
        node = engine.get_node(conn, tx, path, Access.WRITE)
    except XsError as exc:
        if exc.name != "ENOENT":
            raise
        node = engine.create(conn, tx, path, value)
    else:
        node = node.copy()
        node.value = value
        engine.write(conn, tx, path, node)
    fire(engine, tx, path, exact=False, perms=node.perms)
    engine.reply(conn, message, OK)


def do_mkdir(engine: Engine, conn: Connection, message: Message, tx: Transaction | None) -> None:
    path = engine.path_arg(conn, one_arg(message))
    try:
        engine.get_node(conn, tx, path, Access.WRITE)
    except XsError as exc:
        if exc.name != "ENOENT":
            raise
        node = engine.create(conn, tx, path, b"")
        fire(engine, tx, path, exact=False, perms=node.perms)
    engine.reply(conn, message, OK)


def do_rm(engine: Engine, conn: Connection, message: Message, tx: Transaction | None) -> None:
    path = engine.path_arg(conn, one_arg(message))
    try:
        node = engine.get_node(conn, tx, path, Access.WRITE)
    except XsError as exc:
        if exc.name == "ENOENT" and engine.read(conn, tx, parent(path)) is not None:
            engine.reply(conn, message, OK)
            return
        raise
    if path == "/":
        raise XsError("EINVAL", "cannot remove /")
    if engine.read(conn, tx, parent(path)) is None:
        # Created outside a transaction that has removed its parent since (C's rm_node).
        raise XsError("EINVAL", f"parent of {path} is gone")
    engine.delete_tree(conn, tx, path, node, False)
    engine.unlink_child(conn, tx, path)
    engine.reply(conn, message, OK)


def do_set_perms(
    engine: Engine, conn: Connection, message: Message, tx: Transaction | None
) -> None:
    args = strings(message)
    if len(args) < _PATH_AND_PERMS:
        raise XsError("EINVAL", f"{message.describe()}: needs a path and permissions")
    limit = engine.quota(conn, q.NODE_PERMISSIONS)
    if engine.exceeds(len(args) - 1, limit):
        raise XsError("ENOSPC", f"{len(args) - 1} permissions")
    if engine.compat.domid_atoi:
        domid_any = engine.compat.domid_any
        perms = tuple(parse_c_perm(raw, domid_any=domid_any) for raw in args[1:])
    else:
        perms = tuple(parse_wire_perm(raw) for raw in args[1:])
    if not (conn.features & FEATURE_DOMID_ANY and engine.compat.domid_any):
        # A writer that did not negotiate DOMID_ANY cannot grant it (current Xen).
        perms = tuple(Permission(p.access, p.domid, p.stale or p.domid == DOMID_ANY) for p in perms)
    if perms[0].stale:
        raise XsError("ENOENT", f"owner domain {perms[0].domid} cannot exist")
    path = engine.path_arg(conn, args[0], allow_special=True)
    if path.startswith("@"):
        current = special_perms(engine, conn, tx, path, need=_OWNER_WRITE, op="SET_PERMS")
        if engine.compat.special_nodes_are_nodes:
            if not conn.privileged and perms[0].domid != current[0].domid:
                raise XsError("EPERM", f"domain {conn.domid} may not change the owner of {path}")
            if tx is not None:
                engine.write(conn, tx, path, Node(b"", perms))
            else:
                engine.tree.set_special_perms(path, perms)
            fire(engine, tx, path, exact=False, perms=perms, old_perms=current)
        else:
            engine.tree.special_perms[path] = perms
        engine.reply(conn, message, OK)
        return
    node = engine.get_node(conn, tx, path, _OWNER_WRITE)
    if not conn.privileged and perms[0].domid != node.owner:
        raise XsError("EPERM", f"domain {conn.domid} may not change the owner of {path}")
    updated = node.copy()
    updated.perms = perms
    engine.write(conn, tx, path, updated)
    fire(engine, tx, path, exact=False, perms=perms, old_perms=node.perms)
    engine.reply(conn, message, OK)


# -- watches --------------------------------------------------------------------------------


def do_watch(engine: Engine, conn: Connection, message: Message, tx: Transaction | None) -> None:
    args = strings(message)
    depth: int | None = None
    depth_ok = conn.features & FEATURE_WATCHDEPTH and engine.compat.watch_depth
    if len(args) == _WATCH_DEPTH_ARGS and depth_ok:
        depth = parse_u32(args[2])
    elif len(args) != _WATCH_ARGS:
        raise XsError("EINVAL", f"{message.describe()}: expected path and token")
    given, token = args[0], args[1]
    canonical = engine.path_arg(conn, given, allow_special=True)
    if any(w.canonical == canonical and w.token == token for w in conn.watches):
        raise XsError("EEXIST", f"watch {canonical} already registered")
    limit = engine.quota(conn, q.WATCHES)
    if engine.exceeds(len(conn.watches) + 1, limit):
        raise XsError("ENOSPC", f"domain {conn.domid} has too many watches")
    watch = Watch(given.decode("ascii"), token, canonical, depth)
    conn.watches.append(watch)
    engine.reply(conn, message, OK)
    add_event(engine, conn, watch, canonical)


def do_unwatch(engine: Engine, conn: Connection, message: Message, tx: Transaction | None) -> None:
    given, token = exact_args(message, 2)
    canonical = engine.path_arg(conn, given, allow_special=True)
    for watch in conn.watches:
        if watch.canonical == canonical and watch.token == token:
            conn.watches.remove(watch)
            engine.reply(conn, message, OK)
            return
    raise XsError("ENOENT", f"no watch {canonical}")


def do_reset_watches(
    engine: Engine, conn: Connection, message: Message, tx: Transaction | None
) -> None:
    conn.watches.clear()
    conn.transactions.clear()
    engine.reply(conn, message, OK)


# -- transactions ---------------------------------------------------------------------------


def do_transaction_start(
    engine: Engine, conn: Connection, message: Message, tx: Transaction | None
) -> None:
    if tx is not None:
        raise XsError("EBUSY", "nested transaction")
    limit = engine.quota(conn, q.TRANSACTIONS)
    if engine.exceeds(len(conn.transactions) + 1, limit):
        raise XsError("ENOSPC", f"domain {conn.domid} has too many transactions")
    tx_id = conn.next_tx_id
    while tx_id == 0 or tx_id in conn.transactions:
        tx_id = (tx_id + 1) & 0xFFFFFFFF
    conn.next_tx_id = (tx_id + 1) & 0xFFFFFFFF
    conn.transactions[tx_id] = Transaction(tx_id)
    engine.reply(conn, message, str(tx_id).encode() + b"\0")


def do_transaction_end(
    engine: Engine, conn: Connection, message: Message, tx: Transaction | None
) -> None:
    verdict = one_arg(message)
    if verdict not in (b"T", b"F"):
        raise XsError("EINVAL", f"transaction end {verdict!r}")
    if tx is None:
        raise XsError("ENOENT", "not in a transaction")
    del conn.transactions[tx.tx_id]
    if verdict == b"T":
        if tx.failed:
            raise XsError("ENOMEM", f"transaction {tx.tx_id} failed earlier")
        count_error = engine.commit_count_error(conn, tx)
        if count_error is not None:
            raise XsError(count_error, f"transaction {tx.tx_id}: a domain's node count")
        if tx.conflicts(engine.tree):
            raise XsError("EAGAIN", f"transaction {tx.tx_id} conflicts")
        tx.apply(engine.tree)
        for path, entry in tx.touched.items():
            if entry.fire:
                fire(engine, None, path, exact=entry.fire_exact, perms=entry.first_perms)
    engine.reply(conn, message, OK)


# -- domains --------------------------------------------------------------------------------


def domid_arg(engine: Engine, raw: bytes) -> int:
    """A domain op's domid: C 4.17 / 4.20 take atoi() of it as unsigned, current Xen checks."""
    if engine.compat.domid_atoi:
        return c_atoi(raw) & 0xFFFFFFFF
    return guest_domid(raw)


def guest_domid(raw: bytes) -> int:
    domid = parse_domid(raw)
    if domid >= DOMID_FIRST_RESERVED:
        raise XsError("EINVAL", f"domid {domid} is reserved")
    return domid


def do_introduce(
    engine: Engine, conn: Connection, message: Message, tx: Transaction | None
) -> None:
    require_privileged(conn, message)
    args = strings(message)
    if len(args) < _INTRODUCE_ARGS:
        raise XsError("EINVAL", f"{message.describe()}: expected domid, gfn, port")
    domid = domid_arg(engine, args[0])
    if engine.compat.domid_atoi:
        port = c_atoi(args[2]) & 0xFFFFFFFF
    else:
        parse_u32(args[1])
        port = parse_u32(args[2])
    if port == 0:
        raise XsError("EINVAL", "event channel port 0")
    engine.introduce(domid, port)
    engine.reply(conn, message, OK)


def released_domid(engine: Engine, message: Message) -> int:
    """RELEASE/RESUME argument: dom0 can be neither (EINVAL), others must be introduced."""
    domid = domid_arg(engine, one_arg(message))
    if domid == 0:
        raise XsError("EINVAL", "domain 0 cannot be released or resumed")
    return domid


def do_release(engine: Engine, conn: Connection, message: Message, tx: Transaction | None) -> None:
    require_privileged(conn, message)
    engine.release(released_domid(engine, message))
    engine.reply(conn, message, OK)


def do_resume(engine: Engine, conn: Connection, message: Message, tx: Transaction | None) -> None:
    require_privileged(conn, message)
    engine.introduced(released_domid(engine, message)).shutdown = False
    engine.reply(conn, message, OK)


def do_is_domain_introduced(
    engine: Engine, conn: Connection, message: Message, tx: Transaction | None
) -> None:
    require_privileged(conn, message)
    domid = (
        domid_arg(engine, one_arg(message))
        if engine.compat.domid_atoi
        else parse_domid(one_arg(message))
    )
    domain = engine.domains.get(domid)
    # C's dom0 is introduced from the start (its ring is mapped at startup).
    known = domid in (DOMID_SELF, 0) or (domain is not None and domain.introduced)
    engine.reply(conn, message, b"T\0" if known else b"F\0")


def do_get_domain_path(
    engine: Engine, conn: Connection, message: Message, tx: Transaction | None
) -> None:
    # C formats atoi() of the argument as unsigned, without any range check.
    domid = c_atoi(one_arg(message)) & 0xFFFFFFFF
    engine.reply(conn, message, domain_home(domid).encode() + b"\0")


def do_set_target(
    engine: Engine, conn: Connection, message: Message, tx: Transaction | None
) -> None:
    require_privileged(conn, message)
    args = strings(message)
    if len(args) < _SET_TARGET_ARGS:
        raise XsError("EINVAL", f"{message.describe()}: expected domid and target")
    domid, target = domid_arg(engine, args[0]), domid_arg(engine, args[1])
    engine.introduced(domid)
    targeted = engine.introduced(target)
    acting = engine.domain_connection(domid)
    if acting is None:
        raise XsError("ENOENT", f"domain {domid} has no connection")
    acting.target = target
    targeted.referenced_by.append(domid)
    engine.reply(conn, message, OK)


# -- features and quotas (current Xen only) -------------------------------------------------


def do_get_feature(
    engine: Engine, conn: Connection, message: Message, tx: Transaction | None
) -> None:
    args = strings(message)
    if not args or args == [b""]:
        value = conn.features
    elif len(args) == 1:
        require_privileged(conn, message)
        domain = engine.domains.get(guest_domid(args[0]))
        if domain is None:
            raise XsError("ENOENT", f"unknown domain {args[0]!r}")
        value = domain.features
    else:
        raise XsError("EINVAL", message.describe())
    engine.reply(conn, message, str(value).encode() + b"\0")


def do_set_feature(
    engine: Engine, conn: Connection, message: Message, tx: Transaction | None
) -> None:
    require_privileged(conn, message)
    raw_domid, raw_value = exact_args(message, 2)
    domid, value = guest_domid(raw_domid), parse_u32(raw_value)
    if value & ~SUPPORTED_FEATURES:
        raise XsError("EINVAL", f"unsupported feature bits {value:#x}")
    domain = engine.domain(domid)
    if domain.introduced:
        raise XsError("EBUSY", f"domain {domid} already introduced")
    domain.features = value
    engine.reply(conn, message, OK)


def quota_name(raw: bytes) -> str:
    name = raw.decode("ascii", "replace")
    if name not in q.QUOTA_NAMES:
        raise XsError("EINVAL", f"unknown quota {name!r}")
    return name


def do_get_quota(
    engine: Engine, conn: Connection, message: Message, tx: Transaction | None
) -> None:
    require_privileged(conn, message)
    args = strings(message)
    if not args:
        engine.reply(conn, message, " ".join(q.QUOTA_NAMES).encode() + b"\0")
        return
    if len(args) == 1:
        value = engine.global_quotas[quota_name(args[0])]
    elif len(args) == _DOMAIN_QUOTA_ARGS:
        domain = engine.domains.get(guest_domid(args[0]))
        if domain is None:
            raise XsError("ENOENT", f"unknown domain {args[0]!r}")
        value = domain.quotas[quota_name(args[1])]
    else:
        raise XsError("EINVAL", message.describe())
    engine.reply(conn, message, str(value).encode() + b"\0")


def do_set_quota(
    engine: Engine, conn: Connection, message: Message, tx: Transaction | None
) -> None:
    require_privileged(conn, message)
    args = strings(message)
    if len(args) == _SET_GLOBAL_QUOTA_ARGS:
        target = engine.global_quotas
    elif len(args) == _SET_DOMAIN_QUOTA_ARGS:
        domain = engine.domains.get(guest_domid(args[0]))
        if domain is None:
            raise XsError("ENOENT", f"unknown domain {args[0]!r}")
        target = domain.quotas
        args = args[1:]
    else:
        raise XsError("EINVAL", message.describe())
    name, value = quota_name(args[0]), parse_u32(args[1])
    if value == q.UINT_MAX:
        raise XsError("EINVAL", f"quota {name} value {value}")
    target[name] = value
    engine.reply(conn, message, OK)


def do_control(engine: Engine, conn: Connection, message: Message, tx: Transaction | None) -> None:
    require_privileged(conn, message)
    args = split_strings(message.payload)
    if args[:1] == [b"live-update"] and engine.live_update is not None:
        # The transport's handover answers, or parks the request (None) to answer later.
        text = engine.live_update(conn, message, [a.decode("utf-8", "replace") for a in args[1:]])
        if text is not None:
            engine.reply(conn, message, text.encode() + b"\0")
        return
    engine.reply(conn, message, handle_control(engine, args))


HANDLERS: dict[int, Handler] = {
    Op.CONTROL: do_control,
    Op.DIRECTORY: do_directory,
    Op.READ: do_read,
    Op.GET_PERMS: do_get_perms,
    Op.WATCH: do_watch,
    Op.UNWATCH: do_unwatch,
    Op.TRANSACTION_START: do_transaction_start,
    Op.TRANSACTION_END: do_transaction_end,
    Op.INTRODUCE: do_introduce,
    Op.RELEASE: do_release,
    Op.GET_DOMAIN_PATH: do_get_domain_path,
    Op.WRITE: do_write,
    Op.MKDIR: do_mkdir,
    Op.RM: do_rm,
    Op.SET_PERMS: do_set_perms,
    Op.IS_DOMAIN_INTRODUCED: do_is_domain_introduced,
    Op.RESUME: do_resume,
    Op.SET_TARGET: do_set_target,
    Op.RESET_WATCHES: do_reset_watches,
    Op.DIRECTORY_PART: do_directory_part,
    Op.GET_FEATURE: do_get_feature,
    Op.SET_FEATURE: do_set_feature,
    Op.GET_QUOTA: do_get_quota,
    Op.SET_QUOTA: do_set_quota,
}
