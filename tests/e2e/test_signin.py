"""Access control in a real browser: every page's URL asks for sign-in; a viewer cannot upload or
rebuild; an editor can; the single-password setup still works.

Each server here is fresh, and the first URL opened on the accounts server is ``/data``: until some
session has run ``st.navigation``, Streamlit serves ``pages/*.py`` for their URLs directly, so this
is the request that bypassed the old password gate. Screenshots: test-artifacts/screenshots/1x-*.png.
Runs after test_browser.py (file order) on the same workspace; alone, the first sign-in builds it.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from steps import new_page, sign_in, wait_idle
from steps import open_signed_out as open_page_signed_out

pytestmark = pytest.mark.e2e

BUILD_TIMEOUT_MS = 240_000
VIEWER, EDITOR, SINGLE = ("vera", "viewer-pass-1"), ("eddie", "editor-pass-1"), "single-pass-1"
# Every URL, /data first (see the module docstring), then the root.
URLS = ["data", "overview", "topic_detail", "search", "brief", ""]
PAGE_CONTENT = ["当前服务的快照", "上传数据", "重建话题", "趋势话题", "代表笔记", "想写什么", "完整简报", "笔记数"]


@pytest.fixture(scope="module")
def accounts_url(e2e_workspace, streamlit_server, tmp_path_factory):
    from miner import accounts
    path = tmp_path_factory.mktemp("e2e-auth") / "auth.yaml"
    accounts.add_user(path, VIEWER[0], VIEWER[1], "viewer", name="Vera 只读")
    accounts.add_user(path, EDITOR[0], EDITOR[1], "editor", name="Eddie 编辑")
    with streamlit_server({**e2e_workspace, "MINER_AUTH_FILE": str(path)}, name="e2e-accounts") as url:
        yield url


@pytest.fixture(scope="module")
def single_password_url(e2e_workspace, streamlit_server):
    with streamlit_server({**e2e_workspace, "MINER_APP_PASSWORD": SINGLE}, name="e2e-single") as url:
        yield url


def open_signed_out(page, url: str) -> None:
    open_page_signed_out(page, url)
    page.get_by_text("登录 Sign in").first.wait_for()


def assert_only_the_form(page) -> None:
    headings = [h.strip() for h in page.locator("h1").all_inner_texts()]
    assert headings == ["选题雷达 Topic Miner"], headings
    main = page.locator('[data-testid="stMain"]')
    for text in PAGE_CONTENT:          # expect(): retries briefly while a rerun clears stale elements
        expect(main.get_by_text(text), text).to_have_count(0, timeout=10_000)
    for testid in ("stMetric", "stDataFrame", "stPlotlyChart", "stFileUploader"):
        expect(page.locator(f'[data-testid="{testid}"]'), testid).to_have_count(0, timeout=10_000)
    assert page.locator('[data-testid="stException"]').count() == 0


def test_every_url_signed_out_asks_for_sign_in(browser, accounts_url, shot):
    for path in URLS:                                  # a fresh browser session for each URL
        context, page = new_page(browser, {"width": 1280, "height": 800})
        open_signed_out(page, f"{accounts_url}/{path}")
        assert_only_the_form(page)
        expect(page.get_by_label("用户名 Username")).to_be_visible()
        shot(page, f"10-signed-out-{path or 'root'}")
        context.close()


def test_viewer_cannot_upload_or_rebuild(page, accounts_url, shot):
    open_signed_out(page, f"{accounts_url}/data")
    sign_in(page, *VIEWER)
    page.get_by_text("当前服务的快照 Serving snapshot").wait_for(timeout=BUILD_TIMEOUT_MS)
    wait_idle(page)
    assert page.locator("h1").first.inner_text().strip() == "数据管理 Data"     # the URL asked for
    expect(page.get_by_text("只读账户：上传、替换与重建需要编辑权限", exact=False)).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("重建话题 Rebuild"))).to_be_disabled()
    expect(page.get_by_role("button", name=re.compile("校验并导入"))).to_be_disabled()
    expect(page.locator('[data-testid="stFileUploaderDropzoneInput"]')).to_be_disabled()
    expect(page.locator('[data-testid="stSidebar"]').get_by_text("Vera 只读 · 只读 viewer")).to_be_visible()
    shot(page, "11-viewer-data-read-only")
    page.get_by_role("button", name=re.compile("退出登录")).click()
    page.locator('input[type="password"]').wait_for()
    wait_idle(page)
    shot(page, "11b-viewer-signed-out")
    assert_only_the_form(page)


def test_editor_can_upload(page, accounts_url, shot, tmp_path):
    open_signed_out(page, f"{accounts_url}/data")
    sign_in(page, *EDITOR)
    page.get_by_text("上传数据 Upload").wait_for(timeout=BUILD_TIMEOUT_MS)
    wait_idle(page)
    expect(page.get_by_role("button", name=re.compile("重建话题 Rebuild"))).to_be_enabled()
    upload = tmp_path / "evil.csv"                    # column names with Markdown: refused, shown inert
    upload.write_text("![x](http://127.0.0.1:9/p.png),[link](http://evil),<img src=x onerror=alert(1)>\n1,2,3\n",
                      encoding="utf-8")
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(upload))
    page.get_by_text("evil.csv").wait_for()
    page.get_by_role("button", name=re.compile("校验并导入")).click()
    error = page.locator('[data-testid="stAlertContentError"]').filter(has_text="导入失败")
    error.wait_for()
    wait_idle(page)
    shown = error.inner_text().replace("\u2060", "")          # md_escape's invisible autolink breaker
    assert "![x](http://127.0.0.1:9/p.png)" in shown and "<img src=x onerror=alert(1)>" in shown   # text …
    assert error.locator("img, a").count() == 0                  # … not an image or a link (not even GFM's bare-URL one)
    shot(page, "12-editor-import-refused-inert")


def test_single_password_still_works(page, single_password_url, shot):
    open_signed_out(page, f"{single_password_url}/search")
    assert page.get_by_label("用户名 Username").count() == 0                 # password only
    sign_in(page, None, "wrong-password")
    expect(page.get_by_text("密码错误 Wrong password")).to_be_visible()
    assert_only_the_form(page)
    sign_in(page, None, SINGLE)
    page.get_by_text("输入关键词后按回车搜索").wait_for(timeout=BUILD_TIMEOUT_MS)
    wait_idle(page)
    assert page.locator("h1").first.inner_text().strip() == "选题搜索 Creator search"
    expect(page.locator('[data-testid="stSidebar"]').get_by_text("admin · 编辑者 editor")).to_be_visible()
    shot(page, "13-single-password-signed-in")


def test_artifacts_written():
    shots = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
    assert all((shots / f"10-signed-out-{p or 'root'}.png").exists() for p in URLS)
