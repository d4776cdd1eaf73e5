"""Download one month of ERA5 or GLORYS12 to its raw file: `neuralogcm download {era5|glorys}`.

Credentials are checked before any request. A transient failure (network, server error, rate
limit) is retried ``data.download.retries`` times with exponential backoff
(``data.download.backoff_s`` x 1, 2, 4 ...); the clients' own retries are off, so this is the
whole budget (each HTTP request gives up after 60 s). The file is downloaded under a temporary name,
opened and validated (sources/read.py), and only then renamed to ``--out``: a failed or invalid
download leaves nothing behind.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable
from pathlib import Path

import requests

from neuralogcm.config import Config, load
from neuralogcm.errors import CredentialsError, DataError, UserError
from neuralogcm.io import atomic_path
from neuralogcm.sources import era5, glorys
from neuralogcm.sources.read import open_month

log = logging.getLogger(__name__)

#: Source name -> module with ``credentials()`` and ``fetch(target, cfg, year, month, creds)``.
SOURCES = {"era5": era5, "glorys": glorys}

# Programming errors: retrying cannot help, and they should surface with their traceback.
_PROGRAMMING_ERRORS = (TypeError, AttributeError, NameError, ImportError, NotImplementedError)


def _http_status(err: BaseException) -> int | None:
    if isinstance(err, requests.HTTPError) and err.response is not None:
        return err.response.status_code
    return None


def is_transient(err: Exception) -> bool:
    """Whether a failed request may succeed when repeated: anything but an HTTP client error
    (4xx other than 408 timeout and 429 rate limit)."""
    status = _http_status(err)
    return status is None or status >= 500 or status in (408, 429)


def with_retries(action: Callable[[], None], *, retries: int, backoff_s: float, what: str,
                 sleep: Callable[[float], None] = time.sleep) -> None:
    """Run ``action``; repeat it after a transient failure, waiting backoff_s * 2**attempt.

    Raises :class:`DataError` naming ``what`` once the retries are used up, :class:`UserError`
    for a request the service refuses (:class:`CredentialsError` for HTTP 401); a UserError
    raised by ``action`` passes through unchanged.
    """
    waited = 0.0
    for attempt in range(retries + 1):
        try:
            action()
            return
        except (UserError, *_PROGRAMMING_ERRORS):
            raise
        except Exception as err:
            reason = f"{type(err).__name__}: {err}"
            if _http_status(err) == 401:
                raise CredentialsError(f"{what}: the service rejected the credentials: "
                                       f"{reason}") from None
            if not is_transient(err):
                raise UserError(f"{what}: the service refused the request: {reason}") from None
            if attempt == retries:
                raise DataError(f"{what}: download failed after {retries + 1} attempt(s) "
                                f"and {waited:g} s of waits (data.download.retries = {retries}, "
                                f"backoff_s = {backoff_s:g}); last error: {reason}") from None
            delay = backoff_s * 2**attempt
            waited += delay
            log.warning("%s: attempt %d of %d failed (%s); retrying in %g s", what, attempt + 1,
                        retries + 1, reason, delay)
            sleep(delay)


def download_month(source: str, cfg: Config, year: int, month: int, out: str | Path,
                   sleep: Callable[[float], None] = time.sleep) -> Path:
    """Download, validate and atomically write the raw file of one month; return ``out``."""
    module = SOURCES[source]
    creds = module.credentials()  # before any request
    dataset = getattr(cfg.data.download, f"{source}_dataset")
    what = f"{source} {year:04d}-{month:02d} ({dataset} from {module.SERVICE})"
    depths = cfg.data.depths if source == "glorys" else None
    out = Path(out)
    with atomic_path(out) as tmp:
        log.info("%s: downloading to %s", what, out)
        with_retries(lambda: module.fetch(tmp, cfg, year, month, creds),
                     retries=cfg.data.download.retries, backoff_s=cfg.data.download.backoff_s,
                     what=what, sleep=sleep)
        try:
            open_month(tmp, source, year, month, depths).close()
        except DataError as err:
            raise DataError(f"{what}: the download for {out} is invalid and was discarded: "
                            f"{err}") from None
    log.info("%s: %s validated and written", what, out)
    return out


def cli_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", choices=sorted(SOURCES))
    parser.add_argument("--config", required=True, help="config file (YAML or JSON)")
    parser.add_argument("--year", type=int, required=True)
    parser.add_argument("--month", type=int, required=True, choices=range(1, 13),
                        metavar="MM", help="1..12 (01..12)")
    parser.add_argument("--out", required=True, type=Path, help="the raw monthly netCDF file")


def cli_main(args: argparse.Namespace) -> None:
    download_month(args.source, load(args.config), args.year, args.month, args.out)
