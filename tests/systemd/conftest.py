"""One booted systemd container per test module, with xsmig and its units installed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .nspawn import REPO, Container, booted

#: What xsmig.service needs to run against the mock instead of Xen (docs/service.md).
NO_XEN_DROPIN = "[Unit]\nConditionPathExists=\n[Service]\nExecCondition=\n"


@pytest.fixture(scope="module")
def container() -> Iterator[Container]:
    with booted() as machine:
        machine.install_xsmig()
        machine.write("/etc/xsmig/config.toml", (REPO / "config.example.toml").read_text())
        machine.write("/etc/systemd/system/xsmig.service.d/no-xen.conf", NO_XEN_DROPIN)
        machine.run("systemctl", "daemon-reload")
        yield machine
