"""``official_forward`` → ``official_forward.json``: our ``evimae_small`` multimodal forward (eager
fp32 and the int8 backend) against the published ``EVIMAEFT`` at the same sizes, fp32, 2 threads.

The published code runs in its own virtual environment (its pinned torch), so the two cannot
share a process: the rounds alternate ours (this process) and theirs (a subprocess of
``--official-python`` running this file with ``--official``), each the median of ``--repeats``
forwards after a warm-up, on random inputs (speed does not depend on the values). Compare rows of
one round; the load is recorded with each.

    python bench/official_forward.py --official-python /work/venvs/official/bin/python
        --official-src /work/official_src/src [--rounds 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

THREADS = 2


def _times_s(fn, repeats: int) -> list[float]:
    """Seconds of ``repeats`` calls of ``fn`` after one warm-up call (each one kept: the
    rounds' medians are taken when the two sides are compared)."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def official(src: Path, repeats: int) -> dict:
    """The published EVIMAEFT (WEAR sizes = evimae_small), multimodal, fp32."""
    from pretrain_parity_official import WEAR_IMU, WEAR_VIDEO

    sys.path.insert(0, str(src))
    import models  # the published package

    torch.manual_seed(0)
    imu = dict(WEAR_IMU, imu_two_stream=False)
    model = models.EVIMAEFT(label_dim=9, video_model_dict=dict(WEAR_VIDEO), imu_model_dict=imu)
    a, v = torch.randn(1, 12, 320, 128), torch.randn(1, 3, 16, 224, 224)
    with torch.inference_mode():
        times = _times_s(lambda: model.eval()(a, v, "multimodal"), repeats)
    return {"official_fp32": times, "torch": torch.__version__}


def ours(repeats: int) -> dict:
    """Our evimae_small, eager fp32 and the int8 backend, multimodal."""
    from evimae_stream.model import create_model
    from evimae_stream.runtime.backends import ModelInputs
    from evimae_stream.runtime.backends.eager import EagerBackend
    from evimae_stream.runtime.backends.int8 import Int8Backend

    torch.manual_seed(0)
    model = create_model("evimae_small", 9).eval()
    x = ModelInputs(torch.randn(1, 12, 320, 128), torch.randn(1, 3, 16, 224, 224))
    out = {}
    for name, backend in (
        ("ours_fp32", EagerBackend(model, "fp32")),
        ("ours_int8", Int8Backend(model)),
    ):
        backend.prepare(x, ("multimodal",))
        out[name] = _times_s(lambda b=backend: b.forward(x, "multimodal"), repeats)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official-python", type=Path)
    parser.add_argument("--official-src", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--official", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    if args.official:
        print(json.dumps(official(args.official_src, args.repeats)))
        return
    from common import RESULTS, load1, machine, write

    rounds = []
    for r in range(args.rounds):
        row = {k: statistics.median(v) for k, v in ours(args.repeats).items()}
        row["load_after_ours"] = load1()
        cmd = [str(args.official_python), __file__, "--official", "--official-src",
               str(args.official_src), "--repeats", str(args.repeats)]  # fmt: skip
        res = subprocess.run(cmd, check=True, capture_output=True, text=True)
        theirs = json.loads(res.stdout.strip().splitlines()[-1])
        row |= {"official_fp32": statistics.median(theirs["official_fp32"]),
                "official_torch": theirs["torch"], "load_after_official": load1()}  # fmt: skip
        rounds.append(row)
        print(
            f"round {r + 1}: ours fp32 {row['ours_fp32']:.2f} s, ours int8 "
            f"{row['ours_int8']:.2f} s, official fp32 {row['official_fp32']:.2f} s "
            f"(torch {theirs['torch']}); official ÷ ours "
            f"fp32 {row['official_fp32'] / row['ours_fp32']:.2f}×, int8 "
            f"{row['official_fp32'] / row['ours_int8']:.2f}× (load {row['load_after_official']})"
        )
    doc = {"machine": machine(), "threads": THREADS, "mode": "multimodal", "rounds": rounds}
    write(doc, "official_forward.json", RESULTS)


if __name__ == "__main__":
    main()
