"""Video encoder: cached per-frame features (B, F, D_frame) -> projection + positions + temporal transformer."""

from __future__ import annotations

from torch import Tensor, nn

from lavimo.model.config import ModelConfig
from lavimo.model.layers import Encoded, PositionalEncoding, make_encoder


class VideoEncoder(nn.Module):
    """Per-frame CLIP features -> linear projection -> temporal transformer; e_v = average of the outputs."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.proj = nn.Linear(cfg.frame_dim, cfg.latent_dim)
        self.pos = PositionalEncoding(cfg.latent_dim, max_len=max(cfg.num_frames, 64))
        self.encoder = make_encoder(cfg, cfg.video_layers)

    def forward(self, frames: Tensor) -> Encoded:
        """frames (B, F, D_frame) (float16 cache ok) -> Encoded (tokens (B, F, C), all valid)."""
        x = self.proj(frames.to(device=self.proj.weight.device, dtype=self.proj.weight.dtype))
        out = self.encoder(self.pos(x))
        mask = out.new_ones(out.shape[:2], dtype=bool)
        return Encoded(embedding=out.mean(dim=1), tokens=out, mask=mask)
