"""The transformer building blocks every encoder uses: encoder output, padding masks, positions, [CLS] stacks."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from lavimo.model.config import ModelConfig


@dataclass
class Encoded:
    """One modality's encoder output: pooled embedding, token sequence, token validity mask."""

    embedding: Tensor  # (B, C), not normalised
    tokens: Tensor  # (B, L, C)
    mask: Tensor  # (B, L) bool, True = valid token


def lengths_to_mask(lengths: Tensor, max_len: int | None = None) -> Tensor:
    """(B,) lengths -> (B, max_len) bool mask, True on valid frames."""
    max_len = int(lengths.max()) if max_len is None else max_len
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


class PositionalEncoding(nn.Module):
    """Sinusoidal positional encoding added to batch-first sequences (any length)."""

    def __init__(self, dim: int, max_len: int = 5000) -> None:
        super().__init__()
        self.register_buffer("pe", sinusoidal_table(max_len, dim), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        """Add the encoding of positions 0..L-1 to x (B, L, C)."""
        length = x.shape[1]
        if length > self.pe.shape[0]:
            self.pe = sinusoidal_table(length, x.shape[-1]).to(self.pe)
        return x + self.pe[:length].to(x.dtype)[None]


def sinusoidal_table(length: int, dim: int) -> Tensor:
    """The (length, dim) sinusoid table of "Attention is all you need"."""
    position = torch.arange(length, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(position * div)
    table[:, 1::2] = torch.cos(position * div)[:, : dim // 2]
    return table


def layer_settings(cfg: ModelConfig) -> dict:
    """Keyword arguments of a batch-first transformer encoder or decoder layer with the config's sizes."""
    return {
        "d_model": cfg.latent_dim,
        "nhead": cfg.num_heads,
        "dim_feedforward": cfg.ff_dim,
        "dropout": cfg.dropout,
        "activation": cfg.activation,
        "batch_first": True,
    }


def make_encoder(cfg: ModelConfig, num_layers: int) -> nn.TransformerEncoder:
    """A batch-first transformer encoder stack with the config's sizes."""
    layer = nn.TransformerEncoderLayer(**layer_settings(cfg))
    return nn.TransformerEncoder(layer, num_layers=num_layers, enable_nested_tensor=False)


class CLSTransformer(nn.Module):
    """Prepend a learnable [CLS] token, add positions, run a transformer encoder with a padding mask."""

    def __init__(self, cfg: ModelConfig, num_layers: int) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.randn(1, 1, cfg.latent_dim) * 0.02)
        self.pos = PositionalEncoding(cfg.latent_dim)
        self.encoder = make_encoder(cfg, num_layers)

    def forward(self, x: Tensor, mask: Tensor) -> Encoded:
        """x (B, L, C) projected tokens, mask (B, L) valid -> Encoded with [CLS] output as embedding."""
        batch = x.shape[0]
        tokens = torch.cat([self.cls_token.expand(batch, -1, -1).to(x.dtype), x], dim=1)
        full_mask = torch.cat([mask.new_ones(batch, 1), mask], dim=1)
        out = self.encoder(self.pos(tokens), src_key_padding_mask=~full_mask)
        return Encoded(embedding=out[:, 0], tokens=out, mask=full_mask)
