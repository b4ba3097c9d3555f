"""Time series: real, public-domain measurements, each returned with a proper time index.

Read from the CSV files that ``statsmodels`` and ``vega_datasets`` ship (no import of either
package's loaders, and no download), each checked against its sha256 first. Used in chapter 10.
"""

from __future__ import annotations

import pandas as pd

from dlbook.data.registry import DatasetInfo, package_file, register

CO2 = register(
    DatasetInfo(
        name="co2",
        description="Weekly mean atmospheric CO₂ at Mauna Loa, Hawaii, 1958-03-29 to 2001-12-29 "
        "(ppm); 59 of the 2,284 weeks have no measurement",
        origin="C. D. Keeling and T. P. Whorf (2004), SIO flask and continuous records, CDIAC, as "
        "shipped in statsmodels 0.15.0 (statsmodels/datasets/co2/co2.csv)",
        licence="public domain (statsmodels: BSD-3-Clause)",
        sha256={"co2.csv": "16695fa2786e53414e5a6b54767a3fdf5de99cfbc68617f69d1362d92776a92f"},
        size="2,284 weeks",
    )
)
SUNSPOTS = register(
    DatasetInfo(
        name="sunspots",
        description="Yearly mean sunspot number, 1700–2008",
        origin="NOAA National Geophysical Data Center, as shipped in statsmodels 0.15.0 "
        "(statsmodels/datasets/sunspots/sunspots.csv)",
        licence="public domain (statsmodels: BSD-3-Clause)",
        sha256={"sunspots.csv": "f67889b1d9002cd5227f0e0ef54e35b419cdd85a31279adef6f73fb41e5c0a9b"},
        size="309 years",
    )
)
ELNINO = register(
    DatasetInfo(
        name="elnino",
        description="Monthly mean sea-surface temperature of the Niño 1+2 region (0–10° S, "
        "90–80° W), 1950–2010, °C",
        origin="NOAA ERSST v3b, as shipped in statsmodels 0.15.0 "
        "(statsmodels/datasets/elnino/elnino.csv)",
        licence="public domain (statsmodels: BSD-3-Clause)",
        sha256={"elnino.csv": "b647be00e0fd264be9764e317e6b963f35030014ecca2b21b204521716e463ad"},
        size="732 months",
    )
)
SEATTLE_WEATHER = register(
    DatasetInfo(
        name="seattle_weather",
        description="Daily weather at Seattle, 2012-01-01 to 2015-12-31: precipitation (mm), "
        "maximum and minimum temperature (°C), wind (m/s) and a weather label",
        origin="NOAA daily observations (Seattle-Tacoma), as shipped in vega_datasets 0.9.0 "
        "(vega_datasets/_data/seattle-weather.csv)",
        licence="public domain (NOAA); vega_datasets is MIT",
        sha256={"seattle-weather.csv":
                "62f0609f787158128aa2bd102967173a4953122dd4f872bf1d502cae1037df0b"},
        size="1,461 days",
    )
)

MISSING_CHOICES = ("interpolate", "keep")


def load_co2(missing: str = "interpolate") -> pd.Series:
    """Weekly Mauna Loa CO₂ in ppm, indexed by the week's date (a Saturday), 2,284 weeks.

    59 weeks have no measurement. ``missing="interpolate"`` (the default) fills each gap linearly
    in time between its neighbours, which is how the series is usually analysed and what a
    forecasting window needs; ``missing="keep"`` leaves them as NaN.
    """
    if missing not in MISSING_CHOICES:
        raise ValueError(f"missing must be one of {MISSING_CHOICES}, got {missing!r}")
    with package_file("statsmodels.datasets.co2", "co2.csv", CO2.sha256["co2.csv"]) as path:
        table = pd.read_csv(path, dtype={"date": str})
    index = pd.DatetimeIndex(pd.to_datetime(table["date"], format="%Y%m%d"), freq="W-SAT",
                             name="week")
    series = pd.Series(table["co2"].to_numpy(), index=index, name="co2_ppm")
    return series.interpolate(method="time") if missing == "interpolate" else series


def load_sunspots() -> pd.Series:
    """Yearly mean sunspot number, 1700–2008 (309 values, none missing), indexed by year start."""
    with package_file("statsmodels.datasets.sunspots", "sunspots.csv",
                      SUNSPOTS.sha256["sunspots.csv"]) as path:
        table = pd.read_csv(path)
    index = pd.DatetimeIndex(pd.to_datetime(table["YEAR"].astype(str), format="%Y"), freq="YS",
                             name="year")
    return pd.Series(table["SUNACTIVITY"].to_numpy(), index=index, name="sunspot_number")


def load_elnino() -> pd.Series:
    """Monthly Niño 1+2 sea-surface temperature in °C, 1950-01 to 2010-12 (732 values, none missing).

    The shipped table has one row per year and one column per month; this returns it as one
    series in time order, indexed by the first day of each month.
    """
    with package_file("statsmodels.datasets.elnino", "elnino.csv",
                      ELNINO.sha256["elnino.csv"]) as path:
        table = pd.read_csv(path)
    months = table.columns[1:]
    values = table[months].to_numpy().reshape(-1)  # row by row: January … December of each year
    start = f"{int(table['YEAR'].iloc[0])}-01-01"
    index = pd.date_range(start, periods=len(values), freq="MS", name="month")
    return pd.Series(values, index=index, name="sea_surface_temperature_c")


def load_seattle_weather() -> pd.DataFrame:
    """Daily Seattle weather 2012–2015 (1,461 days, none missing), indexed by date.

    Columns: ``precipitation`` (mm), ``temp_max`` and ``temp_min`` (°C), ``wind`` (m/s) and
    ``weather`` (a category: sun, fog, rain, drizzle, snow).
    """
    with package_file("vega_datasets", "_data/seattle-weather.csv",
                      SEATTLE_WEATHER.sha256["seattle-weather.csv"]) as path:
        table = pd.read_csv(path)
    index = pd.DatetimeIndex(pd.to_datetime(table.pop("date"), format="%Y/%m/%d"), freq="D",
                             name="date")
    table.index = index
    table["weather"] = table["weather"].astype("category")
    return table
