"""The export policy: which source reads the state, and which stream a target gets.

``xsmig snapshot`` and the service (``service/exporter_runner.py``) both call these, so a
snapshot taken either way is the same stream for the same settings:

* source ``auto``: the image if one is given, else ``introspect`` when the daemon answers
  the introspection probe (the xsmig mock), else ``wire`` (any xenstored);
* wire consistency: ``watch`` over ``lanes`` connections unless asked otherwise (a
  transaction is quadratic inside both C daemons); ``WireSource`` itself, as the migration
  uses it for one domain's small stream, keeps one transaction;
* stream version: the one asked for; else the input image's (image source) if the target
  loads it, else the highest the target loads (``profiles.default_version``): a default
  ``spec`` snapshot is the full-fidelity version 2, a real xenstored's version 1; little
  endian;
* GLOBAL_DATA fds: the ones asked for; for a proven real target (xen-4.17, xen-4.20) else
  left to the loader layout (``image/loader_layout.py``: the source's, else that version's
  own numbers); for the others evtchn-fd ``C_EVTCHN_FD`` (C refuses -1) and rw-socket-fd
  ``C_SOCKET_FD`` for a loader that needs its listening socket (xen-4.22), else -1;
* a target whose daemon writes version 2 itself (``Profile.dump``: xen-4.22) gets version 2
  unless asked otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..image.profiles import Profile, default_version
from ..image.records import DOMID_FIRST_RESERVED, Header
from ..wire.introspect import SNAPSHOT
from .consistency import Consistency
from .imagesource import ImageSource, peek_header
from .introspect import DEFAULT_FREEZE_DEADLINE, IntrospectSource, answers_introspect
from .lanewalk import DEFAULT_LANES
from .source import ExportPlan, Source
from .wire import DEFAULT_ATTEMPTS, WireSource

#: GLOBAL_DATA evtchn-fd for C loaders (they refuse -1): the first fd after stdio.
C_EVTCHN_FD = 3
#: GLOBAL_DATA rw-socket-fd for loaders that need their listening socket (xen-4.22).
C_SOCKET_FD = 4
#: Source kinds; ``auto`` picks one of the others.
SOURCE_KINDS = ("auto", "wire", "image", "introspect")


class PolicyError(ValueError):
    """The settings ask for something no export can do (a usage error); one line."""


@dataclass(frozen=True, slots=True)
class SourceSettings:
    """Where state comes from and how to read it."""

    kind: str
    socket: str
    image: str | None = None
    #: Longest wait for any one reply.
    timeout: float = 10.0
    #: Longest wait for the introspection probe (``auto``); default ``timeout``.
    probe_timeout: float | None = None
    freeze_deadline: float = DEFAULT_FREEZE_DEADLINE
    freeze_mode: str = SNAPSHOT
    attempts: int = DEFAULT_ATTEMPTS
    consistency: Consistency = "watch"
    #: Connections a watched wire walk spreads its requests over.
    lanes: int = DEFAULT_LANES


async def open_source(settings: SourceSettings) -> Source:
    """The source ``settings`` ask for (``auto`` resolved); PolicyError for contradictions."""
    kind = settings.kind
    if kind not in SOURCE_KINDS:
        raise PolicyError(f"unknown source {kind!r}")
    if kind == "auto":
        kind = "image" if settings.image else "wire"
        probe_timeout = settings.probe_timeout or settings.timeout
        if not settings.image and await answers_introspect(settings.socket, probe_timeout):
            kind = "introspect"
    if kind == "image":
        if not settings.image:
            raise PolicyError("the image source needs an image file")
        return ImageSource(settings.image)
    if settings.image:
        raise PolicyError(f"an image file is only read by the image source (not {kind})")
    if kind == "introspect":
        return IntrospectSource(
            settings.socket,
            timeout=settings.timeout,
            freeze_deadline=settings.freeze_deadline,
            freeze_mode=settings.freeze_mode,
        )
    return WireSource(
        settings.socket,
        timeout=settings.timeout,
        max_attempts=settings.attempts,
        consistency=settings.consistency,
        lanes=settings.lanes,
    )


@dataclass(frozen=True, slots=True)
class PlanSettings:
    """What the stream is for: the target loader, the whole state or one domain, and the
    GLOBAL_DATA / dom0 ring facts a wire source cannot see (``None``: the policy's)."""

    profile: Profile
    domain: int | None = None
    version: int | None = None
    socket_fd: int | None = None
    evtchn_fd: int | None = None
    dom0_evtchn: int = 1
    timeout: float = 10.0


def check_plan(settings: PlanSettings) -> None:
    """Refuse what no export can write, before any source is opened (PolicyError)."""
    profile = settings.profile
    if settings.domain is not None and not 0 <= settings.domain < DOMID_FIRST_RESERVED:
        raise PolicyError(
            f"domain {settings.domain} is not a domain id (0..{DOMID_FIRST_RESERVED - 1})"
        )
    if settings.domain is not None and profile.is_c_loader:
        raise PolicyError(
            f"target {profile.name} loads live-update images only; a domain stream needs spec"
        )
    if settings.version is not None and settings.version not in profile.versions:
        raise PolicyError(f"target {profile.name} does not load version {settings.version} streams")


def stream_version(settings: PlanSettings, source: Source) -> int:
    """The version rule of the module doc."""
    if settings.version is not None:
        return settings.version
    dump = settings.profile.dump
    # What the target's own daemon writes (4.22: 2); else the highest it loads.
    input_version = dump.default_version if dump is not None else None
    if isinstance(source, ImageSource):
        input_version = peek_header(source.location).version
    return default_version(settings.profile, input_version)


def export_plan(settings: PlanSettings, source: Source) -> ExportPlan:
    """The plan for ``source``: checked (PolicyError), versions and fds defaulted."""
    check_plan(settings)
    profile = settings.profile
    evtchn_fd = settings.evtchn_fd
    socket_fd = settings.socket_fd
    if not profile.proven:  # the proven rows leave it to the loader layout
        if evtchn_fd is None:
            evtchn_fd = C_EVTCHN_FD if profile.is_c_loader else -1
        if socket_fd is None:
            socket_fd = C_SOCKET_FD if profile.needs_listening_socket else -1
    return ExportPlan(
        mode="domain" if settings.domain is not None else "live-update",
        profile=profile,
        header=Header(stream_version(settings, source), False),
        domid=settings.domain,
        dom0_evtchn=settings.dom0_evtchn,
        socket_fd=socket_fd,
        evtchn_fd=evtchn_fd,
        timeout=settings.timeout,
    )
