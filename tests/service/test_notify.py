"""``xsmig serve`` under a test-provided NOTIFY_SOCKET: READY, STATUS and EXTEND_TIMEOUT during
an export, WATCHDOG cadence, RELOADING/READY on SIGHUP (good and bad file), STOPPING, and
SIGTERM in the middle of an export."""

from __future__ import annotations

import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trio

from xsmig_daemon.commands.ctl import exchange
from xsmig_daemon.service.sd_notify import Notifier

from .conftest import write_config
from .notify_listener import NotifyListener

TESTS = Path(__file__).resolve().parents[1]


@dataclass
class Served:
    process: subprocess.Popen[str]
    notify: NotifyListener
    config: Path
    base: Path

    @property
    def control(self) -> str:
        return str(self.base / "ctl.sock")

    def request(self, timeout: float = 30, **fields: Any) -> dict[str, Any]:
        return exchange(self.control, json.dumps(fields).encode() + b"\n", timeout)

    def stderr_after_exit(self) -> str:
        _, err = self.process.communicate(timeout=20)
        return err


def start_serve(
    base: Path, *, step: float = 0.0, env: dict[str, str] | None = None, **sections: Any
) -> Served:
    config = write_config(base / "config.toml", base, **sections)
    notify = NotifyListener(base / "notify")
    environment = {**os.environ, "NOTIFY_SOCKET": str(base / "notify"), **(env or {})}
    process = subprocess.Popen(
        [sys.executable, "-m", "service.serve_harness", str(config), str(step)],
        cwd=TESTS,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    return Served(process, notify, config, base)


def start_ctl_snapshot(control: str, output: Path) -> subprocess.Popen[str]:
    """`xsmig ctl snapshot --output OUTPUT` against the service, as a child process."""
    command = [sys.executable, "-m", "xsmig_daemon", "ctl", "--json", "--socket", control]
    return subprocess.Popen(
        [*command, "snapshot", "--output", str(output)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def served_factory(short_dir: Path) -> Iterator[Any]:
    started: list[Served] = []

    def factory(**kwargs: Any) -> Served:
        served = start_serve(short_dir, **kwargs)
        started.append(served)
        return served

    yield factory
    for served in started:
        if served.process.poll() is None:
            served.process.kill()
        served.process.communicate(timeout=10)
        served.notify.close()


def test_ready_status_during_export_and_stopping(served_factory: Any, short_dir: Path) -> None:
    served = served_factory(step=0.3)
    ready = served.notify.wait_for(lambda f: f.get("READY") == "1")
    assert ready.fields["STATUS"] == "idle; no snapshot yet"
    # READY means the control socket already answers.
    assert served.request(command="status")["ok"] is True

    output = short_dir / "a.img"
    client = start_ctl_snapshot(served.control, output)
    extend = served.notify.wait_for(lambda f: "EXTEND_TIMEOUT_USEC" in f)
    assert int(extend.fields["EXTEND_TIMEOUT_USEC"]) == 35_000_000  # timeout 30 s + 5 s
    progress = served.notify.wait_for(lambda f: "pieces" in f.get("STATUS", ""))
    assert progress.fields["STATUS"].startswith(f"snapshot to {output}: ")
    out, err = client.communicate(timeout=30)
    assert client.returncode == 0, err
    assert json.loads(out)["image"] == str(output)
    done = served.notify.wait_for(lambda f: f.get("STATUS", "").startswith("idle"))
    assert done.fields["STATUS"] == f"idle; last snapshot {output}"

    served.process.send_signal(signal.SIGTERM)
    stopping = served.notify.wait_for(lambda f: f.get("STOPPING") == "1")
    assert stopping.fields["STATUS"] == "stopping on SIGTERM"
    assert served.process.wait(timeout=20) == 0
    assert not Path(served.control).exists()
    err = served.stderr_after_exit()
    lines = err.strip().splitlines()
    assert all(line[:3] in ("<6>", "<4>", "<3>", "<7>") for line in lines), err
    assert "<6>service: SIGTERM: stopping" in err


def test_watchdog_cadence_is_half_the_period(served_factory: Any) -> None:
    served = served_factory(env={"WATCHDOG_USEC": "400000"})
    served.notify.wait_for(lambda f: f.get("READY") == "1")
    pings = [n for n in served.notify.collect(2.1) if n.fields.get("WATCHDOG") == "1"]
    gaps = [b.received - a.received for a, b in itertools.pairwise(pings)]
    # 0.2 s apart; a loaded CI machine may delay one ping, never make them early.
    assert 7 <= len(pings) <= 12, gaps
    assert 0.18 <= statistics.median(gaps) <= 0.25, gaps
    assert min(gaps) >= 0.15 and max(gaps) < 0.4, gaps


def test_watchdog_is_silent_when_meant_for_another_pid(served_factory: Any) -> None:
    served = served_factory(env={"WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"})
    served.notify.wait_for(lambda f: f.get("READY") == "1")
    assert [n for n in served.notify.collect(1.0) if "WATCHDOG" in n.fields] == []


def test_sighup_reloads_and_a_bad_file_keeps_the_old_configuration(
    served_factory: Any, short_dir: Path
) -> None:
    served = served_factory()
    served.notify.wait_for(lambda f: f.get("READY") == "1")

    write_config(served.config, short_dir, log={"level": "debug"})
    before = time.monotonic_ns() // 1000
    served.process.send_signal(signal.SIGHUP)
    reloading = served.notify.wait_for(lambda f: f.get("RELOADING") == "1")
    after = time.monotonic_ns() // 1000
    assert before <= int(reloading.fields["MONOTONIC_USEC"]) <= after
    ready = served.notify.wait_for(lambda f: f.get("READY") == "1")
    assert ready.fields["STATUS"].startswith("idle")

    served.config.write_text(served.config.read_text() + "\n[snapshots]\nbogus = 1\n")
    served.process.send_signal(signal.SIGHUP)
    served.notify.wait_for(lambda f: f.get("RELOADING") == "1")
    refused = served.notify.wait_for(lambda f: f.get("READY") == "1")
    assert refused.fields["STATUS"].startswith("reload failed, keeping the running configuration: ")
    # Still serving, with the configuration of the first reload.
    status = served.request(command="status")
    assert status["ok"] is True
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=20) == 0
    err = served.stderr_after_exit()
    assert "<3>service: reload failed, keeping the running configuration: " in err
    assert "Cannot declare ('snapshots')" in err or "not valid TOML" in err
    assert "<7>" in err  # log.level = debug took effect after the first reload


def test_sigterm_during_an_export_leaves_no_partial_file(
    served_factory: Any, short_dir: Path
) -> None:
    served = served_factory(step=1.0)
    served.notify.wait_for(lambda f: f.get("READY") == "1")
    output = short_dir / "out" / "partial.img"
    output.parent.mkdir()
    client = start_ctl_snapshot(served.control, output)
    served.notify.wait_for(lambda f: "2/6 pieces" in f.get("STATUS", ""))
    assert [p.name for p in output.parent.iterdir()]  # the temporary file is there
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=20) == 0
    _, err = client.communicate(timeout=20)
    assert client.returncode == 1
    assert "closed the connection without answering" in err
    assert list(output.parent.iterdir()) == []
    assert "cancelling: snapshot to" in served.stderr_after_exit()


async def test_watchdog_stops_while_the_event_loop_is_stuck(
    short_dir: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Virtual time (the clock jumps to each due timer), so the counts are exact at any load:
    a ping at once, then one per half period (50 ms)."""
    listener = NotifyListener(short_dir / "n")
    try:
        env = {"NOTIFY_SOCKET": str(short_dir / "n"), "WATCHDOG_USEC": "100000"}
        notifier = Notifier(env)
        assert env == {}  # consumed, so that children do not inherit it
        async with trio.open_nursery() as nursery:
            nursery.start_soon(notifier.run_watchdog)
            await trio.sleep(0.525)  # pings at 0, 50, ..., 500 ms
            assert len(listener.collect(0.01)) == 11
            autojump_clock.jump(0.5)  # the loop is stuck for 0.5 s: no task runs...
            assert listener.collect(0.01) == []  # ...so no ping is sent
            await trio.sleep(0.31)  # the overdue ping at once, then every 50 ms again
            assert len(listener.collect(0.01)) == 7
            nursery.cancel_scope.cancel()
        notifier.close()
    finally:
        listener.close()


def test_a_second_service_on_the_same_control_socket_exits_1(served_factory: Any) -> None:
    served = served_factory()
    served.notify.wait_for(lambda f: f.get("READY") == "1")
    second = subprocess.run(
        [sys.executable, "-m", "xsmig_daemon", "serve", "--config", str(served.config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"},
    )
    assert second.returncode == 1
    assert second.stderr.strip() == (
        f"<3>service: cannot start: control.socket: {served.control}: "
        "another process is listening there"
    )
    assert served.request(command="status")["ok"] is True
