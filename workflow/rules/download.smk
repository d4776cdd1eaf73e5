# Raw monthly files in each source's own format: results/{run}/raw/{era5,glorys}/{year}/{month}.nc


if CFG.data.source == "synthetic":

    rule synthesize:
        output:
            expand(f"{RUN}/raw/{{source}}/{{year}}/{{month}}.nc",
                   source=["era5", "glorys"], year=YEARS, month=MONTHS),
        params:
            config=CONFIG_FILE,
            digest=digest("data"),
            out_dir=lambda w, output: os.path.commonpath(output),
        conda:
            "../../envs/data.yaml"
        log:
            f"{LOGS}/synthesize.log",
        benchmark:
            f"{BENCH}/synthesize.tsv"
        threads: 1
        shell:
            "neuralogcm synthesize --config {params.config} --out-dir {params.out_dir} > {log} 2>&1"


elif CFG.data.source == "download":

    if CFG.data.download.local_rules:

        localrules:
            download,

    rule download:
        output:
            maybe_temp(f"{RUN}/raw/{{source}}/{{year}}/{{month}}.nc"),
        wildcard_constraints:
            source="era5|glorys",
            year=r"\d{4}",
            month=r"\d{2}",
        params:
            config=CONFIG_FILE,
            digest=digest("data"),
        conda:
            "../../envs/data.yaml"
        log:
            f"{LOGS}/download/{{source}}_{{year}}_{{month}}.log",
        benchmark:
            f"{BENCH}/download/{{source}}_{{year}}_{{month}}.tsv"
        threads: 1
        shell:
            "neuralogcm download {wildcards.source} --config {params.config} --year {wildcards.year}"
            " --month {wildcards.month} --out {output} > {log} 2>&1"
