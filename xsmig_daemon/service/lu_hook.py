"""The live-update hook: checks, keeps and, if needed, converts C xenstored's ``state_dump``
between the old daemon's exec and the successor's start.

``xenstore-control live-update -f WRAPPER`` makes the old xenstored write
``$XENSTORED_RUNDIR/state_dump`` and ``execvp`` WRAPPER in its own process, with its own
argv plus ``-U`` and with the listening socket, the client sockets and the event-channel fd
still open. The wrapper (``wrapper_script``) execs ``lu_entry``, which runs ``run_hook`` and
ends by exec'ing the successor in the same process, so those descriptors reach it untouched.

What happens to the dump (docs/service.md, "lu-hook"):

* valid for ``lu_hook.profile``: kept as ``lu-TIME.img`` + manifest, successor started with
  the original arguments (it restores the dump);
* not valid, ``lu_hook.convert`` (default true) and the dump is a valid stream: converted
  for the profile, written back as ``state_dump``, re-checked, successor restores the
  converted dump (what the conversion dropped is logged and in the manifest);
* otherwise ``lu_hook.on_invalid`` decides. ``fresh`` (default): the dump is kept as
  ``lu-rejected-TIME.img``, every inherited descriptor is closed (clients see their
  connection end instead of hanging) and the successor starts *without* ``-U`` -- a working
  but empty xenstored, said at priority crit. ``restore``: successor started with ``-U``
  anyway (for when the operator trusts the successor more than this check).

This module is deliberately synchronous and free of trio: it runs alone, inside xenstored's
process, while every xenstore client on the host waits for it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shlex
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

from ..image.errors import EncodeError, ImageError, type_name
from ..image.pipeline import ImageReader, ImageRewrite
from ..image.profiles import DUMP_SOURCE, Profile, get_profile
from ..image.records import Header
from ..imagefile import ImageFileError, atomic_output, read_chunks
from .config import Config, ConfigError, load_config
from .log import get_logger, setup_logging
from .runner import manifest_of
from .snapshot_dir import new_snapshot_path

log = get_logger("lu-hook")

DUMP_NAME = "state_dump"
DEFAULT_RUNDIR = "/var/run/xenstored"
LIVE_UPDATE_FLAGS = ("-U", "--live-update")
MANIFEST_SCHEMA = "xsmig.lu-hook/1"


@dataclass
class DumpCheck:
    """One pass over a dump: its digest, what it holds and whether the profile loads it."""

    profile: str
    size: int = 0
    sha256: str = ""
    header: Header | None = None
    records: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)
    #: what a conversion repairs (each broken record, by index and offset)
    defects: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def valid(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        header = self.header
        return {
            "profile": self.profile,
            "valid": self.valid,
            "error": self.error,
            "warnings": self.warnings,
            "defects": self.defects,
            "size": self.size,
            "sha256": self.sha256,
            "version": None if header is None else header.version,
            "endian": None if header is None else ("big" if header.big_endian else "little"),
            "records": self.records,
            "counts": dict(sorted(self.counts.items())),
        }


def check_dump(chunks: Iterable[bytes], profile: Profile, copy: BinaryIO | None) -> DumpCheck:
    """Validate ``chunks`` against ``profile``, hashing them and writing them to ``copy``.

    Every byte reaches ``copy`` even when validation fails early, so a rejected dump is kept
    whole for the post-mortem.
    """
    result = DumpCheck(profile.name)
    digest = hashlib.sha256()

    def tee() -> Iterator[bytes]:
        for chunk in chunks:
            digest.update(chunk)
            result.size += len(chunk)
            if copy is not None:
                copy.write(chunk)
            yield chunk

    source = tee()
    stream = ImageReader(source, profile, collect_defects=True)
    try:
        for located in stream:
            result.header = stream.header
            result.records += 1
            result.counts[type_name(located.record.type)] += 1
        result.warnings.extend(stream.warnings)
        result.defects = [str(exc) for exc in stream.defects]
        if result.defects:
            # Every broken record is listed; the conversion repairs them.
            result.error = f"{result.defects[0]} ({len(result.defects)} broken record(s))"
    except ImageError as exc:
        result.error = str(exc)
        result.header = stream.header
        for _ in source:  # the rest of the dump still goes to the copy and the digest
            pass
    result.sha256 = digest.hexdigest()
    return result


@dataclass
class Conversion:
    warnings: list[str]
    losses: list[str]
    repairs: list[str] = field(default_factory=list)


def convert_dump(chunks: Iterable[bytes], profile: Profile, out: BinaryIO) -> Conversion:
    """Rewrite a daemon's dump into one ``profile`` loads, repairing what the daemon wrote
    broken (``ImageConverter.repairs``: Xen 4.22's); the output is checked against
    ``profile`` record by record as it is written. Raises ImageError."""
    rewrite = ImageRewrite(
        chunks,
        profile,
        lambda _source: profile.newest_header,
        source_profile=DUMP_SOURCE,
        collect_defects=True,
    )
    for data in rewrite:
        out.write(data)
    return Conversion(
        rewrite.warnings, rewrite.report.losses.lines(), rewrite.report.repairs.lines()
    )


# ----------------------------------------------------------------------------- the hook


@dataclass
class HookPlan:
    """What the hook decided: how to start the successor and why."""

    action: str  # restore | converted | fresh | restore-unchecked | passthrough
    argv: list[str]
    close_fds: bool = False
    #: fresh start: the dump must not be restored later; removed, or renamed to this path.
    remove_dump: bool = False
    dump_kept_as: Path | None = None


def successor_argv(successor: str, args: Sequence[str], *, live: bool) -> list[str]:
    kept = [a for a in args if a not in LIVE_UPDATE_FLAGS]
    return [successor, *kept, "-U"] if live else [successor, *kept]


def decide(config: Config, args: Sequence[str], env: Mapping[str, str]) -> HookPlan:
    """Check, keep and convert the dump; returns how to exec the successor. Never raises for
    a bad dump (only for an unusable configuration or file system, handled by the caller)."""
    lu = config.lu_hook
    original = [lu.successor, *args]
    if not any(a in LIVE_UPDATE_FLAGS for a in args):
        log.warning("arguments carry no -U: not a live update, starting %s as asked", lu.successor)
        return HookPlan("passthrough", original)
    rundir = Path(env.get("XENSTORED_RUNDIR") or DEFAULT_RUNDIR)
    dump = rundir / DUMP_NAME
    profile = get_profile(lu.profile)
    directory = Path(config.snapshots.directory)
    now = time.time()
    copy_path = _copy_target(directory, now) if lu.keep_copy else None
    check, copied = _check_and_keep(dump, profile, copy_path)
    record: dict[str, Any] = {
        "schema": MANIFEST_SCHEMA,
        "created": now,
        "dump": str(dump),
        "successor": lu.successor,
        "arguments": list(args),
        "check": check.to_json(),
    }
    plan: HookPlan
    if check.valid:
        log.info(
            "%s: valid for %s (%d records, %d bytes, sha256 %s)",
            dump,
            profile.name,
            check.records,
            check.size,
            check.sha256,
        )
        for warning in check.warnings:
            log.warning("%s: %s", dump, warning)
        plan = HookPlan("restore", original)
    else:
        if check.defects:
            for defect in check.defects:
                log.error("%s: broken for %s: %s", dump, profile.name, defect)
        else:
            log.error("%s: not loadable by %s: %s", dump, profile.name, check.error)
        plan = _after_invalid(config, dump, profile, args, record)
    record["action"] = plan.action
    record["exec"] = plan.argv
    if copy_path is not None and copied:
        if plan.action in ("fresh", "restore-unchecked"):
            rejected = new_snapshot_path(directory, "lu-rejected", now)
            os.replace(copy_path, rejected)
            copy_path = rejected
        record["copy"] = str(copy_path)
        try:
            _write_manifest(copy_path, record)
        except ImageFileError as exc:
            log.warning("cannot write the manifest of %s: %s", copy_path, exc)
        log.info("kept a copy of the dump: %s (+ .manifest.json)", copy_path)
    elif plan.action == "fresh":
        # No copy anywhere: keep the rejected dump itself for the post-mortem.
        plan.dump_kept_as = dump.with_name(DUMP_NAME + ".rejected")
        log.warning("the rejected dump stays at %s", plan.dump_kept_as)
    return plan


def _copy_target(directory: Path, now: float) -> Path | None:
    """A fresh name for the copy, or None (logged) if the directory cannot be used: keeping
    a copy must never stop the update."""
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        return new_snapshot_path(directory, "lu", now)
    except OSError as exc:
        log.warning("cannot keep a copy in %s: %s", directory, exc.strerror or exc)
        return None


def _after_invalid(
    config: Config, dump: Path, profile: Profile, args: Sequence[str], record: dict[str, Any]
) -> HookPlan:
    lu = config.lu_hook
    if lu.convert:
        conversion: Conversion | None = None
        try:
            conversion = _convert_in_place(dump, profile)
        except (ImageError, EncodeError, ImageFileError) as exc:
            record["conversion"] = {"ok": False, "error": str(exc)}
        if conversion is None:
            log.error(
                "%s: conversion for %s failed: %s",
                dump,
                profile.name,
                record["conversion"]["error"],
            )
        else:
            for line in conversion.repairs:
                log.warning("%s: conversion for %s repaired %s", dump, profile.name, line)
            for line in conversion.losses:
                log.warning("%s: conversion for %s dropped %s", dump, profile.name, line)
            record["conversion"] = {
                "ok": True,
                "losses": conversion.losses,
                "repairs": conversion.repairs,
                "warnings": conversion.warnings,
            }
            log.warning(
                "%s: converted for %s; the successor restores the converted dump",
                dump,
                profile.name,
            )
            return HookPlan("converted", [lu.successor, *args])
    if lu.on_invalid == "restore":
        log.critical(
            "%s is not loadable by %s but lu_hook.on_invalid = restore: starting %s -U on it "
            "anyway; if it aborts, dom0 has no xenstored (see docs/service.md, recovery)",
            dump,
            profile.name,
            lu.successor,
        )
        return HookPlan("restore-unchecked", [lu.successor, *args])
    log.critical(
        "%s rejected: starting %s WITHOUT -U as a fresh, EMPTY xenstored; existing client "
        "connections are closed; all xenstore state (nodes, watches, domains) is lost and must "
        "be recovered from a snapshot (docs/service.md, recovery)",
        dump,
        lu.successor,
    )
    return HookPlan(
        "fresh", successor_argv(lu.successor, args, live=False), close_fds=True, remove_dump=True
    )


def _check_and_keep(dump: Path, profile: Profile, copy_path: Path | None) -> tuple[DumpCheck, bool]:
    """Check the dump, copying it on the way if ``copy_path``; (result, copy made)."""
    if copy_path is not None:
        try:
            with atomic_output(str(copy_path)) as out:
                return check_dump(read_chunks(str(dump)), profile, out), True
        except ImageFileError as exc:
            if exc.path == str(dump):
                return _unreadable(profile, exc), False
            log.warning("cannot keep a copy of the dump: %s", exc)
    try:
        return check_dump(read_chunks(str(dump)), profile, None), False
    except ImageFileError as exc:
        return _unreadable(profile, exc), False


def _unreadable(profile: Profile, exc: ImageFileError) -> DumpCheck:
    result = DumpCheck(profile.name)
    result.error = str(exc)
    return result


def _convert_in_place(dump: Path, profile: Profile) -> Conversion:
    """Write the converted stream next to the dump, then rename it over (mode 0600)."""
    converted = dump.with_name(DUMP_NAME + ".xsmig-converted")
    with atomic_output(str(converted), force=True) as out:
        conversion = convert_dump(read_chunks(str(dump)), profile, out)
    os.replace(converted, dump)
    return conversion


def _write_manifest(image: Path, record: dict[str, Any]) -> None:
    with atomic_output(str(manifest_of(image)), force=True) as out:
        out.write(json.dumps(record, indent=2, sort_keys=True).encode() + b"\n")


def execute(plan: HookPlan, env: Mapping[str, str]) -> NoReturn:
    """Become the successor (same pid, inherited descriptors unless the plan closes them)."""
    if plan.remove_dump:
        dump = Path(env.get("XENSTORED_RUNDIR") or DEFAULT_RUNDIR) / DUMP_NAME
        # A missing dump (the reason for a fresh start, sometimes) must not stop the exec.
        with contextlib.suppress(FileNotFoundError):
            if plan.dump_kept_as is not None:
                os.replace(dump, plan.dump_kept_as)
            else:
                dump.unlink()
    sys.stdout.flush()
    sys.stderr.flush()
    if plan.close_fds:
        os.closerange(3, _max_fd())
    log.info("exec %s", shlex.join(plan.argv))
    os.execv(plan.argv[0], plan.argv)


def _max_fd() -> int:
    try:
        return os.sysconf("SC_OPEN_MAX")
    except (OSError, ValueError):
        return 65536


def run_hook(config_path: str, args: Sequence[str]) -> None:
    """Load the configuration, decide, exec the successor. Returns only on failure (logged);
    the caller then starts the successor unchecked (``lu_entry``)."""
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        setup_logging("info")
        log.critical("%s", exc)
        return
    setup_logging(config.log.level)
    try:
        plan = decide(config, args, os.environ)
    except (OSError, ImageFileError) as exc:
        log.critical("cannot check or keep the dump: %s", exc)
        return
    try:
        execute(plan, os.environ)
    except OSError as exc:
        log.critical("cannot exec %s: %s", plan.argv[0], exc.strerror or exc)


def wrapper_script(python: str, config_path: str, successor: str) -> str:
    """The executable given to ``xenstore-control live-update -f``.

    ``exec`` keeps xenstored's pid; lu_entry starts the successor unchecked if the hook
    fails, and the first line covers a missing interpreter.
    """
    q = shlex.quote
    return f"""#!/bin/sh
# xsmig live-update hook, written by: xsmig lu-hook --install-wrapper
# xenstored execs this in its own process with its arguments (including -U). xsmig checks
# and keeps $XENSTORED_RUNDIR/state_dump, then execs lu_hook.successor from the
# configuration. Re-run --install-wrapper after changing lu_hook.successor.
[ -x {q(python)} ] || exec {q(successor)} "$@"
exec {q(python)} -P -m xsmig_daemon.service.lu_entry {q(successor)} {q(config_path)} "$@"
"""


def readiness_problems(config: Config) -> list[str]:
    """Why a live update through the hook would not do what this configuration says.

    The wrapper carries the configuration path and the successor it was written for; it is
    compared by content, not executed.
    """
    lu = config.lu_hook
    problems: list[str] = []
    if not os.access(lu.successor, os.X_OK):
        problems.append(f"lu_hook.successor: {lu.successor} is not executable")
    try:
        script = Path(lu.wrapper).read_text(errors="replace")
    except OSError as exc:
        problems.append(
            f"lu_hook.wrapper: {lu.wrapper}: {exc.strerror or exc} "
            "(xsmig lu-hook --install-wrapper)"
        )
        return problems
    if not os.access(lu.wrapper, os.X_OK):
        problems.append(f"lu_hook.wrapper: {lu.wrapper} is not executable")
    expected = {"successor": lu.successor, "configuration": config.path}
    for what, value in expected.items():
        if value is not None and f" {shlex.quote(value)} " not in script:
            problems.append(
                f"lu_hook.wrapper: {lu.wrapper} was not written for this {what} ({value}); "
                "re-run xsmig lu-hook --install-wrapper"
            )
    return problems
