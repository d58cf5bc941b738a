"""Convert a published EVI-MAE checkpoint (.pth) into a model artifact directory."""

from __future__ import annotations

import argparse
from pathlib import Path

from evimae_stream.datasets import PROFILES
from evimae_stream.errors import InputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``evimae-stream convert``."""
    parser.add_argument(
        "--official",
        required=True,
        type=Path,
        metavar="CKPT.pth",
        help="published EVI-MAE fine-tuned checkpoint",
    )
    parser.add_argument(
        "--dataset",
        required=True,
        choices=sorted(PROFILES),
        help="dataset the checkpoint was fine-tuned on (sets classes, IMU rate, "
        "window and normalisation)",
    )
    parser.add_argument(
        "--labels",
        type=Path,
        metavar="CSV",
        help="class_labels_indices.csv of the release (required where the dataset has no "
        "fixed class list: " + ", ".join(n for n, p in PROFILES.items() if p.classes is None) + ")",
    )
    parser.add_argument(
        "--out", required=True, type=Path, metavar="DIR", help="artifact directory to write"
    )
    parser.add_argument("--force", action="store_true", help="overwrite a non-empty --out")


def run(args: argparse.Namespace) -> int:
    """Load the checkpoint strictly, attach the dataset's facts, write the artifact."""
    from evimae_stream.artifact import save_artifact
    from evimae_stream.model.checkpoint import load_official

    if PROFILES[args.dataset].classes is None and args.labels is None:
        raise InputError(
            f"--dataset {args.dataset}: class names come from the release's "
            "class_labels_indices.csv; pass it with --labels"
        )
    if args.out.exists() and any(args.out.iterdir()) and not args.force:
        raise InputError(
            f"{args.out}: exists and is not empty; choose another --out or pass --force"
        )
    model, meta = load_official(args.official, args.dataset, args.labels)
    save_artifact(model, meta, args.out)
    profile = PROFILES[args.dataset]
    print(
        f"wrote {args.out} (evimae_small, {meta.num_classes} classes, {args.dataset}: "
        f"{profile.window_samples} IMU samples at {profile.imu_rate_hz:g} Hz)"
    )
    return 0
