"""Errors of the exporter; each message is one line naming the source or sink and why."""

from __future__ import annotations


class ExportError(Exception):
    """Base of every expected export failure (the CLI prints it and exits 1)."""


class SourceError(ExportError):
    """The source could not produce a consistent state (daemon gone, retries exhausted...)."""


class SinkError(ExportError):
    """The destination refused or lost the stream (disk full, successor hung up...)."""


class RewindImpossibleError(SinkError):
    """A retry needs to discard bytes that already left (a pipe cannot be rewound)."""
