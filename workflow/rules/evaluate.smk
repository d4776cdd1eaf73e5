# Autoregressive rollouts on the test year, the reference forecasts in the same store format, and
# their scores (one score rule for models and references alike).

from neuralogcm.metrics import REFERENCES

REFERENCE_KINDS = list(REFERENCES)  # persistence, damped_persistence, climatology
SCORED = MODELS + REFERENCE_KINDS


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
        digest=lambda w: digest("data.years", "evaluate", model=w.model),
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
        "neuralogcm rollout --config {params.config:q} --model {wildcards.model}"
        " --checkpoint {input.checkpoint:q} --data-dir {params.data_dir:q} --out {output:q}"
        " --threads {threads} > {log:q} 2>&1"


rule reference:
    input:
        **DATA_STORES,
    output:
        directory(f"{RUN}/rollouts/{{kind}}.zarr"),
    wildcard_constraints:
        kind="|".join(REFERENCE_KINDS),
    params:
        config=CONFIG_FILE,
        digest=digest("data.years", "data.depths", "grid", "evaluate"),
        data_dir=parent_of("stats"),
    conda:
        "../../envs/train.yaml"
    log:
        f"{LOGS}/reference/{{kind}}.log",
    benchmark:
        f"{BENCH}/reference/{{kind}}.tsv"
    threads: 1
    resources:
        **CFG.resources.rule_resources("default"),
    shell:
        "neuralogcm reference --kind {wildcards.kind} --config {params.config:q}"
        " --data-dir {params.data_dir:q} --out {output:q} > {log:q} 2>&1"


rule score:
    input:
        **DATA_STORES,
        rollout=f"{RUN}/rollouts/{{model}}.zarr",
    output:
        f"{RUN}/scores/{{model}}.csv",
    wildcard_constraints:
        model="|".join(SCORED),
    params:
        config=CONFIG_FILE,
        digest=digest("data.years", "data.depths", "grid", "evaluate"),
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
        "neuralogcm score --config {params.config:q} --model {wildcards.model}"
        " --rollout {input.rollout:q} --data-dir {params.data_dir:q} --out {output:q} > {log:q} 2>&1"
