"""The training loop's engineering features, run in-process on tiny windows made here (no
sessions to cut): bf16 autocast on CPU, gradient accumulation, fine-tuning from a published
checkpoint, and the artifact holding the best validation epoch rather than the last."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook
from torch.utils.data import DataLoader

from evimae_stream.artifact import load_artifact
from evimae_stream.model import create_model
from training.config import TrainConfig, load_config
from training.data import DataBundle, WindowDataset, collate, preprocess_config
from training.evaluate import evaluate
from training.prepare import build_model
from training.train import run
from training.windows import FrameStore, WindowItem

#: a model small enough that an optimizer step takes milliseconds (cf. tests/training_helpers)
OVERRIDES = (
    "imu_embed_dim: 32, imu_heads: 1, imu_depth: 1, video_embed_dim: 16, video_heads: 1, "
    "video_depth: 1, num_frames: 2, img_size: 32, graph_hidden: 16"
)
CLASSES = ["low", "high"]
RATE_HZ, WINDOW_S = 50.0, 2.0


@pytest.fixture(autouse=True)
def _restore_threads() -> Iterator[None]:
    """``train.num_threads`` sets torch's global thread count: give it back afterwards."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def window(label: str, k: int, store: FrameStore | None) -> WindowItem:
    """A 2 s window whose class is the IMU's frequency (1.5 Hz "low", 6 Hz "high") and, with a
    ``store``, the brightness of its two frames."""
    rng = np.random.default_rng(k)
    t = np.arange(round(RATE_HZ * WINDOW_S)) / RATE_HZ
    f = 1.5 if label == "low" else 6.0
    imu = np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))[:, None] * np.ones(12)
    imu = (imu + rng.normal(0, 0.05, imu.shape)).astype(np.float32)
    frames = None
    if store is not None:
        level = 60 if label == "low" else 190
        frames = [
            store.add(rng.integers(level - 40, level + 40, (48, 64, 3), dtype=np.uint8))
            for _ in range(2)
        ]
    return WindowItem(imu, frames, (label,), "made-here", float(k))


def bundle(
    n_train: int, n_val: int = 8, video: bool = False, val_swapped: bool = False
) -> DataBundle:
    """Balanced windows of both classes per split; ``val_swapped`` labels the validation
    windows the other way round, so the better the model fits training, the worse it scores."""
    store = FrameStore(32)
    keep = store if video else None

    def split(n: int, offset: int, swap: bool = False) -> list[WindowItem]:
        items = []
        for k in range(n):
            label = CLASSES[k % 2]
            it = window(label, offset + k, keep)
            if swap:
                it.labels = (CLASSES[1 - k % 2],)
            items.append(it)
        return items

    splits = {
        "train": split(n_train, 0),
        "val": split(n_val, 1000, val_swapped),
        "test": split(4, 2000),
    }
    return DataBundle(splits, list(CLASSES), store, [{"kind": "made-here"}])


def config(run_dir: Path, *sets: str) -> TrainConfig:
    """A tiny fine-tune recipe; the data comes from :func:`bundle` (the source is a stand-in)."""
    return load_config(
        None,
        [
            f"run_dir={run_dir}",
            "data.sources=[{kind: synthetic}]",
            f"model.overrides={{{OVERRIDES}}}",
            "model.mode=imu_only",
            f"imu.rate_hz={RATE_HZ}",
            f"imu.window_s={WINDOW_S}",
            "augment.imu_noise_std=0.0",
            "train.epochs=1",
            "train.batch_size=4",
            "train.lr=1e-3",
            "train.head_lr_mult=1.0",
            "train.schedule=constant",
            "train.device=cpu",
            "train.num_threads=1",
            *sets,
        ],
    )


def log_rows(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "log.csv").open() as fh:
        return list(csv.DictReader(fh))


def initial_state(cfg: TrainConfig) -> dict[str, torch.Tensor]:
    """The weights a run of ``cfg`` starts from (train.py seeds torch just before building)."""
    torch.manual_seed(cfg.seed)
    return {k: v.clone() for k, v in build_model(cfg, len(CLASSES)).state_dict().items()}


def last_state(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.pt", weights_only=False)["model"]


def max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


def test_bf16_autocast_trains_on_cpu(tmp_path: Path) -> None:
    sets = ("model.mode=multimodal", "train.max_steps_per_epoch=3")
    data = bundle(12, video=True)
    bf16 = config(tmp_path / "bf16", "train.precision=bf16", *sets)
    run(bf16, bundle=data)
    fp32 = config(tmp_path / "fp32", "train.precision=fp32", *sets)
    run(fp32, bundle=data)

    (row,) = log_rows(tmp_path / "bf16")
    (ref,) = log_rows(tmp_path / "fp32")
    loss, val = float(row["train_loss"]), float(row["val_loss"])
    assert math.isfinite(loss) and math.isfinite(val)
    # autocast really ran in bf16 (8 mantissa bits): the same steps give a slightly other loss
    assert loss != float(ref["train_loss"])
    assert loss == pytest.approx(float(ref["train_loss"]), rel=0.05)
    init, trained = initial_state(bf16), last_state(tmp_path / "bf16")
    # every trained tensor is float32 (autocast computes in bf16, the weights stay fp32)
    assert {v.dtype for k, v in trained.items() if v.is_floating_point()} == {torch.float32}
    floats = [k for k in init if init[k].is_floating_point()]
    moved = [k for k in floats if not torch.equal(init[k], trained[k])]
    assert "patch_embed_a.proj.weight" in moved and "patch_embed_video.proj.weight" in moved
    assert any(k.startswith("mlp_head") for k in moved)


def test_auto_precision_trains_as_bf16_with_amx_else_fp32(tmp_path: Path) -> None:
    from evimae_stream.device import cpu_has_amx

    sets = ("model.mode=imu_only", "train.max_steps_per_epoch=2")
    data = bundle(12)
    auto = config(tmp_path / "auto", "train.precision=auto", *sets)
    run(auto, bundle=data)
    want = "bf16" if cpu_has_amx() else "fp32"
    assert auto.train.precision == want  # resolved once, at the start of the run
    run(config(tmp_path / "explicit", f"train.precision={want}", *sets), bundle=data)
    (row,) = log_rows(tmp_path / "auto")
    (ref,) = log_rows(tmp_path / "explicit")
    assert (row["train_loss"], row["val_loss"]) == (ref["train_loss"], ref["val_loss"])


@contextmanager
def optimizer_steps() -> Iterator[list[list[torch.Tensor | None]]]:
    """Record the gradient of every parameter each time an optimizer steps (a global
    step pre-hook: it watches the real loop and changes nothing)."""
    steps: list[list[torch.Tensor | None]] = []

    def hook(opt: torch.optim.Optimizer, args: object, kwargs: object) -> None:
        steps.append([
            None if p.grad is None else p.grad.detach().clone()
            for group in opt.param_groups for p in group["params"]
        ])  # fmt: skip

    handle = register_optimizer_step_pre_hook(hook)
    try:
        yield steps
    finally:
        handle.remove()


def grad_diff(a: list[torch.Tensor | None], b: list[torch.Tensor | None]) -> float:
    assert [g is None for g in a] == [g is None for g in b]
    return max(float((x - y).abs().max()) for x, y in zip(a, b, strict=True) if x is not None)


@pytest.mark.parametrize("n_train", [16, 14])  # 14: the epoch's last step is short (8, 6)
def test_accumulating_two_micro_batches_is_one_batch_twice_as_big(
    tmp_path: Path, n_train: int
) -> None:
    # nothing that depends on how a batch is cut: the graph path (BatchNorm, dropout) off, no
    # augmentation. Adam turns rounding noise in gradients that are 0 in exact arithmetic (the
    # attention key bias) into steps of +-lr, so the weights are not compared: the gradients
    # every step receives are, at a learning rate too small to move the weights in between.
    sets = ("model.overrides.use_graph=false", "train.epochs=2", "train.lr=1e-12")
    data = bundle(n_train)
    grads = {}
    for name, batch, accum in (("whole", 8, 1), ("accum", 4, 2), ("small", 4, 1)):
        cfg = config(tmp_path / name, f"train.batch_size={batch}", f"train.accum_steps={accum}",
                     *sets)  # fmt: skip
        with optimizer_steps() as steps:
            run(cfg, bundle=data)
        grads[name] = steps
    assert [len(grads[n]) for n in ("whole", "accum", "small")] == [4, 4, 8]
    for whole, accum in zip(grads["whole"], grads["accum"], strict=True):
        # equal up to float32 rounding of differently grouped sums (~1e-6 measured; gradients
        # up to 0.4); a short last step weighted 1/accum_steps per micro-batch is off by 0.1
        assert grad_diff(whole, accum) < 1e-5
    # not vacuous: one micro-batch alone has another gradient
    assert grad_diff(grads["whole"][0], grads["small"][0]) > 1e-3


def test_finetune_starts_from_a_published_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    probe = config(tmp_path / "probe")
    torch.manual_seed(1234)  # weights that no seed-0 run starts from
    published = create_model(probe.model.variant, len(CLASSES), **probe.model.overrides)
    ref = {k: v.clone() for k, v in published.state_dict().items()}
    pth = tmp_path / "published.pth"
    # the release's layout: saved from nn.DataParallel, every key prefixed "module."
    torch.save({f"module.{k}": v for k, v in ref.items()}, pth)

    # a learning rate too small to move anything: the run ends where it started
    cfg = config(tmp_path / "ft", "model.init=official", f"model.init_path={pth}",
                 "train.lr=1e-12", "train.max_steps_per_epoch=1")  # fmt: skip
    run(cfg, bundle=bundle(8))
    out = capsys.readouterr().out
    n = len(ref)
    assert f"{pth}: loaded {n}/{n} tensors" in out
    model, _ = load_artifact(cfg.output_dir)
    params = dict(model.named_parameters())
    scratch = initial_state(cfg)
    for k, p in params.items():
        torch.testing.assert_close(p.detach(), ref[k], atol=1e-6, rtol=0)
    assert max_diff({k: p.detach() for k, p in params.items()}, scratch) > 1e-2


def test_artifact_holds_the_best_validation_epoch_not_the_last(tmp_path: Path) -> None:
    # validation labelled the other way round: fitting training makes validation worse, so the
    # best validation loss is early and the last epoch is not the best
    cfg = config(tmp_path / "run", "train.epochs=4", "train.select_metric=loss",
                 "train.loss=bce")  # fmt: skip
    data = bundle(16, val_swapped=True)
    run(cfg, bundle=data)
    rows = log_rows(tmp_path / "run")
    val_loss = [float(r["val_loss"]) for r in rows]
    best = int(np.argmin(val_loss)) + 1
    assert best != len(rows), f"set-up: validation should get worse, got {val_loss}"
    assert int(rows[-1]["best_epoch"]) == best

    ckpts = tmp_path / "run" / "checkpoints"
    best_ckpt = torch.load(ckpts / "best.pt", weights_only=False)
    assert best_ckpt["epoch"] == best
    last = last_state(tmp_path / "run")
    model, meta = load_artifact(cfg.output_dir)
    own = model.state_dict()
    for k, v in best_ckpt["model"].items():
        assert torch.equal(own[k], v), k
    assert max_diff(own, last) > 1e-4
    doc = json.loads((cfg.output_dir / "model.json").read_text())
    assert doc["metrics"]["best_epoch"] == best

    # the artifact scores on validation exactly what the log says of the best epoch
    pcfg = preprocess_config(cfg, meta.num_frames, meta.img_size)
    ds = WindowDataset(data.splits["val"], data.store, meta.classes, pcfg,
                       need_imu=True, need_video=False)  # fmt: skip
    loader = DataLoader(ds, batch_size=cfg.train.batch_size, collate_fn=collate)
    got = evaluate(model, loader, meta.classes, "imu_only", torch.device("cpu"))
    assert got["loss"] == pytest.approx(val_loss[best - 1], abs=1e-6)
    assert got["loss"] != pytest.approx(val_loss[-1], abs=1e-4)
