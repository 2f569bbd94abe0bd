"""CLI: trends, opportunity, brief, search (on the latest snapshot unless ``--run`` is given)."""
from __future__ import annotations

from pathlib import Path

from miner.cli.render import add_view_args, clean, number
from miner.cli.render import table as table_text
from miner.config import MinerConfig
from miner.workspace import Workspace


def register(sub) -> None:
    """Add this module's subcommands (each sets ``handler=fn(args, config)``)."""
    p = sub.add_parser("trends", help="话题趋势 lifecycle stage, growth, burst and the next marketing node")
    p.add_argument("--freq", choices=["D", "W"], default="D", help="day (D, default) or week (W) periods")
    p.add_argument("--today", help="planning date for the next node, YYYY-MM-DD (default today)")
    add_view_args(p)
    _hidden_arg(p)
    p.set_defaults(handler=cmd_trends)

    p = sub.add_parser("opportunity", help="选题机会 rank topics for a target segment and node")
    p.add_argument("--node", help="marketing node, e.g. 双11 (adds the timing component)")
    add_view_args(p, segment="target audience, e.g. gender=F,age_band=18-24")
    _hidden_arg(p)
    p.set_defaults(handler=cmd_opportunity)

    p = sub.add_parser("brief", help="选题简报 content brief for one topic")
    p.add_argument("topic_id", type=int)
    p.add_argument("--segment", help="target audience, e.g. gender=F,age_band=18-24")
    p.add_argument("--node", help="marketing node, e.g. 双11 (default: the next node)")
    p.add_argument("--out", help="write the brief to this file instead of printing it")
    p.add_argument("--json", action="store_true", help="JSON instead of Markdown")
    p.add_argument("--no-llm", action="store_true", help="never call the optional LLM endpoint")
    p.add_argument("--run", help="snapshot run id (default latest)")
    p.set_defaults(handler=cmd_brief)

    p = sub.add_parser("search", help="选题搜索 find topic ideas for a query")
    p.add_argument("query", help='e.g. "露营 穿搭 平价"')
    p.add_argument("-k", type=int, default=10, help="ideas to return (default 10)")
    p.add_argument("--run", help="snapshot run id (default latest)")
    _hidden_arg(p)
    p.set_defaults(handler=cmd_search)


def _hidden_arg(p) -> None:
    p.add_argument("--include-hidden", action="store_true",
                   help="also list topics hidden on the app's 话题管理 page (left out by default)")


# ---- handlers ------------------------------------------------------------------------------------
def cmd_trends(args, config: MinerConfig) -> int:
    workspace = Workspace(config)
    snap = workspace.snapshot(args.run)
    table = workspace.trend_table(snap, freq=args.freq, today=args.today, include_hidden=args.include_hidden)
    order = {s: i for i, s in enumerate(("emerging", "rising", "burst", "seasonal", "one_off", "evergreen",
                                         "declining"))}
    table = table.assign(_o=table["stage"].map(order)).sort_values(["_o", "growth_z"], ascending=[True, False])
    print(f"快照 {snap.run_id} · {len(table)} 个话题 · 周期 {'日' if args.freq == 'D' else '周'} "
          f"· 增长 = 近一窗口声量占比 vs 前一窗口 (括号内为篇数; 上升/爆发经 BH 多重检验校正) "
          f"· * = 往年该节点期声量占比 ≥1.2 倍")
    rows = []
    for r in table.head(args.top).itertuples():
        node = f"{r.next_node_zh}{'*' if r.node_reason == 'history' else ''} (蓄水 {r.seeding_start})" \
            if r.next_node_zh else "—"
        rows.append([str(r.topic_id), r.label, r.stage_zh + ("(少量)" if r.low_volume else ""),
                     r.growth_display or "—", number(r.burst_z), str(r.recent_notes), node])
    print(table_text(["话题", "标签", "阶段", "增长", "爆发z", "近期篇数", "下一节点"], rows, align_right_from=9))
    return 0


def cmd_opportunity(args, config: MinerConfig) -> int:
    from miner.insights.opportunity import COMPONENT_NAMES_ZH, FLAG_NAMES_ZH
    workspace = Workspace(config)
    snap = workspace.snapshot(args.run)
    _require_audience(workspace, args.segment)
    table = workspace.opportunity(snap, segment=args.segment, node=args.node,
                                  include_hidden=args.include_hidden)
    comps = ["momentum", "headroom", "value", "openness"] + (["timing"] if args.node else [])
    print(f"快照 {snap.run_id} · 人群 {_segment_label(args.segment)} · 节点 {args.node or '—'} · "
          f"机会分 = 各分项加权平均 (miner/insights/opportunity.py)")
    rows = [[str(r["rank"]), str(r["topic_id"]), r["label"], f"{r['score'] * 100:.0f}", r["stage_zh"] or "—"]
            + [f"{r[c]:.2f}" for c in comps] for _, r in table.head(args.top).iterrows()]
    print(table_text(["#", "话题", "标签", "机会分", "阶段"] + [COMPONENT_NAMES_ZH[c] for c in comps], rows,
                     align_right_from=99))
    flags = sorted({f for fl in table["flags"] for f in fl})
    for f in flags:
        print(f"注: {FLAG_NAMES_ZH.get(f, f)}")
    return 0


def cmd_brief(args, config: MinerConfig) -> int:
    workspace = Workspace(config)
    snap = workspace.snapshot(args.run)
    _require_audience(workspace, args.segment)
    brief = workspace.brief(snap, args.topic_id, segment=args.segment, node=args.node, polish=not args.no_llm)
    text = brief.to_json() if args.json else brief.to_markdown()
    if args.out:
        from miner.atomic import write_text_atomic
        write_text_atomic(Path(args.out), text)
        print(f"已写入 wrote {args.out} ({'JSON' if args.json else 'Markdown'}, 话题 {brief.topic_id} "
              f"{clean(brief.label)})")
    else:
        print(text)
    return 0


def cmd_search(args, config: MinerConfig) -> int:
    workspace = Workspace(config)
    snap = workspace.snapshot(args.run)
    ideas = workspace.searcher(snap).search(args.query, k=args.k, include_hidden=args.include_hidden)
    if ideas.message:                    # empty query, or no topic matches well
        print(ideas.message)
    print(f"搜索「{clean(args.query)}」· 快照 {snap.run_id} · 分数 = 语义(中心+笔记)与关键词(BM25)的倒数排名融合")
    for i, idea in enumerate(ideas, 1):
        opp = f"{idea.opportunity * 100:.0f}" if idea.opportunity is not None else "—"
        print(f"{i:>2}. [{idea.topic_id}] {clean(idea.label)}  {'强匹配' if idea.match == 'strong' else '弱匹配'}  "
              f"分数 {idea.score:.2f} (语义 {idea.semantic_score:.2f} · z {idea.relevance:.1f} · "
              f"关键词 {idea.keyword_score:.2f})  阶段 {idea.stage_zh or '—'} · 机会 {opp} · {idea.size} 篇")
        if idea.matched_keywords:
            print(f"    命中词: {clean(' '.join(idea.matched_keywords))}")
        for ex in idea.examples:
            print(f"    - {clean(ex.title)[:36]}  (互动 {ex.engagement:,} · {clean(ex.note_id)})")
    return 0


# ---- helpers -------------------------------------------------------------------------------------
def _require_audience(workspace: Workspace, segment) -> None:
    """Validate the segment spec; say so when the workspace has no audience tables for it."""
    if not segment:
        return
    from miner.insights.audience import AudienceFilter
    AudienceFilter.from_spec(segment)
    if not workspace.audience_tables_ready():
        print("注: 工作区没有 engagements/audience 表, 人群指标不可用 (python -m miner ingest --table ...)")


def _segment_label(segment) -> str:
    if not segment:
        return "全部用户"
    from miner.insights.audience import AudienceFilter
    return AudienceFilter.from_spec(segment).label
