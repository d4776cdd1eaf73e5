# Autoregressive rollouts on the test year and their scores.


rule rollout:
    input:
        **DATA_STORES,
        checkpoint=f"{RUN}/models/{{model}}/checkpoint.pt",
    output:
        directory(f"{RUN}/rollouts/{{model}}.zarr"),
    wildcard_constraints:
        model="|".join(MODELS),
    params:
        config=CONFIG_FILE,
        digest=lambda w: digest("data", "grid", "evaluate") + str(CFG.models[w.model]),
        data_dir=parent_of("stats"),
    conda:
        "../../envs/train.yaml"
    log:
        f"{LOGS}/rollout/{{model}}.log",
    benchmark:
        f"{BENCH}/rollout/{{model}}.tsv"
    threads: 1
    resources:
        **CFG.resources.rule_resources("rollout"),
    shell:
        "neuralogcm rollout --config {params.config} --model {wildcards.model}"
        " --checkpoint {input.checkpoint} --data-dir {params.data_dir} --out {output} --threads {threads}"
        " > {log} 2>&1"


rule score:
    input:
        **DATA_STORES,
        rollout=f"{RUN}/rollouts/{{model}}.zarr",
    output:
        f"{RUN}/scores/{{model}}.csv",
    wildcard_constraints:
        model="|".join(MODELS),
    params:
        config=CONFIG_FILE,
        digest=digest("data", "grid", "evaluate"),
        data_dir=parent_of("stats"),
    conda:
        "../../envs/train.yaml"
    log:
        f"{LOGS}/score/{{model}}.log",
    benchmark:
        f"{BENCH}/score/{{model}}.tsv"
    threads: 1
    resources:
        **CFG.resources.rule_resources("default"),
    shell:
        "neuralogcm score --config {params.config} --model {wildcards.model}"
        " --rollout {input.rollout} --data-dir {params.data_dir} --out {output} > {log} 2>&1"
