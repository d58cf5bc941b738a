"""What every benchmark shares: the machine it ran on, the load, the demo model, percentiles
and where the JSON goes. The benchmark scripts run as ``python bench/NAME.py`` (their folder is
on ``sys.path`` then) against the installed ``evimae_stream``."""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path

import torch
from model_latency import cpu_flags, cpu_model, percentile

RESULTS = Path(__file__).resolve().parent / "results"
DEMO_MODEL = Path(__file__).resolve().parents[1] / "evimae_stream" / "assets" / "demo_model"
_NS = 1_000_000_000


def load1() -> float:
    """The 1-minute load average (what else runs on this shared machine)."""
    return round(os.getloadavg()[0], 2)


def machine() -> dict:
    """What the numbers were measured on."""
    import platform

    return {
        "cpu": cpu_model(),
        "cpu_flags": cpu_flags(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "load_avg_1m_at_start": load1(),
    }


def bf16_native() -> bool:
    """Whether bf16 matmuls run natively here (AMX tiles or AVX512-BF16)."""
    from evimae_stream.device import cpu_has_amx

    return cpu_has_amx() or "avx512_bf16" in cpu_flags()


def bf16_or_none() -> str | None:
    """ "bf16" where it runs natively, else None (fp32): the precision auto would pick."""
    return "bf16" if bf16_native() else None


def stats_ms(xs: list[float]) -> dict:
    """p50/p95/p99/max of a list of milliseconds (nearest rank)."""
    if not xs:
        return {"n": 0}
    return {
        "n": len(xs),
        "p50": round(statistics.median(xs), 3),
        "p95": round(percentile(xs, 95), 3),
        "p99": round(percentile(xs, 99), 3),
        "max": round(max(xs), 3),
    }


def write(doc: dict, name: str, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    path.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {path}")
    return path


def demo_artifact(tmp: Path) -> Path:
    """The bundled demo model, or a random evimae_tiny artifact with the same settings."""
    if (DEMO_MODEL / "model.json").exists():
        return DEMO_MODEL
    from evimae_stream.artifact import ModelMeta, save_artifact
    from evimae_stream.model import create_model

    torch.manual_seed(0)
    classes = ["idle", "walking", "jogging", "waving", "stirring"]
    model = create_model("evimae_tiny", len(classes))
    meta = ModelMeta(
        variant="evimae_tiny",
        model_config=model.cfg.to_dict(),
        classes=classes,
        imu_rate_hz=50.0,
        window_s=2.0,
        norm_mean=-51.17,
        norm_std=26.19,
        num_frames=model.cfg.num_frames,
        img_size=model.cfg.img_size,
        video_span_s=2.0,
    )
    return save_artifact(model, meta, tmp / "tiny_model")
