"""Language alignment (``objective: align``) on held-out synthetic wearers; zero-shot on WEAR.

    python bench/language.py [--epochs 10] [--out runs/bench_language] [--quick]

Data: synthetic wearers (:mod:`evimae_stream.synthetic`, narrated with
:data:`~evimae_stream.synthetic.narrations.NARRATIONS`): four train wearers, one validation
wearer, two held-out test wearers (other seeds: other bodies, sensor biases, scripts). Windows
2 s at 50 Hz, stride 1.5 s (training) and 1 s (validation, test), split by wearer, never by
window. Models: ``evimae_tiny``, IMU-only
supervised head (the reference) and the aligned model (``supervised_weight 0``: alignment
only), the same windows, epochs and optimiser.

Measured on the test wearers' windows:

- zero-shot accuracy with :data:`UNSEEN` prompts (paraphrases never in any training text)
  against the supervised head's accuracy and a logistic regression on window statistics;
- text→window retrieval with those prompts: R@1, R@5 (a window of the action among the top k)
  and mAP over all windows;
- IMU→video retrieval: each window's IMU embedding against every window's video embedding,
  R@1/R@5 of its own video (chance k/N);
- ``search``: the command's own windows (stride 0.5 s), cache and ranking
  (:func:`evimae_stream.language.search.rank`, one hit per moment) over the test sessions, for
  each action's every unseen paraphrase and its name: is the action in the top 5, and first?
- unseen action: alignment trained without any window of :data:`LEFT_OUT`, then recognised by
  its name among all actions;
- WEAR (real): the right-wrist excerpts (``../shared/data/wear``, on every slot) scored zero-shot
  against WEAR's class names by the synthetic-trained aligned model.

Prints a table, writes ``bench/results/language.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from common import RESULTS, machine

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from evimae_stream.artifact import load_artifact, model_hash  # noqa: E402
from evimae_stream.language.text import TextCache  # noqa: E402
from evimae_stream.language.vocabulary import mean_embeddings  # noqa: E402
from evimae_stream.metrics import average_precision  # noqa: E402

#: paraphrases for zero-shot testing: none of them is in the synthetic narrations or a label
UNSEEN: dict[str, tuple[str, ...]] = {
    "idle": ("someone just standing there", "not moving at all"),
    "walking": ("a person going for a walk", "strolling down a hallway"),
    "jogging": ("running at a relaxed pace", "a jog through the park"),
    "waving": ("greeting a friend by waving", "moving the hand back and forth to say hi"),
    "stirring": ("mixing soup in a pot", "turning a spoon around in a saucepan"),
    "chopping": ("slicing vegetables with a knife", "cutting up tomatoes for a salad"),
    "push-ups": ("pressing up from the floor with the arms", "a set of press-ups"),
    "jumping-jacks": ("star jumps with arms overhead", "jumping and spreading the limbs"),
    "reaching": ("grabbing something from a high cupboard", "stretching out a hand to take a cup"),
}
#: the training wearers' seeds (validation 201, test 301 and 302: other wearers)
TRAIN = (101, 102, 103, 104)
#: the action left out of alignment in the unseen-action experiment
LEFT_OUT = "chopping"
#: WEAR's class names of the activities in the two excerpts, as prompts
#: the ``search`` command's default stride, the windows it ranks
SEARCH_STRIDE_S = 0.5
WEAR_PROMPTS = (
    "jogging (sidesteps)", "bench-dips", "stretching (shoulders)", "jogging (butt-kicks)",
    "burpees", "lunges",
)  # fmt: skip


def recipe(out: Path, objective: str, epochs: int, quick: bool, *sets: str):
    from training.config import load_config

    minutes, test_minutes = (1.0, 1.0) if quick else (1.5, 1.5)
    train = [f"{{kind: synthetic, seed: {s}, minutes: {minutes}, actions: 12}}" for s in TRAIN]
    held = [
        f"{{kind: synthetic, seed: {s}, minutes: {test_minutes}, actions: 8, split: {split}}}"
        for s, split in ((201, "val"), (301, "test"), (302, "test"))
    ]
    src = train + held
    return load_config(
        None,
        [
            f"objective={objective}", f"run_dir={out / objective}",
            f"data.synthetic_dir={out / 'synthetic'}", f"data.sources=[{', '.join(src)}]",
            "model.variant=evimae_tiny", "model.mode=imu_only", "imu.fill_missing=true",
            "data.stride_s=1.5", "data.eval_stride_s=1.0", f"train.epochs={epochs}",
            "train.batch_size=16",
            "train.optimizer=adamw", "train.lr=1e-3", "train.head_lr_mult=1.0",
            "train.weight_decay=0.05", "train.schedule=cosine", "train.warmup_steps=20",
            "train.loss=ce", "train.grad_clip=1.0", "train.num_threads=1", "train.device=cpu",
            "augment.crop_scales=[1.0, 0.875]", *sets,
        ],
    )  # fmt: skip


@torch.no_grad()
def embed_split(model, bundle, cfg, split: str) -> dict[str, np.ndarray]:
    """IMU and video embeddings, labels and the raw IMU of a split's windows."""
    from torch.utils.data import DataLoader

    from evimae_stream.model.align import embed
    from training.data import WindowDataset, collate, preprocess_config

    pcfg = preprocess_config(cfg, model.cfg.num_frames, model.cfg.img_size)
    ds = WindowDataset(bundle.splits[split], bundle.store, bundle.classes, pcfg,
                       need_imu=True, need_video=True)  # fmt: skip
    imu, vid, lab = [], [], []
    for batch in DataLoader(ds, batch_size=32, collate_fn=collate):
        e = embed(model, batch["imu"], batch["video"])
        imu.append(e["imu"].numpy())
        vid.extend([e["video"].numpy()] if "video" in e else [])
        lab.append(batch["label"].numpy())
    out = {"imu": np.concatenate(imu), "label": np.concatenate(lab)}
    if vid:  # a model aligned without video has no video projection
        out["video"] = np.concatenate(vid)
    return out


def retrieval(emb: dict, queries: np.ndarray) -> dict[str, float]:
    """text→window R@1/R@5/mAP over the classes present, and IMU→video R@1/R@5."""
    r1, r5, aps = [], [], []
    for c in np.unique(emb["label"]):
        s = emb["imu"] @ queries[c]
        order = np.argsort(-s)
        hit = emb["label"][order] == c
        r1.append(float(hit[0]))
        r5.append(float(hit[:5].any()))
        aps.append(average_precision(s, emb["label"] == c))
    sim = emb["imu"] @ emb["video"].T  # (N, N)
    rank = (sim > np.diag(sim)[:, None]).sum(axis=1)  # own video's rank, 0 = first
    n = len(sim)
    return {
        "text_R@1": float(np.mean(r1)), "text_R@5": float(np.mean(r5)),
        "text_mAP": float(np.mean(aps)), "imu_video_R@1": float((rank < 1).mean()),
        "imu_video_R@5": float((rank < 5).mean()), "imu_video_chance_R@5": min(1.0, 5 / n),
    }  # fmt: skip


def zero_shot(emb: dict, queries: np.ndarray, classes: list[str]) -> dict:
    pred = np.argmax(emb["imu"] @ queries.T, axis=1)
    y = emb["label"]
    per = {classes[c]: float((pred[y == c] == c).mean()) for c in np.unique(y)}
    return {"accuracy": float((pred == y).mean()), "per_class": per, "windows": len(y)}


def baseline(bundle) -> float:
    from training.baseline import Standardiser, feature_matrix, logistic_regression

    def xy(items):
        x = feature_matrix([it.imu for it in items], 50.0)
        return x, np.array([bundle.classes.index(it.labels[0]) for it in items])

    x_tr, y_tr = xy(bundle.splits["train"] + bundle.splits["val"])
    x_te, y_te = xy(bundle.splits["test"])
    std = Standardiser.fit(x_tr)
    pred = logistic_regression(std(x_tr), y_tr, std(x_te), len(bundle.classes))
    return float((pred == y_te).mean())


def search_check(art: Path, cfg, cache: TextCache, stride_s: float = SEARCH_STRIDE_S) -> dict:
    """``search`` as the command runs it (its windows, cache and ranking, :func:`rank`) on the
    test sessions, for every action and every one of its :data:`UNSEEN` paraphrases and its
    name: the labels of the top 5 hits (the label at a hit's centre) and the rank of the first
    hit of the action. An action is found when every one of its paraphrases holds it in the
    top 5."""
    from evimae_stream.commands.search import _load
    from evimae_stream.language.search import rank, session_embeddings
    from evimae_stream.sessions import open_session
    from evimae_stream.truth import label_at
    from training.data import synthetic_session_dir

    loaded = _load(art)
    paths = [synthetic_session_dir(cfg, s) for s in cfg.data.sources if s.split == "test"]
    items = [session_embeddings(loaded, p, stride_s) for p in paths]
    labels = {}
    for p in paths:
        with open_session(p) as s:
            labels[p] = s.labels
    queries = []
    for action in sorted({g.label for segs in labels.values() for g in segs}):
        for kind, text in [*(("unseen", t) for t in UNSEEN[action]), ("name", action)]:
            hits = rank(items, cache.encode([text])[0], 5)
            top = [label_at(labels[h.session], h.centre_s) for h in hits]
            first = next((k for k, lab in enumerate(top, 1) if lab == action), None)
            queries.append({"action": action, "kind": kind, "text": text, "top5": top,
                            "first_right": first})  # fmt: skip
    unseen = [q for q in queries if q["kind"] == "unseen"]
    per_action = {
        a: all(q["first_right"] for q in unseen if q["action"] == a)
        for a in dict.fromkeys(q["action"] for q in queries)
    }
    return {
        "stride_s": stride_s, "windows": int(sum(len(e.t_ref_s) for e in items)),
        "per_action": per_action, "queries": queries,
        "unseen_in_top5": sum(bool(q["first_right"]) for q in unseen),
        "unseen_first": sum(q["first_right"] == 1 for q in unseen), "unseen_queries": len(unseen),
        "names_in_top5": sum(bool(q["first_right"]) for q in queries if q["kind"] == "name"),
    }  # fmt: skip


def wear_zero_shot(art: Path, cache: TextCache) -> dict:
    """The synthetic-trained aligned model on the real WEAR wrist excerpts, by class name."""
    from evimae_stream.language.meta import LanguageMeta
    from evimae_stream.model.align import embed
    from evimae_stream.preprocess import preprocess_imu
    from training.wear_excerpts import ExcerptSession, read_excerpts
    from training.windows import cut_session, make_label_fn

    data = REPO.parent / "shared" / "data" / "wear"
    if not (data / "right_wrist_0_10.csv").is_file():
        return {"skipped": f"{data}: WEAR excerpts not found"}
    model, meta = load_artifact(art)
    LanguageMeta.from_dict(meta.language, meta.classes)
    times, acc, labels = read_excerpts(data)
    session = ExcerptSession(data, times, acc, labels)
    items, _ = cut_session(session, meta.geometry, 2.0, make_label_fn({}, None), fill_missing=True)
    items = [it for it in items if it.labels[0] in WEAR_PROMPTS]
    queries = mean_embeddings(tuple((p,) for p in WEAR_PROMPTS), cache)
    x = np.stack([it.imu for it in items])
    with torch.no_grad():
        z = embed(model, preprocess_imu(x, meta.preprocess), None)["imu"].numpy()
    pred = np.argmax(z @ queries.T, axis=1)
    y = np.array([WEAR_PROMPTS.index(it.labels[0]) for it in items])
    return {"accuracy": float((pred == y).mean()), "chance": 1 / len(WEAR_PROMPTS),
            "windows": len(y), "classes": list(WEAR_PROMPTS),
            "predicted": _counts(WEAR_PROMPTS[k] for k in pred),
            "truth": _counts(WEAR_PROMPTS[k] for k in y)}  # fmt: skip


def _counts(names) -> dict[str, int]:
    out: dict[str, int] = {}
    for n in names:
        out[n] = out.get(n, 0) + 1
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def trained(cfg, bundle, reuse: bool) -> tuple[Path, dict]:
    """(artifact, its metrics): trained now, or with ``reuse`` the run's earlier artifact."""
    from training.train import run

    if reuse and (cfg.output_dir / "model.json").is_file():
        return cfg.output_dir, json.loads((Path(cfg.run_dir) / "results.json").read_text())
    out = run(cfg, bundle=bundle)
    return Path(out["artifact"]), out["metrics"]


def main(argv: list[str] | None = None) -> int:
    from training.prepare import encoder_config, load_recipe_data

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--out", type=Path, default=REPO / "runs" / "bench_language")
    p.add_argument("--quick", action="store_true", help="1-minute wearers (a smoke run)")
    p.add_argument("--reuse", action="store_true", help="evaluate the models already in --out")
    p.add_argument("--seed", type=int, default=0, help="the models' seed (the data stays)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    cache = TextCache()
    seed = f"seed={args.seed}"
    align_cfg = recipe(
        args.out, "align", args.epochs, args.quick, "align.supervised_weight=0.0", seed
    )
    from training.data import ensure_synthetic

    for src in align_cfg.data.sources:
        ensure_synthetic(align_cfg, src)
    bundle = load_recipe_data(align_cfg, encoder_config(align_cfg))
    classes = bundle.classes
    sup_cfg = recipe(args.out, "finetune", args.epochs, args.quick, seed)
    _, sup = trained(sup_cfg, bundle, args.reuse)
    art, _ = trained(align_cfg, bundle, args.reuse)
    model, _ = load_artifact(art)
    emb = embed_split(model, bundle, align_cfg, "test")
    unseen_q = mean_embeddings(tuple(UNSEEN[c] for c in classes), cache)
    names_q = mean_embeddings(tuple((c,) for c in classes), cache)
    result = {
        "machine": machine(), "classes": classes, "windows": bundle.counts(),
        "supervised_accuracy": sup["test"]["accuracy"],
        "logistic_regression_accuracy": baseline(bundle),
        "zero_shot_unseen": zero_shot(emb, unseen_q, classes),
        "zero_shot_names": zero_shot(emb, names_q, classes),
        "retrieval": retrieval(emb, unseen_q), "temperature": model.align.temperature,
        "search": search_check(art, align_cfg, cache), "model_id": model_hash(art),
        "seed": args.seed,
    }  # fmt: skip
    result["ratio_zero_shot_to_supervised"] = result["zero_shot_unseen"]["accuracy"] / max(
        1e-9, result["supervised_accuracy"]
    )
    result["unseen_action"] = unseen_action(args, bundle, cache)
    result["wear_zero_shot"] = wear_zero_shot(art, cache)
    result["elapsed_s"] = time.perf_counter() - t0
    for line in table(result):
        print(line)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "language.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


def unseen_action(args, bundle, cache: TextCache) -> dict:
    """Align (IMU<->text only: video plays no part here) without any :data:`LEFT_OUT` window;
    recognise it by name and by paraphrase."""
    held = copy.copy(bundle)
    held.splits = {
        s: [it for it in v if it.labels[0] != LEFT_OUT] if s != "test" else v
        for s, v in bundle.splits.items()
    }
    cfg = recipe(args.out, "align", args.epochs, args.quick, "align.supervised_weight=0.0",
                 "align.video_weight=0.0", f"run_dir={args.out / 'align_without'}",
                 f"seed={args.seed}")  # fmt: skip
    model, _ = load_artifact(trained(cfg, held, args.reuse)[0])
    emb = embed_split(model, bundle, cfg, "test")
    c = bundle.classes
    name_q = mean_embeddings(tuple((x,) for x in c), cache)
    names = zero_shot(emb, name_q, c)
    para = zero_shot(emb, mean_embeddings(tuple(UNSEEN[x] for x in c), cache), c)
    k = c.index(LEFT_OUT)
    mine = emb["imu"][emb["label"] == k] @ name_q.T  # (n, C): its windows against every name
    return {
        "left_out": LEFT_OUT, "by_name_accuracy_on_it": names["per_class"].get(LEFT_OUT),
        "by_paraphrase_accuracy_on_it": para["per_class"].get(LEFT_OUT),
        "overall_by_name": names["accuracy"], "chance": 1 / len(c),
        "its_windows_go_to": _counts(c[j] for j in np.argmax(mine, axis=1)),
        "its_windows_cosine": {c[j]: round(float(mine[:, j].mean()), 3) for j in range(len(c))},
        "its_name_text_cosine": {
            x: round(float(name_q[k] @ name_q[j]), 3) for j, x in enumerate(c) if j != k
        },
    }  # fmt: skip


def table(r: dict) -> list[str]:
    zs, rt, ua = r["zero_shot_unseen"], r["retrieval"], r["unseen_action"]
    sr = r["search"]
    missed = [a for a, ok in sr["per_action"].items() if not ok]
    found = len(sr["per_action"]) - len(missed)
    wear = r["wear_zero_shot"]
    rows = [
        ("supervised head (IMU-only), test accuracy", f"{r['supervised_accuracy']:.3f}"),
        ("logistic regression on window statistics", f"{r['logistic_regression_accuracy']:.3f}"),
        ("zero-shot, unseen paraphrases", f"{zs['accuracy']:.3f} "
         f"({r['ratio_zero_shot_to_supervised']:.2f}x supervised)"),
        ("zero-shot, class names", f"{r['zero_shot_names']['accuracy']:.3f}"),
        ("text->window R@1 / R@5 / mAP", f"{rt['text_R@1']:.2f} / {rt['text_R@5']:.2f} / "
         f"{rt['text_mAP']:.3f}"),
        ("IMU->video R@1 / R@5 (chance R@5)", f"{rt['imu_video_R@1']:.3f} / "
         f"{rt['imu_video_R@5']:.3f} ({rt['imu_video_chance_R@5']:.3f})"),
        ("search: action in top 5 for all its paraphrases", f"{found}/{len(sr['per_action'])} "
         f"actions{' (missed: ' + ', '.join(missed) + ')' if missed else ''}"),
        ("search: paraphrases with the action in top 5 / first",
         f"{sr['unseen_in_top5']}/{sr['unseen_queries']} / {sr['unseen_first']}/"
         f"{sr['unseen_queries']} (names {sr['names_in_top5']}/{len(sr['per_action'])} in top 5)"),
        (f"unseen action '{ua['left_out']}' by name / paraphrase",
         f"{ua['by_name_accuracy_on_it']:.3f} / {ua['by_paraphrase_accuracy_on_it']:.3f} "
         f"(chance {ua['chance']:.3f})"),
        ("WEAR excerpts zero-shot, class names",
         f"{wear['accuracy']:.3f} (chance {wear['chance']:.3f}, {wear['windows']} windows)"
         if "accuracy" in wear else wear.get("skipped", "-")),
    ]  # fmt: skip
    width = max(len(a) for a, _ in rows)
    head = f"language alignment, {r['windows']} windows, {r['machine']['cpu']}"
    return [head, *(f"{a:<{width}}  {b}" for a, b in rows), f"elapsed {r['elapsed_s']:.0f} s"]


if __name__ == "__main__":
    sys.exit(main())
