"""The ``evimae-stream`` command.

``evimae-stream [options]`` runs recognition (live, replay or the bundled demo);
``evimae-stream SUBCOMMAND ...`` runs one of the tools in :data:`SUBCOMMANDS`. Each subcommand is
a module with ``add_arguments(parser)`` and ``run(args) -> int``. Expected failures
(:class:`~evimae_stream.errors.EvimaeError`) print one line and exit with their code; nothing
expected ever prints a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import signal
import sys
import threading

from evimae_stream import __version__
from evimae_stream.errors import EvimaeError

#: subcommand name -> module implementing it
SUBCOMMANDS: dict[str, str] = {
    "convert": "evimae_stream.commands.convert",
    "synth": "evimae_stream.commands.synth",
    "devices": "evimae_stream.commands.devices",
    "export": "evimae_stream.commands.export",
    "labels": "evimae_stream.commands.labels",
    "search": "evimae_stream.commands.search",
    "features": "evimae_stream.commands.features",
}

PROG = "evimae-stream"


class _Parser(argparse.ArgumentParser):
    """argparse that exits with code 2 and one line on usage errors (its default, made explicit)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _setup_logging(verbosity: int) -> None:
    level = logging.WARNING - 10 * verbosity
    logging.basicConfig(
        level=max(level, logging.DEBUG), format="%(levelname)s %(name)s: %(message)s"
    )


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv)")


def _run_subcommand(name: str, argv: list[str]) -> int:
    module = importlib.import_module(SUBCOMMANDS[name])
    parser = _Parser(prog=f"{PROG} {name}", description=(module.__doc__ or "").strip())
    _add_common(parser)
    module.add_arguments(parser)
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    return int(module.run(args) or 0)


def build_parser() -> argparse.ArgumentParser:
    """The parser of the main (recognition) command."""
    parser = _Parser(
        prog=PROG,
        description="Real-time egocentric action recognition from a head-worn camera and four "
        "body-worn IMUs. With no arguments it runs the demo: the bundled demo session through "
        "the bundled demo model, as fast as it goes, then prints what it recognised and a "
        "summary. Subcommands: " + ", ".join(SUBCOMMANDS) + " (SUBCOMMAND --help for each).",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    _add_common(parser)
    return parser


#: signals that end a run as Ctrl-C does (a service manager stops with SIGTERM, a closed
#: terminal sends SIGHUP): the run stops, writes its ``end`` event and summary, closes its
#: recording cleanly
STOP_SIGNALS = ("SIGTERM", "SIGHUP")


@contextlib.contextmanager
def _stop_on_signals():
    """While the command runs, :data:`STOP_SIGNALS` raise KeyboardInterrupt, the one way a run
    is interrupted (the previous handlers are put back after)."""
    names = [n for n in STOP_SIGNALS if hasattr(signal, n)]
    if threading.current_thread() is not threading.main_thread():
        names = []
    previous = {n: signal.signal(getattr(signal, n), signal.default_int_handler) for n in names}
    try:
        yield
    finally:
        for n, handler in previous.items():
            signal.signal(getattr(signal, n), handler)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    with _stop_on_signals():
        try:
            if argv and argv[0] in SUBCOMMANDS:
                return _run_subcommand(argv[0], argv[1:])
            from evimae_stream.commands import run as run_command

            parser = build_parser()
            run_command.add_arguments(parser)
            args = parser.parse_args(argv)
            _setup_logging(args.verbose)
            return int(run_command.run(args) or 0)
        except EvimaeError as exc:
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return exc.exit_code
        except KeyboardInterrupt:
            print(f"{PROG}: interrupted", file=sys.stderr)
            return 130


if __name__ == "__main__":
    sys.exit(main())
