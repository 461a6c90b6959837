"""The export policy that ``xsmig snapshot`` and the service share (export/policy.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from xsmig_daemon.export import ImageSource, WireSource
from xsmig_daemon.export.introspect import IntrospectSource
from xsmig_daemon.export.policy import (
    PlanSettings,
    PolicyError,
    SourceSettings,
    check_plan,
    export_plan,
    open_source,
)
from xsmig_daemon.image.encoder import encode_image
from xsmig_daemon.image.profiles import SPEC, XEN_4_17, XEN_4_20, XEN_4_21
from xsmig_daemon.image.records import GlobalData, Header


def _version(settings: PlanSettings, source: WireSource | IntrospectSource | ImageSource) -> int:
    return export_plan(settings, source).header.version


def test_stream_version_by_source_and_target(tmp_path: Path) -> None:
    wire = WireSource(str(tmp_path / "s"))
    introspect = IntrospectSource(str(tmp_path / "s"), timeout=1)
    image = tmp_path / "v2.img"
    image.write_bytes(b"".join(encode_image([GlobalData(-1, -1)], Header(2, False))))
    from_image = ImageSource(str(image))
    # spec: the full-fidelity version 2 whatever the source; a real daemon's: version 1.
    assert _version(PlanSettings(SPEC), wire) == 2
    assert _version(PlanSettings(SPEC), introspect) == 2
    assert _version(PlanSettings(XEN_4_20), wire) == 1
    assert _version(PlanSettings(XEN_4_21), introspect) == 2
    assert _version(PlanSettings(XEN_4_17), introspect) == 1  # 4.17 loads version 1 only
    assert _version(PlanSettings(SPEC), from_image) == 2  # the input image's
    assert _version(PlanSettings(XEN_4_17), from_image) == 1
    assert _version(PlanSettings(SPEC, version=1), introspect) == 1  # asked for


def test_c_loaders_leave_fds_to_the_layout_and_get_little_endian(tmp_path: Path) -> None:
    """The loader layout (image/loader_layout.py) picks each version's own fd numbers."""
    wire = WireSource(str(tmp_path / "s"))
    plan = export_plan(PlanSettings(XEN_4_17), wire)
    assert (plan.evtchn_fd, plan.socket_fd, plan.header.big_endian) == (None, None, False)
    assert export_plan(PlanSettings(SPEC), wire).evtchn_fd == -1  # spec: no fd
    assert export_plan(PlanSettings(SPEC, evtchn_fd=9), wire).evtchn_fd == 9
    domain = export_plan(PlanSettings(SPEC, domain=7), wire)
    assert (domain.mode, domain.domid) == ("domain", 7)


@pytest.mark.parametrize(
    ("settings", "why"),
    [
        (PlanSettings(SPEC, domain=0x7FF0), "domain 32752 is not a domain id (0..32751)"),
        (PlanSettings(SPEC, domain=-1), "is not a domain id"),
        (PlanSettings(XEN_4_17, domain=3), "live-update images only"),
        (PlanSettings(XEN_4_17, version=2), "does not load version 2"),
    ],
)
def test_impossible_plans_are_refused(settings: PlanSettings, why: str) -> None:
    with pytest.raises(PolicyError, match=re.escape(why)):
        check_plan(settings)


async def test_source_choice(tmp_path: Path) -> None:
    image = str(tmp_path / "x.img")
    chosen = await open_source(SourceSettings("auto", str(tmp_path / "s"), image=image))
    assert isinstance(chosen, ImageSource) and chosen.location == image
    introspect = await open_source(
        SourceSettings("introspect", "/s", freeze_mode="stream", freeze_deadline=3)
    )
    assert isinstance(introspect, IntrospectSource)
    assert (introspect.freeze_mode, introspect.freeze_deadline) == ("stream", 3)
    wire = await open_source(SourceSettings("wire", "/s", attempts=2, consistency="watch"))
    assert isinstance(wire, WireSource)
    assert (wire.max_attempts, wire.consistency) == (2, "watch")
    # The default for a snapshot or the service: the watch, spread over 8 connections.
    default = await open_source(SourceSettings("wire", "/s"))
    assert isinstance(default, WireSource)
    assert (default.consistency, default.lanes) == ("watch", 8)
    one = await open_source(SourceSettings("wire", "/s", consistency="transaction", lanes=3))
    assert isinstance(one, WireSource) and (one.consistency, one.lanes) == ("transaction", 3)
    with pytest.raises(PolicyError, match="needs an image file"):
        await open_source(SourceSettings("image", "/s"))
    with pytest.raises(PolicyError, match="only read by the image source"):
        await open_source(SourceSettings("wire", "/s", image=image))
