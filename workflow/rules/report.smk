# The paper's artifacts: tables and figures under results/{run}/{tables,figures}.


rule table2:
    input:
        expand(f"{RUN}/scores/{{model}}.csv", model=MODELS),
    output:
        csv=f"{RUN}/tables/table2.csv",
        md=f"{RUN}/tables/table2.md",
    params:
        config=CONFIG_FILE,
        digest=digest("evaluate"),
    conda:
        "../../envs/train.yaml"
    log:
        f"{LOGS}/table2.log",
    benchmark:
        f"{BENCH}/table2.tsv"
    shell:
        "neuralogcm table table2 --config {params.config} --scores {input}"
        " --out {output.csv} > {log} 2>&1"
