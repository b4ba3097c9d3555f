"""Time series: real measurements with a proper time index; missing values handled as documented."""

import numpy as np
import pandas as pd
import pytest

from dlbook import data


def test_co2_is_weekly_with_its_gaps_filled_or_kept():
    series = data.load_co2()
    assert len(series) == 2284 and series.name == "co2_ppm"
    assert series.index.freqstr == "W-SAT" and series.index.is_monotonic_increasing
    assert str(series.index[0].date()) == "1958-03-29" and str(series.index[-1].date()) == "2001-12-29"
    assert series.notna().all()
    kept = data.load_co2(missing="keep")
    assert kept.isna().sum() == 59
    # interpolation only fills gaps: measured weeks are unchanged, filled ones lie between neighbours
    measured = kept.notna()
    np.testing.assert_array_equal(series[measured], kept[measured])
    gap = np.flatnonzero(~measured.to_numpy())[0]
    assert min(kept.iloc[gap - 1], kept.iloc[gap + 1:].dropna().iloc[0]) <= series.iloc[gap]
    # the Keeling curve: rising about 1.5 ppm a year, from about 316 to about 370 ppm
    assert 314 < series.iloc[:52].mean() < 318 and 368 < series.iloc[-52:].mean() < 373
    with pytest.raises(ValueError, match="missing must be one of"):
        data.load_co2(missing="drop")


def test_sunspots_are_yearly_and_complete():
    series = data.load_sunspots()
    assert len(series) == 309 and series.notna().all()
    assert series.index[0] == pd.Timestamp("1700-01-01") and series.index[-1] == pd.Timestamp("2008-01-01")
    assert series.index.freqstr.startswith("YS")
    assert series.min() >= 0 and 150 < series.max() < 200  # the 1957 maximum: 190.2


def test_elnino_is_monthly_in_time_order():
    series = data.load_elnino()
    assert len(series) == 732 and series.notna().all() and series.index.freqstr == "MS"
    assert series.iloc[0] == pytest.approx(23.11) and series.iloc[11] == pytest.approx(21.80)
    assert series.iloc[12] == pytest.approx(24.19)  # January 1951: rows are read year by year
    # the Niño 1+2 region is warmest in March and coolest in September
    by_month = series.groupby(series.index.month).mean()
    assert by_month.idxmax() == 3 and by_month.idxmin() in (8, 9, 10)


def test_seattle_weather_is_daily_observations():
    frame = data.load_seattle_weather()
    assert frame.shape == (1461, 5) and frame.index.freqstr == "D"
    assert list(frame.columns) == ["precipitation", "temp_max", "temp_min", "wind", "weather"]
    assert (frame["temp_max"] >= frame["temp_min"]).all()
    assert set(frame["weather"].cat.categories) == {"drizzle", "fog", "rain", "snow", "sun"}
    summer = frame[frame.index.month == 7]["temp_max"].mean()
    winter = frame[frame.index.month == 1]["temp_max"].mean()
    assert summer > winter + 10  # real weather, not climate normals: and it has a season


def test_every_series_is_registered_with_a_checksum():
    for name in ("co2", "sunspots", "elnino", "seattle_weather"):
        entry = data.info(name)
        assert not entry.synthetic and "public domain" in entry.licence and entry.sha256
