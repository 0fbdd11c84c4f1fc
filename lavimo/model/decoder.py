"""Motion decoder: positional queries for each of the l_m frames cross-attend to the fused embedding ẽ_m.

Paper, section 3.2: "we feed the fused embedding ẽ_m along with the duration l_m into a transformer motion
decoder". The duration sets the number of positional queries (and their padding mask); the memory is ẽ_m
alone (one vector), so everything reconstructed passes through the embedding.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lavimo.model.config import ModelConfig
from lavimo.model.layers import PositionalEncoding, layer_settings, lengths_to_mask


class MotionDecoder(nn.Module):
    """TMR/TEMOS-style transformer decoder: duration -> positional queries; memory = ẽ_m (or fused tokens)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.pos = PositionalEncoding(cfg.latent_dim)
        layer = nn.TransformerDecoderLayer(**layer_settings(cfg))
        self.decoder = nn.TransformerDecoder(layer, num_layers=cfg.decoder_layers)
        self.out = nn.Linear(cfg.latent_dim, cfg.motion_dim)

    def forward(self, memory: Tensor, memory_mask: Tensor, lengths: Tensor, max_len: int | None = None) -> Tensor:
        """memory (B, L, C), memory_mask (B, L) valid, lengths (B,) -> motion (B, T, motion_dim), 0 on padding."""
        frame_mask = lengths_to_mask(lengths.to(memory.device), max_len)
        queries = self.pos(torch.zeros(*frame_mask.shape, memory.shape[-1], device=memory.device, dtype=memory.dtype))
        out = self.decoder(
            queries, memory, tgt_key_padding_mask=~frame_mask, memory_key_padding_mask=~memory_mask.to(memory.device)
        )
        return self.out(out) * frame_mask[..., None].to(out.dtype)
