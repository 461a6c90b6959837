"""Errors of the async xenstore client; every message is one line naming the daemon."""

from __future__ import annotations


class ClientError(Exception):
    """Base of everything the client raises on purpose."""


class DaemonGoneError(ClientError):
    """The daemon closed the connection, reset it, or could not be reached at all."""


class ClientTimeoutError(ClientError):
    """The daemon did not answer (or accept bytes) within the client's timeout."""


class ClientProtocolError(ClientError):
    """The daemon sent bytes that are not a valid reply (bad framing, unknown req_id)."""


class XenstoreError(ClientError):
    """The daemon answered a request with an ERROR reply such as ``ENOENT``."""

    def __init__(self, name: str, request: str) -> None:
        self.name = name
        self.request = request
        super().__init__(f"{request}: {name}")
