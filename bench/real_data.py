"""Our training recipe against the classical baselines on small real data, held out by person.

Datasets (read from the installed ``[bench]`` extra's wheels and ``../shared``, converted to our
session format in a scratch folder, never copied into the repository):

* ``watch``: seglearn's ``load_watch()`` — a smartwatch (accelerometer + gyroscope, 50 Hz) on
  people doing 7 shoulder exercises; one session per recording, ``meta.subject`` its person.
  Leave-subjects-out: the subjects are dealt into ``--folds`` folds; each fold's subjects are the
  test sessions, the rest train (validation held out of them by subject, as the recipe does).
* ``wear``: the two real WEAR right-wrist excerpts (``../shared/data/wear``); one session per
  (activity, set); sets 1-2 train, set 3 tests (split by set, as ``training/wear_excerpts.py``).
* ``basicmotions``: aeon's BasicMotions (4 activities, accelerometer + gyroscope, 10 s at
  10 Hz); one session per case, its own train/test split.

For each split, our model is trained by ``training.train.run`` with the recipe a user would run
(``configs/train/small_real.yaml``: ``--set data.sessions=TRAIN_DIR`` plus a test source), and on
exactly the same windows (the recipe's own cut: training + validation windows to fit, test
windows to score) two baselines: logistic regression on per-window statistics
(:mod:`training.baseline`) and MiniRocket (aeon) with a ridge classifier, both on the channels
the model reads (one slot: every slot holds the one sensor; the gyroscope too when the recipe's
``model.gyro`` resolves to always).

    PYTHONPATH=$PWD nice -n 10 python bench/real_data.py [--datasets watch wear basicmotions]
        [--folds 3] [--fold K] [--baselines-only | --no-baselines] [--set KEY=VALUE ...]
        [--quick]
    python bench/real_data.py --merge A.json B.json ... --out bench/results/real_data.json
    python bench/real_data.py --threads-check     # 1 vs 2 torch threads, spectrogram and step

Table (accuracy, macro-F1, train wall and CPU seconds, windows) on stdout, JSON to
``bench/results/real_data.json``. CPU time is this process's user + system time: on a shared
machine the wall time depends on the neighbours, the CPU time much less.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from common import RESULTS, machine, write

from evimae_stream.sessions import ImuSpec, SessionWriter
from training.baseline import Standardiser, feature_matrix, logistic_regression
from training.channels import with_channels
from training.config import TrainConfig, load_config
from training.evaluate import metrics_from_scores
from training.prepare import encoder_config, load_recipe_data
from training.train import run
from training.windows import WindowItem

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "configs" / "train" / "small_real.yaml"
WEAR_DIR = REPO.parent / "shared" / "data" / "wear"
GYRO = ("ax", "ay", "az", "gx", "gy", "gz")


def cpu_s() -> float:
    """User + system CPU seconds of this process so far."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def write_session(
    path: Path,
    parts: list[tuple[np.ndarray, str]],
    rate: float,
    subject: str | None = None,
    channels: tuple[str, ...] = GYRO,
) -> Path:
    """A recording of ``parts`` ((N, C) samples, label) in order, 2 s apart (no samples in
    between: no window spans two parts), on the ``right_arm`` slot."""
    t0 = 1_000_000_000
    meta = {"subject": subject} if subject else {}
    with SessionWriter(
        path, imu={"right_arm": ImuSpec(rate, channels)}, t0_ns=t0, meta=meta, wall_start="fixed"
    ) as w:
        start = 0.0
        for values, label in parts:
            n = len(values)
            t = start + np.arange(n) / rate
            w.add_imu_block(
                "right_arm", t0 + np.round(t * 1e9).astype(np.int64), values.astype(np.float32)
            )
            w.add_label(start, start + n / rate, label)
            start += n / rate + 2.0
    return path


# ---- datasets: each returns [(name, train_dir, test_dir)] ----------------------------------


def watch_splits(root: Path, folds: int) -> list[tuple[str, Path, Path]]:
    """seglearn's watch data: one session per recording; subjects dealt into ``folds``."""
    try:
        from seglearn.datasets import load_watch
    except ImportError:
        raise SystemExit("real_data.py: watch needs seglearn; pip install -e .[bench]") from None
    data = load_watch()
    names = list(data["y_labels"])
    subjects = sorted({int(s) for s in data["subject"]})
    out = []
    for k in range(folds):
        held = set(subjects[k::folds])
        fold = root / f"watch_fold{k}"
        for i, (x, y, s) in enumerate(zip(data["X"], data["y"], data["subject"], strict=True)):
            split = "test" if int(s) in held else "train"
            values = np.asarray(x, dtype=np.float64).copy()  # acc in g, gyro in rad/s
            values[:, 3:] = np.degrees(values[:, 3:])  # our sessions' gyro unit: deg/s
            write_session(
                fold / split / f"rec{i:03d}",
                [(values, str(names[int(y)]))],
                50.0,
                subject=f"watch_{int(s)}",
            )
        out.append(
            (f"watch fold {k + 1} (test subjects {sorted(held)})", fold / "train", fold / "test")
        )
    return out


def wear_splits(root: Path) -> list[tuple[str, Path, Path]]:
    """The WEAR excerpts: one session per (activity, set); set 3 of each activity tests."""
    from training.wear_excerpts import RATE_HZ, find_sets, label_runs, read_excerpts

    _, acc, labels = read_excerpts(WEAR_DIR)
    for name, spans in find_sets(label_runs(labels, RATE_HZ)).items():
        if len(spans) < 3:
            continue  # the excerpt cuts this activity: no third set to test on
        for k, (a, b) in enumerate(spans[:3]):
            seg = acc[int(a * RATE_HZ) : int(b * RATE_HZ)]
            split = "test" if k == 2 else "train"
            slug = name.replace(" ", "_").replace("(", "").replace(")", "")
            write_session(
                root / "wear" / split / f"{slug}_set{k + 1}",
                [(seg, name)],
                RATE_HZ,
                channels=GYRO[:3],
            )
    return [("wear excerpts (set 3 held out)", root / "wear" / "train", root / "wear" / "test")]


def basicmotions_splits(root: Path) -> list[tuple[str, Path, Path]]:
    """aeon's BasicMotions, one session per case, its own train/test split."""
    try:
        from aeon.datasets import load_basic_motions
    except ImportError:
        raise SystemExit("real_data.py: needs aeon; pip install -e .[bench]") from None
    for split in ("train", "test"):
        x, y = load_basic_motions(split=split)  # (n, 6, 100): acc xyz, gyro xyz at 10 Hz
        for i in range(len(x)):
            write_session(
                root / "basicmotions" / split / f"case{i:03d}",
                [(np.asarray(x[i]).T, str(y[i]))],
                10.0,
            )
    bm = root / "basicmotions"
    return [("basicmotions (its train/test split)", bm / "train", bm / "test")]


# ---- models ----------------------------------------------------------------------------------


def recipe(train_dir: Path, test_dir: Path, run_dir: Path, sets: list[str]) -> TrainConfig:
    """The user's command: the recipe on a folder of sessions, plus a test folder."""
    return load_config(
        RECIPE,
        [
            f"data.sessions={train_dir}",
            f"run_dir={run_dir}",
            f"data.sources=[{{kind: directory, path: {test_dir}, split: test}}]",
            *sets,
        ],
    )


def scored(pred: np.ndarray, y: np.ndarray, classes: list[str]) -> dict:
    k = len(classes)
    m = metrics_from_scores(np.eye(k)[pred], np.eye(k)[y], y, classes)
    return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"]}


def timed(fn: Callable[[], np.ndarray]) -> tuple[np.ndarray, float, float]:
    w, c = time.perf_counter(), cpu_s()
    out = fn()
    return out, time.perf_counter() - w, cpu_s() - c


def baselines(splits: dict[str, list[WindowItem]], classes: list[str], rate: float) -> dict:
    """Logistic regression on window statistics and MiniRocket, fitted on the recipe's
    training + validation windows, scored on its test windows (one slot's channels: the
    acceleration, and the gyroscope too when the model reads it)."""
    fit = splits["train"] + splits["val"]
    y_tr = np.array([classes.index(it.labels[0]) for it in fit])
    y_te = np.array([classes.index(it.labels[0]) for it in splits["test"]])
    c = fit[0].imu.shape[1] // 4  # channels per slot: every slot holds the one sensor
    acc_tr = [it.imu[:, :c] for it in fit]
    acc_te = [it.imu[:, :c] for it in splits["test"]]

    def lr() -> np.ndarray:
        x_tr, x_te = feature_matrix(acc_tr, rate), feature_matrix(acc_te, rate)
        std = Standardiser.fit(x_tr)
        return logistic_regression(std(x_tr), y_tr, std(x_te), len(classes))

    def minirocket() -> np.ndarray:
        from aeon.transformations.collection.convolution_based import MiniRocket
        from sklearn.linear_model import RidgeClassifierCV
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        tr = np.stack(acc_tr).transpose(0, 2, 1)  # (n, C, L)
        model = make_pipeline(
            MiniRocket(random_state=0),
            StandardScaler(),
            RidgeClassifierCV(alphas=np.logspace(-3, 3, 10)),
        )
        model.fit(tr, y_tr)
        return model.predict(np.stack(acc_te).transpose(0, 2, 1))

    out = {}
    for name, fn in (("logistic_regression", lr), ("minirocket", minirocket)):
        pred, wall, cpu = timed(fn)
        out[name] = {**scored(pred, y_te, classes), "train_wall_s": wall, "train_cpu_s": cpu}
    return out


def ours(cfg: TrainConfig) -> dict:
    """Train with the recipe; test metrics, times, the split and the best epoch."""
    w, c = time.perf_counter(), cpu_s()
    summary = run(cfg)
    wall, cpu = time.perf_counter() - w, cpu_s() - c
    m = summary["metrics"]
    test = m["test"]
    return {
        "accuracy": test["accuracy"],
        "macro_f1": test["macro_f1"],
        "val_accuracy": m["val"]["accuracy"] if "val" in m else None,
        "variant": cfg.model.variant,
        "train_wall_s": wall,
        "train_cpu_s": cpu,
        "best_epoch": m["best_epoch"],
        "pretrain_best_epoch": summary.get("pretrain", {}).get("best_epoch"),
        "split": m.get("split"),
        "confusion": test.get("confusion"),
    }


def evaluate_split(
    name: str,
    train_dir: Path,
    test_dir: Path,
    run_dir: Path,
    sets: list[str],
    baselines_only: bool = False,
    no_baselines: bool = False,
) -> dict:
    cfg = with_channels(recipe(train_dir, test_dir, run_dir, sets))  # the channels ours reads
    bundle = load_recipe_data(cfg, encoder_config(cfg))
    windows = bundle.counts()
    print(f"\n== {name}: windows {windows}, classes {bundle.classes}", flush=True)
    result = {
        "name": name,
        "windows": windows,
        "classes": bundle.classes,
        "baselines": {}
        if no_baselines
        else baselines(bundle.splits, bundle.classes, cfg.imu.rate_hz),
    }
    print(f"baselines: {result['baselines']}", flush=True)
    if not baselines_only:
        result["ours"] = ours(recipe(train_dir, test_dir, run_dir, sets))
    return result


def table(rows: list[dict]) -> str:
    head = (
        "| split | model | accuracy | macro-F1 | train wall s | train CPU s | "
        "windows (train/val/test) |\n|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for r in rows:
        w = r["windows"]
        counts = f"{w['train']}/{w['val']}/{w['test']}"
        ours_label = f"{r['ours'].get('variant', 'ours')}, small_real" if "ours" in r else ""
        models = [(ours_label, r["ours"])] if "ours" in r else []
        models += [(k.replace("_", " "), v) for k, v in r["baselines"].items()]
        for label, m in models:
            lines.append(
                f"| {r['name']} | {label} | {m['accuracy']:.3f} | {m['macro_f1']:.3f} | "
                f"{m['train_wall_s']:.0f} | {m['train_cpu_s']:.0f} | {counts} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--datasets",
        nargs="+",
        default=["watch", "wear", "basicmotions"],
        choices=["watch", "wear", "basicmotions"],
    )
    p.add_argument("--folds", type=int, default=3)
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--baselines-only", action="store_true", help="fit the baselines only")
    p.add_argument(
        "--no-baselines", action="store_true", help="train ours only (recipe experiments)"
    )
    p.add_argument("--fold", type=int, help="run only this watch fold (0-based)")
    p.add_argument("--quick", action="store_true", help="1 epoch each: checks the script runs")
    p.add_argument("--out", type=Path, default=RESULTS / "real_data.json")
    p.add_argument(
        "--threads-check",
        action="store_true",
        help="time a spectrogram and a training step at 1 and 2 torch threads",
    )
    p.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        metavar="JSON",
        help="combine the results of runs (e.g. one per fold) into --out",
    )
    args = p.parse_args(argv)
    if args.merge:
        return merge(args.merge, args.out)
    if args.threads_check:
        doc = {"machine": machine(), "threads": thread_check()}
        print(doc["threads"])
        write(doc, "real_data_threads.json", args.out.parent)
        return 0
    torch.set_num_threads(1)
    sets = ["train.num_threads=1", *args.sets]
    sets += ["train.epochs=1", "pretrain.epochs=1"] if args.quick else []
    rows = []
    with tempfile.TemporaryDirectory(prefix="real_data_") as tmp:
        root = Path(tmp)
        plans: list[tuple[str, Path, Path]] = []
        if "watch" in args.datasets:
            folds = watch_splits(root, args.folds)
            plans += folds if args.fold is None else folds[args.fold : args.fold + 1]
        if "wear" in args.datasets:
            plans += wear_splits(root)
        if "basicmotions" in args.datasets:
            plans += basicmotions_splits(root)
        for k, (name, train_dir, test_dir) in enumerate(plans):
            rows.append(
                evaluate_split(
                    name,
                    train_dir,
                    test_dir,
                    root / f"run{k}",
                    sets,
                    args.baselines_only,
                    args.no_baselines,
                )
            )
            print(table(rows[-1:]), flush=True)
    print("\n" + table(rows))
    write(
        {
            "machine": machine(),
            "recipe": str(RECIPE.relative_to(REPO)),
            "sets": sets,
            "threads": 1,
            "results": rows,
        },
        args.out.name,
        args.out.parent,
    )
    return 0


def thread_check(repeats: int = 7) -> dict:
    """Median wall ms of one 5 s window's spectrogram and of one imu_only training step (batch
    32) at 1 and at 2 torch threads, alternated in one process (the ratio is what carries over
    to another load)."""
    import statistics

    from evimae_stream.model import create_model
    from evimae_stream.preprocess import PreprocessConfig, preprocess_imu

    x = np.random.default_rng(0).normal(0, 0.3, (250, 12)).astype(np.float32)
    pcfg = PreprocessConfig()
    model = create_model("evimae_tiny", 7)
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    batch = preprocess_imu(np.stack([x] * 32), pcfg)

    def step() -> None:
        loss = model(batch, None, "imu_only").logsumexp(dim=1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    times: dict[str, list[float]] = {}
    for _ in range(repeats):
        for n in (1, 2):
            torch.set_num_threads(n)
            for name, fn in (("spectrogram", lambda: preprocess_imu(x, pcfg)), ("step", step)):
                t = time.perf_counter()
                fn()
                times.setdefault(f"{name}_{n}t", []).append((time.perf_counter() - t) * 1e3)
    torch.set_num_threads(1)
    return {k: round(statistics.median(v), 2) for k, v in times.items()}


def merge(paths: list[Path], out: Path) -> int:
    """One JSON and table from several runs' JSONs (their rows in the order given)."""
    import json

    docs = [json.loads(p.read_text()) for p in paths]
    rows = [r for d in docs for r in d["results"]]
    print(table(rows))
    write(
        {**docs[0], "results": rows, "merged_from": [p.name for p in paths]}, out.name, out.parent
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
