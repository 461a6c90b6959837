"""A stand-in exporter for the service tests that are about the service itself (control
socket, schedule, sd_notify, signals): it writes a real 4.17 image from tests/data slowly, in
steps, the way the exporter's file sink does (temporary file, rename at the end)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import trio

from xsmig_daemon.imagefile import atomic_output
from xsmig_daemon.service.config import Config
from xsmig_daemon.service.runner import ProgressCallback, manifest_of

DATA = Path(__file__).resolve().parents[1] / "data"
IMAGE = DATA / "basic.img"


class FakeRunner:
    """Writes IMAGE in ``steps`` pieces with ``step_seconds`` between them."""

    def __init__(self, step_seconds: float = 0.0, steps: int = 4) -> None:
        self.step_seconds = step_seconds
        self.steps = steps
        self.calls = 0
        self.active = 0
        self.max_active = 0
        self.fail_next = 0
        self.started: list[float] = []
        #: Called at the start of every run (e.g. to look at the directory meanwhile).
        self.on_start: list[Any] = []

    def __call__(self, config: Config) -> FakeRunner:
        return self

    async def run(
        self, output: Path, *, target: str, force: bool, progress: ProgressCallback
    ) -> dict[str, Any]:
        self.calls += 1
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        self.started.append(trio.current_time())
        for hook in self.on_start:
            hook(output)
        try:
            data = IMAGE.read_bytes()
            piece = -(-len(data) // self.steps)
            with atomic_output(str(output), force=force) as out:
                for index in range(self.steps):
                    out.write(data[index * piece : (index + 1) * piece])
                    progress(f"{index + 1}/{self.steps} pieces")
                    await trio.sleep(self.step_seconds)
                if self.fail_next:
                    self.fail_next -= 1
                    raise RuntimeError("injected failure")
            manifest = {
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
                "target": target,
            }
            with atomic_output(str(manifest_of(output)), force=force) as out:
                out.write(json.dumps(manifest).encode())
            return manifest
        finally:
            self.active -= 1
