"""Downloads (sources/era5.py, glorys.py, download.py) without network: the clients are replaced
by fakes that record the request and write a file in the service's own layout."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
from pathlib import Path

import cdsapi
import copernicusmarine
import numpy as np
import pytest
import requests
import yaml
from copernicusmarine.core_functions.credentials_utils import (
    create_copernicusmarine_configuration_file,
)
from raw_formats import era5_month, glorys_month

from neuralogcm import cli
from neuralogcm.config import load
from neuralogcm.errors import CredentialsError, DataError, UserError
from neuralogcm.sources import download, era5, glorys, local
from neuralogcm.sources.read import open_month, open_raw

DEMO_CONFIG = Path(__file__).parents[1] / "config" / "config.yaml"
CREDENTIAL_ENV = ("CDSAPI_URL", "CDSAPI_KEY", "CDSAPI_RC", "COPERNICUSMARINE_SERVICE_USERNAME",
                  "COPERNICUSMARINE_SERVICE_PASSWORD", "COPERNICUSMARINE_CREDENTIALS_DIRECTORY")


@pytest.fixture(autouse=True)
def no_credentials(monkeypatch, tmp_path):
    """A home without credential files and an environment without credential variables."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in CREDENTIAL_ENV:
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def cfg_dict():
    raw = yaml.safe_load(DEMO_CONFIG.read_text())
    raw["data"]["source"] = "download"
    raw["data"]["download"] = {"retries": 2, "backoff_s": 1.5}
    return raw


@pytest.fixture
def cfg(cfg_dict):
    return load(cfg_dict)


@pytest.fixture
def cds_env(monkeypatch):
    monkeypatch.setenv("CDSAPI_URL", "https://cds.example/api")
    monkeypatch.setenv("CDSAPI_KEY", "secret-key")


@pytest.fixture
def marine_env(monkeypatch):
    monkeypatch.setenv("COPERNICUSMARINE_SERVICE_USERNAME", "ocean-user")
    monkeypatch.setenv("COPERNICUSMARINE_SERVICE_PASSWORD", "ocean-pass")


class FakeCDS:
    """Stands in for cdsapi.Client: records calls; fails with the queued errors first."""

    calls: list = []
    errors: list = []
    month = staticmethod(era5_month)

    def __init__(self, **kwargs):
        self.kwargs = kwargs

    def retrieve(self, name, request, target):
        FakeCDS.calls.append((self.kwargs, name, request, target))
        Path(target).write_bytes(b"partial download")  # what a dropped connection leaves
        if FakeCDS.errors:
            raise FakeCDS.errors.pop(0)
        FakeCDS.month(int(request["year"][0]), int(request["month"][0])).to_netcdf(target)


@pytest.fixture
def fake_cds(monkeypatch):
    monkeypatch.setattr(cdsapi, "Client", FakeCDS)
    monkeypatch.setattr(FakeCDS, "calls", [])
    monkeypatch.setattr(FakeCDS, "errors", [])
    monkeypatch.setattr(FakeCDS, "month", staticmethod(era5_month))
    return FakeCDS


def http_error(status):
    response = requests.Response()
    response.status_code = status
    return requests.HTTPError(f"{status} error", response=response)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --- request building -------------------------------------------------------------------

def test_era5_request_for_a_leap_february():
    assert era5.request(2020, 2) == {
        "product_type": ["reanalysis"],
        "variable": ["10m_u_component_of_wind", "10m_v_component_of_wind", "2m_temperature",
                     "mean_sea_level_pressure"],
        "year": ["2020"],
        "month": ["02"],
        "day": [f"{d:02d}" for d in range(1, 30)],
        "time": ["12:00"],
        "data_format": "netcdf",
        "download_format": "unarchived",
    }
    assert era5.request(2021, 2)["day"][-1] == "28" and era5.request(1993, 12)["day"][-1] == "31"
    assert era5.request(2019, 4)["month"] == ["04"] and len(era5.request(2019, 4)["day"]) == 30


def test_glorys_subset_arguments_cover_the_configured_depths():
    paper = load(Path(__file__).parents[1] / "config" / "paper.yaml")
    assert glorys.subset_arguments(paper.data.download.glorys_dataset, 2020, 2,
                                   paper.data.depths) == {
        "dataset_id": "cmems_mod_glo_phy_my_0.083deg_P1D-m",
        "variables": ["so", "uo", "vo", "thetao", "zos"],
        "minimum_longitude": -180.0,
        "maximum_longitude": 180.0,
        "minimum_latitude": -90.0,
        "maximum_latitude": 90.0,
        "minimum_depth": pytest.approx(0.484025),
        "maximum_depth": pytest.approx(643.5768),
        "start_datetime": "2020-02-01T00:00:00",
        "end_datetime": "2020-02-29T00:00:00",
        "coordinates_selection_method": "inside",
        "file_format": "netcdf",
    }


def test_subset_arguments_match_the_toolbox_signature():
    import inspect

    parameters = inspect.signature(copernicusmarine.subset).parameters
    arguments = glorys.subset_arguments("x", 2020, 1, [0.5, 10.0])
    assert set(arguments) | {"username", "password", "output_directory", "output_filename",
                             "overwrite", "disable_progress_bar"} <= set(parameters)


# --- credentials ------------------------------------------------------------------------

def test_cds_credentials_missing_names_both_places(no_credentials):
    with pytest.raises(CredentialsError) as err:
        era5.credentials()
    message = str(err.value)
    assert "CDSAPI_URL" in message and "CDSAPI_KEY" in message
    assert str(no_credentials / ".cdsapirc") in message


def test_cds_credentials_from_file_and_environment(no_credentials, monkeypatch):
    (no_credentials / ".cdsapirc").write_text("url: https://cds.example/api\nkey: abc:def\n")
    assert era5.credentials() == ("https://cds.example/api", "abc:def")
    monkeypatch.setenv("CDSAPI_KEY", "from-env")
    assert era5.credentials() == ("https://cds.example/api", "from-env")
    (no_credentials / ".cdsapirc").write_text("url: https://cds.example/api\n")  # no key
    monkeypatch.delenv("CDSAPI_KEY")
    with pytest.raises(CredentialsError):
        era5.credentials()


def test_marine_credentials_missing_names_both_places(no_credentials):
    with pytest.raises(CredentialsError) as err:
        glorys.credentials()
    message = str(err.value)
    assert "COPERNICUSMARINE_SERVICE_USERNAME" in message
    assert "COPERNICUSMARINE_SERVICE_PASSWORD" in message
    assert str(no_credentials / ".copernicusmarine" / ".copernicusmarine-credentials") in message


def test_marine_credentials_from_the_toolbox_file(no_credentials, monkeypatch):
    folder = no_credentials / ".copernicusmarine"
    # the file exactly as `copernicusmarine login` writes it
    create_copernicusmarine_configuration_file("saved-user", "saved-pass", folder, True)
    assert glorys.credentials() == ("saved-user", "saved-pass")
    monkeypatch.setenv("COPERNICUSMARINE_SERVICE_USERNAME", "env-user")
    monkeypatch.setenv("COPERNICUSMARINE_SERVICE_PASSWORD", "env-pass")
    assert glorys.credentials() == ("env-user", "env-pass")
    monkeypatch.delenv("COPERNICUSMARINE_SERVICE_PASSWORD")
    (folder / ".copernicusmarine-credentials").write_text("not base64 at all")
    with pytest.raises(CredentialsError):
        glorys.credentials()
    other = no_credentials / "elsewhere"
    other.mkdir()
    text = "[credentials]\nusername=u2\npassword=p2\n"
    (other / ".copernicusmarine-credentials").write_bytes(base64.b64encode(text.encode()))
    monkeypatch.setenv("COPERNICUSMARINE_CREDENTIALS_DIRECTORY", str(other))
    assert glorys.credentials() == ("env-user", "p2")


@pytest.mark.parametrize("source", ["era5", "glorys"])
def test_missing_credentials_stop_before_any_request(cfg, tmp_path, monkeypatch, source):
    calls = []
    monkeypatch.setattr(era5, "fetch", lambda *a: calls.append(a))
    monkeypatch.setattr(glorys, "fetch", lambda *a: calls.append(a))
    out = tmp_path / "raw" / "01.nc"
    with pytest.raises(CredentialsError):
        download.download_month(source, cfg, 2020, 1, out, sleep=calls.append)
    assert calls == [] and not out.exists()


# --- ERA5 download, retries and atomic output -------------------------------------------

def test_era5_download_writes_a_validated_file(cfg, tmp_path, cds_env, fake_cds):
    out = tmp_path / "raw" / "era5" / "2020" / "02.nc"
    download.download_month("era5", cfg, 2020, 2, out, sleep=pytest.fail)
    (kwargs, name, request, target), = fake_cds.calls
    assert kwargs["url"] == "https://cds.example/api" and kwargs["key"] == "secret-key"
    assert name == "reanalysis-era5-single-levels" and request == era5.request(2020, 2)
    assert Path(target).parent == out.parent and Path(target) != out
    assert leftovers(out.parent) == ["02.nc"]
    with open_raw(out, "era5") as ds:
        assert ds.sizes["time"] == 29 and list(ds.data_vars) == ["u10", "v10", "t2m", "msl"]


def test_transient_errors_are_retried_with_exponential_backoff(cfg, tmp_path, cds_env, fake_cds):
    fake_cds.errors = [requests.ConnectionError("connection reset"), http_error(503)]
    waits = []
    out = tmp_path / "raw" / "02.nc"
    download.download_month("era5", cfg, 2020, 2, out, sleep=waits.append)
    assert waits == [1.5, 3.0]  # backoff_s * 2**attempt
    assert len(fake_cds.calls) == 3 and leftovers(tmp_path / "raw") == ["02.nc"]
    with open_raw(out, "era5") as ds:
        assert ds.sizes["time"] == 29


def test_retries_used_up_leave_nothing(cfg, tmp_path, cds_env, fake_cds):
    fake_cds.errors = [http_error(429), requests.Timeout("read timed out"), http_error(502)]
    waits = []
    with pytest.raises(DataError, match=r"era5 2020-02 \(reanalysis-era5-single-levels from the "
                                        r"Climate Data Store \(cdsapi\)\): download failed after "
                                        r"3 attempt\(s\) and 4.5 s of waits \(data.download.retries"
                                        r" = 2, backoff_s = 1.5\); last error: HTTPError: 502"):
        download.download_month("era5", cfg, 2020, 2, tmp_path / "raw" / "02.nc",
                                sleep=waits.append)
    assert waits == [1.5, 3.0] and leftovers(tmp_path / "raw") == []


@pytest.mark.parametrize("key", ["00000000-0000-0000-0000-000000000000", "12345:legacy-key"])
@pytest.mark.filterwarnings("ignore:HTTPConnectionPool:UserWarning")  # cdsapi's news check
def test_era5_without_network_fails_within_the_configs_budget(cfg_dict, tmp_path, monkeypatch,
                                                              key):
    """The real cdsapi client (both its flavours) against a port that refuses connections: two
    attempts and one wait, not cdsapi's 500 tries 120 s apart."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("CDSAPI_URL", f"http://127.0.0.1:{port}/api")
    monkeypatch.setenv("CDSAPI_KEY", key)
    cfg_dict["data"]["download"] = {"retries": 1, "backoff_s": 7.0}
    waits = []
    with pytest.raises(DataError, match=r"Climate Data Store \(cdsapi\)\): download failed after "
                                        r"2 attempt\(s\) and 7 s of waits"):
        download.download_month("era5", load(cfg_dict), 2020, 2, tmp_path / "raw" / "02.nc",
                                sleep=waits.append)
    assert waits == [7.0] and leftovers(tmp_path / "raw") == []


def test_era5_client_retries_are_off(cfg, tmp_path, cds_env, fake_cds):
    download.download_month("era5", cfg, 2020, 2, tmp_path / "02.nc", sleep=pytest.fail)
    (kwargs, *_), = fake_cds.calls
    assert kwargs["retry_max"] == 1 and kwargs["timeout"] == era5.TIMEOUT_S


@pytest.mark.parametrize(("status", "error", "message"), [
    (400, UserError, "the service refused the request: HTTPError: 400"),
    (403, UserError, "the service refused the request: HTTPError: 403"),
    (401, CredentialsError, "the service rejected the credentials"),
])
def test_client_errors_are_not_retried(cfg, tmp_path, cds_env, fake_cds, status, error,
                                       message):
    fake_cds.errors = [http_error(status)]
    waits = []
    with pytest.raises(error, match=message):
        download.download_month("era5", cfg, 2020, 2, tmp_path / "raw" / "02.nc",
                                sleep=waits.append)
    assert waits == [] and len(fake_cds.calls) == 1 and leftovers(tmp_path / "raw") == []


@pytest.mark.parametrize(("month", "message"), [
    (lambda y, m: era5_month(y, m).isel(valid_time=slice(0, 20)), "missing: 2020-02-21"),
    (lambda y, m: era5_month(y, m).drop_vars("msl"), "variable msl is missing"),
    (lambda y, m: era5_month(y, m).assign(t2m=lambda ds: ds["t2m"] - 273.15), "variable t2m"),
])
def test_invalid_download_never_appears(cfg, tmp_path, cds_env, fake_cds, month, message):
    fake_cds.month = staticmethod(month)
    out = tmp_path / "raw" / "02.nc"
    out.parent.mkdir()
    out.write_bytes(b"previous file")
    with pytest.raises(DataError, match=f"the download for {out} is invalid and was discarded"
                                        f": .*{message}"):
        download.download_month("era5", cfg, 2020, 2, out, sleep=pytest.fail)
    assert out.read_bytes() == b"previous file" and leftovers(tmp_path / "raw") == ["02.nc"]


def test_truncated_download_is_discarded(cfg, tmp_path, cds_env, fake_cds, monkeypatch):
    def truncated(year, month):
        class Cut:
            def to_netcdf(self, target):
                era5_month(year, month).to_netcdf(target)
                data = Path(target).read_bytes()
                Path(target).write_bytes(data[: len(data) // 2])
        return Cut()

    fake_cds.month = staticmethod(truncated)
    with pytest.raises(DataError, match="cannot be read as netCDF"):
        download.download_month("era5", cfg, 2020, 2, tmp_path / "raw" / "02.nc", sleep=pytest.fail)
    assert leftovers(tmp_path / "raw") == []


# --- GLORYS download ----------------------------------------------------------------------

def subset_writing(month, calls):
    """A fake copernicusmarine.subset that records its arguments and writes ``month``."""
    def subset(**kwargs):
        calls.append(kwargs)
        path = Path(kwargs["output_directory"]) / kwargs["output_filename"]
        month.to_netcdf(path)
        return type("ResponseSubset", (), {"file_path": path})()
    return subset


def test_glorys_download_passes_credentials_and_no_prompt_options(cfg, tmp_path, marine_env,
                                                                  monkeypatch):
    calls = []
    fake_subset = subset_writing(glorys_month(2020, 2, packed=True), calls)
    monkeypatch.setattr(copernicusmarine, "subset", fake_subset)
    out = tmp_path / "raw" / "glorys" / "2020" / "02.nc"
    download.download_month("glorys", cfg, 2020, 2, out, sleep=pytest.fail)
    (kwargs,) = calls
    assert kwargs["username"] == "ocean-user" and kwargs["password"] == "ocean-pass"
    assert kwargs["overwrite"] is True and kwargs["disable_progress_bar"] is True
    assert kwargs["output_filename"].endswith(".nc")
    expected = glorys.subset_arguments("cmems_mod_glo_phy_my_0.083deg_P1D-m", 2020, 2,
                                       cfg.data.depths)
    assert {k: kwargs[k] for k in expected} == expected
    assert leftovers(out.parent) == ["02.nc"]
    with open_raw(out, "glorys") as ds:
        assert ds.sizes["time"] == 29 and ds.sizes["depth"] == 7


def test_glorys_rejected_credentials_and_retries(cfg, tmp_path, marine_env, monkeypatch):
    failures = [copernicusmarine.CouldNotConnectToAuthenticationSystem()]

    def fake_subset(**kwargs):
        path = Path(kwargs["output_directory"]) / kwargs["output_filename"]
        path.write_bytes(b"partial")
        if failures:
            raise failures.pop(0)
        raise copernicusmarine.InvalidUsernameOrPassword("wrong password")

    monkeypatch.setattr(copernicusmarine, "subset", fake_subset)
    waits = []
    with pytest.raises(CredentialsError, match="COPERNICUSMARINE_SERVICE_USERNAME"):
        download.download_month("glorys", cfg, 2020, 2, tmp_path / "raw" / "02.nc",
                                sleep=waits.append)
    assert waits == [1.5] and leftovers(tmp_path / "raw") == []


def test_glorys_retries_used_up_name_the_service(cfg, tmp_path, marine_env, monkeypatch):
    calls = []

    def offline(**kwargs):
        calls.append(kwargs)
        raise requests.ConnectionError("Failed to resolve 'stac.marine.copernicus.eu'")

    monkeypatch.setattr(copernicusmarine, "subset", offline)
    waits = []
    with pytest.raises(DataError, match=r"glorys 2020-02 \(cmems_mod_glo_phy_my_0.083deg_P1D-m "
                                        r"from the Copernicus Marine Service \(copernicusmarine\)"
                                        r"\): download failed after 3 attempt\(s\) and 4.5 s of "
                                        r"waits .*last error: ConnectionError: Failed to resolve"):
        download.download_month("glorys", cfg, 2020, 2, tmp_path / "raw" / "02.nc",
                                sleep=waits.append)
    assert len(calls) == 3 and waits == [1.5, 3.0] and leftovers(tmp_path / "raw") == []


def test_the_toolbox_is_imported_without_its_own_retries():
    """copernicusmarine reads its retry count at import: a fresh process sees ours."""
    code = ("from neuralogcm.sources import glorys; glorys.toolbox(); "
            "from copernicusmarine.core_functions import sessions; "
            "print(sessions.HTTPS_RETRIES, sessions.HTTPS_TIMEOUT)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("COPERNICUSMARINE_HTTPS")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout
    assert out.split() == ["0", "60.0"]


def test_glorys_download_with_a_missing_depth_is_discarded(cfg_dict, tmp_path, marine_env,
                                                           monkeypatch):
    cfg_dict["data"]["depths"] = [0.494025, 92.32607]  # 92.3 m is not in the tiny file
    monkeypatch.setattr(copernicusmarine, "subset", subset_writing(glorys_month(2020, 2), []))
    with pytest.raises(DataError, match=r"92.3261 m \(nearest level 47.3737 m\)"):
        download.download_month("glorys", load(cfg_dict), 2020, 2, tmp_path / "raw" / "02.nc",
                                sleep=pytest.fail)
    assert leftovers(tmp_path / "raw") == []


# --- the CLI verb -------------------------------------------------------------------------

def test_cli_download(cfg_dict, tmp_path, cds_env, fake_cds, capsys, monkeypatch):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(cfg_dict))
    out = tmp_path / "raw" / "2020" / "02.nc"
    argv = ["download", "era5", "--config", str(config), "--year", "2020", "--month", "02",
            "--out", str(out)]
    assert cli.main(argv) == 0 and out.is_file()
    assert fake_cds.calls[0][2]["month"] == ["02"]
    with open_raw(out, "era5") as ds:
        assert np.isfinite(ds["msl"].values).all()

    monkeypatch.delenv("CDSAPI_KEY")
    out.unlink()
    assert cli.main(argv) == 1 and not out.exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("neuralogcm download: error: ")
    assert "CDSAPI_URL and CDSAPI_KEY" in err[0]


# --- the local source -------------------------------------------------------------------

def test_local_source_names_pattern_and_missing_files(cfg_dict, tmp_path):
    pool = tmp_path / "pool"
    cfg_dict["data"]["source"] = "local"
    cfg_dict["data"]["local"] = {"era5": str(pool / "era5/{year}/era5_{year}{month}.nc"),
                                 "glorys": str(pool / "glorys/{year}{month}.nc")}
    cfg = load(cfg_dict)
    assert local.local_file(cfg, "glorys", 2020, 2) == pool / "glorys" / "202002.nc"
    message = local.missing_local_files(cfg)
    assert f"data.local.era5 = '{pool}/era5/{{year}}/era5_{{year}}{{month}}.nc': 60 file(s)" \
        in message
    assert f"    {pool}/glorys/201601.nc" in message and "... (60 in all)" in message

    for year in cfg.data.years.all():
        for month in range(1, 13):
            for source in ("era5", "glorys"):
                path = local.local_file(cfg, source, year, month)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
    assert local.missing_local_files(cfg) == ""
    local.local_file(cfg, "era5", 2019, 7).unlink()
    message = local.missing_local_files(cfg)
    assert "data.local.era5" in message and "1 file(s) missing:" in message
    assert f"{pool}/era5/2019/era5_201907.nc" in message and "data.local.glorys" not in message


def test_local_files_go_through_the_reader_checks(cfg_dict, tmp_path):
    cfg_dict["data"]["source"] = "local"
    cfg_dict["data"]["local"] = {"era5": str(tmp_path / "e{year}{month}.nc"),
                                 "glorys": str(tmp_path / "g{year}{month}.nc")}
    cfg = load(cfg_dict)
    good = local.local_file(cfg, "glorys", 2020, 2)
    glorys_month(2020, 2).to_netcdf(good)
    with open_month(good, "glorys", 2020, 2, cfg.data.depths) as ds:
        assert ds["depth"].values.tolist() == cfg.data.depths
    bad = local.local_file(cfg, "era5", 2020, 2)
    era5_month(2020, 2).isel(valid_time=slice(1, None)).to_netcdf(bad)
    with pytest.raises(DataError, match=f"raw era5 file {bad}: .*missing: 2020-02-01"):
        open_month(bad, "era5", 2020, 2)
