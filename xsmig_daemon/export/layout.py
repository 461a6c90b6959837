"""The loader layout (``image/loader_layout.py``) between a source and the ImageWriter.

For a ``--target xen-*`` live-update export every source (wire, image, introspect) writes
through this ``RecordOutput``: the records reach the writer laid out as that real daemon
loads them, and what had to be synthesised becomes a fidelity note of the manifest.
"""

from __future__ import annotations

from ..image.loader_layout import LayoutOptions, LoaderLayout
from ..image.records import STREAM_V2, NodeData, Record
from .source import ExportPlan, RecordOutput


def layout_options(plan: ExportPlan, *, keep_fds: bool = False) -> LayoutOptions:
    # Version-2 loaders read a ring's unique-id (0: unknown); 4.17 predates it.
    v2 = plan.header.version >= STREAM_V2 and max(plan.profile.versions) >= STREAM_V2
    return LayoutOptions(
        socket_fd=plan.socket_fd,
        evtchn_fd=plan.evtchn_fd,
        dom0_evtchn=plan.dom0_evtchn,
        dom0_unique_id=0 if v2 else None,
        keep_fds=keep_fds,
    )


class LaidOutOutput:
    """A ``RecordOutput`` that lays records out for ``plan.profile`` before ``inner``."""

    def __init__(
        self,
        inner: RecordOutput,
        plan: ExportPlan,
        *,
        specials: list[NodeData] | None = None,
    ) -> None:
        self.inner = inner
        self.plan = plan
        self._specials = specials
        self._start()

    def _start(self) -> None:
        self.layout = LoaderLayout(
            self.plan.profile, layout_options(self.plan), specials=self._specials
        )

    async def write(self, record: Record) -> None:
        for item in self.layout.feed(record):
            await self.inner.write(item)

    async def rewind(self) -> None:
        await self.inner.rewind()
        self._start()

    async def close(self) -> list[str]:
        """Write what the layout still holds; returns its notes."""
        for item in self.layout.finish():
            await self.inner.write(item)
        return list(self.layout.notes)


def needs_layout(plan: ExportPlan) -> bool:
    """A live-update image for a real xenstored."""
    return plan.mode == "live-update" and plan.profile.is_c_loader
