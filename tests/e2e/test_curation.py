"""话题管理 in a real browser: an editor signs in, renames, hides, merges and splits topics; the results
show on the other pages, the audit table says who did what (before → after), the topic's history
says merged from / renamed by; a viewer sees the page read-only.

The workspace is this module's own (the actions change its topics); its first sign-in builds it.
Screenshots: test-artifacts/screenshots/20-*.png … 30-*.png (a few are copied to docs/screenshots/).
The steps run in file order and build on each other.
"""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from steps import new_page, open_signed_out, sign_in, wait_idle
from test_browser import assert_no_exception

pytestmark = pytest.mark.e2e

BUILD_TIMEOUT_MS = 240_000
EDITOR, VIEWER = ("eddie", "editor-pass-1"), ("vera", "viewer-pass-1")
NEW_NAME = "周末露营装备清单"
HEADING = re.compile(r"^#(\d+) (.+)$")


@pytest.fixture(scope="module")
def curation_url(fresh_workspace, streamlit_server, tmp_path_factory):
    from miner import accounts
    env = fresh_workspace("e2e-curation")
    path = tmp_path_factory.mktemp("e2e-curation-auth") / "auth.yaml"
    accounts.add_user(path, EDITOR[0], EDITOR[1], "editor", name="Eddie 编辑")
    accounts.add_user(path, VIEWER[0], VIEWER[1], "viewer", name="Vera 只读")
    with streamlit_server({**env, "MINER_AUTH_FILE": str(path)}, name="e2e-curation") as url:
        yield url


@pytest.fixture(scope="module")
def editor(browser, curation_url):
    """One signed-in editor session for the whole module (the steps build on each other)."""
    context, page = new_page(browser)
    open_signed_out(page, f"{curation_url}/curation")
    sign_in(page, *EDITOR)
    page.get_by_text("操作记录 Audit trail").wait_for(timeout=BUILD_TIMEOUT_MS)      # first start builds first
    wait_idle(page)
    yield page
    context.close()


state: dict = {}      # topic ids found along the way, shared by the steps


# ---- helpers -----------------------------------------------------------------------------------------
def open_page(page, url: str, path: str, anchor: str) -> None:
    """Go to a page by its sidebar link (keeps the signed-in session) and wait for ``anchor``."""
    page.locator('[data-testid="stSidebarNav"]').get_by_text(path, exact=True).click()
    page.get_by_text(anchor, exact=False).first.wait_for()
    wait_idle(page)


def heading(page) -> tuple[int, str]:
    """(topic id, label) of the page's ``#id label`` subheader."""
    text = page.locator("h3").filter(has_text=HEADING).first.inner_text().strip()
    tid, label = HEADING.match(text).groups()
    return int(tid), label


def picker_options(page, label: str, typed: str = "") -> list[str]:
    """Option texts of the selectbox labelled ``label`` that match ``typed`` (typed into its search
    box: the dropdown draws only the options in view, so a long list is narrowed, not scrolled)."""
    page.locator('[data-testid="stSelectbox"]').filter(has_text=label).first.click()
    if typed:
        page.keyboard.type(typed)
        page.wait_for_timeout(500)
    options = page.get_by_role("option")
    try:
        options.first.wait_for(timeout=3_000)
        texts = [t.strip() for t in options.all_inner_texts()]
    except Exception:          # "No results"
        texts = []
    page.keyboard.press("Escape")
    page.wait_for_timeout(300)
    return texts


def offered(page, tid: int, label: str = "话题") -> bool:
    """Whether the topic picker offers topic ``tid``."""
    return any(o.startswith(f"#{tid} ") for o in picker_options(page, label, f"#{tid} "))


def choose_topic(page, tid: int, label: str = "话题") -> None:
    page.locator('[data-testid="stSelectbox"]').filter(has_text=label).first.click()
    page.get_by_role("option").filter(has_text=re.compile(rf"^#{tid} ")).first.click()
    wait_idle(page)
    expect(page.locator("h3").filter(has_text=re.compile(rf"^#{tid} ")).first).to_be_visible()


def curation_tab(page, name: str) -> None:
    """Choose the action (改名 / 合并 / 拆分 / 隐藏 / 置顶) above the form."""
    page.locator('[data-testid="stRadio"]').first.get_by_text(name, exact=True).click()
    wait_idle(page)


def expect_success(page, text: str) -> None:
    page.locator('[data-testid="stAlertContentSuccess"]').filter(has_text=text).wait_for()
    wait_idle(page)
    assert_no_exception(page)


def table_text(page, index: int) -> str:
    """Visible text of the index-th st.dataframe (glide renders an accessible table beside its canvas)."""
    grid = page.locator('[data-testid="stDataFrame"]').nth(index)
    grid.wait_for()
    return grid.locator("table").first.inner_text()


def audit_text(page) -> str:
    return table_text(page, page.locator('[data-testid="stDataFrame"]').count() - 1)


# ---- the steps ---------------------------------------------------------------------------------------
def test_editor_opens_curation(editor, shot):
    page = editor
    assert page.locator("h1").first.inner_text().strip() == "话题管理 Curation"
    assert_no_exception(page)
    # the first visitor of this fresh server opened /curation: app.py's router still names the pages
    nav = page.locator('[data-testid="stSidebarNav"]')
    expect(nav.get_by_text("话题管理", exact=True)).to_be_visible()
    expect(nav.get_by_text("topic detail", exact=True)).to_have_count(0)
    expect(page.get_by_text("只读账户", exact=False)).to_have_count(0)
    expect(page.get_by_role("button", name="保存名称")).to_be_enabled()
    options = picker_options(page, "话题")
    ids = [int(HEADING.match(o).group(1)) for o in options if HEADING.match(o)]
    assert len(ids) >= 4, options
    state["ids"] = ids                       # biggest first (nothing pinned yet)
    assert heading(page)[0] == ids[0]
    expect(page.get_by_text("关键词 ", exact=False).first).to_be_visible()
    assert "操作人" in audit_text(page)
    shot(page, "20-curation-page")


def test_rename_shows_everywhere_and_is_audited(editor, curation_url, shot):
    page = editor
    tid = state["ids"][0]
    curation_tab(page, "改名")
    page.get_by_label("新名称（留空恢复自动名）").fill(NEW_NAME)
    page.get_by_role("button", name="保存名称").click()
    expect_success(page, f"已改名 #{tid}")
    assert heading(page) == (tid, NEW_NAME)
    audit = audit_text(page)
    assert EDITOR[0] in audit and "改名" in audit and f"名称 自动名名称「{NEW_NAME}」" in audit, audit   # before, after
    history = table_text(page, 0)
    assert "由谁改名" in history and EDITOR[0] in history and NEW_NAME in history, history
    shot(page, "21-curation-renamed")

    open_page(page, curation_url, "话题详情", "代表笔记")
    choose_topic(page, tid)
    assert heading(page) == (tid, NEW_NAME)
    page.get_by_text("话题历史 History", exact=False).first.click()         # the expander
    expect(page.get_by_text("由谁改名", exact=False).first).to_be_visible()
    shot(page, "22-detail-renamed-history")

    open_page(page, curation_url, "总览", "趋势话题 Trending topics")
    assert NEW_NAME in table_text(page, 0)
    shot(page, "23-overview-renamed")


def test_hidden_topic_gone_from_pickers_and_search(editor, curation_url, shot):
    page = editor
    tid = state["ids"][1]
    open_page(page, curation_url, "话题管理", "操作记录 Audit trail")
    choose_topic(page, tid)
    label = heading(page)[1]
    state["hidden"] = (tid, label)
    curation_tab(page, "隐藏 / 置顶")
    page.get_by_role("button", name="隐藏话题").click()
    expect_success(page, f"#{tid} 已隐藏")
    assert not offered(page, tid) and offered(page, state["ids"][2])
    assert "隐藏 否隐藏 是" in audit_text(page)                       # before, after
    shot(page, "24-curation-hidden")

    for path, anchor in (("话题详情", "代表笔记"), ("内容简报", "完整简报")):
        open_page(page, curation_url, path, anchor)
        assert not offered(page, tid) and offered(page, state["ids"][2]), path
    open_page(page, curation_url, "总览", "趋势话题 Trending topics")
    assert f"{label}" not in table_text(page, 0)

    open_page(page, curation_url, "选题搜索", "输入关键词后按回车搜索")
    keywords = [k for k in label.split("·") if k][:2]
    box = page.locator('[data-testid="stTextInput"] input').first
    box.fill(" ".join(keywords))
    box.press("Enter")
    page.get_by_text(re.compile(r"找到 \d+ 个强匹配选题方向|以下是最接近的 \d+ 个话题")).wait_for()
    wait_idle(page)
    results = page.locator('[data-testid="stMarkdownContainer"] strong').filter(has_text=re.compile(r"^\d+\. #\d+ "))
    assert results.count() >= 1
    assert not any(re.match(rf"^\d+\. #{tid} ", t) for t in results.all_inner_texts())
    shot(page, "25-search-without-hidden")
    # an editor may opt in: the hidden topic comes back, badged 已隐藏
    page.get_by_text("显示已隐藏话题").first.click()
    wait_idle(page)
    expect(page.locator('[data-testid="stMarkdownContainer"]').filter(
        has_text=re.compile(rf"已隐藏.*#{tid} ")).first).to_be_visible()
    page.get_by_text("显示已隐藏话题").first.click()                  # off again for the next steps
    wait_idle(page)


def test_merge_and_history_say_merged_from(editor, curation_url, shot):
    page = editor
    target, source = state["ids"][0], state["ids"][2]
    open_page(page, curation_url, "话题管理", "操作记录 Audit trail")
    choose_topic(page, target)
    curation_tab(page, "合并")
    page.locator('[data-testid="stMultiSelect"]').first.click()
    page.get_by_role("option").filter(has_text=re.compile(rf"^#{source} ")).first.click()
    page.keyboard.press("Escape")
    wait_idle(page)
    merge = page.get_by_role("button", name="合并", exact=True)
    expect(merge).to_be_disabled()                                   # not before the confirmation
    shot(page, "26-curation-merge-confirm")
    page.get_by_text("确认合并", exact=False).first.click()
    wait_idle(page)
    expect(merge).to_be_enabled()
    merge.click()
    expect_success(page, f"已把 #{source} 并入 #{target}")
    assert not offered(page, source) and offered(page, target)
    assert f"合并自 #{source}" in table_text(page, 0)                 # the target's history
    assert f"#{source} 独立显示#{source} 并入 #{target}" in audit_text(page)
    shot(page, "27-curation-merged")


def test_split_by_keyword_makes_a_new_topic(editor, curation_url, shot):
    page = editor
    target = state["ids"][0]
    keywords = page.get_by_text(re.compile(r"^关键词 ")).first.inner_text().removeprefix("关键词 ").split(" · ")
    keyword = keywords[0]
    curation_tab(page, "拆分")
    for label, text in (("新话题名称（可选）", "拆出的新话题"), ("关键词（标题/正文包含即移出）", keyword)):
        page.get_by_label(label).fill(text)        # a form: nothing reruns until the button
    shot(page, "28-curation-split-keyword")
    page.get_by_role("button", name="按关键词拆分").click()
    expect_success(page, f"拆分 #{target}")
    added = picker_options(page, "话题", "拆出的新话题")
    assert len(added) == 1 and not added[0].startswith(f"#{target} "), added
    expect(page.get_by_label("关键词（标题/正文包含即移出）")).to_have_value("")    # cleared: no repeat by a second click
    audit = audit_text(page)
    assert f"关键词「{keyword}」拆出为新话题" in audit, audit
    assert audit.count(EDITOR[0]) >= 4, audit                # rename, hide, merge, split: all by eddie
    shot(page, "29-curation-split-audit")


def test_viewer_sees_curation_read_only(browser, curation_url, shot):
    context, page = new_page(browser)
    open_signed_out(page, f"{curation_url}/curation")
    sign_in(page, *VIEWER)
    page.get_by_text("操作记录 Audit trail").wait_for()
    wait_idle(page)
    expect(page.get_by_text("只读账户：改名、合并、拆分、隐藏、置顶需要编辑权限", exact=False)).to_be_visible()
    expect(page.get_by_role("button", name="保存名称")).to_be_disabled()
    expect(page.get_by_text("显示已隐藏话题")).to_have_count(0)
    tid, _ = state["hidden"]
    assert not offered(page, tid) and offered(page, state["ids"][0])
    assert EDITOR[0] in audit_text(page)                      # the trail is visible to everyone
    shot(page, "30-curation-viewer")
    context.close()
