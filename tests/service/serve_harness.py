"""``python -m service.serve_harness CONFIG STEP_SECONDS`` (from tests/): the real ``serve()``
(signals, sd_notify, control socket) with the FakeRunner standing in for the exporter."""

from __future__ import annotations

import sys

from xsmig_daemon.service.config import load_config
from xsmig_daemon.service.main import serve

from .fakes import FakeRunner

if __name__ == "__main__":
    config = load_config(sys.argv[1])
    runner = FakeRunner(step_seconds=float(sys.argv[2]), steps=6)
    sys.exit(0 if serve(config, runner) else 1)
