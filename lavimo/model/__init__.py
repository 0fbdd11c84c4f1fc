"""LAVIMO model: encoders, fusion attention, motion decoder, losses.

The names are loaded on first use, so that ``lavimo.model.config`` (torch-free: the settings checks run before torch
is imported) can be imported without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "ModelConfig": "lavimo.model.config",
    "LAVIMO": "lavimo.model.lavimo",
    "count_parameters": "lavimo.model.lavimo",
    "AlignmentLoss": "lavimo.model.losses",
    "reconstruction_loss": "lavimo.model.losses",
    "soft_target_matrix": "lavimo.model.losses",
    "soft_target_scores": "lavimo.model.losses",
    "TextTokenizer": "lavimo.model.text_encoder",
    "load_text_backbone": "lavimo.model.text_encoder",
    "minilm_model_dir": "lavimo.model.text_encoder",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'lavimo.model' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
