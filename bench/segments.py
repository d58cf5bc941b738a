"""Action segments: the interval head (TIM) against windows merged into segments, on the same
windows, on held-out synthetic wearers and on the real WEAR excerpts laid out as a WEAR subject.

    python bench/segments.py [--wear /work/shared/data/wear] [--work runs/bench_segments]

Features: the bundled demo model's window embeddings every 0.5 s (``evimae-stream features``,
cached under ``--work``). Methods, scored with segment mAP at tIoU 0.3:0.1:0.7 (breaks ignored):

- ``interval``: the interval head trained with the ``interval`` objective
  (``configs/train/interval_demo.yaml``'s settings) on the training sequences, its boundaries
  refined by its window head (``interval_unrefined``: the same head with ``refine`` off, the
  query pyramid's regressed boundaries alone);
- ``windows: recogniser``: the demo model's own window labels merged (synthetic only: its
  classes are the synthetic actions);
- ``windows: linear``: the strongest simple baseline on the same windows — a softmax linear
  classifier on the same window features (standardised), trained on the training sequences'
  windows labelled at their centre (breaks a class of their own), merged the same way.

Synthetic: four training wearers (seeds 401-404), one validation wearer (501), two test wearers
(301, 302), 2 minutes and 8 actions with transitions each. WEAR: the two right-wrist excerpts as
one subject (``sbj_0.csv``, the wrist on all four slots: the published one-IMU recipe; no
video), split per activity by its sets (:mod:`training.wear_excerpts`): sets 1-2 train, set 3
test, each a piece of the recording from the set to the neighbouring activities' breaks; no
validation split (best epoch by training loss). Writes ``bench/results/segments.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
from common import DEMO_MODEL, RESULTS, machine, write

from evimae_stream.feature_cache import FeatureCache, FeatureSequence
from evimae_stream.interval_eval import map_report, merged_windows, recognition_accuracy
from evimae_stream.metrics import ScoredSegment, windows_to_segments
from training.interval_data import LabelledSequence

log = logging.getLogger("bench.segments")

SYNTH = {"train": (401, 402, 403, 404), "val": (501,), "test": (301, 302)}
IGNORE = ("null",)


def synthetic_sequences(work: Path, loaded) -> dict[str, list[LabelledSequence]]:
    from evimae_stream.commands.features import cached_features
    from evimae_stream.sessions import open_session
    from evimae_stream.synthetic import generate_session

    cache = FeatureCache(work / "features")
    out: dict[str, list[LabelledSequence]] = {}
    for split, seeds in SYNTH.items():
        for seed in seeds:
            path = work / "synthetic" / f"seed{seed}"
            if not (path / "labels.csv").is_file():
                generate_session(path, actions=8, minutes=2.0, seed=seed, size=(160, 120))
            entry, _ = cached_features(cache, loaded, path, 0.5)
            with open_session(path) as s:
                segs = [ScoredSegment(g.start_s, g.end_s, g.label) for g in s.labels]
            out.setdefault(split, []).append(LabelledSequence(str(path), cache.load(entry), segs))
    return out


def layout_wear(data: Path, root: Path) -> Path:
    """The excerpts as WEAR subject ``root/sbj_0.csv`` (the wrist on every slot)."""
    from evimae_stream.sessions.wear import wear_header
    from training.wear_excerpts import read_excerpts

    csv = root / "sbj_0.csv"
    if csv.is_file():
        return csv
    _, acc, labels = read_excerpts(data)
    root.mkdir(parents=True, exist_ok=True)
    rows = [wear_header()]
    for (x, y, z), lab in zip(acc, labels, strict=True):
        xyz = f"{float(x)!r},{float(y)!r},{float(z)!r}"
        rows.append(f"0,{xyz},{xyz},{xyz},{xyz},{lab or 'null'}")
    csv.write_text("\n".join(rows) + "\n")
    return csv


def piece(seq: FeatureSequence, segs: list[ScoredSegment], a: float, b: float) -> tuple:
    """The windows that lie inside ``[a, b]`` and the segments clipped to it."""
    keep = (seq.t_start_s >= a) & (seq.t_end_s <= b)
    sub = FeatureSequence(
        seq.t_start_s[keep], seq.t_end_s[keep], {k: v[keep] for k, v in seq.feats.items()},
        seq.present[keep], dict(seq.about), None if seq.probs is None else seq.probs[keep],
    )  # fmt: skip
    clipped = [
        ScoredSegment(max(g.start_s, a), min(g.end_s, b), g.label)
        for g in segs
        if min(g.end_s, b) - max(g.start_s, a) > 2.0
    ]
    return sub, clipped


def wear_sequences(data: Path, work: Path, loaded) -> dict[str, list[LabelledSequence]]:
    from evimae_stream.commands.features import cached_features
    from evimae_stream.sessions import open_session
    from training.wear_excerpts import find_sets, label_runs, read_excerpts, split_sets

    csv = layout_wear(data, work / "wear")
    entry, _ = cached_features(FeatureCache(work / "features"), loaded, csv, 0.5)
    seq = FeatureCache(work / "features").load(entry)
    with open_session(csv) as s:
        segs = [ScoredSegment(g.start_s, g.end_s, g.label) for g in s.labels]
    runs = label_runs(read_excerpts(data)[2], 50.0)
    sets = split_sets(find_sets(runs), 0.0, 0.0)
    out: dict[str, list[LabelledSequence]] = {"train": [], "test": []}
    for split in ("train", "test"):
        for label, spans in getattr(sets, split).items():
            for a, b in spans:
                others = [r for r in runs if r[2] != label]
                lo = max([a - 10.0, *(e for _, e, _ in others if e <= a)])
                hi = min([b + 10.0, *(s for s, _, _ in others if s >= b)])
                sub, clipped = piece(seq, segs, lo, hi)
                out[split].append(LabelledSequence(f"{label} {split}", sub, clipped))
    return out


def _xy(seqs: list[LabelledSequence], classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    from evimae_stream.truth import window_truth
    from evimae_stream.types import Segment

    xs, ys = [], []
    for s in seqs:
        f = s.features
        x = np.nan_to_num(np.concatenate([f.feats["imu"], f.feats["video"]], axis=1))
        labels = [Segment(g.start_s, g.end_s, g.label) for g in s.segments]
        for i, t in enumerate(f.t_end_s):
            lab = window_truth(labels, float(t), float(t - f.t_start_s[i])) or "null"
            xs.append(x[i])
            ys.append(classes.index(lab) if lab in classes else len(classes))
    return np.asarray(xs), np.asarray(ys)


def linear_windows(train: list[LabelledSequence], test: LabelledSequence, classes: list[str]):
    """The linear baseline's merged segments of ``test`` (see the module doc)."""
    from training.baseline import Standardiser

    x, y = _xy(train, classes)
    std = Standardiser.fit(x)
    torch.manual_seed(0)
    lin = torch.nn.Linear(x.shape[1], len(classes) + 1).double()
    xt, yt = torch.as_tensor(std(x), dtype=torch.float64), torch.as_tensor(y)
    opt = torch.optim.LBFGS(lin.parameters(), max_iter=300, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(lin(xt), yt) + 1e-2 * lin.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    f = test.features
    xq = np.nan_to_num(np.concatenate([f.feats["imu"], f.feats["video"]], axis=1))
    with torch.no_grad():
        p = torch.softmax(lin(torch.as_tensor(std(xq), dtype=torch.float64)), -1).numpy()
    names = [*classes, "null"]
    top = p.argmax(1)
    return windows_to_segments(
        f.t_end_s.tolist(), [names[i] for i in top], p[np.arange(len(top)), top].tolist(), 0.5
    )


def run_dataset(name: str, splits, work: Path, base_classes: list[str] | None) -> dict:
    """Train the head on ``splits`` and score the three methods on the test split."""
    from training.config import load_config
    from training.interval_train import fit_interval

    recipe = Path(__file__).resolve().parents[1] / "configs" / "train" / "interval_demo.yaml"
    cfg = load_config(recipe, [f"run_dir={work / ('run_' + name)}", "train.num_threads=1"])
    classes = sorted({g.label for s in splits["train"] for g in s.segments} - set(IGNORE))
    t0, c0 = time.perf_counter(), time.process_time()
    head, history = fit_interval(cfg, splits, classes, torch.device("cpu"))
    train_s, train_cpu = time.perf_counter() - t0, time.process_time() - c0
    det, raw, lin, rec, truth, hits, n_rec = [], [], [], [], [], 0.0, 0
    offset = 0.0
    for s in splits["test"]:

        def shift(xs, o=offset):
            return [ScoredSegment(x.start_s + o, x.end_s + o, x.label, x.score) for x in xs]

        det += shift(head.detect(s.features))
        head.meta.refine = False
        raw += shift(head.detect(s.features))
        head.meta.refine = True
        lin += shift(linear_windows(splits["train"], s, classes))
        if base_classes:
            rec += shift(merged_windows(s.features, base_classes, 0.5))
        truth += shift(s.segments)
        acc = recognition_accuracy(head, s.features, s.segments, IGNORE)
        n = sum(g.label in classes for g in s.segments)
        if acc is not None:
            hits, n_rec = hits + acc * n, n_rec + n
        offset += float(s.features.t_end_s.max()) + 1000.0
    return {
        "classes": classes,
        "test_sequences": len(splits["test"]),
        "test_segments": len(truth),
        "interval": map_report(det, truth, IGNORE),
        "interval_unrefined": map_report(raw, truth, IGNORE),
        "windows_linear": map_report(lin, truth, IGNORE),
        "windows_recogniser": map_report(rec, truth, IGNORE) if base_classes else None,
        "interval_recognition_accuracy": round(hits / n_rec, 4) if n_rec else None,
        "train_wall_s": round(train_s, 1),
        "train_cpu_s": round(train_cpu, 1),
        "epochs": len(history),
    }


def table(results: dict) -> list[str]:
    def f(x):
        return "  n/a" if x is None else f"{x:.3f}"

    lines = [f"{'data':<11}{'method':<22}{'mAP':>7}{'@0.3':>7}{'@0.5':>7}{'@0.7':>7}"]
    for name, r in results.items():
        for key, label in (
            ("interval", "interval head (TIM)"),
            ("interval_unrefined", "interval, unrefined"),
            ("windows_linear", "windows: linear"),
            ("windows_recogniser", "windows: recogniser"),
        ):
            m = r.get(key)
            if m is None:
                continue
            pt = m["per_tiou"]
            lines.append(f"{name:<11}{label:<22}{f(m['mean']):>7}{f(pt['0.3']):>7}"
                         f"{f(pt['0.5']):>7}{f(pt['0.7']):>7}")  # fmt: skip
        lines.append(f"{name:<11}{'interval recognition':<22}"
                     f"{f(r['interval_recognition_accuracy']):>7}")  # fmt: skip
    return lines


def main(argv: list[str] | None = None) -> int:
    from evimae_stream.commands.features import load_for_features

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--wear", type=Path, default=Path("/work/shared/data/wear"))
    p.add_argument("--work", type=Path, default=Path("runs/bench_segments"))
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--only", choices=("synthetic", "wear"))
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    loaded = load_for_features(DEMO_MODEL)
    results = {}
    if args.only in (None, "synthetic"):
        splits = synthetic_sequences(args.work, loaded)
        results["synthetic"] = run_dataset(
            "synthetic", splits, args.work, list(loaded.spec.classes)
        )
    if args.only in (None, "wear") and (args.wear / "right_wrist_0_10.csv").is_file():
        results["wear"] = run_dataset("wear", wear_sequences(args.wear, args.work, loaded),
                                      args.work, None)  # fmt: skip
    old = args.out / "segments.json"
    if args.only and old.is_file():  # one dataset re-run: keep the other's entry
        results = {**json.loads(old.read_text()).get("results", {}), **results}
    for line in table(results):
        print(line)
    doc = {"machine": machine(), "features": "bundled demo model, stride 0.5 s",
           "results": results}  # fmt: skip
    write(doc, "segments.json", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
