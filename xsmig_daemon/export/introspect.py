"""The ``introspect`` source (the xsmig mock's frozen full-state read): only the probe so far.

``auto`` picks introspection when the daemon answers ``CONTROL xsmig-introspect probe`` with
anything but an error; real xenstored answers EINVAL (unknown CONTROL command). The source
itself is not implemented yet: choosing it is a usage error (exit 2). docs/export.md says
how to add it.
"""

from __future__ import annotations

from ..client import ClientError, XenstoreError, connect

PROBE_COMMAND = ("xsmig-introspect", "probe")


class IntrospectUnavailableError(Exception):
    """The introspect source cannot be used (yet)."""


async def answers_introspect(socket_path: str, timeout: float) -> bool:
    """True if the daemon at ``socket_path`` understands the introspection probe."""
    try:
        async with connect(socket_path, timeout=timeout) as xs:
            await xs.control(*PROBE_COMMAND)
    except XenstoreError:
        return False
    except ClientError:
        raise
    return True
