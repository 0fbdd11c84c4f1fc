"""The LAVIMO module: motion/text/video encoders, fusion attention, motion decoder and the losses."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from lavimo.model.config import ModelConfig
from lavimo.model.decoder import MotionDecoder
from lavimo.model.dropout import lean_dropout_
from lavimo.model.fusion import FusionAttention
from lavimo.model.layers import Encoded
from lavimo.model.losses import AlignmentLoss, reconstruction_loss
from lavimo.model.motion_encoder import MotionEncoder
from lavimo.model.text_encoder import TextEncoder, TextTokenizer, TokenBatch
from lavimo.model.video_encoder import VideoEncoder

TextInput = Sequence[str] | TokenBatch


class LAVIMO(nn.Module):
    """Tri-modal (or 2-modal) joint embedding model.

    `forward(batch)` takes a dict with
      motion (B, T, 263) normalised features, lengths (B,) valid frames,
      text: list of B captions, or text_tokens: {input_ids, attention_mask},
      video (B, F, D_frame) cached frame features (3-modal only), optional video_valid (B,) bool,
      optional sentence_emb (B, D_s) caption embeddings for the soft targets (identity targets without),
    and returns losses (loss, loss_align, loss_mt, [loss_mv, loss_tv,] loss_recon), tau, the L2-normalised
    embeddings (emb_motion, emb_text, [emb_video]) and the reconstruction `recon` (B, T, 263).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.motion_encoder = MotionEncoder(config)
        self.text_encoder = TextEncoder(config)
        self.video_encoder = VideoEncoder(config) if config.variant == "3modal" else None
        self.fusion = FusionAttention(config, use_video=self.video_encoder is not None)
        self.decoder = MotionDecoder(config)
        self.align_loss = AlignmentLoss(
            config.tau_init,
            config.tau_min,
            config.tau_max,
            config.target_threshold,
            config.tau_per_pair,
            rule=config.soft_targets,
            scale=config.target_scale,
        )
        self.requested_config = config
        self.config = self._effective_config(config)
        lean_dropout_(self)  # same distribution, less time and training memory on the CPU

    def _effective_config(self, config: ModelConfig) -> ModelConfig:
        """The config that rebuilds this exact architecture (records a text-backbone fallback)."""
        if self.text_encoder_source.startswith("fallback:"):
            return dataclasses.replace(config, text_backbone="minilm", text_backbone_path=None)
        return config

    @property
    def text_encoder_source(self) -> str:
        """Where the text backbone weights came from (store it in the run's config)."""
        return self.text_encoder.source

    @property
    def tokenizer(self) -> TextTokenizer:
        """The picklable caption tokenizer (usable in DataLoader collate functions)."""
        return self.text_encoder.tokenizer

    @property
    def has_video(self) -> bool:
        """True for the 3-modal variant."""
        return self.video_encoder is not None

    def metadata(self) -> dict[str, Any]:
        """Facts to store with a run: effective config, text source, parameter counts."""
        return {
            "model_config": self.config.to_dict(),
            "text_encoder_source": self.text_encoder_source,
            "parameters": count_parameters(self),
        }

    # ---- encoders -------------------------------------------------------------------------------------
    def _tokens(self, text: TextInput) -> TokenBatch:
        """Captions or an existing token batch -> token batch."""
        if isinstance(text, Mapping):
            return text
        return self.text_encoder.tokenize(list(text))

    def encode_motion(self, features: Tensor, lengths: Tensor) -> Tensor:
        """(B, T, 263) normalised features, (B,) lengths -> (B, C) L2-normalised e_m."""
        return F.normalize(self.motion_encoder(features, lengths).embedding, dim=-1)

    def encode_text(self, text: TextInput) -> Tensor:
        """Captions (list of str) or a token batch -> (B, C) L2-normalised e_t."""
        return F.normalize(self.text_encoder(self._tokens(text)).embedding, dim=-1)

    def encode_video(self, frames: Tensor) -> Tensor:
        """(B, F, D_frame) frame features -> (B, C) L2-normalised e_v (3-modal only)."""
        if self.video_encoder is None:
            raise RuntimeError("the 2-modal variant has no video encoder")
        return F.normalize(self.video_encoder(frames).embedding, dim=-1)

    # ---- training -------------------------------------------------------------------------------------
    def forward(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """Encode all modalities, fuse, reconstruct the motion; return losses and embeddings."""
        motion, lengths = batch["motion"], batch["lengths"]
        motion = motion.to(self.motion_encoder.proj.weight.device)
        m = self.motion_encoder(motion, lengths)
        t = self.text_encoder(self._tokens(batch["text_tokens"] if "text_tokens" in batch else batch["text"]))
        v, video_valid = self._encode_video_batch(batch)
        fused, fused_mask = self.fusion(m, t, v, video_valid)
        recon = self.decoder(fused, fused_mask, lengths, motion.shape[1])
        out = self.align_loss(
            m.embedding, t.embedding, None if v is None else v.embedding, batch.get("sentence_emb"), video_valid
        )
        out["loss_recon"] = reconstruction_loss(recon, motion, lengths)
        out["loss"] = out["loss_align"] + self.config.recon_weight * out["loss_recon"]
        out["tau"] = self.align_loss.tau.detach()
        out.update(self._normalised(m, t, v))
        out["recon"] = recon
        return out

    def _encode_video_batch(self, batch: Mapping[str, Any]) -> tuple[Encoded | None, Tensor | None]:
        """Video tokens and per-sample validity for the 3-modal variant; (None, None) for 2-modal."""
        if self.video_encoder is None:
            return None, None
        if batch.get("video") is None:
            raise KeyError("the 3-modal variant needs batch['video'] (B, F, D_frame)")
        valid = batch.get("video_valid")
        return self.video_encoder(batch["video"]), None if valid is None else valid.bool()

    @staticmethod
    def _normalised(m: Encoded, t: Encoded, v: Encoded | None) -> dict[str, Tensor]:
        """L2-normalised embeddings, named for the output dict."""
        out = {"emb_motion": F.normalize(m.embedding, dim=-1), "emb_text": F.normalize(t.embedding, dim=-1)}
        if v is not None:
            out["emb_video"] = F.normalize(v.embedding, dim=-1)
        return out


def count_parameters(model: nn.Module) -> dict[str, int]:
    """Parameter counts per top-level submodule, plus total and trainable."""
    counts = {name: sum(p.numel() for p in child.parameters()) for name, child in model.named_children()}
    counts["total"] = sum(p.numel() for p in model.parameters())
    counts["trainable"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return counts
