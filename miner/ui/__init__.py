"""Streamlit layer of 选题雷达 — the only package that imports streamlit.

``loaders``  cached snapshot/embedder/searcher (``st.cache_resource``) and tables (``st.cache_data``)
``widgets``  page setup, sidebar status, filters, pickers, safe text rendering
``tables``   shaping miner tables for display (k-anonymity notes, column config)
``charts``   plotly figures (built per rerun, never cached)
``manage``   upload → ingest, table counts, snapshot catalog, rebuild (no streamlit)
``bootstrap`` first-start demo workspace (no streamlit)
``auth``     optional password gate
"""
