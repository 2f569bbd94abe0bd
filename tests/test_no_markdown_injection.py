"""No user-controlled text is rendered as Markdown/HTML: Markdown/HTML payloads go through every page.

The payload workspace (conftest.py) puts ``![x](http://127.0.0.1:9/p.png)``, ``[link](http://evil)``,
``<img src=x onerror=alert(1)>`` and ``**bold**`` into note titles, tags, categories, topic labels and
keywords; the signed-in user's display name is one too, and an uploaded CSV's header carries them
into the "import refused" error. Every string Streamlit renders as Markdown (markdown, captions,
headings, alerts, metric/widget/expander/tab labels, help) is parsed with CommonMark (raw HTML on,
as the browser would get it) and must produce no image, link, raw HTML or payload bold. Plotly
specs must hold no raw ``<img``/``<a`` either (plotly reads a small HTML subset).
"""
from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import AlertBase, Block, HeadingBase, Markdown, Text, UnknownElement

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 120
_MD = MarkdownIt("commonmark")           # html=True: raw HTML would pass through, so we would see it


def rendered_markup(source: str) -> list[str]:
    """What in ``source`` would render as an image, link, raw HTML or the payload's bold."""
    found = []
    for block in _MD.parse(source):
        tokens = block.children or [block]
        for i, tok in enumerate(tokens):
            if tok.type in ("image", "link_open", "html_inline", "html_block"):
                found.append(tok.type)
            elif tok.type == "strong_open" and i + 1 < len(tokens) and tokens[i + 1].content.startswith("bold"):
                found.append("strong(bold)")
    return found + gfm_autolinks(rendered_text(source))


_GFM_LITERAL = re.compile(r"(?i)(?:https?://|www\.)[-\w]+(?:\.[-\w]+)+|[-.\w+]+@[-\w]+(?:\.[-\w]+)+")


def gfm_autolinks(text: str) -> list[str]:
    """Bare URLs/e-mails GFM (remark-gfm, as in Streamlit) links. It scans text *after* escapes are
    resolved, so backslash escapes do not stop it; the match must follow a space or punctuation."""
    found = []
    for m in _GFM_LITERAL.finditer(text):
        before = text[m.start() - 1] if m.start() else " "
        if before.isspace() or unicodedata.category(before)[0] in "PS":
            found.append(f"autolink {m.group(0)}")
    return found


def rendered_text(source: str) -> str:
    """The visible text of ``source`` rendered as Markdown (tags stripped, entities decoded)."""
    import html as html_lib
    return html_lib.unescape(re.sub(r"<[^>]+>", "", _MD.render(source)))


def _markdown_strings(node, where: str = "") -> list[tuple[str, str]]:
    """(element type, text) for every string of the tree that Streamlit renders as Markdown."""
    out: list[tuple[str, str]] = []
    if isinstance(node, Block):
        label = getattr(node, "label", None)           # expanders, tabs
        if isinstance(label, str):
            out.append((node.type, label))
        for child in node.children.values():
            out += _markdown_strings(child)
        return out
    if isinstance(node, Text):
        return out                                      # st.text: plain by construction
    if isinstance(node, (Markdown, HeadingBase, AlertBase)):
        out.append((node.type, node.value))
    proto = getattr(node, "proto", None)
    for field in ("label", "help"):
        value = getattr(proto, field, None)
        if isinstance(value, str) and value:
            out.append((f"{node.type}.{field}", value))
    return out


def _plotly_specs(node) -> list[str]:
    if isinstance(node, Block):
        return [s for child in node.children.values() for s in _plotly_specs(child)]
    if isinstance(node, UnknownElement) and node.type == "plotly_chart":
        return [json.dumps(json.loads(node.proto.spec), ensure_ascii=False)]
    return []


def assert_no_markup(at: AppTest) -> list[str]:
    """Fail on rendered markup anywhere; return the visible text of all Markdown strings."""
    assert not at.exception, [e.message for e in at.exception]
    strings = _markdown_strings(at.main) + _markdown_strings(at.sidebar)
    bad = [(kind, text, found) for kind, text in strings if (found := rendered_markup(text))]
    assert not bad, bad
    for spec in _plotly_specs(at.main):
        assert "<img" not in spec and "<a " not in spec and "<b>bold" not in spec
    return [rendered_text(text).replace("\u2060", "") for _, text in strings]   # minus md_escape's joiner


def shown_literally(texts: list[str], payloads) -> set[str]:
    """The payloads that appear verbatim, as text, in the rendered strings (proof they got this far)."""
    return {p for p in payloads if any(p in t for t in texts)}


@pytest.fixture
def payload_user(payload_workspace, payloads, tmp_path, monkeypatch):
    """Signed in as an editor whose display name is a payload too."""
    from miner import accounts
    path = tmp_path / "auth.yaml"
    accounts.add_user(path, "eve", "eve-password", "editor", name=payloads[2])
    monkeypatch.setenv("MINER_AUTH_FILE", str(path))
    return payload_workspace


def page(path: str, **state) -> AppTest:
    at = AppTest.from_file(str(REPO / path), default_timeout=TIMEOUT)
    at.session_state["auth.user"] = "eve"
    for key, value in state.items():
        at.session_state[key] = value
    return at.run()


def _topic_ids(config) -> list[int]:
    from miner.topics.snapshot import load_snapshot
    return sorted(int(t) for t in load_snapshot(config).topics["topic_id"])


def test_overview_and_sidebar(payload_user, payloads):
    at = page("pages/overview.py")
    assert_no_markup(at)
    assert payloads[2] in [t.value for t in at.sidebar.text][0]            # the name, as plain text
    assert any("onerror" in str(v) for v in at.dataframe[0].value["label"])  # labels reached the table
    category = next(o for o in at.selectbox(key="overview.category").options if "**bold**" in o)
    at.selectbox(key="overview.category").select(category).run()
    assert_no_markup(at)


def test_topic_detail_every_topic(payload_user, payloads):
    at = page("pages/topic_detail.py")
    seen: set[str] = set()
    for topic in _topic_ids(payload_user):
        at.selectbox(key="detail.topic").set_value(topic).run()
        seen |= shown_literally(assert_no_markup(at), payloads)
        texts = [t.value for t in at.text]
        assert any(p in t for t in texts for p in payloads)               # note titles: plain text
    assert seen == set(payloads)                        # every label showed its payload as literal text


def test_brief_every_topic(payload_user, payloads):
    at = page("pages/brief.py")
    seen: set[str] = set()
    for topic in _topic_ids(payload_user):
        at.selectbox(key="brief.topic").set_value(topic).run()
        seen |= shown_literally(assert_no_markup(at), payloads)
    assert seen == set(payloads)


@pytest.mark.parametrize("query", ["露营 装备", "猫咪 日常", 0, 1, 2, 3])     # ints: payloads[i]
def test_search_results_and_errors(payload_user, payloads, query):
    query = payloads[query] if isinstance(query, int) else query
    at = page("pages/search.py")
    at.text_input(key="search.query").input(query).run()
    texts = assert_no_markup(at)
    shown = " ".join(texts + [t.value for t in at.text])
    assert at.error or "推荐理由" in shown              # results, or a refusal whose text is inert


def test_data_page_import_refused_column_names(payload_user, payloads, monkeypatch):
    import streamlit as st

    class Upload:
        name = "evil.csv"

        @staticmethod
        def getvalue() -> bytes:
            return (",".join(payloads) + "\n1,2,3,4\n").encode()

    monkeypatch.setattr(st, "file_uploader", lambda *a, **k: Upload())    # AppTest cannot upload files
    at = page("pages/data.py")
    assert_no_markup(at)
    at.button(key="data.ingest").click().run()
    texts = assert_no_markup(at)
    assert "导入失败" in at.error[0].value
    assert shown_literally(texts, payloads) == set(payloads)      # every header is named in the error, as text


def test_markup_detector_catches_raw_payloads(payloads):
    """The checker itself: raw payloads are caught, escaped ones are not."""
    from miner.ui.widgets import WORD_JOINER, md_escape
    for payload in payloads:
        assert rendered_markup(f"导入失败: {payload}")
        assert not rendered_markup(f"导入失败: {md_escape(payload)}")
        assert payload in rendered_text(md_escape(payload)).replace(WORD_JOINER, "")
    assert gfm_autolinks(rendered_text(r"见 http\:\/\/a\.cn、www\.b\.com 或 c\@d\.cn"))   # escapes do not help
    assert not rendered_markup(md_escape("见 http://a.cn、www.b.com 或 c@d.cn"))
