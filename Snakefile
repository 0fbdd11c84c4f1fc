# lavimo: raw motion capture -> avatars -> Blender renders -> CLIP features -> tri-modal model -> report.
# `snakemake --cores all` runs the bundled demo end to end; see README.md for the targets.
import sys

from snakemake.utils import min_version, validate

# the rules read names from this checkout's lavimo/layout.py and lavimo/presets.py (whatever lavimo is installed)
sys.path.insert(0, workflow.basedir)
from lavimo.layout import DATASETS

min_version("9.0")


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
        default_targets,
