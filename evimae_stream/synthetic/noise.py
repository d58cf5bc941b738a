"""Counter-based random numbers: the n-th draw of a stream depends only on (key, stream, n).

Sensor noise, arrival jitter and dropped samples must be the same whether a live driver asks for
samples chunk by chunk or a generator asks for a whole session at once; a sequential random
generator cannot promise that, a hash of the sample index can (SplitMix64 finaliser).
"""

from __future__ import annotations

import hashlib

import numpy as np

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def derive_key(*parts: object) -> int:
    """A 64-bit key from any printable parts (seed, placement, purpose), stable across runs."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _mix(x: np.ndarray) -> np.ndarray:
    x = x + _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def uniform(key: int, index: np.ndarray, stream: int = 0) -> np.ndarray:
    """Uniform floats in (0, 1), one per ``index`` (int64 array), for one key and stream."""
    idx = np.asarray(index, dtype=np.int64).astype(np.uint64)
    k = np.uint64(derive_key(key, stream))
    x = _mix(_mix(idx ^ k) + k)
    return ((x >> np.uint64(11)).astype(np.float64) + 0.5) / float(1 << 53)


def normal(key: int, index: np.ndarray, stream: int = 0) -> np.ndarray:
    """Standard normal floats, one per ``index`` (Box–Muller on two uniform streams)."""
    u1 = uniform(key, index, 2 * stream + 1000)
    u2 = uniform(key, index, 2 * stream + 1001)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
