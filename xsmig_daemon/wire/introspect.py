"""Names of xsmig's ``CONTROL introspect`` extension (docs/introspect.md) that both ends use:
the mock that serves it and the exporter (and the service's configuration) that asks."""

from __future__ import annotations

COMMAND = "introspect"
#: ``snapshot``: the daemon copies all but its tree inside the freeze and serves on while the
#: tree is read copy-on-write (a freeze independent of the store size; the default);
#: ``capture``: the daemon encodes its image inside the freeze and runs on (short freeze);
#: ``stream``: it stays frozen while the image is read (no copy of it in the daemon).
SNAPSHOT = "snapshot"
CAPTURE = "capture"
STREAM = "stream"
FREEZE_MODES = (SNAPSHOT, CAPTURE, STREAM)
