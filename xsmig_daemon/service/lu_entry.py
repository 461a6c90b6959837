"""What the live-update wrapper runs: ``python -m xsmig_daemon.service.lu_entry SUCCESSOR
CONFIG ARGS...``, inside xenstored's own process.

Whatever happens in the hook -- a bad configuration, a bug, a module that fails to import --
this process must end by exec'ing a xenstored, or dom0 loses its xenstore. So this module
imports nothing of the package until a fallback is in place: if the hook does not exec the
successor itself, the successor is started here with the original arguments, unchecked.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

USAGE = "usage: python -m xsmig_daemon.service.lu_entry SUCCESSOR CONFIG [XENSTORED-ARGS...]"
#: argv: this module, SUCCESSOR, CONFIG, then xenstored's arguments.
_FIRST_XENSTORED_ARG = 3
#: Set by a running mock for its standby successor (mockd/standby.py; not imported here).
_STANDBY_ENV = "XSMIG_STANDBY_FD"


def main(argv: list[str]) -> NoReturn:
    if len(argv) < _FIRST_XENSTORED_ARG:
        sys.stderr.write(f"<2>lu-hook: {USAGE}\n")
        sys.exit(2)
    successor, config_path, args = argv[1], argv[2], argv[_FIRST_XENSTORED_ARG:]
    if _STANDBY_ENV in os.environ:
        # The mock's standby successor (docs/liveupdate.md): there is no dump to check; the
        # successor validates the stream it is sent, and the running daemon keeps serving
        # if it refuses it.
        sys.stderr.write(f"<6>lu-hook: standby successor, starting {successor}\n")
        sys.stderr.flush()
        os.execv(successor, [successor, *args])
    try:
        from .lu_hook import run_hook  # noqa: PLC0415 - only after the fallback is armed

        run_hook(config_path, args)
        reason = "the hook returned without starting the successor"
    except BaseException as exc:  # any failure must still start a xenstored
        reason = f"the hook failed: {exc!r}"
    sys.stderr.write(f"<2>lu-hook: {reason}; starting {successor} WITHOUT checks\n")
    sys.stderr.flush()
    os.execv(successor, [successor, *args])


if __name__ == "__main__":
    main(sys.argv)
