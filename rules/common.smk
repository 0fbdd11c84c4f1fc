# Helpers shared by all rule files (paths, dataset checks, shard lists, command-line options).
import glob
import json
import os
import shlex
import sys
from pathlib import Path

from lavimo.layout import NUM_AVATARS, dataset_not_found
from lavimo.presets import resolve_preset, resolve_views

# Rules call the `lavimo` CLI; when it is not on PATH, fall back to the one installed beside this
# snakemake (e.g. .venv/bin). Appended, so a conda env activated for a rule keeps precedence.
shell.prefix(f'export PATH="$PATH:{os.path.dirname(sys.executable)}"; ')

RESULTS = config["results_dir"]
AVATAR_BACKEND = config["avatars"]["backend"]
AVATAR_DIR = f"{RESULTS}/avatars/{AVATAR_BACKEND}"
# Which ready job takes a free core first (rules without one have priority 0): the avatars, which gate every render
# shard, then the render shards, the long pole of a run, then each shard's frame features, and the trainings last.
# Without it a 2-modal run, ready early, took one of two cores from the render shards and the 3-modal run then
# trained alone on one thread at the end; with it both runs train side by side after the features (issue 14).
# The avatars go before `prepare` too (they are in the first DAG, see STATIC_TARGETS): on 2 cores the two cannot
# overlap (prepare takes both), and with the avatars done first the core `sentences` frees goes to a render shard.
# The other way round, a 3 s race between avatars and sentences decided whether the 2-modal run took that core.
# The caption embeddings (`sentences`) go with the render shards, so that they are not left for the end.
PRIORITY = {"avatars": 3, "render": 2, "sentences": 2, "features": 1}


def attempt_mem(mb):
    """A rule's `mem_mb`: ``mb`` on the first attempt, ``mb`` x attempt on each retry (`retries` in the Slurm
    profile), so a job killed for memory comes back with more."""
    return lambda wildcards, attempt: mb * attempt


def dataset_root(ds):
    """Input folder of a dataset; stops the workflow at once with setup instructions when it is missing."""
    if ds == "demo":
        return config["datasets"]["demo"]["bundle"]
    root = config["datasets"][ds]["root"]
    if not Path(root).is_dir():
        raise WorkflowError(f"{root}: {dataset_not_found(ds)}")
    return root


def prepare_args(wildcards):
    """Command-line options of `lavimo prepare {ds}` from the config."""
    prep = config["prepare"]
    args = ["--shard-size", prep["shard_size"], "--seed", prep["seed"], "--min-seconds", prep["min_seconds"]]
    if not prep["mirror"]:
        args.append("--no-mirror")
    if wildcards.ds == "demo":
        args += ["--bundle", config["datasets"]["demo"]["bundle"]]
        if config["datasets"]["demo"]["limit"]:
            args += ["--limit", config["datasets"]["demo"]["limit"]]
    else:
        args += ["--root", dataset_root(wildcards.ds)]
    return shlex.join(str(a) for a in args)


def dataset_shards(ds):
    """Shard names of a prepared dataset (read from its manifest once `prepare` has run)."""
    import pandas as pd

    manifest = checkpoints.prepare.get(ds=ds).output.manifest
    return sorted(pd.read_parquet(manifest, columns=["shard"])["shard"].unique())


def avatar_files():
    """The 13 avatar files of the configured backend."""
    return expand(f"{AVATAR_DIR}/{{index:02d}}.npz", index=range(NUM_AVATARS))


def rendered_shards(ds):
    """Done-markers of every render shard of a dataset."""
    return lambda wildcards: expand(f"{RESULTS}/{ds}/frames/{{shard}}.done", shard=dataset_shards(ds))


# What a plain `snakemake` builds that is known before `prepare` has run (the rule `all` lists it apart from
# `default_targets`): so the avatars are in the first DAG and, with their priority, start before `prepare`.
STATIC_TARGETS = [f"{AVATAR_DIR}/contact_sheet.png"]


def default_targets(wildcards):
    """What a plain `snakemake` builds besides STATIC_TARGETS: everything the pipeline has so far, for the enabled
    datasets. The render shards are known only once `prepare` (a checkpoint) has run."""
    targets = []
    for ds in config["datasets_enabled"]:
        targets.append(f"{RESULTS}/{ds}/manifest.parquet")
        targets += rendered_shards(ds)(wildcards) + expand(RENDER_EXTRAS, ds=ds)
        targets += [f"{RESULTS}/{ds}/features/current.json", f"{RESULTS}/{ds}/sentences/current.json"]
    return targets + [f"{RESULTS}/report.html"]


def render_args(wildcards):
    """Command-line options of `lavimo render shard` from the config."""
    render = config["render"]
    args = [
        "--engine", render["engine"],
        "--mode", render["mode"],
        "--num-frames", render["num_frames"],
        "--resolution", render["resolution"],
        "--mesh-detail", render["mesh_detail"],
        "--renders-dir", f"{RESULTS}/{wildcards.ds}/renders",
    ]  # fmt: skip
    if render["video"]:
        args.append("--video")
    if render["force_engine"]:
        args.append("--force-engine")
    return shlex.join(str(a) for a in args)


def parent_dir(name, index=0):
    """Params function: folder of the named input file (never a hardcoded path prefix)."""
    return lambda wildcards, input: os.path.dirname(input[name][index] if index is not None else input[name])


def features_args(wildcards, overrides=None):
    """Command-line options of `lavimo features build` from the config (with a study's overrides)."""
    feats = {**config["features"], **(overrides or {})}
    views = resolve_views(feats["views"], config["preset"], wildcards.ds)
    args = ["--encoder", feats["encoder"], "--views", views, "--frames", config["render"]["num_frames"]]
    args += ["--batch-size", feats["batch_size"], "--seed", feats["seed"]]
    if "hflip_p" in feats:
        args += ["--hflip-p", feats["hflip_p"]]
    if feats["checkpoint"]:
        args += ["--checkpoint", feats["checkpoint"]]
    return shlex.join(str(a) for a in args)


def sentences_args(wildcards):
    """Command-line options of `lavimo features sentences` from the config."""
    model = config["features"]["sentence_model"]
    return shlex.join(["--model", model]) if model else ""


def train_inputs(wildcards):
    """Caches a run reads: motions (manifest), caption embeddings, and frame features for 3-modal runs."""
    inputs = {
        "manifest": f"{RESULTS}/{wildcards.ds}/manifest.parquet",
        "sentences": f"{RESULTS}/{wildcards.ds}/sentences/current.json",
    }
    if wildcards.variant == "3modal":
        inputs["features"] = f"{RESULTS}/{wildcards.ds}/features/current.json"
    return inputs


def index_inputs(wildcards):
    """What a search index is built from: the dataset's 3-modal run (text, video and motion encoders) and motions."""
    return {
        "model": f"{RESULTS}/{wildcards.ds}/runs/3modal/model.pt",
        "config": f"{RESULTS}/{wildcards.ds}/runs/3modal/config.json",
        "manifest": f"{RESULTS}/{wildcards.ds}/manifest.parquet",
    }


def set_options(settings):
    """`--set key=value` options of `lavimo train` for a mapping of settings."""
    args = []
    for key, value in settings.items():
        args += ["--set", f"{key}={json.dumps(value) if isinstance(value, dict | list) else value}"]
    return args


def train_settings(study=None):
    """What `lavimo train` sets on top of the preset: the training targets, then train.overrides, then a study's own
    settings (a target study changes the targets)."""
    targets = config["train_targets"]
    settings = {
        "model.soft_targets": targets["rule"],
        "model.target_threshold": targets["threshold"],
        "model.target_scale": targets["scale"],
    }
    settings.update(config["train"]["overrides"])
    if study is not None:
        settings.update(study_config(study)["train"])
    return settings


def train_args(wildcards):
    """Command-line options of `lavimo train` from the config: the preset (lavimo/presets.py) and the settings."""
    args = ["--preset", resolve_preset(config["preset"], wildcards.ds), "--nproc", config["train"]["nproc"]]
    args += set_options(train_settings())
    return shlex.join(str(a) for a in args)


def check_train_settings():
    """Refuse at startup (`snakemake -n` too) what `lavimo train` would refuse after the renders: a misspelt key, a
    value out of range, in train.overrides or in a study, for every dataset's preset."""
    from lavimo.train_config import make_train_config

    for ds in DATASETS:
        preset = resolve_preset(config["preset"], ds)
        for study in [None, *config["ablation"]["studies"]]:
            where = "train.overrides" if study is None else f"ablation.studies.{study}.train"
            try:
                make_train_config(preset, train_settings(study))
            except ValueError as error:
                raise WorkflowError(f"config.yaml {where} (preset {preset}): {error}") from None


def evaluate_args():
    """Command-line options of `lavimo evaluate` from the config: protocol (b)'s threshold and its scale."""
    protocol_b = config["protocol_b"]
    return shlex.join(["--threshold", str(protocol_b["threshold"]), "--threshold-scale", protocol_b["scale"]])


def run_threads(wildcards):
    """Threads of a run's training or evaluation job: train.threads, but no more than an equal share of the
    local cores for each variant, so that the runs train (and then evaluate) side by side. The demo's small model
    does an epoch only 1.5x faster on 2 threads than on 1: on 2 cores its two runs, one thread each, finish sooner
    than one after the other."""
    threads = config["train"]["threads"]
    try:
        cores = workflow.cores
    except WorkflowError:  # no --cores (a cluster executor): the job gets what it asks for
        return threads
    return max(1, min(threads, cores // len(config["train"]["variants"])))


def run_files(name, datasets=None):
    """One file of every run (dataset x variant) the config enables."""
    return expand(
        f"{RESULTS}/{{ds}}/runs/{{variant}}/{name}",
        ds=datasets or config["datasets_enabled"],
        variant=config["train"]["variants"],
    )


def study_config(study):
    """An ablation study's settings; `default` changes nothing."""
    if study == "default":
        return {"description": "", "video_only": False, "train": {}, "features": {}}
    studies = config["ablation"]["studies"]
    if study not in studies:
        raise WorkflowError(f"unknown ablation study '{study}'; config.yaml ablation.studies has {sorted(studies)}")
    return {"description": "", "video_only": False, "train": {}, "features": {}, **studies[study]}


def ablation_run_dir(ds, study, variant, seed):
    """Run folder of one seed of one variant in a study.

    Video-only studies share the default study's 2-modal runs, and the default study's seed 0 is the pipeline's
    own run results/{ds}/runs/{variant} (trained with the same settings and seed): neither is trained twice.
    """
    if variant == "2modal" and study_config(study)["video_only"]:
        study = "default"
    if study == "default" and int(seed) == 0:
        return f"{RESULTS}/{ds}/runs/{variant}"
    return f"{RESULTS}/{ds}/ablation/{study}/{variant}/seed{seed}"


def ablation_train_inputs(wildcards):
    """A study run's inputs: the run's caches, with the study's own frame features when it changes them."""
    inputs = train_inputs(wildcards)
    if wildcards.variant == "3modal" and study_config(wildcards.study)["features"]:
        inputs["features"] = f"{RESULTS}/{wildcards.ds}/features/ablation-{wildcards.study}.json"
    return inputs


def ablation_train_args(wildcards):
    """`lavimo train` options of a study run: the dataset's, the seed, the study's overrides."""
    study = study_config(wildcards.study)
    settings = {"seed": int(wildcards.seed), **study["train"]}
    if study["features"]:
        settings["features"] = f"ablation-{wildcards.study}"
    return " ".join([train_args(wildcards), shlex.join(str(a) for a in set_options(settings))])


check_train_settings()


def ablation_metrics(wildcards):
    """metrics.json of every (variant, seed) run of a study, keyed VARIANT_SEED."""
    return {
        f"{variant}_{seed}": os.path.join(ablation_run_dir(wildcards.ds, wildcards.study, variant, seed), "metrics.json")
        for variant in ("3modal", "2modal")
        for seed in config["train"]["seeds"]
    }


def ablation_summary_args(wildcards, input):
    """`lavimo ablation` options: every run as VARIANT:SEED:DIR, the study's description and overrides."""
    study = study_config(wildcards.study)
    args = []
    for key, path in input.items():
        variant, seed = key.split("_")
        args += ["--run", f"{variant}:{seed}:{os.path.dirname(path)}"]
    args += ["--description", study["description"]]
    for key, value in {**study["train"], **{f"features.{k}": v for k, v in study["features"].items()}}.items():
        args += ["--override", f"{key}={value}"]
    return shlex.join(args)


def existing_ablation_summaries(wildcards):
    """Ablation summaries already written (the report shows them, and is remade when one changes; it never
    trains an ablation itself: that is `snakemake ablation_{ds}`)."""
    found = []
    for ds in config["datasets_enabled"]:
        found += glob.glob(f"{RESULTS}/{ds}/ablation.json")
        found += sorted(glob.glob(f"{RESULTS}/{ds}/ablation/*/ablation.json"))
    return found


def study_summaries(ds):
    """Summaries of every configured study of a dataset."""
    return expand(f"{RESULTS}/{ds}/ablation/{{study}}/ablation.json", study=list(config["ablation"]["studies"]))
