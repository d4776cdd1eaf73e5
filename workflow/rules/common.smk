# Shared paths and helpers. Every rule hands the package the whole resolved config
# ({CONFIG_FILE}, rewritten at parse time when it changes) and declares a digest of the config
# sections it depends on as a param, so that Snakemake reruns exactly the rules whose settings
# changed.

import hashlib
import json
import os
from pathlib import Path

from neuralogcm.channels import OCEAN

RUN = f"results/{CFG.run}"
CONFIG_FILE = f"{RUN}/config.json"
YEARS = CFG.data.years.all()
MONTHS = [f"{m:02d}" for m in range(1, 13)]
MODELS = list(CFG.models)
LOGS = f"{RUN}/logs"
BENCH = f"{RUN}/benchmarks"


def _write_config_file():
    text = json.dumps(CFG.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"
    path = Path(CONFIG_FILE)
    if not path.exists() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(text)
        os.replace(tmp, path)


_write_config_file()


def digest(*sections):
    """Hash of the named top-level config sections (a rule's rerun trigger)."""
    dump = CFG.model_dump(mode="json")
    text = json.dumps({s: dump[s] for s in sections}, sort_keys=True)
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
    names = ("table2", "variables", "stability", "speed", "models")
    tables = [f"{RUN}/tables/{t}.{ext}" for t in names for ext in ("csv", "md")]
    figures = [f"{RUN}/figures/fig3_validation_loss.png", f"{RUN}/figures/learned_coefficients.png",
               *rmse_vs_lead_figures()]
    if fig4_rollouts():
        figures.append(f"{RUN}/figures/fig4_anomalies_day{CFG.evaluate.fig4_day}.png")
    return tables + figures
