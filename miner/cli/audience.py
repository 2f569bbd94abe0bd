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
    from miner.insights.audience import AudienceFilter

    workspace = Workspace(config)
    k = args.k if args.k is not None else config.k_anonymity
    days = args.attribution_days if args.attribution_days is not None else config.attribution_days
    segment = AudienceFilter.from_spec(args.segment)
    snap = workspace.snapshot(args.run)
    if workspace.missing_tables() and workspace.is_demo():
        print("演示工作区: 导入模拟人群数据 demo workspace: loading the SIMULATED audience tables")
    table = workspace.topic_metrics(snap, segment=segment, window=_window_arg(args.window),
                                    previous_window=_window_arg(args.compare), brand=args.brand,
                                    attribution_days=days, k=k)
    if args.csv:
        table.to_csv(args.csv, index=False, encoding="utf-8-sig")
    brands = sorted(table["brand"].dropna().unique()) if "brand" in table else []
    print(f"人群 segment: {segment.label} · 人群规模 {_count(table['segment_size'].iloc[0])} · "
          f"归因窗口 T+{days} · k={k} · 品牌 {args.brand or '、'.join(brands) or '—'} (按品牌分别计算, 不合并)")
    print(render_metrics(table, args.top, k=k))
    print(f"<{k} = 少于 k={k} 人，已隐藏 suppressed (k-anonymity) · 关联提升 = 对比匹配的未触达人群 (相关, 非因果), 区间含 1 为不显著")
    return 0


# ---- rendering -------------------------------------------------------------------------------------
def _cells(values, hidden, k, fmt) -> list[str]:
    """Format a column: a hidden (k-anonymity) cell reads "<k", a missing one "—", never "None"."""
    hidden = [False] * len(values) if hidden is None else [bool(h) if h is not None and h == h else False
                                                            for h in hidden]
    mark = f"<{k}" if k is not None else "—"
    return [(mark if h else "—") if _blank(v) else fmt(v) for v, h in zip(values, hidden)]


def _flag(t, col):
    return list(t[col]) if col in t else None


def _lift_ci(lift, lo, hi, significant) -> list:
    """``1.52x [1.20–1.91]``; ``不显著`` when the interval contains 1 (an association, not an effect)."""
    out = []
    for v, a, b, sig in zip(lift, lo, hi, significant):
        if _blank(v):
            out.append(None)
            continue
        text = f"{v:.2f}x" + ("" if _blank(a) or _blank(b) else f" [{a:.2f}–{b:.2f}]")
        out.append(text + ("" if _true(sig) else " 不显著"))
    return out


def _true(v) -> bool:
    """True for a set boolean cell; False for False, NA, None and NaN."""
    try:
        return not _blank(v) and bool(v)
    except TypeError:          # pandas.NA refuses bool()
        return False


def _brand_block(t, name, k, unattributed) -> list[str]:
    parts, t_all, name_all = [], t, name
    if "flow_rate_A_I" in t:
        topics = (t["topic_id"] != unattributed).to_numpy()
        t, name = t[topics].reset_index(drop=True), [n for n, keep in zip(name, topics) if keep]
        head, cols = ["话题 topic"], []
        hidden = _flag(t, "flow_suppressed")
        for a, b in (("A", "I"), ("I", "TI"), ("TI", "P"), ("P", "S")):
            head += [f"{a}→{b} 人数", f"{a}→{b} 流转率", f"{a}→{b} 关联提升"]
            cols.append(_cells(t[f"flow_{a}_{b}"], hidden, k, lambda v: f"{int(v):,}"))
            cols.append(_cells(t[f"flow_rate_{a}_{b}"], hidden, k, lambda v: f"{v:.1%}"))
            lifts = _lift_ci(t[f"flow_lift_{a}_{b}"], t[f"flow_lift_lo_{a}_{b}"], t[f"flow_lift_hi_{a}_{b}"],
                             t[f"flow_significant_{a}_{b}"])
            cols.append(_cells(lifts, hidden, k, str))
        parts.append("AIPS 人群流转 flow (关联提升 = vs 同人群·同活跃度未触达用户, 95% 区间)\n"
                     + _table(head, _rows(name, cols)))
    if "attributed_gmv" in t:
        t, name = t_all, name_all
        topic = (t["topic_id"] != unattributed).tolist()       # the 未归因 row has no reach, lift or ROI
        rh = [bool(h) for h in t["orders_suppressed"]]
        th = [h and real for h, real in zip(rh, topic)]
        lh = [bool(h) and real for h, real in zip(t["lift_suppressed"], topic)]
        head = ["话题 topic", "互动用户 reached", "买家 buyers", "归因订单 orders", "归因GMV", "占品牌GMV",
                "客单价 AOV", "转化率 conv.", "关联提升 assoc. lift", "对照 controls"]
        cols = [_cells(t["n_reached"], th, k, lambda v: f"{int(v):,}"),
                _cells(t["buyers"], rh, k, lambda v: f"{int(v):,}"),
                _cells(t["attributed_orders"], rh, k, lambda v: f"{v:,.1f}"),
                _cells(t["attributed_gmv"], rh, k, _money), _cells(t["gmv_share"], rh, k, _pct),
                _cells(t["aov"], rh, k, _money), _cells(t["conversion_rate"], rh, k, _pct),
                _cells(_lift_ci(t["assoc_lift"], t["assoc_lift_lo"], t["assoc_lift_hi"], t["lift_significant"]),
                       lh, k, str),
                _cells(t["n_matched_control"], lh, k, lambda v: f"{int(v):,}")]
        if "roi" in t:
            head.append("ROI")
            cols.append(_cells(t["roi"], th, k, _lift))
        total = t["brand_gmv"].dropna()
        note = f" · 品牌GMV {_money(total.iloc[0])}" if len(total) else ""
        parts.append(f"订单价值 Order value (多触点归因, 每单只计一次{note})\n" + _table(head, _rows(name, cols)))
    return parts


def render_metrics(table, top: int = 20, k: int | None = None) -> str:
    """Readable Chinese tables for the ``top`` topics by reach: penetration once, then AIPS flow and
    attributed orders per brand (with the brand's 未归因 row). Hidden cells read "<k" when ``k`` is
    given ("—" otherwise); "—" also marks a missing value; lifts carry their 95 % interval."""
    from miner.insights.audience import UNATTRIBUTED
    real = table[table["topic_id"] != UNATTRIBUTED]
    first = real.drop_duplicates("topic_id").sort_values("reach", ascending=False, na_position="last").head(top)
    keep = first["topic_id"].tolist()

    def names(t):
        return ["未归因 unattributed" if int(r.topic_id) == UNATTRIBUTED else
                f"[{int(r.topic_id)}] {str(getattr(r, 'label', '') or '')[:14]}" for r in t.itertuples()]

    t, hidden = first, _flag(first, "suppressed")
    head = ["话题 topic", "触达 reach", "渗透率 penetration"]
    cols = [_cells(t["reach"], hidden, k, lambda v: f"{int(v):,}"), _cells(t["penetration"], hidden, k, _pct)]
    if "penetration_change" in t:
        head += ["上期渗透 prev", "变化 change"]
        cols += [_cells(t["penetration_prev"], None, k, _pct),
                 _cells(t["penetration_change"], None, k, lambda v: f"{v * 100:+.1f}pp")]
    head.append("互动率 eng.rate")
    cols.append(_cells(t["engagement_rate"], hidden, k, _pct))
    if "cpe" in t:
        head.append("CPE")
        cols.append(_cells(t["cpe"], None, k, lambda v: f"¥{v:.2f}"))
    parts = ["渗透与互动 Penetration & engagement\n" + _table(head, _rows(names(t), cols))]
    brands = [b for b in dict.fromkeys(table["brand"]) if isinstance(b, str)] if "brand" in table else []
    for brand in brands:
        rows = table[table["brand"] == brand]
        order = {tid: i for i, tid in enumerate(keep + [UNATTRIBUTED])}
        rows = rows[rows["topic_id"].isin(order)].sort_values("topic_id", key=lambda s: s.map(order))
        block = _brand_block(rows.reset_index(drop=True), names(rows), k, UNATTRIBUTED)
        if block:
            parts.append(f"== 品牌 brand: {brand} ==\n" + "\n\n".join(block))
    return "\n\n".join(parts)


def _rows(names: list[str], cols: list) -> list[list[str]]:
    cols = [list(c) for c in cols]
    return [[n, *(c[i] for c in cols)] for i, n in enumerate(names)]
