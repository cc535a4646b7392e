"""Giving freed memory back to the system after a burst of work.

glibc keeps what a process freed in its heaps for reuse; after an ingest that held hundreds of
megabytes of activations and pages, a daemon that then idles for hours would keep them resident.
``malloc_trim(0)`` hands the free pages back. Elsewhere (macOS, musl) this does nothing: their
allocators return large blocks on their own.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import sys
from collections.abc import Callable
from functools import cache


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
        return trim
    return None


def give_back() -> bool:
    """Return the heap's free pages to the system; False where there is no way to."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


def resident_bytes() -> int | None:
    """This process's resident set (Linux), for stats and benchmarks; None elsewhere."""
    try:
        with open("/proc/self/statm") as handle:
            pages = int(handle.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")
