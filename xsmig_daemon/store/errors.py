"""The error a request fails with: one of the wire protocol's errno names."""

from __future__ import annotations

from ..wire.ops import ERROR_NAMES


class XsError(Exception):
    """A request failed; ``name`` is what C xenstored puts in the XS_ERROR reply."""

    def __init__(self, name: str, why: str = "") -> None:
        if name not in ERROR_NAMES:
            raise ValueError(f"{name} is not a xenstore error name")
        super().__init__(f"{name}: {why}" if why else name)
        self.name = name
