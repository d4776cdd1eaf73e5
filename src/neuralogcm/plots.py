"""The paper's figures (PNG) from training histories, score CSVs and rollout stores.

- ``fig3``: validation loss per epoch of every model (paper Figure 3).
- ``fig4``: SST and SSS anomalies from the day-of-year climatology on day ``evaluate.fig4_day`` of
  the long run from 1 January: truth and the models of ``evaluate.fig4_models`` side by side, land
  shaded, one colour scale per row (paper Figure 4).
- ``rmse_vs_lead``: RMSE against lead day per variable (levels nearest ``evaluate.table_depths``)
  and of the normalised all-channel RMSE, one file ``rmse_vs_lead_{variable}.png`` each; the
  reference forecasts in black and grey, a cross on each model's first day out of bounds.
- ``coefficients``: the learned physical coefficients (m^2/s) of the hybrid models over training;
  on synthetic data (the ocean store's attribute ``synthetic_tracer_diffusivity_m2_s``) the true
  tracer diffusivity as a horizontal line on the tracer-diffusivity panel.
"""

from __future__ import annotations

import argparse
import logging
import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.cm import ScalarMappable
from matplotlib.colors import ListedColormap, Normalize
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from neuralogcm.channels import CF, OCEAN
from neuralogcm.config import Config, ConfigError, load
from neuralogcm.errors import DataError
from neuralogcm.io import atomic_path
from neuralogcm.metrics import REFERENCES
from neuralogcm.stores import open_rollout, read_history, read_scores
from neuralogcm.tables import nearest_levels

log = logging.getLogger(__name__)

LEAD_PLOT_VARIABLES = (*OCEAN, "all")  # rmse_vs_lead_{variable}.png
HISTORY_COLUMNS = {"epoch", "train_loss", "valid_loss", "seconds", "steps", "machine",
                   "window_days", "lr", "physics_substeps"}
LABELS = {"so": "salinity", "uo": "eastward velocity", "vo": "northward velocity",
          "thetao": "temperature", "zos": "sea surface height",
          "all": "all channels, normalised"}


REFERENCE_STYLES = {
    "persistence": {"color": "k", "linestyle": "--", "linewidth": 1.2},
    "damped_persistence": {"color": "k", "linestyle": "-.", "linewidth": 1.2},
    "climatology": {"color": "0.5", "linestyle": ":", "linewidth": 1.6},
}


def model_styles(cfg: Config) -> dict[str, dict]:
    """One colour per model in config order, the hybrid models drawn thicker; the reference
    forecasts in black and grey, dashed, with their table names as labels."""
    colours = plt.get_cmap("tab10").colors
    styles = {name: {"color": colours[i % 10], "label": name,
                     "linewidth": 2.4 if spec["arch"] == "neuralogcm" else 1.4}
              for i, (name, spec) in enumerate(cfg.models.items())}
    return styles | {name: style | {"label": REFERENCES[name]}
                     for name, style in REFERENCE_STYLES.items()}


def _save(fig, out: Path) -> None:
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    log.info("wrote %s", out)


def _histories(paths: list[Path]) -> dict[str, pd.DataFrame]:
    """models/{name}/history.csv -> {name: history}."""
    return {Path(p).parent.name: read_history(Path(p)) for p in paths}


def fig3_validation_loss(histories: dict[str, pd.DataFrame], cfg: Config, out: Path) -> None:
    styles = model_styles(cfg)
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    windows = set()
    for name, history in histories.items():
        window = history.get("window_days", pd.Series(1, index=history.index))
        for days, stage in history.groupby(window, sort=True):
            windows.add(int(days))
            style = styles.get(name, {}) | (  # one legend entry a model
                {"label": name} if days == 1 else {"linestyle": "--", "label": "_nolegend_"})
            ax.plot(stage.epoch, stage.valid_loss, marker="o", markersize=3, **style)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("validation loss (MSE, normalised)")
    fine = sorted(w for w in windows if w > 1)
    ax.set_title(f"Validation loss per epoch (run '{cfg.run}')"
                 + (f"\ndashed: fine-tuning, validated on {' then '.join(map(str, fine))}-day "
                    "windows" if fine else ""),
                 fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    _save(fig, out)


def _surface_anomalies(rollout: xr.Dataset, day: int, climatology: dict) -> dict[str, np.ndarray]:
    """SST and SSS anomalies (H, W) of the first long run on ``day``."""
    fields = rollout["long_prediction"].isel(long_start=0).sel(day=day)
    return {var: fields.sel(channel=f"{var}_00").values - climatology[var]
            for var in ("thetao", "so")}


def fig4_anomalies(rollouts: dict[str, xr.Dataset], data_dir: Path, cfg: Config,
                   out: Path) -> None:
    from neuralogcm.dates import day_index

    day = cfg.evaluate.fig4_day
    for name, ds in rollouts.items():
        if day not in ds.indexes["day"]:
            raise DataError(f"the long run of {name} has no day {day} (evaluate.fig4_day)")
    first = next(iter(rollouts.values()))
    date = pd.Timestamp(first["long_start"].values[0]) + pd.Timedelta(days=day)
    ocean = xr.open_zarr(data_dir / "ocean.zarr")
    if date not in ocean.indexes["time"]:
        raise DataError(f"{data_dir / 'ocean.zarr'} has no truth for {date.date()} (Figure 4)")
    clim = xr.open_zarr(data_dir / "climatology.zarr").isel(
        dayofyear=int(day_index(pd.DatetimeIndex([date]))[0]))
    climatology = {v: clim[v].isel(depth=0).values for v in ("thetao", "so")}
    truth = {v: ocean[v].sel(time=date).isel(depth=0).values - climatology[v]
             for v in ("thetao", "so")}
    panels = {"truth": truth} | {
        name: _surface_anomalies(ds, day, climatology) for name, ds in rollouts.items()}
    with xr.open_dataset(data_dir / "mask.nc") as mask:
        land = ~mask["mask"].values[0].astype(bool)
    land_layer = np.ma.masked_where(~land, np.ones(land.shape))

    lon, lat = first["lon"].values, first["lat"].values
    cmap = plt.get_cmap("RdBu_r").copy()
    cmap.set_bad("black")  # non-finite values on ocean cells: a forecast that blew up
    fig, axes = plt.subplots(2, len(panels), figsize=(3.4 * len(panels) + 1.2, 4.3),
                             squeeze=False, constrained_layout=True)
    for row, (var, name) in enumerate((("thetao", "SST"), ("so", "SSS"))):
        ocean_truth = truth[var][np.isfinite(truth[var])]
        vmax = float(np.percentile(np.abs(ocean_truth), 99)) or 1.0
        for col, (title, fields) in enumerate(panels.items()):
            ax = axes[row, col]
            mesh = ax.pcolormesh(lon, lat, np.ma.masked_invalid(fields[var]), cmap=cmap,
                                 vmin=-vmax, vmax=vmax, shading="nearest")
            ax.pcolormesh(lon, lat, land_layer, cmap=ListedColormap(["0.75"]), shading="nearest")
            blown = " (black: non-finite)" if not np.isfinite(fields[var][~land]).all() else ""
            ax.set_title(f"({'I' * (row + 1)}{'abcdefgh'[col]}) {name}, {title}{blown}",
                         fontsize=9)
            ax.set_aspect("equal")
            ax.set_xticks(range(0, 361, 90))
            ax.set_yticks(range(-90, 91, 45))
            ax.tick_params(labelsize=7)
        axes[row, 0].set_ylabel("latitude (deg)", fontsize=8)
        fig.colorbar(mesh, ax=axes[row, :], shrink=0.85, extend="both",
                     label=f"{name} anomaly ({CF[var]['units']})")
    for ax in axes[-1]:
        ax.set_xlabel("longitude (deg)", fontsize=8)
    fig.suptitle(f"SST and SSS anomalies from the climatology on day {day} of the run from "
                 f"{pd.Timestamp(first['long_start'].values[0]).date()} ({date.date()})",
                 fontsize=10)
    _save(fig, out)


def rmse_vs_lead(scores: pd.DataFrame, cfg: Config, out_dir: Path) -> list[Path]:
    """One figure per variable of LEAD_PLOT_VARIABLES; returns the paths written."""
    styles = model_styles(cfg)
    out_of_bounds = scores[scores.metric == "first_day_out_of_bounds_starts"].set_index(
        "model").value
    order = {name: k for k, name in enumerate(styles)}
    scores = scores.sort_values("model", key=lambda m: m.map(order), kind="stable")
    rmse = scores[scores.metric == "rmse"]
    depths = np.sort(rmse.loc[rmse.variable == "thetao", "depth"].unique())
    levels = nearest_levels(depths, cfg.evaluate.table_depths)
    written = []
    for var in LEAD_PLOT_VARIABLES:
        if var == "all":
            panels = [("normalised RMSE, all channels", scores[scores.metric == "rmse_norm"])]
            units = "1"
        elif var == "zos":
            panels = [("surface", rmse[rmse.variable == var])]
            units = CF[var]["units"]
        else:
            panels = [(f"{depths[k]:.0f} m", rmse[(rmse.variable == var) & (rmse.level == k)])
                      for k in levels]
            units = CF[var]["units"]
        fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels) + 0.5, 3.6),
                                 squeeze=False, constrained_layout=True)
        for ax, (title, rows) in zip(axes[0], panels, strict=True):
            for name, group in rows.groupby("model", sort=False):
                style = {"label": name} | styles.get(name, {})
                ax.plot(group.lead, group.value, **style)
                out = group[group.lead == out_of_bounds.get(name)]
                ax.plot(out.lead, out.value, "x", color=style.get("color"), markersize=9)
            values = rows.value[np.isfinite(rows.value) & (rows.value > 0)]
            if len(values) and values.max() / values.min() > 30:
                ax.set_yscale("log")
                # a model that blows up leaves through the top instead of flattening the others
                worst = rows[np.isfinite(rows.value)].groupby("model").value.max()
                ax.set_ylim(top=min(values.max(), 30 * worst.median()) * 1.5)
            ax.set_title(title, fontsize=10)
            ax.set_xlabel("lead (days)")
            ax.grid(True, alpha=0.3)
        axes[0, 0].set_ylabel(f"RMSE ({units})")
        axes[0, -1].legend(fontsize=7)
        fig.suptitle(f"RMSE vs lead: {LABELS[var]} (x: first day out of bounds)", fontsize=11)
        path = out_dir / f"rmse_vs_lead_{var}.png"
        _save(fig, path)
        written.append(path)
    return written


def coefficient_columns(history: pd.DataFrame) -> dict[str, list[tuple[int | None, str]]]:
    """Learned-coefficient columns of a history (all but losses and timings) by family:
    ``kappa_03`` -> family ``kappa``, level 3; a name without a level suffix has level None."""
    families: dict[str, list[tuple[int | None, str]]] = {}
    for column in history.columns:
        if column in HISTORY_COLUMNS:
            continue
        match = re.fullmatch(r"(.+)_(\d+)", column)
        family, level = (match[1], int(match[2])) if match else (column, None)
        families.setdefault(family, []).append((level, column))
    return families


TRACER_DIFFUSIVITY = "kappa"  # the family of the tracer diffusivity (physics/core.py GROUPS)
SYNTHETIC_DIFFUSIVITY = "synthetic_tracer_diffusivity_m2_s"  # ocean.zarr attribute, synthetic data
TRUTH_STYLE = {"color": "tab:red", "linestyle": "-", "linewidth": 1.6, "alpha": 0.8, "zorder": 3}


def synthetic_diffusivity(ocean: Path | None) -> float | None:
    """The true tracer diffusivity (m^2/s) of synthetic data, from the attribute of the ocean
    store that the synthetic source writes; None for real data (no attribute) or no store."""
    if ocean is None:
        return None
    import zarr

    try:
        value = zarr.open_group(ocean, mode="r").attrs.get(SYNTHETIC_DIFFUSIVITY)
    except (OSError, ValueError, zarr.errors.BaseZarrError) as err:
        raise DataError(f"cannot read the ocean store {ocean}: {err}") from None
    return None if value is None else float(value)


def coefficients_figure(histories: dict[str, pd.DataFrame], cfg: Config, out: Path,
                        true_diffusivity: float | None = None) -> plt.Figure:
    """One panel per coefficient family; colour: depth level, line style: model. With
    ``true_diffusivity`` (m^2/s, synthetic data) a horizontal line at it on the tracer-diffusivity
    panel. Returns the (saved and closed) figure."""
    columns = {name: coefficient_columns(h) for name, h in histories.items()}
    families = sorted({f for cols in columns.values() for f in cols})
    models = [name for name in histories if columns[name]]
    dashes = dict(zip(models, ["-", "--", ":", "-."] * len(models), strict=False))
    depths = cfg.data.depths
    colour = plt.get_cmap("viridis", max(len(depths), 2))
    n = max(len(families), 1)
    fig, axes = plt.subplots(1, n, figsize=(4.3 * n + 1.2, 3.8), squeeze=False,
                             constrained_layout=True)
    for ax, family in zip(axes[0], families, strict=False):
        for name in models:
            for level, column in columns[name].get(family, []):
                ax.plot(histories[name].epoch, histories[name][column], linestyle=dashes[name],
                        marker="o", markersize=2.5, linewidth=1.4,
                        color="k" if level is None else colour(level))
        values = [histories[n][c] for n in models for _, c in columns[n].get(family, [])]
        if np.nanmax(np.concat(values)) > 10 * np.nanmin(np.concat(values)):
            ax.set_yscale("log")
        if family == TRACER_DIFFUSIVITY and true_diffusivity is not None:
            ax.axhline(true_diffusivity, **TRUTH_STYLE, gid="truth",
                       label=f"true tracer diffusivity (synthetic data), {true_diffusivity:.4g} "
                             "m$^2$ s$^{-1}$")
        ax.set_title(family, fontsize=10)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("m$^2$ s$^{-1}$")
        ax.grid(True, which="both", alpha=0.3)
    if families:
        # the line styles of the models, and on each panel with one its reference line
        handles = [Line2D([], [], color="k", linestyle=dashes[m], label=m) for m in models]
        for ax in axes[0]:
            truth = [line for line in ax.get_lines() if line.get_gid() == "truth"]
            if ax is axes[0, 0]:
                ax.legend(handles=handles + truth, fontsize=7, title="model", title_fontsize=7)
            elif truth:
                ax.legend(handles=truth, fontsize=7)
        levels = ScalarMappable(norm=Normalize(-0.5, len(depths) - 0.5), cmap=colour)
        bar = fig.colorbar(levels, ax=axes[0, :], shrink=0.9, label="depth level (m)")
        ticks = np.unique(np.linspace(0, len(depths) - 1, min(len(depths), 8)).round().astype(int))
        bar.set_ticks(ticks, labels=[f"{depths[k]:.3g}" for k in ticks])
    else:
        axes[0, 0].text(0.5, 0.5, "no model with learned physical coefficients",
                        ha="center", va="center", transform=axes[0, 0].transAxes)
        axes[0, 0].set_axis_off()
    fig.suptitle("Learned diffusion coefficients over training", fontsize=11)
    _save(fig, out)
    return fig


def cli_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("figure", choices=["fig3", "fig4", "rmse_vs_lead", "coefficients"])
    parser.add_argument("--config", required=True)
    parser.add_argument("--histories", nargs="+", type=Path, default=[],
                        help="fig3, coefficients: models/{model}/history.csv")
    parser.add_argument("--scores", nargs="+", type=Path, default=[],
                        help="rmse_vs_lead: scores/{model}.csv")
    parser.add_argument("--rollouts", nargs="+", type=Path, default=[],
                        help="fig4: rollouts/{model}.zarr of evaluate.fig4_models")
    parser.add_argument("--data-dir", type=Path, help="fig4: the data stores")
    parser.add_argument("--ocean", type=Path,
                        help=f"coefficients: ocean.zarr; its attribute {SYNTHETIC_DIFFUSIVITY} "
                             "(synthetic data) is drawn as the true tracer diffusivity")
    parser.add_argument("--out", required=True, type=Path,
                        help="the PNG file (rmse_vs_lead: the folder of its PNG files)")


def cli_main(args: argparse.Namespace) -> None:
    cfg = load(args.config)
    if args.figure == "fig3":
        fig3_validation_loss(_histories(args.histories), cfg, args.out)
    elif args.figure == "coefficients":
        coefficients_figure(_histories(args.histories), cfg, args.out,
                            synthetic_diffusivity(args.ocean))
    elif args.figure == "rmse_vs_lead":
        rmse_vs_lead(read_scores(args.scores), cfg, args.out)
    else:
        if not args.rollouts or args.data_dir is None:
            raise ConfigError("plot fig4 needs --rollouts of evaluate.fig4_models and --data-dir")
        rollouts = {Path(p).stem: open_rollout(p) for p in args.rollouts}
        fig4_anomalies(rollouts, args.data_dir, cfg, args.out)
