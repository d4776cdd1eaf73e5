"""GLORYS12 ocean reanalysis from the Copernicus Marine Service through the copernicusmarine
toolbox (2.x).

One subset per month: the five ocean variables, every day of the month, the whole globe, the
depth range spanning the configured depths (all model levels in between come along: the paper's
23 depths are a non-contiguous subset of the 50 levels, picked after opening by
sources/read.py). :mod:`neuralogcm.sources.download` retries it within the config's budget
and validates the file; the toolbox's own HTTP retries are off (:data:`TOOLBOX_ENV`).
"""

from __future__ import annotations

import base64
import binascii
import calendar
import configparser
import contextlib
import os
from pathlib import Path

from neuralogcm.config import Config
from neuralogcm.errors import CredentialsError, UserError
from neuralogcm.levels import DEPTH_TOLERANCE_M
from neuralogcm.sources.read import VARIABLES

USERNAME_ENV = "COPERNICUSMARINE_SERVICE_USERNAME"
PASSWORD_ENV = "COPERNICUSMARINE_SERVICE_PASSWORD"

#: The service and client, as error messages name them.
SERVICE = "the Copernicus Marine Service (copernicusmarine)"

#: The toolbox's HTTP retries (5 by default, with backoff) off and its limit on each request
#: (s). It reads them once, at its first import; values already in the environment win.
TOOLBOX_ENV = {"COPERNICUSMARINE_HTTPS_RETRIES": "0", "COPERNICUSMARINE_HTTPS_TIMEOUT": "60"}


def toolbox():
    """The copernicusmarine module, imported with :data:`TOOLBOX_ENV` in the environment."""
    for name, value in TOOLBOX_ENV.items():
        os.environ.setdefault(name, value)
    import copernicusmarine

    return copernicusmarine


def credentials_file() -> Path:
    """The toolbox's credentials file (written by `copernicusmarine login`), in
    $COPERNICUSMARINE_CREDENTIALS_DIRECTORY or else ~/.copernicusmarine."""
    folder = os.environ.get("COPERNICUSMARINE_CREDENTIALS_DIRECTORY") or "~/.copernicusmarine"
    return Path(folder).expanduser() / ".copernicusmarine-credentials"


def _read_credentials_file(path: Path) -> tuple[str, str]:
    """(username, password) from the toolbox's file: base64 of an INI [credentials] section."""
    parser = configparser.RawConfigParser()
    with contextlib.suppress(binascii.Error, UnicodeDecodeError, configparser.Error):
        parser.read_string(base64.standard_b64decode(path.read_bytes()).decode("utf8"))
    return (parser.get("credentials", "username", fallback=""),
            parser.get("credentials", "password", fallback=""))


def credentials() -> tuple[str, str]:
    """(username, password) from the environment, else from the toolbox's credentials file.

    They are passed to the toolbox explicitly, so it never falls back to an interactive prompt.
    Raises :class:`CredentialsError` naming both places when neither holds both.
    """
    username, password = os.environ.get(USERNAME_ENV), os.environ.get(PASSWORD_ENV)
    path = credentials_file()
    if (not username or not password) and path.is_file():
        saved_username, saved_password = _read_credentials_file(path)
        username, password = username or saved_username, password or saved_password
    if not username or not password:
        raise CredentialsError(
            "GLORYS downloads need Copernicus Marine credentials: set the environment variables "
            f"{USERNAME_ENV} and {PASSWORD_ENV}, or create the toolbox's credentials file {path} "
            "with `copernicusmarine login` (https://data.marine.copernicus.eu/register)")
    return username, password


def subset_arguments(dataset_id: str, year: int, month: int, depths) -> dict:
    """Keyword arguments of ``copernicusmarine.subset`` for one month (without the output and
    credential arguments)."""
    last = calendar.monthrange(year, month)[1]
    return {
        "dataset_id": dataset_id,
        "variables": list(VARIABLES["glorys"]),
        "minimum_longitude": -180.0,
        "maximum_longitude": 180.0,
        "minimum_latitude": -90.0,
        "maximum_latitude": 90.0,
        # every configured depth is within the tolerance of a level inside this range
        "minimum_depth": max(0.0, min(depths) - DEPTH_TOLERANCE_M),
        "maximum_depth": max(depths) + DEPTH_TOLERANCE_M,
        "start_datetime": f"{year:04d}-{month:02d}-01T00:00:00",
        "end_datetime": f"{year:04d}-{month:02d}-{last:02d}T00:00:00",
        "coordinates_selection_method": "inside",
        "file_format": "netcdf",
    }


def fetch(target: Path, cfg: Config, year: int, month: int, creds: tuple[str, str]) -> None:
    """Download one month to exactly ``target`` (one attempt; download.py does the retrying)."""
    copernicusmarine = toolbox()
    username, password = creds
    arguments = subset_arguments(cfg.data.download.glorys_dataset, year, month, cfg.data.depths)
    written = target.with_name(target.name + ".nc")  # the toolbox adds .nc to other suffixes
    try:
        response = copernicusmarine.subset(
            **arguments, username=username, password=password,
            output_directory=str(target.parent), output_filename=written.name,
            overwrite=True, disable_progress_bar=True)
        os.replace(response.file_path, target)
    except (copernicusmarine.InvalidUsernameOrPassword,
            copernicusmarine.CredentialsCannotBeNone) as err:
        raise CredentialsError(
            f"Copernicus Marine rejected the credentials from {USERNAME_ENV}/{PASSWORD_ENV} or "
            f"{credentials_file()}: {err}") from None
    except (copernicusmarine.CoordinatesOutOfDatasetBounds,
            copernicusmarine.VariableDoesNotExistInTheDataset,
            copernicusmarine.WrongDatetimeFormat) as err:
        raise UserError(f"Copernicus Marine rejected the GLORYS request for "
                        f"{year:04d}-{month:02d} ({arguments}): {err}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            written.unlink()
