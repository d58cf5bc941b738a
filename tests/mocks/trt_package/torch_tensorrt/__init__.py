"""The stand-in ``torch_tensorrt`` of tests/mocks/tensorrt.py as an importable package, for the
CLI in a subprocess: put ``tests/mocks/trt_package`` (and the repository root) on ``PYTHONPATH``
and ``import torch_tensorrt`` gives the stand-in module itself.

With ``EVIMAE_STANDIN_TRT_CALLS=FILE`` in the environment, the stand-in's call counters
(compile, save, load) and the precisions it compiled with are written to FILE as JSON at exit,
so a test can see which path the run took.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
from pathlib import Path

from tests.mocks import tensorrt as _standin


def _write_calls(path: str) -> None:
    precisions = [sorted(str(p).removeprefix("torch.") for p in s) for s in _standin.precisions]
    Path(path).write_text(json.dumps({**_standin.calls, "precisions": precisions}))


if os.environ.get("EVIMAE_STANDIN_TRT_CALLS"):
    atexit.register(_write_calls, os.environ["EVIMAE_STANDIN_TRT_CALLS"])

sys.modules[__name__] = _standin
