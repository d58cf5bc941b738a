"""Pretraining parity harness: our ``evimae_small`` pretraining objective against the published
EVI-MAE code (mf-zhang/IMU-Video-MAE), loss term by loss term and gradient by gradient.

A development tool, not part of CI (the tests in ``tests/test_model_pretrain.py`` pin what it
found). The two models run in their own interpreters and exchange files: this side builds our
model, perturbs its weights (seeded), and writes the state dict, one batch, the mask noise
(IMU tokens, video tokens, graph nodes) and GraphMAE's dropout masks; the published side
(``bench/pretrain_parity_official.py``, run with the published environment's Python and the
published ``src/`` on its path) loads them, runs one training-mode forward + backward with
every draw forced, and writes its losses and gradients; this side runs ours on the same
inputs and draws and prints the comparison. Exit 0 when every loss term is within
``--loss-tol`` and every parameter gradient within ``--grad-tol`` (relative), else 1.

The published code is read from a snapshot outside this repository, never copied in::

    git clone https://github.com/mf-zhang/IMU-Video-MAE /work/official   # or a snapshot
    python3.11 -m venv /work/venvs/official
    /work/venvs/official/bin/pip install torch==2.2.1 torchaudio==2.2.1 dgl==2.1.0 \\
        timm==0.4.5 "numpy<2" safetensors einops torchdata==0.7.1 "pandas<2.3" pydantic pyyaml
    nice -n 5 python bench/pretrain_parity.py --official-src /work/official/src \\
        --official-python /work/venvs/official/bin/python [--dtype float64] [--batch 4]

(dgl 2.1.0 imports ``torchdata.datapipes``, gone after torchdata 0.7, and pandas, pydantic,
yaml; einops is the published model's.) One run, batch 4 on one thread, takes a few minutes
per side on a 2-core CPU (float64 about twice that); the exchange folder keeps every file
and the published side's log.

``--set FIELD=VALUE`` overrides a pretraining field of ours (e.g. ``graph_detach_target=true``
shows what the harness catches); ``--contrast-bidirectional`` sets ours and the published flag
``bidirect_contrast`` together, to check that option too.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from pretrain_parity_official import dropout_masks, forced_draws
from safetensors.torch import load_file, save_file

from evimae_stream.model import create_pretrain_model
from evimae_stream.model.pretrain import MaskNoise

OFFICIAL_SCRIPT = Path(__file__).resolve().parent / "pretrain_parity_official.py"
#: (our loss key, published key, how ours is weighted into the published value)
LOSS_TERMS = (
    ("loss", "loss.total", "total"),
    ("loss_imu", "loss.imu", "imu MSE"),
    ("loss_video", "loss.video", "video MSE"),
    ("loss_contrastive", "loss.contrastive_weighted", "0.01 x InfoNCE"),
    ("loss_graph", "loss.graph", "graph 1-cos"),
)


@dataclass
class Setup:
    batch: int
    dtype: str
    threads: int
    seed: int
    contrast_bidirectional: bool
    overrides: dict


def _parse_set(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key] = json.loads(value) if value not in ("", None) else value
    return out


def build_ours(setup: Setup) -> torch.nn.Module:
    """Ours with the published initialisation, then every parameter perturbed (seeded) so no
    LayerNorm, BatchNorm or bias sits at an identity value that could hide a difference."""
    torch.manual_seed(setup.seed)
    fields = {"contrast_bidirectional": setup.contrast_bidirectional, **setup.overrides}
    model = create_pretrain_model("evimae_small", **fields)
    g = torch.Generator().manual_seed(setup.seed + 1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=g))
    return model


def make_batch(model: torch.nn.Module, setup: Setup) -> dict[str, torch.Tensor]:
    """Inputs, mask noise, and the keep masks of the three GraphMAE feature dropouts (encoder
    layers 0, 1, decoder; p = 0.2).

    Inputs are unit-normal, like normalised spectrograms and frames, each IMU window shifted by
    its own offset in [-1, 1] so the samples differ the way real windows do. On near-identical
    samples the published graph encoder is ill-conditioned: every node of a K4 body graph gets
    the same GIN sum, so its train-mode BatchNorm normalises over B distinct rows, and float32
    rounding (not the formula) decides the graph gradients.
    """
    cfg, b = model.cfg, setup.batch
    g = torch.Generator().manual_seed(setup.seed + 2)
    noise = model.draw_noise(b, generator=g)
    rows, p = b * cfg.num_imus, cfg.graph_dropout
    widths = (cfg.imu_embed_dim, cfg.graph_hidden, cfg.graph_hidden)
    imu = torch.randn(b, cfg.imu_channels, cfg.spec_time, cfg.spec_freq, generator=g)
    batch = {
        "imu": imu + torch.linspace(-1, 1, b).view(b, 1, 1, 1),
        "video": torch.randn(b, 3, cfg.num_frames, cfg.img_size, cfg.img_size, generator=g),
        "noise.imu": noise.imu,
        "noise.video": noise.video,
        "noise.graph": noise.graph,
    }
    for i, w in enumerate(widths):
        batch[f"dropout.{i}"] = (torch.rand(rows, w, generator=g) >= p).float()
    return batch


def run_official(args: argparse.Namespace, work: Path) -> float:
    """The published side, in its own interpreter; its log goes to ``work/official.log``."""
    t0 = time.perf_counter()
    cmd = [str(args.official_python), str(OFFICIAL_SCRIPT), "--src", str(args.official_src)]
    with open(work / "official.log", "w") as log:
        proc = subprocess.run([*cmd, "--work", str(work)], stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode:
        tail = (work / "official.log").read_text().splitlines()[-15:]
        raise SystemExit("published side failed:\n" + "\n".join(tail))
    return time.perf_counter() - t0


def run_ours(model: torch.nn.Module, batch: dict, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    model.to(dtype).train()
    noise = MaskNoise(batch["noise.graph"], batch["noise.imu"], batch["noise.video"])
    # ours draws nothing itself when handed the noise: empty rand/randperm queues prove it
    with forced_draws([], [], dropout_masks(batch)):
        out = model(batch["imu"].to(dtype), batch["video"].to(dtype), noise=noise)
    out["loss"].backward()
    res = {k: v.detach() for k, v in out.items()}
    res["loss_contrastive"] = model.pcfg.contrast_weight * res["loss_contrastive"]  # as published
    return res


#: in units of the dtype's epsilon: a gradient this small against its group's largest is zero in
#: exact arithmetic (the bias of a Linear feeding a train-mode BatchNorm, whose batch mean
#: removes it): both sides hold rounding noise there, so it is compared as zero
ZERO_GRAD_EPS = 100


def _rel(a: torch.Tensor, b: torch.Tensor, floor: float) -> float | None:
    """max |a − b| / max |b|; None when both are below ``floor`` (zero in exact arithmetic)."""
    a, b = a.double(), b.double()
    diff, scale = (a - b).abs().max().item(), b.abs().max().item()
    if max(scale, a.abs().max().item()) <= floor:
        return None
    return diff / scale if scale else float("inf")


def compare(model, ours: dict, official: dict, args) -> bool:
    ok = True
    print(f"\n{'loss term':<18}{'ours':>16}{'published':>16}{'rel. diff':>12}")
    for key, okey, label in LOSS_TERMS:
        a, b = ours[key].double().item(), official[okey].double().item()
        rel = abs(a - b) / max(abs(b), 1e-30)
        ok &= rel <= args.loss_tol
        print(f"{label:<18}{a:>16.9g}{b:>16.9g}{rel:>12.2e}")
    groups: dict[str, list[float]] = {}
    mismatched_use = []
    params = dict(model.named_parameters())
    missing = sorted(set(params) ^ {k[5:] for k in official if k.startswith("grad.")})
    if missing:
        print(f"parameter names differ: {missing[:8]}")
        return False
    zero_rel = ZERO_GRAD_EPS * torch.finfo(getattr(torch, args.dtype)).eps
    scale: dict[str, float] = {}
    for name in params:
        grp = name.split(".")[0]
        scale[grp] = max(scale.get(grp, 0.0), official[f"grad.{name}"].abs().max().item())
    zeros, unused = [], 0
    for name, p in params.items():
        got = p.grad if p.grad is not None else torch.zeros_like(p)
        if (p.grad is not None) != bool(official[f"hasgrad.{name}"]):
            mismatched_use.append(name)
        grp = name.split(".")[0]
        rel = _rel(got, official[f"grad.{name}"], zero_rel * scale[grp])
        if p.grad is None and not official[f"hasgrad.{name}"]:
            unused += 1  # e.g. the modality norm pairs a block never runs with
        elif rel is None:
            zeros.append(name)
        groups.setdefault(grp, []).append(rel or 0.0)
    n_all = sum(len(v) for v in groups.values())
    n_ok = sum(r <= args.grad_tol for v in groups.values() for r in v)
    ok &= n_ok == n_all
    print(f"\n{'gradients':<26}{'params':>8}{'within':>8}{'worst rel. diff':>18}")
    for grp, rels in groups.items():
        within = sum(r <= args.grad_tol for r in rels)
        print(f"{grp:<26}{len(rels):>8}{within:>8}{max(rels):>18.2e}")
    print(f"{'all':<26}{n_all:>8}{n_ok:>8}{max(max(v) for v in groups.values()):>18.2e}")
    print(f"{unused} tensors unused on both sides (no gradient); compared as equal")
    if zeros:
        print(
            f"zero in exact arithmetic (both below {zero_rel:.1e} x the group's largest): "
            + ", ".join(zeros)
        )
    if mismatched_use:
        print(f"a gradient on one side only: {mismatched_use}")
    print(
        f"relative difference: max |ours - published| / max |published| per tensor; "
        f"tolerances: loss {args.loss_tol:g}, gradient {args.grad_tol:g}"
    )
    return ok


def check_masks(model, batch: dict, official: dict) -> bool:
    """The published side used exactly the masks the noise defines (the forcing worked)."""
    pc, ok = model.pcfg, True
    for key, ratio in (("imu", pc.mask_ratio_imu), ("video", pc.mask_ratio_video)):
        noise = batch[f"noise.{key}"]
        keep = int(noise.shape[1] * (1 - ratio))
        want = (noise.argsort(dim=1).argsort(dim=1) >= keep).float()
        ok &= torch.equal(want, official[f"mask.{key}"])
    return ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--official-src",
        type=Path,
        required=True,
        help="the published repo's src/ folder (a snapshot outside this repo)",
    )
    ap.add_argument(
        "--official-python",
        type=Path,
        required=True,
        help="Python of the published environment (torch 2.2.1, dgl 2.1.0, ...)",
    )
    ap.add_argument(
        "--batch",
        type=int,
        default=4,
        help="at 2 the published graph BatchNorm sees 2 distinct rows (see make_batch)",
    )
    ap.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--contrast-bidirectional", action="store_true")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=JSON",
        help="override one of our pretraining fields (e.g. graph_detach_target=true)",
    )
    ap.add_argument("--loss-tol", type=float, default=1e-5)
    ap.add_argument("--grad-tol", type=float, default=1e-4)
    ap.add_argument("--work", type=Path, help="exchange folder (default: a new temporary one)")
    args = ap.parse_args(argv)
    for path, what in (
        (args.official_src / "models" / "evi_mae.py", "--official-src"),
        (args.official_python, "--official-python"),
    ):
        if not path.is_file():
            print(f"{what}: {path} not found (see this script's docstring)", file=sys.stderr)
            return 2
    setup = Setup(
        args.batch,
        args.dtype,
        args.threads,
        args.seed,
        args.contrast_bidirectional,
        _parse_set(args.set),
    )
    torch.set_num_threads(setup.threads)
    work = args.work or Path(tempfile.mkdtemp(prefix="evimae_parity_"))
    work.mkdir(parents=True, exist_ok=True)
    model = build_ours(setup)
    batch = make_batch(model, setup)
    (work / "setup.json").write_text(json.dumps(setup.__dict__))
    save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()}, str(work / "state.safetensors")
    )
    save_file(batch, str(work / "batch.safetensors"))
    t_off = run_official(args, work)
    official = load_file(str(work / "official.safetensors"))
    t0 = time.perf_counter()
    ours = run_ours(model, batch, getattr(torch, setup.dtype))
    t_ours = time.perf_counter() - t0
    print(
        f"evimae_small pretraining, WEAR pretrain config, batch {setup.batch}, {setup.dtype}, "
        f"seed {setup.seed}, ours {setup.overrides or 'defaults'}"
        f"{', bidirectional InfoNCE' if setup.contrast_bidirectional else ''}; "
        f"published {t_off:.0f} s, ours {t_ours:.0f} s; exchange folder {work}"
    )
    masks_ok = check_masks(model, batch, official)
    print("published masks = the forced ones:", "yes" if masks_ok else "NO")
    ok = compare(model, ours, official, args) and masks_ok
    print("PARITY" if ok else "DIFFERENT")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
