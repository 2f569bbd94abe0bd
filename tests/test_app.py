"""Streamlit app under AppTest: every page renders on a small demo workspace and its widgets matter.

The session fixture starts from a workspace holding only a slice of the demo notes (20 per
category) and lets the overview page build the rest exactly as on a first start: topic snapshot
with the fast ``hashing`` embedder, then the SIMULATED audience tables.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from miner.config import MinerConfig
from miner.topics.snapshot import latest_run_id

REPO = Path(__file__).resolve().parent.parent
DEMO_NOTES = REPO / "data" / "demo" / "notes.parquet"
PAGES = {
    "pages/overview.py": "总览",
    "pages/topic_detail.py": "话题详情",
    "pages/search.py": "选题搜索",
    "pages/brief.py": "内容简报",
    "pages/curation.py": "话题管理",
    "pages/data.py": "数据管理",
}
TIMEOUT = 180


def workspace_env(root: Path) -> dict[str, str]:
    return {"MINER_MODELS_DIR": str(root / "models"), "MINER_WORKSPACE_DIR": str(root / "workspace"),
            "MINER_EMBEDDING_MODEL": "hashing", "MINER_N_TOPICS": "12"}


def use_workspace(mp: pytest.MonkeyPatch, root: Path) -> MinerConfig:
    """Point the app (which reads MINER_* variables) at ``root`` until ``mp`` is undone."""
    for key, value in workspace_env(root).items():
        mp.setenv(key, value)
    return MinerConfig.load()


def seed_notes(root: Path, config: MinerConfig, per_category: int = 20) -> None:
    """Ingest a slice of the demo corpus (every category, its whole date range) into the workspace."""
    from miner.ingest import ingest_file
    from miner.schema import NOTES
    notes = pd.read_parquet(DEMO_NOTES)
    small = notes.groupby("category", sort=False).head(per_category)
    root.mkdir(parents=True, exist_ok=True)
    small.to_parquet(root / "notes_small.parquet", index=False)
    ingest_file(root / "notes_small.parquet", NOTES, config)


def run_page(path: str, **state) -> AppTest:
    at = AppTest.from_file(str(REPO / path), default_timeout=TIMEOUT)
    for key, value in state.items():
        at.session_state[key] = value
    return at.run()


def assert_ok(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]
    assert not [e.value for e in at.error]


@pytest.fixture(scope="session")
def _app_workspace_root(tmp_path_factory) -> Path:
    """A first start through the app itself: notes only → overview page builds the rest."""
    root = tmp_path_factory.mktemp("app-workspace")
    with pytest.MonkeyPatch.context() as mp:
        config = use_workspace(mp, root)
        seed_notes(root, config)
        assert latest_run_id(config) is None
        at = run_page("pages/overview.py")
        assert_ok(at)
    return root


@pytest.fixture
def app_workspace(_app_workspace_root, monkeypatch) -> MinerConfig:
    """The session's app workspace; its MINER_* variables are set for this test only."""
    return use_workspace(monkeypatch, _app_workspace_root)


@pytest.fixture
def workspace_copy(app_workspace, tmp_path, monkeypatch):
    """A private copy of the session workspace for tests that write (ingest, rebuild)."""
    root = tmp_path / "ws"
    shutil.copytree(Path(app_workspace.models_dir).parent, root)
    return use_workspace(monkeypatch, root)


def _topic_ids(config) -> list[int]:
    from miner.topics.snapshot import load_snapshot
    return [int(t) for t in load_snapshot(config).topics["topic_id"]]


def _label(config, topic_id: int) -> str:
    from miner.topics.snapshot import load_snapshot
    topics = load_snapshot(config).topics
    return str(topics.loc[topics["topic_id"] == topic_id, "label"].iloc[0])


# ---- every page ----------------------------------------------------------------------------------
def test_first_start_built_snapshot_and_audience(app_workspace):
    from miner.workspace import Workspace
    assert latest_run_id(app_workspace) is not None
    assert Workspace(app_workspace).missing_tables() == []


@pytest.mark.parametrize("path", list(PAGES))
def test_page_renders_alone(app_workspace, path):
    at = run_page(path)
    assert_ok(at)
    assert PAGES[path] in at.title[0].value
    assert latest_run_id(app_workspace) in at.sidebar.code[0].value
    assert "SIMULATED" in at.sidebar.warning[0].value      # demo audience data is labelled as such


def test_router_opens_overview_and_switches_pages(app_workspace):
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=TIMEOUT).run()
    assert_ok(at)
    assert "总览" in at.title[0].value
    for path, title in PAGES.items():
        at.switch_page(path).run()
        assert_ok(at)
        assert title in at.title[0].value


def test_password_gate(app_workspace, monkeypatch):
    monkeypatch.setenv("MINER_APP_PASSWORD", "s3cret")
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=TIMEOUT).run()
    assert not at.metric                                   # nothing behind the gate is drawn
    at.text_input(key="auth.password").input("wrong")
    at.button[0].click().run()
    assert "密码错误" in at.error[0].value
    at.text_input(key="auth.password").input("s3cret")
    at.button[0].click().run()
    assert_ok(at)
    assert "总览" in at.title[0].value


# ---- overview --------------------------------------------------------------------------------------
def test_overview_kpis_and_table(app_workspace):
    at = run_page("pages/overview.py")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["笔记数"] == "1,725"
    table = at.dataframe[0].value
    assert int(metrics["话题数"]) == len(table) > 0
    assert {"label", "stage_zh", "score", "growth_pct", "penetration", "attributed_gmv", "assoc_lift_text"} <= set(table.columns)
    clear = table[~table["is_mixed"]]
    assert clear["score"].is_monotonic_decreasing             # default sort: opportunity
    assert list(table["is_mixed"]) == sorted(table["is_mixed"])   # 混合话题 after every clear topic
    assert len(at.get("plotly_chart")) == 1                   # the topic map


def test_overview_category_filter_changes_table(app_workspace):
    at = run_page("pages/overview.py")
    before = at.dataframe[0].value
    category = at.selectbox(key="overview.category").options[1]
    at.selectbox(key="overview.category").select(category).run()
    assert_ok(at)
    after = at.dataframe[0].value
    assert int(at.metric[0].value.replace(",", "")) == 20      # notes of one category
    assert after["notes"].sum() < before["notes"].sum()


def test_overview_empty_filter_says_so(app_workspace):
    from miner.topics.snapshot import load_snapshot
    notes = load_snapshot(app_workspace).notes
    day = pd.to_datetime(notes["published_at"]).dt.tz_convert("Asia/Shanghai").dt.date
    first = day.min()
    empty = sorted(set(notes["category"]) - set(notes.loc[day == first, "category"]))[0]
    at = AppTest.from_file(str(REPO / "pages/overview.py"), default_timeout=TIMEOUT)
    at.session_state["overview.dates"] = (first, first)
    at.session_state["overview.category"] = empty
    at.session_state["overview.segment"] = "gender=M"
    at.run()
    assert_ok(at)
    assert at.metric[0].value == "0"
    assert "没有话题" in at.info[0].value


def test_overview_sort_and_segment(app_workspace):
    at = run_page("pages/overview.py")
    all_users = at.dataframe[0].value.set_index("topic_id")["penetration"]
    at.selectbox(key="overview.sort").select("归因 GMV").run()
    shown = at.dataframe[0].value
    gmv = shown.loc[~shown["is_mixed"], "attributed_gmv"]
    assert gmv.dropna().is_monotonic_decreasing and gmv.notna().any()
    at.selectbox(key="overview.segment").select("gender=F,age_band=18-24").run()
    assert_ok(at)
    segment = at.dataframe[0].value.set_index("topic_id")["penetration"]
    assert not segment.reindex(all_users.index).equals(all_users)
    assert "女性·18-24岁" in [m.value for m in at.metric]


def test_overview_node_narrows_window(app_workspace):
    at = run_page("pages/overview.py")
    offered = at.selectbox(key="overview.node").options
    assert any(o.startswith("七夕 2023") for o in offered), offered   # the demo spans 七夕/中秋/国庆 2023
    notes_all = int(at.metric[0].value.replace(",", ""))
    at.selectbox(key="overview.node").set_value("qixi:2023").run()
    assert_ok(at)
    assert "节点 七夕 2023" in " ".join(c.value for c in at.caption)
    assert int(at.metric[0].value.replace(",", "")) < notes_all     # window = 七夕's 蓄水 → 返场


# ---- topic detail ------------------------------------------------------------------------------------
def test_topic_detail_sections_and_suppression(app_workspace):
    at = run_page("pages/topic_detail.py")
    labels = [m.label for m in at.metric]
    assert {"笔记数", "生命周期", "归因 GMV", "客单价 AOV", "关联提升"} <= set(labels)
    assert len(at.get("plotly_chart")) >= 3                 # trend, AIPS funnel, city tiers
    grid = next(d.value for d in at.dataframe if "女性" in d.value.columns)   # age × gender penetration
    cells = grid.to_numpy().ravel().tolist()
    assert "<50 人，已隐藏" in cells                          # gender 'U' cells are below k
    assert any(c.endswith("%") for c in cells)
    # representative notes are drawn as plain text (st.text), never through markdown
    from miner.topics.snapshot import load_snapshot
    snap = load_snapshot(app_workspace)
    topic = snap.topics.set_index("topic_id").loc[at.session_state["detail.topic"]]
    titles = snap.notes.set_index("note_id").loc[list(topic["representative_note_ids"]), "title"]
    texts = [t.value for t in at.text]
    markdown = " ".join(m.value for m in at.markdown) + " ".join(c.value for c in at.caption)
    for title in filter(None, titles):
        assert any(t.startswith(title[:30]) for t in texts)
        assert title[:30] not in markdown


def test_topic_detail_scorecard_and_tgi(app_workspace):
    at = run_page("pages/topic_detail.py")
    assert_ok(at)
    assert any(m.value.startswith("#### 极光指标") for m in at.markdown)
    assert len(at.get("plotly_chart")) >= 4                 # trend, 极光 radar, AIPS funnel, city tiers
    card = next(d.value for d in at.dataframe if "象限" in d.value.columns)
    assert set(card["象限"]) == {"认知", "内容积累", "人群渗透", "口碑激发"}
    assert card["话题间百分位"].dropna().between(0, 100).all()
    tgi = next(d.value for d in at.dataframe if "TGI" in d.value.columns)
    assert len(tgi) and (tgi["互动用户"] >= MinerConfig().k_anonymity).all()     # k-anonymity: no small cell
    assert tgi["TGI"].is_monotonic_decreasing


def test_topic_detail_topic_and_segment_change_content(app_workspace):
    at = run_page("pages/topic_detail.py")
    first = at.session_state["detail.topic"]
    other = next(t for t in _topic_ids(app_workspace) if t != first)
    at.selectbox(key="detail.topic").select(other).run()
    assert at.subheader[0].value.startswith(f"#{other} ")
    at.selectbox(key="detail.segment").select("gender=M").run()
    assert_ok(at)
    assert any("男性" in m.label for m in at.metric)


# ---- search ------------------------------------------------------------------------------------------
def test_search_returns_ranked_ideas(app_workspace):
    at = run_page("pages/search.py")
    assert "输入关键词" in at.info[0].value
    at.text_input(key="search.query").input("手机 拍照").run()
    assert_ok(at)
    results = [m.value for m in at.markdown if "-badge[" in m.value]
    assert 1 <= len(results) <= 8
    assert all(r.startswith((":green-badge[强匹配]", ":gray-badge[弱匹配]")) for r in results)
    assert any("推荐理由" in t.value for t in at.text)
    assert any(c.value.startswith(("找到", "以下是最接近的")) for c in at.caption)
    at.slider(key="search.k").set_value(3).run()
    assert len([m for m in at.markdown if "-badge[" in m.value]) == 3


def test_any_page_view_starts_fitting_the_searcher_in_the_background(app_workspace):
    from miner.insights.search import TopicSearcher
    from miner.topics.snapshot import latest_run_id
    from miner.ui import loaders
    loaders._searcher_loading.clear()
    assert_ok(run_page("pages/data.py"))           # not the search page: page_setup starts the warm-up
    snapshots_dir, run_id = str(app_workspace.snapshots_dir), latest_run_id(app_workspace)
    future = loaders._searcher_loading(snapshots_dir, run_id, None)   # the started one (None would fail)
    assert isinstance(future.result(timeout=120), TopicSearcher)
    assert loaders.searcher(snapshots_dir, run_id) is future.result()    # the search page reuses it


def test_search_punctuation_only_query_says_so(app_workspace):
    at = run_page("pages/search.py")
    at.text_input(key="search.query").input("！！？？").run()
    assert_ok(at)
    assert at.warning and not [m for m in at.markdown if "-badge[" in m.value]


def test_search_example_button_fills_query(app_workspace):
    at = run_page("pages/search.py")
    at.button(key="search.example.1").click().run()
    assert_ok(at)
    assert at.text_input(key="search.query").value == "猫咪 日常"
    assert [m for m in at.markdown if "-badge[" in m.value]


# ---- brief -------------------------------------------------------------------------------------------
def test_brief_for_selected_topic(app_workspace):
    at = run_page("pages/brief.py")
    assert_ok(at)
    topic = _topic_ids(app_workspace)[2]
    at.selectbox(key="brief.topic").select(topic).run()
    assert_ok(at)
    markdown = at.code[0].value
    label = _label(app_workspace, topic)
    assert markdown.startswith(f"# 选题简报 · [{topic}] {label}")
    at.selectbox(key="brief.node").set_value("double11").run()
    assert_ok(at)
    assert "节点节奏" in [m.value.strip("# ") for m in at.markdown]
    assert any(t.value.startswith("双11") for t in at.text)


# ---- data --------------------------------------------------------------------------------------------
def test_data_rebuild_failure_keeps_serving(workspace_copy, monkeypatch):
    import miner.topics.pipeline
    serving = latest_run_id(workspace_copy)

    def broken(*args, **kwargs):
        raise RuntimeError("simulated crash while clustering")

    monkeypatch.setattr(miner.topics.pipeline, "build_topics", broken)
    at = run_page("pages/data.py")
    at.button(key="data.rebuild").click().run()
    assert not at.exception
    assert "继续使用快照" in at.error[0].value and "simulated crash" in at.error[0].value
    assert latest_run_id(workspace_copy) == serving
    assert serving in at.sidebar.code[0].value


def test_data_rebuild_switches_snapshot(workspace_copy):
    serving = latest_run_id(workspace_copy)
    at = run_page("pages/data.py")
    at.button(key="data.rebuild").click().run()
    assert_ok(at)
    new = latest_run_id(workspace_copy)
    assert new != serving
    assert "完成" in at.success[0].value
    assert new in at.sidebar.code[0].value


def test_ingest_upload_reports_row_errors(workspace_copy):
    from miner.ui import manage
    from miner.workspace import Workspace
    csv = ("user_id,gender,age_band,city_tier\n"
           "u1,F,18-24,1\n"
           "u2,X,18-24,1\n"          # bad gender
           "u3,M,99,2\n").encode()   # bad age band
    report = Workspace(workspace_copy).ingest_upload("../../人群 upload.csv", csv, "audience")
    assert (report.rows_accepted, report.rows_rejected) == (1, 2)
    errors = manage.report_errors(report)
    assert sorted(errors["行 row"]) == [2, 3]
    assert report.rejects_path is not None and Path(report.rejects_path).exists()
    assert Path(report.rejects_path).parent == Path(workspace_copy.rejects_dir)
    assert not list((Path(workspace_copy.workspace_dir) / "uploads").iterdir())   # upload removed
    with pytest.raises(ValueError):
        Workspace(workspace_copy).ingest_upload("x.csv", b"foo,bar\n1,2\n", "audience")


def test_simulated_audience_only_for_demo_notes(workspace_copy, tmp_path):
    from miner.config import MinerConfig
    from miner.workspace import Workspace
    assert Workspace(workspace_copy).is_demo()
    own = Workspace(MinerConfig.load().with_overrides(workspace_dir=tmp_path / "own",
                                                      models_dir=tmp_path / "own-models"))
    csv = ("note_id,title,body,author_id,published_at,likes,collects,comments,shares\n"
           "mine_1,我的笔记,露营装备清单,a1,2024-05-01 10:00,1,2,3,4\n").encode()
    own.ingest_upload("mine.csv", csv, "notes")
    assert not own.is_demo()
    assert own.needs_preparation()                 # no snapshot yet: build, but no simulated tables


@pytest.fixture(scope="module")
def _own_workspace_root(tmp_path_factory) -> Path:
    """A user's workspace: their own notes (renamed demo notes), no audience tables."""
    from miner.ingest import ingest_file
    from miner.schema import NOTES
    root = tmp_path_factory.mktemp("own-workspace")
    notes = pd.read_parquet(DEMO_NOTES).groupby("category", sort=False).head(6)
    notes["note_id"] = "own_" + notes["note_id"].astype(str)
    notes.to_parquet(root / "mine.parquet", index=False)
    with pytest.MonkeyPatch.context() as mp:
        ingest_file(root / "mine.parquet", NOTES, use_workspace(mp, root))
    return root


@pytest.fixture
def own_workspace(_own_workspace_root, monkeypatch) -> MinerConfig:
    return use_workspace(monkeypatch, _own_workspace_root)


@pytest.mark.parametrize("path", list(PAGES))
def test_pages_without_audience_data(own_workspace, path):
    from miner.workspace import Workspace
    at = run_page(path)
    assert_ok(at)
    assert latest_run_id(own_workspace) is not None
    assert len(Workspace(own_workspace).missing_tables()) == 4       # nothing simulated into the user's workspace
    assert not at.sidebar.warning                        # no "SIMULATED" banner
    if path in ("pages/overview.py", "pages/topic_detail.py"):
        shown = " ".join([c.value for c in at.caption] + [i.value for i in at.info])
        assert "尚无人群数据" in shown


# ---- safe rendering ----------------------------------------------------------------------------------
def test_untrusted_text_is_escaped():
    from miner.ui.charts import svg_safe
    from miner.ui.widgets import md_escape
    evil = "[点我](javascript:alert(1)) ![x](http://e/x.png) <b>粗</b> **加粗** :red[红]"
    escaped = md_escape(evil)
    for ch in "[]()<>*!:":
        assert ch not in escaped.replace(f"\\{ch}", "")
    assert "<" not in svg_safe(evil) and ">" not in svg_safe(evil)


def test_mixed_topics_sort_last_whatever_the_column():
    from miner.ui.tables import sort_topics
    table = pd.DataFrame({"topic_id": [0, 1, 2, 3], "score": [0.9, 0.5, 0.7, None],
                          "is_mixed": [True, False, False, False]})
    assert sort_topics(table, "score")["topic_id"].tolist() == [2, 1, 3, 0]
