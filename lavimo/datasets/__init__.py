"""Prepared datasets: demo (bundled Bandai-Namco BVH), HumanML3D, KIT-ML, and raw AMASS -> HumanML3D layout.

Each prepared dataset is ``results/{ds}/manifest.parquet`` plus motion shards ``motions/{shard}.npz``;
read them with the functions re-exported here (from :mod:`lavimo.datasets.manifest`).
"""

from lavimo.datasets.manifest import iter_motions, iter_shard, load_manifest, load_motion, shards

__all__ = ["iter_motions", "iter_shard", "load_manifest", "load_motion", "shards"]
