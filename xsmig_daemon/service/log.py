"""Service logging: one line per event on stderr, prefixed with the journald priority.

systemd reads a leading ``<N>`` on each stderr line as the syslog priority (SyslogLevelPrefix=,
on by default), so ``journalctl -p warning`` works without libsystemd. Messages never carry
node values or other xenstore contents: only paths of files, counts and reasons.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

LOGGER_NAME = "xsmig"

#: Python level -> syslog priority (crit 2, err 3, warning 4, info 6, debug 7).
PRIORITIES = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


class JournalFormatter(logging.Formatter):
    """``<priority>component: message`` on one line (newlines in the message are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        priority = PRIORITIES.get(record.levelno, 6)
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            message = f"{message}: {record.exc_info[1]!r}"
        component = record.name.removeprefix(LOGGER_NAME).lstrip(".") or "xsmig"
        flat = message.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
        return f"<{priority}>{component}: {flat}"


def setup_logging(level: str = "info", stream: TextIO | None = None) -> logging.Logger:
    """Configure the ``xsmig`` logger to write journald-style lines to ``stream``."""
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JournalFormatter())
    logger.addHandler(handler)
    logger.propagate = False
    set_level(level)
    return logger


def set_level(level: str) -> None:
    logging.getLogger(LOGGER_NAME).setLevel(LEVELS[level])


def get_logger(component: str) -> logging.Logger:
    return logging.getLogger(f"{LOGGER_NAME}.{component}")
