"""选题雷达 Topic Miner — Streamlit entry point: `streamlit run app.py`.

A router only. Signed out (when accounts or MINER_APP_PASSWORD are configured), every page's URL
is registered to the sign-in form, so no page script runs; signed in, the real pages. Each page
also runs the guard itself (widgets.page_setup), which covers Streamlit serving pages/*.py
directly and AppTest.from_file. See miner/ui/auth.py and the README (Accounts and roles).
"""
from pathlib import Path

import streamlit as st

from miner.ui import auth

st.set_page_config(page_title="选题雷达 Topic Miner", page_icon=":material/radar:", layout="wide")

PAGES = [  # (file, title, icon); the first is the default page
    ("pages/overview.py", "总览", ":material/dashboard:"),
    ("pages/topic_detail.py", "话题详情", ":material/insights:"),
    ("pages/search.py", "选题搜索", ":material/search:"),
    ("pages/brief.py", "内容简报", ":material/description:"),
    ("pages/curation.py", "话题管理", ":material/edit_note:"),
    ("pages/data.py", "数据管理", ":material/database:"),
]

if auth.signed_in():
    st.navigation([st.Page(path, title=title, icon=icon, default=i == 0)
                   for i, (path, title, icon) in enumerate(PAGES)]).run()
else:   # same URL paths (same page hashes), so after sign-in the requested page opens
    st.navigation([st.Page(auth.login_form, title="登录 Sign in", url_path=Path(path).stem, default=i == 0)
                   for i, (path, _, _) in enumerate(PAGES)], position="hidden").run()
