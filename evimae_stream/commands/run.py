"""Recognition: live sensors, replay of a recorded session, or the bundled demo."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the main command (filled in by the streaming runtime)."""


def run(args: argparse.Namespace) -> int:
    """Run recognition; until the runtime lands, explain what exists."""
    print(
        "evimae-stream: the streaming runtime is not built yet; "
        "subcommands available: convert, synth, devices (see evimae-stream SUBCOMMAND --help)"
    )
    return 0
