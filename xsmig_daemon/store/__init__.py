"""Xenstore semantics as a synchronous, I/O-free engine.

``Engine`` owns the tree, the domains and every connection. A transport feeds it bytes with
``Engine.receive(conn, data)`` and drains ``conn.output`` (see ``connection.py``); nothing
here blocks, sleeps or touches a socket.
"""

from .connection import Connection, Watch
from .engine import Engine
from .errors import XsError

__all__ = ["Connection", "Engine", "Watch", "XsError"]
