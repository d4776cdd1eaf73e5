# Raw monthly files in each source's own format: results/{run}/raw/{era5,glorys}/{year}/{month}.nc
# (synthetic: generated; download: cdsapi / copernicusmarine, validated, then renamed into place).
# A `local` source builds nothing: regrid reads data.local.{era5,glorys} directly (raw_file() in
# common.smk) through the same reader and checks; a missing local file stops the run at parse time
# with the config key, its pattern and the files it lacks.


if CFG.data.source == "synthetic":

    rule synthesize:
        output:
            [maybe_temp(path) for path in expand(f"{RUN}/raw/{{source}}/{{year}}/{{month}}.nc",
                                                 source=["era5", "glorys"], year=YEARS,
                                                 month=MONTHS)],
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
        resources:
            **CFG.resources.rule_resources("default"),
        shell:
            "neuralogcm synthesize --config {params.config:q} --out-dir {params.out_dir:q}"
            " > {log:q} 2>&1"


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
        resources:
            **CFG.resources.rule_resources("default"),
        shell:
            "neuralogcm download {wildcards.source} --config {params.config:q}"
            " --year {wildcards.year} --month {wildcards.month} --out {output:q} > {log:q} 2>&1"


elif CFG.data.source == "local":

    from neuralogcm.sources.local import missing_local_files

    if _missing := missing_local_files(CFG):
        raise WorkflowError(_missing)
