"""What the daemon knows about a domain (introduced or only referenced)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .quotas import default_quotas

#: Feature bits offered by current Xen: ERROR | WATCHDEPTH | DOMID_ANY.
FEATURE_ERROR = 2
FEATURE_WATCHDEPTH = 4
FEATURE_DOMID_ANY = 8
SUPPORTED_FEATURES = FEATURE_ERROR | FEATURE_WATCHDEPTH | FEATURE_DOMID_ANY


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
