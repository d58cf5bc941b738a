"""Window accuracy of a model artifact on sessions, per mode, with training's windowing.

    python training/evaluate_artifact.py evimae_stream/assets/demo_model [--stride S] \
        SESSION [...] [--synthetic-seed 901 ...] [--threads N] [--json out.json]

Windows are cut exactly as training cuts them (truth: :func:`evimae_stream.truth.window_truth`,
the label at the window centre, as ``--eval`` scores; IMU on the runtime's timeline resampled
to the model grid; frames nearest to the span grid) from the artifact's own geometry and
preprocessing, and the model runs in every mode the artifact declares. The stride defaults to
the artifact's own evaluation stride (its recipe's ``data.eval_stride_s``, else
``data.stride_s``), so the figures are comparable with its training report; options and
sessions may come in any order. Torch threads: ``--threads`` or the idle cores
(:func:`training.threads.pick_threads`). ``--synthetic-seed N``
first generates a fresh 2-minute synthetic wearer with that seed (320×240, the generator's
default size) in a temporary directory — how the demo model's numbers on never-seen wearers
are measured.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from evimae_stream.artifact import ModelMeta, load_artifact
from evimae_stream.errors import EvimaeError, InputError
from evimae_stream.sessions import open_session
from evimae_stream.types import ACC_AXES
from training.data import WindowDataset, collate
from training.evaluate import evaluate
from training.threads import set_threads
from training.windows import FrameStore, cut_session, make_label_fn


def evaluate_sessions(
    art_dir: Path,
    sessions: list[Path],
    stride_s: float | None,
    unlabelled: str | None = None,
    ends: list[list[float]] | None = None,
) -> dict:
    """Per-mode metrics of the artifact over the windows of ``sessions``.

    ``ends``: per session, the window ends ``t_ref`` (s) to cut at instead of the ``stride_s``
    grid — e.g. the ``t_ref_s`` of a runtime replay's predictions, to score the same windows.
    ``stride_s`` None: the artifact's own evaluation stride (:func:`artifact_stride`).
    """
    model, meta = load_artifact(art_dir)
    stride_s = stride_s if stride_s is not None else artifact_stride(meta)
    spec = meta.geometry
    pcfg = meta.preprocess
    fill = bool(meta.training.get("imu_fill_missing", True))
    need_imu = any(m != "video_only" for m in meta.modes)
    need_video = any(m != "imu_only" for m in meta.modes)
    store = FrameStore(meta.img_size)
    items = []
    for k, path in enumerate(sessions):
        if not Path(path).exists():
            raise InputError(f"{path}: session not found")
        with open_session(path) as s:
            got, _ = cut_session(
                s, spec, stride_s, make_label_fn({}, unlabelled), need_imu=need_imu,
                need_video=need_video and s.has_video, fill_missing=fill, store=store,
                classes=meta.classes, ends=None if ends is None else ends[k],
                channels=tuple(meta.imu_channels or ACC_AXES),
            )  # fmt: skip
            items.extend(got)
    if not items:
        raise InputError("no labelled windows with classes the model knows in these sessions")
    ds = WindowDataset(items, store, meta.classes, pcfg, need_imu=need_imu, need_video=need_video)
    loader = DataLoader(ds, batch_size=16, collate_fn=collate)
    out = {}
    with torch.no_grad():
        for mode in meta.modes:
            m = evaluate(model, loader, meta.classes, mode, torch.device("cpu"))
            out[mode] = {k: m[k] for k in ("windows", "accuracy", "macro_f1", "confusion")}
    return out


def artifact_stride(meta: ModelMeta) -> float:
    """The evaluation stride an artifact was scored with in training (1 s when it says none)."""
    data = (meta.training.get("config") or {}).get("data") or {}
    stride = data.get("eval_stride_s") or data.get("stride_s")
    return float(stride) if stride else 1.0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("artifact", type=Path)
    p.add_argument("sessions", type=Path, nargs="*")
    p.add_argument(
        "--stride",
        type=float,
        default=None,
        help="window stride in s (default: the artifact's evaluation stride)",
    )
    p.add_argument("--synthetic-seed", type=int, action="append", default=[])
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: the idle cores)")
    p.add_argument("--json", type=Path)
    args = p.parse_intermixed_args(argv)
    set_threads(args.threads, "evaluation")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            sessions = list(args.sessions)
            if args.synthetic_seed:
                from evimae_stream.synthetic import generate_session

                for seed in args.synthetic_seed:
                    out = Path(tmp) / f"seed{seed}"
                    generate_session(out, actions=8, minutes=2.0, seed=seed)
                    sessions.append(out)
            if not sessions:
                raise InputError("no sessions: pass session paths or --synthetic-seed N")
            result = evaluate_sessions(args.artifact, sessions, args.stride)
    except EvimaeError as exc:
        print(f"evaluate_artifact.py: {exc}", file=sys.stderr)
        return exc.exit_code
    for mode, m in result.items():
        print(f"{mode:>11}: accuracy {m['accuracy']:.4f}  macro-F1 {m['macro_f1']:.4f}  "
              f"({m['windows']} windows)")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
