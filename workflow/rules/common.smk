# Shared paths and helpers. Every job reads the resolved config from {RUN}/config/{digest}.json,
# one file per distinct config (its name is the digest that stores, rollouts and checkpoints
# record), written under Snakemake's lock when a run starts (onstart: never at parse time nor on
# a dry run) and never rewritten with other settings, so what a job reads cannot change under it.
# Each rule declares as a param the digest of the config entries its job reads (digest()), so
# that Snakemake reruns exactly the jobs whose settings changed.

import hashlib
import json
import os
from pathlib import Path

from neuralogcm.channels import OCEAN
from neuralogcm.config import uses_physics

RUN = f"results/{CFG.run}"
CONFIG_PATH = f"{RUN}/config/{CFG.digest()}.json"
YEARS = CFG.data.years.all()
MONTHS = [f"{m:02d}" for m in range(1, 13)]
MODELS = list(CFG.models)
LOGS = f"{RUN}/logs"
BENCH = f"{RUN}/benchmarks"


def CONFIG_FILE(wildcards, input):
    """Param `config`: the config file of this run. A function of `input`, so Snakemake leaves
    it out of the params rerun trigger (its name changes with every setting): the rule's
    `digest` param is the trigger."""
    return CONFIG_PATH


def write_config_files():
    """Write {RUN}/config/{digest}.json, and {RUN}/config.json (the latest run's settings, for
    people and slurm/train-multinode.sbatch); called by onstart, under the lock."""
    text = json.dumps(CFG.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"
    for path in (Path(CONFIG_PATH), Path(RUN, "config.json")):
        if not path.exists() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}")
            tmp.write_text(text)
            os.replace(tmp, path)


def digest(*keys, model=None):
    """Hash of the config entries a job reads: top-level sections or dotted keys ("data.years"),
    and with ``model`` its `models:` entry plus the `physics` section when the model steps the
    physics core (baselines do not rerun when the physics changes). A rule's rerun trigger."""
    dump = CFG.model_dump(mode="json")
    if model is not None:
        keys += ("physics",) if uses_physics(CFG.models[model]) else ()
        dump["model"] = dump["models"][model]
        keys += ("model",)
    entries = {}
    for key in keys:
        value = dump
        for part in key.split("."):
            value = value[part]
        entries[key] = value
    text = json.dumps(entries, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def raw_file(source, year, month):
    """Where regridding finds the raw file of one month: on disk for `local`, else under raw/."""
    if CFG.data.source == "local":
        return getattr(CFG.data.local, source).format(year=year, month=month)
    return f"{RUN}/raw/{source}/{year}/{month}.nc"


def raw_month_files(wildcards):
    return [raw_file(wildcards.source, wildcards.year, m) for m in MONTHS]


def maybe_temp(path):
    """Full-resolution raw files are removed once regridded unless data.keep_raw is set."""
    return path if CFG.data.keep_raw else temp(path)


def parent_of(name):
    """Param function: the folder of the named input or output file."""
    def folder(wildcards, input, output):
        files = dict(input.items()) | dict(output.items())
        return os.path.dirname(files[name])
    return folder


def train_launcher(wildcards, resources):
    """torchrun with one process per GPU of the job; the plain CLI on CPU."""
    if resources.gpu > 0:
        return f"torchrun --standalone --nproc-per-node={resources.gpu} -m neuralogcm.cli"
    return "neuralogcm"


def fig4_rollouts():
    """Rollout stores of the models Figure 4 shows (evaluate.fig4_models that are configured)."""
    return [f"{RUN}/rollouts/{m}.zarr" for m in CFG.evaluate.fig4_models if m in CFG.models]


def rmse_vs_lead_figures():
    """figures/rmse_vs_lead_{variable}.png for every ocean variable and the all-channel RMSE."""
    return [f"{RUN}/figures/rmse_vs_lead_{v}.png" for v in (*OCEAN, "all")]


def final_targets():
    """Everything `snakemake --cores all` builds for this run."""
    names = ("table2", "ablation", "variables", "stability", "speed", "models")
    tables = [f"{RUN}/tables/{t}.{ext}" for t in names for ext in ("csv", "md")]
    figures = [f"{RUN}/figures/fig3_validation_loss.png", f"{RUN}/figures/learned_coefficients.png",
               *rmse_vs_lead_figures()]
    if fig4_rollouts():
        figures.append(f"{RUN}/figures/fig4_anomalies_day{CFG.evaluate.fig4_day}.png")
    return tables + figures
