# Headless Blender rendering: one Blender process per shard of clips (scene and avatars loaded once).


rule render_shard:
    input:
        manifest=f"{RESULTS}/{{ds}}/manifest.parquet",
        avatars=avatar_files(),
    output:
        done=f"{RESULTS}/{{ds}}/frames/{{shard}}.done",
    log:
        f"{RESULTS}/logs/render/{{ds}}/{{shard}}.log",
    params:
        args=render_args,
        dataset_dir=lambda wildcards: f"{RESULTS}/{wildcards.ds}",
        avatars=parent_dir("avatars"),
    threads: 1
    resources:
        mem_mb=3000,
    conda:
        "../envs/render.yaml"
    shell:
        "lavimo render shard --dataset-dir {params.dataset_dir} --shard {wildcards.shard}"
        " --avatars {params.avatars} --frames-dir {params.dataset_dir}/frames {params.args} --threads {threads}"
        " > {log} 2>&1"


rule render_demo:
    input:
        rendered_shards("demo"),


rule render_humanml3d:
    input:
        rendered_shards("humanml3d"),


rule render_kitml:
    input:
        rendered_shards("kitml"),


rule render_all:
    input:
        lambda wildcards: [done for ds in config["datasets_enabled"] for done in rendered_shards(ds)(wildcards)],
