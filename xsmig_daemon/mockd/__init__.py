"""The mock xenstored: a trio unix-socket server around ``store.Engine``."""

from .server import MockDaemon, default_socket_path

__all__ = ["MockDaemon", "default_socket_path"]
