# One training job per model: torchrun over the job's GPUs, a plain process on CPU.
# --resume continues from models/{model}/last.pt, which is not an output, so it survives a failed
# or preempted job: SIGTERM/SIGUSR1 (Slurm, before a time limit or preemption) make the job save
# last.pt and exit with 128 + signal, and the rerun (or requeue) continues from there. A last.pt of
# another configuration is ignored (training starts afresh); a larger train.epochs extends a run.


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
        **CFG.resources.rule_resources("train"),
    shell:
        "{params.launcher} train --config {params.config} --model {wildcards.model}"
        " --data-dir {params.data_dir} --out-dir {params.out_dir} --threads {threads} --resume"
        " > {log} 2>&1"
