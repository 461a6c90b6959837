"""The running service: one configuration, one operation at a time, and what it reports.

Snapshots (scheduled or requested) and live updates are *operations*: they take
``operation_lock`` so that at most one of them talks to xenstored at any time; requests that
arrive meanwhile wait for their turn within their own deadline. ``status`` never waits.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from ..client import ClientError, connect
from .config import Config, ConfigError, load_config
from .control import bind_control_socket, remove_control_socket, serve_control
from .control_protocol import Request
from .errors import OperationError
from .log import get_logger, set_level
from .lu_hook import readiness_problems
from .runner import SnapshotRunner, manifest_of
from .scheduler import run_schedule
from .sd_notify import Notifier
from .snapshot_dir import list_snapshots, new_snapshot_path, remove_snapshot, select_expired

log = get_logger("service")

RunnerFactory = Callable[[Config], SnapshotRunner]

#: Manifest fields repeated in a snapshot's result (the manifest file has everything).
_SUMMARY_KEYS = ("sha256", "size", "records", "counts", "target", "source")
#: Seconds given on top of an operation's own timeout before its request deadline fires.
DEADLINE_MARGIN = 5.0


class Service:
    def __init__(
        self,
        config: Config,
        runner_factory: RunnerFactory,
        notifier: Notifier | None = None,
        *,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.runner_factory = runner_factory
        self.notifier = notifier if notifier is not None else Notifier({})
        self.wall_clock = wall_clock
        self.operation_lock = trio.Lock()
        self.operation: str | None = None
        self.progress: str | None = None
        self.last_snapshot: dict[str, Any] | None = None
        self.last_error: str | None = None
        self.next_scheduled: float | None = None
        self.counters = {"snapshots": 0, "failed": 0, "pruned": 0, "live_updates": 0}
        self.started = wall_clock()
        self._config_changed = trio.Event()

    # -------------------------------------------------------------- configuration

    @property
    def config_changed(self) -> trio.Event:
        """Set (and replaced) whenever a reload installs a new configuration."""
        return self._config_changed

    def reload(self) -> dict[str, Any]:
        """Re-read the configuration file; a bad file keeps the running configuration."""
        self.notifier.reloading()
        path = self.config.path
        new: Config | None = None
        problem = "started without a configuration file"
        if path is not None:
            try:
                new = load_config(path)
            except ConfigError as exc:
                problem = str(exc)
        if new is None:
            message = f"reload failed, keeping the running configuration: {problem}"
            log.error("%s", message)
            self.notifier.ready(message)
            raise OperationError(message)
        if new.control != self.config.control:
            log.warning("control.*: changes take effect at the next restart")
            new = Config(
                new.xenstored, new.snapshots, self.config.control, new.log, new.lu_hook, new.path
            )
        self.config = new
        set_level(new.log.level)
        changed, self._config_changed = self._config_changed, trio.Event()
        changed.set()
        log.info("configuration reloaded from %s", path)
        self.notifier.ready(self.idle_status())
        return {"config": path}

    # -------------------------------------------------------------- operations

    def idle_status(self) -> str:
        last = self.last_snapshot
        if self.last_error is not None:
            return f"idle; last operation failed: {self.last_error}"
        if last is not None:
            return f"idle; last snapshot {last['image']}"
        return "idle; no snapshot yet"

    @asynccontextmanager
    async def _running(self, what: str) -> AsyncIterator[None]:
        """Status bookkeeping around one operation; the caller holds ``operation_lock``."""
        self.operation, self.progress = what, None
        self.notifier.status(what)
        try:
            yield
        except OperationError as exc:
            self.last_error = str(exc)
            raise
        else:
            self.last_error = None
        finally:
            self.operation = self.progress = None
            self.notifier.status(self.idle_status())

    def _snapshot_path(self, kind: str, output: str | None) -> Path:
        if output is not None:
            return Path(output)
        directory = Path(self.config.snapshots.directory)
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise OperationError(
                f"snapshots.directory: {directory}: {exc.strerror or exc}"
            ) from None
        return new_snapshot_path(directory, kind, self.wall_clock())

    async def snapshot(
        self,
        *,
        kind: str = "manual",
        output: str | None = None,
        force: bool = False,
        target: str | None = None,
    ) -> dict[str, Any]:
        async with self.operation_lock:
            # Named only once it is this snapshot's turn: the time in the name is its start.
            path = self._snapshot_path(kind, output)
            return await self._snapshot(path, force, target)

    async def _snapshot(self, path: Path, force: bool, target: str | None) -> dict[str, Any]:
        snaps = self.config.snapshots
        profile = target or snaps.target
        what = f"snapshot to {path}"
        async with self._running(what):
            runner = self.runner_factory(self.config)
            log.info("%s started (target %s)", what, profile)
            self.notifier.extend_timeout(snaps.timeout + DEADLINE_MARGIN)

            def progress(text: str) -> None:
                self.progress = text
                self.notifier.status(f"{what}: {text}")

            failure: str | None = None
            manifest: dict[str, Any] = {}
            try:
                with trio.fail_after(snaps.timeout):
                    manifest = await runner.run(
                        path, target=profile, force=force, progress=progress
                    )
            except trio.TooSlowError:
                failure = f"{what}: not finished within snapshots.timeout ({snaps.timeout:g} s)"
            except Exception as exc:
                failure = f"{what} failed: {exc}"
            if failure is not None:
                self.counters["failed"] += 1
                log.error("%s", failure)
                raise OperationError(failure)
            self.counters["snapshots"] += 1
            result: dict[str, Any] = {
                "image": str(path),
                "manifest": str(manifest_of(path)),
                "finished": self.wall_clock(),
            }
            result.update({k: manifest[k] for k in _SUMMARY_KEYS if k in manifest})
            self.last_snapshot = result
            log.info("%s complete", what)
        return result

    async def scheduled_snapshot(self) -> dict[str, Any] | None:
        """One scheduled snapshot, then retention -- only after the new one is complete."""
        try:
            result = await self.snapshot(kind="scheduled")
        except OperationError:
            return None  # already logged; keep every old snapshot
        self.prune()
        return result

    def prune(self) -> list[str]:
        snaps = self.config.snapshots
        entries = list_snapshots(Path(snaps.directory), "scheduled")
        expired = select_expired(entries, self.wall_clock(), snaps.keep_count, snaps.keep_age)
        for entry in expired:
            remove_snapshot(entry)
            log.info("pruned %s", entry.path)
        self.counters["pruned"] += len(expired)
        return [str(e.path) for e in expired]

    async def live_update(
        self, *, force: bool | None = None, timeout: int | None = None
    ) -> dict[str, Any]:
        """Ask xenstored for a live update whose new binary is the lu-hook wrapper."""
        lu = self.config.lu_hook
        for key, path in (("lu_hook.wrapper", lu.wrapper), ("lu_hook.successor", lu.successor)):
            if not os.access(path, os.X_OK):
                raise OperationError(f"{key}: {path} is not an executable file")
        for problem in readiness_problems(self.config):
            # A custom wrapper may legitimately differ from the one xsmig writes.
            log.warning("%s", problem)
        seconds = timeout if timeout is not None else lu.timeout
        forced = lu.force if force is None else force
        socket_path = self.config.xenstored.socket
        started = self.wall_clock()
        async with self.operation_lock, self._running(f"live update of {socket_path}"):
            self.notifier.extend_timeout(seconds + DEADLINE_MARGIN)
            failure: str | None = None
            try:
                text = await _request_live_update(
                    socket_path, lu.wrapper, seconds, forced, self.config.xenstored.connect_timeout
                )
            except ClientError as exc:
                failure = f"live update of {socket_path}: {exc}"
                rejected = self._copies_since("lu-rejected", started)
                if rejected:
                    failure += (
                        f"; lu-hook rejected the dump and started xenstored fresh (empty), "
                        f"rejected dump kept at {', '.join(rejected)}"
                    )
            else:
                if text != "OK":
                    failure = f"live update of {socket_path} refused: {text}"
            if failure is not None:
                log.error("%s", failure)
                raise OperationError(failure)
            self.counters["live_updates"] += 1
            copies = self._copies_since("lu", started)
            log.info("live update of %s complete", socket_path)
        return {"reply": text, "copies": copies}

    def _copies_since(self, kind: str, started: float) -> list[str]:
        directory = Path(self.config.snapshots.directory)
        return [str(e.path) for e in list_snapshots(directory, kind) if e.created >= int(started)]

    def status(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "config": self.config.path,
            "xenstored": self.config.xenstored.socket,
            "operation": self.operation,
            "progress": self.progress,
            "last_snapshot": self.last_snapshot,
            "last_error": self.last_error,
            "next_scheduled": self.next_scheduled,
            "counters": dict(self.counters),
            "lu_hook_problems": readiness_problems(self.config),
            "uptime": round(self.wall_clock() - self.started, 3),
        }

    # -------------------------------------------------------------- control requests

    def default_deadline(self, command: str) -> float:
        cfg = self.config
        if command == "snapshot":
            # Room for one operation already running ahead of this one, then this one.
            return 2 * cfg.snapshots.timeout + DEADLINE_MARGIN
        if command == "live-update":
            return cfg.snapshots.timeout + cfg.lu_hook.timeout + 60
        return 10.0

    async def execute(self, request: Request) -> dict[str, Any]:
        args = request.args
        match request.command:
            case "status":
                return self.status()
            case "reload":
                return self.reload()
            case "snapshot":
                return await self.snapshot(
                    output=args.get("output"),
                    force=args.get("force", False),
                    target=args.get("target"),
                )
            case "live-update":
                return await self.live_update(force=args.get("force"), timeout=args.get("timeout"))
        raise OperationError(f"command {request.command!r} is not implemented")

    # -------------------------------------------------------------- main loop

    async def run(
        self,
        *,
        handle_signals: bool = True,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        listener = bind_control_socket(self.config.control.socket)
        control_path = self.config.control.socket
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self.notifier.run_watchdog)
                if handle_signals:
                    await nursery.start(self._handle_signals, nursery.cancel_scope)
                await nursery.start(serve_control, self, listener)
                nursery.start_soon(run_schedule, self)
                log.info(
                    "ready: control socket %s, xenstored %s, snapshots in %s",
                    control_path,
                    self.config.xenstored.socket,
                    self.config.snapshots.directory,
                )
                self.notifier.ready(self.idle_status())
                task_status.started()
                nursery.start_soon(self._probe_xenstored)
        finally:
            remove_control_socket(control_path, listener)

    async def _probe_xenstored(self) -> None:
        xs = self.config.xenstored
        try:
            async with connect(xs.socket, timeout=xs.connect_timeout):
                pass
        except ClientError as exc:
            log.warning("xenstored not reachable yet: %s", exc)
        else:
            log.info("xenstored at %s accepts connections", xs.socket)

    async def _handle_signals(
        self,
        scope: trio.CancelScope,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        with trio.open_signal_receiver(signal.SIGHUP, signal.SIGTERM, signal.SIGINT) as signals:
            task_status.started()
            async for signum in signals:
                if signum == signal.SIGHUP:
                    log.info("SIGHUP: reloading %s", self.config.path)
                    with contextlib.suppress(OperationError):
                        self.reload()  # a failure is logged and reported with READY=1
                    continue
                name = signal.Signals(signum).name
                what = f" (cancelling: {self.operation})" if self.operation else ""
                log.info("%s: stopping%s", name, what)
                self.notifier.stopping(f"stopping on {name}")
                scope.cancel()
                return


async def _request_live_update(
    socket_path: str, wrapper: str, seconds: int, force: bool, connect_timeout: float
) -> str:
    """The CONTROL requests ``xenstore-control live-update -f WRAPPER -t N [-F]`` sends."""
    # The "-s" reply comes from the new daemon, after dump + hook + exec + restore.
    async with connect(socket_path, timeout=seconds + 30 + connect_timeout) as xs:
        reply = await xs.control("live-update", "-f", wrapper)
        if _text(reply) != "OK":
            return _text(reply)
        start = ["live-update", "-s", "-t", str(seconds), *(["-F"] if force else [])]
        with trio.move_on_after(seconds + 1):
            while (text := _text(await xs.control(*start))) == "BUSY":
                await trio.sleep(1)  # oxenstored asks to be asked again
            return text
        await xs.control("live-update", "-a")
        return f"still busy after {seconds} s; aborted"


def _text(payload: bytes) -> str:
    return payload.rstrip(b"\0").decode("utf-8", "replace")
