"""Cross-modal fusion (paper, section 3.2): the motion embedding attends over each modality's tokens.

"ẽ_m = Att(Q_em, K_em, V_em) + Att(Q_em, K_et, V_et) + Att(Q_em, K_ev, V_ev)": the query is the motion
embedding e_m (one vector per clip), keys and values are the motion, text and (3-modal) video tokens, and
ẽ_m is one vector. ``fusion_queries="tokens"`` (ours, not the paper's) uses every motion token as a query.
"""

from __future__ import annotations

from torch import Tensor, nn

from lavimo.model.config import ModelConfig
from lavimo.model.layers import Encoded


class FusionAttention(nn.Module):
    """ẽ_m = Att(Q_em, K_m, V_m) + Att(Q_em, K_t, V_t) [+ Att(Q_em, K_v, V_v)], then LayerNorm."""

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
        """The queries and their validity mask: the motion embedding e_m (B, 1, C), or every motion token."""
        if self.query_mode == "embedding":
            return motion.embedding[:, None], motion.mask[:, :1]
        return motion.tokens, motion.mask

    def forward(
        self, motion: Encoded, text: Encoded, video: Encoded | None = None, video_valid: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """-> ẽ_m (B, 1, C) (or fused motion tokens (B, T+1, C), zero on padding) and its mask.

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
