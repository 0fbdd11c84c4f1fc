# The 13 avatars (anny by default, SMPL when the user supplies model files) and their contact sheet.


rule build_avatars:
    output:
        avatars=avatar_files(),
    log:
        f"{RESULTS}/logs/avatars/{AVATAR_BACKEND}.log",
    benchmark:
        f"{RESULTS}/benchmarks/build_avatars/{AVATAR_BACKEND}.tsv"
    params:
        out=lambda wildcards, output: os.path.dirname(output.avatars[0]),
        backend=AVATAR_BACKEND,
        smpl=(
            shlex.join(["--smpl-model-dir", config["avatars"]["smpl_model_dir"]])
            if config["avatars"]["smpl_model_dir"]
            else ""
        ),
    threads: 1
    priority: PRIORITY["avatars"]
    resources:
        mem_mb=attempt_mem(4000),
    conda:
        "../envs/ml.yaml"
    shell:
        "lavimo avatars build --backend {params.backend:q} --out {params.out:q} {params.smpl} > {log:q} 2>&1"


rule avatar_contact_sheet:
    input:
        avatars=avatar_files(),
    output:
        sheet=report(
            f"{AVATAR_DIR}/contact_sheet.png",
            caption="../workflow/report/avatars.rst",
            category="Avatars",
        ),
    log:
        f"{RESULTS}/logs/avatars/{AVATAR_BACKEND}_sheet.log",
    benchmark:
        f"{RESULTS}/benchmarks/avatar_contact_sheet/{AVATAR_BACKEND}.tsv"
    params:
        avatars=parent_dir("avatars"),
        resolution=config["render"]["resolution"],
    threads: 1
    resources:
        mem_mb=attempt_mem(4000),
    conda:
        "../envs/render.yaml"
    shell:
        "lavimo render avatar-sheet --avatars {params.avatars:q} --out {output.sheet:q} > {log:q} 2>&1"


rule avatars:
    input:
        f"{AVATAR_DIR}/contact_sheet.png",
