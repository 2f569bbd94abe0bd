"""Optional password gate: on when ``st.secrets["password"]`` or ``MINER_APP_PASSWORD`` is set."""
from __future__ import annotations

import hmac
import os

import streamlit as st

ENV_VAR = "MINER_APP_PASSWORD"


def configured_password() -> str | None:
    """The password from the environment, else from ``.streamlit/secrets.toml``; None = no gate."""
    if os.environ.get(ENV_VAR):
        return os.environ[ENV_VAR]
    if st.secrets.load_if_toml_exists():        # no secrets file is fine (and prints nothing)
        value = st.secrets.get("password")
        return str(value) if value else None
    return None


def password_ok() -> bool:
    """True when no password is configured or this session entered it; otherwise draw the form."""
    expected = configured_password()
    if expected is None or st.session_state.get("auth.ok"):
        return True
    st.title("选题雷达 Topic Miner")
    with st.form("auth.form"):
        given = st.text_input("访问密码 Password", type="password", key="auth.password")
        submitted = st.form_submit_button("进入 Enter")
    if submitted:
        if hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8")):
            st.session_state["auth.ok"] = True
            st.session_state.pop("auth.password", None)
            st.rerun()
        st.error("密码错误 Wrong password")
    return False
