"""Model configuration: every size and switch of the LAVIMO model in one dataclass (named sizes: lavimo.presets)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from lavimo.presets import MODEL_PRESETS
from lavimo.text.similarity import SCALE_RANGES, SCALES, TARGET_RULES

Variant = Literal["3modal", "2modal"]
TextBackbone = Literal["distilbert", "minilm", "tiny"]
TargetRule = Literal["keep", "filter", "none"]
TargetScale = Literal["cos", "(1+cos)/2"]
# "embedding" (the paper, section 3.2): the motion embedding e_m is the one query over each modality's tokens,
# and the decoder reconstructs from that single fused vector and the duration.
# "tokens" (ours, NOT the paper's): every motion token is a query and the decoder attends to all fused tokens,
# so reconstruction can copy frames without passing through the embedding.
FusionQueries = Literal["embedding", "tokens"]
LEGACY_FUSION_QUERIES = {"cls": "embedding"}  # names stored by older runs

DISTILBERT_NAME = "distilbert-base-uncased"
TEXT_BACKBONES = ("distilbert", "minilm", "tiny")
ACTIVATIONS = ("gelu", "relu")
POSITIVE_INTS = ("latent_dim", "num_heads", "ff_dim", "motion_dim", "motion_layers", "text_layers", "text_max_length",
                 "tiny_text_dim", "frame_dim", "num_frames", "video_layers", "decoder_layers")  # fmt: skip


@dataclass
class ModelConfig:
    """Sizes and switches of the LAVIMO model (defaults = the paper, section 4)."""

    variant: Variant = "3modal"  # "2modal": text + motion only, no video encoder
    # shared transformer sizes
    latent_dim: int = 512  # C
    num_heads: int = 8
    ff_dim: int = 2048
    dropout: float = 0.1
    activation: str = "gelu"
    # motion
    motion_dim: int = 263
    motion_layers: int = 6
    # text
    text_backbone: TextBackbone = "distilbert"
    text_backbone_path: str | None = None  # local checkpoint dir; overrides the hub name
    text_allow_download: bool = True  # hub download when not cached (ignored under HF_HUB_OFFLINE=1)
    freeze_text_backbone: bool = False
    text_layers: int = 6
    text_max_length: int = 64
    tiny_text_dim: int = 32  # hidden size of the random-init "tiny" backbone (tests only)
    # video
    frame_dim: int = 512  # CLIP ViT-B/32 image embedding
    num_frames: int = 8
    video_layers: int = 6
    # fusion + decoder
    fusion_queries: FusionQueries = "embedding"  # the paper; "tokens" is ours, not the paper's (see above)
    decoder_layers: int = 6
    # loss
    tau_init: float = 0.07
    tau_min: float = 0.01
    tau_max: float = 1.0
    # the training targets (lavimo.text.similarity): "keep" = the paper's soft targets (section 3.1), "filter" =
    # TMR's negative filtering, "none" = identity; ε and its scale: the paper's formula, raw cos >= 0.8
    soft_targets: TargetRule = "keep"
    target_threshold: float = 0.8
    target_scale: TargetScale = "cos"
    tau_per_pair: bool = False  # the paper writes one learnable τ; True gives each modality pair its own (ours)
    recon_weight: float = 0.1

    @classmethod
    def from_preset(cls, preset: str, **overrides: Any) -> ModelConfig:
        """The config of a model size in :data:`lavimo.presets.MODEL_PRESETS` (paper, demo, tiny), with overrides."""
        if preset not in MODEL_PRESETS:
            raise ValueError(f"unknown model preset {preset!r}; expected one of {sorted(MODEL_PRESETS)}")
        return cls(**{**MODEL_PRESETS[preset], **overrides})

    @classmethod
    def paper(cls, **overrides: Any) -> ModelConfig:
        """The paper's sizes: C=512, 6-layer transformers, fine-tuned DistilBERT."""
        return cls.from_preset("paper", **overrides)

    @classmethod
    def demo(cls, **overrides: Any) -> ModelConfig:
        """A CPU-sized model for the bundled demo: C=128, 2 layers, frozen MiniLM."""
        return cls.from_preset("demo", **overrides)

    @classmethod
    def tiny(cls, **overrides: Any) -> ModelConfig:
        """A tiny random-init model for unit tests (no pretrained weights)."""
        return cls.from_preset("tiny", **overrides)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Rebuild from `to_dict` output, ignoring unknown keys.

        Runs made before the two scales were named stored ``epsilon_rescaled_cos``: their targets kept
        (1 + cos) / 2 >= that value.
        """
        data = dict(data)
        if "epsilon_rescaled_cos" in data and "target_scale" not in data:
            data.update(target_threshold=data.pop("epsilon_rescaled_cos"), target_scale="(1+cos)/2")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def train_targets(self) -> tuple[str, float, str]:
        """(rule, threshold, scale) of the training targets, as result files record them."""
        return self.soft_targets, self.target_threshold, self.target_scale

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of every field."""
        return asdict(self)

    def __post_init__(self) -> None:
        self.fusion_queries = LEGACY_FUSION_QUERIES.get(self.fusion_queries, self.fusion_queries)
        if self.fusion_queries not in ("embedding", "tokens"):
            raise ValueError(f"fusion_queries must be 'embedding' (the paper) or 'tokens', got {self.fusion_queries!r}")
        if self.variant not in ("3modal", "2modal"):
            raise ValueError(f"variant must be '3modal' or '2modal', got {self.variant!r}")
        for name in POSITIVE_INTS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
        if not (isinstance(self.dropout, int | float) and 0.0 <= self.dropout < 1.0):
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout!r}")
        if not (isinstance(self.recon_weight, int | float) and 0.0 <= self.recon_weight < float("inf")):
            raise ValueError(f"recon_weight must be a finite number >= 0, got {self.recon_weight!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {list(ACTIVATIONS)}, got {self.activation!r}")
        if self.text_backbone not in TEXT_BACKBONES:
            raise ValueError(f"text_backbone must be one of {list(TEXT_BACKBONES)}, got {self.text_backbone!r}")
        if self.latent_dim % self.num_heads:
            raise ValueError(f"latent_dim {self.latent_dim} is not divisible by num_heads {self.num_heads}")
        if self.soft_targets not in TARGET_RULES:
            raise ValueError(f"soft_targets must be one of {list(TARGET_RULES)}, got {self.soft_targets!r}")
        if self.target_scale not in SCALES:
            raise ValueError(f"target_scale must be one of {list(SCALES)}, got {self.target_scale!r}")
        low, high = SCALE_RANGES[self.target_scale]
        if not low <= self.target_threshold <= high:
            raise ValueError(
                f"target_threshold {self.target_threshold!r} is outside [{low:g}, {high:g}] (scale {self.target_scale})"
            )
        if not 0 < self.tau_min <= self.tau_init <= self.tau_max:
            raise ValueError("need 0 < tau_min <= tau_init <= tau_max")
