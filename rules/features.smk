# Frame features (CLIP ViT-B/32, or the offline fallback) per clip and sentence embeddings per caption.


rule features:
    input:
        manifest=f"{RESULTS}/{{ds}}/manifest.parquet",
        rendered=lambda wildcards: rendered_shards(wildcards.ds)(wildcards),
        # after the render rejects are merged: both steps rewrite their rows of results/{ds}/rejected.csv
        render_rejects=f"{RESULTS}/{{ds}}/frames/rejected.csv",
    output:
        current=f"{RESULTS}/{{ds}}/features/current.json",
    log:
        f"{RESULTS}/logs/features/{{ds}}.log",
    params:
        dataset_dir=lambda wildcards, input: os.path.dirname(input.manifest),
        args=features_args,
    threads: 2
    resources:
        mem_mb=attempt_mem(8000),
    conda:
        "../envs/ml.yaml"
    shell:
        "lavimo features build --dataset-dir {params.dataset_dir} --frames-dir {params.dataset_dir}/frames"
        " --out {params.dataset_dir}/features {params.args} --workers {threads} > {log} 2>&1"


rule sentences:
    input:
        manifest=f"{RESULTS}/{{ds}}/manifest.parquet",
    output:
        current=f"{RESULTS}/{{ds}}/sentences/current.json",
    log:
        f"{RESULTS}/logs/sentences/{{ds}}.log",
    params:
        dataset_dir=lambda wildcards, input: os.path.dirname(input.manifest),
        args=sentences_args,
    threads: 1
    resources:
        mem_mb=attempt_mem(4000),
    conda:
        "../envs/ml.yaml"
    shell:
        "lavimo features sentences --dataset-dir {params.dataset_dir} --out {params.dataset_dir}/sentences"
        " {params.args} > {log} 2>&1"


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
