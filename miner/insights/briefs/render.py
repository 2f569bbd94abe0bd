"""Markdown rendering of a :class:`ContentBrief` (for people; ``to_json`` is for machines)."""
from __future__ import annotations

import numpy as np

from miner.insights.briefs.parts import NOTE_TYPES_ZH

__all__ = ["render_markdown"]


def fmt_num(v, pct=False) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "—"
    if pct:
        return f"{v:.1%}"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.2f}".rstrip("0").rstrip(".")


def _ids(ids) -> str:
    return "证据: " + ", ".join(f"`{i}`" for i in ids) if ids else "证据: —"


def _p(p) -> str:
    return "—" if p is None else (f"{p:.3f}" if p >= 0.001 else "<0.001")


def _header(b) -> list[str]:
    L = [f"# 选题简报 · [{b.topic_id}] {b.label}", "",
         f"> 快照 `{b.run_id}` · {b.n_notes} 篇笔记 · 生成于 {b.generated_at} · 规划日 "
         f"{b.data_freshness.get('planned_on', '—')}", ""]
    if not b.recommended:
        L += ["> **⚠ 混合话题, 不推荐作为选题。** " + (b.notes[0] if b.notes else ""), ""]
    f = b.data_freshness
    if f.get("stale"):
        L += [f"> **数据时效: 数据截至 {f['data_end']}, 比规划日早 {f['data_age_days']} 天** "
              f"(超过 {f['stale_days']} 天); 趋势与「近期」均为数据末尾的状态。", ""]
    L += ["## 定位", "", b.positioning + ("" if b.positioning_source == "rule" else f" _(由 {b.positioning_source} 润色)_"),
          "", f"{_ids(b.positioning_evidence)}", ""]
    return L


def _audience(b) -> list[str]:
    a = b.audience
    L = ["## 目标人群", "", f"- 人群: {a.get('segment_zh')}"]
    for key, name, pct in (("penetration", "渗透率", True), ("reach", "触达人数", False),
                           ("engagement_rate", "互动率", True), ("conversion_rate", "转化率", True),
                           ("aov", "客单价", False)):
        if key in a:
            L.append(f"- {name}: {fmt_num(a[key], pct)}")
    if a.get("assoc_lift") is not None:
        verdict = "" if a.get("lift_significant") else " (区间含 1, 不显著)"
        L.append(f"- 关联提升 (转化, 对比匹配的未触达人群, 相关非因果): {fmt_num(a['assoc_lift'])}× "
                 f"[{fmt_num(a.get('assoc_lift_lo'))}–{fmt_num(a.get('assoc_lift_hi'))}]{verdict}; "
                 f"触达 {fmt_num(a.get('n_reached'))} 人 vs 对照 {fmt_num(a.get('n_matched_control'))} 人")
    if a.get("attributed_gmv") is not None:
        L.append(f"- 归因 GMV (订单按互动话题拆分): ¥{a['attributed_gmv']:,.0f}")
    if a.get("aips_stage"):
        L.append(f"- AIPS 阶段: 重点人群在 {a['aips_stage_zh']} ({a['aips_basis']})")
    if b.tgi:
        L += ["", "### 人群纠偏 (TGI, 互动人群 vs 全体人群)", ""]
        for r in b.tgi:
            lift = ""
            if r.get("conversion_lift") is not None and np.isfinite(r["conversion_lift"]):
                lift = (f"; 关联提升: 转化为话题其余互动人群的 {r['conversion_lift']:.2f} 倍 "
                        f"({fmt_num(r.get('lift_lo'))}–{fmt_num(r.get('lift_hi'))})")
            L.append(f"- **{r['headline']}** (区间 {r['tgi_lo']:.0f}–{r['tgi_hi']:.0f}, "
                     f"{r['engaged_users']:,} 人{lift})")
    return L + [""]


def _scorecard(b) -> list[str]:
    if not b.scorecard:
        return []
    L = ["## 极光指标 (四象限)", "", "| 象限 | 指标 | 数值 | 话题间百分位 | 口径 |", "|---|---|---|---|---|"]
    for r in b.scorecard:
        pct = r.get("unit") == "share"
        pr = "—" if r.get("percentile") is None or not np.isfinite(r["percentile"]) else f"P{r['percentile']:.0f}"
        L.append(f"| {r['quadrant_zh']} | {r['metric_zh']} | {fmt_num(r['value'], pct)} | {pr} | {r['basis']} |")
    return L + [""]


def _trend(b) -> list[str]:
    t = b.trend
    L = ["## 趋势与机会", ""]
    if t.get("stage"):
        L.append(f"- 生命周期 (截至 {t['as_of']}): **{t['stage_zh']}** (增长 {fmt_num(t.get('growth_pct'))}%, "
                 f"增长 z {fmt_num(t.get('growth_z'))}, 爆发 z {fmt_num(t.get('burst_z'))}; "
                 f"近{t['window_days']}天 {t['recent_notes']} 篇 vs 前{t['window_days']}天 {t['previous_notes']} 篇)")
    if t.get("planned_on"):
        L.append(f"- 到规划日 {t['planned_on']}: 近{t['window_days']}天 {t['recent_notes_to_planning']} 篇, "
                 f"前{t['window_days']}天 {t['previous_notes_to_planning']} 篇")
    if b.opportunity:
        o = b.opportunity
        L.append(f"- 机会分 {o['score'] * 100:.0f}/100 (第 {o['rank']}/{o['of']} 名): 势头 {o['momentum']:.2f} · "
                 f"人群空间 {o['headroom']:.2f} · 转化价值 {o['value']:.2f} · 蓝海度 {o['openness']:.2f}"
                 + (f" · 节点契合 {o['timing']:.2f}" if o.get("timing") is not None else ""))
        if o["flags_zh"]:
            L.append(f"  - 说明: {'; '.join(o['flags_zh'])}")
    L += ["", "## 关键词与话题标签", "", "关键词: " + " · ".join(b.keywords), ""]
    for h in b.hashtags:
        src = "笔记中使用" if h["source"] == "notes" else "由关键词建议"
        L.append(f"- {h['tag']} ({src}, {h['n_notes']} 篇, 占 {h['share']:.0%}, 互动中位数 "
                 f"{fmt_num(h['median_engagement'])}) {_ids(h['note_ids'])}")
    return L


def _angles_titles(b) -> list[str]:
    L = ["", "## 切入角度", ""]
    for i, ang in enumerate(b.angles, 1):
        ci = (f", 区间 {ang.index_low:.2f}–{ang.index_high:.2f}" if ang.index_low is not None else "")
        L.append(f"{i}. **{ang.label}** — {ang.n_notes} 篇 ({ang.share:.0%}), 年龄调整互动为话题的 "
                 f"{ang.engagement_index:.2f} 倍{ci} (原始互动中位数 {fmt_num(ang.median_engagement)}); 关键词 "
                 f"{' '.join(ang.keywords)}. {_ids(ang.note_ids)}")
    if not b.angles:
        L.append("- 没有达到最小规模的子群, 不细分切入角度")
    L += ["", "## 标题公式与开头钩子", ""]
    tl = b.title_length
    L.append(f"- 标题长度: 高互动标题中位数 {tl['median_top']:.0f} 字 (全部 {tl['median_all']:.0f} 字), "
             f"建议 {tl['recommended'][0]}–{tl['recommended'][1]} 字 (基于年龄调整互动前 25% 的 {tl['n_top']} 篇)")
    for p in list(b.title_patterns) + list(b.hooks):
        ex = " / ".join(f"「{e}」" for e in p.examples[:2])
        kind = "开头" if p.kind == "hook" else "句式"
        weak = "" if p.p_value is not None and p.p_value < 0.05 else " _(差异不显著, 仅供参考)_"
        L.append(f"- {kind} **{p.name_zh}**: 高互动标题中 {p.share_top:.0%} vs 全部 {p.share_all:.0%} "
                 f"(提升 {p.lift:.2f} 倍, Fisher p {_p(p.p_value)}){weak}. 例: {ex} {_ids(p.example_note_ids)}")
    if not b.title_patterns and not b.hooks:
        L.append("- 未发现在高互动标题中明显更常见的句式或开头")
    return L


def _format_posting(b) -> list[str]:
    L = ["", "## 形式与发布时间", ""]
    f = b.format
    if f.get("by_type"):
        detail = "; ".join(f"{NOTE_TYPES_ZH.get(k, k)} {v['n_notes']} 篇 调整指数中位数 {v['median_index']:.3g}"
                           for k, v in f["by_type"].items())
        if f.get("recommended_zh"):
            L.append(f"- 形式: **{f['recommended_zh']}** ({detail}; Kruskal–Wallis p {_p(f['p_value'])}) "
                     f"{_ids(f['evidence_note_ids'])}")
        else:
            L.append(f"- 形式: {f.get('verdict_zh')} ({detail})")
    p = b.posting
    if p.get("by_weekday") is not None:
        if p.get("weekday_zh"):
            wd = p["by_weekday"][p["weekday_zh"]]
            L.append(f"- 发布日: **{p['weekday_zh']}** (该日 {wd['n_notes']} 篇, 调整指数中位数 {wd['median_index']:.3g}; "
                     f"Kruskal–Wallis p {_p(p['weekday_p_value'])}, 每组至少 {p['min_group_size']} 篇)")
        if p.get("hour_block_zh"):
            hb = p["by_hour_block"][f"{p['hour_block'][0]:02d}-{p['hour_block'][1]:02d}"]
            L.append(f"- 发布时段: **{p['hour_block_zh']}** (北京时间; {hb['n_notes']} 篇, 调整指数中位数 "
                     f"{hb['median_index']:.3g}; Kruskal–Wallis p {_p(p['hour_block_p_value'])})")
        for v in p.get("verdicts_zh", []):
            L.append(f"- {v}, 发布时间按账号习惯即可")
        if p.get("evidence_note_ids"):
            L.append(f"  - {_ids(p['evidence_note_ids'])}")
    return L


def _kpis_timing(b) -> list[str]:
    r = b.engagement_range
    L = ["", "## 预期互动与 KPI", "",
         f"- 预期单篇互动: P25 {fmt_num(r['p25'])} – P75 {fmt_num(r['p75'])} (中位数 {fmt_num(r['p50'])}; "
         f"{r['n_notes']} 篇, {r['metric']})"]
    n = b.normalisation
    if n:
        L.append(f"- 互动调整: {n['model']} (全部 {n['n_notes']} 篇拟合; 调整指数 1 = 同龄笔记的期望"
                 + ("" if n["by_author_size"] else f"; {n.get('author_note_zh', '')}") + ")")
    for k in b.kpis:
        pct = "比" in k["name"] or "率" in k["name"]
        target = f", 目标 {fmt_num(k['target'], pct)}" if k.get("target") is not None else ""
        L.append(f"- {k['name']}: 基线 {fmt_num(k['baseline'], pct)}{target} ({k['basis']})")
    L += ["", "## 节点节奏", ""]
    if b.timing:
        tm = b.timing
        phases = "; ".join(f"{name} {a}~{z}" for name, (a, z) in tm["phases"].items())
        source = "按话题自身季节性" if tm.get("source") == "seasonality" else "按营销日历"
        when = (f"蓄水已开始, 距节点 {tm['days_until_node']} 天" if tm.get("seeding_started")
                else f"距规划日 {tm['days_until_seeding']} 天")
        L.append(f"- {tm['node_zh']} ({tm['date']}, {source}): **{tm['seeding_start']} 开始蓄水** "
                 f"({when}). {phases}")
        if tm.get("node_lift") is not None:
            L.append(f"- 往年节点期该话题声量占比为平时的 {tm['node_lift']:.2f} 倍")
    else:
        L.append("- 未指定或找不到营销节点")
    return L


def _evidence(b) -> list[str]:
    L = ["", "## 证据笔记", "", "| note_id | 角色 | 标题 | 互动 | 调整指数 | 赞 | 藏 | 评 | 转 | 发布 |",
         "|---|---|---|---|---|---|---|---|---|---|"]
    for n in b.evidence_notes:
        role = "代表" if n.role == "representative" else "高互动"
        title = n.title.replace("|", "/").replace("\n", " ")[:40]
        index = "—" if n.engagement_index is None else f"{n.engagement_index:.3g}"
        L.append(f"| `{n.note_id}` | {role} | {title} | {n.engagement} | {index} | {n.likes} | "
                 f"{n.collects} | {n.comments} | {n.shares} | {(n.published_at or '')[:16]} |")
    if b.notes:
        L += ["", "## 说明", ""] + [f"- {c}" for c in b.notes]
    return L


def render_markdown(b) -> str:
    L = (_header(b) + _audience(b) + _scorecard(b) + _trend(b) + _angles_titles(b) + _format_posting(b)
         + _kpis_timing(b) + _evidence(b))
    return "\n".join(L) + "\n"
