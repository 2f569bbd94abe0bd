"""Plotly figures built fresh on each rerun from cached DataFrames (figures are never cached).

Plotly reads a small HTML subset in text (``<a href>``, ``<b>``), so every label that comes from
note text goes through :func:`svg_safe` first.
"""
from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from miner.schema import AIPS_STAGE_NAMES, AIPS_STAGES

STAGE_COLORS = {"新兴": "#ff2442", "上升": "#ff8c00", "爆发": "#8e44ad", "季节性": "#2980b9",
                "一次性热点": "#d35400", "衰退": "#95a5a6", "常青": "#27ae60", "未知": "#bdc3c7"}
PHASE_COLORS = {"seeding": "rgba(52,152,219,0.10)", "burst": "rgba(255,36,66,0.16)",
                "after": "rgba(149,165,166,0.12)"}
FONT = "Noto Sans CJK SC, PingFang SC, Microsoft YaHei, sans-serif"


def svg_safe(text) -> str:
    """Neutralise plotly's pseudo-HTML in untrusted text."""
    return str(text).replace("&", "＆").replace("<", "＜").replace(">", "＞")


def _layout(fig: go.Figure, height: int = 420) -> go.Figure:
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40, b=10), font=dict(family=FONT),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    return fig


def topic_map(frame: pd.DataFrame, label_top: int = 25) -> go.Figure:
    """Scatter of topics: ``x``, ``y``, ``notes`` (size), ``stage_zh`` (colour), ``label`` (shown on
    the ``label_top`` largest; every bubble has it on hover)."""
    df = frame.copy()
    df["stage_zh"] = df["stage_zh"].fillna("未知")
    df["label"] = df["label"].map(svg_safe)
    df["size_"] = df["notes"].clip(lower=1)
    biggest = set(df.nlargest(label_top, "notes").index)
    df["text_"] = [lab if i in biggest else "" for i, lab in zip(df.index, df["label"])]
    fig = px.scatter(df, x="x", y="y", size="size_", color="stage_zh", color_discrete_map=STAGE_COLORS,
                     text="text_", hover_name="label",
                     hover_data={"notes": True, "x": False, "y": False, "size_": False, "stage_zh": False,
                                 "text_": False},
                     labels={"notes": "笔记数", "stage_zh": "生命周期"}, size_max=46)
    fig.update_traces(textposition="top center", textfont=dict(size=11))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, 460)


def trend(series: pd.DataFrame, nodes=(), title: str = "") -> go.Figure:
    """Daily notes of one topic with a 7-day mean; marketing nodes as shaded phases + a date line."""
    s = series.sort_values("period_start")
    x = pd.to_datetime(s["period_start"])
    x = x.dt.tz_localize(None) if x.dt.tz is not None else x     # plot local wall-clock days
    fig = go.Figure()
    fig.add_bar(x=x, y=s["note_count"], name="每日笔记数", marker_color="rgba(255,36,66,0.35)")
    fig.add_scatter(x=x, y=s["note_count"].rolling(7, min_periods=1).mean(), name="7日均值",
                    mode="lines", line=dict(color="#ff2442", width=2))
    if "share_of_volume" in s:
        fig.add_scatter(x=x, y=s["share_of_volume"] * 100, name="声量占比 %", mode="lines",
                        line=dict(color="#34495e", width=1, dash="dot"), yaxis="y2")
    shapes, notes = node_markers(nodes)
    fig.update_layout(shapes=shapes, annotations=notes)     # one update: add_vrect per phase took ~2 s
    fig.update_layout(title=svg_safe(title), barmode="overlay",
                      yaxis=dict(title="笔记数", rangemode="tozero"),
                      yaxis2=dict(title="占比 %", overlaying="y", side="right", showgrid=False, rangemode="tozero"))
    return _layout(fig)


def node_markers(nodes) -> tuple[list[dict], list[dict]]:
    """Plain-dict shapes (shaded phases, a dashed line on the day) and labels for marketing nodes."""
    shapes, notes = [], []
    for node in nodes:
        for phase, (lo, hi) in node.phases.items():
            shapes.append(dict(type="rect", xref="x", yref="paper", x0=pd.Timestamp(lo),
                               x1=pd.Timestamp(hi) + pd.Timedelta(days=1), y0=0, y1=1, line_width=0,
                               fillcolor=PHASE_COLORS.get(phase, "rgba(0,0,0,0.05)"), layer="below"))
        day = pd.Timestamp(node.date)
        shapes.append(dict(type="line", xref="x", yref="paper", x0=day, x1=day, y0=0, y1=1,
                           line=dict(color="#ff2442", dash="dash", width=1)))
        notes.append(dict(x=day, y=1, xref="x", yref="paper", yanchor="bottom", showarrow=False,
                          text=svg_safe(node.name_zh), font=dict(color="#ff2442")))
    return shapes, notes


def aips_funnel(counts: pd.DataFrame, suppressed_text: str) -> go.Figure:
    """Reached users by AIPS stage (认知 → 分享); hidden cells are drawn empty and say so."""
    rows = []
    for stage in AIPS_STAGES:
        cell = counts[counts["stage"] == stage]
        hidden = cell.empty or bool(cell["suppressed"].any())
        users = 0.0 if hidden else float(cell["users"].sum())
        text = suppressed_text if hidden else f"{users:,.0f} 人"
        rows.append((f"{AIPS_STAGE_NAMES[stage]} {stage}", users, text))
    fig = go.Figure(go.Funnel(y=[r[0] for r in rows], x=[r[1] for r in rows], text=[r[2] for r in rows],
                              textinfo="text", marker=dict(color=["#fde2e4", "#fbb1bd", "#ff7a90", "#ff2442",
                                                                  "#b3001b"])))
    return _layout(fig, 360)


def penetration_bars(frame: pd.DataFrame, column: str, title: str) -> go.Figure:
    """Penetration per segment cell; suppressed cells keep their bar slot at 0 with a note."""
    df = frame.copy()
    df["value"] = df["penetration"].fillna(0) * 100
    df["text"] = [t if s else f"{v:.1f}%" for v, s, t in zip(df["value"], df["suppressed"], df["hidden_text"])]
    fig = px.bar(df, x=column, y="value", text="text", labels={"value": "渗透率 %", column: ""})
    fig.update_traces(marker_color=["#dfe6e9" if s else "#ff2442" for s in df["suppressed"]])
    fig.update_layout(title=title)
    return _layout(fig, 340)


def scorecard_radar(card: pd.DataFrame, topic_id: int) -> go.Figure:
    """极光 quadrants of one topic (:func:`miner.insights.scorecard.topic_scorecard` rows): each quadrant's
    mean percentile among topics (0–100) as a radar, with the median topic (50) dashed; the hover
    lists each metric's raw value and percentile. A quadrant without data is drawn at 0 and says so."""
    rows = card[card["topic_id"] == topic_id]
    order = list(dict.fromkeys(card["quadrant_zh"]))
    r, hover = [], []
    for q in order:
        sub = rows[rows["quadrant_zh"] == q]
        score = sub["quadrant_score"].iloc[0] if len(sub) else float("nan")
        r.append(0.0 if pd.isna(score) else float(score))
        lines = [f"{svg_safe(m)}: " + ("无数据" if pd.isna(v) else f"{v:,.3g} (P{p:.0f})")
                 for m, v, p in zip(sub["metric_zh"], sub["value"], sub["percentile"])]
        hover.append("<br>".join(lines) or "无数据")
    fig = go.Figure()
    fig.add_scatterpolar(r=[50.0] * len(order) + [50.0], theta=order + order[:1], mode="lines", name="中位话题",
                         line=dict(color="#95a5a6", dash="dash", width=1), hoverinfo="skip")
    fig.add_scatterpolar(r=r + r[:1], theta=order + order[:1], fill="toself", name="本话题",
                         line=dict(color="#ff2442"), fillcolor="rgba(255,36,66,0.25)",
                         customdata=hover + hover[:1], hovertemplate="%{theta} %{r:.0f}<br>%{customdata}<extra></extra>")
    fig = _layout(fig, 400)
    # the page heading names the chart; room around the circle for the quadrant names, legend below
    fig.update_layout(polar=dict(radialaxis=dict(range=[0, 100], tickvals=[25, 50, 75, 100])),
                      margin=dict(l=70, r=70, t=30, b=30),
                      legend=dict(orientation="h", yanchor="top", y=-0.05, x=0.5, xanchor="center"))
    return fig
