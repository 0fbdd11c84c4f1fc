"""lavimo: tri-modal (text, video, motion) retrieval in one joint embedding space (LAVIMO, Yin et al. 2024)."""

__version__ = "0.1.0"
