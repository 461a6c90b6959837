"""Records -> bytes -> sink, with the numbers the manifest needs.

``ImageWriter`` is the ``RecordOutput`` a source writes to. It checks each record against
the target profile and encodes it with the shared ``image.pipeline.CheckedEncoder`` (so a
bad ordering fails here, not in a loader), keeps the sha256, size and per-type counts, and
hands the sink bytes in batches. ``rewind`` starts the stream over
when a source retries.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from ..image.errors import type_name
from ..image.pipeline import CheckedEncoder
from ..image.profiles import Profile
from ..image.records import End, Header, NodeData, Record, RecordType
from .sinks import Sink

FLUSH_SIZE = 256 * 1024
#: ``type_name`` by record type, filled as types are met (it is on the per-record path).
_TYPE_NAMES: dict[int, str] = {}


@dataclass(slots=True)
class StreamStats:
    size: int = 0
    sha256: str = ""
    records: Counter[str] = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)

    @property
    def nodes(self) -> int:
        return self.records[RecordType.NODE_DATA.name]


class ImageWriter:
    def __init__(
        self,
        sink: Sink,
        header: Header,
        profile: Profile,
        *,
        validate: bool = True,
        migration: bool = False,
        preorder: bool = False,
        progress: Callable[[StreamStats], None] | None = None,
    ) -> None:
        self.sink = sink
        self.header = header
        self.profile = profile
        self._validate = validate
        self._migration = migration
        self._preorder = preorder
        self._progress = progress
        self._start()

    def _start(self) -> None:
        self.stats = StreamStats()
        self._hash = hashlib.sha256()
        self._buffer = bytearray()
        self._encoder = CheckedEncoder(
            self.header,
            self.profile if self._validate else None,
            migration=self._migration,
            preorder=self._preorder,
        )
        self._ended = False
        self._append(self._encoder.preamble())

    def _append(self, data: bytes) -> None:
        self._buffer += data
        self._hash.update(data)
        self.stats.size += len(data)

    async def write(self, record: Record) -> None:
        if self._ended:
            raise ValueError("record after END")
        data = self._encoder.encode(record)
        name = _TYPE_NAMES.get(record.type)
        if name is None:
            name = _TYPE_NAMES.setdefault(record.type, type_name(record.type))
        self.stats.records[name] += 1
        self._append(data)
        self._ended = isinstance(record, End)
        if len(self._buffer) >= FLUSH_SIZE:
            await self._flush()
        if self._progress is not None and isinstance(record, NodeData):
            self._progress(self.stats)

    async def rewind(self) -> None:
        await self.sink.rewind()
        self._start()

    async def finish(self) -> StreamStats:
        """Write END (unless the source did), flush, and return the final numbers."""
        if not self._ended:
            await self.write(End())
        await self._flush()
        self.stats.sha256 = self._hash.hexdigest()
        self.stats.warnings = list(self._encoder.warnings)
        return self.stats

    async def _flush(self) -> None:
        if self._buffer:
            data = bytes(self._buffer)
            self._buffer.clear()
            await self.sink.write(data)
