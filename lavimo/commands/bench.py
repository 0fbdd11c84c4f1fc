"""`lavimo bench NAME`: benchmarks that print figures (never timed tests)."""

from __future__ import annotations

import argparse
import importlib

# bench name -> "module:function"; each function takes the parsed args and prints its figures
BENCHMARKS: dict[str, str] = {
    "motion": "lavimo.bench.motion:bench_motion",
    "retarget": "lavimo.bench.retarget:bench_retarget",
    "render": "lavimo.bench.render:bench_render",
    "features": "lavimo.bench.features:bench_features",
    "flip": "lavimo.bench.flip:bench_flip",
    "train": "lavimo.bench.train:bench_train",
    "dag": "lavimo.bench.dag:bench_dag",
    "scale": "lavimo.bench.scale:bench_scale",
    "search": "lavimo.bench.search:bench_search",
}


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", choices=sorted(BENCHMARKS), help="which benchmark to run")
    parser.add_argument("--config", default="config.yaml", help="workflow config (dataset paths)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N clips (dag: clips in the DAG)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    module_name, function_name = BENCHMARKS[args.name].split(":")
    return getattr(importlib.import_module(module_name), function_name)(args) or 0
