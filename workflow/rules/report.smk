# The paper's artifacts: tables and figures under results/{run}/{tables,figures}, each wrapped with
# report(...) so that `snakemake --report results/{run}/report.html` shows it with its caption.

SCORES = expand(f"{RUN}/scores/{{model}}.csv", model=SCORED)  # models, then the references
HISTORIES = expand(f"{RUN}/models/{{model}}/history.csv", model=MODELS)
ROLLOUTS = expand(f"{RUN}/rollouts/{{model}}.zarr", model=MODELS)


rule table:
    input:
        SCORES,
    output:
        csv=report(f"{RUN}/tables/{{table}}.csv", caption="../report/tables.rst",
                   category="Tables"),
        md=f"{RUN}/tables/{{table}}.md",
    wildcard_constraints:
        table="table2|ablation|variables|stability",
    params:
        config=CONFIG_FILE,
        # the ablation table also shows the hybrid models' switches (models:, physics:)
        digest=lambda w: digest("data.years", "data.depths", "evaluate",
                                *(("models", "physics") if w.table == "ablation" else ())),
    conda:
        "../../envs/train.yaml"
    log:
        f"{LOGS}/table/{{table}}.log",
    benchmark:
        f"{BENCH}/table/{{table}}.tsv"
    threads: 1
    resources:
        **CFG.resources.rule_resources("default"),
    shell:
        "neuralogcm table {wildcards.table} --config {params.config:q} --scores {input:q}"
        " --out {output.csv:q} > {log:q} 2>&1"


rule speed_table:
    input:
        rollouts=ROLLOUTS,
        histories=HISTORIES,  # train seconds per step: the epochs' seconds and steps
    output:
        csv=report(f"{RUN}/tables/speed.csv", caption="../report/speed.rst", category="Tables"),
        md=f"{RUN}/tables/speed.md",
    params:
        config=CONFIG_FILE,
        # what the verb reads: train (epochs, batch), physics (sub-steps), evaluate (speed_days)
        digest=digest("physics", "train", "evaluate"),
    conda:
        "../../envs/train.yaml"
    log:
        f"{LOGS}/table/speed.log",
    benchmark:
        f"{BENCH}/table/speed.tsv"
    threads: 1
    resources:
        **CFG.resources.rule_resources("default"),
    shell:
        "neuralogcm table speed --config {params.config:q} --rollouts {input.rollouts:q}"
        " --histories {input.histories:q} --out {output.csv:q}"
        " > {log:q} 2>&1"


rule fig3:
    input:
        HISTORIES,
    output:
        report(f"{RUN}/figures/fig3_validation_loss.png", caption="../report/fig3.rst",
               category="Figures"),
    params:
        config=CONFIG_FILE,
        digest=digest("train"),
    conda:
        "../../envs/train.yaml"
    log:
        f"{LOGS}/figures/fig3.log",
    benchmark:
        f"{BENCH}/figures/fig3.tsv"
    threads: 1
    resources:
        **CFG.resources.rule_resources("default"),
    shell:
        "neuralogcm plot fig3 --config {params.config:q} --histories {input:q} --out {output:q}"
        " > {log:q} 2>&1"


rule fig4:
    input:
        **DATA_STORES,
        rollouts=fig4_rollouts(),
    output:
        report(f"{RUN}/figures/fig4_anomalies_day{CFG.evaluate.fig4_day}.png",
               caption="../report/fig4.rst", category="Figures"),
    params:
        config=CONFIG_FILE,
        digest=digest("data.years", "data.depths", "evaluate"),
        data_dir=parent_of("stats"),
    conda:
        "../../envs/train.yaml"
    log:
        f"{LOGS}/figures/fig4.log",
    benchmark:
        f"{BENCH}/figures/fig4.tsv"
    threads: 1
    resources:
        **CFG.resources.rule_resources("default"),
    shell:
        "neuralogcm plot fig4 --config {params.config:q} --rollouts {input.rollouts:q}"
        " --data-dir {params.data_dir:q} --out {output:q} > {log:q} 2>&1"


rule rmse_vs_lead:
    input:
        SCORES,
    output:
        [report(path, caption="../report/rmse_vs_lead.rst", category="Figures",
                subcategory="RMSE vs lead") for path in rmse_vs_lead_figures()],
    params:
        config=CONFIG_FILE,
        digest=digest("evaluate"),
        out_dir=lambda w, output: os.path.dirname(output[0]),
    conda:
        "../../envs/train.yaml"
    log:
        f"{LOGS}/figures/rmse_vs_lead.log",
    benchmark:
        f"{BENCH}/figures/rmse_vs_lead.tsv"
    threads: 1
    resources:
        **CFG.resources.rule_resources("default"),
    shell:
        "neuralogcm plot rmse_vs_lead --config {params.config:q} --scores {input:q}"
        " --out {params.out_dir:q} > {log:q} 2>&1"


rule coefficients:
    input:
        histories=HISTORIES,
        ocean=DATA_STORES["ocean"],  # synthetic data: the true tracer diffusivity, an attribute
    output:
        report(f"{RUN}/figures/learned_coefficients.png", caption="../report/coefficients.rst",
               category="Figures"),
    params:
        config=CONFIG_FILE,
        digest=digest("train"),
    conda:
        "../../envs/train.yaml"
    log:
        f"{LOGS}/figures/coefficients.log",
    benchmark:
        f"{BENCH}/figures/coefficients.tsv"
    threads: 1
    resources:
        **CFG.resources.rule_resources("default"),
    shell:
        "neuralogcm plot coefficients --config {params.config:q}"
        " --histories {input.histories:q} --ocean {input.ocean:q} --out {output:q} > {log:q} 2>&1"


rule models_table:
    output:
        csv=report(f"{RUN}/tables/models.csv", caption="../report/models.rst", category="Tables"),
        md=f"{RUN}/tables/models.md",
    params:
        config=CONFIG_FILE,
        digest=digest("data.depths", "grid", "models",
                      *(["physics"] if any(map(uses_physics, CFG.models.values())) else [])),
    conda:
        "../../envs/train.yaml"
    log:
        f"{LOGS}/table/models.log",
    benchmark:
        f"{BENCH}/table/models.tsv"
    threads: 1
    resources:
        **CFG.resources.rule_resources("default"),
    shell:
        "neuralogcm models --config {params.config:q} --out {output.csv:q} > {log:q} 2>&1"
