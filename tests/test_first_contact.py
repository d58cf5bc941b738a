"""Issue 16, first contact: what a new user sees on the first runs (the README's commands, the
demo's output, the precision rule, the recipes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO
from training.config import load_config

RECIPES = sorted((REPO / "configs" / "train").glob("*.yaml"))
ASSETS = REPO / "evimae_stream" / "assets"


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_recipes_write_under_runs_never_over_the_bundled_model(recipe: Path) -> None:
    """Item 6: following the README's training command writes under runs/, never over
    evimae_stream/assets/ (only training/make_demo_assets.py writes there)."""
    out = load_config(recipe).output_dir
    assert not out.is_absolute() and out.parts[0] == "runs", out
    assert ASSETS not in (REPO / out).resolve().parents
