"""Tests for miner.insights.seasons: bins by hand, synthetic yearly / lunar / one-off / two-year
series, input checks, and the real zhihu hot-list series (高考 June, 春晚 lunar, 世界杯 not yearly)."""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from miner.config import REPO_ROOT
from miner.insights.seasons import SeasonCall, lunar_bin, seasonality_calls, solar_bin, topic_seasonality

D = dt.date.fromisoformat


def daily(start, end, rate_fn, seed=0, volume=1000):
    """A Series of Poisson counts per day with mean rate_fn(day), and a flat volume Series."""
    days = pd.date_range(start, end, freq="D")
    rng = np.random.default_rng(seed)
    counts = rng.poisson([rate_fn(d.date()) for d in days])
    return pd.Series(counts, index=days), pd.Series(volume, index=days)


def test_bins_by_hand():
    assert solar_bin(D("2025-01-01")) == 0 and solar_bin(D("2025-06-07")) == 15      # 6月上旬
    assert solar_bin(D("2025-06-11")) == 16 and solar_bin(D("2025-06-30")) == 17     # 中旬, 下旬
    assert solar_bin(D("2025-12-31")) == 35
    assert lunar_bin(D("2025-01-29")) == 0                 # 正月初一 (CNY 2025)
    assert lunar_bin(D("2025-10-06")) == 7 * 3 + 1         # 八月十五 → 八月中旬
    assert lunar_bin(D("2025-01-28")) == 35                # 除夕 (腊月廿九 in 2025)


def test_clean_yearly_peak_is_found_with_full_strength():
    """Every note of three years falls on June 1–10: the window holds 100 % of each year, so
    strength = (1 − 3/36) / (1 − 3/36) = 1, and the core is the single bin 6月上旬."""
    counts, volume = daily("2022-01-01", "2024-12-31",
                           lambda d: 5.0 if (d.month == 6 and d.day <= 10) else 0.0)
    call = topic_seasonality(counts, volume, today="2025-01-15")
    assert isinstance(call, SeasonCall)
    assert call.is_seasonal and not call.lunar
    assert call.peak_month == 6 and call.peak_window_zh == "每年6月上旬"
    assert call.strength == pytest.approx(1.0) and call.years == 3 and call.n_years == 3
    assert call.next_start == D("2025-06-01") and call.next_end == D("2025-06-10")
    assert call.p_value <= 0.01


def test_noisy_june_topic_and_steady_topic():
    counts, volume = daily("2021-01-01", "2024-12-31",
                           lambda d: 6.0 if (d.month == 6 and d.day <= 12) else 0.4, seed=1)
    call = topic_seasonality(counts, volume, today="2025-03-01")
    assert call.is_seasonal and call.peak_month == 6 and call.peak_window_zh.startswith("每年6月")
    assert call.next_start == D("2025-06-01") and call.years == 4
    steady, volume = daily("2021-01-01", "2024-12-31", lambda d: 2.0, seed=2)
    flat = topic_seasonality(steady, volume)
    assert not flat.is_seasonal and flat.next_start is None and flat.strength < 0.1


def test_lunar_new_year_topic_is_lunar_aligned():
    """Peaks on the seven days before each lunar new year (which moves between Jan 21 and Feb 20):
    the lunar alignment wins and reads 农历新年前后; the next start is before CNY 2026 (02-17)."""
    from lunar_python import Lunar

    cny = {y: D(Lunar.fromYmd(y, 1, 1).getSolar().toYmd()) for y in range(2020, 2027)}
    def rate(d):
        near = any(0 <= (c2 - d).days <= 7 for c2 in cny.values())
        return 6.0 if near else 0.2
    counts, volume = daily("2020-06-01", "2025-06-30", rate, seed=3)
    call = topic_seasonality(counts, volume, today="2025-07-01")
    assert call.is_seasonal and call.lunar and call.peak_window_zh == "农历新年前后"
    assert call.peak_month in (1, 2)
    assert D("2026-01-15") <= call.next_start <= D("2026-02-17")


def test_one_off_spike_is_not_seasonal():
    counts, volume = daily("2021-01-01", "2024-12-31",
                           lambda d: 15.0 if (d.year == 2022 and d.month == 11) else 0.3, seed=4)
    call = topic_seasonality(counts, volume)
    assert not call.is_seasonal and call.next_start is None


def test_two_years_use_the_count_test():
    """The issue's case: 20 notes in June 2024, 19 in June 2025, a few a month otherwise. With two
    years the shift null cannot go below ≈ 3/36; the count test gives a small p."""
    def rate(d):
        return 19.5 / 30 if d.month == 6 else 4.0 / 30
    counts, volume = daily("2024-01-01", "2025-12-31", rate, seed=5)
    call = topic_seasonality(counts, volume, today="2026-01-10")
    assert call.n_years == 2 and "逐年计数检验" in call.reason_zh
    assert call.is_seasonal and call.peak_month == 6 and call.p_value < 0.01
    assert call.next_start.year == 2026 and call.next_start.month == 6


def test_short_history_and_few_notes():
    counts, volume = daily("2024-01-01", "2024-10-31", lambda d: 3.0)
    assert topic_seasonality(counts, volume).reason_zh == "历史不足一年"
    few, volume = daily("2022-01-01", "2024-12-31", lambda d: 0.005, seed=6)
    assert "笔记少于" in topic_seasonality(few, volume).reason_zh


def test_dataframe_input_and_batch_equal_single():
    counts, volume = daily("2022-01-01", "2024-12-31",
                           lambda d: 5.0 if (d.month == 9 and d.day <= 20) else 0.3, seed=7)
    frame = pd.DataFrame({"topic_id": 4, "period_start": counts.index.tz_localize("Asia/Shanghai"),
                          "note_count": counts.to_numpy(), "period_notes": volume.to_numpy()})
    a = topic_seasonality(frame)
    b = topic_seasonality(counts, volume)
    batch = seasonality_calls(list(counts.index.date), np.vstack([counts.to_numpy()] * 2), volume.to_numpy())
    assert a == b == batch[0] == batch[1]
    with pytest.raises(ValueError, match="one topic"):
        topic_seasonality(pd.concat([frame, frame.assign(topic_id=5)]))
    with pytest.raises(TypeError):
        topic_seasonality([1, 2, 3])


# ---- real data: the zhihu hot list (PROVENANCE lists the known answers) ---------------------------------

def _zhihu() -> Path | None:
    for cand in (os.environ.get("MINER_SHARED_DIR"), REPO_ROOT / "shared", REPO_ROOT.parent / "shared"):
        if cand and (Path(cand) / "datasets" / "zhihu-hot-questions" / "zhihu_daily.parquet").exists():
            return Path(cand) / "datasets" / "zhihu-hot-questions" / "zhihu_daily.parquet"
    return None


@pytest.fixture(scope="module")
def zhihu():
    path = _zhihu()
    if path is None:
        pytest.skip("shared/datasets/zhihu-hot-questions not found")
    return pd.read_parquet(path, columns=["date", "title"])


@pytest.mark.parametrize("pattern, seasonal, month, lunar", [
    ("高考", True, 6, False),
    ("春晚", True, None, True),
    ("世界杯", False, None, None),
    ("奥运", False, None, None),
])
def test_zhihu_keyword_series(zhihu, pattern, seasonal, month, lunar):
    volume = zhihu.groupby("date").size()
    counts = zhihu[zhihu.title.str.contains(pattern)].groupby("date").size().reindex(volume.index, fill_value=0)
    counts.index = volume.index = pd.to_datetime(volume.index)
    call = topic_seasonality(counts, volume)
    assert call.is_seasonal == seasonal, call
    if month is not None:
        assert call.peak_month == month
    if lunar is not None:
        assert call.lunar == lunar
    if lunar:
        assert call.peak_window_zh == "农历新年前后" and call.peak_month in (1, 2)


def test_season_window_contains_or_follows_the_day():
    from miner.insights.seasons import season_window
    counts, volume = daily("2022-01-01", "2024-12-31",
                           lambda d: 5.0 if (d.month == 6 and d.day <= 10) else 0.0)
    call = topic_seasonality(counts, volume, today="2025-01-15")
    assert season_window(call, "2025-06-05") == (D("2025-06-01"), D("2025-06-10"))   # in season
    assert season_window(call, "2025-06-11") == (D("2026-06-01"), D("2026-06-10"))   # just over
    assert season_window(call, "2025-05-31") == (D("2025-06-01"), D("2025-06-10"))
    off = SeasonCall(False, None, None, False, None, 0.0, 0)
    assert season_window(off, "2025-06-05") is None
