"""Motion encoder: the motion features projected to the latent size, then a [CLS] transformer."""

from __future__ import annotations

from torch import Tensor, nn

from lavimo.model.config import ModelConfig
from lavimo.model.layers import CLSTransformer, Encoded, lengths_to_mask


class MotionEncoder(nn.Module):
    """Linear projection of (normalised) motion features + [CLS] + N-layer transformer; e_m = first output."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.proj = nn.Linear(cfg.motion_dim, cfg.latent_dim)
        self.body = CLSTransformer(cfg, cfg.motion_layers)

    def forward(self, features: Tensor, lengths: Tensor) -> Encoded:
        """features (B, T, motion_dim), lengths (B,) -> Encoded (tokens (B, T+1, C))."""
        mask = lengths_to_mask(lengths.to(features.device), features.shape[1])
        x = self.proj(features.to(self.proj.weight.dtype))
        return self.body(x, mask)
