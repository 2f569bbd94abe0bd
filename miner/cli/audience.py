"""CLI: simulate, audience, metrics (see miner/cli/__init__.py).

``python -m miner simulate``  writes the SIMULATED demo tables from data/demo/notes.parquet.
``python -m miner audience``  ingests engagements/audience/AIPS/orders(/spend) files (hashing user ids).
``python -m miner metrics``   prints per-topic penetration, AIPS flow and order value.

With no file arguments ``audience`` ingests the simulated demo files, and ``metrics`` does the same
by itself when the demo workspace lacks the audience tables, so on the demo ``build`` + ``metrics`` just
work. A workspace holding the user's own notes never gets simulated tables: ``metrics`` says which
tables to ingest instead (see :class:`miner.workspace.Workspace`).
"""
from __future__ import annotations

from pathlib import Path

from miner.cli.core import print_ingest
from miner.cli.render import blank as _blank, count as _count, money as _money, pct as _pct, ratio as _lift
from miner.cli.render import table as _table
from miner.config import MinerConfig
from miner.workspace import SIMULATED_FILES, Workspace


def register(sub) -> None:
    demo = Workspace(MinerConfig())
    p = sub.add_parser("simulate", help="生成模拟人群数据 write SIMULATED engagements/audience/AIPS/orders/spend")
    p.add_argument("--notes", default=str(demo.demo_notes_path), help="notes parquet to simulate on (default: demo corpus)")
    p.add_argument("--out", default=str(demo.simulated_dir), help="output folder (default data/demo/simulated)")
    p.add_argument("--users", type=int, default=3000)
    p.add_argument("--seed", type=int, help="default: config seed")
    p.set_defaults(handler=cmd_simulate)

    p = sub.add_parser("audience", help="导入人群数据 ingest engagements/audience/AIPS/orders/spend files")
    for flag in SIMULATED_FILES:
        p.add_argument(f"--{flag}", help=f"{SIMULATED_FILES[flag]} file (CSV/JSONL/Parquet/Excel)")
    p.add_argument("--replace", action="store_true", help="replace tables instead of upserting")
    p.set_defaults(handler=cmd_audience)

    p = sub.add_parser("metrics", help="话题人群指标 per-topic penetration, AIPS flow and order value")
    p.add_argument("--segment", help="e.g. gender=F,age_band=18-24|25-34,city_tier=1,interests=美妆时尚")
    p.add_argument("--attribution-days", type=int, help="order attribution window T+N (default: config, 15)")
    p.add_argument("--k", type=int, help="k-anonymity threshold (default: config, 50)")
    p.add_argument("--brand", help="one brand for AIPS flow and orders (default: all brands)")
    p.add_argument("--window", help="engagement window START:END (END exclusive), e.g. 2023-10-01:2023-10-31, "
                                    "or '2023-10-01 08:00..2023-10-02'")
    p.add_argument("--compare", help="previous window START:END for penetration change")
    p.add_argument("--top", type=int, default=20, help="topics shown, by reach (default 20)")
    p.add_argument("--run", help="snapshot run id (default latest)")
    p.add_argument("--csv", help="also write the full metrics table to this CSV file")
    p.set_defaults(handler=cmd_metrics)


def cmd_simulate(args, config: MinerConfig) -> int:
    import pandas as pd
    from miner.simulate import SIMULATED_LABEL, simulate, write_simulated
    notes_path = Path(args.notes)
    if not notes_path.exists():
        raise FileNotFoundError(f"notes file missing: {notes_path}")
    data = simulate(pd.read_parquet(notes_path), n_users=args.users,
                    seed=args.seed if args.seed is not None else config.seed)
    paths = write_simulated(data, args.out)
    print(f"⚠ {SIMULATED_LABEL}")
    for name, path in paths.items():
        print(f"  {name:<12} {len(getattr(data, name)):>8} 行 rows → {path}")
    return 0


def cmd_audience(args, config: MinerConfig) -> int:
    workspace = Workspace(config)
    files = {table: getattr(args, flag) for flag, table in SIMULATED_FILES.items() if getattr(args, flag)}
    if files:
        reports = workspace.ingest_tables(files, replace=args.replace)
    else:
        print(f"未指定文件，导入模拟演示数据 no files given: ingesting the SIMULATED demo tables "
              f"from {workspace.simulated_dir}")
        reports = workspace.ingest_simulated_audience()
    for report in reports:
        print_ingest(report)
    return 0


def _window_arg(text: str | None):
    """``START:END`` with dates, or ``START..END`` (times may contain ':'); either side may be empty."""
    if not text:
        return None
    start, sep, end = text.partition("..") if ".." in text else text.partition(":")
    if not sep:
        raise ValueError(f"window {text!r} must be START:END, e.g. 2023-10-01:2023-10-31")
    return (start.strip() or None, end.strip() or None)


def cmd_metrics(args, config: MinerConfig) -> int:
    from miner.insights.audience import Segment

    workspace = Workspace(config)
    k = args.k if args.k is not None else config.k_anonymity
    days = args.attribution_days if args.attribution_days is not None else config.attribution_days
    segment = Segment.from_spec(args.segment)
    snap = workspace.snapshot(args.run)
    if workspace.missing_tables() and workspace.is_demo():
        print("演示工作区: 导入模拟人群数据 demo workspace: loading the SIMULATED audience tables")
    table = workspace.topic_metrics(snap, segment=segment, window=_window_arg(args.window),
                                    previous_window=_window_arg(args.compare), brand=args.brand,
                                    attribution_days=days, k=k)
    if args.csv:
        table.to_csv(args.csv, index=False, encoding="utf-8-sig")
    print(f"人群 segment: {segment.label} · 人群规模 {_count(table['segment_size'].iloc[0])} · "
          f"归因窗口 T+{days} · k={k} · 品牌 {args.brand or '全部 (用户×品牌 计数)'}")
    print(render_metrics(table, args.top))
    print(f"— = 少于 k={k} 人，已隐藏 suppressed (k-anonymity)")
    return 0


# ---- rendering -------------------------------------------------------------------------------------
def render_metrics(table, top: int = 20) -> str:
    """Three readable Chinese tables (penetration, AIPS flow, orders) for the ``top`` topics by reach."""
    t = table.sort_values("reach", ascending=False, na_position="last").head(top)
    name = [f"[{int(r.topic_id)}] {str(getattr(r, 'label', '') or '')[:14]}" for r in t.itertuples()]
    parts = []
    head = ["话题 topic", "触达 reach", "渗透率 penetration"]
    cols = [t["reach"].map(_count), t["penetration"].map(_pct)]
    if "penetration_change" in t:
        head += ["上期渗透 prev", "变化 change"]
        cols += [t["penetration_prev"].map(_pct),
                 t["penetration_change"].map(lambda v: "—" if _blank(v) else f"{v * 100:+.1f}pp")]
    head.append("互动率 eng.rate")
    cols.append(t["engagement_rate"].map(_pct))
    if "cpe" in t:
        head.append("CPE")
        cols.append(t["cpe"].map(lambda v: "—" if _blank(v) else f"¥{v:.2f}"))
    parts.append("渗透与互动 Penetration & engagement\n" + _table(head, _rows(name, cols)))

    if "flow_rate_A_I" in t:
        head, cols = ["话题 topic"], []
        for a, b in (("A", "I"), ("I", "TI"), ("TI", "P"), ("P", "S")):
            head += [f"{a}→{b} 人数", f"{a}→{b} 流转率 (提升)"]
            cols.append(t[f"flow_{a}_{b}"].map(_count))
            cols.append([f"{_pct(r)} ({_lift(l)})" for r, l in zip(t[f"flow_rate_{a}_{b}"], t[f"flow_lift_{a}_{b}"])])
        parts.append("AIPS 人群流转 flow (提升 = vs 未触达人群)\n" + _table(head, _rows(name, cols)))

    if "gmv" in t:
        head = ["话题 topic", "买家 buyers", "订单 orders", "GMV", "客单价 AOV", "转化率 conv.", "转化提升 lift",
                "客单价提升 AOV lift"]
        cols = [t["buyers"].map(_count), t["orders"].map(_count), t["gmv"].map(_money), t["aov"].map(_money),
                t["conversion_rate"].map(_pct), t["conversion_lift"].map(_lift), t["aov_lift"].map(_lift)]
        if "roi" in t:
            head.append("ROI")
            cols.append(t["roi"].map(_lift))
        parts.append("订单价值 Order value (归因 attributed)\n" + _table(head, _rows(name, cols)))
    return "\n\n".join(parts)


def _rows(names: list[str], cols: list) -> list[list[str]]:
    cols = [list(c) for c in cols]
    return [[n, *(c[i] for c in cols)] for i, n in enumerate(names)]
