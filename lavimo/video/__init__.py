"""Video side of the pipeline: rendered frames, clip-consistent augmentation, frame encoders, feature cache.

Frame sampling, which the renderer shares, lives in :mod:`lavimo.frame_sampling`. Importing this package is
cheap; the torch-based modules (augment, encoders, frames, build) are imported explicitly.
"""
