"""The adapter between the service and the exporter: plans and sources from the config."""

from __future__ import annotations

from pathlib import Path

import pytest

from xsmig_daemon.export import WireSource
from xsmig_daemon.service.exporter_runner import ExporterRunner, ExporterUnavailableError

from .conftest import make_config


def test_plan_for_a_c_loader_names_an_evtchn_fd(short_dir: Path) -> None:
    plan = ExporterRunner(make_config(short_dir)).plan("xen-4.17")
    assert (plan.mode, plan.header.version, plan.header.big_endian) == ("live-update", 1, False)
    assert plan.evtchn_fd >= 0 and plan.socket_fd == -1
    spec = ExporterRunner(make_config(short_dir)).plan("spec")
    assert spec.evtchn_fd == -1 and spec.header.version == 1


def test_auto_and_wire_read_over_the_wire(short_dir: Path) -> None:
    for source in ("auto", "wire"):
        config = make_config(short_dir, xenstored={"source": source, "request_timeout": 7})
        chosen = ExporterRunner(config).source()
        assert isinstance(chosen, WireSource)
        assert (chosen.location, chosen.timeout) == (str(short_dir / "xs.sock"), 7.0)


async def test_introspect_is_refused_until_the_exporter_has_it(short_dir: Path) -> None:
    runner = ExporterRunner(make_config(short_dir, xenstored={"source": "introspect"}))
    with pytest.raises(ExporterUnavailableError, match="no introspect source yet"):
        await runner.run(short_dir / "x.img", target="spec", force=False, progress=print)
    assert not (short_dir / "x.img").exists()
