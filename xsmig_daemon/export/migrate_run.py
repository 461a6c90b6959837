"""Open the two ends of a migration by socket path (mock or C, told apart by the probe)."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass

from ..client import ClientError, Xenstore, connect
from .migrate import (
    DEFAULT_FREEZE_DEADLINE,
    Checkpoint,
    DestinationEnd,
    FileSource,
    MigrationError,
    MockDestination,
    MockSource,
    Outcome,
    SourceEnd,
    is_mock,
    no_checkpoint,
    run_migration,
)
from .migrate_wire import WireDestination, WireSourceEnd


@dataclass(frozen=True, slots=True)
class Options:
    timeout: float = 10.0
    freeze_deadline: float = DEFAULT_FREEZE_DEADLINE
    lossy: bool = False
    #: INTRODUCE arguments for a C destination (default: the home's store/ring-ref, port).
    gfn: int | None = None
    evtchn: int | None = None


async def migrate(
    source_path: str,
    dest_path: str,
    domid: int,
    new_domid: int | None,
    options: Options,
    *,
    checkpoint: Checkpoint = no_checkpoint,
) -> Outcome:
    """``xsmig migrate``: domain ``domid`` from the daemon at ``source_path`` to ``dest_path``."""
    async with AsyncExitStack() as stack:
        source = await _source(stack, source_path, options)
        dest = await _destination(stack, dest_path, options)
        outcome = await _run(source, dest, domid, new_domid, checkpoint)
        if isinstance(source, WireSourceEnd):
            outcome.notes[:0] = source.notes
        return outcome
    raise AssertionError("unreachable")


async def migrate_in(
    image: str,
    dest_path: str,
    new_domid: int | None,
    options: Options,
) -> Outcome:
    """``xsmig migrate-in``: load a migration image into the running daemon at ``dest_path``."""
    async with AsyncExitStack() as stack:
        dest = await _destination(stack, dest_path, options)
        return await _run(FileSource(image), dest, None, new_domid, no_checkpoint)
    raise AssertionError("unreachable")


async def _run(
    source: SourceEnd,
    dest: DestinationEnd,
    domid: int | None,
    new_domid: int | None,
    checkpoint: Checkpoint,
) -> Outcome:
    try:
        return await run_migration(source, dest, domid, new_domid, checkpoint=checkpoint)
    except ClientError as exc:
        raise MigrationError(str(exc)) from None


async def _source(stack: AsyncExitStack, path: str, options: Options) -> SourceEnd:
    if not await is_mock(path, options.timeout):
        return WireSourceEnd(path, options.timeout)
    xs = await _connect(stack, path, options.timeout)
    return MockSource(xs, path, options.freeze_deadline)


async def _destination(stack: AsyncExitStack, path: str, options: Options) -> DestinationEnd:
    mock = await is_mock(path, options.timeout)
    xs = await _connect(stack, path, options.timeout)
    if mock:
        return MockDestination(xs, path)
    return WireDestination(xs, path, lossy=options.lossy, gfn=options.gfn, evtchn=options.evtchn)


async def _connect(stack: AsyncExitStack, path: str, timeout: float) -> Xenstore:
    try:
        return await stack.enter_async_context(connect(path, timeout=timeout))
    except ClientError as exc:
        raise MigrationError(str(exc)) from None
