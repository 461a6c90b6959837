"""XS_CONTROL commands: check, log, logfile, memreport, print, quota, quota-soft, help.

Replies are text, formatted like C xenstored's; malformed commands answer EINVAL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import quotas as q
from .errors import XsError
from .wireargs import c_atoi

if TYPE_CHECKING:
    from .engine import Engine

#: ``quota-set NAME VALUE`` (args after the command: set, NAME, VALUE).
_SET_QUOTA_ARGS = 3

HELP = (
    "check\t\n"
    "log\t[on|off|+<switch>|-<switch>]\n"
    "logfile\t<file>\n"
    "memreport\t[<file>]\n"
    "print\t<string>\n"
    "quota\t[set <name> <val>|<domid>]\n"
    "quota-soft\t[set <name> <val>]\n"
    "help\t\n"
)


def _text(text: str) -> bytes:
    return text.encode() + b"\0"


def _quota_table(engine: Engine, specs: tuple[q.QuotaSpec, ...]) -> str:
    lines = ["Quota settings:"]
    for spec in specs:
        shown = spec.name.removeprefix(q.SOFT_PREFIX)
        lines.append(f"{shown:<17}: {engine.global_quotas[spec.name]:8d} {spec.description}")
    return "\n".join(lines) + "\n"


def _domain_usage(engine: Engine, domid: int) -> str:
    if domid not in engine.domains and not engine.tree.owned[domid]:
        raise XsError("ENOENT", f"domain {domid} unknown")
    conn = engine.domain_connection(domid)
    usage = dict.fromkeys((spec.name for spec in q.HARD_QUOTAS), 0)
    usage[q.NODES] = engine.owned_nodes(domid)
    usage[q.MEMORY] = engine.memory_used(domid)
    if conn is not None:
        usage[q.WATCHES] = len(conn.watches)
        usage[q.TRANSACTIONS] = len(conn.transactions)
        usage[q.OUTSTANDING] = conn.queued_replies
    # The mock keeps no history: "max" is the current value.
    lines = "".join(f"{name:<17}: {value:8d} (max {value:8d})\n" for name, value in usage.items())
    return f"Domain {domid}:\n{lines}"


def _set_quota(engine: Engine, args: list[str], specs: tuple[q.QuotaSpec, ...]) -> bytes:
    if len(args) != _SET_QUOTA_ARGS or args[0] != "set":
        raise XsError("EINVAL", f"quota arguments {args!r}")
    names = {spec.name.removeprefix(q.SOFT_PREFIX): spec.name for spec in specs}
    value = c_atoi(args[2].encode())
    if args[1] not in names or value < 1:
        raise XsError("EINVAL", f"quota {args[1]!r} {args[2]!r}")
    engine.global_quotas[names[args[1]]] = value
    return _text("OK")


TRACE_SWITCHES = ("obj", "io", "wrl", "acc", "tdb")


def _log(engine: Engine, args: list[str]) -> bytes:
    """Trace switches are kept (the mock writes no trace file) so that they read back."""
    if not args:
        lines = "".join(
            f"{name:<8}: {'on' if name in engine.trace_switches else 'off'}\n"
            for name in TRACE_SWITCHES
        )
        return _text("Log switch settings:\n" + lines)
    if len(args) != 1:
        raise XsError("EINVAL", f"log arguments {args!r}")
    arg = args[0]
    if arg in ("on", "off"):
        return _text("OK")
    if arg[:1] in ("+", "-") and arg[1:] in TRACE_SWITCHES:
        if arg[0] == "+":
            engine.trace_switches.add(arg[1:])
        else:
            engine.trace_switches.discard(arg[1:])
        return _text("OK")
    raise XsError("EINVAL", f"log switch {arg!r}")


def handle_control(engine: Engine, raw_args: list[bytes]) -> bytes:
    if not raw_args:
        raise XsError("EINVAL", "empty CONTROL")
    command, *args = (arg.decode("utf-8", "replace") for arg in raw_args)
    if command == "help" and not args:
        return _text(HELP)
    if command == "check" and not args:
        # C logs what its check finds (and repairs it); the mock logs it.
        engine.log.extend(f"check: {problem}" for problem in engine.tree.check())
        return _text("OK")
    if command == "print" and len(args) == 1:
        engine.log.append(args[0])
        return _text("OK")
    if command == "log":
        return _log(engine, args)
    if command in ("logfile", "memreport") and len(args) <= 1:
        return _text("OK")
    if command == "quota":
        if not args:
            return _text(_quota_table(engine, q.HARD_QUOTAS))
        if args[0] == "set":
            return _set_quota(engine, args, q.HARD_QUOTAS)
        if len(args) == 1:
            return _text(_domain_usage(engine, c_atoi(args[0].encode())))
        return _set_quota(engine, args, q.HARD_QUOTAS)
    if command == "quota-soft":
        if not args:
            return _text(_quota_table(engine, q.SOFT_QUOTAS))
        return _set_quota(engine, args, q.SOFT_QUOTAS)
    raise XsError("EINVAL", f"unknown control command {command!r}")
