"""The GEMM peak of each precision on this CPU: fp32, bf16 and int8, at the shapes the model runs.

A precision's forward can only be as fast as its GEMMs, so ``bench/forward.py`` reports each row
against the peak of its own precision, measured in the same run. The shapes are square ones and
the two that dominate ``evimae_small`` (the IMU encoder's 800 tokens × 768 → 3072, the video
encoder's 1568 × 384 → 1536); the peak is the best of them. fp32 and bf16 run as ``nn.Linear``
(bf16 weights and inputs, what the eager bf16 backend runs); int8 as the int8 backend's Linear
(int8 weights per output channel, activations quantised per call, fbgemm's x86 kernels), its
quantisation of the input included.

    python bench/gemm_peak.py [--threads 1 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

#: (rows, in, out): square ones and the model's largest GEMMs
SHAPES: tuple[tuple[int, int, int], ...] = (
    (1024, 1024, 1024),
    (2048, 2048, 2048),
    (800, 768, 3072),
    (800, 3072, 768),
    (1568, 384, 1536),
    (1568, 1536, 384),
)
PRECISIONS = ("fp32", "bf16", "int8")


def _layer(precision: str, k: int, n: int) -> nn.Module:
    """A Linear ``k → n`` as the backend of ``precision`` runs it."""
    torch.manual_seed(0)
    lin = nn.Linear(k, n).eval()
    if precision == "bf16":
        return lin.to(torch.bfloat16)
    if precision == "int8":
        from evimae_stream.runtime.backends.int8 import quantize_linears, quantized_engine

        torch.backends.quantized.engine = quantized_engine()
        return quantize_linears(nn.Sequential(lin))
    return lin


def _median_s(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def gemm_rates(precision: str, repeats: int = 5, budget_s: float = 2.0) -> list[dict]:
    """GFLOP/s of each of :data:`SHAPES` in ``precision`` at torch's current thread count; a
    shape whose one GEMM would take more than ``budget_s`` at the rate seen so far is skipped
    (emulated bf16 is slow)."""
    rows, rate = [], None
    for m, k, n in SHAPES:
        gflop = 2 * m * k * n / 1e9
        if rate and gflop / rate > budget_s:
            rows.append({"shape": [m, k, n], "skipped": f"> {budget_s} s at {rate:.1f} GFLOP/s"})
            continue
        layer = _layer(precision, k, n)
        x = torch.randn(m, k, dtype=torch.bfloat16 if precision == "bf16" else torch.float32)
        with torch.inference_mode():
            s = _median_s(lambda: layer(x), repeats)  # noqa: B023 (called at once)
        rate = gflop / s
        rows.append({"shape": [m, k, n], "ms": round(s * 1e3, 3), "gflops": round(rate, 1)})
    return rows


def gemm_peaks(threads: tuple[int, ...] = (1, 2)) -> dict[str, dict]:
    """``{"<precision>-t<threads>": {"gflops": best, "shape": its shape, "rates": all}}``."""
    peaks: dict[str, dict] = {}
    saved = torch.get_num_threads()
    try:
        for t in threads:
            torch.set_num_threads(t)
            for prec in PRECISIONS:
                rates = gemm_rates(prec)
                best = max((r for r in rates if "gflops" in r), key=lambda r: r["gflops"])
                peaks[f"{prec}-t{t}"] = {
                    "gflops": best["gflops"],
                    "shape": best["shape"],
                    "rates": rates,
                }
    finally:
        torch.set_num_threads(saved)
    return peaks


def print_peaks(peaks: dict[str, dict]) -> None:
    """One line per precision and thread count, with the model's two main shapes."""
    for key, p in peaks.items():
        shapes = ", ".join(
            f"{'x'.join(map(str, r['shape']))} {r['gflops']:.0f}"
            for r in p["rates"]
            if "gflops" in r
        )
        print(f"GEMM peak {key:8s} {p['gflops']:7.1f} GFLOP/s  ({shapes})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    print_peaks(gemm_peaks(tuple(args.threads)))


if __name__ == "__main__":
    main()
