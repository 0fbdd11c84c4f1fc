# The self-contained HTML report: paper-style tables, training curves, qualitative retrieval, datasets (with
# their render contact sheets), avatars.


rule report:
    input:
        runs=[run_files(name) for name in ("metrics.json", "retrieval.json", "history.jsonl")],
        manifests=expand(f"{RESULTS}/{{ds}}/manifest.parquet", ds=config["datasets_enabled"]),
        rendered=lambda wildcards: [
            done for ds in config["datasets_enabled"] for done in rendered_shards(ds)(wildcards)
        ],
        # the report counts rejections from each dataset's rejected.csv alone: after the render rows are merged in
        render_rejects=expand(f"{RESULTS}/{{ds}}/frames/rejected.csv", ds=config["datasets_enabled"]),
        ablations=existing_ablation_summaries,
        sheet=f"{AVATAR_DIR}/contact_sheet.png",
        render_sheets=expand(
            f"{RESULTS}/{{ds}}/render_{{kind}}.png", ds=config["datasets_enabled"], kind=("avatars", "clips")
        ),
    output:
        html=report(
            f"{RESULTS}/report.html",
            caption="../workflow/report/report.rst",
            category="Report",
        ),
    log:
        f"{RESULTS}/logs/report.log",
    benchmark:
        f"{RESULTS}/benchmarks/report/report.tsv"
    params:
        results=lambda wildcards, output: os.path.dirname(output.html),
        datasets=config["datasets_enabled"],  # lists: `:q` quotes each name
        variants=config["train"]["variants"],
        backend=AVATAR_BACKEND,
    threads: 1
    resources:
        mem_mb=attempt_mem(4000),
    conda:
        "../envs/ml.yaml"
    shell:
        "lavimo report --results {params.results:q} --out {output.html:q} --datasets {params.datasets:q}"
        " --variants {params.variants:q}"
        " --avatar-backend {params.backend:q} > {log:q} 2>&1"
