# Evaluation of a finished run on its test split: four protocols x (t2m, m2t[, v2m, m2v]).


rule evaluate:
    input:
        model=f"{RESULTS}/{{ds}}/runs/{{variant}}/model.pt",
        config=f"{RESULTS}/{{ds}}/runs/{{variant}}/config.json",
    output:
        metrics=f"{RESULTS}/{{ds}}/runs/{{variant}}/metrics.json",
        table=f"{RESULTS}/{{ds}}/runs/{{variant}}/metrics.csv",
        retrieval=f"{RESULTS}/{{ds}}/runs/{{variant}}/retrieval.json",
        embeddings=f"{RESULTS}/{{ds}}/runs/{{variant}}/test_embeddings.npz",
    log:
        f"{RESULTS}/logs/evaluate/{{ds}}_{{variant}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate/{{ds}}_{{variant}}.tsv"
    params:
        run_dir=parent_dir("model", None),
        args=evaluate_args(),
    threads: run_threads
    resources:
        mem_mb=attempt_mem(8000),
    conda:
        "../envs/ml.yaml"
    shell:
        "lavimo evaluate --run {params.run_dir:q} {params.args} > {log:q} 2>&1"


rule evaluate_all:
    input:
        run_files("metrics.json"),


rule evaluate_demo_3modal:
    input:
        f"{RESULTS}/demo/runs/3modal/metrics.json",


rule evaluate_demo_2modal:
    input:
        f"{RESULTS}/demo/runs/2modal/metrics.json",


rule evaluate_humanml3d_3modal:
    input:
        f"{RESULTS}/humanml3d/runs/3modal/metrics.json",


rule evaluate_humanml3d_2modal:
    input:
        f"{RESULTS}/humanml3d/runs/2modal/metrics.json",


rule evaluate_kitml_3modal:
    input:
        f"{RESULTS}/kitml/runs/3modal/metrics.json",


rule evaluate_kitml_2modal:
    input:
        f"{RESULTS}/kitml/runs/2modal/metrics.json",
