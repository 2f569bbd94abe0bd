"""Shape miner tables for display: join, label, mark k-anonymity suppression, column config."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from miner import schema

SUPPRESSED_ZH = "<{k} 人，已隐藏"
AMOUNTS_SUPPRESSED_ZH = "金额：买家 <{k} 人，已隐藏"

OVERVIEW_COLUMNS = ["topic_id", "label", "stage_zh", "score", "growth_display", "notes", "engagement",
                    "penetration", "engagement_rate", "attributed_gmv", "aov", "assoc_lift_text", "privacy",
                    "keywords", "why"]
METRIC_COLUMNS = ["brand", "reach", "penetration", "engagement_rate", "attributed_gmv", "aov", "conversion_rate",
                  "assoc_lift", "assoc_lift_lo", "assoc_lift_hi", "lift_significant", "n_reached",
                  "n_matched_control", "aov_lift", "buyers", "suppressed", "orders_suppressed"]
ASSOC_LIFT_HELP = ("关联提升 = 触达用户转化率 ÷ 同性别×年龄×城市×既往活跃度的未触达用户转化率；"
                   "括号内为 95% 区间，区间含 1 标「不显著」。是相关，不是因果。")


def lift_text(lift, lo, hi, significant) -> str:
    """``1.32× [1.10–1.58]``; ``不显著`` when the interval contains 1; ``—`` when hidden or missing."""
    if lift is None or pd.isna(lift):
        return "—"
    text = f"{lift:.2f}×"
    if lo is not None and hi is not None and pd.notna(lo) and pd.notna(hi):
        text += f" [{lo:.2f}–{hi:.2f}]"
    return text if _true(significant) else text + " 不显著"


def privacy_note(suppressed, amounts_suppressed, k: int) -> str:
    if _true(suppressed):
        return SUPPRESSED_ZH.format(k=k)
    if _true(amounts_suppressed):
        return AMOUNTS_SUPPRESSED_ZH.format(k=k)
    return ""


def _true(value) -> bool:
    return value is not None and not (isinstance(value, float) and np.isnan(value)) and bool(value)


MIXED_ZH = "混合话题"


def overview_table(trends: pd.DataFrame, opp: pd.DataFrame, metrics: pd.DataFrame | None, k: int,
                   topics: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per topic in the filter: trend + opportunity (+ audience metrics when present).

    Topics whose keywords do not hang together (``is_mixed``, low NPMI coherence) are marked
    混合话题 and sorted last by :func:`sort_topics`.
    """
    from miner.insights.opportunity import COMPONENT_NAMES_ZH, FLAG_NAMES_ZH
    out = trends.copy()
    if topics is not None and "is_mixed" in topics:
        mixed = topics.set_index(schema.TOPIC_ID)["is_mixed"].fillna(False).astype(bool)
        out["is_mixed"] = out[schema.TOPIC_ID].map(mixed).fillna(False).astype(bool)
    else:
        out["is_mixed"] = False
    comps = [c for c in COMPONENT_NAMES_ZH if c in opp]
    out = out.merge(opp[[schema.TOPIC_ID, "score", "rank", *comps, "flags"]], on=schema.TOPIC_ID, how="left")
    if metrics is not None:
        keep = [c for c in METRIC_COLUMNS if c in metrics]
        out = out.merge(metrics[[schema.TOPIC_ID, *keep]], on=schema.TOPIC_ID, how="left")
    for col in METRIC_COLUMNS:
        if col not in out:
            out[col] = np.nan
    out["privacy"] = [privacy_note(s, a, k) for s, a in zip(out["suppressed"], out["orders_suppressed"])]
    out["assoc_lift_text"] = [lift_text(*v) for v in zip(out["assoc_lift"], out["assoc_lift_lo"],
                                                         out["assoc_lift_hi"], out["lift_significant"])]

    def why(row) -> str:
        parts = [f"{COMPONENT_NAMES_ZH[c]} {row[c]:.2f}" for c in comps if pd.notna(row.get(c))]
        flags = [FLAG_NAMES_ZH.get(f, f) for f in (row["flags"] if isinstance(row["flags"], (list, np.ndarray))
                                                   else [])]
        return " · ".join(parts) + (f"（{'；'.join(flags)}）" if flags else "")

    out["why"] = out.apply(why, axis=1) if len(out) else pd.Series(dtype=object)
    out.loc[out["is_mixed"], "why"] = MIXED_ZH + "（关键词不成主题，不建议作为选题）· " + out.loc[out["is_mixed"], "why"]
    return out.drop(columns=["flags"])


def sort_topics(table: pd.DataFrame, column: str) -> pd.DataFrame:
    """Best first; missing (suppressed / no data) values last; mixed topics after all others."""
    if column not in table or table.empty:
        return table
    mixed = table["is_mixed"] if "is_mixed" in table else pd.Series(False, index=table.index)
    ordered = table.assign(_mixed=mixed.astype(bool))
    ordered = ordered.sort_values([column, schema.TOPIC_ID], ascending=[False, True], na_position="last",
                                  kind="stable")
    return ordered.sort_values("_mixed", kind="stable").drop(columns="_mixed").reset_index(drop=True)


def overview_column_config(k: int) -> dict:
    cc = st.column_config
    return {
        "topic_id": cc.NumberColumn("#", width="small"),
        "label": cc.TextColumn("话题", width="medium"),
        "stage_zh": cc.TextColumn("生命周期", width="small"),
        "score": cc.ProgressColumn("机会分", min_value=0.0, max_value=1.0, format="%.2f"),
        "growth_display": cc.TextColumn("增长 (篇数)", help="近一窗口声量占比 vs 前一窗口，括号内为前→后篇数；"
                                        "上升/爆发的判定经 Benjamini–Hochberg 多重检验校正"),
        "notes": cc.NumberColumn("笔记数", format="%d"),
        "engagement": cc.NumberColumn("互动量", format="localized"),
        "penetration": cc.NumberColumn("渗透率", format="percent", help=f"少于 {k} 人的单元格隐藏"),
        "engagement_rate": cc.NumberColumn("互动率", format="percent"),
        "attributed_gmv": cc.NumberColumn("归因 GMV", format="¥%.0f",
                                          help="每笔订单按买家互动过的话题平均拆分，各话题之和不超过品牌 GMV"),
        "aov": cc.NumberColumn("客单价", format="¥%.0f"),
        "assoc_lift_text": cc.TextColumn("关联提升 [95%区间]", help=ASSOC_LIFT_HELP),
        "privacy": cc.TextColumn("隐私保护", help=f"k-匿名：少于 {k} 人的指标不显示"),
        "keywords": cc.TextColumn("关键词", width="medium"),
        "why": cc.TextColumn("机会构成", width="large"),
    }


# ---- topic detail ----------------------------------------------------------------------------------
GENDER_ZH = {"F": "女性", "M": "男性", "U": "未知"}
TIER_ZH = {"1": "一线", "new1": "新一线", "2": "二线", "3": "三线", "4+": "四线及以下"}
AGE_ORDER = ("<18", "18-24", "25-34", "35-44", "45+")
FLOW_PAIRS = (("A", "I"), ("I", "TI"), ("TI", "P"), ("P", "S"))


def cell_text(value, suppressed, k: int, fmt: str = "{:.1%}") -> str:
    """A metric as text, or the k-anonymity notice when its cell is hidden."""
    if _true(suppressed):
        return SUPPRESSED_ZH.format(k=k)
    if value is None or pd.isna(value):
        return "—"
    return fmt.format(value)


def penetration_grid(frame: pd.DataFrame, topic_id: int, k: int) -> pd.DataFrame:
    """Age band × gender penetration of one topic as text; hidden cells say so."""
    df = frame[frame[schema.TOPIC_ID] == topic_id].copy()
    df["text"] = [cell_text(v, s, k) for v, s in zip(df["penetration"], df["suppressed"])]
    grid = df.pivot(index="age_band", columns="gender", values="text")
    grid = grid.reindex(index=[a for a in AGE_ORDER if a in grid.index],
                        columns=[g for g in GENDER_ZH if g in grid.columns])
    grid.index = [f"{a} 岁" for a in grid.index]
    grid.index.name = "年龄"
    return grid.rename(columns=GENDER_ZH)


def penetration_cells(frame: pd.DataFrame, topic_id: int, column: str, k: int) -> pd.DataFrame:
    """One topic's penetration per value of ``column``, with ``hidden_text`` for the chart."""
    df = frame[frame[schema.TOPIC_ID] == topic_id].copy()
    names = {"gender": GENDER_ZH, "city_tier": TIER_ZH}.get(column, {})
    order = {"age_band": list(AGE_ORDER), "city_tier": list(TIER_ZH), "gender": list(GENDER_ZH)}.get(column)
    if order:
        df[column] = pd.Categorical(df[column], categories=order, ordered=True)
        df = df.sort_values(column)
    df[column] = df[column].astype(str).map(lambda v: names.get(v, v))
    df["hidden_text"] = SUPPRESSED_ZH.format(k=k)
    return df.reset_index(drop=True)


def flow_table(metrics_row: pd.Series | None, k: int) -> pd.DataFrame:
    """AIPS step rates and association lift vs matched unreached users for one topic (segment metrics)."""
    from miner.schema import AIPS_STAGE_NAMES as N
    rows = []
    for a, b in FLOW_PAIRS:
        def get(col):
            return None if metrics_row is None else metrics_row.get(col)
        moved, rate, lift = get(f"flow_{a}_{b}"), get(f"flow_rate_{a}_{b}"), get(f"flow_lift_{a}_{b}")
        hidden = metrics_row is not None and pd.isna(moved) and pd.isna(rate)
        lift_shown = (SUPPRESSED_ZH.format(k=k) if hidden and pd.isna(lift) else
                      lift_text(lift, get(f"flow_lift_lo_{a}_{b}"), get(f"flow_lift_hi_{a}_{b}"),
                                get(f"flow_significant_{a}_{b}")))
        rows.append({"流转": f"{N[a]}→{N[b]} ({a}→{b})",
                     "流转人数": cell_text(moved, hidden, k, "{:,.0f}"),
                     "流转率": cell_text(rate, hidden, k),
                     "关联提升 vs 匹配未触达 [95%]": lift_shown})
    return pd.DataFrame(rows)
