"""CLI: scorecard (极光-style four quadrants per topic) and tgi (人群纠偏: which audiences over-index)."""
from __future__ import annotations

from miner.cli.render import add_view_args, clean, number
from miner.cli.render import table as table_text
from miner.config import MinerConfig
from miner.workspace import Workspace


def register(sub) -> None:
    p = sub.add_parser("scorecard", help="极光指标 four-quadrant scorecard per topic (percentiles among topics)")
    add_view_args(p, segment="target audience for 人群渗透, e.g. gender=F,age_band=25-34")
    p.set_defaults(handler=cmd_scorecard)

    p = sub.add_parser("tgi", help="人群纠偏 audience cells ranked by TGI for one topic")
    p.add_argument("topic_id", type=int)
    add_view_args(p, top=10)
    p.set_defaults(handler=cmd_tgi)


def cmd_scorecard(args, config: MinerConfig) -> int:
    from miner.insights.scorecard import QUADRANTS, quadrant_scores
    workspace = Workspace(config)
    snap = workspace.snapshot(args.run)
    wide = quadrant_scores(workspace.scorecard(snap, segment=args.segment))
    wide = wide.merge(snap.topics[["topic_id", "label", "size"]], on="topic_id")
    wide = wide.sort_values("size", ascending=False).head(args.top)
    print(f"快照 {snap.run_id} · 极光指标: 各象限 = 该话题各指标在全部话题中的百分位均值 (0–100; — = 无数据或少于 k 人)")
    rows = [[str(r["topic_id"]), r["label"], *(number(r[q], ".0f") for q in QUADRANTS)] for _, r in wide.iterrows()]
    print(table_text(["话题", "标签", *QUADRANTS.values()], rows, align_right_from=2))
    return 0


def cmd_tgi(args, config: MinerConfig) -> int:
    workspace = Workspace(config)
    snap = workspace.snapshot(args.run)
    table = workspace.tgi(snap, topic_ids=[args.topic_id])
    table = table[table["topic_id"] == args.topic_id].sort_values("tgi", ascending=False).head(args.top)
    print(f"话题 {args.topic_id} · TGI = 话题互动人群中该人群占比 ÷ 全体人群占比 × 100 (区间 95%; 少于 "
          f"k={config.k_anonymity} 人的人群不显示) · 变化 = 近两期比较 (p<0.05 才标 ↑/↓)")
    rows = [[clean(r["segment_zh"]), f"{r['tgi']:.0f}", f"{r['tgi_lo']:.0f}–{r['tgi_hi']:.0f}",
             f"{int(r['engaged_users']):,}", str(r["trend_arrow"] or "")] for _, r in table.iterrows()]
    print(table_text(["人群", "TGI", "区间", "互动人数", "变化"], rows))
    return 0
