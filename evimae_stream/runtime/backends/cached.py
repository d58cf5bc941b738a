"""What the compiling backends share: one compiled file per forward mode in an on-disk cache.

:meth:`CachedBackend.prepare` loads each mode's file when it is there (a file that does not load
is rebuilt, with a warning) and builds it otherwise, from ``torch.export`` of the mode on the
example window. Files are keyed by the model — its id and a digest of its config, so two models
under one id never share a file — the toolchain and device a subclass names
(:meth:`_environment`), the precision and the mode. A subclass says how to load a file
(:meth:`_load`) and how to build and save it (:meth:`_build`, via :meth:`_export` and
:func:`tmp_path` for an atomic write). Forward refuses inputs of another shape than the ones the
file was built for: a compiled file may read them unchecked.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import torch
from torch import nn

from evimae_stream.runtime.backends.base import (
    Backend,
    BackendUnavailable,
    ModelInputs,
    cache_key,
)

log = logging.getLogger(__name__)


def tmp_path(path: Path) -> Path:
    """Where to write ``path`` before moving it into place (unique to this process)."""
    return path.with_name(f"{path.stem}.{os.getpid()}.tmp{path.suffix}")


class CachedBackend(Backend):
    """A backend with one compiled file per mode, built once and then loaded from the cache.

    Counters for tests and the summary: ``compiled`` (files built this run) and ``loaded``
    (files read from the cache). ``what`` names the file in log lines ("engine", "package").
    """

    what = "engine"
    suffix = ".pt2"

    @classmethod
    def create(cls, model, precision, device, model_id, cache_dir) -> Backend:
        """A backend of this class caching under ``cache_dir`` by ``model_id``."""
        return cls(model, precision, device, model_id=model_id, cache_dir=cache_dir)

    def __init__(
        self, model, precision: str, device: torch.device, model_id: str, cache_dir: Path
    ) -> None:
        super().__init__(model.to(device).eval(), precision, device)
        self.model_id = model_id
        self.cache_dir = Path(cache_dir)
        self._runners: dict[str, object] = {}
        self._shapes: dict[str, list[tuple[int, ...]]] = {}
        self.compiled = 0
        self.loaded = 0

    def cache_path(self, mode: str) -> Path:
        """The cached file of ``mode`` for this model, toolchain, device and precision.

        ``model_id`` names the weights (the CLI passes the artifact's hash); the architecture
        and input shapes enter the key as a digest of the model config, so two models under one
        id never share a file (it would read inputs of the wrong shape)."""
        cfg = getattr(self.model, "cfg", None)
        text = json.dumps(cfg.to_dict() if cfg is not None else repr(self.model), sort_keys=True)
        arch = hashlib.sha256(text.encode()).hexdigest()[:12]
        parts = (self.model_id, arch, *self._environment(), self.precision, mode)
        return self.cache_dir / f"{cache_key(*parts)}{self.suffix}"

    def _environment(self) -> tuple[str, ...]:
        """What else a compiled file depends on: toolchain version, device."""
        raise NotImplementedError

    def _load(self, path: Path):
        """The callable of a cached file (raises when the file is not a usable one)."""
        raise NotImplementedError

    def _build(self, mode: str, args: tuple[torch.Tensor, ...], path: Path):
        """Compile ``mode`` for the inputs ``args``, save it at ``path`` (a cache that cannot
        be written is a warning, not an error) and return its callable; BackendUnavailable
        when it cannot be compiled."""
        raise NotImplementedError

    def prepare(self, example: ModelInputs, modes: tuple[str, ...]) -> None:
        """Load or build the file of every mode in ``modes`` (the example gives the shapes)."""
        for mode in modes:
            path = self.cache_path(mode)
            self._shapes[mode] = [tuple(t.shape) for t in example.for_mode(mode)]
            if path.is_file():
                try:
                    self._runners[mode] = self._load(path)
                    self.loaded += 1
                    log.info("%s: loaded %s %s from %s", self.name, mode, self.what, path)
                    continue
                except Exception as exc:
                    log.warning(
                        "%s: cached %s %s unreadable (%s); rebuilding",
                        self.name,
                        self.what,
                        path,
                        exc,
                    )
            log.info(
                "%s: exporting and compiling mode %s (%s); cached after",
                self.name,
                mode,
                self.precision,
            )
            args = tuple(t.to(self.device).contiguous() for t in example.for_mode(mode))
            self._runners[mode] = self._build(mode, args, path)
            self.compiled += 1

    def _export(self, module: nn.Module, mode: str, args: tuple[torch.Tensor, ...]):
        """``torch.export`` of ``module`` on ``args``; BackendUnavailable when it fails."""
        try:
            with torch.no_grad():
                return torch.export.export(module.eval(), args)
        except Exception as exc:
            raise BackendUnavailable(f"torch.export of mode {mode} failed: {exc}") from None

    def _run(self, tensors: tuple[torch.Tensor, ...], mode: str) -> torch.Tensor:
        runner = self._runners.get(mode)
        if runner is None:
            raise BackendUnavailable(f"no {self.name} {self.what} for mode {mode}")
        shapes = [tuple(t.shape) for t in tensors]
        if shapes != self._shapes[mode]:
            raise ValueError(
                f"{self.name}: mode {mode} was built for inputs {self._shapes[mode]}, got {shapes}"
            )
        return runner(*tensors)
