"""Convert a published EVI-MAE checkpoint (.pth) into a model artifact directory."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from evimae_stream.datasets import PROFILES, WEAR_CLASSES
from evimae_stream.errors import InputError

#: seconds the published 16 video frames cover (every 4th frame at 30 fps)
PUBLISHED_VIDEO_SPAN_S = 16 * 4 / 30.0


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
        help="class_labels_indices.csv of the release (required for cmummac)",
    )
    parser.add_argument(
        "--out", required=True, type=Path, metavar="DIR", help="artifact directory to write"
    )
    parser.add_argument("--force", action="store_true", help="overwrite a non-empty --out")


def read_label_csv(path: Path) -> list[str]:
    """Class names in index order from a release's ``class_labels_indices.csv``."""
    if not path.is_file():
        raise InputError(
            f"{path}: label file not found; pass the release's class_labels_indices.csv"
        )
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows or [c.strip() for c in rows[0][:3]] != ["index", "mid", "display_name"]:
        raise InputError(f"{path}: row 1: header must be 'index,mid,display_name'")
    names: dict[int, str] = {}
    for lineno, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        try:
            index = int(row[0])
            name = row[2].strip()
        except (IndexError, ValueError):
            raise InputError(
                f"{path}: row {lineno}: expected 'index,mid,display_name' with an integer index"
            ) from None
        if index in names:
            raise InputError(f"{path}: row {lineno}: index {index} appears twice")
        names[index] = name
    if sorted(names) != list(range(len(names))):
        raise InputError(f"{path}: indices must be 0..{len(names) - 1} without gaps")
    return [names[i] for i in range(len(names))]


def load_official(ckpt: Path, dataset: str, labels: Path | None):
    """A published checkpoint as ``(model, ModelMeta)``: strict load plus the dataset's facts."""
    from evimae_stream.artifact import ModelMeta
    from evimae_stream.model import load_official_checkpoint

    profile = PROFILES[dataset]
    if labels is not None:
        classes = read_label_csv(labels)
    elif dataset == "wear":
        classes = list(WEAR_CLASSES)
    else:
        raise InputError(
            f"--dataset {dataset}: class names come from the release's "
            "class_labels_indices.csv; pass it with --labels"
        )
    model = load_official_checkpoint(ckpt, num_classes=len(classes))
    cfg = model.cfg
    meta = ModelMeta(
        variant="evimae_small",
        model_config=cfg.to_dict(),
        classes=classes,
        imu_rate_hz=profile.imu_rate_hz,
        window_s=profile.window_s,
        norm_mean=profile.norm_mean,
        norm_std=profile.norm_std,
        num_frames=cfg.num_frames,
        img_size=cfg.img_size,
        video_span_s=PUBLISHED_VIDEO_SPAN_S,
        training={
            "source": "official EVI-MAE release",
            "checkpoint": ckpt.name,
            "dataset": dataset,
        },
    )
    return model, meta


def run(args: argparse.Namespace) -> int:
    """Load the checkpoint strictly, attach the dataset's facts, write the artifact."""
    from evimae_stream.artifact import save_artifact

    if args.dataset == "cmummac" and args.labels is None:
        raise InputError(
            "--dataset cmummac: class names come from the release's "
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
