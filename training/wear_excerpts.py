"""IMU-only EVI-MAE on the real WEAR right-wrist excerpts, next to a classical baseline.

    python training/wear_excerpts.py --data /work/shared/data/wear [--out runs/wear_excerpts]

Data: the two 10-minute excerpts (``right_wrist_0_10.csv``, ``right_wrist_10_20.csv``; no
header: record_id, time, acc_x, acc_y, acc_z, label; empty label = WEAR's null class) are read
as one continuous recording (the files share one boundary row, kept once).

Split (per activity): the activity's *sets* are its labelled runs, where runs of the same label
less than ``merge_gap_s`` apart are one set (the annotation has short gaps inside a set); sets 1
and 2 train, set 3 is the test set. An activity with fewer than three sets in the excerpts is
left out (it cannot be tested; the excerpt cuts it). The last ``val_fraction`` of every set 2
(at least 1.5 windows, after a window-length gap) is the validation split used for
best-checkpoint selection. Null (break) windows are left out: the published WEAR fine-tuning
uses the 18 activity classes.

Model: ``evimae_tiny`` in ``imu_only`` mode, the one wrist sensor placed on all four slots (the
published one-IMU recipe), WEAR geometry (5 s windows at 50 Hz, normalisation −51.17/26.19).
Baseline: per-window statistics with nearest centroid and logistic regression
(:mod:`training.baseline`) on exactly the same windows. Writes ``result.json`` and
``result.md`` in ``--out``. The data is read in place, never copied.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from evimae_stream.errors import EvimaeError, FormatError, InputError
from evimae_stream.sessions.base import ImuStream, Session
from evimae_stream.types import Segment
from evimae_stream.window import WindowGeometry
from training.baseline import (
    Standardiser,
    feature_matrix,
    logistic_regression,
    nearest_centroid,
)
from training.windows import FrameStore, WindowItem, cut_session, make_label_fn

log = logging.getLogger("training.wear_excerpts")

FILES = ("right_wrist_0_10.csv", "right_wrist_10_20.csv")
RATE_HZ = 50.0


def read_excerpts(data_dir: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(times s, (N, 3) acceleration in g, labels with '' for null) of both files, in order,
    each record_id once."""
    seen: set[int] = set()
    times, acc, labels = [], [], []
    for name in FILES:
        path = data_dir / name
        if not path.is_file():
            raise InputError(f"{path}: WEAR excerpt not found; pass --data DIR holding {FILES}")
        with path.open() as fh:
            for line_no, line in enumerate(fh, 1):
                parts = line.rstrip("\n").split(",")
                if len(parts) != 6:
                    raise FormatError(f"{path}:{line_no}: expected 6 columns, got {len(parts)}")
                try:
                    rid = int(parts[0])
                    h, m, s = parts[1].split(":")
                    t = int(h) * 3600 + int(m) * 60 + float(s)
                    xyz = (float(parts[2]), float(parts[3]), float(parts[4]))
                except ValueError:
                    raise FormatError(
                        f"{path}:{line_no}: unreadable record_id/time/acc values"
                    ) from None
                if rid in seen:
                    continue
                seen.add(rid)
                times.append(t)
                acc.append(xyz)
                labels.append(parts[5].strip())
    return np.array(times), np.array(acc, dtype=np.float32), labels


def label_runs(labels: list[str], rate_hz: float) -> list[tuple[float, float, str]]:
    """(start_s, end_s, label) of every run of equal non-empty labels (sample i at i/rate)."""
    runs, start = [], 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            if labels[start]:
                runs.append((start / rate_hz, i / rate_hz, labels[start]))
            start = i
    return runs


def find_sets(
    runs: list[tuple[float, float, str]], merge_gap_s: float = 10.0
) -> dict[str, list[tuple[float, float]]]:
    """Activity → its sets in time order; runs of one label closer than ``merge_gap_s`` (with
    no other activity between) merge into one set."""
    sets: dict[str, list[list[float]]] = {}
    last_label = None
    for start, end, label in runs:
        spans = sets.setdefault(label, [])
        if spans and last_label == label and start - spans[-1][1] < merge_gap_s:
            spans[-1][1] = end
        else:
            spans.append([start, end])
        last_label = label
    return {k: [(a, b) for a, b in v] for k, v in sets.items()}


@dataclass
class SetSplit:
    """Time ranges per split, per activity, and the activities left out."""

    train: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    val: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    test: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    excluded: dict[str, int] = field(default_factory=dict)


def split_sets(
    sets: dict[str, list[tuple[float, float]]], val_fraction: float, gap_s: float
) -> SetSplit:
    """Sets 1–2 → train (the tail of set 2 → val), set 3 → test; fewer than 3 sets → excluded.

    The val tail is ``val_fraction`` of set 2 but at least 1.5 windows (``gap_s``) long, and
    starts ``gap_s`` after the train part of set 2 ends, so no sample is in both."""
    out = SetSplit()
    for label, spans in sets.items():
        if len(spans) < 3:
            out.excluded[label] = len(spans)
            continue
        (a1, b1), (a2, b2), (a3, b3) = spans[:3]
        if val_fraction > 0:
            tail = max(val_fraction * (b2 - a2), 1.5 * gap_s)  # room for a few windows
            out.train[label] = [(a1, b1), (a2, b2 - tail - gap_s)]
            out.val[label] = [(b2 - tail, b2)]
        else:
            out.train[label] = [(a1, b1), (a2, b2)]
            out.val[label] = []
        out.test[label] = [(a3, b3)]
    return out


class ExcerptSession(Session):
    """The excerpts as one in-memory session: the wrist sensor at ``right_arm``."""

    def __init__(self, path: Path, times: np.ndarray, acc: np.ndarray, labels: list[str]):
        super().__init__(path=path, kind="wear_excerpt")
        t = np.arange(len(acc), dtype=np.float64) / RATE_HZ
        self.imu = {"right_arm": ImuStream("right_arm", t, acc, RATE_HZ)}
        self.labels = [Segment(a, b, lab) for a, b, lab in label_runs(labels, RATE_HZ)]
        self.meta = {"time_column_span_s": float(times[-1] - times[0])}

    def close(self) -> None:
        pass


def cut_split(
    session: ExcerptSession,
    ranges: dict[str, list[tuple[float, float]]],
    spec: WindowGeometry,
    stride_s: float,
) -> list[WindowItem]:
    """Windows lying wholly inside the given ranges, labelled at their centre."""
    items: list[WindowItem] = []
    label_fn = make_label_fn({}, None)
    for spans in ranges.values():
        for a, b in spans:
            got, _ = cut_session(
                session, spec, stride_s, label_fn, fill_missing=True, t_range=(a, b),
                name=f"{session.path}[{a:.1f}-{b:.1f}s]",
            )  # fmt: skip
            items.extend(got)
    return items


def baseline_results(splits: dict[str, list[WindowItem]], classes: list[str]) -> dict[str, dict]:
    """Accuracy/macro-F1/confusion of the classical baselines on the test windows."""
    from training.evaluate import metrics_from_scores

    def xy(items: list[WindowItem]) -> tuple[np.ndarray, np.ndarray]:
        x = feature_matrix([it.imu[:, 3:6] for it in items], RATE_HZ)  # the right_arm slot
        y = np.array([classes.index(it.labels[0]) for it in items])
        return x, y

    x_tr, y_tr = xy(splits["train"] + splits["val"])
    x_te, y_te = xy(splits["test"])
    std = Standardiser.fit(x_tr)
    out = {}
    k = len(classes)
    for name, pred in (
        ("nearest_centroid", nearest_centroid(std(x_tr), y_tr, std(x_te), k)),
        ("logistic_regression", logistic_regression(std(x_tr), y_tr, std(x_te), k)),
    ):
        onehot = np.eye(k)[pred]
        targets = np.eye(k)[y_te]
        m = metrics_from_scores(onehot, targets, y_te, classes)
        out[name] = {key: m[key] for key in ("accuracy", "macro_f1", "confusion", "windows")}
    return out


def markdown(result: dict) -> str:
    """The result as a short markdown report (the README quotes it)."""
    classes = result["classes"]
    lines = [
        "# EVI-MAE (imu_only) on the real WEAR right-wrist excerpts",
        "",
        f"Windows {result['window_s']} s at {RATE_HZ:g} Hz, stride {result['stride_s']} s; "
        f"split per activity: sets 1-2 train (last {result['val_fraction']:.0%} of set 2 = "
        "validation), set 3 test. Windows: "
        + ", ".join(f"{k} {v}" for k, v in result["windows"].items())
        + ".",
        f"Left out (fewer than 3 sets in the excerpts): {result['excluded'] or 'none'}.",
        "",
        "| model | test accuracy | test macro-F1 |",
        "|---|---|---|",
    ]
    ev = result["evimae"]
    lines.append(f"| EVI-MAE tiny, imu_only | {ev['accuracy']:.3f} | {ev['macro_f1']:.3f} |")
    for name, m in result["baselines"].items():
        lines.append(f"| {name.replace('_', ' ')} (18 stats) | {m['accuracy']:.3f} | "
                     f"{m['macro_f1']:.3f} |")  # fmt: skip
    lines += ["", "Confusion matrix of EVI-MAE on the test set (rows true, columns predicted):", ""]
    lines.append("| true \\ pred | " + " | ".join(classes) + " |")
    lines.append("|---" * (len(classes) + 1) + "|")
    for c, row in zip(classes, ev["confusion"], strict=True):
        lines.append(f"| {c} | " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=Path("/work/shared/data/wear"))
    p.add_argument("--out", type=Path, default=Path("runs/wear_excerpts"))
    p.add_argument("--config", default="configs/train/imu_only.yaml")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--stride", type=float, default=1.0, help="window stride in seconds")
    p.add_argument("--val-fraction", type=float, default=0.35)
    p.add_argument("--merge-gap", type=float, default=10.0, help="seconds; see find_sets")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return _main(args)
    except EvimaeError as exc:
        print(f"wear_excerpts.py: {exc}", file=sys.stderr)
        return exc.exit_code


def _main(args: argparse.Namespace) -> int:
    from training.config import load_config
    from training.data import DataBundle
    from training.train import run

    times, acc, labels = read_excerpts(args.data)
    out = args.out
    defaults = [
        f"run_dir={out}",
        f"output={out / 'model'}",
        "model.mode=imu_only",
        "imu.fill_missing=true",
        f"data.sources=[{{kind: session, path: {args.data}, split: train}}]",
        "data.sessions=null",
        "train.epochs=12",
        "train.optimizer=adamw",
        "train.lr=1e-3",
        "train.head_lr_mult=10",
        "train.weight_decay=0.05",
        "train.schedule=cosine",
        "train.warmup_steps=20",
        "train.loss=ce",
        "augment.imu_noise_std=0.0",
        "train.select_metric=accuracy",
    ]
    cfg = load_config(args.config, defaults + args.sets)
    spec = WindowGeometry(cfg.imu.window_s, cfg.imu.rate_hz, 1, cfg.imu.window_s)
    session = ExcerptSession(args.data, times, acc, labels)
    sets = find_sets(label_runs(labels, RATE_HZ), args.merge_gap)
    split = split_sets(sets, args.val_fraction, spec.window_s)
    classes = sorted(split.train)
    splits = {
        name: cut_split(session, getattr(split, name), spec, args.stride)
        for name in ("train", "val", "test")
    }
    for name, ranges in (("train", split.train), ("val", split.val), ("test", split.test)):
        log.info("%s ranges: %s", name, {k: [(round(a), round(b)) for a, b in v]
                                         for k, v in ranges.items()})  # fmt: skip
    bundle = DataBundle(
        splits,
        classes,
        FrameStore(),
        [{"kind": "wear_excerpts", "path": str(args.data), "files": list(FILES),
          "windows": {k: len(v) for k, v in splits.items()}}],
        split={"by": "set", "reason": "per activity: sets 1-2 train (the end of set 2 "
               "validates), set 3 tests"},
    )  # fmt: skip
    summary = run(cfg, None, bundle)
    test = summary["metrics"]["test"]
    result = {
        "data": str(args.data),
        "classes": classes,
        "excluded": split.excluded,
        "sets": {k: [(round(a, 2), round(b, 2)) for a, b in v] for k, v in sets.items()},
        "window_s": cfg.imu.window_s,
        "stride_s": args.stride,
        "val_fraction": args.val_fraction,
        "windows": {k: len(v) for k, v in splits.items()},
        "evimae": {k: test[k] for k in ("accuracy", "macro_f1", "confusion", "per_class_count")},
        "evimae_best_epoch": summary["metrics"]["best_epoch"],
        "baselines": baseline_results(splits, classes),
        "artifact": summary["artifact"],
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "result.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
