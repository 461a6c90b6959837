"""The adapter between the service and the exporter: plans and sources from the config."""

from __future__ import annotations

from pathlib import Path

from peerlib import MockDaemon, RealXenstored

from xsmig_daemon.export import WireSource
from xsmig_daemon.export.introspect import IntrospectSource
from xsmig_daemon.service.exporter_runner import ExporterRunner

from .conftest import make_config


def test_plan_for_a_c_loader_leaves_the_fds_to_the_loader_layout(short_dir: Path) -> None:
    runner = ExporterRunner(make_config(short_dir))
    wire = WireSource(str(short_dir / "xs.sock"))
    plan = runner.plan("xen-4.17", wire)
    assert (plan.mode, plan.header.version, plan.header.big_endian) == ("live-update", 1, False)
    # The loader layout chooses xen-4.17's own fd numbers (image/loader_layout.py).
    assert plan.evtchn_fd is None and plan.socket_fd is None
    spec = runner.plan("spec", wire)
    # spec: the full-fidelity version 2, whatever the source.
    assert spec.evtchn_fd == -1 and spec.header.version == 2


def test_introspect_plans_version_2_where_the_target_loads_it(short_dir: Path) -> None:
    runner = ExporterRunner(make_config(short_dir))
    introspect = IntrospectSource(str(short_dir / "xs.sock"), timeout=1)
    assert runner.plan("spec", introspect).header.version == 2
    assert runner.plan("xen-4.17", introspect).header.version == 1


async def test_configured_sources(short_dir: Path) -> None:
    for kind, expected in (("wire", WireSource), ("introspect", IntrospectSource)):
        config = make_config(
            short_dir,
            xenstored={
                "source": kind,
                "request_timeout": 7,
                "freeze_deadline": 1.5,
                "freeze_mode": "stream",
            },
        )
        chosen = await ExporterRunner(config).source()
        assert isinstance(chosen, expected)
        assert (chosen.location, chosen.timeout) == (str(short_dir / "xs.sock"), 7.0)
        if isinstance(chosen, IntrospectSource):
            assert (chosen.freeze_deadline, chosen.freeze_mode) == (1.5, "stream")


async def test_auto_introspects_the_mock(mockd: MockDaemon, short_dir: Path) -> None:
    config = make_config(short_dir, xenstored={"socket": str(mockd.socket_path)})
    assert (await ExporterRunner(config).source()).kind == "introspect"


async def test_auto_reads_the_real_xenstored_over_the_wire(
    real_xenstored: RealXenstored, short_dir: Path
) -> None:
    config = make_config(short_dir, xenstored={"socket": str(real_xenstored.socket_path)})
    assert (await ExporterRunner(config).source()).kind == "wire"
