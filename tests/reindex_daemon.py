"""``infrad`` whose reindex holds still just before its swap, for a ``kill -9`` at the worst
moment: everything rebuilt beside the live store, nothing swapped yet.

The rebuild touches ``$REINDEX_HELD`` and waits there (for a file that never comes); the test
kills the daemon. Run as ``python -m tests.reindex_daemon``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from daemon.main import main
from stores.memory import rebuild


def _held_swap(self: rebuild.Beside) -> None:
    Path(os.environ["REINDEX_HELD"]).touch()
    while True:  # until the test kills the process
        time.sleep(0.05)


if __name__ == "__main__":
    rebuild.Beside.swap = _held_swap  # type: ignore[method-assign]
    sys.exit(main(sys.argv[1:]))
