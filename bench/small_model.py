"""An ``evimae_small`` artifact for the speed and agreement runs, when no trained one is given.

The published architecture (DESIGN §6, ``evimae_small``: 103 M parameters) with seeded random
encoders — no published weights are reachable from here — and a classification head fitted
(logistic regression on its own fp32 pre-head features of a labelled synthetic session's
windows), so that its logits separate the classes and top-1 agreement between precisions
measures something; the demo model's input contract otherwise (classes, IMU rate, window,
normalisation), at ``evimae_small``'s 16 frames of 224². Speed does not depend on the weights.

    python bench/small_model.py OUT_DIR [--seed 101] [--minutes 1.0] [--stride 2.0]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

import numpy as np
import torch
from common import DEMO_MODEL


class _Features:
    """A sink pairing each prediction with the pre-head features of the forward before it."""

    def __init__(self, model, labels, window_s: float) -> None:
        self._last: torch.Tensor | None = None
        self.rows: list[tuple[np.ndarray, str]] = []
        self._labels, self._window_s = labels, window_s
        model.mlp_head.register_forward_pre_hook(self._capture)

    def _capture(self, _module, inputs) -> None:
        self._last = inputs[0].detach()[0].clone()

    def emit(self, pred) -> None:
        from evimae_stream.truth import window_truth

        if pred.label is None or self._last is None or pred.t_ref_s is None:
            return
        truth = window_truth(self._labels, pred.t_ref_s, self._window_s)
        if truth is not None:
            self.rows.append((self._last.numpy(), truth))
        self._last = None


def fit_head(model, features: np.ndarray, truths: list[str], classes: list[str]) -> None:
    """Set ``model.mlp_head`` (LayerNorm → Linear) to a logistic regression on ``features``
    (the LayerNorm's output, its affine left at identity)."""
    from sklearn.linear_model import LogisticRegression

    norm, linear = model.mlp_head[0], model.mlp_head[1]
    with torch.no_grad():
        x = norm(torch.from_numpy(features)).numpy()
    y = np.array([classes.index(t) for t in truths])
    clf = LogisticRegression(C=1.0, max_iter=2000).fit(x, y)
    weight = np.zeros((len(classes), x.shape[1]), dtype=np.float32)
    bias = np.full(len(classes), -10.0, dtype=np.float32)  # classes the session never showed
    if len(clf.classes_) == 2:  # sklearn's binary form: one row for the second class
        weight[clf.classes_[1]], bias[clf.classes_[1]] = clf.coef_[0], clf.intercept_[0]
        bias[clf.classes_[0]] = 0.0
    else:
        weight[clf.classes_], bias[clf.classes_] = clf.coef_, clf.intercept_
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(weight))
        linear.bias.copy_(torch.from_numpy(bias))


def small_artifact(out: Path, seed: int = 101, minutes: float = 1.0, stride_s: float = 2.0):
    """Write the artifact to ``out`` (see the module doc); returns ``out``."""
    from evimae_stream.artifact import read_meta, save_artifact
    from evimae_stream.model import create_model
    from evimae_stream.runtime.config import RuntimeConfig
    from evimae_stream.runtime.inputs import ModelSpec
    from evimae_stream.runtime.run import Composer, Hooks, LoadedModel
    from evimae_stream.sessions import open_session
    from evimae_stream.synthetic.session import generate_session

    demo, _ = read_meta(DEMO_MODEL)
    torch.manual_seed(0)
    model = create_model("evimae_small", len(demo.classes)).eval()
    cfg = model.cfg
    note = "random encoders, head fitted by bench/small_model.py"
    meta = dataclasses.replace(
        demo, variant="evimae_small", model_config=cfg.to_dict(), num_frames=cfg.num_frames,
        img_size=cfg.img_size, training={"note": note}, metrics={},
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        generate_session(Path(tmp) / "fit", actions=6, minutes=minutes, seed=seed)
        session = open_session(Path(tmp) / "fit")
        sink = _Features(model, session.labels, meta.window_s)
        config = RuntimeConfig(backend="eager", precision="fp32", stride_s=stride_s)
        loaded = LoadedModel(model, ModelSpec.from_meta(meta))
        Composer(loaded, config, Hooks(sinks=[sink])).replay(session, None)
        session.close()
    feats = np.stack([f for f, _ in sink.rows])
    fit_head(model, feats, [t for _, t in sink.rows], list(meta.classes))
    print(f"head fitted on {len(sink.rows)} windows of synthetic seed {seed}")
    return save_artifact(model, meta, out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=101)
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--stride", type=float, default=2.0)
    args = parser.parse_args()
    small_artifact(args.out, args.seed, args.minutes, args.stride)


if __name__ == "__main__":
    main()
