"""A stand-in for ``torch_tensorrt`` (not installable without NVIDIA's index), registered by a
test as ``sys.modules["torch_tensorrt"]``.

It keeps the real package's interface at the narrow boundary the runtime uses
(``dynamo.compile(exported_program, inputs=..., enabled_precisions=...)`` → a callable module,
``save(module, path, output_format="exported_program", inputs=...)``, ``load(path)`` → an
``ExportedProgram``) and does the real work that exists without TensorRT: the "compiled" module is
the exported program's module (optionally perturbed, to test drift), and save/load write and read
real ``torch.export`` files. Counters let tests see what happened.
"""

from __future__ import annotations

import types

import torch

__version__ = "2.99.0-standin"

#: calls made, for assertions
calls = {"compile": 0, "save": 0, "load": 0}
#: added to every logit of a compiled module (0: exact)
perturb = 0.0
#: compiled with these precisions, per call
precisions: list[set] = []


def reset(drift: float = 0.0) -> None:
    """Zero the counters and set the drift of modules compiled from now on."""
    global perturb
    perturb = drift
    precisions.clear()
    for k in calls:
        calls[k] = 0


class _Offset(torch.nn.Module):
    def __init__(self, inner: torch.nn.Module, offset: float) -> None:
        super().__init__()
        self.inner = inner
        self.offset = offset

    def forward(self, *xs):
        out = self.inner(*xs)
        return out + self.offset * torch.arange(out.shape[-1], dtype=out.dtype)


def _compile(exported, inputs=None, enabled_precisions=None, **kwargs):
    if not isinstance(exported, torch.export.ExportedProgram):
        raise TypeError(f"dynamo.compile takes an ExportedProgram, got {type(exported).__name__}")
    if inputs is None:
        raise TypeError("dynamo.compile needs inputs for static shapes")
    calls["compile"] += 1
    precisions.append(set(enabled_precisions or {torch.float32}))
    module = exported.module()
    if perturb:
        return _Offset(module, perturb)
    module._standin_exported = exported  # save() writes it as is (the real one re-exports)
    return module


dynamo = types.SimpleNamespace(compile=_compile)


def save(module, file_path, *, output_format="exported_program", inputs=None, retrace=False):
    """Writes a real ``torch.export`` file (the real package re-exports the compiled module)."""
    if output_format != "exported_program":
        raise ValueError(f"stand-in supports output_format='exported_program', got {output_format}")
    calls["save"] += 1
    ep = getattr(module, "_standin_exported", None)
    if ep is None:
        ep = torch.export.export(module, tuple(inputs))
    torch.export.save(ep, file_path)


def load(file_path, **kwargs):
    calls["load"] += 1
    return torch.export.load(file_path)
