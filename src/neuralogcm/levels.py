"""GLORYS12's vertical levels: the depths (m, positive down) the ocean data can have.

Foundation: the config's ``data.depths`` validator, the GLORYS request (sources/glorys.py), the
raw-file reader (sources/read.py) and the synthetic files all use this one table and tolerance.
"""

from __future__ import annotations

#: The 50 depths (m) of GLORYS12's model levels: data.depths must be among them.
GLORYS_LEVELS = (
    0.494025, 1.541375, 2.645669, 3.819495, 5.078224, 6.440614, 7.92956, 9.572997, 11.405,
    13.46714, 15.81007, 18.49556, 21.59882, 25.21141, 29.44473, 34.43415, 40.34405, 47.37369,
    55.76429, 65.80727, 77.85385, 92.32607, 109.7293, 130.666, 155.8507, 186.1256, 222.4752,
    266.0403, 318.1274, 380.213, 453.9377, 541.0889, 643.5668, 763.3331, 902.3393, 1062.44,
    1245.291, 1452.251, 1684.284, 1941.893, 2225.078, 2533.336, 2865.703, 3220.82, 3597.032,
    3992.484, 4405.224, 4833.291, 5274.784, 5727.917,
)

#: A configured depth must match one of the file's levels within this many metres.
DEPTH_TOLERANCE_M = 0.01


def level_index(depth: float) -> int:
    """Index of the GLORYS12 level nearest ``depth`` (m)."""
    return min(range(len(GLORYS_LEVELS)), key=lambda i: abs(GLORYS_LEVELS[i] - depth))


def off_levels(depths) -> str:
    """The ``depths`` (m) farther than :data:`DEPTH_TOLERANCE_M` from every GLORYS12 level, each
    with its nearest level; empty when all are levels."""
    return ", ".join(f"{d:g} m (nearest level {GLORYS_LEVELS[i]:g} m)" for d in depths
                     if abs(GLORYS_LEVELS[i := level_index(d)] - d) > DEPTH_TOLERANCE_M)
