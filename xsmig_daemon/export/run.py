"""One export: source -> ImageWriter -> sink, then the manifest (file sinks only).

The manifest of ``--output FILE`` is written atomically *before* the image is renamed into
place and removed again if that rename fails, so FILE never exists without its manifest and a
failure never leaves either behind.
"""

from __future__ import annotations

import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

import trio

from ..image.decoder import ImageDecoder
from ..image.loader_layout import read_ahead_specials
from ..image.records import NodeData
from ..imagefile import read_chunks
from .domain_contents import DomainContents
from .errors import SourceError
from .layout import LaidOutOutput, needs_layout
from .manifest import JSON, build_manifest, manifest_path, remove_quietly, write_manifest
from .sinks import STDOUT, Sink, open_file_sink, open_stdout_sink, open_unix_sink
from .source import ExportPlan, Source
from .writer import ImageWriter, StreamStats

_PROGRESS_INTERVAL = 0.5


@dataclass(frozen=True, slots=True)
class Destination:
    """Exactly one of: a file path, ``-`` (stdout), or a unix socket path (``unix=True``)."""

    target: str
    unix: bool = False
    force: bool = False

    @property
    def is_file(self) -> bool:
        return not self.unix and self.target != STDOUT

    @property
    def display(self) -> str:
        return f"unix:{self.target}" if self.unix else self.target


@dataclass(slots=True)
class ExportResult:
    manifest: JSON
    #: Where the manifest was written (file sinks), else None.
    manifest_path: str | None


def open_destination(dest: Destination, timeout: float) -> AbstractAsyncContextManager[Sink]:
    if dest.unix:
        return open_unix_sink(dest.target, timeout=timeout)
    if dest.target == STDOUT:
        return open_stdout_sink()
    return open_file_sink(dest.target, force=dest.force)


class Progress:
    """Records and nodes/s on stderr, at most twice a second, only when it is a terminal."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.enabled = sys.stderr.isatty()
        self._start = time.monotonic()
        self._last = 0.0

    def __call__(self, stats: StreamStats) -> None:
        now = time.monotonic()
        if now - self._last < _PROGRESS_INTERVAL:
            return
        self._last = now
        rate = stats.nodes / max(now - self._start, 1e-9)
        sys.stderr.write(
            f"\r{self.label}: {sum(stats.records.values())} records, "
            f"{stats.nodes} nodes, {rate:,.0f} nodes/s   "
        )
        sys.stderr.flush()

    def done(self) -> None:
        if self._last:
            sys.stderr.write("\n")
            sys.stderr.flush()


@asynccontextmanager
async def _manifest_guard() -> AsyncIterator[list[str]]:
    """Removes whatever manifest path is appended to the yielded list if the block fails."""
    written: list[str] = []
    try:
        yield written
    except BaseException:
        for path in written:
            remove_quietly(path)
        raise


async def _specials_of(source: Source, plan: ExportPlan) -> list[NodeData] | None:
    """An image file read twice gives a specials-first target its special nodes up front."""
    if source.kind != "image" or not plan.profile.specials_first:
        return None
    decoder = ImageDecoder()
    specials: list[NodeData] = []
    for chunk in read_chunks(source.location):
        await trio.lowlevel.checkpoint()
        decoder.feed(chunk)
        specials.extend(read_ahead_specials(item.record for item in decoder.records()))
    decoder.close()
    return specials


async def run_export(
    source: Source,
    plan: ExportPlan,
    dest: Destination,
    *,
    progress: Callable[[StreamStats], None] | None = None,
) -> ExportResult:
    started = time.time()
    manifest_file = manifest_path(dest.target) if dest.is_file else None
    async with _manifest_guard() as written, open_destination(dest, plan.timeout) as sink:
        writer = ImageWriter(
            sink,
            plan.header,
            plan.profile,
            migration=plan.mode != "live-update",
            # A source walking a live tree writes pre-order: validate in O(depth) memory.
            preorder=source.kind != "image",
            progress=progress,
        )
        contents = DomainContents(writer, plan.domid) if plan.domid is not None else None
        if needs_layout(plan):
            laid_out = LaidOutOutput(writer, plan, specials=await _specials_of(source, plan))
            report = await source.export(plan, laid_out)
            report.fidelity_notes.extend(await laid_out.close())
        else:
            report = await source.export(plan, contents or writer)
        if contents is not None and contents.empty:
            raise SourceError(
                f"domain {plan.domid} is unknown at {source.location}: not introduced, "
                "no node relates to it"
            )
        stats = await writer.finish()
        manifest = build_manifest(
            image=dest.display,
            plan=plan,
            report=report,
            stats=stats,
            started=started,
            ended=time.time(),
        )
        if contents is not None:
            manifest["migration"] = contents.to_json(report.left_to_toolstack)
        if manifest_file is not None:
            written.append(manifest_file)
            write_manifest(manifest_file, manifest)
        await trio.lowlevel.checkpoint()
    return ExportResult(manifest, manifest_file)
