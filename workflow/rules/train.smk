# One training job per model: torchrun over the job's GPUs, a plain process on CPU.
#
# Resume: --resume continues from models/{model}/last.pt (not an output, so it survives a failed,
# killed or preempted job: SIGTERM/SIGUSR1 make training save it and exit with 128 + signal) only
# when last.pt is of an unfinished run with the same settings and the same input data (its
# fingerprint covers the config entries training reads and the content of stats.nc, mask.nc and
# the stores' metadata; train.py: fingerprint). So a rerun after an interruption or a Slurm
# requeue continues where it stopped, and a rerun that Snakemake decides on (-f, changed settings,
# rebuilt data) starts afresh: a finished run's last.pt is never resumed.
#
# Log: Snakemake deletes a job's log before each attempt, so {log} is a link to
# {model}.attempts.log, to which every attempt appends (a header line, then its output): the log
# of an interrupted attempt is kept.


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
        digest=lambda w: digest("data.years", "data.depths", "grid", "train", model=w.model),
        data_dir=parent_of("stats"),
        launcher=train_launcher,
        out_dir=parent_of("checkpoint"),
        attempts_log=lambda w: f"{w.model}.attempts.log",
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
        "ln -sfn {params.attempts_log:q} {log:q}"
        " && echo \"=== attempt started $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)\" >> {log:q}"
        " && {params.launcher} train --config {params.config:q} --model {wildcards.model}"
        " --data-dir {params.data_dir:q} --out-dir {params.out_dir:q} --threads {threads} --resume"
        " >> {log:q} 2>&1"
