"""``int8_paths`` → ``int8_paths.json``: every int8 path against fp32 on one variant and mode,
interleaved in one process, and the best speed-up int8 GEMMs can give on this CPU.

Paths, each on the same inputs in every round (rounds interleave the paths, so load that comes
and goes falls on all of them):

- ``eager fp32``: the reference (the runtime's eager backend);
- ``compile fp32``: Inductor with frozen weights, what fusing the element-wise work alone gives;
- ``int8 eager``: the int8 backend (fbgemm's dynamic int8 Linear in the transformer blocks);
- ``int8 pt2e``: torchao's PT2E flow, ``X86InductorQuantizer`` with dynamic per-tensor
  activations and per-channel weights on the blocks' Linear layers, then ``torch.compile``
  with freezing, so Inductor lowers the quantised GEMMs to oneDNN and fuses what is around them;
- ``int8 pt2e lowered``: the same quantised graph through torchao's own x86 lowering (Inductor's
  freezing passes to oneDNN int8 ops, no ``torch.compile``);
- ``int8 torchao``: torchao's ``Int8DynamicActivationInt8WeightConfig`` on the same Linear
  layers, then ``torch.compile`` with freezing.

The model's attention is already ``F.scaled_dot_product_attention`` in every path.

The bound: the profiler splits the eager fp32 forward into GEMMs (share ``f``), attention (``a``)
and the rest; ``g`` is the best int8 ÷ fp32 GEMM rate over the model's GEMM shapes
(``bench/gemm_peak.py``, this process, these threads). int8 GEMMs alone give at most
``1 / ((1 − f) + f / g)``; even with all the rest fused away for free, ``1 / (a + f / g)``.

    nice -n 15 python bench/int8_paths.py [--variant evimae_small] [--mode multimodal]
        [--rounds 5] [--threads 2] [--paths ...]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from common import RESULTS, load1, machine, write
from gemm_peak import gemm_rates
from model_latency import _inputs

PATHS = (
    "eager fp32",
    "compile fp32",
    "int8 eager",
    "int8 pt2e",
    "int8 pt2e lowered",
    "int8 torchao",
)
#: profiler op names that are GEMMs (fp32 and fbgemm's int8) and attention
GEMM_OPS = ("aten::addmm", "aten::mm", "aten::bmm", "quantized::linear_dynamic")
ATTENTION_MARK = "scaled_dot_product"


def _in_block(fqn: str, blocks: list[str]) -> bool:
    return any(fqn.startswith(b + ".") for b in blocks)


def _pt2e(model, mode: str, args: tuple[torch.Tensor, ...], lowered: bool = False) -> Callable:
    """The PT2E-quantised, Inductor-compiled forward of ``mode`` (``lowered``: torchao's own
    x86 lowering, its freezing passes and oneDNN int8 ops without ``torch.compile``)."""
    import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from evimae_stream.runtime.backends.base import ModeModule
    from evimae_stream.runtime.backends.int8 import block_names, plain_attention_twin

    twin = plain_attention_twin(model)
    quantizer = xiq.X86InductorQuantizer()
    # reduce_range: 7-bit activations, as fbgemm's dynamic Linear uses, so AVX2's u8·s8 pair
    # sums (vpmaddubsw, no VNNI) cannot saturate
    config = xiq.get_default_x86_inductor_quantization_config(is_dynamic=True, reduce_range=True)
    for name in block_names(twin):  # names under the exported root, ModeModule's ``model``
        quantizer.set_module_name_qconfig(f"model.{name}", config)
    with torch.no_grad():
        graph = torch.export.export(ModeModule(twin, mode).eval(), args).module()
        prepared = prepare_pt2e(graph, quantizer)
        prepared(*args)
        converted = convert_pt2e(prepared)
        if lowered:
            from torchao.quantization.pt2e.lowering import lower_pt2e_quantized_to_x86

            return lower_pt2e_quantized_to_x86(converted, args)
    return torch.compile(converted, options={"freezing": True})


def _torchao(model, mode: str) -> Callable:
    """torchao's int8 dynamic-activation, int8-weight Linear in the blocks, Inductor-compiled."""
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    from evimae_stream.runtime.backends.base import ModeModule
    from evimae_stream.runtime.backends.int8 import block_names, plain_attention_twin

    twin = plain_attention_twin(model)
    blocks = block_names(twin)
    quantize_(
        twin,
        Int8DynamicActivationInt8WeightConfig(),
        filter_fn=lambda m, fqn: isinstance(m, torch.nn.Linear) and _in_block(fqn, blocks),
    )
    return torch.compile(ModeModule(twin, mode), options={"freezing": True})


def build(path: str, model, mode: str, args: tuple[torch.Tensor, ...]) -> Callable:
    """The forward of ``path`` taking ``mode``'s tensors (compiled ones compile on first call)."""
    from evimae_stream.runtime.backends import ModelInputs
    from evimae_stream.runtime.backends.compiled import CompiledBackend
    from evimae_stream.runtime.backends.eager import EagerBackend
    from evimae_stream.runtime.backends.int8 import Int8Backend

    if path in ("eager fp32", "compile fp32", "int8 eager"):
        if path == "int8 eager":
            backend = Int8Backend(model)
        elif path == "compile fp32":
            backend = CompiledBackend(model, "fp32")
        else:
            backend = EagerBackend(model, "fp32")
        backend.prepare(ModelInputs.from_mode(mode, args), (mode,))
        return lambda *xs: backend.forward(ModelInputs.from_mode(mode, xs), mode)
    if path.startswith("int8 pt2e"):
        fn = _pt2e(model, mode, args, lowered=path.endswith("lowered"))
    else:
        fn = _torchao(model, mode)

    def run(*xs: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return fn(*xs).float()

    return run


def _tensors(cfg, mode: str, seed: int) -> tuple[torch.Tensor, ...]:
    torch.manual_seed(seed)
    return tuple(t for t in _inputs(cfg, mode, "cpu", torch.float32) if t is not None)


def profile_split(fn: Callable, args: tuple[torch.Tensor, ...]) -> dict:
    """Seconds of one forward in GEMMs, attention and the rest (the ops' own times)."""
    from torch.profiler import ProfilerActivity, profile

    fn(*args)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn(*args)
    gemm = attention = total = 0.0
    for ev in prof.key_averages():
        own = ev.self_cpu_time_total / 1e6
        total += own
        if ev.key in GEMM_OPS:
            gemm += own
        elif ATTENTION_MARK in ev.key:
            attention += own
    return {"total_s": total, "gemm_s": gemm, "attention_s": attention,
            "rest_s": total - gemm - attention}  # fmt: skip


def gemm_ratio() -> dict:
    """int8 ÷ fp32 GEMM rate per shape of ``bench/gemm_peak.py`` at the current threads."""
    fp32 = {tuple(r["shape"]): r["gflops"] for r in gemm_rates("fp32") if "gflops" in r}
    int8 = {tuple(r["shape"]): r["gflops"] for r in gemm_rates("int8") if "gflops" in r}
    ratios = {"x".join(map(str, s)): round(int8[s] / fp32[s], 3) for s in fp32 if s in int8}
    return {"fp32_gflops": {"x".join(map(str, s)): v for s, v in fp32.items()},
            "int8_gflops": {"x".join(map(str, s)): v for s, v in int8.items()},
            "int8_over_fp32": ratios, "best": max(ratios.values())}  # fmt: skip


def bound(split: dict, g: float) -> dict:
    """The best speed-ups int8 GEMMs ``g``× faster allow for this forward split."""
    f = split["gemm_s"] / split["total_s"]
    a = split["attention_s"] / split["total_s"]
    return {
        "gemm_share": round(f, 3),
        "attention_share": round(a, 3),
        "rest_share": round(1 - f - a, 3),
        "gemm_ratio": g,
        "best_speedup_rest_as_eager": round(1 / ((1 - f) + f / g), 3),
        "best_speedup_rest_free": round(1 / (a + f / g), 3),
    }


def interleaved(fns: dict[str, Callable], cfg, mode: str, rounds: int) -> dict[str, dict]:
    """Per path: wall and CPU seconds per forward over ``rounds`` rounds of fresh inputs (every
    path on the same inputs in a round) and each round's ratio to eager fp32."""
    rows = {p: {"wall_s": [], "cpu_s": [], "vs_fp32": [], "max_abs_dlogit": 0.0, "top1": 0}
            for p in fns}  # fmt: skip
    for r in range(rounds):
        args = _tensors(cfg, mode, 1000 + r)
        ref = None
        for path, fn in fns.items():
            t0, c0 = time.perf_counter(), time.process_time()
            out = fn(*args)
            rows[path]["wall_s"].append(time.perf_counter() - t0)
            rows[path]["cpu_s"].append(time.process_time() - c0)
            ref = out if ref is None else ref
            rows[path]["max_abs_dlogit"] = max(
                rows[path]["max_abs_dlogit"], float((out - ref).abs().max())
            )
            rows[path]["top1"] += int(bool((out.argmax(-1) == ref.argmax(-1)).all()))
        base = rows["eager fp32"]["wall_s"][-1]
        for path in fns:
            rows[path]["vs_fp32"].append(base / rows[path]["wall_s"][-1])
        times = ", ".join(f"{p} {rows[p]['wall_s'][-1]:.2f}" for p in fns)
        print(f"round {r + 1}: {times} s (load {load1()})", flush=True)
    return rows


def summarise(rows: dict[str, dict], first_call_s: dict[str, float]) -> list[dict]:
    out = []
    for path, r in rows.items():
        out.append({
            "path": path,
            "rounds": len(r["wall_s"]),
            "p50_s": round(statistics.median(r["wall_s"]), 3),
            "cpu_p50_s": round(statistics.median(r["cpu_s"]), 3),
            "speedup_vs_eager_fp32_p50": round(statistics.median(r["vs_fp32"]), 3),
            "max_abs_dlogit_vs_eager_fp32": round(r["max_abs_dlogit"], 5),
            "top1_agree_rounds": r["top1"],
            "first_call_s": round(first_call_s[path], 1),
            "wall_s": [round(t, 3) for t in r["wall_s"]],
        })  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="evimae_small")
    parser.add_argument("--mode", default="multimodal")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--paths", nargs="+", default=list(PATHS), choices=PATHS)
    parser.add_argument("--out-dir", default=RESULTS)
    args = parser.parse_args()
    from pathlib import Path

    from evimae_stream.model import create_model

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = create_model(args.variant, 18).eval()
    example = _tensors(model.cfg, args.mode, 0)
    fns, first, failed = {}, {}, {}
    for path in ["eager fp32", *(p for p in args.paths if p != "eager fp32")]:
        t0 = time.perf_counter()
        try:
            fns[path] = build(path, model, args.mode, example)
            fns[path](*example)
        except Exception as exc:  # recorded; the other paths go on
            failed[path] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            print(f"{path}: failed: {failed[path]}")
            fns.pop(path, None)
            continue
        first[path] = time.perf_counter() - t0
        t1 = time.perf_counter()
        fns[path](*example)
        print(
            f"{path}: built and first call in {first[path]:.1f} s, then one forward in "
            f"{time.perf_counter() - t1:.2f} s (load {load1()})",
            flush=True,
        )
    rows = summarise(interleaved(fns, model.cfg, args.mode, args.rounds), first)
    ratio = gemm_ratio()
    splits = {p: profile_split(fns[p], example) for p in ("eager fp32", "int8 eager") if p in fns}
    limits = bound(splits["eager fp32"], ratio["best"])
    print(f"{args.variant} {args.mode}, {args.threads} threads, median of {args.rounds} rounds")
    print(f"{'path':14s} {'p50 s':>7s} {'cpu s':>7s} {'÷fp32':>6s} {'max|Δlogit|':>11s} first s")
    for r in rows:
        print(
            f"{r['path']:14s} {r['p50_s']:7.3f} {r['cpu_p50_s']:7.3f} "
            f"{r['speedup_vs_eager_fp32_p50']:5.2f}× {r['max_abs_dlogit_vs_eager_fp32']:11.2e} "
            f"{r['first_call_s']:7.1f}"
        )
    for p, s in splits.items():
        print(f"profile {p}: " + ", ".join(f"{k} {v:.3f}" for k, v in s.items()))
    print(f"GEMM int8 ÷ fp32 per shape: {ratio['int8_over_fp32']}")
    print(
        f"bound: GEMMs {100 * limits['gemm_share']:.0f}% of eager fp32, attention "
        f"{100 * limits['attention_share']:.0f}%; with int8 GEMMs {ratio['best']:.2f}× faster "
        f"the forward gains at most {limits['best_speedup_rest_as_eager']:.2f}× "
        f"({limits['best_speedup_rest_free']:.2f}× if all the rest were free)"
    )
    doc = {"machine": machine(), "variant": args.variant, "mode": args.mode,
           "threads": args.threads, "rows": rows, "failed": failed, "profile_s": splits,
           "gemm_rates": ratio, "bound": limits, "load_avg_1m_at_end": load1()}  # fmt: skip
    write(doc, "int8_paths.json", Path(args.out_dir))


if __name__ == "__main__":
    main()
