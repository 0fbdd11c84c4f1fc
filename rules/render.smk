# Headless Blender rendering: one Blender process per shard of clips (scene and avatars loaded once), the
# shards' rejections merged per dataset, and two contact sheets of how the dataset's frames look.


# studio options of the contact sheets: the dataset frames' engine and resolution
SHEET_ARGS = shlex.join(
    ["--engine", config["render"]["engine"], "--resolution", str(config["render"]["resolution"])]
    + ["--mesh-detail", str(config["render"]["mesh_detail"])]
    + (["--force-engine"] if config["render"]["force_engine"] else [])
)
# what `render_{ds}` builds besides the shards: the merged rejections and the contact sheets
RENDER_EXTRAS = [
    f"{RESULTS}/{{ds}}/frames/rejected.csv",
    f"{RESULTS}/{{ds}}/render_avatars.png",
    f"{RESULTS}/{{ds}}/render_clips.png",
]


rule render_shard:
    input:
        manifest=f"{RESULTS}/{{ds}}/manifest.parquet",
        avatars=avatar_files(),
    output:
        done=f"{RESULTS}/{{ds}}/frames/{{shard}}.done",
        rejected=f"{RESULTS}/{{ds}}/frames/{{shard}}.rejected.csv",
    log:
        f"{RESULTS}/logs/render/{{ds}}/{{shard}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/render_shard/{{ds}}/{{shard}}.tsv"
    params:
        args=render_args,
        dataset_dir=lambda wildcards: f"{RESULTS}/{wildcards.ds}",
        avatars=parent_dir("avatars"),
    threads: 1
    priority: PRIORITY["render"]
    resources:
        mem_mb=attempt_mem(3000),
    conda:
        "../envs/render.yaml"
    shell:
        "lavimo render shard --dataset-dir {params.dataset_dir:q} --shard {wildcards.shard:q}"
        " --avatars {params.avatars:q} --frames-dir {params.dataset_dir:q}/frames {params.args} --threads {threads}"
        " > {log:q} 2>&1"


# Shards render in parallel, each listing its rejections in {shard}.rejected.csv; this one job merges them
# (atomically, idempotently) into frames/rejected.csv and into the `render` rows of the dataset's
# rejected.csv, next to the rows of the other stages.
rule render_rejects:
    input:
        manifest=f"{RESULTS}/{{ds}}/manifest.parquet",
        done=lambda wildcards: rendered_shards(wildcards.ds)(wildcards),
    output:
        merged=f"{RESULTS}/{{ds}}/frames/rejected.csv",
    log:
        f"{RESULTS}/logs/render/{{ds}}/rejected.log",
    benchmark:
        f"{RESULTS}/benchmarks/render_rejects/{{ds}}.tsv"
    params:
        dataset_dir=lambda wildcards, input: os.path.dirname(input.manifest),
    threads: 1
    resources:
        mem_mb=attempt_mem(1000),
    conda:
        "../envs/render.yaml"
    shell:
        "lavimo render merge-rejects --dataset-dir {params.dataset_dir:q} --out {output.merged:q} > {log:q} 2>&1"


rule render_sheet_avatars:
    input:
        manifest=f"{RESULTS}/{{ds}}/manifest.parquet",
        avatars=avatar_files(),
    output:
        sheet=f"{RESULTS}/{{ds}}/render_avatars.png",
    log:
        f"{RESULTS}/logs/render/{{ds}}/render_avatars.log",
    benchmark:
        f"{RESULTS}/benchmarks/render_sheet_avatars/{{ds}}.tsv"
    params:
        args=SHEET_ARGS,
        dataset_dir=lambda wildcards, input: os.path.dirname(input.manifest),
        avatars=parent_dir("avatars"),
    threads: 1
    resources:
        mem_mb=attempt_mem(3000),
    conda:
        "../envs/render.yaml"
    shell:
        "lavimo render clip-sheet --layout avatars --dataset-dir {params.dataset_dir:q} --pick 1"
        " --avatars {params.avatars:q} --out {output.sheet:q} {params.args} --threads {threads} > {log:q} 2>&1"


rule render_sheet_clips:
    input:
        manifest=f"{RESULTS}/{{ds}}/manifest.parquet",
        avatars=avatar_files(),
    output:
        sheet=f"{RESULTS}/{{ds}}/render_clips.png",
    log:
        f"{RESULTS}/logs/render/{{ds}}/render_clips.log",
    benchmark:
        f"{RESULTS}/benchmarks/render_sheet_clips/{{ds}}.tsv"
    params:
        args=SHEET_ARGS,
        dataset_dir=lambda wildcards, input: os.path.dirname(input.manifest),
        avatars=parent_dir("avatars"),
        num_frames=config["render"]["num_frames"],
    threads: 1
    resources:
        mem_mb=attempt_mem(3000),
    conda:
        "../envs/render.yaml"
    shell:
        "lavimo render clip-sheet --layout frames --dataset-dir {params.dataset_dir:q} --pick 4"
        " --num-frames {params.num_frames:q} --avatars {params.avatars:q} --out {output.sheet:q} {params.args}"
        " --threads {threads} > {log:q} 2>&1"


rule render_demo:
    input:
        rendered_shards("demo"),
        expand(RENDER_EXTRAS, ds="demo"),


rule render_humanml3d:
    input:
        rendered_shards("humanml3d"),
        expand(RENDER_EXTRAS, ds="humanml3d"),


rule render_kitml:
    input:
        rendered_shards("kitml"),
        expand(RENDER_EXTRAS, ds="kitml"),


rule render_all:
    input:
        lambda wildcards: [done for ds in config["datasets_enabled"] for done in rendered_shards(ds)(wildcards)],
        expand(RENDER_EXTRAS, ds=config["datasets_enabled"]),
