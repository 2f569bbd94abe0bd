"""CLI: simulate, audience, metrics (see miner/cli/__init__.py).

``python -m miner simulate``  writes the SIMULATED demo tables from data/demo/notes.parquet.
``python -m miner audience``  ingests engagements/audience/AIPS/orders(/spend) files (hashing user ids).
``python -m miner metrics``   prints per-topic penetration, AIPS flow and order value.

With no file arguments ``audience`` ingests the simulated demo files, and ``metrics`` does the same
by itself when the workspace lacks the audience tables, so on the demo ``build`` + ``metrics`` just work.
"""
from __future__ import annotations

import math
from pathlib import Path

from miner.config import REPO_ROOT, MinerConfig

SIMULATED_DIR = REPO_ROOT / "data" / "demo" / "simulated"
DEMO_NOTES = SIMULATED_DIR.parent / "notes.parquet"
FILE_TABLES = {"engagements": "engagements", "audience": "audience", "aips": "aips_stages", "orders": "orders",
               "spend": "spend"}
REQUIRED = ("engagements", "audience", "aips_stages", "orders")


def register(sub) -> None:
    p = sub.add_parser("simulate", help="生成模拟人群数据 write SIMULATED engagements/audience/AIPS/orders/spend")
    p.add_argument("--notes", default=str(DEMO_NOTES), help="notes parquet to simulate on (default: demo corpus)")
    p.add_argument("--out", default=str(SIMULATED_DIR), help="output folder (default data/demo/simulated)")
    p.add_argument("--users", type=int, default=3000)
    p.add_argument("--seed", type=int, help="default: config seed")
    p.set_defaults(handler=cmd_simulate)

    p = sub.add_parser("audience", help="导入人群数据 ingest engagements/audience/AIPS/orders/spend files")
    for flag in FILE_TABLES:
        p.add_argument(f"--{flag}", help=f"{FILE_TABLES[flag]} file (CSV/JSONL/Parquet/Excel)")
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


def ingest_audience_files(files: dict[str, str | Path], config: MinerConfig, replace: bool = False) -> list:
    """Ingest ``{table_name: path}`` through :func:`miner.ingest.ingest_file`; returns the reports."""
    from miner.ingest import ingest_file
    from miner.schema import INPUT_SCHEMAS
    return [ingest_file(path, INPUT_SCHEMAS[table], config, mode="replace" if replace else "upsert")
            for table, path in files.items()]


def demo_files() -> dict[str, Path]:
    files = {table: SIMULATED_DIR / f"{table}.parquet" for table in FILE_TABLES.values()}
    missing = [str(p) for p in files.values() if not p.exists()]
    if missing:
        raise FileNotFoundError(f"simulated demo files missing ({', '.join(missing)}); run `python -m miner simulate`")
    return files


def cmd_audience(args, config: MinerConfig) -> int:
    files = {table: getattr(args, flag) for flag, table in FILE_TABLES.items() if getattr(args, flag)}
    replace = args.replace
    if not files:
        print(f"未指定文件，导入模拟演示数据 no files given: ingesting the SIMULATED demo tables from {SIMULATED_DIR}")
        files, replace = demo_files(), True
    for report in ingest_audience_files(files, config, replace):
        print(report.summary())
        for err in report.errors[:5]:
            print(f"    第 {err.row} 行 row, {err.column}: {err.reason}")
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
    from miner.insights.audience import Segment, topic_metrics_table
    from miner.topics.snapshot import load_snapshot
    from miner.store import Store

    k = args.k if args.k is not None else config.k_anonymity
    days = args.attribution_days if args.attribution_days is not None else config.attribution_days
    segment = Segment.from_spec(args.segment)
    store = Store(config.db_path)
    missing = [t for t in REQUIRED if not store.has_table(t)]
    if missing:
        print(f"工作区缺少 {missing}，自动导入模拟演示数据 (SIMULATED) from {SIMULATED_DIR}")
        for report in ingest_audience_files(demo_files(), config, replace=True):
            print("  " + report.summary())
    snap = load_snapshot(config, args.run)
    with Store(config.db_path, read_only=True).connect() as con:
        table = topic_metrics_table(con, snap.assignments, topics=snap.topics, notes=snap.notes, segment=segment,
                                    window=_window_arg(args.window), previous_window=_window_arg(args.compare),
                                    brand=args.brand, attribution_days=days, k=k)
    if args.csv:
        table.to_csv(args.csv, index=False, encoding="utf-8-sig")
    print(f"人群 segment: {segment.label} · 人群规模 {_count(table['segment_size'].iloc[0])} · "
          f"归因窗口 T+{days} · k={k} · 品牌 {args.brand or '全部 (用户×品牌 计数)'}")
    print(render_metrics(table, args.top))
    print(f"— = 少于 k={k} 人，已隐藏 suppressed (k-anonymity)")
    return 0


# ---- rendering -------------------------------------------------------------------------------------
def _blank(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _count(v) -> str:
    return "—" if _blank(v) else f"{int(v):,}"


def _pct(v) -> str:
    return "—" if _blank(v) else f"{v:.1%}"


def _lift(v) -> str:
    return "—" if _blank(v) else f"{v:.2f}x"


def _money(v) -> str:
    return "—" if _blank(v) else f"¥{v:,.0f}"


def _width(text: str) -> int:
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def _table(headers: list[str], rows: list[list[str]]) -> str:
    """Plain-text table aligned for CJK (wide characters count double)."""
    widths = [max(_width(h), *(_width(r[i]) for r in rows)) if rows else _width(h) for i, h in enumerate(headers)]
    def line(cells):
        out = []
        for i, c in enumerate(cells):
            pad = " " * (widths[i] - _width(c))
            out.append(c + pad if i == 0 else pad + c)
        return "  ".join(out)
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


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
