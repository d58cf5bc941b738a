"""The body graph encoder of EVI-MAE in plain PyTorch (no DGL), with the published key names.

The published graph is the complete graph on the IMUs (K4 for four IMUs) without self-loops,
encoded by GraphMAE's GIN with sum aggregation and a fixed ``eps`` of 0. A GIN layer computes
``apply_func((1 + eps)·x_i + Σ_{j≠i} x_j)``; on a complete graph the neighbour sum plus the node
itself is the sum over all nodes, so the aggregation is a dense ``x.sum(nodes)`` broadcast back
to every node — exact, batched, exportable, and no graph library is needed.

Node features are laid out ``(B, nodes, D)``; BatchNorm runs over the ``B·nodes`` node rows, as
it does over DGL's batched node tensor.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MLP(nn.Module):
    """GraphMAE's two-layer MLP: ``linears[0]`` → ``norms[0]`` (BN) → ``activations[0]`` (PReLU)
    → ``linears[1]``."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int) -> None:
        super().__init__()
        self.linears = nn.ModuleList([nn.Linear(in_dim, hidden), nn.Linear(hidden, out_dim)])
        self.norms = nn.ModuleList([nn.BatchNorm1d(hidden)])
        self.activations = nn.ModuleList([nn.PReLU()])
        self.output_dim = out_dim

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = self.activations[0](self.norms[0](self.linears[0](h)))  # (rows, hidden)
        return self.linears[1](h)  # (rows, out)


class ApplyNodeFunc(nn.Module):
    """GraphMAE's node update of an encoding layer: ``mlp`` → ``norm`` (BN) → ``act`` (PReLU)."""

    def __init__(self, mlp: MLP) -> None:
        super().__init__()
        self.mlp = mlp
        self.norm = nn.BatchNorm1d(mlp.output_dim)
        self.act = nn.PReLU()

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.mlp(h)))


class GINConv(nn.Module):
    """One GIN layer on the complete graph: ``apply_func((1 + eps)·x_i + Σ_{j≠i} x_j)``.

    ``eps`` is a buffer fixed at 0 (published ``learn_eps=False``); it is kept in the formula so a
    state dict's value is honoured rather than ignored.
    """

    def __init__(self, apply_func: nn.Module) -> None:
        super().__init__()
        self.apply_func = apply_func
        self.register_buffer("eps", torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape  # (B, nodes, D)
        # Σ_all x_j + eps·x_i == (1 + eps)·x_i + Σ_{j≠i} x_j on a complete graph without loops
        agg = x.sum(dim=1, keepdim=True).expand(b, n, d) + self.eps * x  # (B, nodes, D)
        out = self.apply_func(agg.reshape(b * n, d))  # BN over B·nodes rows → (B·nodes, D')
        return out.reshape(b, n, -1)


class GIN(nn.Module):
    """GraphMAE GIN: ``layers.{i}`` GIN layers with feature dropout before each (training only).

    ``encoding=True`` (the encoder) wraps every layer's MLP in :class:`ApplyNodeFunc`;
    ``encoding=False`` with one layer (the pretraining decoder) uses the bare :class:`MLP`, so its
    output is linear — as GraphMAE builds its decoder.
    """

    def __init__(
        self,
        in_dim: int,
        hidden: int,
        out_dim: int,
        num_layers: int,
        dropout: float = 0.0,
        encoding: bool = True,
    ) -> None:
        super().__init__()
        self.dropout = dropout
        layers = []
        for i in range(num_layers):
            d_in = in_dim if i == 0 else hidden
            d_out = out_dim if i == num_layers - 1 else hidden
            mlp = MLP(d_in, hidden, d_out)
            last = i == num_layers - 1
            layers.append(GINConv(ApplyNodeFunc(mlp) if (encoding or not last) else mlp))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Node features ``(B, nodes, in_dim)`` → ``(B, nodes, out_dim)``."""
        for layer in self.layers:
            x = F.dropout(x, p=self.dropout, training=self.training)
            x = layer(x)
        return x
