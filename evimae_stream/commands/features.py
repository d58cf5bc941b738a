"""``evimae-stream features SESSION... --model M --out DIR [--stride S]``: per-window
embeddings of the IMU, video and fused forwards of a model over sessions, with their times.

Each session is replayed at max speed through the runtime (the windows, preprocessing and
forward of ``--replay``; :mod:`evimae_stream.runtime.features`), and its feature sequence is
cached in ``DIR`` per (session, model checksum, stride) — the format is in
:mod:`evimae_stream.feature_cache`. A session already cached (unchanged files, same model and
stride) is not recomputed unless ``--force``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from evimae_stream.errors import InputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``evimae-stream features``."""
    parser.add_argument("sessions", nargs="+", type=Path, metavar="SESSION", help="sessions")
    parser.add_argument("--model", type=Path, metavar="DIR", help="model artifact (default: demo)")
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="cache directory")
    parser.add_argument("--stride", type=float, default=0.5, help="seconds between windows")
    parser.add_argument("--force", action="store_true", help="recompute cached sessions")


def run(args: argparse.Namespace) -> int:
    """Compute (or find) the features of every session; one line per session on stdout."""
    from evimae_stream.commands.run import DEMO_MODEL
    from evimae_stream.feature_cache import FeatureCache

    if not 0.01 <= args.stride <= 60:
        raise InputError(f"--stride {args.stride}: use 0.01 to 60 seconds")
    if args.out.exists() and not args.out.is_dir():
        raise InputError(f"--out {args.out}: is a file; give a directory")
    for path in args.sessions:
        if not path.exists():
            raise InputError(f"{path}: no such session; pass a recorded session or WEAR subject")
    loaded = load_for_features(args.model or DEMO_MODEL)
    cache = FeatureCache(args.out)
    for path in args.sessions:
        entry, fresh = cached_features(cache, loaded, path, args.stride, args.force)
        what = "computed" if fresh else "cached"
        print(
            f"{path}: {entry['windows']} windows x {entry['dim']} ({what}) -> "
            f"{args.out / entry['file']}",
            file=sys.stdout,
        )
    return 0


def load_for_features(model_dir: Path):
    """The :class:`~evimae_stream.runtime.run.LoadedModel` of an artifact directory."""
    from evimae_stream.artifact import load_artifact, model_hash
    from evimae_stream.runtime.inputs import ModelSpec
    from evimae_stream.runtime.run import LoadedModel

    if not model_dir.is_dir():
        raise InputError(f"--model {model_dir}: features need a model directory (an artifact)")
    model, meta = load_artifact(model_dir)
    return LoadedModel(model, ModelSpec.from_meta(meta), model_hash(model_dir), str(model_dir),
                       meta.variant)  # fmt: skip


def cached_features(cache, loaded, path: Path, stride_s: float, force: bool = False):
    """(index entry, whether it was computed now) of ``path``'s features in ``cache``."""
    from evimae_stream.runtime.features import extract_features
    from evimae_stream.sessions import open_session

    entry = None if force else cache.find(path, loaded.model_id, stride_s)
    if entry is not None:
        return entry, False
    session = open_session(path)
    try:
        seq = extract_features(loaded, session, stride_s)
    finally:
        session.close()
    if not len(seq):
        raise InputError(f"{path}: no window could be inferred; is the session long enough?")
    return cache.put(path, loaded.model_id, stride_s, seq), True
