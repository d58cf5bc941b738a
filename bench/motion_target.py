"""Pixels vs MME motion trajectories as the video pretraining target, at an equal budget.

For each ``video_target`` (pixels, motion, pixels+motion) ``evimae_tiny`` is pretrained on
synthetic wearers with the same steps, batch and schedule; each pretrained encoder (and a
from-scratch baseline) is then fine-tuned ``video_only`` and ``multimodal`` with the same
budget, and tested on wearers of other seeds (held out by wearer). Every run is
``training.train.run`` on the demo recipe in this process, with the windows loaded once per
objective (loading and caching them in every run would cost more than the training on a
shared 2-core CPU); the motion runs print their extraction cost (flow time per window and per
frame pair) and cache size, which the table repeats.

    PYTHONPATH=$PWD nice -n 5 python bench/motion_target.py [--quick] [--out FILE.json]

The default budget (2 epochs of 4 steps of 16 windows per run) runs in ~15 min on a shared
2-core CPU; ``--quick`` (~5 min) only checks that the
script still works (its numbers mean nothing). Accuracies of runs this short are noisy: read them
as "what this budget shows", not as MME's effect at scale.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from training.config import load_config
from training.data import ensure_synthetic
from training.prepare import encoder_config, load_recipe_data
from training.train import run

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "configs" / "train" / "demo.yaml"
TARGETS = ("pixels", "motion", "pixels+motion")
MODES = ("video_only", "multimodal")
_REPORT = re.compile(
    r"motion targets \((\w+)\): (\d+) flow fields for (\d+) windows in ([\d.]+) s "
    r"\(([\d.]+) ms per window, ([\d.]+) ms per pair\), cache ([\d.]+) MB"
)


@dataclass(frozen=True)
class Budget:
    train_minutes: float
    pretrain_epochs: int
    finetune_epochs: int
    steps: int

    @classmethod
    def of(cls, quick: bool) -> Budget:
        return cls(1.0, 1, 1, 1) if quick else cls(1.0, 2, 2, 4)


def sources(b: Budget) -> str:
    """Training wearers 501-504, a validation wearer 601, test wearers 701-702 (held out)."""
    m, e = b.train_minutes, max(0.6, b.train_minutes / 2)
    size = "width: 160, height: 120"
    items = [f"{{kind: synthetic, seed: {s}, minutes: {m}, actions: 10, {size}}}" for s in
             (501, 502, 503, 504)]  # fmt: skip
    for split, seeds in (("val", (601,)), ("test", (701, 702))):
        items += [f"{{kind: synthetic, seed: {s}, minutes: {e}, actions: 6, {size}, "
                  f"split: {split}}}" for s in seeds]  # fmt: skip
    return "data.sources=[" + ", ".join(items) + "]"


def config(work: Path, b: Budget, name: str, *sets: str):
    """The demo recipe at the benchmark's budget, writing under ``work/name``."""
    run = work / name.replace("+", "_")
    return load_config(RECIPE, [
        f"data.synthetic_dir={work / 'synthetic'}", sources(b), "data.stride_s=1.0",
        "data.eval_stride_s=1.0", "model.modality_dropout=0.0", "train.batch_size=16",
        f"train.max_steps_per_epoch={b.steps}", "train.warmup_steps=3", "train.num_threads=1",
        "train.precision=fp32", f"run_dir={run}", f"output={run / 'model'}", *sets,
    ])  # fmt: skip


def bundle_for(cfg):
    """The windows of ``cfg``'s sources, generated and loaded once."""
    for src in cfg.data.sources:
        ensure_synthetic(cfg, src)
    return load_recipe_data(cfg, encoder_config(cfg))


def quiet_run(cfg, bundle) -> tuple[dict, str, float]:
    """``training.train.run`` with its stdout captured; (summary, stdout, seconds)."""
    out = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(out):
        summary = run(cfg, None, bundle)
    return summary, out.getvalue(), time.perf_counter() - t0


def pretrain(work: Path, b: Budget, target: str, bundle) -> dict:
    overrides = f"model.overrides={{video_target: {target}}}"
    cfg = config(work, b, f"pre_{target}", "objective=pretrain",
                 f"train.epochs={b.pretrain_epochs}", overrides)  # fmt: skip
    summary, out, seconds = quiet_run(cfg, bundle)
    row: dict = {"target": target, "pretrain_s": round(seconds, 1)}
    m = _REPORT.search(out)
    if m:
        row.update(flow=m[1], flow_fields=int(m[2]), windows=int(m[3]),
                   extract_ms_per_window=float(m[5]), extract_ms_per_pair=float(m[6]),
                   cache_mb=float(m[7]))  # fmt: skip
    row["encoder"] = summary["pretrain_checkpoint"]
    return row


def finetune(work: Path, b: Budget, name: str, encoder: str | None, mode: str, bundle) -> float:
    sets = ["objective=finetune", f"train.epochs={b.finetune_epochs}", f"model.mode={mode}"]
    if encoder:
        sets += ["model.init=pretrain", f"model.init_path={encoder}"]
    summary, _, _ = quiet_run(config(work, b, f"ft_{name}_{mode}", *sets), bundle)
    return float(summary["metrics"]["test"]["accuracy"])


def table(rows: list[dict]) -> str:
    head = ("pretraining target", "video_only acc", "multimodal acc", "pretrain s",
            "extract ms/window", "ms/pair", "cache MB")  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["target"], f"{r['video_only']:.3f}", f"{r['multimodal']:.3f}",
                 str(r.get("pretrain_s", "-")), str(r.get("extract_ms_per_window", "-")),
                 str(r.get("extract_ms_per_pair", "-")), str(r.get("cache_mb", "-"))]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny budget: checks the script runs")
    ap.add_argument("--out", type=Path, default=REPO / "bench/results/motion_target.json")
    ap.add_argument("--work", type=Path, default=None, help="keep the runs here (default: tmp)")
    args = ap.parse_args(argv)
    b = Budget.of(args.quick)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="motion_target_") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        pre_bundle = bundle_for(config(work, b, "data", "objective=pretrain"))
        ft_bundle = bundle_for(config(work, b, "data", "objective=finetune"))
        rows = [{"target": "none (scratch)", "encoder": None}]
        rows += [pretrain(work, b, t, pre_bundle) for t in TARGETS]
        for r in rows:
            encoder = r.pop("encoder")
            for mode in MODES:
                name = r["target"].split(" ")[0]
                r[mode] = finetune(work, b, name, encoder, mode, ft_bundle)
    print(table(rows))
    result = {"budget": b.__dict__, "quick": args.quick, "rows": rows,
              "seconds": round(time.perf_counter() - started, 1),
              "held_out": "test wearers 701, 702 (seeds never trained on)"}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out} ({result['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
