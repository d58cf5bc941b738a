"""Shared pytest set-up: offscreen Qt, opt-in markers, paths to shared test data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.helpers.paths import WEAR_DIR

# liblsl must never discover beyond this machine (its default multicasts to the network): every
# LSL test reads this configuration, whatever the caller's environment says, set before anything
# imports pylsl (subprocesses inherit it).
os.environ["LSLAPICFG"] = str(Path(__file__).resolve().with_name("lsl_api.cfg"))

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# Property tests: no per-example deadline (a loaded 2-core CI machine is slow, not wrong), and in
# CI a fixed example sequence so a run is reproducible.
settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "ci", deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("ci" if os.environ.get("CI") else "default")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-gpu", action="store_true", help="run tests marked gpu")
    parser.addoption("--run-hardware", action="store_true", help="run tests marked hardware")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for marker, option in (("gpu", "--run-gpu"), ("hardware", "--run-hardware")):
        if config.getoption(option):
            continue
        skip = pytest.mark.skip(reason=f"needs {option}")
        for item in items:
            if marker in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def wear_dir() -> Path:
    """The real WEAR accelerometer excerpts (read-only, never copied into the repo)."""
    if not (WEAR_DIR / "right_wrist_0_10.csv").exists():
        pytest.skip(f"WEAR excerpts not found in {WEAR_DIR}")
    return WEAR_DIR
