"""Debian's headless Chromium for the browser tests: where it is, how it is started, where screenshots go.

`make test` installs it as root (system-deps), and a skip then fails the run (tests/conftest.py), so the skip marker
below only lets a developer without it run the other tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"  # git-ignored, for people to look at
needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(),
                                    reason="Debian chromium is not installed (/usr/bin/chromium)")


def launch(playwright):
    """Chromium started the way every browser test starts it."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
