"""Units and the parameters of the synthetic ocean's processes.

Every parameter of :mod:`neuralogcm.sources.synthetic.ocean` is a field of :class:`Processes`.
The GLORYS files' global attributes record every parameter (``synthetic_<name>``, SI units in
the name), the diffusivity as ``synthetic_tracer_diffusivity_m2_s``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

DAY = 86400.0  # s
YEAR = 365.2425  # days
KM = 1.0e3  # m


@dataclass(frozen=True)
class Processes:
    """Parameters of the synthetic ocean's processes (SI units; see
    :mod:`neuralogcm.sources.synthetic.ocean`)."""

    tracer_diffusivity_m2_s: float = 2000.0
    rho0_kg_m3: float = 1025.0
    heat_capacity_j_kg_k: float = 3990.0
    air_sea_heat_exchange_w_m2_k: float = 35.0
    mixed_layer_min_m: float = 20.0
    mixed_layer_max_m: float = 160.0
    mixed_layer_mixing_time_s: float = 3 * DAY
    surface_salinity_restoring_time_s: float = 180 * DAY
    restoring_time_s: float = 365 * DAY
    freezing_point_c: float = -1.9
    itcz_rain_m_s: float = 1.5 / (YEAR * DAY)
    storm_rain_m_s_per_kpa: float = 1.2 / (YEAR * DAY)
    marginal_sea_evaporation_m_s: float = 1.0 / (YEAR * DAY)
    thermal_expansion_1_k: float = 2.0e-4
    haline_contraction_1_psu: float = 7.6e-4
    geostrophic_depth_m: float = 400.0
    geostrophic_equatorial_latitude_deg: float = 3.0
    ekman_depth_m: float = 100.0
    ekman_equatorial_latitude_deg: float = 8.0
    air_density_kg_m3: float = 1.22
    drag_coefficient: float = 1.3e-3
    stommel_width_m: float = 250.0 * KM
    gyre_equivalent_depth_m: float = 150.0
    stommel_south_wall_deg: float = -52.0
    acc_drop_m: float = 1.0
    eddy_amplitude_m: float = 0.15
    eddy_time_s: float = 90 * DAY
    first_baroclinic_wave_speed_m_s: float = 2.8
    equatorial_current_m_s: float = 0.6
    undercurrent_m_s: float = 1.0
    coastal_taper_m: float = 300.0 * KM
    max_courant: float = 0.9

    def attributes(self) -> dict[str, float]:
        """The parameters as netCDF global attributes ``synthetic_<name>``."""
        return {f"synthetic_{k}": float(v) for k, v in asdict(self).items()}
