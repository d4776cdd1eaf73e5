"""Dates: the one date -> climatology-day map, and dates listed as runs in messages.

Foundation: the offline pipeline (prepare/climatology.py, prepare/stats.py, prepare/store.py)
and the training-time reader (data.py) share these without importing each other.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def day_index(times) -> np.ndarray:
    """Climatology day (0..364) of each date: THE mapping of dates to climatology days.

    The day is the 0-based calendar day of a non-leap year: 1 January -> 0, 28 February -> 58,
    1 March -> 59, 31 December -> 364. In a leap year 29 February shares day 58 with
    28 February, and every later date shifts back by one (1 March -> 59, 31 December -> 364),
    so each month keeps its calendar days and the climatology has exactly 365 days.

    ``times``: anything :class:`pandas.DatetimeIndex` accepts (datetime64 array, DataArray
    values, strings); returns an int64 array of the same length.
    """
    t = pd.DatetimeIndex(np.atleast_1d(np.asarray(times)))
    doy = t.day_of_year.to_numpy().astype(np.int64) - 1  # 0-based, 0..365 in leap years
    after_feb28 = t.is_leap_year & (doy >= 59)  # 29 Feb is day 59 (0-based) of a leap year
    return np.where(after_feb28, doy - 1, doy)


def format_dates(dates: pd.DatetimeIndex, most: int = 10) -> str:
    """Dates as runs ('2019-03-01..2019-03-31 (31 days)'), at most ``most`` runs shown."""
    dates = pd.DatetimeIndex(sorted(dates))
    if len(dates) == 0:
        return "none"
    breaks = np.flatnonzero(np.diff(dates.values.astype("datetime64[D]").astype(np.int64)) != 1) + 1
    runs = []
    for run in np.split(np.arange(len(dates)), breaks):
        a, b = dates[run[0]], dates[run[-1]]
        runs.append(f"{a:%Y-%m-%d}" if a == b else f"{a:%Y-%m-%d}..{b:%Y-%m-%d} ({len(run)} days)")
    more = f" and {len(runs) - most} more gaps" if len(runs) > most else ""
    return ", ".join(runs[:most]) + more
