"""ERA5 surface forcing from the Copernicus Climate Data Store through cdsapi.

One request per month: the four variables of the paper at 12:00 UTC on every day of the month,
global, on ERA5's native 0.25 deg grid, delivered as one unarchived netCDF file (new-CDS layout,
see sources/read.py). :mod:`neuralogcm.sources.download` retries it within the config's budget
and validates the file; cdsapi's own retries (500 by default, up to 120 s apart) are off.
"""

from __future__ import annotations

import calendar
import os
from pathlib import Path

from neuralogcm.config import Config
from neuralogcm.errors import CredentialsError

#: The CDS names of u10, v10, t2m and msl.
CDS_VARIABLES = ("10m_u_component_of_wind", "10m_v_component_of_wind", "2m_temperature",
                 "mean_sea_level_pressure")

#: The service and client, as error messages name them.
SERVICE = "the Climate Data Store (cdsapi)"

#: s, cdsapi's limit on each HTTP request (connect and read).
TIMEOUT_S = 60


def cdsapirc_path() -> Path:
    """The cdsapi configuration file: $CDSAPI_RC, else ~/.cdsapirc (as cdsapi reads it)."""
    return Path(os.environ.get("CDSAPI_RC", Path.home() / ".cdsapirc")).expanduser()


def credentials() -> tuple[str, str]:
    """(url, key) from CDSAPI_URL/CDSAPI_KEY, else from the cdsapi configuration file.

    Raises :class:`CredentialsError` naming both places when neither holds a url and a key.
    """
    url, key = os.environ.get("CDSAPI_URL"), os.environ.get("CDSAPI_KEY")
    rc = cdsapirc_path()
    if (not url or not key) and rc.is_file():
        entries = dict(line.split(":", 1) for line in rc.read_text().splitlines() if ":" in line)
        url = url or entries.get("url", "").strip()
        key = key or entries.get("key", "").strip()
    if not url or not key:
        raise CredentialsError(
            "ERA5 downloads need Climate Data Store credentials: set the environment variables "
            f"CDSAPI_URL and CDSAPI_KEY, or write 'url: ...' and 'key: ...' lines to {rc} "
            "(https://cds.climate.copernicus.eu/how-to-api)")
    return url, key


def request(year: int, month: int) -> dict:
    """The cdsapi request for one month of the four forcing variables at 12:00 UTC."""
    days = calendar.monthrange(year, month)[1]
    return {
        "product_type": ["reanalysis"],
        "variable": list(CDS_VARIABLES),
        "year": [f"{year:04d}"],
        "month": [f"{month:02d}"],
        "day": [f"{d:02d}" for d in range(1, days + 1)],
        "time": ["12:00"],
        "data_format": "netcdf",
        "download_format": "unarchived",
    }


def fetch(target: Path, cfg: Config, year: int, month: int, creds: tuple[str, str]) -> None:
    """Download one month to exactly ``target``: one attempt, each HTTP request tried once
    (retry_max=1) and given up after :data:`TIMEOUT_S`; download.py does the retrying."""
    import cdsapi

    url, key = creds
    client = cdsapi.Client(url=url, key=key, quiet=True, progress=False, retry_max=1,
                           timeout=TIMEOUT_S)
    client.retrieve(cfg.data.download.era5_dataset, request(year, month), str(target))
