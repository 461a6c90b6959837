"""Errors of the service layer; each message is one line naming what failed and why."""

from __future__ import annotations


class OperationError(Exception):
    """An operation (snapshot, live update, reload) failed; goes to the log and the client."""


class ControlSocketError(Exception):
    """The control socket cannot be created; names the path and why."""
