"""Audience metrics at scale: ≥10M engagement rows through every miner.insights.audience metric (DuckDB).

    python bench/audience_scale.py                   # 10M engagements, 1M users (≈2–4 min on 2 cores)
    python bench/audience_scale.py --rows 1000000    # quick look

Synthetic tables are generated with vectorised numpy straight to Parquet (not the demo simulator:
no notes text or funnel logic is needed here), loaded into a DuckDB file with the ingest column types
(TIMESTAMPTZ, DATE, VARCHAR[]; user ids are 16-hex strings like the salted hashes), then each metric
runs in a fresh Python process (``cpu_s`` = its CPU time over all threads, a steadier number than
wall time on a shared machine) so its peak RSS (``VmHWM``: Python + DuckDB, same process) is its
own; ``rss_over_base_mb`` is the rise over the RSS after imports, connecting and loading inputs. Also reported: the peak of Python allocations (``tracemalloc``: numpy/pandas included, DuckDB's
C++ heap not) and DuckDB's buffer-manager usage right after the query (``duckdb_memory()``).
Files go to ``bench/out/audience_scale/`` (git-ignored).
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR.parent) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR.parent))

from bench.common import markdown_table, print_header, run_info  # noqa: E402

OUT = BENCH_DIR / "out" / "audience_scale"
TZ = "Asia/Shanghai"
START = np.datetime64("2023-08-19T00:00:00", "us") - np.timedelta64(8, "h")   # 00:00 Asia/Shanghai in UTC
DAYS = 70
ACTIONS = np.array(["impression", "read", "like", "collect", "comment", "share", "search"])
ACTION_P = np.array([0.52, 0.28, 0.09, 0.06, 0.02, 0.015, 0.015])
BRANDS = np.array(["柚光美妆", "星弧数码", "麦野食品", "栖木家居"])
STAGES = np.array(["A", "I", "TI", "P", "S"])


def _hex_ids(rng, n: int) -> pa.Array:
    return pa.array(np.char.mod("%016x", rng.integers(0, 2**63, n, dtype=np.int64)).astype(object), pa.string())


def _dict(codes: np.ndarray, values) -> pa.DictionaryArray:
    """Dictionary-encoded strings: cheap to build and write; DuckDB reads them as VARCHAR."""
    values = values if isinstance(values, pa.Array) else pa.array(np.asarray(values).tolist())
    return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)), values)


def _ts(micros: np.ndarray) -> pa.Array:
    return pa.array((START + micros.astype("timedelta64[us]")).astype("datetime64[us]"), pa.timestamp("us", tz=TZ))


def generate(rows: int, users: int, notes: int, topics: int, seed: int = 0) -> dict[str, float]:
    """Write engagements/audience/aips_stages/orders/spend/assignments parquet files; return sizes."""
    rng = np.random.default_rng(seed)
    OUT.mkdir(parents=True, exist_ok=True)
    user_ids = _hex_ids(rng, users)
    note_ids = pa.array(np.char.mod("n%08d", np.arange(notes)).astype(object), pa.string())

    # assignments: topic sizes Zipf-like, 8% outliers
    topic = np.minimum(rng.zipf(1.3, notes) - 1, topics - 1)
    topic = np.where(rng.random(notes) < 0.08, -1, rng.permutation(topics)[topic])
    pq.write_table(pa.table({"note_id": note_ids, "topic_id": topic.astype(np.int64),
                             "score": rng.random(notes)}), OUT / "assignments.parquet")

    # engagements: heavy-tailed user activity and note popularity; dictionary-encoded ids (memory-light)
    activity = rng.lognormal(0, 1.0, users)
    popularity = rng.lognormal(0, 1.5, notes)
    u = rng.choice(users, rows, p=activity / activity.sum())
    n = rng.choice(notes, rows, p=popularity / popularity.sum())
    t = rng.integers(0, DAYS * 86_400_000_000, rows)
    eng = pa.table({
        "user_id": _dict(u, user_ids),
        "note_id": _dict(n, note_ids),
        "action": _dict(rng.choice(len(ACTIONS), rows, p=ACTION_P), ACTIONS),
        "ts": _ts(t),
    })
    pq.write_table(eng, OUT / "engagements.parquet", row_group_size=1_000_000)
    del eng, u, n, t

    # audience with a list column of interests (offsets + flat values)
    k = rng.integers(1, 4, users)
    offsets = np.concatenate([[0], np.cumsum(k)]).astype(np.int32)
    interests = np.array(["美妆时尚", "汽车出行", "游戏动漫", "数码科技", "美食", "运动健身", "生活家居"])
    pq.write_table(pa.table({
        "user_id": user_ids,
        "gender": np.array(["F", "M", "U"])[rng.choice(3, users, p=[0.62, 0.35, 0.03])],
        "age_band": np.array(["<18", "18-24", "25-34", "35-44", "45+"])[rng.choice(5, users, p=[.05, .33, .4, .15, .07])],
        "city_tier": np.array(["1", "new1", "2", "3", "4+"])[rng.integers(0, 5, users)],
        "interests": pa.ListArray.from_arrays(pa.array(offsets), _dict(rng.integers(0, len(interests), offsets[-1]),
                                                                        interests)),
    }), OUT / "audience.parquet")

    # AIPS: 20% of user × brand pairs in the pool, weekly snapshots, each week a 10% chance to advance
    pairs = np.flatnonzero(rng.random(users * len(BRANDS)) < 0.20)
    stage = rng.choice(5, len(pairs), p=[0.45, 0.25, 0.12, 0.12, 0.06])
    parts = []
    for week in range(DAYS // 7):
        parts.append((pairs, stage.copy(), np.full(len(pairs), week * 7)))
        stage = np.minimum(stage + (rng.random(len(pairs)) < 0.10), 4)
    p, s, d = (np.concatenate(x) for x in zip(*parts))
    pq.write_table(pa.table({
        "user_id": _dict(p // len(BRANDS), user_ids),
        "brand": _dict(p % len(BRANDS), BRANDS),
        "stage": _dict(s, STAGES),
        "date": pa.array((np.datetime64("2023-08-19") + d.astype("timedelta64[D]")), pa.date32()),
    }), OUT / "aips_stages.parquet")
    aips_rows = len(p)
    del p, s, d, parts

    n_orders = max(rows // 20, 1)
    pq.write_table(pa.table({
        "order_id": pa.array(np.char.mod("o%09d", np.arange(n_orders)).astype(object), pa.string()),
        "user_id": _dict(rng.choice(users, n_orders, p=activity / activity.sum()), user_ids),
        "brand": _dict(rng.integers(0, len(BRANDS), n_orders), BRANDS),
        "amount": np.round(rng.lognormal(np.log(250), 0.7, n_orders), 2),
        "ts": _ts(rng.integers(0, (DAYS + 15) * 86_400_000_000, n_orders)),
        "channel": np.array(["天猫", "京东", "小红书店铺"])[rng.integers(0, 3, n_orders)],
    }), OUT / "orders.parquet")
    paid = rng.choice(notes, notes // 20, replace=False)
    pq.write_table(pa.table({"note_id": note_ids.take(pa.array(paid)),
                             "amount": np.round(rng.lognormal(np.log(3000), 0.8, len(paid)), 2)}),
                   OUT / "spend.parquet")
    return {"engagements": rows, "audience": users, "aips_stages": aips_rows, "orders": n_orders,
            "spend": len(paid), "notes": notes, "topics": topics}


def load_duckdb(db: Path) -> None:
    import duckdb
    if db.exists():
        db.unlink()
    casts = {
        "engagements": "user_id::VARCHAR AS user_id, note_id::VARCHAR AS note_id, action::VARCHAR AS action, "
                       "ts::TIMESTAMPTZ AS ts",
        "audience": "user_id, gender, age_band, city_tier, interests::VARCHAR[] AS interests",
        "aips_stages": "user_id::VARCHAR AS user_id, brand, stage, date",
        "orders": "order_id, user_id::VARCHAR AS user_id, brand, amount, ts::TIMESTAMPTZ AS ts, channel",
        "spend": "note_id, amount",
    }
    with duckdb.connect(str(db)) as con:
        con.execute(f"SET TimeZone = '{TZ}'")
        for name, cols in casts.items():
            con.execute(f"CREATE TABLE {name} AS SELECT {cols} FROM read_parquet('{OUT / (name + '.parquet')}')")


# ---- metrics, each run in a child process ------------------------------------------------------------
WINDOW = ("2023-09-15", "2023-10-15")
PREVIOUS = ("2023-08-15", "2023-09-15")
METRICS = {
    "topic_reach_penetration": "topic_reach_penetration(con, asg, k=50)",
    "reach × segment cells": "topic_reach_penetration(con, asg, segment='gender=F,age_band=18-24|25-34', "
                             "by=['city_tier'], window=WINDOW, k=50)",
    "penetration_growth": "penetration_growth(con, asg, WINDOW, PREVIOUS, k=50)",
    "topic_engagement": "topic_engagement(con, asg, k=50)",
    "aips_flow (all brands)": "aips_flow(con, asg, window=WINDOW, k=50)",
    "order_value T+15": "order_value(con, asg, attribution_days=15, k=50)",
    "order_value T+30 segment": "order_value(con, asg, segment='gender=F', attribution_days=30, window=WINDOW, k=50)",
    "interaction_metrics": "interaction_metrics(notes, asg, spend)",
    "topic_metrics_table (all)": "topic_metrics_table(con, asg, notes=notes, window=WINDOW, previous_window=PREVIOUS, "
                                 "attribution_days=15, k=50)",
}


def _peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM). Not ``ru_maxrss``: Linux carries that over fork + exec from the parent."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_metric(name: str, db: Path) -> dict:
    import tracemalloc
    import duckdb
    import pandas as pd
    from miner.insights import audience as A
    asg = pd.read_parquet(OUT / "assignments.parquet")
    rng = np.random.default_rng(1)
    notes = pd.DataFrame({"note_id": asg["note_id"], **{c: rng.integers(0, 1000, len(asg))
                                                        for c in ("likes", "collects", "comments", "shares")}})
    con = duckdb.connect(str(db), read_only=True)
    spend = con.execute("SELECT * FROM spend").df()
    base_rss = _peak_rss_mb()
    scope = {**vars(A), "con": con, "asg": asg, "notes": notes, "spend": spend, "WINDOW": WINDOW,
             "PREVIOUS": PREVIOUS}
    tracemalloc.start()
    started, cpu = time.perf_counter(), time.process_time()
    out = eval(METRICS[name], scope)  # noqa: S307 - fixed expressions above
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    py_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    duck = con.execute("SELECT sum(memory_usage_bytes) FROM duckdb_memory()").fetchone()[0] or 0
    return {"metric": name, "wall_s": wall, "cpu_s": cpu, "rows_out": len(out),
            "peak_rss_mb": _peak_rss_mb(), "rss_over_base_mb": _peak_rss_mb() - base_rss,
            "py_peak_mb": py_peak / 2**20, "duckdb_mem_mb": duck / 2**20}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="engagement rows (default 10M)")
    parser.add_argument("--users", type=int, help="default rows / 10")
    parser.add_argument("--notes", type=int, help="default rows / 50")
    parser.add_argument("--topics", type=int, default=300)
    parser.add_argument("--reuse", action="store_true", help="reuse the generated files and DuckDB file")
    parser.add_argument("--run-metric", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    db = OUT / "bench.duckdb"
    if args.run_metric:
        print(json.dumps(run_metric(args.run_metric, db), ensure_ascii=False))
        return 0

    print_header("Audience metrics at scale (miner.insights.audience, DuckDB)", run_info(argv))
    import duckdb
    print(f"duckdb {duckdb.__version__}; threads = DuckDB default (all cores)")
    users, notes = args.users or args.rows // 10, args.notes or args.rows // 50
    timings = []
    if not (args.reuse and db.exists()):
        t = time.perf_counter()
        sizes = generate(args.rows, users, notes, args.topics)
        timings.append({"metric": "generate parquet (numpy)", "wall_s": time.perf_counter() - t})
        t = time.perf_counter()
        load_duckdb(db)
        timings.append({"metric": "load into DuckDB file", "wall_s": time.perf_counter() - t})
    with duckdb.connect(str(db), read_only=True) as con:
        sizes = {name: con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
                 for name in ("engagements", "audience", "aips_stages", "orders", "spend")}
    sizes["notes"] = pq.read_metadata(OUT / "assignments.parquet").num_rows
    print("rows: " + ", ".join(f"{k} {v:,}" for k, v in sizes.items()) + f"; topics {args.topics}")
    print(f"window {WINDOW}, previous {PREVIOUS}; DuckDB file {db.stat().st_size / 2**20:.0f} MiB\n")

    results = []
    for name in METRICS:
        proc = subprocess.run([sys.executable, __file__, "--run-metric", name], capture_output=True, text=True)
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            return 1
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(markdown_table(timings, ["metric", "wall_s"]) + "\n" if timings else "", end="")
    if timings:
        print()
    print(markdown_table(results, ["metric", "wall_s", "cpu_s", "rows_out", "peak_rss_mb", "rss_over_base_mb", "py_peak_mb",
                                   "duckdb_mem_mb"]))
    total = sum(r["wall_s"] for r in results)
    print(f"\nmetrics total {total:.1f} s; peak RSS of any metric {max(r['peak_rss_mb'] for r in results):.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
