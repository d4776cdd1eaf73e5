# One training job per model: torchrun over the job's GPUs, a plain process on CPU.


rule train:
    input:
        **DATA_STORES,
    output:
        checkpoint=f"{RUN}/models/{{model}}/checkpoint.pt",
        history=f"{RUN}/models/{{model}}/history.csv",
    wildcard_constraints:
        model="|".join(MODELS),
    params:
        config=CONFIG_FILE,
        digest=lambda w: digest("data", "grid", "physics", "train") + str(CFG.models[w.model]),
        data_dir=parent_of("stats"),
        launcher=train_launcher,
        out_dir=parent_of("checkpoint"),
    conda:
        "../../envs/train.yaml"
    log:
        f"{LOGS}/train/{{model}}.log",
    benchmark:
        f"{BENCH}/train/{{model}}.tsv"
    threads: 1
    resources:
        gpu=CFG.resources.train.gpu,
        cpus_per_gpu=CFG.resources.train.cpus_per_gpu,
        tasks_per_gpu=0,
        mem_mb=CFG.resources.train.mem_mb,
        runtime=CFG.resources.train.runtime,
    shell:
        "{params.launcher} train --config {params.config} --model {wildcards.model}"
        " --data-dir {params.data_dir} --out-dir {params.out_dir} --threads {threads} --resume"
        " > {log} 2>&1"
