"""The CLI's metrics tables: hidden cells read "<k", never "None"; lifts carry intervals and wording."""
from __future__ import annotations

import pandas as pd

from miner.cli.audience import render_metrics
from miner.insights.audience import topic_metrics_table
from test_audience import ASSIGNMENTS, NOTES, SPEND, make_con

TOPICS = pd.DataFrame({"topic_id": [0, 1], "label": ["美妆·平价", "汽车·露营"]})


def _table(k, **kw):
    con = make_con()
    con.register("_s", SPEND)
    con.execute("CREATE TABLE spend AS SELECT * FROM _s")
    return topic_metrics_table(con, ASSIGNMENTS, topics=TOPICS, notes=NOTES, k=k, **kw)


def _line(text: str, start: str, section: str) -> str:
    block = text[text.index(section):]
    return next(line for line in block.splitlines() if line.startswith(start))


def test_hidden_cells_read_less_than_k_and_never_none():
    text = render_metrics(_table(2, brand="B1", include_unattributed=True), k=2)
    assert "None" not in text and "nan" not in text
    topic1 = _line(text, "[1] 汽车", "订单价值").split()
    # topic 1 has 1 touched user and 1 buyer (< 2): every order cell is "<2"
    assert topic1[2:] == ["<2"] * 10
    topic0 = _line(text, "[0] 美妆", "订单价值")
    assert "¥200" in topic0 and "1.50x [0.59–3.79] 不显著" in topic0      # interval contains 1: flagged
    un = _line(text, "未归因", "订单价值").split()
    assert un[2:7] == ["—", "4", "4.0", "¥310", "43.7%"]      # money no topic touched, own row (no reach)
    assert "品牌GMV ¥710" in text


def test_one_block_per_brand_and_plain_dash_without_k():
    text = render_metrics(_table(1))
    assert "== 品牌 brand: B1 ==" in text and "== 品牌 brand: B2 ==" in text
    assert "<" not in text.replace("<1", "") and "None" not in text
    b2 = text[text.index("品牌 brand: B2"):]
    assert "¥500" in _line(b2, "[0] 美妆", "订单价值")                     # B2's order, not pooled into B1
    assert "关联提升" in text and "转化提升" not in text
