"""IMU preprocessing and the settings of all preprocessing, exactly as the published EVI-MAE data
loader (DESIGN §6); the video steps are in :mod:`evimae_stream.preprocess_video`.

IMU: each of the 12 channels (4 IMUs × xyz acceleration, order of
:data:`evimae_stream.types.PLACEMENTS`) of a window becomes a (time 320 × freq 128) log-power
spectrogram: remove the channel mean, band-limited sinc resampling with torchaudio ``Resample``
semantics from 100 to ``int(100·320/L)``, power spectrogram (n_fft 256, Hann window 24, hop 1,
centred, reflect padding), ``10·log10(max(p, 1e-10))``, bins 0–127, time-major, zero-pad or cut
to 320 rows; the model input is then ``(spec − mean) / std`` with one scalar pair per dataset.

The published loader ran these steps with torchaudio in float32. torchaudio is not a dependency
(DESIGN §9), so they are reimplemented here in plain torch, vectorised over batch and channels,
with every sum (resampling, DFT) in float64 so the result is exact (it matches an independent
float64 reference to 1e-4 dB); the log of the power and the output are float32.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from evimae_stream.datasets import PROFILES
from evimae_stream.errors import ArtifactError, InputError
from evimae_stream.types import ACC_AXES, PLACEMENTS

log = logging.getLogger(__name__)

#: Channels of one IMU window: 4 placements × xyz acceleration.
IMU_CHANNELS = len(PLACEMENTS) * len(ACC_AXES)

#: torchaudio ``Resample`` defaults used by the published loader.
RESAMPLE_LOWPASS_WIDTH = 6
RESAMPLE_ROLLOFF = 0.99
#: Floor of the power spectrogram before the log (published: 1e-10, i.e. −100 dB).
POWER_FLOOR = 1e-10

#: What a model reads of an IMU window (:mod:`evimae_stream.imu_input`): the published
#: normalised log-power spectrograms, or the time-domain window itself (ours).
IMU_INPUTS = ("spectrogram", "time")


@dataclass(frozen=True)
class NormStats:
    """One dataset's spectrogram normalisation: model input = (spec − mean) / std."""

    mean: float
    std: float

    def __post_init__(self) -> None:
        if not math.isfinite(self.mean) or not math.isfinite(self.std) or self.std <= 0:
            raise ValueError(f"norm stats need a finite mean and std > 0, got {self}")


#: Published fine-tuning normalisation per dataset (WEAR −51.17/26.19, CMU-MMAC −70.84/23.44),
#: taken from the one table in :mod:`evimae_stream.datasets`.
NORM_STATS: dict[str, NormStats] = {
    name: NormStats(p.norm_mean, p.norm_std) for name, p in PROFILES.items()
}


@dataclass(frozen=True)
class PreprocessConfig:
    """Everything the preprocessing needs, carried in the model artifact's JSON (DESIGN §7).

    Defaults are the published EVI-MAE fine-tune settings on WEAR.
    """

    imu_src_rate: float = 100.0
    spec_time: int = 320
    spec_freq: int = 128
    n_fft: int = 256
    win_length: int = 24
    norm_mean: float = NORM_STATS["wear"].mean
    norm_std: float = NORM_STATS["wear"].std
    num_frames: int = 16
    img_size: int = 224
    #: the IMU input representation (one of :data:`IMU_INPUTS`; published: spectrogram)
    imu_input: str = "spectrogram"

    def __post_init__(self) -> None:
        if self.imu_input not in IMU_INPUTS:
            raise ValueError(f"imu_input must be one of {IMU_INPUTS}, got {self.imu_input!r}")
        for name in ("spec_time", "spec_freq", "n_fft", "win_length", "num_frames", "img_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("imu_src_rate", "norm_mean", "norm_std"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"{name} must be finite, got {value!r}")
        if self.imu_src_rate <= 0 or self.imu_src_rate != int(self.imu_src_rate):
            raise ValueError(
                f"imu_src_rate must be a positive whole number (torchaudio Resample takes "
                f"integer rates), got {self.imu_src_rate!r}"
            )
        if self.norm_std <= 0:
            raise ValueError(f"norm_std must be positive, got {self.norm_std!r}")
        if self.win_length < 2:
            raise ValueError(f"win_length must be at least 2 taps, got {self.win_length}")
        if self.win_length > self.n_fft:
            raise ValueError(f"win_length {self.win_length} must not exceed n_fft {self.n_fft}")
        if self.spec_freq > self.n_fft // 2 + 1:
            raise ValueError(
                f"spec_freq {self.spec_freq} exceeds the {self.n_fft // 2 + 1} bins of n_fft "
                f"{self.n_fft}"
            )

    @property
    def norm(self) -> NormStats:
        """The normalisation pair as :class:`NormStats`."""
        return NormStats(self.norm_mean, self.norm_std)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict of every field."""
        return asdict(self)

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], source: str = "preprocess config"
    ) -> PreprocessConfig:
        """Rebuild from :meth:`to_dict` output; missing keys take defaults.

        Raises :class:`ArtifactError` naming ``source`` (e.g. the model.json path) and the field
        for unknown keys or invalid values.
        """
        if not isinstance(data, Mapping):
            raise ArtifactError(
                f"{source}: preprocess config must be a JSON object, got {type(data).__name__}; "
                "re-export the model"
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ArtifactError(
                f"{source}: unknown preprocess field(s) {', '.join(unknown)}; expected only "
                f"{', '.join(sorted(known))} (was it written by a newer version?)"
            )
        try:
            return cls(**dict(data))
        except ValueError as exc:
            raise ArtifactError(f"{source}: invalid preprocess config: {exc}") from None


# ----------------------------------------------------------------------------- IMU


def _as_imu_tensor(x: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, bool]:
    """Validate an IMU window and return it as float32 ``(B, L, 12)`` plus "was batched"."""
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "iuf":
            raise InputError(
                f"IMU window: dtype {x.dtype} is not a real number type; pass acceleration in g "
                f"as float, shape (L, {IMU_CHANNELS}) or (B, L, {IMU_CHANNELS})"
            )
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    elif isinstance(x, torch.Tensor):
        if x.is_complex() or x.dtype == torch.bool:
            raise InputError(
                f"IMU window: dtype {x.dtype} is not a real number type; pass acceleration in g "
                f"as float, shape (L, {IMU_CHANNELS}) or (B, L, {IMU_CHANNELS})"
            )
        t = x.detach().to(torch.float32)
    else:
        raise InputError(
            f"IMU window: expected a numpy array or torch tensor of shape (L, {IMU_CHANNELS}) or "
            f"(B, L, {IMU_CHANNELS}), got {type(x).__name__}"
        )
    if t.dim() not in (2, 3) or t.shape[-1] != IMU_CHANNELS or t.shape[-2] < 1:
        raise InputError(
            f"IMU window: expected shape (L, {IMU_CHANNELS}) or (B, L, {IMU_CHANNELS}) with L >= 1 "
            f"(4 IMUs × xyz in order {', '.join(PLACEMENTS)}), got {tuple(t.shape)}"
        )
    if not bool(torch.isfinite(t).all()):
        raise InputError(
            "IMU window: contains NaN or infinite values; fill or drop the gap before preprocessing"
        )
    batched = t.dim() == 3
    return (t if batched else t.unsqueeze(0)), batched


@functools.lru_cache(maxsize=64)
def _sinc_kernel(
    orig: int, new: int, lowpass_filter_width: int, rolloff: float
) -> tuple[torch.Tensor, int]:
    """torchaudio's ``sinc_interp_hann`` kernels for gcd-reduced rates, float64, CPU.

    Returns kernels of shape (new, 1, 2·width + orig) and ``width``.
    """
    base_freq = min(orig, new) * rolloff
    width = math.ceil(lowpass_filter_width * orig / base_freq)
    idx = torch.arange(-width, width + orig, dtype=torch.float64) / orig  # (2w+orig,)
    t = torch.arange(0, -new, -1, dtype=torch.float64)[:, None] / new + idx  # (new, 2w+orig)
    t = t * base_freq
    t = t.clamp(-lowpass_filter_width, lowpass_filter_width)
    window = torch.cos(t * math.pi / lowpass_filter_width / 2) ** 2
    t = t * math.pi
    scale = base_freq / orig
    kernel = torch.where(t == 0, torch.ones_like(t), torch.sin(t) / t) * window * scale
    return kernel.unsqueeze(1), width  # (new, 1, 2w+orig)


def resample_sinc(x: torch.Tensor, orig_freq: int, new_freq: int) -> torch.Tensor:
    """Band-limited sinc resampling of the last axis, torchaudio ``Resample`` semantics.

    ``x`` is ``(..., L)``; returns ``(..., ceil(new·L/orig))`` in ``x``'s dtype (after gcd
    reduction of the rates; equal rates return ``x`` unchanged). Hann window, lowpass filter
    width 6, rolloff 0.99, zero padding at both ends — as torchaudio, so published models see the
    same input.
    """
    if orig_freq <= 0 or new_freq <= 0:
        raise InputError(f"resample: rates must be positive, got {orig_freq} -> {new_freq}")
    gcd = math.gcd(int(orig_freq), int(new_freq))
    orig, new = int(orig_freq) // gcd, int(new_freq) // gcd
    if orig == new:
        return x
    kernel, width = _sinc_kernel(orig, new, RESAMPLE_LOWPASS_WIDTH, RESAMPLE_ROLLOFF)
    kernel = kernel.to(device=x.device, dtype=x.dtype)
    lead, length = x.shape[:-1], x.shape[-1]
    flat = x.reshape(-1, 1, length)  # (N, 1, L)
    flat = F.pad(flat, (width, width + orig))  # (N, 1, L + 2w + orig)
    out = F.conv1d(flat, kernel, stride=orig)  # (N, new, frames)
    out = out.transpose(1, 2).reshape(flat.shape[0], -1)  # (N, frames·new) interleaved phases
    target_length = -(-new * length // orig)  # ceil(new·L/orig) in integers
    return out[:, :target_length].reshape(*lead, target_length)


@functools.lru_cache(maxsize=8)
def _hann(win_length: int) -> torch.Tensor:
    return torch.hann_window(win_length, periodic=True, dtype=torch.float64)


@functools.lru_cache(maxsize=8)
def _folded_basis(n_fft: int, win_length: int, bins: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine and sine bases of the window folded about its centre, for |X|² only.

    A centred STFT frame of ``n_fft`` samples with a ``win_length`` window padded to the middle of
    the frame is zero outside those taps, so its first ``bins`` DFT coefficients are a
    ``win_length``-tap sum. The periodic Hann window (``W >= 2``) is zero at tap 0 and symmetric
    about tap ``W/2`` (taps ``m`` and ``W−m``). Taking the phase of the centre out of the DFT,
    which leaves |X| unchanged, the coefficient of a frame is ``C − i·S`` with
    ``C = Σ w·(x_{W−m} + x_m)·cos θ (+ w_c·x_c)``, ``S = Σ w·(x_{W−m} − x_m)·sin θ`` and
    ``θ = 2πk(W/2 − m)/n_fft``: half the multiplies of the plain basis.
    Pairs ``m = P…1`` (``P = (W−1)//2``, so tap ``W−m`` ascends); ``W`` even adds the centre
    tap as the cosine basis's first row. The window's two halves agree to one float64 rounding;
    each pair uses their mean. Returns float64 ``(P [+1], K)`` and ``(P, K)``.
    """
    w = _hann(win_length)
    pairs = (win_length - 1) // 2
    m = torch.arange(pairs, 0, -1)  # P … 1
    weight = (w[m] + w[win_length - m]) / 2  # (P,)
    r = win_length / 2 - m.to(torch.float64)  # distance of tap W−m from the centre (P,)
    theta = 2.0 * math.pi * torch.outer(r, torch.arange(bins, dtype=torch.float64)) / n_fft
    cos = weight[:, None] * torch.cos(theta)  # (P, K)
    sin = weight[:, None] * torch.sin(theta)  # (P, K)
    if win_length % 2 == 0:
        centre = w[win_length // 2].expand(1, bins)  # cos 0 = 1
        cos = torch.cat((centre, cos))
    return cos.contiguous(), sin.contiguous()


def _log_power(
    sig: torch.Tensor, n_fft: int, win_length: int, rows: int, bins: int
) -> torch.Tensor:
    """torchaudio ``Spectrogram(power=2, center=True, pad_mode="reflect")`` then 10·log10.

    ``sig`` (N, T) → (N, min(T+1, rows), bins) dB, time-major (the first ``bins`` frequencies).
    Computed as a ``win_length``-tap DFT matrix multiply over the frames, folded about the
    window's centre (:func:`_folded_basis`): the same sums as the FFT of the zero-padded frame
    (the frame's ``n_fft − win_length`` zero taps dropped), in float64, faster than
    ``torch.stft``.
    Returns float32 dB.
    Reflect padding by ``n_fft // 2`` only matters within ``win_length // 2`` of each end, so the
    signal is reflect-padded just that far (same samples).
    """
    frames_n = min(sig.shape[-1] + 1, rows)
    offset = (n_fft - win_length) // 2
    lead = n_fft // 2 - offset  # samples before frame t's first tap: signal index t − lead
    tail = max(0, offset + win_length - n_fft // 2)  # after the last frame's last tap
    padded = F.pad(sig.unsqueeze(1), (lead, tail), mode="reflect").squeeze(1)  # (N, T+lead+tail)
    frames = padded.unfold(-1, win_length, 1)[:, :frames_n]  # (N, frames, W)
    cos, sin = _folded_basis(n_fft, win_length, bins)
    cos, sin = cos.to(sig.device), sin.to(sig.device)
    pairs = sin.shape[0]
    low = frames[..., 1 : pairs + 1].flip(-1)  # x_m, m = P … 1  (N, frames, P)
    high = frames[..., win_length - pairs :]  # x_{W−m}  (N, frames, P)
    even = high + low
    if win_length % 2 == 0:
        centre = win_length // 2
        even = torch.cat((frames[..., centre : centre + 1], even), dim=-1)  # (N, frames, P+1)
    odd = high - low  # (N, frames, P)
    # The tap sums cancel, so they and |X|² = re² + im² run in float64; the power is rounded to
    # float32 for the log. One channel at a time: its float64 intermediates (frames × bins,
    # 330 kB for 320 × 128) stay in the core's cache, where one (N·frames × bins) product for
    # all channels is several MB of fresh pages per window — measured 1.2 ms per 12-channel
    # window this way against 1.6–3.6 ms for the all-channel product, depending on the
    # allocator's state.
    power = torch.empty(sig.shape[0], frames_n, bins, dtype=torch.float32, device=sig.device)
    for i in range(sig.shape[0]):
        re = even[i] @ cos  # (frames, K) float64
        im = odd[i] @ sin  # (frames, K) float64
        power[i].copy_(re.mul_(re).addcmul_(im, im))
    return power.clamp_min_(POWER_FLOOR).log10_().mul_(10.0)


def _log_spectrogram64(
    x: np.ndarray | torch.Tensor,
    src_rate: float,
    spec_time: int,
    spec_freq: int,
    n_fft: int,
    win_length: int,
) -> tuple[torch.Tensor, bool]:
    """The log-power spectrogram ``(B, 12, spec_time, spec_freq)`` (float64 sums, float32 dB)
    and "was batched"."""
    t, batched = _as_imu_tensor(x)  # (B, L, 12) float32, as the published loader reads it
    if src_rate <= 0 or src_rate != int(src_rate):
        raise InputError(f"IMU window: src_rate must be a positive whole number, got {src_rate}")
    orig = int(src_rate)
    length = t.shape[1]
    new = int(orig * spec_time / length)
    if new < 1:
        raise InputError(
            f"IMU window: {length} samples is too long for a {spec_time}-row spectrogram at "
            f"{orig} Hz; pass at most {orig * spec_time} samples"
        )
    if not 2 <= win_length <= n_fft:
        raise InputError(f"IMU window: win_length must be in [2, n_fft {n_fft}], got {win_length}")
    sig = t.to(torch.float64).transpose(1, 2)  # (B, 12, L)
    sig = sig - sig.mean(dim=-1, keepdim=True)
    sig = resample_sinc(sig, orig, new)  # (B, 12, T)
    n_samples = sig.shape[-1]
    if n_samples <= n_fft // 2:
        raise InputError(
            f"IMU window: {length} samples resample to {n_samples}, too short for the centred "
            f"n_fft {n_fft} spectrogram; pass a longer window"
        )
    batch = sig.shape[0]
    flat = sig.reshape(-1, n_samples)  # (B·12, T)
    db = _log_power(flat, n_fft, win_length, spec_time, spec_freq)  # (B·12, ≤ rows, freq)
    frames = db.shape[1]
    if frames < spec_time:
        db = F.pad(db, (0, 0, 0, spec_time - frames))
    return db.reshape(batch, IMU_CHANNELS, spec_time, spec_freq), batched


def imu_to_spectrogram(
    x: np.ndarray | torch.Tensor,
    src_rate: float = 100.0,
    *,
    spec_time: int = 320,
    spec_freq: int = 128,
    n_fft: int = 256,
    win_length: int = 24,
) -> torch.Tensor:
    """Log-power spectrograms of one IMU window or a batch, before dataset normalisation.

    ``x``: ``(L, 12)`` or ``(B, L, 12)`` acceleration in g (numpy or torch; cast to float32
    first, as the published loader reads it), channels 4 IMUs × xyz. Returns float32
    ``(12, spec_time, spec_freq)`` or ``(B, 12, spec_time, spec_freq)`` in dB, on ``x``'s
    device. ``src_rate`` is the nominal rate the published loader assumed (100); the signal is
    resampled to ``int(src_rate·spec_time/L)``. Sums computed in float64 for exactness
    (the published code ran the same steps in float32). Raises :class:`InputError` for a bad
    shape, dtype, non-finite values or an unusable length.
    """
    db, batched = _log_spectrogram64(x, src_rate, spec_time, spec_freq, n_fft, win_length)
    out = db.to(torch.float32)
    return out if batched else out[0]


def imu_window_to_model_input(
    x: np.ndarray | torch.Tensor,
    norm_mean: float,
    norm_std: float,
    src_rate: float = 100.0,
    *,
    spec_time: int = 320,
    spec_freq: int = 128,
    n_fft: int = 256,
    win_length: int = 24,
) -> torch.Tensor:
    """The IMU branch input: ``(imu_to_spectrogram(x) − norm_mean) / norm_std``, float32."""
    NormStats(norm_mean, norm_std)
    db, batched = _log_spectrogram64(x, src_rate, spec_time, spec_freq, n_fft, win_length)
    out = db.sub_(norm_mean).div_(norm_std)  # db is float32 and ours: normalised in place
    return out if batched else out[0]


def preprocess_imu(x: np.ndarray | torch.Tensor, config: PreprocessConfig) -> torch.Tensor:
    """:func:`imu_window_to_model_input` with every setting taken from ``config``."""
    return imu_window_to_model_input(
        x,
        config.norm_mean,
        config.norm_std,
        config.imu_src_rate,
        spec_time=config.spec_time,
        spec_freq=config.spec_freq,
        n_fft=config.n_fft,
        win_length=config.win_length,
    )


# ----------------------------------------------------------------------------- video
