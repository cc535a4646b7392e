"""``python -m daemon.cli``: the same as ``infractl``."""

import sys

from daemon.cli.main import main

sys.exit(main())
