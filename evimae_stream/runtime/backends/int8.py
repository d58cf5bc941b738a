"""Int8 on the CPU: the transformer blocks' Linear layers run as int8 GEMMs.

Weights are quantised once, symmetric int8 per output channel; activations are quantised
dynamically, per call, from the range of each input (no calibration data: what a window brings
is what sets its scale). The kernels are fbgemm's x86 int8 GEMMs (``torch.ao``'s dynamic
quantised Linear, the ``x86`` engine), which need only AVX2: ``vpmaddubsw`` where the CPU has no
VNNI. Everything else keeps float32: the patch embeddings, LayerNorm, GELU, the attention's
``q·kᵀ`` and ``·v`` and its softmax, the graph encoder and the head: the attention's
probabilities and the head's logits are where int8 would cost the most accuracy, and the rest is
little of the time (the attention, 20–27% of the ``evimae_small`` forward here, is not).

Why: on CPUs without native bf16 (most users', e.g. an AMD EPYC Zen 2 with AVX2 only) bf16 is
emulated and slower than fp32, and fp32 ``evimae_small`` is far from real time. The int8 GEMMs
are faster there: 1.5–1.75× fp32 on a 2-core Zen 2 without VNNI (``bench/gemm_peak.py``, one
process, loaded machine), 3.5–4× where the CPU has AVX512-VNNI (issue 24's figures); the whole
``evimae_small`` forward gains less (1.3× on that Zen 2: attention and the elementwise work
stay fp32). On ``evimae_tiny`` the per-call quantisation costs more than its small GEMMs gain.
Like every backend it is checked against eager fp32 on the first real window (top-1 and the
logit tolerance of ``int8``) and falls back to eager fp32 with the reason.

``VideoAttention`` computes its qkv with the module's weight and a bias built from ``q_bias``
and ``v_bias`` on every call; in the quantised copy it becomes the plain :class:`Attention` with
that bias stored once (the same product), so its ``qkv`` is quantised like every other Linear.
"""

from __future__ import annotations

import copy
import logging
import warnings

import torch
from torch import nn

from evimae_stream.model.layers import Attention, Block, VideoAttention, VideoBlock
from evimae_stream.runtime.backends.base import (
    Backend,
    BackendUnavailable,
    ModelInputs,
    register_backend,
)

log = logging.getLogger(__name__)

#: the quantised-kernel engines, best first (``x86`` picks fbgemm or oneDNN per shape)
ENGINES = ("x86", "fbgemm")


def quantized_engine() -> str:
    """The first of :data:`ENGINES` this torch build supports; BackendUnavailable if none."""
    supported = torch.backends.quantized.supported_engines
    for engine in ENGINES:
        if engine in supported:
            return engine
    raise BackendUnavailable(
        f"this torch build has no x86 int8 kernels (quantized engines: {', '.join(supported)})"
    )


def _plain_attention(attn: VideoAttention) -> Attention:
    """The same attention with its qkv bias ``cat(q_bias, 0, v_bias)`` stored in the Linear."""
    dim = attn.proj.in_features
    plain = Attention(dim, attn.num_heads)
    with torch.no_grad():
        plain.qkv.weight.copy_(attn.qkv.weight)
        plain.qkv.bias.copy_(torch.cat((attn.q_bias, torch.zeros_like(attn.v_bias), attn.v_bias)))
        plain.proj.load_state_dict(attn.proj.state_dict())
    return plain


def quantize_linears(module: nn.Module) -> nn.Module:
    """``module`` with every ``nn.Linear`` in it replaced, in place, by fbgemm's dynamic int8
    Linear: int8 weights per output channel, activations quantised per call."""
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():
        # torch.ao's eager quantisation is marked deprecated in favour of torchao; it is still
        # the fastest int8 path on an AVX2 CPU (bench/forward.py), and it falls back if removed
        warnings.filterwarnings("ignore", message=".*deprecated.*")
        return quantize_dynamic(
            module, {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True
        )


def block_names(model: nn.Module) -> list[str]:
    """The qualified names of ``model``'s transformer blocks (what int8 quantises)."""
    return [name for name, m in model.named_modules() if isinstance(m, (Block, VideoBlock))]


def plain_attention_twin(model: nn.Module) -> nn.Module:
    """A float32 copy of ``model`` whose video blocks' attention keeps its qkv bias in the
    Linear (:func:`_plain_attention`): the same products, every block GEMM an ``nn.Linear``."""
    twin = copy.deepcopy(model).eval()
    for block in [m for m in twin.modules() if isinstance(m, VideoBlock)]:
        if isinstance(block.attn, VideoAttention):
            block.attn = _plain_attention(block.attn)
    return twin


def quantize_blocks(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose transformer blocks' Linear layers are int8 (weights per output
    channel, activations dynamic); the rest of the model is the float32 original."""
    twin = plain_attention_twin(model)
    for block in [m for m in twin.modules() if isinstance(m, (Block, VideoBlock))]:
        quantize_linears(block)
    return twin


@register_backend
class Int8Backend(Backend):
    """The model with int8 transformer GEMMs (see the module doc), on the CPU only."""

    name = "int8"
    precisions = ("int8",)
    auto_rank = 1

    @classmethod
    def offered_by_auto(cls, device: torch.device) -> bool:
        """On a CPU (int8 is only tried when ``--precision int8`` asks for it)."""
        return device.type == "cpu"

    def __init__(self, model, precision: str = "int8", device: torch.device | None = None) -> None:
        device = device or torch.device("cpu")
        if device.type != "cpu":
            raise BackendUnavailable(f"int8 runs on the CPU, not {device.type}")
        super().__init__(model.eval(), precision, device)
        self._quantized: nn.Module | None = None

    def prepare(self, example: ModelInputs, modes: tuple[str, ...]) -> None:
        """Quantise the weights once (the example is not needed: activations are dynamic)."""
        del example, modes
        if self._quantized is not None:
            return
        torch.backends.quantized.engine = quantized_engine()
        try:
            self._quantized = quantize_blocks(self.model)
        except (RuntimeError, ImportError, AttributeError) as exc:
            raise BackendUnavailable(f"int8 quantisation failed: {exc}") from None
        log.info("int8: transformer Linear layers quantised (%s engine)", self.engine)

    @property
    def engine(self) -> str:
        """The quantised-kernel engine in use."""
        return torch.backends.quantized.engine

    def _run(self, tensors: tuple[torch.Tensor, ...], mode: str) -> torch.Tensor:
        if self._quantized is None:
            raise BackendUnavailable("int8: prepare() was not called")
        inputs = ModelInputs.from_mode(mode, tensors)
        return self._quantized(inputs.imu, inputs.video, mode)
