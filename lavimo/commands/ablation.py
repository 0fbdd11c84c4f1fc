"""`lavimo ablation`: summarise a 3-modal vs 2-modal study over seeds into ablation.json."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--run",
        action="append",
        default=[],
        metavar="VARIANT:SEED:DIR",
        help="an evaluated run folder (holds metrics.json), e.g. 3modal:0:results/demo/ablation/default/3modal/seed0",
    )
    parser.add_argument("--dataset", default=None, help="dataset name recorded in the summary")
    parser.add_argument("--study", default="default", help="study name (default: the plain 3- vs 2-modal ablation)")
    parser.add_argument("--description", default="", help="what the study changes")
    parser.add_argument("--override", action="append", default=[], help="a --set override the study applies")
    parser.add_argument("--out", type=Path, default=None, help="ablation.json to write")
    parser.add_argument(
        "--show",
        nargs="+",
        type=Path,
        default=None,
        metavar="ABLATION_JSON",
        help="instead: print markdown tables of these summaries: the 3- vs 2-modal difference (t2m and m2t R@1 and "
        "R@10, protocols a and b), then the studies side by side (t2m, m2t, v2m, m2v R@1 and R@5, per protocol)",
    )
    parser.set_defaults(func=run)


def parse_run(spec: str) -> tuple[str, int, Path]:
    """VARIANT:SEED:DIR -> (variant, seed, dir)."""
    from lavimo.io import LavimoInputError

    parts = spec.split(":", 2)
    if len(parts) != 3 or not parts[1].isdigit() or not parts[2]:
        raise LavimoInputError("--run", f"expects VARIANT:SEED:DIR, got {spec!r}")
    return parts[0], int(parts[1]), Path(parts[2])


SHOWN = tuple((p, d, m) for p in ("normal", "threshold") for d in ("t2m", "m2t") for m in ("R@1", "R@10"))


def run(args: argparse.Namespace) -> int:
    from lavimo.ablation import load_summary, markdown_comparison, markdown_table, study_summary, write_study
    from lavimo.io import LavimoInputError

    if args.show:
        summaries = [load_summary(path) for path in args.show]
        print(markdown_table(summaries, SHOWN))
        for protocol, label in (("normal", "(a) all"), ("threshold", "(b) all with threshold")):
            print(f"\nProtocol {label}, mean ± std over seeds:\n")
            print(markdown_comparison(summaries, protocol))
        return 0
    if not args.run or not args.dataset or not args.out:
        raise LavimoInputError(
            "lavimo ablation", "give --run (one per variant and seed), --dataset and --out, or --show"
        )

    runs: dict[str, dict[int, Path]] = {}
    labels: dict[Path, str] = {}
    for spec in args.run:
        variant, seed, run_dir = parse_run(spec)
        if seed in runs.get(variant, {}):
            raise LavimoInputError("--run", f"{variant} seed {seed} is given twice ({runs[variant][seed]}, {run_dir})")
        if run_dir.resolve() in labels:
            raise LavimoInputError(run_dir, f"given twice, as {labels[run_dir.resolve()]} and {variant}:{seed}")
        runs.setdefault(variant, {})[seed] = run_dir
        labels[run_dir.resolve()] = f"{variant}:{seed}"
    summary = study_summary(runs, args.dataset, args.study, args.description, args.override)
    write_study(args.out, summary)
    cell = summary["results"].get("normal", {}).get("t2m", {}).get("R@1", {})
    if "diff" in cell:
        print(
            f"{args.study}: t2m R@1 (a) 3-modal {cell['3modal']['mean']:.2f} ± {cell['3modal']['std']:.2f}, "
            f"2-modal {cell['2modal']['mean']:.2f} ± {cell['2modal']['std']:.2f}, "
            f"diff {cell['diff']['mean']:+.2f} (95% CI {cell['diff']['ci']}): {cell['verdict']} -> {args.out}"
        )
    return 0
