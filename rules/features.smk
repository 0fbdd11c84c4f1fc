# Frame features (CLIP ViT-B/32, or the offline fallback) per clip and sentence embeddings per caption.


# One job per render shard, started as soon as that shard is rendered: encoding overlaps rendering (and spreads
# over nodes on a cluster). A job writes only its shard's files in the cache (and the same meta.json, atomically);
# features_merge writes what the shards share. One thread and one decoding worker per job: on a CPU the encoder
# (OpenVINO) does more frames per core-second on one thread, and two jobs (or a job and a render shard) share two
# cores; decoding and augmenting take about a third of a job's CPU (`lavimo bench features`).
rule features:
    input:
        manifest=f"{RESULTS}/{{ds}}/manifest.parquet",
        rendered=f"{RESULTS}/{{ds}}/frames/{{shard}}.done",
        render_rejects=f"{RESULTS}/{{ds}}/frames/{{shard}}.rejected.csv",
    output:
        pointer=f"{RESULTS}/{{ds}}/features/shards/current-{{shard}}.json",
    log:
        f"{RESULTS}/logs/features/{{ds}}/{{shard}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/features/{{ds}}/{{shard}}.tsv"
    params:
        dataset_dir=lambda wildcards, input: os.path.dirname(input.manifest),
        args=features_args,
    threads: 1
    priority: PRIORITY["features"]
    resources:
        mem_mb=attempt_mem(8000),
    conda:
        "../envs/ml.yaml"
    shell:
        "lavimo features build --dataset-dir {params.dataset_dir:q} --frames-dir {params.dataset_dir:q}/frames"
        " --out {params.dataset_dir:q}/features {params.args} --shard {wildcards.shard:q} --workers {threads}"
        " > {log:q} 2>&1"


# The cache's index, its rows of results/{ds}/rejected.csv and the pointer current.json, once every shard is encoded.
rule features_merge:
    input:
        manifest=f"{RESULTS}/{{ds}}/manifest.parquet",
        shards=lambda wildcards: expand(
            f"{RESULTS}/{wildcards.ds}/features/shards/current-{{shard}}.json", shard=dataset_shards(wildcards.ds)
        ),
        # after the render rejects are merged: both steps rewrite their rows of results/{ds}/rejected.csv
        render_rejects=f"{RESULTS}/{{ds}}/frames/rejected.csv",
    output:
        current=f"{RESULTS}/{{ds}}/features/current.json",
    log:
        f"{RESULTS}/logs/features/{{ds}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/features_merge/{{ds}}.tsv"
    params:
        dataset_dir=lambda wildcards, input: os.path.dirname(input.manifest),
    threads: 1
    priority: PRIORITY["features"]
    resources:
        mem_mb=attempt_mem(2000),
    conda:
        "../envs/ml.yaml"
    shell:
        "lavimo features merge --dataset-dir {params.dataset_dir:q} --frames-dir {params.dataset_dir:q}/frames"
        " --out {params.dataset_dir:q}/features > {log:q} 2>&1"


rule sentences:
    input:
        manifest=f"{RESULTS}/{{ds}}/manifest.parquet",
    output:
        current=f"{RESULTS}/{{ds}}/sentences/current.json",
    log:
        f"{RESULTS}/logs/sentences/{{ds}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/sentences/{{ds}}.tsv"
    params:
        dataset_dir=lambda wildcards, input: os.path.dirname(input.manifest),
        args=sentences_args,
    threads: 1
    priority: PRIORITY["sentences"]
    resources:
        mem_mb=attempt_mem(4000),
    conda:
        "../envs/ml.yaml"
    shell:
        "lavimo features sentences --dataset-dir {params.dataset_dir:q} --out {params.dataset_dir:q}/sentences"
        " {params.args} > {log:q} 2>&1"


rule features_demo:
    input:
        f"{RESULTS}/demo/features/current.json",


rule features_humanml3d:
    input:
        f"{RESULTS}/humanml3d/features/current.json",


rule features_kitml:
    input:
        f"{RESULTS}/kitml/features/current.json",


rule sentences_demo:
    input:
        f"{RESULTS}/demo/sentences/current.json",


rule sentences_humanml3d:
    input:
        f"{RESULTS}/humanml3d/sentences/current.json",


rule sentences_kitml:
    input:
        f"{RESULTS}/kitml/sentences/current.json",
