# Training runs: results/{ds}/runs/{variant}/ (3modal = text + video + motion; 2modal = the text + motion ablation).


rule train:
    input:
        unpack(train_inputs),
    output:
        model=f"{RESULTS}/{{ds}}/runs/{{variant}}/model.pt",
        history=f"{RESULTS}/{{ds}}/runs/{{variant}}/history.jsonl",
        config=f"{RESULTS}/{{ds}}/runs/{{variant}}/config.json",
    log:
        f"{RESULTS}/logs/train/{{ds}}_{{variant}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{ds}}_{{variant}}.tsv"
    params:
        dataset_dir=parent_dir("manifest", None),
        run_dir=lambda wildcards, output: os.path.dirname(output.model),
        args=train_args,
    threads: run_threads
    resources:
        mem_mb=attempt_mem(config["train"]["mem_mb"]),
    conda:
        "../envs/ml.yaml"
    shell:
        # a rerun after a kill resumes from {run_dir}/checkpoints/last.pt
        "lavimo train --dataset-dir {params.dataset_dir:q} --out {params.run_dir:q} --variant {wildcards.variant:q}"
        " {params.args} --no-progress > {log:q} 2>&1"


rule train_demo:
    input:
        f"{RESULTS}/demo/runs/3modal/model.pt",


rule train_demo_2modal:
    input:
        f"{RESULTS}/demo/runs/2modal/model.pt",


rule train_humanml3d:
    input:
        f"{RESULTS}/humanml3d/runs/3modal/model.pt",


rule train_humanml3d_2modal:
    input:
        f"{RESULTS}/humanml3d/runs/2modal/model.pt",


rule train_kitml:
    input:
        f"{RESULTS}/kitml/runs/3modal/model.pt",


rule train_kitml_2modal:
    input:
        f"{RESULTS}/kitml/runs/2modal/model.pt",
