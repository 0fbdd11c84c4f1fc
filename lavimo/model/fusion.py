"""Cross-modal fusion: motion queries attend over motion, text and (3-modal) video tokens; the three summed."""

from __future__ import annotations

from torch import Tensor, nn

from lavimo.model.config import ModelConfig
from lavimo.model.motion_encoder import Encoded


class FusionAttention(nn.Module):
    """ẽ_m = Att(Q_m, K_m, V_m) + Att(Q_m, K_t, V_t) [+ Att(Q_m, K_v, V_v)], then LayerNorm."""

    def __init__(self, cfg: ModelConfig, use_video: bool) -> None:
        super().__init__()
        self.query_mode = cfg.fusion_queries
        self.att_m = self._attention(cfg)
        self.att_t = self._attention(cfg)
        self.att_v = self._attention(cfg) if use_video else None
        self.norm = nn.LayerNorm(cfg.latent_dim)

    @staticmethod
    def _attention(cfg: ModelConfig) -> nn.MultiheadAttention:
        """One multi-head attention block with the config's sizes."""
        return nn.MultiheadAttention(cfg.latent_dim, cfg.num_heads, dropout=cfg.dropout, batch_first=True)

    def queries(self, motion: Encoded) -> tuple[Tensor, Tensor]:
        """The motion queries and their validity mask: all motion tokens, or only [CLS]."""
        if self.query_mode == "cls":
            return motion.tokens[:, :1], motion.mask[:, :1]
        return motion.tokens, motion.mask

    def forward(
        self, motion: Encoded, text: Encoded, video: Encoded | None = None, video_valid: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """-> fused motion tokens (B, Lq, C) (zero on padded queries) and their mask (B, Lq).

        video_valid (B,) bool drops the video term for samples without video.
        """
        q, q_mask = self.queries(motion)
        fused = self._attend(self.att_m, q, motion) + self._attend(self.att_t, q, text)
        if self.att_v is not None:
            if video is None:
                raise ValueError("3-modal fusion needs video tokens")
            video_term = self._attend(self.att_v, q, video)
            if video_valid is not None:
                video_term = video_term * video_valid.to(video_term.device, video_term.dtype)[:, None, None]
            fused = fused + video_term
        return self.norm(fused) * q_mask[..., None].to(fused.dtype), q_mask

    @staticmethod
    def _attend(att: nn.MultiheadAttention, q: Tensor, kv: Encoded) -> Tensor:
        """Attention of queries over one modality's valid tokens."""
        out, _ = att(q, kv.tokens, kv.tokens, key_padding_mask=~kv.mask, need_weights=False)
        return out
