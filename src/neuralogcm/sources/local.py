"""The `local` source: raw monthly files already on disk (a shared data pool on a cluster).

They are found through the config patterns ``data.local.era5`` and ``data.local.glorys``, with
``{year}`` and ``{month}`` (01..12) in them, in either real layout. Nothing is downloaded or
copied: regridding reads them through :func:`neuralogcm.sources.read.open_month`, the reader and
checks that every downloaded file goes through.
"""

from __future__ import annotations

from pathlib import Path

from neuralogcm.config import Config

SHOWN = 12  # missing files listed per source; the rest are counted


def local_file(cfg: Config, source: str, year: int, month: int) -> Path:
    """The file of one month of ``source`` ("era5" or "glorys") under its config pattern."""
    return Path(getattr(cfg.data.local, source).format(year=year, month=f"{month:02d}"))


def missing_local_files(cfg: Config) -> str:
    """A message naming each config key, its pattern and the files of the configured years it
    does not find on disk; empty when every file is there."""
    lines = []
    for source in ("era5", "glorys"):
        missing = [path for year in cfg.data.years.all() for month in range(1, 13)
                   if not (path := local_file(cfg, source, year, month)).is_file()]
        if missing:
            lines.append(f"data.local.{source} = {getattr(cfg.data.local, source)!r}: "
                         f"{len(missing)} file(s) missing:")
            lines += [f"    {path}" for path in missing[:SHOWN]]
            if len(missing) > SHOWN:
                lines.append(f"    ... ({len(missing)} in all)")
    return "local source: raw files not found on disk\n" + "\n".join(lines) if lines else ""
