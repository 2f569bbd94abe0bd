"""Browser steps shared by the e2e tests: wait for a script run, open a page signed out, sign in."""
from __future__ import annotations

import re

VIEWPORT = {"width": 1440, "height": 1000}


def wait_idle(page, timeout: int = 60_000) -> None:
    """Wait until the script run finished (Streamlit's running indicator is gone)."""
    page.wait_for_timeout(300)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="detached", timeout=timeout)


def new_page(browser, viewport: dict | None = None):
    """(context, page) of a fresh browser session (its own cookies, so its own Streamlit session)."""
    context = browser.new_context(viewport=viewport or VIEWPORT, locale="zh-CN")
    context.set_default_timeout(60_000)
    return context, context.new_page()


def open_signed_out(page, url: str) -> None:
    """Open ``url`` and wait for the sign-in form."""
    page.goto(url)
    page.locator('input[type="password"]').wait_for()
    wait_idle(page)


def sign_in(page, username: str | None, password: str) -> None:
    """Fill and send the sign-in form (``username=None``: the single-password form)."""
    if username is not None:
        page.get_by_label("用户名 Username").fill(username)
    page.get_by_label("访问密码 Password").fill(password)
    page.get_by_role("button", name=re.compile("登录 Sign in|进入 Enter")).click()
