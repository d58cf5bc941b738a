"""The per-epoch record of a run: ``log.csv``, TensorBoard scalars and the printed line."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any


class EpochLog:
    """``log.csv`` (rewritten from the history each epoch, so a resumed run has no duplicate
    rows) and TensorBoard scalars when ``torch.utils.tensorboard`` imports."""

    def __init__(self, run_dir: Path, enabled: bool) -> None:
        self.path = run_dir / "log.csv"
        self.enabled = enabled
        self.tb = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(run_dir / "tensorboard"))
            except Exception:  # tensorboard is optional
                self.tb = None

    def write(self, history: list[dict[str, Any]]) -> None:
        if not self.enabled or not history:
            return
        keys = list(dict.fromkeys(k for row in history for k in row))
        with self.path.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=keys)
            w.writeheader()
            w.writerows(history)
        if self.tb is not None:
            row = history[-1]
            for k, v in row.items():
                if k != "epoch" and isinstance(v, (int, float)) and math.isfinite(v):
                    self.tb.add_scalar(k, v, row["epoch"])
            self.tb.flush()

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def row_line(row: dict[str, Any]) -> str:
    """One epoch's row as ``key=value`` pairs."""
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items())
