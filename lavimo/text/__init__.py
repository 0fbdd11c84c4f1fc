"""Text side: sentence embeddings of captions (negative filtering, threshold protocol); text encoders."""
