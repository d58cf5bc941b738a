"""Run an AOTInductor package's model through its C interface, without the interpreter lock.

``torch._inductor.aoti_load_package`` runs the model holding the GIL for the whole forward: next
to it no other Python thread runs (measured: a busy Python loop got half its iterations while
that runner worked in a second thread, and all of them with this one). In a ``--speed max``
replay the reader thread that prepares the next window is such a thread.

A package's model library exports the AOTInductor C interface (``AOTInductorModelContainer*``
in ``torch/csrc/inductor/aoti_runtime/interface.h``); :mod:`ctypes` releases the GIL for the
duration of every foreign call, so calling ``AOTInductorModelContainerRun`` through it runs the
forward lock-free. Tensors cross as ``AtenTensorHandle`` pointers made and taken back with
``torch._C._aoti`` (inputs are stolen by the run, outputs are stolen back), as torch's own C++
runner does. Only for CPU packages whose weights are inside the library (the default below 2 GB);
anything else raises :class:`OSError` and the caller uses ``aoti_load_package``.
"""

from __future__ import annotations

import ctypes
import os
import zipfile
from pathlib import Path

import torch

from evimae_stream.runtime.backends.cached import tmp_path

_API = ctypes.pythonapi
_API.PyCapsule_GetPointer.restype = ctypes.c_void_p
_API.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
_API.PyCapsule_New.restype = ctypes.py_object
_API.PyCapsule_New.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]

_HANDLE = ctypes.c_void_p
_SIZE = ctypes.c_size_t


def extract_library(package: Path, dest: Path) -> Path:
    """The model library of ``package`` (a ``.pt2`` zip) copied to ``dest``, once.

    Raises :class:`OSError` unless the package holds exactly one library and no separate
    weight files (weights outside the library would need loading through torch's loader).
    """
    with zipfile.ZipFile(package) as zf:
        names = zf.namelist()
        libs = [n for n in names if "/aotinductor/" in n and n.endswith(".so")]
        weights = [n for n in names if "/aotinductor/" in n and "/constants/" in n]
        if len(libs) != 1 or weights:
            raise OSError(f"{package}: not a single-library CPU package ({len(libs)} libraries)")
        if dest.is_file() and dest.stat().st_mtime >= package.stat().st_mtime:
            return dest
        tmp = tmp_path(dest)
        tmp.write_bytes(zf.read(libs[0]))
    os.replace(tmp, dest)
    return dest


class LockFreeRunner:
    """One model container of a package's library; ``runner(*tensors)`` → the single output.

    Inputs must be contiguous CPU tensors of the shapes the package was built for (the backend
    makes them so); the package checks nothing at run time.
    """

    def __init__(self, library: Path) -> None:
        lib = ctypes.CDLL(str(library))
        for name in ("AOTInductorModelContainerCreateWithDevice", "AOTInductorModelContainerRun"):
            if not hasattr(lib, name):
                raise OSError(f"{library}: no {name} (not an AOTInductor model library)")
        lib.AOTInductorModelContainerCreateWithDevice.argtypes = [
            ctypes.POINTER(_HANDLE),
            _SIZE,
            ctypes.c_char_p,
            ctypes.c_char_p,
        ]
        lib.AOTInductorModelContainerRun.argtypes = [
            _HANDLE,
            ctypes.POINTER(_HANDLE),
            _SIZE,
            ctypes.POINTER(_HANDLE),
            _SIZE,
            _HANDLE,
            _HANDLE,
        ]
        lib.AOTInductorModelContainerGetNumOutputs.argtypes = [_HANDLE, ctypes.POINTER(_SIZE)]
        lib.AOTInductorModelContainerDelete.argtypes = [_HANDLE]
        for fn in (
            lib.AOTInductorModelContainerCreateWithDevice,
            lib.AOTInductorModelContainerRun,
            lib.AOTInductorModelContainerGetNumOutputs,
            lib.AOTInductorModelContainerDelete,
        ):
            fn.restype = ctypes.c_int32
        handle = _HANDLE()
        if lib.AOTInductorModelContainerCreateWithDevice(ctypes.byref(handle), 1, b"cpu", None):
            raise OSError(f"{library}: creating the model container failed")
        outputs = _SIZE()
        lib.AOTInductorModelContainerGetNumOutputs(handle, ctypes.byref(outputs))
        if outputs.value != 1:
            lib.AOTInductorModelContainerDelete(handle)
            raise OSError(f"{library}: {outputs.value} outputs, expected the logits only")
        self._lib = lib
        self._handle = handle

    def __call__(self, *tensors: torch.Tensor) -> torch.Tensor:
        capsules = torch._C._aoti.unsafe_alloc_void_ptrs_from_tensors(list(tensors))
        inputs = (_HANDLE * len(capsules))(*(_API.PyCapsule_GetPointer(c, None) for c in capsules))
        out = (_HANDLE * 1)()
        # ctypes drops the GIL for this call: the whole forward runs lock-free
        err = self._lib.AOTInductorModelContainerRun(
            self._handle, inputs, len(capsules), out, 1, None, None
        )
        if err:
            raise RuntimeError("AOTInductor model run failed (see the log above)")
        return torch._C._aoti.alloc_tensors_by_stealing_from_void_ptrs(
            [_API.PyCapsule_New(out[0], None, None)]
        )[0]

    def __del__(self) -> None:
        handle = getattr(self, "_handle", None)
        if handle is not None and handle.value:
            self._lib.AOTInductorModelContainerDelete(handle)
            self._handle = None
