"""话题管理 under AppTest: each curation action through the page, the audit rows, history, flags,
hidden filtering, pinned ordering, viewers refused, and the 增量更新 button on 数据管理."""
from __future__ import annotations

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from miner import accounts
from miner.topics.snapshot import latest_run_id, load_snapshot
from test_app import (_app_workspace_root, app_workspace, workspace_copy, assert_ok,  # noqa: F401 (fixtures)
                      run_page, REPO, TIMEOUT, DEMO_NOTES)

PAGE = "pages/curation.py"


@pytest.fixture
def curator(workspace_copy, monkeypatch):
    monkeypatch.setenv("MINER_CURATOR_NAME", "策划小王")
    return workspace_copy


def topics(config) -> pd.DataFrame:
    return load_snapshot(config).topics.set_index("topic_id")


def biggest(config, n: int = 1) -> list[int]:
    return [int(t) for t in topics(config)["size"].sort_values(ascending=False).index[:n]]


def frame(at: AppTest, which: str) -> pd.DataFrame:
    """The page's two tables: 话题历史 first, 操作记录 last."""
    return at.dataframe[0 if which == "history" else -1].value


def audit_rows(at: AppTest) -> pd.DataFrame:
    return frame(at, "audit")


def test_rename_is_audited_and_in_history(curator):
    tid = biggest(curator)[0]
    at = run_page(PAGE, **{"curation.topic": tid})
    assert_ok(at)
    assert audit_rows(at).empty
    at.text_input(key="curation.name").input("露营装备清单")
    at.button(key="curation.rename").click().run()
    assert_ok(at)
    assert topics(curator).at[tid, "label"] == "露营装备清单"
    assert "露营装备清单" in at.subheader[0].value
    audit = audit_rows(at)
    assert list(audit.columns) == ["时间", "操作人", "操作", "话题", "修改前", "修改后"]
    assert audit.iloc[0][["操作人", "操作", "话题"]].tolist() == ["策划小王", "改名", f"#{tid}"]
    assert "露营装备清单" in audit.iloc[0]["修改后"]
    history = frame(at, "history")
    assert "诞生于" in set(history["事件"])
    assert any("由谁改名" in d and "露营装备清单" in d for d in history["说明"])
    assert "策划小王" in set(history["操作人"])


def test_merge_two_topics(curator):
    a, b = biggest(curator, 2)
    at = run_page(PAGE, **{"curation.topic": a, "curation.action": "合并"})
    at.multiselect(key="curation.merge_sources").select(b).run()
    assert at.button(key="curation.merge").disabled              # not before the confirmation is ticked
    at.checkbox(key=f"curation.merge_confirm.{a}.{b}").check().run()
    at.button(key="curation.merge").click().run()
    assert_ok(at)
    after = topics(curator)
    assert b not in after.index and a in after.index
    assert audit_rows(at).iloc[0]["操作"] == "合并"
    assert any(f"话题 {b}" in d or f"#{b}" in d or str(b) in d
               for d in frame(at, "history")["说明"])


def test_split_by_keyword_and_by_notes(curator):
    tid = biggest(curator)[0]
    keyword = str(topics(curator).at[tid, "keywords"][0])
    at = run_page(PAGE, **{"curation.topic": tid, "curation.action": "拆分"})
    at.text_input(key="curation.split_keyword").input(keyword)
    at.text_input(key="curation.split_name").input("关键词拆出")
    at.button(key="curation.split_kw").click().run()
    assert_ok(at)
    after = topics(curator)
    assert "关键词拆出" in set(after["label"])
    assert audit_rows(at).iloc[0]["操作"] == "拆分"
    n_audit = len(audit_rows(at))
    empty = run_page(PAGE, **{"curation.topic": tid, "curation.action": "拆分"})
    empty.button(key="curation.split_kw").click().run()                      # no keyword: refused, nothing stored
    assert "请先填写关键词" in empty.error[0].value and len(audit_rows(empty)) == n_audit
    # (the form clears on submit in a browser, tests/e2e/test_curation.py; AppTest keeps typed values)

    tid = biggest(curator)[0]
    at = run_page(PAGE, **{"curation.topic": tid, "curation.action": "拆分", "curation.split_how": "按选中笔记"})
    picker = at.multiselect(key="curation.split_notes")
    chosen = picker.options[:2]
    at.multiselect(key="curation.split_notes").set_value(
        [o.rsplit("（", 1)[1].rstrip("）") for o in chosen])
    at.text_input(key="curation.split_name").input("手选笔记")
    at.button(key="curation.split_ids").click().run()
    assert_ok(at)
    after = topics(curator)
    new = after[after["label"] == "手选笔记"]
    assert len(new) == 1 and int(new["size"].iloc[0]) == 2


def test_hide_filters_lists_and_unhide_restores(curator):
    tid = biggest(curator)[0]
    at = run_page(PAGE, **{"curation.topic": tid, "curation.action": "隐藏 / 置顶"})
    at.button(key="curation.hide").click().run()
    assert_ok(at)
    assert bool(topics(curator).at[tid, "hidden"])
    detail = run_page("pages/topic_detail.py")
    labels = detail.selectbox(key="detail.topic").options
    assert not any(o.startswith(f"#{tid} ") for o in labels)
    overview = run_page("pages/overview.py")
    assert tid not in set(overview.dataframe[0].value["topic_id"])
    shown = run_page("pages/overview.py", **{"curation.show_hidden": True})
    row = shown.dataframe[0].value.set_index("topic_id").loc[tid]
    assert "已隐藏" in row["标记"]
    at = run_page(PAGE, **{"curation.topic": tid, "curation.show_hidden": True, "curation.action": "隐藏 / 置顶"})
    assert at.button(key="curation.hide").label == "取消隐藏"
    at.button(key="curation.hide").click().run()
    assert not bool(topics(curator).at[tid, "hidden"])
    assert [r for r in audit_rows(at)["操作"]][:2] == ["取消隐藏", "隐藏"]


def test_pin_puts_topic_first(curator):
    smallest = int(topics(curator)["size"].idxmin())
    at = run_page(PAGE, **{"curation.topic": smallest, "curation.action": "隐藏 / 置顶"})
    at.button(key="curation.pin").click().run()
    assert_ok(at)
    detail = run_page("pages/topic_detail.py")
    first = detail.selectbox(key="detail.topic").options[0]
    assert first.startswith(f"#{smallest} ") and "置顶" in first
    overview = run_page("pages/overview.py")
    assert int(overview.dataframe[0].value["topic_id"].iloc[0]) == smallest


def test_new_topic_flag_follows_born_at(curator, monkeypatch):
    from miner.topics.registry import transaction
    keep = biggest(curator)[0]
    with transaction(curator) as con:
        con.execute("UPDATE topic_registry SET born_at = born_at - INTERVAL 30 DAY WHERE topic_id <> ?", [keep])
    detail = run_page("pages/topic_detail.py")
    options = detail.selectbox(key="detail.topic").options
    flagged = [o for o in options if "新话题" in o]
    assert len(flagged) == 1 and flagged[0].startswith(f"#{keep} ")
    monkeypatch.setenv("MINER_NEW_TOPIC_DAYS", "60")
    detail = run_page("pages/topic_detail.py")
    assert all("新话题" in o for o in detail.selectbox(key="detail.topic").options)


def test_viewer_cannot_curate(curator, tmp_path, monkeypatch):
    path = tmp_path / "auth.yaml"
    accounts.add_user(path, "vera", "viewer-pass-1", "viewer", name="Vera 只读")
    monkeypatch.setenv("MINER_AUTH_FILE", str(path))
    tid = biggest(curator)[0]
    label = topics(curator).at[tid, "label"]
    at = run_page(PAGE, **{"auth.user": "vera", "curation.topic": tid})
    assert_ok(at)
    assert "只读账户" in at.info[0].value
    for action, keys in (("合并", ["curation.merge"]), ("拆分", ["curation.split_kw"]),
                         ("隐藏 / 置顶", ["curation.hide", "curation.pin"]), ("改名", ["curation.rename"])):
        at.radio(key="curation.action").set_value(action).run()
        for key in keys:
            assert at.button(key=key).disabled, key
    assert at.text_input(key="curation.name").disabled
    at.text_input(key="curation.name").input("不该生效")
    at.button(key="curation.rename").click().run()
    assert topics(curator).at[tid, "label"] == label
    assert audit_rows(at).empty
    assert not [t for t in at.toggle if t.key == "curation.show_hidden"]     # viewers never see hidden topics


def test_update_button_adds_pending_notes(curator):
    from miner.ingest import ingest_file
    from miner.schema import NOTES
    serving = latest_run_id(curator)
    known = set(load_snapshot(curator).notes["note_id"].astype(str))
    extra = pd.read_parquet(DEMO_NOTES)
    extra = extra[~extra["note_id"].astype(str).isin(known)].head(30)
    path = curator.workspace_dir / "extra.parquet"
    extra.to_parquet(path, index=False)
    ingest_file(path, NOTES, curator)
    at = run_page("pages/data.py")
    at.button(key="data.update").click().run()
    assert_ok(at)
    assert latest_run_id(curator) != serving
    message = at.success[0].value
    assert "增量更新完成" in message and "新增 30 篇" in message
    assert len(load_snapshot(curator).notes) == len(known) + 30


def _result_ids(at: AppTest) -> list[int]:
    """Topic ids of the search page's result cards, in order (``**1. #12 label**``)."""
    import re
    return [int(re.search(r"\*\*\d+\. #(\d+) ", m.value).group(1)) for m in at.markdown if "-badge[" in m.value]


def test_hidden_topic_left_out_of_search_unless_shown(curator):
    from miner.workspace import Workspace
    tid = biggest(curator)[0]
    query = " ".join(str(k) for k in list(topics(curator).at[tid, "keywords"])[:3])
    at = run_page("pages/search.py", **{"search.query": query, "search.k": 20})
    assert_ok(at)
    assert _result_ids(at)[0] == tid                      # the topic's own words find it first
    Workspace(curator).hide_topic(tid, actor="策划小王")
    at = run_page("pages/search.py", **{"search.query": query, "search.k": 20})
    assert_ok(at)
    assert tid not in _result_ids(at) and _result_ids(at)
    assert not any("已隐藏" in m.value for m in at.markdown)
    shown = run_page("pages/search.py", **{"search.query": query, "search.k": 20, "curation.show_hidden": True})
    assert_ok(shown)
    assert _result_ids(shown)[0] == tid
    assert ":gray-badge[已隐藏]" in next(m.value for m in shown.markdown if f"#{tid} " in m.value)


def test_hidden_topic_left_out_of_opportunity_trends_and_brief_ranks(curator, capsys):
    from miner.cli import main
    from miner.workspace import Workspace
    workspace = Workspace(curator)
    snap = load_snapshot(curator)
    before = workspace.opportunity(snap)
    tid = int(before["topic_id"].iloc[0])                 # the best opportunity
    workspace.hide_topic(tid, actor="策划小王")
    snap = load_snapshot(curator)
    after = workspace.opportunity(snap)
    assert tid not in set(after["topic_id"]) and len(after) == len(before) - 1
    assert list(after["rank"]) == list(range(1, len(after) + 1))
    assert list(after["topic_id"]) == [t for t in before["topic_id"] if t != tid]    # the others keep their order
    assert tid in set(workspace.opportunity(snap, include_hidden=True)["topic_id"])
    assert tid not in set(workspace.trend_table(snap)["topic_id"])
    second = int(after["topic_id"].iloc[0])
    brief = workspace.brief(snap, second)
    assert (brief.opportunity["rank"], brief.opportunity["of"]) == (1, len(after))   # 第 1/n 名 among shown topics

    def cli_topics(*extra) -> list[int]:
        assert main(["opportunity", *extra]) == 0
        rows = capsys.readouterr().out.splitlines()
        start = next(i for i, line in enumerate(rows) if line.startswith("--")) + 1   # below the header rule
        return [int(line.split()[1]) for line in rows[start:] if line.split() and line.split()[0].isdigit()]

    assert cli_topics() == list(after["topic_id"])
    assert tid in cli_topics("--include-hidden")


def test_audit_words_show_only_what_changed():
    from miner.topics.registry import dumps
    from miner.ui.curation import change_text
    row = {"topic_id": 3, "status": "active", "label": None, "hidden": False, "pinned": False, "curated_into": None}
    assert change_text("rename", dumps(row), dumps({**row, "label": "露营"})) == ("名称 自动名", "名称「露营」")
    assert change_text("hide", dumps(row), dumps({**row, "hidden": True})) == ("隐藏 否", "隐藏 是")
    assert change_text("merge", dumps([row]), dumps({"topic_id": 1, "merged": [3, 5]})) == (
        "#3、#5 独立显示", "#3、#5 并入 #1")
    assert change_text("split", dumps(row), dumps({"topic_id": 9, "parent_id": 3, "keyword": "帐篷",
                                                    "note_ids": None, "label": None})) == (
        "#3 的笔记", "关键词「帐篷」拆出为新话题 #9 （自动名）")
