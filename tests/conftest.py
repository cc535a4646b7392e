from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

#: ``required`` (set by .ci/run): the browser test fails instead of skipping without a browser.
#: Taken out of the environment at once: every daemon a test starts inherits the environment,
#: and the daemon refuses ``OPENCLAW_INFRA_*`` names that are not settings.
_BROWSER = os.environ.pop("OPENCLAW_INFRA_TEST_BROWSER", "")


@pytest.fixture(scope="session")
def browser_required() -> bool:
    """Under CI (either signal) a missing browser is a failure, not a skip."""
    return _BROWSER == "required" or bool(os.environ.get("CI"))


@pytest.fixture
def root() -> Iterator[Path]:
    """A private directory with a short path: Unix socket paths are limited to ~100 bytes."""
    path = Path(tempfile.mkdtemp(prefix="oci-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()
