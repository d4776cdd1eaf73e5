"""The embedded synthetic ocean and atmosphere, written as ERA5 and GLORYS12 monthly files.

``neuralogcm synthesize --config C --out-dir results/{run}/raw`` writes
``{out-dir}/era5/{YYYY}/{MM}.nc`` and ``{out-dir}/glorys/{YYYY}/{MM}.nc`` for every month of the
configured years, in the on-disk layouts the real services deliver
(tests/data/real/README.md), so that everything downstream runs through the same code
as a real download.

The generator shares no code with the model's physics (numpy and scipy only), is deterministic
from ``data.synthetic.seed`` and runs ``data.synthetic.spinup_days`` before the first year. The
demo (5 years, 2-degree native grids, 6 file levels) takes about 40 s on one core.

One module per part, each documenting its science:

- ``parameters``: units and ``Processes``, the ocean's parameters (recorded in the GLORYS files);
- ``planet``: the fixed planet (continents, shelves, seamounts, seas; bathymetry, land masks),
  the seasons and the reference states;
- ``atmosphere``: the analytic atmosphere (msl belts, travelling weather, winds, t2m);
- ``ocean``: the ocean (Stommel gyres, ACC, eddies, currents; T and S advected by QUICKEST,
  diffused, forced, mixed and restored);
- ``files``: the ERA5 (new CDS) and GLORYS12 (copernicusmarine toolbox) file layouts;
- ``run``: ``synthesize`` and this verb.
"""

from neuralogcm.grid import EARTH_RADIUS, GRAVITY, OMEGA
from neuralogcm.sources.synthetic.atmosphere import WEATHER_MODES, Atmosphere, AtmosphereGrid
from neuralogcm.sources.synthetic.files import (
    COMPRESSION,
    GLORYS_FILL,
    file_levels,
    grib_quantise,
    pack_int16,
    write_era5_month,
    write_glorys_month,
)
from neuralogcm.sources.synthetic.ocean import EDDY_MODES, Ocean, _stommel, wind_stress
from neuralogcm.sources.synthetic.parameters import DAY, KM, YEAR, Processes
from neuralogcm.sources.synthetic.planet import (
    bathymetry,
    coast_distance,
    continentality,
    itcz_latitude,
    marginal_seas,
    reference_sss,
    reference_sst,
    seasonal_phase,
)
from neuralogcm.sources.synthetic.run import cli_arguments, cli_main, synthesize

# The names the single-module synthetic.py offered, for its importers (tests/test_synthetic.py
# also uses _stommel and the grid constants through this package).
__all__ = [
    "COMPRESSION",
    "DAY",
    "EARTH_RADIUS",
    "EDDY_MODES",
    "GLORYS_FILL",
    "GRAVITY",
    "KM",
    "OMEGA",
    "WEATHER_MODES",
    "YEAR",
    "Atmosphere",
    "AtmosphereGrid",
    "Ocean",
    "Processes",
    "_stommel",
    "bathymetry",
    "cli_arguments",
    "cli_main",
    "coast_distance",
    "continentality",
    "file_levels",
    "grib_quantise",
    "itcz_latitude",
    "marginal_seas",
    "pack_int16",
    "reference_sss",
    "reference_sst",
    "seasonal_phase",
    "synthesize",
    "wind_stress",
    "write_era5_month",
    "write_glorys_month",
]
