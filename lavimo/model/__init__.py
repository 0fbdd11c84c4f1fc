"""LAVIMO model: encoders, fusion attention, motion decoder, losses."""

from lavimo.model.config import ModelConfig
from lavimo.model.lavimo import LAVIMO, count_parameters
from lavimo.model.losses import AlignmentLoss, reconstruction_loss, soft_target_matrix, soft_target_scores
from lavimo.model.text_encoder import TextTokenizer, load_text_backbone, minilm_model_dir

__all__ = [
    "LAVIMO",
    "AlignmentLoss",
    "ModelConfig",
    "TextTokenizer",
    "count_parameters",
    "load_text_backbone",
    "minilm_model_dir",
    "reconstruction_loss",
    "soft_target_matrix",
    "soft_target_scores",
]
