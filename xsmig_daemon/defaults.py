"""Defaults shared by the command line and the service configuration (no imports: the
offline commands and ``xsmig ctl`` load this without the exporter)."""

from __future__ import annotations

#: Seconds an introspect freeze may last before the mock thaws by itself. It bounds only the
#: frozen part: with ``capture`` (the default mode) the daemon runs again once its image is
#: copied, and reading the copy does not count. Capturing a 1,000,000-node mock froze it
#: for 2.8 s on an idle 2-core machine and 11-13 s at load 4-6; the default ``snapshot``
#: mode froze it for well under a millisecond (benchmarks/snapshot_default.py).
FREEZE_DEADLINE = 30.0
#: The accepted range of freeze deadlines, in seconds (both ends included).
FREEZE_DEADLINE_MIN = 0.1
FREEZE_DEADLINE_MAX = 60.0
