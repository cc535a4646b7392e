"""``infractl dashboard``: open the local dashboard in the browser, or print its link.

The link carries the access token of this start of infrad (``dashboard.url``); the browser
trades it for a session cookie at once. ``webbrowser`` is the stdlib's, loaded only here.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from daemon.cli.common import call, command, emit


def add_commands(sub: Any, out: argparse.ArgumentParser) -> None:
    p = command(
        sub,
        "dashboard",
        cmd_dashboard,
        "open the local dashboard in the browser",
        ("infractl dashboard", "infractl dashboard --print-url"),
        parents=[out],
    )
    p.add_argument(
        "--print-url",
        action="store_true",
        help="print the link (with its access token) instead of opening a browser",
    )


def cmd_dashboard(args: argparse.Namespace) -> int:
    data = call(args, "dashboard.url")
    if args.print_url or args.json:
        emit(args, data, lambda d: print(d["url"]))
        return 0
    import webbrowser

    if not webbrowser.open(data["url"]):
        print(
            "infractl: no browser to open here; open the link `infractl dashboard --print-url`"
            " prints",
            file=sys.stderr,
        )
        return 1
    print(f"dashboard: opened {data['address']} in the browser")
    return 0
