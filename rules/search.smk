# Search index of a dataset's motions, embedded by its trained 3-modal run: results/{ds}/index/ (lavimo index).
# Query it with `lavimo search --index results/{ds}/index --text "..."`. The target is the build report: a
# rerun updates the index in place and embeds only new or changed clips (index.json is never deleted).


rule index:
    input:
        unpack(index_inputs),
    output:
        report=f"{RESULTS}/{{ds}}/index/build.json",
    log:
        f"{RESULTS}/logs/index/{{ds}}.log",
    params:
        run_dir=parent_dir("model", None),
        dataset_dir=parent_dir("manifest", None),
        index_dir=lambda wildcards, output: os.path.dirname(output.report),
    threads: 2
    resources:
        mem_mb=attempt_mem(8000),
    conda:
        "../envs/ml.yaml"
    shell:
        "lavimo index --run {params.run_dir:q} --dataset-dir {params.dataset_dir:q} --out {params.index_dir:q}"
        " --no-progress > {log:q} 2>&1"


rule index_demo:
    input:
        f"{RESULTS}/demo/index/build.json",


rule index_humanml3d:
    input:
        f"{RESULTS}/humanml3d/index/build.json",


rule index_kitml:
    input:
        f"{RESULTS}/kitml/index/build.json",
