"""What the daemon knows about a domain (introduced or only referenced)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..wire.features import SUPPORTED_FEATURES
from .quotas import default_quotas


@dataclass(slots=True)
class Domain:
    domid: int
    quotas: dict[str, int] = field(default_factory=default_quotas)
    features: int = SUPPORTED_FEATURES
    introduced: bool = False
    #: The guest's event-channel port as given to INTRODUCE.
    remote_port: int = 0
    #: Our local port after binding (the value the image carries).
    local_port: int = 0
    #: The hypervisor's unique domain id; None when a restored stream did not carry one.
    unique_id: int | None = None
    #: Set by a shutdown until RESUME (kept for parity with C; no hypervisor here).
    shutdown: bool = False
    #: Domains whose SET_TARGET named this one, newest last: C's talloc references on this
    #: domain's connection (a RELEASE drops one instead of releasing, store/compat.py).
    referenced_by: list[int] = field(default_factory=list)
