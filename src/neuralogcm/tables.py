"""The paper's tables from the score CSVs, rollout stores and training histories.

Every table is written twice, as ``<out>.csv`` and as ``<out>.md`` (the same numbers under a
caption that says what they are):

- ``table2``: the paper's Table 2, models x lead days, single-number RMSE over all channels in
  normalised space.
- ``ablation``: the hybrid models (arch ``neuralogcm``) only, with their switches (physics core,
  corrector, learnable or frozen coefficients, Coriolis and pressure gradient) beside Table 2's
  cells of the same models.
- ``variables``: RMSE in physical units of SST, SSS, the surface current vector, SSH and T and S at
  the levels nearest ``evaluate.table_depths``, and ACC of SST, SSS and SSH, models x lead days.
- ``stability``: the long runs' stability per model.
- ``speed``: training seconds per step, rollout seconds per simulated day and simulated years per
  day (SYPD) per model, labelled with the machines that measured them; the physics core alone as
  the numerical-model reference.

The reference forecasts (persistence, damped persistence, climatology: reference.py) are rows
below the models wherever they are scored. In the markdown of the lead tables a model worse than
climatology at a lead is marked '†', and the leads at or after the first day on which one of a
model's start-date runs left the physical bounds show 'out of bounds (dN)' instead of a score
(the CSV keeps the numbers).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from neuralogcm.config import Config, load
from neuralogcm.errors import DataError
from neuralogcm.io import atomic_path
from neuralogcm.metrics import REFERENCES
from neuralogcm.stores import open_rollout, read_history, read_scores

log = logging.getLogger(__name__)

PHYSICS_CORE = "physics core (numerical reference)"
CLIMATOLOGY = REFERENCES["climatology"]
REFERENCE_ROWS = (
    "Reference rows, scored by the same code: 'persistence' holds the initial state; "
    "'damped persistence' multiplies the initial anomaly from the climatology by r1^tau at lead "
    "tau (r1 per channel: the lag-1 autocorrelation of the training years' daily anomalies); "
    "'climatology' forecasts the day-of-year climatology of the training years (no anomaly)."
)
WORSE = " †"  # a model worse than the climatology reference at this lead
LEGEND = (
    f"'{WORSE.strip()}': a model worse than the climatology reference at that lead (a higher "
    "RMSE, a lower ACC). "
    "'out of bounds (dN)': a lead at or after day N, the first day on which one of the model's "
    "start-date runs left the physical bounds (evaluate.bounds) or became non-finite; its score "
    "is not a forecast's and is not shown (the CSV keeps it). 'non-finite (dM)': no score, a run "
    "became non-finite on day M."
)


def _model_order(cfg: Config, models) -> list[str]:
    """Config order of the models present, then the references present."""
    present = set(models)
    return [m for m in (*cfg.models, *REFERENCES) if m in present]


def _labelled(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows renamed from score names to table names (the references' own names)."""
    return frame.rename(index=REFERENCES)


def _by_lead(rows: pd.DataFrame, cfg: Config, what: str) -> pd.DataFrame:
    """Pivot rows (model, lead, value) to models x the configured table leads."""
    leads = cfg.evaluate.leads
    wide = rows.pivot_table(index="model", columns="lead", values="value", aggfunc="first",
                            dropna=False)
    missing = [lead for lead in leads if lead not in wide.columns]
    if missing:
        raise DataError(f"the scores have no {what} at lead days {missing} (evaluate.leads)")
    wide = wide[leads].reindex(_model_order(cfg, wide.index))
    wide.columns = [f"day {lead}" for lead in leads]
    return _labelled(wide)


def _stability(scores: pd.DataFrame, cfg: Config, metrics: list[str]) -> pd.DataFrame:
    """Models x the stability ``metrics`` (rows without a lead)."""
    rows = scores[scores.metric.isin(metrics)]
    missing = set(metrics) - set(rows.metric)
    if missing:
        raise DataError(f"the scores lack {sorted(missing)}: they predate the rollout guard, "
                        "score the rollouts again (neuralogcm score)")
    wide = rows.pivot_table(index="model", columns="metric", values="value", aggfunc="first",
                            dropna=False)
    return _labelled(wide.reindex(index=_model_order(cfg, wide.index), columns=metrics))


def _day(day: float) -> str:
    return f"d{day:.0f}"


def _marked(wide: pd.DataFrame, scores: pd.DataFrame, cfg: Config,
            higher_is_better: bool = False) -> pd.DataFrame:
    """The cells of a models x leads table as text (4 significant digits) with the LEGEND's
    markers: the first day out of bounds and the first non-finite day of each model's
    start-date runs, and '†' on a model worse than the climatology row."""
    days = _stability(scores, cfg, ["first_day_out_of_bounds_starts",
                                    "first_day_nonfinite_starts"])
    clim = wide.loc[CLIMATOLOGY] if CLIMATOLOGY in wide.index else None
    text = wide.astype(object)
    for model, row in wide.iterrows():
        out, nonfinite = days.loc[model]
        for column, lead in zip(wide.columns, cfg.evaluate.leads, strict=True):
            value = row[column]
            if np.isnan(value):
                cell = f"non-finite ({_day(nonfinite)})" if np.isfinite(nonfinite) else "n/a"
            elif lead >= out:
                cell = f"out of bounds ({_day(out)})"
            else:
                cell = f"{value:.4g}"
                if clim is not None and model not in REFERENCES.values():
                    sign = -1 if higher_is_better else 1
                    cell += WORSE if sign * (value - clim[column]) > 0 else ""
            text.loc[model, column] = cell
    return text


def _describe_starts(cfg: Config) -> str:
    ev, test = cfg.evaluate, cfg.data.years.test
    years = f"{test[0]}" if test[0] == test[1] else f"{test[0]}-{test[1]}"
    return (f"start dates every {ev.start_every_days} days from 1 January {years} "
            f"(each run {ev.max_lead} days long, driven by the true forcing)")


def _rmse_norm(scores: pd.DataFrame, cfg: Config) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table 2's models x leads of the normalised RMSE, and the same as marked text cells."""
    wide = _by_lead(scores[scores.metric == "rmse_norm"], cfg, "rmse_norm")
    return wide, _marked(wide, scores, cfg)


def _rmse_norm_method(cfg: Config) -> str:
    return (
        "RMSE over all ocean channels in normalised space (each channel's error divided "
        "by its training standard deviation; mean square area-weighted by cos(latitude) over ocean "
        "cells only, averaged over channels, then over the "
        f"{_describe_starts(cfg)}, then square-rooted); lower is better. "
        f"Test years {cfg.data.years.test[0]}-{cfg.data.years.test[1]}, run '{cfg.run}'."
    )


def table2(scores: pd.DataFrame, cfg: Config) -> tuple[pd.DataFrame, str]:
    """Models x leads of the single-number normalised RMSE, and its captioned markdown."""
    wide, cells = _rmse_norm(scores, cfg)
    caption = f"Table 2: {_rmse_norm_method(cfg)} {REFERENCE_ROWS} {LEGEND}"
    return wide, f"{caption}\n\n{_markdown(cells)}"


HYBRID = "neuralogcm"  # the arch of the hybrid family, the rows of the ablation table
NOT_APPLICABLE = "—"  # a switch of the physics core in a model without one
DYNAMICS = "Coriolis + pressure gradient"


def _dynamics(options, cfg: Config) -> str:
    """'on' / 'off' / 'Coriolis only' / 'pressure gradient only': the model's own
    ``coriolis`` / ``pressure_gradient`` options where set, else the physics section's."""
    switches = []
    for key in ("coriolis", "pressure_gradient"):
        own = getattr(options, key, None)  # None: not set on the model
        switches.append(getattr(cfg.physics, key) if own is None else bool(own))
    coriolis, pressure = switches
    if coriolis and pressure:
        return "on"
    if coriolis or pressure:
        return "Coriolis only" if coriolis else "pressure gradient only"
    return "off"


def hybrid_switches(cfg: Config) -> pd.DataFrame:
    """The ablation switches of every ``models:`` entry of arch ``neuralogcm``, in config order:
    physics (yes/no), corrector (yes/no), coefficients (learnable/frozen/—) and Coriolis +
    pressure gradient (on/off/Coriolis only/pressure gradient only/—)."""
    from neuralogcm.model_options import model_options

    rows = {}
    for name, spec in cfg.models.items():
        if spec["arch"] != HYBRID:
            continue
        options = model_options(spec)
        physics = options.physics
        rows[name] = {
            "physics": "yes" if physics else "no",
            "corrector": "yes" if options.corrector else "no",
            "coefficients": ("learnable" if options.learnable_physics else "frozen") if physics
            else NOT_APPLICABLE,
            DYNAMICS: _dynamics(options, cfg) if physics else NOT_APPLICABLE,
        }
    columns = ["physics", "corrector", "coefficients", DYNAMICS]
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=columns)
    frame.index.name = "model"
    return frame


def ablation_table(scores: pd.DataFrame, cfg: Config) -> tuple[pd.DataFrame, str]:
    """The hybrid models (config order) and the reference rows: their switches, then Table 2's
    normalised RMSE at the table leads (the same cells and marks); and the captioned markdown."""
    switches = hybrid_switches(cfg)
    wide, cells = _rmse_norm(scores, cfg)
    missing = [name for name in switches.index if name not in wide.index]
    if missing:
        raise DataError(f"the scores have no rows of the hybrid models {missing} (ablation table)")
    rows = [*switches.index, *(name for name in REFERENCES.values() if name in wide.index)]
    frame = pd.concat([switches.reindex(rows), wide.loc[rows]], axis=1)
    shown = pd.concat([switches.reindex(rows), cells.loc[rows]], axis=1)
    frame.index.name = shown.index.name = "model"
    physics = cfg.physics
    models = (f"the models of arch '{HYBRID}' in config order" if len(switches) else
              f"no model of arch '{HYBRID}' is configured, only the reference rows are shown")
    caption = (
        f"Ablation of the hybrid model: {models}. "
        "Columns: 'physics': whether the model steps the differentiable physics core "
        "(models.<name>.physics; 'no': the corrector alone steps the ocean); "
        "'corrector': whether the neural corrector (encoder-decoder with an attention "
        "bottleneck) corrects each day (models.<name>.corrector; 'no': the physics core alone); "
        "'coefficients': the core's tracer diffusivity and momentum viscosity are 'learnable' "
        "(trained with the corrector) or 'frozen' at physics.kappa_init = "
        f"{physics.kappa_init:g} m^2/s and physics.viscosity_init = "
        f"{physics.viscosity_init:g} m^2/s (models.<name>.learnable_physics); "
        f"'{DYNAMICS}': the core's exact rotation and barotropic pressure gradient g grad(SSH) "
        "(models.<name>.coriolis and models.<name>.pressure_gradient where set, else "
        f"physics.coriolis = {str(physics.coriolis).lower()} and physics.pressure_gradient = "
        f"{str(physics.pressure_gradient).lower()}): 'on' when both are on, 'off' when both are "
        "off, 'Coriolis only' or 'pressure gradient only' when just one is; "
        f"'{NOT_APPLICABLE}': the model has no physics core. "
        f"The 'day N' columns, as in Table 2 (the same cells): {_rmse_norm_method(cfg)} "
        f"{REFERENCE_ROWS} {LEGEND}"
    )
    return frame, f"{caption}\n\n{_markdown(shown, text_columns=switches.shape[1])}"


def nearest_levels(depths: np.ndarray, targets: list[float]) -> list[int]:
    return sorted({int(np.argmin(np.abs(depths - t))) for t in targets})


def variable_rows(scores: pd.DataFrame, cfg: Config) -> list[tuple[str, str, str, pd.DataFrame]]:
    """(quantity, metric, units, models x leads) for the per-variable tables."""
    rmse = scores[scores.metric == "rmse"]
    depths = np.sort(rmse.loc[rmse.variable == "thetao", "depth"].unique())
    levels = nearest_levels(depths, cfg.evaluate.table_depths)

    def pick(frame, var, level=0):
        return frame[(frame.variable == var) & (frame.level == level)]

    out = []
    for var, name in (("thetao", "SST"), ("so", "SSS")):
        out.append((name, "RMSE", pick(rmse, var).units.iloc[0], _by_lead(pick(rmse, var), cfg,
                                                                            f"{name} RMSE")))
    u, v = pick(rmse, "uo"), pick(rmse, "vo")
    both = u.merge(v, on=["model", "lead"], suffixes=("_u", "_v"))
    current = both.assign(value=np.hypot(both.value_u, both.value_v))  # sqrt(ms_u + ms_v)
    out.append(("surface current (vector)", "RMSE", u.units.iloc[0],
                _by_lead(current, cfg, "surface current RMSE")))
    out.append(("SSH", "RMSE", pick(rmse, "zos").units.iloc[0],
                _by_lead(pick(rmse, "zos"), cfg, "SSH RMSE")))
    for level in levels:
        if level == 0:
            continue
        for var, name in (("thetao", "T"), ("so", "S")):
            rows = pick(rmse, var, level)
            label = f"{name} at {rows.depth.iloc[0]:.0f} m"
            out.append((label, "RMSE", rows.units.iloc[0], _by_lead(rows, cfg, f"{label} RMSE")))
    accs = scores[scores.metric == "acc"]
    for var, name in (("thetao", "SST"), ("so", "SSS"), ("zos", "SSH")):
        out.append((name, "ACC", "1", _by_lead(pick(accs, var), cfg, f"{name} ACC")))
    return out


def variables_table(scores: pd.DataFrame, cfg: Config) -> tuple[pd.DataFrame, str]:
    """All per-variable tables stacked (columns quantity, metric, units, model, day ...) and the
    markdown text (one captioned table per quantity and metric)."""
    blocks, text = [], [
        "Per-variable scores of the test-year rollouts in physical units: RMSE area-weighted by "
        "cos(latitude) over the ocean cells of each level, the mean square averaged over the "
        f"{_describe_starts(cfg)} before the square root; the surface current RMSE is that of the "
        "(u, v) vector. ACC: uncentred anomaly correlation against the day-of-year climatology "
        "of the training years, averaged over start dates (1 is perfect; the climatology "
        f"forecast, which has no anomaly, has 0). {REFERENCE_ROWS} {LEGEND}", ""]
    for quantity, metric, units, wide in variable_rows(scores, cfg):
        blocks.append(wide.reset_index().assign(quantity=quantity, metric=metric, units=units))
        cells = _marked(wide, scores, cfg, higher_is_better=metric == "ACC")
        text += [f"### {quantity}: {metric} ({units})", "", _markdown(cells), ""]
    frame = pd.concat(blocks, ignore_index=True)
    first = ["quantity", "metric", "units", "model"]
    frame = frame[first + [c for c in frame.columns if c not in first]].set_index("quantity")
    return frame, "\n".join(text)


def stability_table(scores: pd.DataFrame, cfg: Config) -> tuple[pd.DataFrame, str]:
    """Per model and reference: fraction of stable long runs, their first days out of bounds and
    non-finite, drifts of the global means, and the same for the start-date runs; and the
    captioned markdown."""
    ev = cfg.evaluate
    columns = {
        "stable_fraction": f"stable fraction ({ev.long_rollout_days}-day runs)",
        "first_day_out_of_bounds": "first day out of bounds",
        "first_day_nonfinite": "first day non-finite",
        "drift_thetao": "global-mean T drift (degC)",
        "drift_so": "global-mean S drift (1e-3)",
        "stable_fraction_starts": f"stable fraction ({ev.max_lead}-day runs)",
        "first_day_out_of_bounds_starts": f"first day out of bounds ({ev.max_lead}-day runs)",
    }
    wide = _stability(scores, cfg, list(columns))
    shown = wide.astype(object)
    for model, row in wide.iterrows():
        for metric in ("first_day_out_of_bounds", "first_day_nonfinite",
                       "first_day_out_of_bounds_starts"):
            shown.loc[model, metric] = "never" if np.isnan(row[metric]) else f"{row[metric]:.0f}"
        for metric in ("drift_thetao", "drift_so"):
            if np.isnan(row[metric]):
                day = row["first_day_nonfinite"]
                shown.loc[model, metric] = (f"non-finite ({_day(day)})" if np.isfinite(day)
                                            else "n/a")
    wide.columns = shown.columns = list(columns.values())
    bounds = ", ".join(f"{v} [{lo:g}, {hi:g}]" for v, (lo, hi) in ev.bounds.items())
    caption = (
        f"Stability of the {ev.long_rollout_days}-day runs from 1 January of each test "
        "year: a run is stable when every ocean value stays finite and within the physical bounds "
        f"({bounds}) on every day; the first day out of bounds (non-finite values count) and the "
        "first non-finite day are the earliest over the runs; 'never': no run does. "
        "Drift: forecast minus true global mean (area-weighted over the ocean cells of all "
        "levels) on the last day of the run; 'non-finite (dM)': a run became non-finite on day "
        "M. The last two columns apply the bounds test to the start-date runs. "
        f"{REFERENCE_ROWS}"
    )
    return wide, f"{caption}\n\n{_markdown(shown)}"


def train_seconds_per_step(history: pd.DataFrame, cfg: Config, path: Path) -> float:
    """Training wall seconds per optimiser step of one process: the one-day-window epochs'
    (``epoch <= train.epochs``, not the multistep fine-tuning) mean time divided by their mean
    ``steps`` (the optimiser steps of the epoch per process that ``neuralogcm train`` records).
    NaN, with a warning naming the file, for a history without steps (runs from before the
    column)."""
    one_day = history[history.epoch <= cfg.train.epochs]
    if "steps" in one_day:
        one_day = one_day[one_day["steps"] > 0]  # NaN: an epoch written without its steps
    if "steps" not in one_day or one_day.empty:
        log.warning("%s has no optimiser steps of its one-day-window epochs (a run from "
                    "before history.csv had a steps column): no training seconds per step", path)
        return np.nan
    return float(one_day["seconds"].mean() / one_day["steps"].mean())


def speed_table(rollouts: list[Path], histories: list[Path], cfg: Config
                ) -> tuple[pd.DataFrame, str]:
    """Speed per model from the rollout stores' attributes and the training histories, and the
    captioned markdown."""
    rows, reference = [], None
    for store, history_path in zip(rollouts, histories, strict=True):
        attrs = open_rollout(store).attrs
        history = read_history(history_path)
        rows.append({
            "model": attrs["model"],
            "train_seconds_per_step": train_seconds_per_step(history, cfg, history_path),
            "rollout_seconds_per_simulated_day": attrs["seconds_per_simulated_day"],
            "simulated_years_per_day": attrs["simulated_years_per_day"],
            "train_machine": history["machine"].iloc[-1] if "machine" in history
            else "not recorded",
            "rollout_machine": f"{attrs['hostname']}: {attrs['device_name']}",
        })
        if reference is None and "physics_core_seconds_per_simulated_day" in attrs:
            substeps = attrs.get("physics_core_substeps", cfg.physics.substeps)
            reference = {
                "model": PHYSICS_CORE,
                "train_seconds_per_step": np.nan,
                "rollout_seconds_per_simulated_day":
                    attrs["physics_core_seconds_per_simulated_day"],
                "simulated_years_per_day": attrs["physics_core_simulated_years_per_day"],
                "train_machine": "",
                "rollout_machine": rows[-1]["rollout_machine"],
            }
    frame = pd.DataFrame(rows + ([reference] if reference else [])).set_index("model")
    caption = (
        "Speed: training wall seconds per optimiser step (the mean one-day-window epoch time "
        "from history.csv, validation included, divided by the mean number of optimiser steps "
        f"of those epochs, batch {cfg.train.batch_size} per process, that history.csv records; "
        "empty for a run whose history has no steps column), rollout wall seconds per simulated "
        "day of one simulation (the long run alone in its batch, disk writes excluded) and "
        "simulated years per day (SYPD = 86400 / seconds per simulated day / 365), on the "
        "machines named. "
        + (f"The '{PHYSICS_CORE}' row steps the physics core alone (fixed coefficients, "
           f"{substeps} sub-steps a day) in physical units for "
           f"{cfg.evaluate.speed_days} days." if reference else
           "No model has a physics core, so there is no numerical reference row.")
    )
    return frame, f"{caption}\n\n{_markdown(frame)}"


def _markdown(frame: pd.DataFrame, text_columns: int = 0) -> str:
    """The table as markdown: numbers to 4 significant digits, empty where one is NaN; the
    first ``text_columns`` columns left-aligned, the others right-aligned."""

    def cell(value):
        if isinstance(value, float | np.floating):
            return "" if np.isnan(value) else f"{value:.4g}"
        return value

    align = ["left"] * (1 + text_columns) + ["right"] * (frame.shape[1] - text_columns)
    return frame.map(cell).to_markdown(colalign=align)


def write_table(frame: pd.DataFrame, markdown: str, out: Path) -> None:
    """Write ``out`` (.csv) and its .md sibling atomically."""
    with atomic_path(out) as tmp:
        frame.to_csv(tmp, float_format="%.6g", index=frame.index.name is not None)
    with atomic_path(out.with_suffix(".md")) as tmp:
        tmp.write_text(markdown.rstrip() + "\n")


def cli_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("table", choices=["table2", "ablation", "variables", "stability", "speed"])
    parser.add_argument("--config", required=True)
    parser.add_argument("--scores", nargs="+", type=Path, default=[], help="scores/{model}.csv")
    parser.add_argument("--rollouts", nargs="+", type=Path, default=[],
                        help="speed: rollouts/{model}.zarr")
    parser.add_argument("--histories", nargs="+", type=Path, default=[],
                        help="speed: models/{model}/history.csv, in the order of --rollouts")
    parser.add_argument("--out", required=True, type=Path, help="<name>.csv (and <name>.md)")


def cli_main(args: argparse.Namespace) -> None:
    cfg = load(args.config)
    if args.table == "speed":
        frame, markdown = speed_table(args.rollouts, args.histories, cfg)
    else:
        build = {"table2": table2, "ablation": ablation_table, "variables": variables_table,
                 "stability": stability_table}
        frame, markdown = build[args.table](read_scores(args.scores), cfg)
    write_table(frame, markdown, args.out)
    log.info("wrote %s and %s", args.out, args.out.with_suffix(".md"))
