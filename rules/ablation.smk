# The 3-modal vs 2-modal ablation over train.seeds (`ablation_{ds}`) and the studies of what moves the
# difference (`ablation_studies_{ds}`). Runs: results/{ds}/ablation/{study}/{variant}/seed{seed}/;
# summaries: results/{ds}/ablation.json (study "default") and results/{ds}/ablation/{study}/ablation.json.


rule train_ablation:
    input:
        unpack(ablation_train_inputs),
    output:
        model=f"{RESULTS}/{{ds}}/ablation/{{study}}/{{variant}}/seed{{seed}}/model.pt",
        config=f"{RESULTS}/{{ds}}/ablation/{{study}}/{{variant}}/seed{{seed}}/config.json",
    log:
        f"{RESULTS}/logs/ablation/{{ds}}_{{study}}_{{variant}}_seed{{seed}}_train.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_ablation/{{ds}}_{{study}}_{{variant}}_seed{{seed}}.tsv"
    params:
        dataset_dir=parent_dir("manifest", None),
        run_dir=lambda wildcards, output: os.path.dirname(output.model),
        args=ablation_train_args,
    threads: run_threads
    resources:
        mem_mb=attempt_mem(config["train"]["mem_mb"]),
    conda:
        "../envs/ml.yaml"
    shell:
        "lavimo train --dataset-dir {params.dataset_dir:q} --out {params.run_dir:q} --variant {wildcards.variant:q}"
        " {params.args} --no-progress > {log:q} 2>&1"


rule evaluate_ablation:
    input:
        model=f"{RESULTS}/{{ds}}/ablation/{{study}}/{{variant}}/seed{{seed}}/model.pt",
    output:
        metrics=f"{RESULTS}/{{ds}}/ablation/{{study}}/{{variant}}/seed{{seed}}/metrics.json",
    log:
        f"{RESULTS}/logs/ablation/{{ds}}_{{study}}_{{variant}}_seed{{seed}}_evaluate.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate_ablation/{{ds}}_{{study}}_{{variant}}_seed{{seed}}.tsv"
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


rule features_study:
    input:
        manifest=f"{RESULTS}/{{ds}}/manifest.parquet",
        current=f"{RESULTS}/{{ds}}/features/current.json",
    output:
        pointer=f"{RESULTS}/{{ds}}/features/ablation-{{study}}.json",
    log:
        f"{RESULTS}/logs/features/{{ds}}_ablation-{{study}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/features_study/{{ds}}_{{study}}.tsv"
    params:
        dataset_dir=parent_dir("manifest", None),
        args=lambda wildcards: features_args(wildcards, study_config(wildcards.study)["features"]),
    threads: 2
    resources:
        mem_mb=attempt_mem(8000),
    conda:
        "../envs/ml.yaml"
    shell:
        "lavimo features build --dataset-dir {params.dataset_dir:q} --frames-dir {params.dataset_dir:q}/frames"
        " --out {params.dataset_dir:q}/features {params.args} --pointer ablation-{wildcards.study:q}"
        " --workers {threads} > {log:q} 2>&1"


rule ablation_summary:
    input:
        unpack(ablation_metrics),
    output:
        summary=f"{RESULTS}/{{ds}}/ablation/{{study}}/ablation.json",
    log:
        f"{RESULTS}/logs/ablation/{{ds}}_{{study}}_summary.log",
    benchmark:
        f"{RESULTS}/benchmarks/ablation_summary/{{ds}}_{{study}}.tsv"
    params:
        args=ablation_summary_args,
    threads: 1
    resources:
        mem_mb=attempt_mem(1000),
    conda:
        "../envs/ml.yaml"
    shell:
        "lavimo ablation --dataset {wildcards.ds:q} --study {wildcards.study:q} {params.args}"
        " --out {output.summary:q} > {log:q} 2>&1"


rule ablation_default:
    input:
        summary=f"{RESULTS}/{{ds}}/ablation/default/ablation.json",
    output:
        summary=f"{RESULTS}/{{ds}}/ablation.json",
    log:
        f"{RESULTS}/logs/ablation/{{ds}}_default_copy.log",
    benchmark:
        f"{RESULTS}/benchmarks/ablation_default/{{ds}}.tsv"
    threads: 1
    resources:
        mem_mb=attempt_mem(500),
    conda:
        "../envs/ml.yaml"
    shell:
        # the summary the README names, results/{ds}/ablation.json, is the default study's
        "cp {input.summary:q} {output.summary:q}.tmp && mv {output.summary:q}.tmp {output.summary:q} 2> {log:q}"


rule ablation_demo:
    input:
        f"{RESULTS}/demo/ablation.json",


rule ablation_humanml3d:
    input:
        f"{RESULTS}/humanml3d/ablation.json",


rule ablation_kitml:
    input:
        f"{RESULTS}/kitml/ablation.json",


rule ablation_studies_demo:
    input:
        study_summaries("demo"),


rule ablation_studies_humanml3d:
    input:
        study_summaries("humanml3d"),


rule ablation_studies_kitml:
    input:
        study_summaries("kitml"),
