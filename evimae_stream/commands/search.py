"""Search recordings with a language-aligned model: ``evimae-stream search SESSION... --text
"someone stirring a pot" [--top K]`` prints the best-matching intervals (session, start, end,
score) and writes a PNG strip of their frames; ``--like SESSION@T`` finds the motions most like
the one at T seconds (IMU→IMU) and the video moments that match it (IMU→video). Each session's
window embeddings are computed once and cached next to it (keyed by the model's checksum and
the stride)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from evimae_stream.errors import InputError

STRIP_HEIGHT = 144


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sessions", nargs="+", type=Path, metavar="SESSION", help="recordings")
    query = parser.add_mutually_exclusive_group(required=True)
    query.add_argument("--text", help='what to find, e.g. "someone stirring a pot"')
    query.add_argument("--like", metavar="SESSION@T", help="motions like the one at T s of SESSION")
    parser.add_argument("--model", type=Path, required=True, help="a language-aligned artifact")
    parser.add_argument("--top", type=int, default=5, metavar="K", help="hits to list (default 5)")
    parser.add_argument("--stride", type=float, default=0.5, help="seconds between windows")
    parser.add_argument(
        "--png", type=Path, default=Path("evimae-search.png"), help="the frame strip (PNG)"
    )


def _load(path: Path):
    from evimae_stream.artifact import load_artifact, model_hash
    from evimae_stream.language.search import SearchModel
    from evimae_stream.runtime.inputs import ModelSpec

    model, meta = load_artifact(path)
    if not meta.aligned:
        raise InputError(
            f"--model {path}: not language-aligned (no 'language' section in its model.json); "
            "train one with objective align"
        )
    return SearchModel(model, meta, ModelSpec.from_meta(meta), model_hash(path), str(path))


def _like(arg: str) -> tuple[Path, float]:
    path, sep, t = arg.rpartition("@")
    try:
        value = float(t)
    except ValueError:
        value = float("nan")
    if not sep or not path or not np.isfinite(value):
        raise InputError(f"--like {arg}: write SESSION@SECONDS, e.g. rec1@12.5")
    return Path(path), value


def run(args: argparse.Namespace) -> int:
    from evimae_stream.language.search import rank, session_embeddings, window_at

    if args.top < 1 or not args.stride > 0:
        raise InputError("--top must be >= 1 and --stride > 0")
    for p in args.sessions:
        if not p.exists():
            raise InputError(f"{p}: no such session")
    loaded = _load(args.model)
    items = [session_embeddings(loaded, p, args.stride) for p in args.sessions]
    if args.text is not None:
        from evimae_stream.language.text import TextCache

        query = TextCache(where="search --text").encode([args.text])[0]
        blocks = [(f"text {args.text!r}", rank(items, query, args.top))]
    else:
        path, t = _like(args.like)
        if not path.exists():
            raise InputError(f"--like {args.like}: no such session {path}")
        ref = session_embeddings(loaded, path, args.stride)
        k = window_at(ref, t)
        query, at = ref.imu[k], (path, float(ref.t_ref_s[k] - ref.window_s / 2))
        blocks = [
            (f"motion like {path}@{t:g} (IMU->IMU)", rank(items, query, args.top, "imu", at)),
            (f"video like {path}@{t:g} (IMU->video)", rank(items, query, args.top, "video", at)),
        ]
    for title, hits in blocks:
        print(f"{title}: {len(hits)} hits")
        print(f"{'rank':>4}  {'session':<40} {'start_s':>8} {'end_s':>8} {'score':>7}")
        for i, h in enumerate(hits, 1):
            print(f"{i:>4}  {h.session!s:<40} {h.start_s:8.2f} {h.end_s:8.2f} {h.score:7.4f}")
    strip = frame_strip([h for _, hits in blocks for h in hits])
    if strip is not None:
        import cv2

        args.png.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(args.png), strip):
            raise InputError(f"--png {args.png}: cannot write the PNG there")
        print(f"frames {args.png}", file=sys.stderr)
    return 0


def frame_strip(hits) -> np.ndarray | None:
    """The middle frame of each hit side by side (BGR), captioned with its rank, time and
    score; None when no hit's session has video."""
    import cv2

    from evimae_stream.sessions import open_session

    tiles = []
    for i, h in enumerate(hits, 1):
        with open_session(h.session) as s:
            if not s.has_video:
                continue
            rgb = s.frame_at(h.centre_s)
        w = round(rgb.shape[1] * STRIP_HEIGHT / rgb.shape[0])
        tile = cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), (w, STRIP_HEIGHT))
        caption = f"{i} {h.session.name} {h.start_s:.1f}-{h.end_s:.1f}s {h.score:.2f} {h.by}"
        cv2.rectangle(tile, (0, 0), (w, 16), (0, 0, 0), -1)
        cv2.putText(tile, caption, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.36, (255, 255, 255), 1)
        tiles.append(tile)
    return cv2.hconcat(tiles) if tiles else None
