"""``xsmig-xenstored``: the mock under C xenstored's command line (its options plus ``-U``).

For ``xenstore-control live-update -f $(command -v xsmig-xenstored)`` and for unit files
written for C xenstored: the socket comes from ``$XENSTORED_PATH`` / ``$XENSTORED_RUNDIR``,
C's options are accepted and ignored, ``-U`` takes over from a running daemon.
"""

from __future__ import annotations

import sys

from .. import cli


def main() -> int:
    return cli.main(["mockd", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
