"""End to end in a real browser: first start, every page, creator search, brief download, upload.

Screenshots go to test-artifacts/screenshots/ (git-ignored). Assertions are on visible content.
Tests run in file order: the first one sees the first-start build.
"""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from steps import wait_idle

pytestmark = pytest.mark.e2e

BUILD_TIMEOUT_MS = 240_000


def goto(page, app_url: str, path: str = "") -> None:
    page.goto(f"{app_url}/{path}")
    page.locator("h1").first.wait_for()


def assert_no_exception(page) -> None:
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0


def metric(page, label: str):
    """The value element of the metric labelled ``label`` (use with ``expect``)."""
    box = page.locator('[data-testid="stMetric"]').filter(has_text=label).first
    return box.locator('[data-testid="stMetricValue"]')


def test_first_start_builds_then_overview(page, app_url, shot):
    page.goto(app_url)
    progress = page.get_by_text("首次启动", exact=False)
    progress.wait_for(timeout=60_000)
    page.locator('[data-testid="stProgress"]').first.wait_for()
    shot(page, "00-first-start-progress")
    page.get_by_text("趋势话题 Trending topics").wait_for(timeout=BUILD_TIMEOUT_MS)
    wait_idle(page)
    assert_no_exception(page)
    expect(metric(page, "笔记数")).to_have_text("1,725")
    expect(metric(page, "话题数")).to_have_text(re.compile(r"^\s*[1-9]\d*\s*$"))
    expect(page.get_by_text("话题地图 Topic map")).to_be_visible()
    page.locator(".js-plotly-plot").first.wait_for()             # plotly.js loads lazily
    # the sidebar navigation lists every page in Chinese
    for title in ("总览", "话题详情", "选题搜索", "内容简报", "数据管理"):
        expect(page.locator('[data-testid="stSidebarNav"]').get_by_text(title, exact=True)).to_be_visible()
    shot(page, "01-overview")


@pytest.mark.parametrize("path, title, anchor", [
    ("topic_detail", "话题详情 Topic detail", "代表笔记"),
    ("search", "选题搜索 Creator search", "输入关键词后按回车搜索"),
    ("brief", "内容简报 Content brief", "完整简报（Markdown 原文）"),
    ("data", "数据管理 Data", "当前服务的快照 Serving snapshot"),
])
def test_page_opens(page, app_url, shot, path, title, anchor):
    goto(page, app_url, path)
    page.get_by_text(anchor, exact=False).first.wait_for(timeout=BUILD_TIMEOUT_MS)
    wait_idle(page)
    assert page.locator("h1").first.inner_text().strip() == title
    assert_no_exception(page)
    if path == "topic_detail":
        expect(page.get_by_text("隐私保护：少于 50 人的单元格")).to_be_visible()
        page.locator(".js-plotly-plot").nth(3).wait_for()        # trend, 极光 radar, AIPS funnel, city tiers
        expect(page.get_by_text("极光指标 · 认知", exact=False)).to_be_visible()
        expect(page.get_by_text("人群纠偏 TGI", exact=False)).to_be_visible()
    shot(page, f"02-{path}")


def test_creator_search(page, app_url, shot):
    goto(page, app_url, "search")
    box = page.locator('[data-testid="stTextInput"] input').first
    box.fill("手机 拍照")
    box.press("Enter")
    page.get_by_text(re.compile(r"找到 \d+ 个强匹配选题方向|以下是最接近的 \d+ 个话题")).wait_for()
    wait_idle(page)
    assert_no_exception(page)
    expect(page.get_by_text("推荐理由", exact=False).first).to_be_visible()
    expect(page.get_by_role("button", name="查看详情").first).to_be_visible()
    shot(page, "03-search-results")


def test_brief_download_contains_topic_label(page, app_url, shot, tmp_path):
    goto(page, app_url, "brief")
    page.get_by_text("完整简报（Markdown 原文）").wait_for()
    wait_idle(page)
    heading = page.locator("h3").filter(has_text=re.compile(r"^#\d+ ")).first.inner_text().strip()
    label = heading.split(" ", 1)[1]
    with page.expect_download() as info:
        page.get_by_role("button", name=re.compile("下载简报 Markdown")).click()
    target = tmp_path / info.value.suggested_filename
    info.value.save_as(target)
    text = target.read_text(encoding="utf-8")
    assert target.suffix == ".md"
    assert text.startswith("# 选题简报")
    assert label in text
    shot(page, "04-brief")


def test_data_upload_shows_row_errors(page, app_url, shot, tmp_path):
    goto(page, app_url, "data")
    page.get_by_text("上传数据 Upload").wait_for()
    wait_idle(page)
    page.locator('[data-testid="stSelectbox"]').filter(has_text="数据表").click()
    page.get_by_role("option", name="用户画像 audience").click()
    wait_idle(page)
    upload = tmp_path / "人群画像.csv"
    upload.write_text("user_id,gender,age_band,city_tier\n"
                      "e2e_u1,F,18-24,1\n"
                      "e2e_u2,X,18-24,1\n"
                      "e2e_u3,M,99,2\n", encoding="utf-8")
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(upload))
    page.get_by_text("人群画像.csv").wait_for()
    page.get_by_role("button", name=re.compile("校验并导入")).click()
    page.get_by_text("校验报告 Validation report").wait_for()
    wait_idle(page)
    expect(metric(page, "接受")).to_have_text("1")
    expect(metric(page, "拒绝")).to_have_text("2")
    expect(page.get_by_role("button", name=re.compile("下载拒绝明细"))).to_be_visible()
    shot(page, "05-data-upload-report")
