"""Video side of the pipeline: frame sampling, clip-consistent augmentation, frame encoders, feature cache.

Importing this package is cheap and torch-free (the renderer imports :mod:`lavimo.video.sampling`);
the torch-based modules (augment, encoders, cache, build) are imported explicitly.
"""
