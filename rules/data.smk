# Raw motion -> canonical HumanML3D motions, manifests and motion shards.


checkpoint prepare:
    input:
        root=lambda wildcards: dataset_root(wildcards.ds),
    output:
        manifest=f"{RESULTS}/{{ds}}/manifest.parquet",
    log:
        f"{RESULTS}/logs/prepare/{{ds}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare/{{ds}}.tsv"
    params:
        args=prepare_args,
        out=lambda wildcards: f"{RESULTS}/{wildcards.ds}",
    threads: 2
    resources:
        mem_mb=attempt_mem(4000),
    conda:
        "../envs/ml.yaml"
    shell:
        "lavimo prepare {wildcards.ds:q} --out {params.out:q} {params.args} --workers {threads} > {log:q} 2>&1"


rule prepare_amass:
    input:
        amass=config["datasets"]["amass"]["root"],
        smplh=config["datasets"]["amass"]["smplh_dir"],
        index_csv=config["datasets"]["amass"]["index_csv"],
    output:
        marker=f"{RESULTS}/amass/humanml3d_layout.json",
    log:
        f"{RESULTS}/logs/prepare/amass.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare_amass/amass.tsv"
    params:
        out=lambda wildcards: config["datasets"]["humanml3d"]["root"],
    threads: 2
    resources:
        mem_mb=attempt_mem(8000),
    conda:
        "../envs/ml.yaml"
    shell:
        "lavimo prepare amass --amass-root {input.amass:q} --smplh-dir {input.smplh:q}"
        " --index-csv {input.index_csv:q} --out {params.out:q} --marker {output.marker:q} --workers {threads}"
        " > {log:q} 2>&1"


rule prepare_demo:
    input:
        f"{RESULTS}/demo/manifest.parquet",


rule prepare_humanml3d:
    input:
        f"{RESULTS}/humanml3d/manifest.parquet",


rule prepare_kitml:
    input:
        f"{RESULTS}/kitml/manifest.parquet",
