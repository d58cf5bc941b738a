"""Where the tests find the repository and the shared test data (``../shared``)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
WEAR_DIR = SHARED / "data" / "wear"
