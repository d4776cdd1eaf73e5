# Regrid each source-year to the target grid, assemble the stores, climatology and statistics.
# Regridding streams one day at a time on one core; the dask steps (assemble, climatology,
# stats) use the prepare group's CPUs (DASK_NUM_WORKERS caps dask's thread pool to them).

DATA = f"{RUN}/data"


rule regrid:
    input:
        raw_month_files,
    output:
        directory(f"{RUN}/interim/{{source}}/{{year}}.zarr"),
    wildcard_constraints:
        source="era5|glorys",
        year=r"\d{4}",
    params:
        config=CONFIG_FILE,
        digest=digest("data", "grid"),
        weights_dir=f"{RUN}/interim/weights",
    conda:
        "../../envs/data.yaml"
    log:
        f"{LOGS}/regrid/{{source}}_{{year}}.log",
    benchmark:
        f"{BENCH}/regrid/{{source}}_{{year}}.tsv"
    threads: CFG.resources.prepare.cpus
    resources:
        **CFG.resources.rule_resources("prepare"),
    shell:
        "neuralogcm regrid --config {params.config:q} --source {wildcards.source}"
        " --year {wildcards.year} --threads {threads} --weights-dir {params.weights_dir:q}"
        " --out {output:q} {input:q}"
        " > {log:q} 2>&1"


rule assemble:
    input:
        ocean=expand(f"{RUN}/interim/glorys/{{year}}.zarr", year=YEARS),
        forcing=expand(f"{RUN}/interim/era5/{{year}}.zarr", year=YEARS),
    output:
        ocean=directory(f"{DATA}/ocean.zarr"),
        forcing=directory(f"{DATA}/forcing.zarr"),
        mask=f"{DATA}/mask.nc",
    params:
        config=CONFIG_FILE,
        digest=digest("data", "grid"),
        data_dir=parent_of("mask"),
    conda:
        "../../envs/data.yaml"
    log:
        f"{LOGS}/assemble.log",
    benchmark:
        f"{BENCH}/assemble.tsv"
    threads: CFG.resources.prepare.cpus
    resources:
        **CFG.resources.rule_resources("prepare"),
    shell:
        "DASK_NUM_WORKERS={threads} neuralogcm assemble --config {params.config:q}"
        " --ocean {input.ocean:q} --forcing {input.forcing:q} --out-dir {params.data_dir:q}"
        " > {log:q} 2>&1"


rule climatology:
    input:
        ocean=f"{DATA}/ocean.zarr",
        mask=f"{DATA}/mask.nc",
    output:
        directory(f"{DATA}/climatology.zarr"),
    params:
        config=CONFIG_FILE,
        digest=digest("data", "grid"),
        data_dir=parent_of("mask"),
    conda:
        "../../envs/data.yaml"
    log:
        f"{LOGS}/climatology.log",
    benchmark:
        f"{BENCH}/climatology.tsv"
    threads: CFG.resources.prepare.cpus
    resources:
        **CFG.resources.rule_resources("prepare"),
    shell:
        "DASK_NUM_WORKERS={threads} neuralogcm climatology --config {params.config:q}"
        " --data-dir {params.data_dir:q} --out {output:q} > {log:q} 2>&1"


rule stats:
    input:
        ocean=f"{DATA}/ocean.zarr",
        forcing=f"{DATA}/forcing.zarr",
        climatology=f"{DATA}/climatology.zarr",
    output:
        f"{DATA}/stats.nc",
    params:
        config=CONFIG_FILE,
        digest=digest("data", "grid"),
        data_dir=parent_of("ocean"),
    conda:
        "../../envs/data.yaml"
    log:
        f"{LOGS}/stats.log",
    benchmark:
        f"{BENCH}/stats.tsv"
    threads: CFG.resources.prepare.cpus
    resources:
        **CFG.resources.rule_resources("prepare"),
    shell:
        "DASK_NUM_WORKERS={threads} neuralogcm stats --config {params.config:q}"
        " --data-dir {params.data_dir:q} --out {output:q} > {log:q} 2>&1"


DATA_STORES = {
    "ocean": rules.assemble.output.ocean,
    "forcing": rules.assemble.output.forcing,
    "mask": rules.assemble.output.mask,
    "climatology": rules.climatology.output[0],
    "stats": rules.stats.output[0],
}
