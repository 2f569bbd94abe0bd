"""CLI: ingest, build, topics, predict (argument parsing and printing; work in miner.workspace)."""
from __future__ import annotations

from miner.cli.render import clean
from miner.config import MinerConfig
from miner.schema import INPUT_SCHEMAS
from miner.workspace import Workspace


def register(sub) -> None:
    p = sub.add_parser("ingest", help="导入数据 ingest a notes/engagements/audience/orders file")
    p.add_argument("files", nargs="+", help="CSV, JSONL, Parquet or Excel files")
    p.add_argument("--table", default="notes", choices=sorted(INPUT_SCHEMAS))
    p.add_argument("--replace", action="store_true", help="replace the table instead of upserting")
    p.set_defaults(handler=cmd_ingest)

    p = sub.add_parser("build", help="构建话题 mine topics and write a snapshot")
    p.add_argument("--input", help="ingest this notes file first")
    p.add_argument("--demo", action="store_true", help="use the bundled demo corpus (default when no notes yet)")
    p.add_argument("--n-topics", type=int, help="fix the number of topics (default: automatic)")
    p.add_argument("--outlier-share", type=float, help="share of notes marked as outliers (default 0.08)")
    p.add_argument("--model", help="sentence-transformers model name or path, or 'hashing'")
    p.add_argument("--seed", type=int)
    p.add_argument("--limit", type=int, help="use only the first N notes (quick trials)")
    add_executor_args(p)
    p.set_defaults(handler=cmd_build)

    p = sub.add_parser("update", help="增量更新 add new notes to the existing topics (no rebuild; emerging topics)")
    p.add_argument("--input", help="ingest this notes file first")
    add_executor_args(p)
    p.set_defaults(handler=cmd_update)

    p = sub.add_parser("topics", help="查看话题 list the topics of a snapshot")
    p.add_argument("--run", help="snapshot run id (default latest)")
    p.add_argument("--top", type=int, default=30)
    p.set_defaults(handler=cmd_topics)

    p = sub.add_parser("predict", help="预测话题 assign new texts to topics")
    p.add_argument("texts", nargs="*", help="texts to classify")
    p.add_argument("--file", help="a notes file; predicts every row")
    p.add_argument("--run", help="snapshot run id (default latest)")
    p.set_defaults(handler=cmd_predict)


def add_executor_args(p) -> None:
    p.add_argument("--executor", choices=("local", "ray"),
                   help="分词和向量化在哪里运行 where segmentation + embedding run (default local)")
    p.add_argument("--ray-address", help="加入已有 Ray 集群 join this Ray cluster (default: start a local one)")
    p.add_argument("--ray-workers", type=int, help="Ray 工作进程数, 每个一个 CPU (default: one per CPU)")


def executor_overrides(args) -> dict:
    address = getattr(args, "ray_address", None)
    executor = getattr(args, "executor", None) or ("ray" if address else None)
    return {"executor": executor, "ray_address": address, "ray_workers": getattr(args, "ray_workers", None)}


def print_ingest(report) -> None:
    print(report.summary())
    for err in report.errors[:5]:
        print(f"    第 {err.row} 行 row, {clean(err.column)}: {clean(err.reason)}")


def cmd_ingest(args, config: MinerConfig) -> int:
    workspace = Workspace.open(config)
    for path in args.files:
        print_ingest(workspace.ingest(path, args.table, mode="replace" if args.replace else "upsert"))
    return 0


def cmd_build(args, config: MinerConfig) -> int:
    config = config.with_overrides(n_topics=args.n_topics, outlier_share=args.outlier_share,
                                   embedding_model=args.model, seed=args.seed, **executor_overrides(args))
    outcome = Workspace.open(config).build(input_path=args.input, demo=args.demo, limit=args.limit, show_progress=True)
    for line in outcome.lines():
        print(line)
    return 0


def cmd_update(args, config: MinerConfig) -> int:
    config = config.with_overrides(**executor_overrides(args))
    outcome = Workspace.open(config).update(input_path=args.input, show_progress=True)
    for line in outcome.lines():
        print(line)
    return 0


def cmd_topics(args, config: MinerConfig) -> int:
    snap = Workspace(config).snapshot(args.run)
    topics = snap.topics.sort_values("size", ascending=False).head(args.top)
    n = len(snap.assignments)
    outliers = int((snap.assignments["topic_id"] < 0).sum())
    print(f"快照 snapshot {snap.run_id} · 模型 {snap.model_id} · {n} 篇笔记 · {len(snap.topics)} 个话题 · "
          f"离群 {outliers / max(n, 1):.1%}")
    for row in topics.itertuples():
        keywords = clean(" ".join(list(row.keywords)[:8]))
        print(f"[{row.topic_id:>3}] {clean(row.label):<16} {row.size:>5} 篇  关键词: {keywords}")
    return 0


def cmd_predict(args, config: MinerConfig) -> int:
    workspace = Workspace(config)
    texts = list(args.texts)
    if args.file:
        from miner.ingest import read_table_file
        from miner.topics.pipeline import notes_texts
        texts += notes_texts(read_table_file(args.file).fillna(""))
    if not texts:
        raise ValueError("give texts to classify, or --file")
    out = workspace.predict(texts, run_id=args.run)
    for row in out.itertuples():
        note = "  (无有效文字 no letters or digits)" if row.reason == "empty" else ""
        print(f"{row.topic_id:>4}  {clean(row.label):<16} {row.score:.3f}  {clean(row.text)[:40]}{note}")
    return 0
