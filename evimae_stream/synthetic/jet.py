"""Second-order jets: values carried together with their first and second time derivatives.

The body model writes limb trajectories as ordinary formulas of time (sums of modulated
sinusoids, blended by smooth weights). Evaluating those formulas on :class:`Jet` objects gives
position, velocity and acceleration exactly (forward-mode differentiation), so the simulated IMU
acceleration is the true second derivative of the simulated motion, not a numerical estimate.
"""

from __future__ import annotations

import numpy as np

Number = float | np.ndarray


class Jet:
    """``(v, d, dd)``: a quantity of time with its first and second derivative (arrays/floats)."""

    __slots__ = ("d", "dd", "v")

    def __init__(self, v: Number, d: Number = 0.0, dd: Number = 0.0) -> None:
        self.v = v
        self.d = d
        self.dd = dd

    def __add__(self, o: Jet | Number) -> Jet:
        if isinstance(o, Jet):
            return Jet(self.v + o.v, self.d + o.d, self.dd + o.dd)
        return Jet(self.v + o, self.d, self.dd)

    __radd__ = __add__

    def __neg__(self) -> Jet:
        return Jet(-self.v, -self.d, -self.dd)

    def __sub__(self, o: Jet | Number) -> Jet:
        return self + (-o)

    def __rsub__(self, o: Number) -> Jet:
        return (-self) + o

    def __mul__(self, o: Jet | Number) -> Jet:
        if isinstance(o, Jet):
            return Jet(
                self.v * o.v,
                self.d * o.v + self.v * o.d,
                self.dd * o.v + 2.0 * self.d * o.d + self.v * o.dd,
            )
        return Jet(self.v * o, self.d * o, self.dd * o)

    __rmul__ = __mul__

    def __truediv__(self, o: Number) -> Jet:
        return self * (1.0 / o)


def as_jet(x: Jet | Number) -> Jet:
    """``x`` itself if it is a jet, else a constant jet."""
    return x if isinstance(x, Jet) else Jet(x)


def sin(x: Jet) -> Jet:
    """sin of a jet (chain rule to second order)."""
    s, c = np.sin(x.v), np.cos(x.v)
    return Jet(s, c * x.d, c * x.dd - s * x.d * x.d)


def cos(x: Jet) -> Jet:
    """cos of a jet (chain rule to second order)."""
    s, c = np.sin(x.v), np.cos(x.v)
    return Jet(c, -s * x.d, -s * x.dd - c * x.d * x.d)


def full(x: Jet | Number, n: int) -> Jet:
    """The jet with every part broadcast to an (n,) float64 array."""
    j = as_jet(x)
    return Jet(
        np.broadcast_to(np.asarray(j.v, np.float64), (n,)).copy(),
        np.broadcast_to(np.asarray(j.d, np.float64), (n,)).copy(),
        np.broadcast_to(np.asarray(j.dd, np.float64), (n,)).copy(),
    )
