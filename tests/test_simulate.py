"""The SIMULATED demo data: deterministic, ingestible, and with the structure it promises."""
from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from miner.config import MinerConfig
from miner.simulate import SIMULATED_LABEL, category_group, simulate, write_simulated

CATEGORIES = ["时尚/美妆护肤", "时尚/穿搭", "汽车/汽车生活", "游戏/手机游戏", "美食/美食制作", "生活/日常",
              "运动/健身", "科技/数码", "知识/科学科普", "音乐/翻唱"]


@pytest.fixture(scope="session")
def stub_notes() -> pd.DataFrame:
    """600 notes over the demo period (2023-08-19 → 10-27), ten categories, skewed likes."""
    rng = np.random.default_rng(0)
    n = 600
    start = pd.Timestamp("2023-08-19", tz="Asia/Shanghai")
    return pd.DataFrame({
        "note_id": [f"note{i:04d}" for i in range(n)],
        "published_at": start + pd.to_timedelta(rng.uniform(0, 69 * 86400, n), unit="s"),
        "category": np.array(CATEGORIES)[np.arange(n) % len(CATEGORIES)],
        "likes": rng.lognormal(8, 1.5, n).astype(int),
    })


@pytest.fixture(scope="session")
def sim(stub_notes):
    return simulate(stub_notes, n_users=1500, seed=3)


def test_deterministic_with_seed(stub_notes):
    a = simulate(stub_notes, n_users=200, seed=11)
    b = simulate(stub_notes, n_users=200, seed=11)
    for name in a.TABLES:
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    c = simulate(stub_notes, n_users=200, seed=12)
    assert not a.engagements.equals(c.engagements)


def test_tables_follow_the_schemas(sim, stub_notes):
    from miner.schema import ACTIONS, AIPS_STAGES, AUDIENCE
    e = sim.engagements
    assert set(e["action"]) <= set(ACTIONS) and set(e["note_id"]) <= set(stub_notes["note_id"])
    assert set(e["user_id"]) <= set(sim.audience["user_id"])
    published = e["note_id"].map(stub_notes.set_index("note_id")["published_at"])
    assert (e["ts"] >= published).all()                       # nobody engages before a note exists
    assert not e.duplicated(["user_id", "note_id", "action", "ts"]).any()
    assert set(sim.audience["gender"]) <= set(AUDIENCE.column("gender").allowed)
    assert set(sim.aips_stages["stage"]) <= set(AIPS_STAGES)
    assert sim.orders["order_id"].is_unique and (sim.orders["amount"] > 0).all()
    assert set(sim.spend["note_id"]) <= set(stub_notes["note_id"])
    # AIPS snapshots: weekly, from the first day
    dates = sorted(set(sim.aips_stages["date"]))
    assert all((b - a).days == 7 for a, b in zip(dates, dates[1:]))


def _group_share(sim, notes, mask) -> float:
    e = sim.engagements[sim.engagements["action"] == "impression"]
    e = e.merge(sim.audience, on="user_id")
    group = e["note_id"].map(notes.set_index("note_id")["category"]).map(category_group)
    sel = e[mask(e)]
    return float((group[sel.index] == "美妆时尚").mean()), float((group == "美妆时尚").mean()), group, e


def test_young_women_over_index_on_fashion_and_men_on_cars(sim, stub_notes):
    young_f, overall, group, e = _group_share(
        sim, stub_notes, lambda f: (f["gender"] == "F") & (f["age_band"] == "18-24"))
    assert young_f / overall > 1.3                              # TGI > 130
    men = e["gender"] == "M"
    car_m = (group[men] == "汽车出行").mean() / (group == "汽车出行").mean()
    assert car_m > 1.5


def test_festival_spikes(sim):
    e = sim.engagements
    per_day = e.groupby(e["ts"].dt.strftime("%Y-%m-%d")).size()
    golden_week = per_day.loc["2023-09-29":"2023-10-06"].mean()
    ordinary = per_day.loc["2023-09-08":"2023-09-21"].mean()
    assert golden_week > 1.2 * ordinary
    o = sim.orders
    per_day = o.groupby(o["ts"].dt.strftime("%Y-%m-%d")).size()
    presale = per_day.loc["2023-10-20":"2023-10-27"].sum() / 8
    before = per_day.loc["2023-09-08":"2023-09-21"].sum() / 14
    assert presale > 1.8 * before


def test_matched_lift_recovers_planted_truth_where_naive_fails():
    """A planted world: the matched 关联提升 recovers the simulator's true risk ratios, the naive one does not."""
    from miner.insights.audience import order_value
    from miner.simulate import simulate_planted
    world = simulate_planted(n_users=6000, n_topics=12, seed=5)
    con = duckdb.connect()
    for name in ("engagements", "audience", "orders"):
        con.register(f"_{name}", getattr(world.data, name))
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM _{name}")
    out = order_value(con, world.assignments, window=world.window, attribution_days=world.attribution_days,
                      prior_days=world.prior_days, k=1, include_unattributed=False)
    m = out.merge(world.effects, on=["topic_id", "brand"])
    null, planted = m[m["factor"] == 1.0], m[m["factor"] != 1.0]
    assert len(planted) == 6 and (planted["true_lift"] > 1.1).all()
    assert null["naive_lift"].median() > 1.3                        # active users see more and buy more
    assert abs(null["assoc_lift"].median() - 1.0) < 0.1
    rel = (planted["assoc_lift"] - planted["true_lift"]).abs() / planted["true_lift"]
    naive = (planted["naive_lift"] - planted["true_lift"]).abs() / planted["true_lift"]
    assert rel.median() < 0.25 and naive.median() > 0.4


def test_written_files_are_labelled_and_ingest_cleanly(sim, tmp_path):
    from miner.workspace import Workspace
    paths = write_simulated(sim, tmp_path / "simulated")
    assert pq.read_schema(paths["orders"]).metadata[b"miner.simulated"].decode() == SIMULATED_LABEL
    config = MinerConfig(workspace_dir=tmp_path / "ws")
    reports = Workspace(config).ingest_tables(paths, replace=True)
    assert [r.rows_rejected for r in reports] == [0] * 5
    assert [r.table_rows for r in reports] == [len(getattr(sim, name)) for name in sim.TABLES]


def test_cli_simulate_audience_metrics(stub_notes, tmp_path, monkeypatch, capsys):
    """simulate → audience → metrics through the CLI (snapshot stubbed with category topics)."""
    import json
    from types import SimpleNamespace
    import miner.topics.snapshot
    from miner.cli import main
    notes_path = tmp_path / "notes.parquet"
    stub_notes.to_parquet(notes_path)
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"workspace_dir": str(tmp_path / "ws"), "models_dir": str(tmp_path / "models")}))
    out_dir = tmp_path / "sim"
    assert main(["--config", str(cfg), "simulate", "--notes", str(notes_path), "--out", str(out_dir),
                 "--users", "400"]) == 0
    args = [f"--{flag}={out_dir / (table + '.parquet')}" for flag, table in
            [("engagements", "engagements"), ("audience", "audience"), ("aips", "aips_stages"),
             ("orders", "orders"), ("spend", "spend")]]
    assert main(["--config", str(cfg), "audience", *args]) == 0
    codes, labels = pd.factorize(stub_notes["category"])
    snap = SimpleNamespace(assignments=pd.DataFrame({"note_id": stub_notes["note_id"], "topic_id": codes}),
                           topics=pd.DataFrame({"topic_id": range(len(labels)), "label": labels}),
                           notes=stub_notes.assign(collects=1, comments=1, shares=1))
    monkeypatch.setattr(miner.topics.snapshot, "load_snapshot", lambda config, run=None: snap)
    capsys.readouterr()
    assert main(["--config", str(cfg), "metrics", "--segment", "gender=F", "--k", "20", "--top", "5"]) == 0
    text = capsys.readouterr().out
    assert "女性" in text and "渗透率" in text and "流转率" in text and "客单价" in text
    assert main(["--config", str(cfg), "metrics", "--window", "2023-09-15..2023-10-01", "--compare",
                 "2023-09-01:2023-09-15", "--brand", "柚光美妆", "--attribution-days", "7"]) == 0
    assert "上期渗透" in capsys.readouterr().out
    assert main(["--config", str(cfg), "metrics", "--segment", "gender=X"]) == 2     # clear error, no traceback
