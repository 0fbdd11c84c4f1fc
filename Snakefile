# lavimo: raw motion capture -> avatars -> Blender renders -> CLIP features -> tri-modal model -> report.
# `snakemake --cores all` runs the bundled demo end to end; see README.md for the targets.
import sys
import time

from snakemake.utils import min_version, validate

# the rules read names from this checkout's lavimo/layout.py and lavimo/presets.py (whatever lavimo is installed)
sys.path.insert(0, workflow.basedir)
from lavimo.layout import DATASETS

min_version("9.0")

RUN_STARTED = time.time()  # the timing table printed at the end covers the jobs that end after this


configfile: "config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


wildcard_constraints:
    ds="|".join(DATASETS),
    shard=r"[0-9]{4}",
    variant="3modal|2modal",
    study=r"[A-Za-z0-9_]+",
    seed=r"[0-9]+",


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/avatars.smk"
include: "rules/render.smk"
include: "rules/features.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/ablation.smk"
include: "rules/report.smk"
include: "rules/search.smk"


rule all:
    default_target: True
    input:
        STATIC_TARGETS,
        default_targets,


# the run's time per rule, from the rules' benchmark files (lavimo/timing.py)
onsuccess:
    from lavimo.timing import run_timing

    table = run_timing(f"{RESULTS}/benchmarks", since=RUN_STARTED)
    if table:
        print(table)
