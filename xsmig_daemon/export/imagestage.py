"""What the ``image`` and ``introspect`` sources share: a stream arriving in pieces ->
records for the plan.

Each piece goes through the reading pipeline (``image.pipeline.ImageParser``: decoded, and
validated when given a profile), then the ``--domain N`` filter (``select.DomainFilter``)
and the conversion for the target (``image.pipeline.RecordRewriter``); for a C loader's
live-update image, when the source's GLOBAL_DATA fds are not the loader's (the mock's own),
the plan's fds replace them (the loader layout, export/layout.py, then puts dom0's ring
first). The report counts the committed nodes and ring domains that come out. What the
conversion repaired or lost becomes fidelity notes.
"""

from __future__ import annotations

from ..image.pipeline import ImageParser, RecordRewriter
from ..image.profiles import Profile
from ..image.records import ConnectionData, GlobalData, NodeData, Record, RingSpec
from .select import DomainFilter
from .source import ExportPlan, SourceReport


class ImageStage:
    def __init__(
        self,
        plan: ExportPlan,
        report: SourceReport,
        *,
        check: Profile | None,
        collect_defects: bool = False,
        own_fds: bool = True,
    ) -> None:
        """``own_fds``: the source's GLOBAL_DATA names fds the loader will really have."""
        self.plan = plan
        self.report = report
        self._parser = ImageParser(check, collect_defects=collect_defects)
        self._rewriter: RecordRewriter | None = None
        self._keep = DomainFilter(plan.domid) if plan.mode == "domain" else None
        c_live_update = plan.profile.is_c_loader and plan.mode == "live-update"
        self._plan_fds = c_live_update and not own_fds

    @property
    def offset(self) -> int:
        """Bytes of the input consumed so far."""
        return self._parser.offset

    def feed(self, piece: bytes) -> list[Record]:
        """The records for the plan that ``piece`` completes. Raises ImageError."""
        out = []
        for located in self._parser.feed(piece):
            record = self._rewrite(located.record)
            if record is None:
                continue
            if self._plan_fds and isinstance(record, GlobalData):
                record = GlobalData(_fd(self.plan.socket_fd), _fd(self.plan.evtchn_fd))
            self._count(record)
            out.append(record)
        return out

    def close(self) -> None:
        """The input has ended: raises ImageError if it stopped before END."""
        self._parser.close()

    @property
    def left_to_toolstack(self) -> list[str]:
        """``--domain N``: what relates to N but stays behind (``select.LeftBehind``)."""
        return [] if self._keep is None else self._keep.left.paths

    def loss_notes(self) -> list[str]:
        if self._rewriter is None:
            return []
        return self._rewriter.report.notes(self.plan.profile)

    def _rewrite(self, record: Record) -> Record | None:
        if self._rewriter is None:
            assert self._parser.header is not None
            self._rewriter = RecordRewriter(
                self._parser.header, self.plan.header, self.plan.profile, self._keep
            )
        return self._rewriter.rewrite(record)

    def _count(self, record: Record) -> None:
        if isinstance(record, NodeData) and record.committed:
            self.report.nodes += 1
        if isinstance(record, ConnectionData) and isinstance(record.spec, RingSpec):
            self.report.domains.append(record.spec.domid)


def _fd(number: int | None) -> int:
    """A plan's GLOBAL_DATA fd; None (the loader layout chooses later) is -1 here."""
    return -1 if number is None else number
