"""Start the service from a validated configuration (``xsmig serve``)."""

from __future__ import annotations

import trio

from .app import RunnerFactory, Service
from .config import Config
from .errors import ControlSocketError
from .exporter_runner import exporter_runner
from .log import get_logger, setup_logging
from .sd_notify import Notifier

log = get_logger("service")


def serve(config: Config, runner_factory: RunnerFactory = exporter_runner) -> bool:
    """Run until SIGTERM/SIGINT; False if the service could not start."""
    setup_logging(config.log.level)
    notifier = Notifier()
    service = Service(config, runner_factory, notifier)
    try:
        trio.run(service.run)
    except ControlSocketError as exc:
        failure = str(exc)
    else:
        failure = ""
    finally:
        notifier.close()
    if failure:
        log.error("cannot start: %s", failure)
        return False
    log.info("stopped")
    return True
