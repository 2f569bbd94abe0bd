"""Sign-in, roles and the page guard. Accounts and hashing live in :mod:`miner.accounts`.

Two layers, so no URL renders workspace content signed out:

* ``app.py`` registers only sign-in pages with ``st.navigation`` until the session is signed in
  (one per real page URL, so ``/data`` shows the form and, once signed in, the data page);
* every page calls :func:`guard` (via ``widgets.page_setup``). That matters: while no session has
  run ``st.navigation`` yet, Streamlit serves ``pages/*.py`` directly for their URLs (its v1
  multipage fallback for a ``pages/`` folder), so a fresh server's first visitor to ``/data``
  never runs ``app.py``.

Why bcrypt and our own form rather than streamlit-authenticator 0.4.2: its login keeps the
failed-attempt count in the per-session credentials dict (a new browser tab resets it) and locks
for good instead of for a while; it needs a cookie secret and a custom component (an iframe that
does not run under AppTest) for its re-login cookie. We need a hash check, a server-side limiter
and a role — ~60 lines. The accounts file keeps that library's layout, so the two stay exchangeable.

A session stays signed in until it ends (a browser reload starts a new session: sign in again).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import streamlit as st

from miner.accounts import (SINGLE_USER, Account, AttemptLimiter, AuthConfigError, check_password,
                            configured_accounts, normalize_username)

SESSION_USER = "auth.user"
ROLE_ZH = {"editor": "编辑者 editor", "viewer": "只读 viewer"}


@dataclass(frozen=True)
class _Session:
    open: bool                     # nothing configured: local use, everyone may do everything
    account: Account | None        # the signed-in account
    error: str | None = None       # accounts configured but unusable: refuse everyone


def _secrets_password() -> str | None:
    if st.secrets.load_if_toml_exists():        # no secrets file is fine (and prints nothing)
        value = st.secrets.get("password")
        return str(value) if value else None
    return None


def _accounts() -> dict[str, Account] | None:
    return configured_accounts(_secrets_password())


def _session() -> _Session:
    """This session's standing, re-read against the accounts every run (a removed user is out)."""
    try:
        accounts = _accounts()
    except AuthConfigError as exc:
        return _Session(False, None, str(exc))
    if accounts is None:
        return _Session(True, None)
    user = st.session_state.get(SESSION_USER)
    account = accounts.get(user) if user else None
    if user and account is None:
        st.session_state.pop(SESSION_USER, None)
    return _Session(False, account)


@st.cache_resource
def _limiter() -> AttemptLimiter:
    """One limiter for the whole server process: 5 failures per username in 10 min → 5 min lock."""
    return AttemptLimiter(max_failures=5, window_s=600.0, lockout_s=300.0)


# ---- for pages -------------------------------------------------------------------------------------
def signed_in() -> bool:
    """True when the app is open (nothing configured) or this session signed in."""
    s = _session()
    return s.open or s.account is not None


def current_user() -> str | None:
    """The signed-in username; None when signed out or when the app is open (no accounts)."""
    account = _session().account
    return account.username if account else None


def can_edit() -> bool:
    """Upload, replace, rebuild and curate are allowed: an editor, or the open (local) app."""
    s = _session()
    return s.open or (s.account is not None and s.account.is_editor)


def require_editor() -> None:
    """Stop the page here unless :func:`can_edit`; says why."""
    if not can_edit():
        st.warning("需要编辑权限：只读账户可以浏览、搜索和生成简报。 Editors only.", icon=":material/lock:")
        st.stop()


def guard() -> None:
    """Run first on every page: signed out → the sign-in form and stop; signed in → account box."""
    s = _session()
    if s.open:
        return
    if s.account is None:
        login_form()
        st.stop()
    with st.sidebar:
        st.text(f"{s.account.name} · {ROLE_ZH[s.account.role]}")
        st.button("退出登录 Sign out", key="auth.sign_out", on_click=sign_out, icon=":material/logout:")


def sign_out() -> None:
    for key in (SESSION_USER, "auth.password", "auth.username"):
        st.session_state.pop(key, None)


# ---- the form ----------------------------------------------------------------------------------------
def login_form() -> None:
    """The sign-in page: a username/password form (password only for the single-password setup)."""
    st.title("选题雷达 Topic Miner")
    try:
        accounts = _accounts()
    except AuthConfigError as exc:
        st.error("登录配置有误，已拒绝所有访问 Sign-in is misconfigured; all access refused.")
        st.code(str(exc), language=None, wrap_lines=True)
        return
    if accounts is None:
        return
    password_only = set(accounts) == {SINGLE_USER} and accounts[SINGLE_USER].env_password is not None
    st.subheader("登录 Sign in")
    with st.form("auth.form"):
        username = SINGLE_USER if password_only else st.text_input("用户名 Username", key="auth.username",
                                                                         max_chars=64)
        password = st.text_input("访问密码 Password", type="password", key="auth.password")
        submitted = st.form_submit_button("进入 Enter" if password_only else "登录 Sign in", type="primary")
    if submitted:
        _sign_in(accounts, username, password, password_only)


def _sign_in(accounts: dict[str, Account], username: str, password: str, password_only: bool) -> None:
    key = normalize_username(username)
    limiter = _limiter()
    st.session_state.pop("auth.password", None)
    wait = limiter.locked_for(key)
    if wait:                       # locked: the password is not even checked
        st.error(_locked_message(wait))
        return
    account = check_password(accounts, key, password)
    if account is None:
        locked = limiter.record_failure(key)
        st.error(_locked_message(locked) if locked else
                 ("密码错误 Wrong password" if password_only else "用户名或密码错误 Wrong username or password"))
        return
    limiter.record_success(key)
    st.session_state[SESSION_USER] = account.username
    st.rerun()


def _locked_message(seconds: float) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return f"失败次数过多，请 {minutes} 分钟后再试 Too many failed sign-ins; try again in {minutes} min."
