"""The trend chart marks every marketing node of the real calendar: one shaded band per phase, a
dashed line and a label on the day (built as plain dicts in one layout update)."""
from __future__ import annotations

import datetime as dt

import pandas as pd

from miner.insights.calendar import load_calendar
from miner.ui import charts


def test_trend_marks_each_node_phase_line_and_label():
    nodes = [n for n in load_calendar(years=[2024], warn_missing=False)
             if n.end >= dt.date(2024, 5, 1) and n.start <= dt.date(2024, 6, 30)]
    assert {n.key for n in nodes} >= {"day520", "mid_year_618"}
    series = pd.DataFrame({"period_start": pd.date_range("2024-05-01", "2024-06-30", freq="D", tz="Asia/Shanghai"),
                           "note_count": range(61)})
    fig = charts.trend(series, nodes)

    rects = [s for s in fig.layout.shapes if s.type == "rect"]
    lines = [s for s in fig.layout.shapes if s.type == "line"]
    assert len(rects) == sum(len(n.phases) for n in nodes)
    assert sorted(pd.Timestamp(s.x0).date() for s in lines) == sorted(n.date for n in nodes)
    assert [a.text for a in fig.layout.annotations] == [charts.svg_safe(n.name_zh) for n in nodes]
    burst = next(s for s in rects if s.fillcolor == charts.PHASE_COLORS["burst"])
    assert pd.Timestamp(burst.x1) > pd.Timestamp(burst.x0)          # the band covers its last day
    assert all(s.layer == "below" for s in rects)
