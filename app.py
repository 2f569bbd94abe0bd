"""选题雷达 Topic Miner — Streamlit entry point: `streamlit run app.py`.

A router only: an optional password gate, then st.navigation over the pages in pages/.
Each page runs alone too (AppTest.from_file) and builds the demo snapshot on first start.
"""
import streamlit as st

from miner.ui.auth import password_ok

st.set_page_config(page_title="选题雷达 Topic Miner", page_icon=":material/radar:", layout="wide")

if not password_ok():
    st.stop()

PAGES = [
    st.Page("pages/overview.py", title="总览", icon=":material/dashboard:", default=True),
    st.Page("pages/topic_detail.py", title="话题详情", icon=":material/insights:"),
    st.Page("pages/search.py", title="选题搜索", icon=":material/search:"),
    st.Page("pages/brief.py", title="内容简报", icon=":material/description:"),
    st.Page("pages/data.py", title="数据管理", icon=":material/database:"),
]
st.navigation(PAGES).run()
